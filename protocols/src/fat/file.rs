//! File data: reads and writes of any size at any offset, coalescing runs of
//! contiguous clusters into single device requests; growing and shrinking.
#![forbid(unsafe_code)]

use platform::block::BlockDevice;

use super::dir::set_entry_cluster;
use super::table::Link;
use super::{Attributes, FatError, FileSystem, Node};

/// Zero-fill is written in pieces of this many bytes.
const ZERO_CHUNK: usize = 64 * 1024;

impl<D: BlockDevice> FileSystem<D> {
    /// Volume byte address of a cluster.
    fn cluster_byte(&self, cluster: u32) -> u64 {
        u64::from(self.geo.cluster_sector(cluster)) * u64::from(self.geo.bytes_per_sector)
    }

    /// Calls `f(volume_byte, range_in_request)` for each run of contiguous
    /// clusters covering `len` bytes of the file from `offset` (which must lie
    /// within the allocated chain).
    fn for_each_run(
        &self,
        node: &Node,
        offset: u64,
        len: usize,
        mut f: impl FnMut(u64, core::ops::Range<usize>) -> Result<(), FatError>,
    ) -> Result<(), FatError> {
        let cluster_bytes = u64::from(self.geo.cluster_bytes());
        let mut done = 0usize;
        while done < len {
            let pos = offset + done as u64;
            let index =
                u32::try_from(pos / cluster_bytes).map_err(|_| FatError::FileTooLarge(pos))?;
            let first = node.first_cluster;
            let cluster =
                self.cluster_at(first, index, &node.hint)?
                    .ok_or(FatError::ChainTooShort {
                        first,
                        clusters: index,
                    })?;
            let within = pos % cluster_bytes;
            let mut run_bytes = cluster_bytes - within;
            let mut last = (index, cluster);
            // Extend the run while the next cluster follows physically.
            while run_bytes < (len - done) as u64 {
                match self.next_cluster(last.1)? {
                    Link::Next(next) if next == last.1 + 1 => {
                        last = (last.0 + 1, next);
                        run_bytes += cluster_bytes;
                    }
                    _ => break,
                }
            }
            node.hint.set(last);
            let chunk = run_bytes.min((len - done) as u64) as usize;
            f(self.cluster_byte(cluster) + within, done..done + chunk)?;
            done += chunk;
        }
        Ok(())
    }

    /// Reads from `offset` into `buf`; returns the bytes read (0 at or past
    /// the end of the file).
    pub fn read(&self, node: &Node, offset: u64, buf: &mut [u8]) -> Result<usize, FatError> {
        if node.is_dir() {
            return Err(FatError::IsADirectory);
        }
        let size = node.size();
        if offset >= size {
            return Ok(0);
        }
        let len = (size - offset).min(buf.len() as u64) as usize;
        self.for_each_run(node, offset, len, |pos, range| {
            self.read_bytes(pos, &mut buf[range])
        })?;
        Ok(len)
    }

