//! Sector cache, device I/O and the file allocation table itself: entry
//! access for the three entry widths, chain walks bounded by the cluster
//! count, allocation and freeing, FSInfo upkeep.
#![forbid(unsafe_code)]

use alloc::vec;
use alloc::vec::Vec;

use platform::block::BlockDevice;

use super::bpb::{FatType, le32};
use super::{FatError, FileSystem};

/// Metadata sectors kept in memory. FAT and directory sectors only; file data
/// goes straight between the device and the caller's buffer.
pub(crate) const CACHE_SLOTS: usize = 64;
/// FAT sectors read by one device request when a FAT sector misses the
/// cache: walking a large file's chain then costs one request per 2048
/// clusters (FAT32) instead of one per 128.
pub(crate) const FAT_READ_AHEAD: u32 = 16;

pub(crate) struct Slot {
    sector: u32,
    data: Vec<u8>,
    dirty: bool,
    last_used: u64,
}

#[derive(Default)]
pub(crate) struct SectorCache {
    slots: Vec<Slot>,
    clock: u64,
    /// The slot of the last hit, checked first.
    last: usize,
}

/// What a FAT entry says about the cluster after this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    Next(u32),
    End,
}

const FSINFO_LEAD: u32 = 0x4161_5252;
const FSINFO_STRUCT: u32 = 0x6141_7272;

impl<D: BlockDevice> FileSystem<D> {
    // ---- raw device access, in FAT sectors and in volume bytes ----

    pub(crate) fn device_read_sectors(&self, sector: u32, buf: &mut [u8]) -> Result<(), FatError> {
        let lba = u64::from(sector) * u64::from(self.blocks_per_sector);
        Ok(self.dev.read_blocks(lba, buf)?)
    }

    fn device_write_sectors(&self, sector: u32, buf: &[u8]) -> Result<(), FatError> {
        let lba = u64::from(sector) * u64::from(self.blocks_per_sector);
        Ok(self.dev.write_blocks(lba, buf)?)
    }

    /// Reads `buf.len()` bytes at volume byte `pos`: partial blocks at either
    /// end go through a one-block bounce buffer, the aligned middle is one
    /// device request straight into `buf`.
    pub(crate) fn read_bytes(&self, pos: u64, buf: &mut [u8]) -> Result<(), FatError> {
        let block = u64::from(self.dev.block_size());
        let mut pos = pos;
        let mut done = 0usize;
        let head = (pos % block) as usize;
        if head != 0 || (buf.len() as u64) < block {
            let mut bounce = vec![0u8; block as usize];
            self.dev.read_blocks(pos / block, &mut bounce)?;
            let n = (block as usize - head).min(buf.len());
            buf[..n].copy_from_slice(&bounce[head..head + n]);
            done = n;
            pos += n as u64;
        }
        let whole = (buf.len() - done) / block as usize * block as usize;
        if whole > 0 {
            self.dev
                .read_blocks(pos / block, &mut buf[done..done + whole])?;
            done += whole;
            pos += whole as u64;
        }
        if done < buf.len() {
            let mut bounce = vec![0u8; block as usize];
            self.dev.read_blocks(pos / block, &mut bounce)?;
            let n = buf.len() - done;
            buf[done..].copy_from_slice(&bounce[..n]);
        }
        Ok(())
    }

    /// Writes `data` at volume byte `pos`, read-modify-write for partial blocks.
    pub(crate) fn write_bytes(&self, pos: u64, data: &[u8]) -> Result<(), FatError> {
        let block = u64::from(self.dev.block_size());
        let mut pos = pos;
        let mut done = 0usize;
        let head = (pos % block) as usize;
        if head != 0 || (data.len() as u64) < block {
            let mut bounce = vec![0u8; block as usize];
            self.dev.read_blocks(pos / block, &mut bounce)?;
            let n = (block as usize - head).min(data.len());
            bounce[head..head + n].copy_from_slice(&data[..n]);
            self.dev.write_blocks(pos / block, &bounce)?;
            done = n;
            pos += n as u64;
        }
        let whole = (data.len() - done) / block as usize * block as usize;
        if whole > 0 {
            self.dev
                .write_blocks(pos / block, &data[done..done + whole])?;
            done += whole;
            pos += whole as u64;
        }
        if done < data.len() {
            let mut bounce = vec![0u8; block as usize];
            self.dev.read_blocks(pos / block, &mut bounce)?;
            let n = data.len() - done;
            bounce[..n].copy_from_slice(&data[done..]);
            self.dev.write_blocks(pos / block, &bounce)?;
        }
        Ok(())
    }

