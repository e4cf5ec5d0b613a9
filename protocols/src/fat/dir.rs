//! Directories: slot addressing in the fixed FAT12/16 root and in cluster
//! chains, entry iteration with long-name assembly, lookup, insertion with
//! long-name entries and a unique alias, deletion, and path resolution.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;

use platform::block::BlockDevice;

use super::bpb::{le16, le32};
use super::name::{
    DateTime, UNIT_OFFSETS, UNITS_PER_ENTRY, exact_short, generate_alias, lfn_checksum,
    names_equal, short_display, to_ucs2,
};
use super::{Attributes, FatError, FileSystem};

pub(crate) const ENTRY_SIZE: usize = 32;
/// A directory holds at most 65536 entries (Microsoft FAT specification,
/// "FAT Directory Structure"); this also bounds walks of a looping directory.
pub(crate) const MAX_DIR_ENTRIES: u32 = 65536;
const ATTR_LONG_NAME: u8 = 0x0F;
pub(crate) const DELETED: u8 = 0xE5;
const LAST_LONG_ENTRY: u8 = 0x40;
const DOT: [u8; 11] = *b".          ";
const DOTDOT: [u8; 11] = *b"..         ";

/// Where a directory's entries live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirRef {
    /// The FAT12/16 root directory region between the FATs and the data.
    FixedRoot,
    /// A cluster chain (subdirectories, the FAT32 root).
    Chain(u32),
}

/// The directory entries that make up one file: the long-name entries from
/// `first_slot` and the short entry at `short_slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryLocation {
    pub parent: DirRef,
    pub first_slot: u32,
    pub short_slot: u32,
}

/// Position of a directory iteration.
#[derive(Clone, Debug, Default)]
pub struct DirCursor {
    slot: u32,
    hint: Cell<(u32, u32)>,
}

impl DirCursor {
    pub fn new() -> DirCursor {
        DirCursor::default()
    }

    pub(crate) fn at(slot: u32) -> DirCursor {
        DirCursor {
            slot,
            hint: Cell::new((0, 0)),
        }
    }
}

/// One directory entry as iteration returns it.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// The long name when a valid one precedes the entry, else the 8.3 name.
    pub name: String,
    pub short_name: String,
    pub attributes: Attributes,
    pub size: u32,
    pub created: DateTime,
    pub modified: DateTime,
    pub accessed: DateTime,
    pub(crate) raw_name: [u8; 11],
    pub(crate) first_cluster: u32,
    pub(crate) location: EntryLocation,
}

impl DirEntry {
    pub fn is_dir(&self) -> bool {
        self.attributes.contains(Attributes::DIRECTORY)
    }

    pub(crate) fn is_dot(&self) -> bool {
        self.raw_name == DOT || self.raw_name == DOTDOT
    }
}

/// A long name being assembled from its entries, last part first.
struct LongName {
    checksum: u8,
    next_ordinal: u8,
    units: Vec<u16>,
    first_slot: u32,
}

pub(crate) fn entry_cluster(raw: &[u8], fat32: bool) -> u32 {
    let low = u32::from(le16(raw, 26));
    if fat32 {
        u32::from(le16(raw, 20)) << 16 | low
    } else {
        low
    }
}

