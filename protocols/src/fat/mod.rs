//! Read-write FAT12/16/32 file system over any `BlockDevice`, backing
//! EFI_SIMPLE_FILE_SYSTEM_PROTOCOL and EFI_FILE_PROTOCOL (UEFI 2.10 §13.4,
//! §13.5; on-disk format per the Microsoft FAT specification, which UEFI 2.10
//! §13.3 adopts).
//!
//! Every method takes `&self`: many EFI file handles share one mounted volume,
//! so the caches live in `RefCell`/`Cell`. A `Node` is the plain state of one
//! open file or directory; it borrows nothing from the volume.
//!
//! Crash safety follows the usual FAT order: clusters are allocated and all
//! FAT copies written first, then file data, then the directory entry (the
//! commit point). Shrinking does the reverse.
#![forbid(unsafe_code)]

mod bpb;
mod dir;
mod file;
mod name;
mod table;
#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;

use platform::block::{BlockDevice, BlockError};

pub use bpb::FatType;
pub use dir::{DirCursor, DirEntry};
pub use name::DateTime;

use bpb::Geometry;
use dir::{DirRef, EntryLocation, new_short_entry};
use table::SectorCache;

bitflags::bitflags! {
    /// Directory entry attributes (Microsoft FAT specification, DIR_Attr);
    /// the same bits as EFI_FILE_INFO.Attribute (UEFI 2.10 §13.5.16).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Attributes: u8 {
        const READ_ONLY = 0x01;
        const HIDDEN = 0x02;
        const SYSTEM = 0x04;
        const VOLUME_ID = 0x08;
        const DIRECTORY = 0x10;
        const ARCHIVE = 0x20;
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FatError {
    Device(BlockError),
    /// A boot-sector field is invalid.
    BadBpb {
        field: &'static str,
        value: u64,
    },
    /// The FAT sector size is not a multiple of the device block size.
    UnsupportedBlockSize {
        sector: u32,
        block: u32,
    },
    ClusterOutOfRange(u32),
    FreeClusterInChain(u32),
    BadClusterInChain(u32),
    /// A chain walk went on longer than the volume has clusters.
    ChainLoop(u32),
    /// A chain runs on past what its size allows (a loop or a size mismatch).
    ChainTooLong {
        first: u32,
        limit: u32,
    },
    /// A chain ends before covering the file size.
    ChainTooShort {
        first: u32,
        clusters: u32,
    },
    DirectoryTooLarge(u32),
    /// Directory at this cluster does not link back to its parent.
    DirectoryLoop(u32),
    DirectoryFull,
    NotFound(String),
    AlreadyExists(String),
    NotADirectory,
    IsADirectory,
    DirectoryNotEmpty,
    InvalidName(char),
    NameTooLong(usize),
    NoSpace,
    FileTooLarge(u64),
    ReadOnly,
    AccessDenied(&'static str),
    /// No memory for a buffer of this many bytes (or `test-alloc-fail=fat`).
    OutOfMemory(usize),
}

/// A zeroed buffer of `len` bytes for the driver's sector I/O, allocated
/// fallibly: a failure is [`FatError::OutOfMemory`] (the volume or the
/// access fails with EFI_OUT_OF_RESOURCES), never a panic. The
/// `test-alloc-fail=fat` switch makes every such allocation fail.
pub(crate) fn buffer(len: usize) -> Result<Vec<u8>, FatError> {
    if platform::forced_failure::forced(platform::forced_failure::Site::Fat) {
        return Err(FatError::OutOfMemory(len));
    }
    let mut data = Vec::new();
    data.try_reserve_exact(len)
        .map_err(|_| FatError::OutOfMemory(len))?;
    data.resize(len, 0);
    Ok(data)
}

impl From<BlockError> for FatError {
    fn from(e: BlockError) -> Self {
        FatError::Device(e)
    }
}

impl fmt::Display for FatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FatError::Device(e) => write!(f, "device: {e}"),
            FatError::BadBpb { field, value } => {
                write!(f, "invalid boot sector field {field} = {value:#x}")
            }
            FatError::UnsupportedBlockSize { sector, block } => {
                write!(
                    f,
                    "FAT sector size {sector} does not fit device block size {block}"
                )
            }
            FatError::ClusterOutOfRange(c) => write!(f, "cluster {c:#x} out of range"),
            FatError::FreeClusterInChain(c) => {
                write!(f, "chain runs into free cluster after {c:#x}")
            }
            FatError::BadClusterInChain(c) => {
                write!(f, "chain runs into a bad cluster after {c:#x}")
            }
            FatError::ChainLoop(c) => write!(f, "cluster chain from {c:#x} loops"),
            FatError::ChainTooLong { first, limit } => {
                write!(
                    f,
                    "cluster chain from {first:#x} is longer than {limit} clusters"
                )
            }
            FatError::ChainTooShort { first, clusters } => {
                write!(
                    f,
                    "cluster chain from {first:#x} ends after {clusters} clusters"
                )
            }
            FatError::DirectoryTooLarge(slot) => write!(f, "directory exceeds {slot} entries"),
            FatError::DirectoryLoop(c) => write!(
                f,
                "directory at cluster {c:#x} does not link back to its parent"
            ),
            FatError::DirectoryFull => write!(f, "directory is full"),
            FatError::OutOfMemory(len) => write!(f, "no memory for a buffer of {len} bytes"),
            FatError::NotFound(name) => write!(f, "{name} not found"),
            FatError::AlreadyExists(name) => write!(f, "{name} already exists"),
            FatError::NotADirectory => write!(f, "not a directory"),
            FatError::IsADirectory => write!(f, "is a directory"),
            FatError::DirectoryNotEmpty => write!(f, "directory not empty"),
            FatError::InvalidName(c) => write!(f, "invalid character {c:?} in file name"),
            FatError::NameTooLong(n) => write!(f, "file name of {n} characters is too long"),
            FatError::NoSpace => write!(f, "volume full"),
            FatError::FileTooLarge(n) => write!(f, "file size {n} exceeds 4 GiB - 1"),
            FatError::ReadOnly => write!(f, "volume is read-only"),
            FatError::AccessDenied(why) => write!(f, "access denied: {why}"),
        }
    }
}

