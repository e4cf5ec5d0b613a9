//! Partition discovery (UEFI 2.10 §5): reads a disk through [`BlockDevice`]
//! and lists its partitions, from a GPT (§5.3) when a protective MBR says so,
//! otherwise from a legacy MBR with its extended-partition chain (§5.2.1).
//!
//! Invalid entries are logged and skipped; the valid ones are kept, so one
//! bad entry does not hide the rest of the disk.
#![forbid(unsafe_code)]

pub mod eltorito;
pub mod gpt;
pub mod mbr;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use platform::block::{BlockDevice, BlockError};
use uefi_raw::Guid;

/// One partition. LBAs are in the device's logical blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// 1-based: GPT entry index + 1; MBR slot 1..=4, logical partitions from 5.
    pub number: u32,
    pub start_lba: u64,
    /// Inclusive.
    pub end_lba: u64,
    pub kind: PartitionKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    Gpt(GptPartition),
    Mbr(MbrPartition),
    ElTorito(ElToritoImage),
}

/// A boot image of a CD-ROM's El Torito catalog ([`eltorito`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElToritoImage {
    /// The CD-ROM device path node's BootEntry (UEFI 2.10 §10.3.5.2).
    pub boot_entry: u32,
    /// 0xEF for EFI images (`eltorito::PLATFORM_EFI`).
    pub platform_id: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GptPartition {
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub attributes: u64,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MbrPartition {
    pub os_type: u8,
    /// The 32-bit unique MBR disk signature (offset 440).
    pub disk_signature: u32,
    pub bootable: bool,
    /// Found through the extended-partition (EBR) chain.
    pub logical: bool,
}

/// UEFI 2.10 §10.3.5.1 HardDrive node `PartitionFormat` values.
pub const PARTITION_FORMAT_MBR: u8 = 0x01;
pub const PARTITION_FORMAT_GPT: u8 = 0x02;
/// UEFI 2.10 §10.3.5.1 HardDrive node `SignatureType` values.
pub const SIGNATURE_TYPE_NONE: u8 = 0x00;
pub const SIGNATURE_TYPE_MBR: u8 = 0x01;
pub const SIGNATURE_TYPE_GUID: u8 = 0x02;

/// The fields of a HardDrive media device-path node (UEFI 2.10 §10.3.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HardDriveInfo {
    pub partition_number: u32,
    pub partition_start: u64,
    pub partition_size: u64,
    /// GUID bytes for GPT; the MBR disk signature in the first 4 bytes (LE) for MBR.
    pub signature: [u8; 16],
    pub partition_format: u8,
    pub signature_type: u8,
}

/// GPT partition attribute bit 1, "No Block IO Protocol" (UEFI 2.10
/// Table 5-8): firmware must not produce a Block I/O device for it.
pub const GPT_ATTRIBUTE_NO_BLOCK_IO: u64 = 1 << 1;

impl Partition {
    /// Whether the firmware may publish this partition as a Block I/O
    /// device: every MBR partition, a GPT one unless its attribute bit 1 is
    /// set (UEFI 2.10 Table 5-8).
    pub fn wants_block_io(&self) -> bool {
        match &self.kind {
            PartitionKind::Gpt(gpt) => gpt.attributes & GPT_ATTRIBUTE_NO_BLOCK_IO == 0,
            PartitionKind::Mbr(_) | PartitionKind::ElTorito(_) => true,
        }
    }

    /// Number of blocks (end is inclusive, and validated `>= start`).
    pub fn size_in_blocks(&self) -> u64 {
        self.end_lba
            .saturating_sub(self.start_lba)
            .saturating_add(1)
    }

    /// The media device path node naming this partition below its disk
    /// (UEFI 2.10 §10.3.5.1 HardDrive, §10.3.5.2 CD-ROM).
    pub fn media_node(&self) -> MediaNode {
        let mut signature = [0u8; 16];
        let (partition_format, signature_type) = match &self.kind {
            PartitionKind::Gpt(gpt) => {
                signature = gpt.unique_guid.to_bytes();
                (PARTITION_FORMAT_GPT, SIGNATURE_TYPE_GUID)
            }
            PartitionKind::Mbr(mbr) => {
                signature[..4].copy_from_slice(&mbr.disk_signature.to_le_bytes());
                (PARTITION_FORMAT_MBR, SIGNATURE_TYPE_MBR)
            }
            PartitionKind::ElTorito(image) => {
                return MediaNode::CdRom {
                    boot_entry: image.boot_entry,
                    partition_start: self.start_lba,
                    partition_size: self.size_in_blocks(),
                };
            }
        };
        MediaNode::HardDrive(HardDriveInfo {
            partition_number: self.number,
            partition_start: self.start_lba,
            partition_size: self.size_in_blocks(),
            signature,
            partition_format,
            signature_type,
        })
    }
}