pub(crate) fn set_entry_cluster(raw: &mut [u8], cluster: u32) {
    raw[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    raw[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
}

/// A fresh short entry with all three timestamps set to `now`.
pub(crate) fn new_short_entry(
    attributes: Attributes,
    cluster: u32,
    now: DateTime,
) -> [u8; ENTRY_SIZE] {
    let mut raw = [0u8; ENTRY_SIZE];
    raw[..11].fill(b' ');
    raw[11] = attributes.bits();
    let (date, time) = now.to_fat();
    raw[13] = now.second % 2 * 100;
    for off in [14, 22] {
        raw[off..off + 2].copy_from_slice(&time.to_le_bytes());
    }
    for off in [16, 18, 24] {
        raw[off..off + 2].copy_from_slice(&date.to_le_bytes());
    }
    set_entry_cluster(&mut raw, cluster);
    raw
}

fn short_name_of(raw: &[u8]) -> [u8; 11] {
    let mut name = [0u8; 11];
    name.copy_from_slice(&raw[..11]);
    name
}

impl<D: BlockDevice> FileSystem<D> {
    pub(crate) fn root_dir(&self) -> DirRef {
        if self.geo.root_cluster != 0 {
            DirRef::Chain(self.geo.root_cluster)
        } else {
            DirRef::FixedRoot
        }
    }

    /// Largest number of clusters a directory may span.
    pub(crate) fn max_dir_clusters(&self) -> u32 {
        (MAX_DIR_ENTRIES * ENTRY_SIZE as u32).div_ceil(self.geo.cluster_bytes())
    }

    /// Sector and byte offset of a directory slot, or None past the end.
    fn slot_location(
        &self,
        dir: DirRef,
        slot: u32,
        hint: &Cell<(u32, u32)>,
    ) -> Result<Option<(u32, usize)>, FatError> {
        if slot >= MAX_DIR_ENTRIES {
            return Err(FatError::DirectoryTooLarge(slot));
        }
        let per_sector = self.geo.bytes_per_sector / ENTRY_SIZE as u32;
        let sector_index = slot / per_sector;
        let offset = (slot % per_sector) as usize * ENTRY_SIZE;
        match dir {
            DirRef::FixedRoot => {
                if slot >= self.geo.root_entries {
                    return Ok(None);
                }
                Ok(Some((self.geo.root_dir_start + sector_index, offset)))
            }
            DirRef::Chain(first) => {
                let spc = self.geo.sectors_per_cluster;
                Ok(self
                    .cluster_at(first, sector_index / spc, hint)?
                    .map(|cluster| {
                        (
                            self.geo.cluster_sector(cluster) + sector_index % spc,
                            offset,
                        )
                    }))
            }
        }
    }

    pub(crate) fn read_slot(
        &self,
        dir: DirRef,
        slot: u32,
        hint: &Cell<(u32, u32)>,
    ) -> Result<Option<[u8; ENTRY_SIZE]>, FatError> {
        let Some((sector, offset)) = self.slot_location(dir, slot, hint)? else {
            return Ok(None);
        };
        self.with_sector(sector, |s| {
            let mut raw = [0u8; ENTRY_SIZE];
            raw.copy_from_slice(&s[offset..offset + ENTRY_SIZE]);
            Some(raw)
        })
    }

    pub(crate) fn update_slot(
        &self,
        dir: DirRef,
        slot: u32,
        f: impl FnOnce(&mut [u8]),
    ) -> Result<(), FatError> {
        let hint = Cell::new((0, 0));
        let Some((sector, offset)) = self.slot_location(dir, slot, &hint)? else {
            return Err(FatError::DirectoryTooLarge(slot));
        };
        self.update_sector(sector, |s| f(&mut s[offset..offset + ENTRY_SIZE]))
    }

    /// The next entry from `cursor`, assembling long names and skipping
    /// deleted and orphaned long-name entries. Volume labels are returned only
    /// when `labels` is set.
    pub(crate) fn next_entry(
        &self,
        dir: DirRef,
        cursor: &mut DirCursor,
        labels: bool,
    ) -> Result<Option<DirEntry>, FatError> {
        let fat32 = self.geo.root_cluster != 0;
        let mut long: Option<LongName> = None;
        loop {
            let slot = cursor.slot;
            let Some(raw) = self.read_slot(dir, slot, &cursor.hint)? else {
                return Ok(None);
            };
            if raw[0] == 0 {
                return Ok(None);
            }
            cursor.slot += 1;
            if raw[0] == DELETED {
                long = None;
                continue;
            }
            let attr = raw[11];
            if attr & 0x3F == ATTR_LONG_NAME {
                let ordinal = raw[0] & 0x1F;
                if raw[0] & LAST_LONG_ENTRY != 0 {
                    long = (1..=20).contains(&ordinal).then(|| LongName {
                        checksum: raw[13],
                        next_ordinal: ordinal,
                        units: vec![0xFFFF; usize::from(ordinal) * UNITS_PER_ENTRY],
                        first_slot: slot,
                    });
                }
                match long.as_mut() {
                    Some(l)
                        if l.next_ordinal == ordinal && ordinal != 0 && l.checksum == raw[13] =>
                    {
                        let base = usize::from(ordinal - 1) * UNITS_PER_ENTRY;
                        for (i, &off) in UNIT_OFFSETS.iter().enumerate() {
                            l.units[base + i] = le16(&raw, off);
                        }
                        l.next_ordinal -= 1;
                    }
                    _ => long = None,
                }
                continue;
            }
            let is_label = attr & Attributes::VOLUME_ID.bits() != 0;
            if is_label && !labels {
                long = None;
                continue;
            }
            let raw_name = short_name_of(&raw);
            let short_name = short_display(&raw_name, raw[12]);
            let long = long.take().filter(|l| {
                l.next_ordinal == 0 && l.checksum == lfn_checksum(&raw_name) && !is_label
            });
            let (name, first_slot) = match long {
                Some(l) => {
                    let text: String = l
                        .units
                        .iter()
                        .take_while(|&&u| u != 0)
                        .map(|&u| char::from_u32(u.into()).unwrap_or(char::REPLACEMENT_CHARACTER))
                        .collect();
                    if text.is_empty() {
                        (short_name.clone(), slot)
                    } else {
                        (text, l.first_slot)
                    }
                }
                None if is_label => (String::from_utf8_lossy(&raw_name).trim_end().into(), slot),
                None => (short_name.clone(), slot),
            };
            return Ok(Some(DirEntry {
                name,
                short_name,
                attributes: Attributes::from_bits_truncate(attr),
                size: le32(&raw, 28),
                created: DateTime::from_fat(le16(&raw, 16), le16(&raw, 14)),
                modified: DateTime::from_fat(le16(&raw, 24), le16(&raw, 22)),
                accessed: DateTime::from_fat(le16(&raw, 18), 0),
                raw_name,
                first_cluster: entry_cluster(&raw, fat32),
                location: EntryLocation {
                    parent: dir,
                    first_slot,
                    short_slot: slot,
                },
            }));
        }
    }

    /// Case-insensitive lookup by long or short name.
    pub(crate) fn find_entry(&self, dir: DirRef, name: &str) -> Result<Option<DirEntry>, FatError> {
        let mut cursor = DirCursor::new();
        while let Some(entry) = self.next_entry(dir, &mut cursor, false)? {
            if names_equal(&entry.name, name) || names_equal(&entry.short_name, name) {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// Checks that subdirectory `cluster` starts with "." naming itself and
    /// ".." naming `parent`; anything else is a loop or a cross-link.
    pub(crate) fn check_dot_entries(&self, cluster: u32, parent: DirRef) -> Result<(), FatError> {
        let fat32 = self.geo.root_cluster != 0;
        self.chain_length(cluster, self.max_dir_clusters())?;
        let hint = Cell::new((0, 0));
        let dot = self.read_slot(DirRef::Chain(cluster), 0, &hint)?;
        let dotdot = self.read_slot(DirRef::Chain(cluster), 1, &hint)?;
        let (Some(dot), Some(dotdot)) = (dot, dotdot) else {
            return Err(FatError::DirectoryLoop(cluster));
        };
        let parent_cluster = entry_cluster(&dotdot, fat32);
        let parent_ok = match parent {
            DirRef::FixedRoot => parent_cluster == 0,
            DirRef::Chain(p) if p == self.geo.root_cluster => {
                parent_cluster == 0 || parent_cluster == p
            }
            DirRef::Chain(p) => parent_cluster == p,
        };
        if dot[..11] != DOT
            || entry_cluster(&dot, fat32) != cluster
            || dotdot[..11] != DOTDOT
            || !parent_ok
        {
            return Err(FatError::DirectoryLoop(cluster));
        }
        Ok(())
    }

    /// Finds `count` consecutive free slots, growing a chained directory by a
    /// zeroed cluster when it is full.
    fn find_free_slots(&self, dir: DirRef, count: u32) -> Result<u32, FatError> {
        let hint = Cell::new((0, 0));
        let (mut run_start, mut run) = (0u32, 0u32);
        let mut slot = 0u32;
        loop {
            match self.read_slot(dir, slot, &hint)? {
                Some(raw) if raw[0] == 0 || raw[0] == DELETED => {
                    if run == 0 {
                        run_start = slot;
                    }
                    run += 1;
                    if run == count {
                        return Ok(run_start);
                    }
                }
                Some(_) => run = 0,
                None => match dir {
                    DirRef::FixedRoot => return Err(FatError::DirectoryFull),
                    DirRef::Chain(first) => {
                        self.extend_directory(first)?;
                        continue;
                    }
                },
            }
            slot += 1;
        }
    }

    fn extend_directory(&self, first: u32) -> Result<(), FatError> {
        let length = self.chain_length(first, self.max_dir_clusters())?;
        if length >= self.max_dir_clusters() {
            return Err(FatError::DirectoryFull);
        }
        let hint = Cell::new((0, 0));
        let last = self
            .cluster_at(first, length - 1, &hint)?
            .ok_or(FatError::ChainTooShort {
                first,
                clusters: length,
            })?;
        let new = self.allocate(1, Some(last))?;
        self.sync_fat()?;
        self.zero_cluster(new)
    }

    /// Zeroes a cluster through the cache, so no stale copy of it survives.
    pub(crate) fn zero_cluster(&self, cluster: u32) -> Result<(), FatError> {
        let first = self.geo.cluster_sector(cluster);
        for sector in first..first + self.geo.sectors_per_cluster {
            self.update_sector(sector, |s| s.fill(0))?;
        }
        Ok(())
    }

    /// Adds an entry named `name` to `dir`: long-name entries (when the name
    /// is not a plain upper-case 8.3 name) then the short entry `template`
    /// with its name set to a unique alias. The short entry is written last.
    /// `replacing` is an entry of the same file that is about to go (rename).
    pub(crate) fn insert_entry(
        &self,
        dir: DirRef,
        name: &str,
        mut template: [u8; ENTRY_SIZE],
        replacing: Option<u32>,
    ) -> Result<EntryLocation, FatError> {
        let units = to_ucs2(name)?;
        let mut taken = Vec::new();
        let mut cursor = DirCursor::new();
        while let Some(entry) = self.next_entry(dir, &mut cursor, true)? {
            let is_label = entry.attributes.contains(Attributes::VOLUME_ID);
            let same_name = names_equal(&entry.name, name) || names_equal(&entry.short_name, name);
            if !is_label && same_name && replacing != Some(entry.location.short_slot) {
                return Err(FatError::AlreadyExists(name.into()));
            }
            taken.push(entry.raw_name);
        }
        let (short, long_entries) = match exact_short(name) {
            Some(short) => (short, 0),
            None => (
                generate_alias(name, &taken)?,
                units.len().div_ceil(UNITS_PER_ENTRY) as u32,
            ),
        };
        let start = self.find_free_slots(dir, long_entries + 1)?;
        let checksum = lfn_checksum(&short);
        for i in 0..long_entries {
            let ordinal = long_entries - i;
            let base = (ordinal as usize - 1) * UNITS_PER_ENTRY;
            self.update_slot(dir, start + i, |e| {
                e.fill(0);
                e[0] = ordinal as u8 | if i == 0 { LAST_LONG_ENTRY } else { 0 };
                e[11] = ATTR_LONG_NAME;
                e[13] = checksum;
                for (k, &off) in UNIT_OFFSETS.iter().enumerate() {
                    // The name ends with one NUL and is padded with 0xFFFF.
                    let unit = match units.get(base + k) {
                        Some(&u) => u,
                        None if base + k == units.len() => 0,
                        None => 0xFFFF,
                    };
                    e[off..off + 2].copy_from_slice(&unit.to_le_bytes());
                }
            })?;
        }
        template[..11].copy_from_slice(&short);
        template[12] = 0;
        let short_slot = start + long_entries;
        self.update_slot(dir, short_slot, |e| e.copy_from_slice(&template))?;
        Ok(EntryLocation {
            parent: dir,
            first_slot: start,
            short_slot,
        })
    }

    /// Places a complete short entry (a volume label) in the first free slot.
    pub(crate) fn insert_raw_entry(
        &self,
        dir: DirRef,
        raw: [u8; ENTRY_SIZE],
    ) -> Result<(), FatError> {
        let slot = self.find_free_slots(dir, 1)?;
        self.update_slot(dir, slot, |e| e.copy_from_slice(&raw))
    }

    /// Marks every entry of a file deleted, the short entry first so a crash
    /// leaves at worst orphaned long-name entries.
    pub(crate) fn remove_entry(&self, location: &EntryLocation) -> Result<(), FatError> {
        self.update_slot(location.parent, location.short_slot, |e| e[0] = DELETED)?;
        for slot in location.first_slot..location.short_slot {
            self.update_slot(location.parent, slot, |e| e[0] = DELETED)?;
        }
        Ok(())
    }

    /// Writes "." and ".." into a freshly zeroed directory cluster.
    pub(crate) fn init_directory(
        &self,
        cluster: u32,
        parent: DirRef,
        now: DateTime,
    ) -> Result<(), FatError> {
        self.zero_cluster(cluster)?;
        let parent_cluster = match parent {
            DirRef::Chain(c) if c != self.geo.root_cluster => c,
            _ => 0,
        };
        let mut dot = new_short_entry(Attributes::DIRECTORY, cluster, now);
        dot[..11].copy_from_slice(&DOT);
        let mut dotdot = new_short_entry(Attributes::DIRECTORY, parent_cluster, now);
        dotdot[..11].copy_from_slice(&DOTDOT);
        let dir = DirRef::Chain(cluster);
        self.update_slot(dir, 0, |e| e.copy_from_slice(&dot))?;
        self.update_slot(dir, 1, |e| e.copy_from_slice(&dotdot))
    }

    /// The parent of subdirectory `cluster`, from its ".." entry, as a
    /// directory reference plus the entry that names `cluster` there.
    pub(crate) fn find_parent_entry(&self, cluster: u32) -> Result<(DirRef, DirEntry), FatError> {
        let hint = Cell::new((0, 0));
        let dotdot = self
            .read_slot(DirRef::Chain(cluster), 1, &hint)?
            .filter(|raw| raw[..11] == DOTDOT)
            .ok_or(FatError::DirectoryLoop(cluster))?;
        let parent = match entry_cluster(&dotdot, self.geo.root_cluster != 0) {
            0 => self.root_dir(),
            c if c == cluster => return Err(FatError::DirectoryLoop(cluster)),
            c => DirRef::Chain(c),
        };
        let mut cursor = DirCursor::new();
        while let Some(entry) = self.next_entry(parent, &mut cursor, false)? {
            if entry.is_dir() && !entry.is_dot() && entry.first_cluster == cluster {
                return Ok((parent, entry));
            }
        }
        Err(FatError::DirectoryLoop(cluster))
    }
}