/// One open file or directory: where its entry is and what it said.
#[derive(Clone, Debug)]
pub struct Node {
    first_cluster: u32,
    size: u32,
    attributes: Attributes,
    /// None for the root directory, which has no entry.
    location: Option<EntryLocation>,
    /// The 8.3 name in the entry at `location`: with the first cluster, what
    /// tells this file's entry from another that took its slot later.
    short_name: [u8; 11],
    name: String,
    /// (cluster index, cluster) of the last chain lookup, for sequential I/O.
    hint: Cell<(u32, u32)>,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.attributes.contains(Attributes::DIRECTORY)
    }

    pub fn is_root(&self) -> bool {
        self.location.is_none()
    }

    pub fn size(&self) -> u64 {
        u64::from(self.size)
    }

    pub fn attributes(&self) -> Attributes {
        self.attributes
    }

    /// The name the node was opened by ("" for the root).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn dir_ref(&self) -> DirRef {
        if self.first_cluster == 0 {
            DirRef::FixedRoot
        } else {
            DirRef::Chain(self.first_cluster)
        }
    }
}

/// Metadata of a node as EFI_FILE_INFO needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub size: u64,
    /// Bytes of clusters allocated to the file.
    pub allocated: u64,
    pub attributes: Attributes,
    pub created: DateTime,
    pub modified: DateTime,
    pub accessed: DateTime,
}

pub struct FileSystem<D: BlockDevice> {
    dev: D,
    geo: Geometry,
    /// Device blocks per FAT sector.
    blocks_per_sector: u32,
    read_only: bool,
    cache: RefCell<SectorCache>,
    free_clusters: Cell<Option<u32>>,
    next_free: Cell<u32>,
    fsinfo_sector: Option<u32>,
    clock: Cell<fn() -> DateTime>,
}

fn epoch() -> DateTime {
    DateTime::EPOCH
}