    /// Writes `data` at `offset`, growing the file (zero-filling any gap).
    pub fn write(&self, node: &mut Node, offset: u64, data: &[u8]) -> Result<usize, FatError> {
        self.check_writable()?;
        if node.is_dir() {
            return Err(FatError::IsADirectory);
        }
        if node.attributes.contains(Attributes::READ_ONLY) {
            return Err(FatError::AccessDenied("file is read-only"));
        }
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&end| end <= u64::from(u32::MAX))
            .ok_or(FatError::FileTooLarge(
                offset.saturating_add(data.len() as u64),
            ))?;
        let old_size = node.size();
        if end > old_size {
            self.grow_chain(node, end)?;
        }
        let result = self
            .zero_fill(node, old_size, offset)
            .and_then(|()| self.write_data(node, offset, data));
        if let Err(e) = result {
            // Give back what this write allocated; the entry still says old_size.
            let _ = self.shrink_chain(node, old_size);
            return Err(e);
        }
        let new_size = end.max(old_size) as u32;
        self.commit_entry(node, new_size)?;
        Ok(data.len())
    }

    /// Sets the file length: grows with zeros or shrinks and frees clusters.
    pub fn set_len(&self, node: &mut Node, len: u64) -> Result<(), FatError> {
        self.check_writable()?;
        if node.is_dir() {
            return Err(FatError::IsADirectory);
        }
        if node.attributes.contains(Attributes::READ_ONLY) {
            return Err(FatError::AccessDenied("file is read-only"));
        }
        let new_size = u32::try_from(len).map_err(|_| FatError::FileTooLarge(len))?;
        let old_size = node.size();
        if len > old_size {
            self.grow_chain(node, len)?;
            if let Err(e) = self.zero_fill(node, old_size, len) {
                let _ = self.shrink_chain(node, old_size);
                return Err(e);
            }
            self.commit_entry(node, new_size)
        } else if len < old_size {
            // The entry goes first, so a crash leaves only lost clusters.
            let first = node.first_cluster;
            if len == 0 {
                node.first_cluster = 0;
            }
            self.commit_entry(node, new_size)?;
            let keep = new_size.div_ceil(self.geo.cluster_bytes());
            if first != 0 {
                if keep == 0 {
                    self.free_chain(first)?;
                } else {
                    self.truncate_chain(first, keep)?;
                }
                self.sync_fat()?;
            }
            node.hint.set((0, 0));
            Ok(())
        } else {
            Ok(())
        }
    }

    /// Records size, first cluster, modification time and the archive bit.
    fn commit_entry(&self, node: &mut Node, size: u32) -> Result<(), FatError> {
        let (date, time) = self.now().to_fat();
        let cluster = node.first_cluster;
        node.size = size;
        node.attributes |= Attributes::ARCHIVE;
        let attributes = node.attributes.bits();
        self.update_entry(node, |e| {
            e[11] = attributes;
            set_entry_cluster(e, cluster);
            e[22..24].copy_from_slice(&time.to_le_bytes());
            e[24..26].copy_from_slice(&date.to_le_bytes());
            e[18..20].copy_from_slice(&date.to_le_bytes());
            e[28..32].copy_from_slice(&size.to_le_bytes());
        })
    }

    /// Allocates clusters so the chain covers `bytes`, and writes the FAT.
    fn grow_chain(&self, node: &mut Node, bytes: u64) -> Result<(), FatError> {
        let cluster_bytes = u64::from(self.geo.cluster_bytes());
        let have = node.size().div_ceil(cluster_bytes) as u32;
        let need = bytes.div_ceil(cluster_bytes) as u32;
        if need <= have {
            return Ok(());
        }
        if have == 0 {
            node.first_cluster = self.allocate(need, None)?;
        } else {
            let first = node.first_cluster;
            let last =
                self.cluster_at(first, have - 1, &node.hint)?
                    .ok_or(FatError::ChainTooShort {
                        first,
                        clusters: have,
                    })?;
            self.allocate(need - have, Some(last))?;
        }
        self.sync_fat()
    }

    /// Frees the clusters beyond `size` bytes (undoing `grow_chain`).
    fn shrink_chain(&self, node: &mut Node, size: u64) -> Result<(), FatError> {
        let keep = size.div_ceil(u64::from(self.geo.cluster_bytes())) as u32;
        node.hint.set((0, 0));
        if node.first_cluster == 0 {
            return Ok(());
        }
        if keep == 0 {
            self.free_chain(node.first_cluster)?;
            node.first_cluster = 0;
        } else {
            self.truncate_chain(node.first_cluster, keep)?;
        }
        self.sync_fat()
    }

    /// Writes `data` at `offset` within the already allocated chain.
    fn write_data(&self, node: &Node, offset: u64, data: &[u8]) -> Result<(), FatError> {
        let bps = self.geo.bytes_per_sector;
        self.for_each_run(node, offset, data.len(), |pos, range| {
            let first_sector = (pos / u64::from(bps)) as u32;
            let sectors = (range.len() as u32).div_ceil(bps) + 1;
            self.invalidate_sectors(first_sector, sectors);
            self.write_bytes(pos, &data[range])
        })
    }

    /// Zeroes the bytes between `from` and `to` (a gap left by seeking past
    /// the end, or a file grown with `set_len`).
    fn zero_fill(&self, node: &Node, from: u64, to: u64) -> Result<(), FatError> {
        if to <= from {
            return Ok(());
        }
        // The gap is the caller's (SetPosition past the end, then Write).
        let zeros = super::buffer(ZERO_CHUNK.min((to - from) as usize))?;
        let mut pos = from;
        while pos < to {
            let n = (to - pos).min(zeros.len() as u64) as usize;
            self.write_data(node, pos, &zeros[..n])?;
            pos += n as u64;
        }
        Ok(())
    }

    /// Writes cached FAT sectors and flushes the device.
    pub fn flush(&self) -> Result<(), FatError> {
        if self.read_only {
            return Ok(());
        }
        self.sync_fat()?;
        Ok(self.dev.flush()?)
    }
}