    // ---- the sector cache ----

    fn is_fat_sector(&self, sector: u32) -> bool {
        let start = self.geo.fat_start();
        sector >= start && sector - start < self.geo.fat_sectors
    }

    /// Writes a cached sector back; a FAT sector goes to every mirrored copy.
    fn write_back(&self, sector: u32, data: &[u8]) -> Result<(), FatError> {
        if self.is_fat_sector(sector) && self.geo.active_fat.is_none() {
            let index = sector - self.geo.fat_start();
            for copy in 0..self.geo.num_fats {
                let target = self.geo.reserved_sectors + copy * self.geo.fat_sectors + index;
                self.device_write_sectors(target, data)?;
            }
            Ok(())
        } else {
            self.device_write_sectors(sector, data)
        }
    }

    /// Finds or loads `sector`, returning its slot index. A missed FAT
    /// sector is read together with the ones after it (see
    /// [`FAT_READ_AHEAD`]).
    fn slot_for(&self, cache: &mut SectorCache, sector: u32) -> Result<usize, FatError> {
        cache.clock += 1;
        let now = cache.clock;
        // Chain walks hit the same FAT sector ~128 times in a row.
        let hit = match cache.slots.get(cache.last) {
            Some(slot) if slot.sector == sector => Some(cache.last),
            _ => cache.slots.iter().position(|s| s.sector == sector),
        };
        if let Some(i) = hit {
            cache.slots[i].last_used = now;
            cache.last = i;
            return Ok(i);
        }
        let size = self.geo.bytes_per_sector as usize;
        let count = self.read_ahead_count(cache, sector);
        let mut data = super::buffer(size * count as usize)?;
        self.device_read_sectors(sector, &mut data)?;
        let mut first = 0;
        for (offset, chunk) in data.chunks_exact(size).enumerate() {
            let index = self.free_slot(cache)?;
            cache.clock += 1;
            let slot = &mut cache.slots[index];
            slot.sector = sector + offset as u32;
            slot.last_used = cache.clock;
            slot.data.copy_from_slice(chunk);
            if offset == 0 {
                first = index;
            }
        }
        cache.last = first;
        Ok(first)
    }

    /// Sectors to read for a miss on `sector`: one, or for a FAT sector up
    /// to `FAT_READ_AHEAD` within the FAT, stopping before the first one
    /// already cached (the cached copy may be dirty and must win).
    fn read_ahead_count(&self, cache: &SectorCache, sector: u32) -> u32 {
        if !self.is_fat_sector(sector) {
            return 1;
        }
        let fat_end = self.geo.fat_start() + self.geo.fat_sectors;
        let limit = fat_end.min(sector.saturating_add(FAT_READ_AHEAD));
        (sector + 1..limit)
            .find(|next| cache.slots.iter().any(|s| s.sector == *next))
            .unwrap_or(limit)
            - sector
    }