/// Splits `a\b\c` into (`a\b\`, `c`), ignoring trailing separators.
fn split_last(path: &str) -> (&str, &str) {
    let trimmed = path.trim_end_matches(['\\', '/']);
    match trimmed.rfind(['\\', '/']) {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    }
}

impl<D: BlockDevice> FileSystem<D> {
    /// Validates the boot sector and mounts the volume.
    pub fn mount(dev: D) -> Result<Self, FatError> {
        let block = dev.block_size();
        if !(512..=4096).contains(&block) || !block.is_power_of_two() {
            return Err(FatError::UnsupportedBlockSize { sector: 0, block });
        }
        let mut boot = buffer(block as usize)?;
        if dev.num_blocks() == 0 {
            return Err(FatError::BadBpb {
                field: "volume size",
                value: 0,
            });
        }
        dev.read_blocks(0, &mut boot)?;
        let volume_bytes = dev.num_blocks().saturating_mul(block.into());
        let geo = Geometry::parse(&boot, volume_bytes)?;
        if geo.bytes_per_sector % block != 0 {
            return Err(FatError::UnsupportedBlockSize {
                sector: geo.bytes_per_sector,
                block,
            });
        }
        let mut fs = FileSystem {
            blocks_per_sector: geo.bytes_per_sector / block,
            read_only: dev.read_only(),
            dev,
            cache: RefCell::new(SectorCache::default()),
            free_clusters: Cell::new(None),
            next_free: Cell::new(2),
            fsinfo_sector: None,
            clock: Cell::new(epoch),
            geo,
        };
        fs.load_fsinfo()?;
        if let DirRef::Chain(root) = fs.root_dir() {
            fs.chain_length(root, fs.max_dir_clusters())?;
        }
        Ok(fs)
    }

    /// Sets the source of timestamps for new and modified entries.
    pub fn set_clock(&self, clock: fn() -> DateTime) {
        self.clock.set(clock);
    }

    fn now(&self) -> DateTime {
        (self.clock.get())()
    }