/// A partition's media device path node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaNode {
    HardDrive(HardDriveInfo),
    CdRom {
        boot_entry: u32,
        partition_start: u64,
        partition_size: u64,
    },
}

/// Which table described the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Gpt {
        disk_guid: Guid,
        /// The backup header had to be used because the primary was invalid.
        used_backup: bool,
    },
    Mbr {
        disk_signature: u32,
    },
    /// A CD-ROM's (or ISO image's) El Torito boot catalog at this CD sector.
    ElTorito {
        catalog_rba: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionTable {
    pub scheme: Scheme,
    /// Valid partitions, in table order.
    pub partitions: Vec<Partition>,
    /// Entries that were skipped, with the reason (also logged).
    pub rejected: Vec<PartitionError>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionError {
    Io(BlockError),
    /// Partition tables need blocks of at least 512 bytes.
    BlockSizeTooSmall(u32),
    /// LBA 0 does not end in 0x55AA: no MBR and no protective MBR.
    NoBootSignature(u16),
    /// GPT header at this LBA lacks "EFI PART".
    GptBadSignature {
        lba: u64,
    },
    GptBadRevision(u32),
    GptBadHeaderSize(u32),
    GptHeaderCrc {
        lba: u64,
        stored: u32,
        computed: u32,
    },
    /// MyLBA in the header does not name the block it was read from.
    GptMyLbaMismatch {
        lba: u64,
        my_lba: u64,
    },
    GptBadUsableRange {
        first: u64,
        last: u64,
    },
    GptBadEntrySize(u32),
    GptTooManyEntries(u32),
    /// The entry array starting here leaves the disk or overlaps a header or the usable area.
    GptBadEntryArray {
        lba: u64,
    },
    GptEntriesCrc {
        stored: u32,
        computed: u32,
    },
    /// Neither the primary nor the backup table is usable (each failure is logged).
    GptNoValidHeader,
    PartitionEndBeforeStart {
        number: u32,
        start: u64,
        end: u64,
    },
    /// Partition reaches past the disk (or past the GPT usable area / extended partition).
    PartitionOutOfRange {
        number: u32,
        start: u64,
        end: u64,
        limit: u64,
    },
    /// Partition overlaps the earlier partition `other`.
    PartitionOverlap {
        number: u32,
        other: u32,
    },
    /// EBR chain revisits this LBA.
    EbrLoop {
        lba: u64,
    },
    /// No heap for a buffer of this many bytes (a block, the GPT entry
    /// array): the disk is not partitioned, EFI_OUT_OF_RESOURCES.
    OutOfMemory(usize),
    /// EBR chain longer than [`mbr::MAX_LOGICAL_PARTITIONS`].
    EbrChainTooLong(usize),
    /// An EBR or logical partition lies outside its extended partition.
    EbrOutOfRange {
        lba: u64,
    },
    /// An EBR lacks 0x55AA.
    EbrBadSignature {
        lba: u64,
    },
    /// The El Torito boot record names a catalog (at this CD sector) that
    /// is missing or fails its validation entry.
    ElToritoBadCatalog {
        rba: u64,
    },
}

impl From<BlockError> for PartitionError {
    fn from(error: BlockError) -> Self {
        PartitionError::Io(error)
    }
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PartitionError::*;
        match self {
            Io(e) => write!(f, "I/O error: {e}"),
            BlockSizeTooSmall(size) => write!(f, "block size {size} is below 512"),
            NoBootSignature(sig) => write!(f, "LBA 0 signature {sig:#06x} is not 0xaa55"),
            GptBadSignature { lba } => write!(f, "no GPT signature at LBA {lba}"),
            GptBadRevision(rev) => write!(f, "unsupported GPT revision {rev:#010x}"),
            GptBadHeaderSize(size) => write!(f, "bad GPT header size {size}"),
            GptHeaderCrc {
                lba,
                stored,
                computed,
            } => write!(
                f,
                "GPT header at LBA {lba}: CRC32 {stored:#010x} != computed {computed:#010x}"
            ),
            GptMyLbaMismatch { lba, my_lba } => {
                write!(f, "GPT header at LBA {lba} claims to be at LBA {my_lba}")
            }
            GptBadUsableRange { first, last } => {
                write!(f, "bad GPT usable range {first}..={last}")
            }
            GptBadEntrySize(size) => write!(f, "bad GPT entry size {size}"),
            GptTooManyEntries(count) => write!(f, "too many GPT entries ({count})"),
            OutOfMemory(bytes) => write!(f, "no memory for a buffer of {bytes} bytes"),
            GptBadEntryArray { lba } => write!(f, "GPT entry array at LBA {lba} is misplaced"),
            GptEntriesCrc { stored, computed } => write!(
                f,
                "GPT entry array CRC32 {stored:#010x} != computed {computed:#010x}"
            ),
            GptNoValidHeader => write!(f, "neither primary nor backup GPT is valid"),
            PartitionEndBeforeStart { number, start, end } => {
                write!(f, "partition {number}: end {end} before start {start}")
            }
            PartitionOutOfRange {
                number,
                start,
                end,
                limit,
            } => write!(
                f,
                "partition {number}: {start}..={end} exceeds the allowed range ending at {limit}"
            ),
            PartitionOverlap { number, other } => {
                write!(f, "partition {number} overlaps partition {other}")
            }
            EbrLoop { lba } => write!(f, "EBR chain loops back to LBA {lba}"),
            EbrChainTooLong(count) => write!(f, "EBR chain longer than {count} entries"),
            EbrOutOfRange { lba } => write!(
                f,
                "EBR or logical partition at LBA {lba} outside the extended partition"
            ),
            EbrBadSignature { lba } => write!(f, "EBR at LBA {lba} lacks 0xaa55"),
            ElToritoBadCatalog { rba } => {
                write!(
                    f,
                    "El Torito boot catalog at CD sector {rba} is missing or invalid"
                )
            }
        }
    }
}

/// Reads the partition table of `disk`, in the order edk2's partition
/// driver tries them: a GPT when LBA 0 holds a protective MBR (an 0xEE
/// entry, UEFI 2.10 §5.2.3), then an El Torito boot catalog (a CD-ROM or an
/// ISO image, §13.3.2), then the legacy MBR. A hybrid ISO (MBR or GPT and El
/// Torito) attached as a CD-ROM has 2048-byte blocks, so its GPT (written
/// for 512-byte ones) is not found and El Torito is used.
pub fn read_partitions(disk: &dyn BlockDevice) -> Result<PartitionTable, PartitionError> {
    let block_size = disk.block_size();
    if block_size < 512 {
        return Err(PartitionError::BlockSizeTooSmall(block_size));
    }
    let block0 = read_block(disk, 0)?;
    let mbr = mbr::Mbr::parse(&block0);
    let gpt_error = match &mbr {
        Ok(mbr) if mbr.is_protective() => match gpt::read(disk) {
            Ok(table) => return Ok(table),
            Err(error) => Some(error),
        },
        _ => None,
    };
    if let Some(table) = eltorito::read(disk)? {
        return Ok(table);
    }
    match (gpt_error, mbr) {
        (Some(error), _) => Err(error),
        (None, Ok(mbr)) => mbr::read(disk, &mbr),
        (None, Err(error)) => Err(error),
    }
}

/// A zeroed buffer of `len` bytes, allocated fallibly: the GPT entry
/// array's size is the disk's (at most 1 MiB), the block size the device's
/// (virtio-blk accepts 512 to 64 KiB).
pub(crate) fn buffer(len: usize) -> Result<Vec<u8>, PartitionError> {
    platform::fallible::vec_zeroed(len).map_err(|e| PartitionError::OutOfMemory(e.bytes))
}

/// Reads one whole block.
pub(crate) fn read_block(disk: &dyn BlockDevice, lba: u64) -> Result<Vec<u8>, PartitionError> {
    let mut buf = buffer(disk.block_size() as usize)?;
    disk.read_blocks(lba, &mut buf)?;
    Ok(buf)
}

// Zero when `bytes` is too short: the MBR and GPT parsers check block sizes
// and header lengths before they trust a field, and report a short sector's
// boot signature as zero.
pub(crate) fn le_u16(bytes: &[u8], offset: usize) -> u16 {
    platform::le::u16_at(bytes, offset).unwrap_or(0)
}

pub(crate) fn le_u32(bytes: &[u8], offset: usize) -> u32 {
    platform::le::u32_at(bytes, offset).unwrap_or(0)
}

pub(crate) fn le_u64(bytes: &[u8], offset: usize) -> u64 {
    platform::le::u64_at(bytes, offset).unwrap_or(0)
}

/// Adds `candidate` to `accepted` unless it overlaps one already there;
/// otherwise logs and records why it was dropped.
pub(crate) fn accept_unless_overlapping(
    candidate: Partition,
    accepted: &mut Vec<Partition>,
    rejected: &mut Vec<PartitionError>,
) {
    let clash = accepted
        .iter()
        .find(|p| candidate.start_lba <= p.end_lba && p.start_lba <= candidate.end_lba);
    match clash {
        Some(other) => reject(
            rejected,
            PartitionError::PartitionOverlap {
                number: candidate.number,
                other: other.number,
            },
        ),
        None => accepted.push(candidate),
    }
}

pub(crate) fn reject(rejected: &mut Vec<PartitionError>, error: PartitionError) {
    log::warn!("partition: skipping entry: {error}");
    rejected.push(error);
}

/// Checks `start..=end` is ordered and inside `low..=high`.
pub(crate) fn check_range(
    number: u32,
    start: u64,
    end: u64,
    low: u64,
    high: u64,
) -> Result<(), PartitionError> {
    if end < start {
        return Err(PartitionError::PartitionEndBeforeStart { number, start, end });
    }
    if start < low || end > high {
        return Err(PartitionError::PartitionOutOfRange {
            number,
            start,
            end,
            limit: high,
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::path::PathBuf;
    use std::process::Command;

    /// A zeroed image file of `bytes` in a fresh temp directory.
    pub fn image(name: &str, bytes: u64) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vmfw-partition-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("disk.img");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(bytes).unwrap();
        path
    }

    /// Fails the calling test, naming the Debian package, when a host tool
    /// it needs cannot be run: a test that returned early instead would
    /// pass without testing anything. `tests/scripts/setup.sh` installs
    /// every tool these tests use.
    pub fn require_tool(tool: &str) {
        let package = match tool {
            "sgdisk" => "gdisk",
            "sfdisk" => "fdisk",
            "mkfs.fat" | "mkfs.vfat" | "fsck.vfat" => "dosfstools",
            "mcopy" => "mtools",
            _ => tool,
        };
        if let Err(e) = Command::new(tool).arg("--version").output() {
            panic!(
                "`{tool}` cannot be run ({e}); this test needs it: \
                 apt-get install {package} (or run tests/scripts/setup.sh)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpt_partition(attributes: u64) -> Partition {
        Partition {
            number: 2,
            start_lba: 2048,
            end_lba: 4095,
            kind: PartitionKind::Gpt(GptPartition {
                type_guid: Guid::from_bytes([1; 16]),
                unique_guid: Guid::from_bytes([2; 16]),
                attributes,
                name: String::from("data"),
            }),
        }
    }

    #[test]
    fn a_buffer_no_heap_holds_is_an_error_with_its_size() {
        let error = buffer(usize::MAX).unwrap_err();
        assert_eq!(error, PartitionError::OutOfMemory(usize::MAX));
        assert_eq!(
            error.to_string(),
            format!("no memory for a buffer of {} bytes", usize::MAX)
        );
        assert_eq!(buffer(512).unwrap(), vec![0u8; 512]);
    }

    #[test]
    fn gpt_attribute_bit_1_withholds_block_io() {
        assert!(gpt_partition(0).wants_block_io());
        // Bit 0 (required partition) and bit 2 (legacy BIOS bootable) are no reason.
        assert!(gpt_partition(0b101).wants_block_io());
        assert!(!gpt_partition(GPT_ATTRIBUTE_NO_BLOCK_IO).wants_block_io());
        assert!(!gpt_partition(u64::MAX).wants_block_io());
        let mbr = Partition {
            kind: PartitionKind::Mbr(MbrPartition {
                os_type: 0x0c,
                disk_signature: 0x1234,
                bootable: false,
                logical: false,
            }),
            ..gpt_partition(0)
        };
        assert!(mbr.wants_block_io());
    }
}