    /// A slot to overwrite: a new one while the cache grows, else the least
    /// recently used one, written back first if dirty.
    fn free_slot(&self, cache: &mut SectorCache) -> Result<usize, FatError> {
        if cache.slots.len() < CACHE_SLOTS {
            cache.slots.push(Slot {
                sector: u32::MAX,
                data: super::buffer(self.geo.bytes_per_sector as usize)?,
                dirty: false,
                last_used: 0,
            });
            return Ok(cache.slots.len() - 1);
        }
        let victim = cache
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.last_used)
            .map_or(0, |(i, _)| i);
        let slot = &mut cache.slots[victim];
        if slot.dirty {
            self.write_back(slot.sector, &slot.data)?;
            slot.dirty = false;
        }
        // Until refilled the slot names no sector.
        slot.sector = u32::MAX;
        Ok(victim)
    }

    pub(crate) fn with_sector<R>(
        &self,
        sector: u32,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, FatError> {
        let mut cache = self.cache.borrow_mut();
        let i = self.slot_for(&mut cache, sector)?;
        Ok(f(&cache.slots[i].data))
    }

    /// Changes a cached sector. Directory and boot-area sectors are written
    /// through at once (the directory entry is the commit point of every
    /// update); FAT sectors stay dirty until `sync_fat`.
    pub(crate) fn update_sector(
        &self,
        sector: u32,
        f: impl FnOnce(&mut [u8]),
    ) -> Result<(), FatError> {
        self.check_writable()?;
        let mut cache = self.cache.borrow_mut();
        let i = self.slot_for(&mut cache, sector)?;
        let slot = &mut cache.slots[i];
        f(&mut slot.data);
        if self.is_fat_sector(sector) {
            slot.dirty = true;
            Ok(())
        } else {
            self.write_back(sector, &slot.data)
        }
    }

    /// Drops cached copies of sectors that file data is about to overwrite
    /// directly (clusters that once held a directory).
    pub(crate) fn invalidate_sectors(&self, first: u32, count: u32) {
        let mut cache = self.cache.borrow_mut();
        cache
            .slots
            .retain(|s| s.dirty || s.sector < first || s.sector - first >= count);
    }

    /// Writes every dirty FAT sector to all FAT copies, then FSInfo. Called
    /// before the data and directory writes that depend on the allocation.
    pub(crate) fn sync_fat(&self) -> Result<(), FatError> {
        {
            let mut cache = self.cache.borrow_mut();
            for slot in cache.slots.iter_mut().filter(|s| s.dirty) {
                self.write_back(slot.sector, &slot.data)?;
                slot.dirty = false;
            }
        }
        self.write_fsinfo()
    }

    fn write_fsinfo(&self) -> Result<(), FatError> {
        let Some(sector) = self.fsinfo_sector else {
            return Ok(());
        };
        let free = self.free_clusters.get().unwrap_or(u32::MAX);
        let next = self.next_free.get();
        self.update_sector(sector, |s| {
            s[488..492].copy_from_slice(&free.to_le_bytes());
            s[492..496].copy_from_slice(&next.to_le_bytes());
        })
    }

    /// Reads the FSInfo hints (Microsoft FAT specification, "FAT32 FSInfo
    /// Sector Structure"); they are only hints and are range-checked.
    pub(crate) fn load_fsinfo(&mut self) -> Result<(), FatError> {
        let Some(sector) = self.geo.fsinfo_sector else {
            return Ok(());
        };
        let (valid, free, next) = self.with_sector(sector, |s| {
            (
                le32(s, 0) == FSINFO_LEAD && le32(s, 484) == FSINFO_STRUCT,
                le32(s, 488),
                le32(s, 492),
            )
        })?;
        if !valid {
            return Ok(());
        }
        self.fsinfo_sector = Some(sector);
        if free <= self.geo.cluster_count {
            self.free_clusters.set(Some(free));
        }
        if self.geo.cluster_in_range(next) {
            self.next_free.set(next);
        }
        Ok(())
    }

    // ---- FAT entries ----

    fn fat_location(&self, byte: u32) -> (u32, usize) {
        let bps = self.geo.bytes_per_sector;
        (self.geo.fat_start() + byte / bps, (byte % bps) as usize)
    }

    /// The raw FAT entry of an in-range cluster.
    pub(crate) fn fat_entry(&self, cluster: u32) -> Result<u32, FatError> {
        if cluster > self.geo.max_cluster() {
            return Err(FatError::ClusterOutOfRange(cluster));
        }
        match self.geo.fat_type {
            FatType::Fat12 => {
                let byte = cluster + cluster / 2;
                let (s0, o0) = self.fat_location(byte);
                let (s1, o1) = self.fat_location(byte + 1);
                let lo = self.with_sector(s0, |s| s[o0])?;
                let hi = self.with_sector(s1, |s| s[o1])?;
                let pair = u32::from(lo) | u32::from(hi) << 8;
                Ok(if cluster & 1 == 1 {
                    pair >> 4
                } else {
                    pair & 0xFFF
                })
            }
            FatType::Fat16 => {
                let (s, o) = self.fat_location(cluster * 2);
                self.with_sector(s, |s| u32::from(u16::from_le_bytes([s[o], s[o + 1]])))
            }
            FatType::Fat32 => {
                let (s, o) = self.fat_location(cluster * 4);
                self.with_sector(s, |s| le32(s, o) & 0x0FFF_FFFF)
            }
        }
    }

    pub(crate) fn set_fat_entry(&self, cluster: u32, value: u32) -> Result<(), FatError> {
        if !self.geo.cluster_in_range(cluster) {
            return Err(FatError::ClusterOutOfRange(cluster));
        }
        match self.geo.fat_type {
            FatType::Fat12 => {
                let byte = cluster + cluster / 2;
                let (s0, o0) = self.fat_location(byte);
                let (s1, o1) = self.fat_location(byte + 1);
                let value = value & 0xFFF;
                if cluster & 1 == 1 {
                    self.update_sector(s0, |s| s[o0] = (s[o0] & 0x0F) | ((value << 4) as u8))?;
                    self.update_sector(s1, |s| s[o1] = (value >> 4) as u8)
                } else {
                    self.update_sector(s0, |s| s[o0] = value as u8)?;
                    self.update_sector(s1, |s| s[o1] = (s[o1] & 0xF0) | ((value >> 8) as u8 & 0x0F))
                }
            }
            FatType::Fat16 => {
                let (s, o) = self.fat_location(cluster * 2);
                self.update_sector(s, |s| {
                    s[o..o + 2].copy_from_slice(&(value as u16).to_le_bytes())
                })
            }
            FatType::Fat32 => {
                // The top four bits are reserved and must be preserved.
                let (s, o) = self.fat_location(cluster * 4);
                self.update_sector(s, |s| {
                    let kept = le32(s, o) & 0xF000_0000;
                    s[o..o + 4].copy_from_slice(&(kept | (value & 0x0FFF_FFFF)).to_le_bytes());
                })
            }
        }
    }

    fn end_of_chain(&self) -> u32 {
        self.geo.eoc_and_bad().0 | 0x7
    }

    /// Follows one link of a chain, rejecting free, bad and out-of-range values.
    pub(crate) fn next_cluster(&self, cluster: u32) -> Result<Link, FatError> {
        if !self.geo.cluster_in_range(cluster) {
            return Err(FatError::ClusterOutOfRange(cluster));
        }
        let value = self.fat_entry(cluster)?;
        let (eoc, bad) = self.geo.eoc_and_bad();
        if value >= eoc {
            Ok(Link::End)
        } else if value == bad {
            Err(FatError::BadClusterInChain(cluster))
        } else if value == 0 {
            Err(FatError::FreeClusterInChain(cluster))
        } else if !self.geo.cluster_in_range(value) {
            Err(FatError::ClusterOutOfRange(value))
        } else {
            Ok(Link::Next(value))
        }
    }

    /// The `index`-th cluster of the chain starting at `first`, or None when
    /// the chain is shorter. `hint` (index, cluster) lets sequential access
    /// resume where the previous lookup stopped.
    pub(crate) fn cluster_at(
        &self,
        first: u32,
        index: u32,
        hint: &core::cell::Cell<(u32, u32)>,
    ) -> Result<Option<u32>, FatError> {
        if index > self.geo.cluster_count {
            return Err(FatError::ChainLoop(first));
        }
        let (hint_index, hint_cluster) = hint.get();
        let (mut at, mut cluster) = if hint_cluster != 0 && hint_index <= index {
            (hint_index, hint_cluster)
        } else {
            (0, first)
        };
        if !self.geo.cluster_in_range(cluster) {
            return Err(FatError::ClusterOutOfRange(cluster));
        }
        while at < index {
            match self.next_cluster(cluster)? {
                Link::Next(next) => cluster = next,
                Link::End => return Ok(None),
            }
            at += 1;
        }
        hint.set((at, cluster));
        Ok(Some(cluster))
    }

    /// Number of clusters in a chain; a chain longer than the volume loops.
    pub(crate) fn chain_length(&self, first: u32, limit: u32) -> Result<u32, FatError> {
        let mut cluster = first;
        let mut length = 1u32;
        if !self.geo.cluster_in_range(cluster) {
            return Err(FatError::ClusterOutOfRange(cluster));
        }
        loop {
            match self.next_cluster(cluster)? {
                Link::End => return Ok(length),
                Link::Next(next) => cluster = next,
            }
            length += 1;
            if length > limit.min(self.geo.cluster_count) {
                return Err(FatError::ChainTooLong { first, limit });
            }
        }
    }

    /// Allocates `count` clusters as one chain, linked after `after` when
    /// given, preferring the clusters that follow it so files stay
    /// contiguous. Returns the first new cluster. The FAT is dirty in the
    /// cache afterwards; callers `sync_fat` before writing data.
    pub(crate) fn allocate(&self, count: u32, after: Option<u32>) -> Result<u32, FatError> {
        self.check_writable()?;
        let max = self.geo.max_cluster();
        let start = match after {
            Some(last) if last < max => last + 1,
            _ => self.next_free.get(),
        };
        let mut candidate = if self.geo.cluster_in_range(start) {
            start
        } else {
            2
        };
        let mut first = 0u32;
        let mut previous = after;
        let mut found = 0u32;
        let mut scanned = 0u32;
        while found < count {
            if scanned >= self.geo.cluster_count {
                // Roll back what this call took, then report.
                if first != 0 {
                    let _ = self.free_chain(first);
                    if let Some(last) = after {
                        let _ = self.set_fat_entry(last, self.end_of_chain());
                    }
                }
                return Err(FatError::NoSpace);
            }
            if self.fat_entry(candidate)? == 0 {
                self.set_fat_entry(candidate, self.end_of_chain())?;
                if let Some(prev) = previous {
                    self.set_fat_entry(prev, candidate)?;
                }
                if first == 0 {
                    first = candidate;
                }
                previous = Some(candidate);
                found += 1;
                if let Some(free) = self.free_clusters.get() {
                    self.free_clusters.set(Some(free.saturating_sub(1)));
                }
            }
            scanned += 1;
            candidate = if candidate >= max { 2 } else { candidate + 1 };
        }
        self.next_free.set(candidate);
        Ok(first)
    }

    /// Marks every cluster of the chain from `first` free.
    pub(crate) fn free_chain(&self, first: u32) -> Result<(), FatError> {
        let mut cluster = first;
        let mut freed = 0u32;
        loop {
            let link = self.next_cluster(cluster)?;
            self.set_fat_entry(cluster, 0)?;
            freed += 1;
            if let Some(free) = self.free_clusters.get() {
                self.free_clusters
                    .set(Some(free.saturating_add(1).min(self.geo.cluster_count)));
            }
            match link {
                Link::End => return Ok(()),
                Link::Next(next) => cluster = next,
            }
            if freed > self.geo.cluster_count {
                return Err(FatError::ChainLoop(first));
            }
        }
    }

    /// Cuts the chain after its `keep`-th cluster (keep >= 1) and frees the rest.
    pub(crate) fn truncate_chain(&self, first: u32, keep: u32) -> Result<(), FatError> {
        let Some(last_index) = keep.checked_sub(1) else {
            return self.free_chain(first);
        };
        let hint = core::cell::Cell::new((0, 0));
        let Some(last) = self.cluster_at(first, last_index, &hint)? else {
            return Ok(());
        };
        let link = self.next_cluster(last)?;
        self.set_fat_entry(last, self.end_of_chain())?;
        if let Link::Next(rest) = link {
            self.free_chain(rest)?;
        }
        Ok(())
    }

    /// Free clusters, counted once by scanning the FAT unless FSInfo gave a
    /// plausible hint.
    pub(crate) fn free_cluster_count(&self) -> Result<u32, FatError> {
        if let Some(free) = self.free_clusters.get() {
            return Ok(free);
        }
        let mut free = 0u32;
        for cluster in 2..=self.geo.max_cluster() {
            if self.fat_entry(cluster)? == 0 {
                free += 1;
            }
        }
        self.free_clusters.set(Some(free));
        Ok(free)
    }
}