    pub fn fat_type(&self) -> FatType {
        self.geo.fat_type
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub fn device(&self) -> &D {
        &self.dev
    }

    pub fn cluster_size(&self) -> u32 {
        self.geo.cluster_bytes()
    }

    fn check_writable(&self) -> Result<(), FatError> {
        if self.read_only {
            Err(FatError::ReadOnly)
        } else {
            Ok(())
        }
    }

    pub fn root(&self) -> Node {
        Node {
            first_cluster: self.geo.root_cluster,
            size: 0,
            attributes: Attributes::DIRECTORY,
            location: None,
            short_name: [0; 11],
            name: String::new(),
            hint: Cell::new((0, 0)),
        }
    }

    /// Turns a directory entry into a node, validating its chain against its
    /// size (files) or its "." and ".." entries (directories).
    fn node_from_entry(&self, entry: DirEntry) -> Result<Node, FatError> {
        let first = entry.first_cluster;
        if entry.is_dir() {
            if !self.geo.cluster_in_range(first) {
                return Err(FatError::ClusterOutOfRange(first));
            }
            self.check_dot_entries(first, entry.location.parent)?;
        } else {
            let needed = entry.size.div_ceil(self.geo.cluster_bytes());
            if needed == 0 {
                if first != 0 {
                    return Err(FatError::ChainTooLong { first, limit: 0 });
                }
            } else {
                let length = self.chain_length(first, needed)?;
                if length < needed {
                    return Err(FatError::ChainTooShort {
                        first,
                        clusters: length,
                    });
                }
            }
        }
        Ok(Node {
            first_cluster: first,
            size: if entry.is_dir() { 0 } else { entry.size },
            attributes: entry.attributes,
            location: Some(entry.location),
            short_name: entry.raw_name,
            name: entry.name,
            hint: Cell::new((0, 0)),
        })
    }

    /// The directory node for `dir`, found through its parent.
    fn dir_node(&self, dir: DirRef) -> Result<Node, FatError> {
        match dir {
            DirRef::Chain(c) if c != self.geo.root_cluster => {
                let (_, entry) = self.find_parent_entry(c)?;
                self.node_from_entry(entry)
            }
            _ => Ok(self.root()),
        }
    }

    /// Opens `path` relative to `base` (absolute when it starts with `\`).
    /// Separators are `\` or `/`; `.` and `..` are honoured; lookup is
    /// case-insensitive on long and short names.
    pub fn open(&self, base: &Node, path: &str) -> Result<Node, FatError> {
        let mut node = if path.starts_with(['\\', '/']) {
            self.root()
        } else {
            base.clone()
        };
        for part in path.split(['\\', '/']) {
            match part {
                "" | "." => {}
                ".." => {
                    node = match node.location {
                        Some(location) => self.dir_node(location.parent)?,
                        None => self.root(),
                    }
                }
                _ => {
                    if !node.is_dir() {
                        return Err(FatError::NotADirectory);
                    }
                    let entry = self
                        .find_entry(node.dir_ref(), part)?
                        .ok_or_else(|| FatError::NotFound(part.into()))?;
                    node = self.node_from_entry(entry)?;
                }
            }
        }
        Ok(node)
    }

    /// Creates a file or directory at `path` (relative to `base`).
    pub fn create(&self, base: &Node, path: &str, directory: bool) -> Result<Node, FatError> {
        self.check_writable()?;
        let (parent_path, name) = split_last(path);
        let parent = self.open(base, parent_path)?;
        if !parent.is_dir() {
            return Err(FatError::NotADirectory);
        }
        if name == "." || name == ".." || name.is_empty() {
            return Err(FatError::InvalidName('.'));
        }
        if self.find_entry(parent.dir_ref(), name)?.is_some() {
            return Err(FatError::AlreadyExists(name.into()));
        }
        let now = self.now();
        let (attributes, cluster) = if directory {
            let cluster = self.allocate(1, None)?;
            self.sync_fat()?;
            self.init_directory(cluster, parent.dir_ref(), now)?;
            (Attributes::DIRECTORY, cluster)
        } else {
            (Attributes::ARCHIVE, 0)
        };
        let template = new_short_entry(attributes, cluster, now);
        let location = match self.insert_entry(parent.dir_ref(), name, template, None) {
            Ok(location) => location,
            Err(e) => {
                if cluster != 0 && self.free_chain(cluster).is_ok() {
                    let _ = self.sync_fat();
                }
                return Err(e);
            }
        };
        let short_name = self.short_name_at(&location)?;
        Ok(Node {
            first_cluster: cluster,
            size: 0,
            attributes,
            short_name,
            location: Some(location),
            name: name.into(),
            hint: Cell::new((0, 0)),
        })
    }

    /// Deletes a file or an empty directory: entries first, then its clusters.
    pub fn delete(&self, node: Node) -> Result<(), FatError> {
        self.check_writable()?;
        let location = node.location.ok_or(FatError::AccessDenied(
            "the root directory cannot be deleted",
        ))?;
        if node.is_dir() {
            let mut cursor = DirCursor::new();
            while let Some(entry) = self.next_entry(node.dir_ref(), &mut cursor, false)? {
                if !entry.is_dot() {
                    return Err(FatError::DirectoryNotEmpty);
                }
            }
        }
        self.remove_entry(&location)?;
        if node.first_cluster != 0 {
            self.free_chain(node.first_cluster)?;
            self.sync_fat()?;
        }
        Ok(())
    }

    /// Whether `node`'s directory entry is gone: deleted (or moved by a
    /// rename) through another handle since `node` was opened. Its slot then
    /// reads as free, or as an entry of another file (another 8.3 name, first
    /// cluster or kind). Writing through such a node would resurrect a deleted
    /// entry or
    /// overwrite another file's, so callers refuse (UEFI 2.10 §13.5.5/§13.5.6
    /// EFI_DEVICE_ERROR for a deleted file).
    pub fn is_deleted(&self, node: &Node) -> Result<bool, FatError> {
        let Some(location) = node.location else {
            return Ok(false);
        };
        let hint = Cell::new((0, 0));
        let Some(raw) = self.read_slot(location.parent, location.short_slot, &hint)? else {
            return Ok(true);
        };
        let free = raw[0] == 0 || raw[0] == dir::DELETED;
        let fat32 = self.geo.root_cluster != 0;
        let is_dir = Attributes::from_bits_truncate(raw[11]).contains(Attributes::DIRECTORY);
        let other_file = raw[..11] != node.short_name
            || dir::entry_cluster(&raw, fat32) != node.first_cluster
            || is_dir != node.is_dir();
        Ok(free || other_file)
    }

    /// Renames within the same directory: the new entries are written, then
    /// the old ones removed.
    pub fn rename(&self, node: &mut Node, new_name: &str) -> Result<(), FatError> {
        self.check_writable()?;
        let location = node.location.ok_or(FatError::AccessDenied(
            "the root directory cannot be renamed",
        ))?;
        if new_name.contains(['\\', '/']) {
            return Err(FatError::InvalidName('\\'));
        }
        let hint = Cell::new((0, 0));
        let template = self
            .read_slot(location.parent, location.short_slot, &hint)?
            .ok_or(FatError::DirectoryTooLarge(location.short_slot))?;
        let new_location = self.insert_entry(
            location.parent,
            new_name,
            template,
            Some(location.short_slot),
        )?;
        self.remove_entry(&location)?;
        node.short_name = self.short_name_at(&new_location)?;
        node.location = Some(new_location);
        node.name = new_name.into();
        Ok(())
    }

    /// The 8.3 name stored in the short entry at `location`.
    fn short_name_at(&self, location: &EntryLocation) -> Result<[u8; 11], FatError> {
        let hint = Cell::new((0, 0));
        let raw = self
            .read_slot(location.parent, location.short_slot, &hint)?
            .ok_or(FatError::DirectoryTooLarge(location.short_slot))?;
        let mut name = [0u8; 11];
        name.copy_from_slice(&raw[..11]);
        Ok(name)
    }

    /// The next entry of directory `dir` ("." and ".." included, volume label
    /// excluded), or None at the end.
    pub fn read_dir(
        &self,
        dir: &Node,
        cursor: &mut DirCursor,
    ) -> Result<Option<DirEntry>, FatError> {
        if !dir.is_dir() {
            return Err(FatError::NotADirectory);
        }
        self.next_entry(dir.dir_ref(), cursor, false)
    }

    pub fn metadata(&self, node: &Node) -> Result<Metadata, FatError> {
        let cluster = u64::from(self.geo.cluster_bytes());
        let Some(location) = node.location else {
            return Ok(Metadata {
                size: 0,
                allocated: 0,
                attributes: Attributes::DIRECTORY,
                created: DateTime::EPOCH,
                modified: DateTime::EPOCH,
                accessed: DateTime::EPOCH,
            });
        };
        // Re-read the entry itself for the timestamps.
        let mut cursor = DirCursor::at(location.first_slot);
        let entry = self
            .next_entry(location.parent, &mut cursor, false)?
            .ok_or(FatError::NotFound(node.name.clone()))?;
        let allocated = if node.is_dir() {
            u64::from(self.chain_length(node.first_cluster, self.max_dir_clusters())?) * cluster
        } else {
            node.size().div_ceil(cluster) * cluster
        };
        Ok(Metadata {
            size: node.size(),
            allocated,
            attributes: node.attributes,
            created: entry.created,
            modified: entry.modified,
            accessed: entry.accessed,
        })
    }

    /// Changes the short entry of `node` in place (write-through).
    fn update_entry(&self, node: &Node, f: impl FnOnce(&mut [u8])) -> Result<(), FatError> {
        match node.location {
            Some(location) => self.update_slot(location.parent, location.short_slot, f),
            None => Ok(()),
        }
    }

    /// Sets the changeable attribute bits (read-only, hidden, system, archive).
    pub fn set_attributes(&self, node: &mut Node, attributes: Attributes) -> Result<(), FatError> {
        self.check_writable()?;
        if node.is_root() {
            return Err(FatError::AccessDenied(
                "the root directory has no attributes",
            ));
        }
        let fixed = node.attributes & (Attributes::DIRECTORY | Attributes::VOLUME_ID);
        let changeable =
            Attributes::READ_ONLY | Attributes::HIDDEN | Attributes::SYSTEM | Attributes::ARCHIVE;
        let new = fixed | (attributes & changeable);
        self.update_entry(node, |e| e[11] = new.bits())?;
        node.attributes = new;
        Ok(())
    }

    /// Sets any of the three timestamps.
    pub fn set_times(
        &self,
        node: &Node,
        created: Option<DateTime>,
        modified: Option<DateTime>,
        accessed: Option<DateTime>,
    ) -> Result<(), FatError> {
        self.check_writable()?;
        self.update_entry(node, |e| {
            if let Some(t) = created {
                let (date, time) = t.to_fat();
                e[13] = t.second % 2 * 100;
                e[14..16].copy_from_slice(&time.to_le_bytes());
                e[16..18].copy_from_slice(&date.to_le_bytes());
            }
            if let Some(t) = modified {
                let (date, time) = t.to_fat();
                e[22..24].copy_from_slice(&time.to_le_bytes());
                e[24..26].copy_from_slice(&date.to_le_bytes());
            }
            if let Some(t) = accessed {
                e[18..20].copy_from_slice(&t.to_fat().0.to_le_bytes());
            }
        })
    }

    /// Volume size in bytes (the data area).
    pub fn total_bytes(&self) -> u64 {
        u64::from(self.geo.cluster_count) * u64::from(self.geo.cluster_bytes())
    }

    pub fn free_bytes(&self) -> Result<u64, FatError> {
        Ok(u64::from(self.free_cluster_count()?) * u64::from(self.geo.cluster_bytes()))
    }

    /// The volume label: the root directory's label entry, else the boot
    /// sector's BS_VolLab; "NO NAME" means none.
    pub fn volume_label(&self) -> Result<String, FatError> {
        if let Some(entry) = self.find_label()? {
            return Ok(entry.name);
        }
        let Some(offset) = self.geo.label_offset else {
            return Ok(String::new());
        };
        let label = self.with_sector(0, |s| {
            String::from_utf8_lossy(&s[offset..offset + 11])
                .trim_end()
                .into()
        })?;
        Ok(if label == "NO NAME" {
            String::new()
        } else {
            label
        })
    }

    fn find_label(&self) -> Result<Option<DirEntry>, FatError> {
        let mut cursor = DirCursor::new();
        while let Some(entry) = self.next_entry(self.root_dir(), &mut cursor, true)? {
            if entry.attributes.contains(Attributes::VOLUME_ID) {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// Sets (or with "" removes) the volume label, in the root directory and
    /// the boot sector. Labels are upper-cased 8.3-style characters, at most 11.
    pub fn set_volume_label(&self, label: &str) -> Result<(), FatError> {
        self.check_writable()?;
        let mut raw = [b' '; 11];
        if label.chars().count() > 11 {
            return Err(FatError::NameTooLong(label.chars().count()));
        }
        for (i, c) in label.chars().enumerate() {
            let c = c.to_ascii_uppercase();
            if !c.is_ascii() || c < ' ' || "\"*+,./:;<=>?[\\]|".contains(c) {
                return Err(FatError::InvalidName(c));
            }
            raw[i] = c as u8;
        }
        let existing = self.find_label()?;
        if label.is_empty() {
            if let Some(entry) = existing {
                self.remove_entry(&entry.location)?;
            }
        } else if let Some(entry) = existing {
            self.update_slot(entry.location.parent, entry.location.short_slot, |e| {
                e[..11].copy_from_slice(&raw)
            })?;
        } else {
            // A label entry has no long name; place it like an 8.3 entry.
            let mut template = new_short_entry(Attributes::VOLUME_ID, 0, self.now());
            template[..11].copy_from_slice(&raw);
            self.insert_raw_entry(self.root_dir(), template)?;
        }
        if let Some(offset) = self.geo.label_offset {
            let boot = if label.is_empty() {
                *b"NO NAME    "
            } else {
                raw
            };
            // FAT32 keeps a backup boot sector that fsck compares against.
            for sector in core::iter::once(0).chain(self.geo.backup_boot_sector) {
                self.update_sector(sector, |s| s[offset..offset + 11].copy_from_slice(&boot))?;
            }
        }
        Ok(())
    }
}
