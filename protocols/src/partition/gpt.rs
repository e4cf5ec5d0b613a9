//! GUID Partition Table (UEFI 2.10 §5.3).
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use platform::block::BlockDevice;
use platform::crc32::{Crc32Digest, crc32};
use uefi_raw::Guid;

use super::{
    GptPartition, Partition, PartitionError, PartitionKind, PartitionTable, Scheme,
    accept_unless_overlapping, check_range, le_u32, le_u64, read_block, reject,
};

/// "EFI PART" (UEFI 2.10 §5.3.2, Table 5.5).
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Major revision 1; the minor part is not checked so 1.x tables still load.
pub const REVISION_MAJOR: u32 = 0x0001_0000;
pub const MIN_HEADER_SIZE: u32 = 92;
pub const MIN_ENTRY_SIZE: u32 = 128;
/// Entries are 128 x 2^n bytes (§5.3.2); anything past this is not a real table.
pub const MAX_ENTRY_SIZE: u32 = 4096;
/// Upper bound on the entry array we are willing to read (8192 x 128 bytes).
pub const MAX_ENTRY_ARRAY_BYTES: u64 = 1 << 20;

/// A validated GPT header (UEFI 2.10 Table 5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GptHeader {
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    pub entry_lba: u64,
    pub entry_count: u32,
    pub entry_size: u32,
    pub entry_array_crc32: u32,
}

impl GptHeader {
    /// Parses and validates the header in `block`, which was read from `lba`
    /// of a disk of `num_blocks` blocks of `block.len()` bytes.
    pub fn parse(block: &[u8], lba: u64, num_blocks: u64) -> Result<Self, PartitionError> {
        if block.get(..8) != Some(&SIGNATURE[..]) {
            return Err(PartitionError::GptBadSignature { lba });
        }
        let revision = le_u32(block, 8);
        if revision & 0xFFFF_0000 != REVISION_MAJOR {
            return Err(PartitionError::GptBadRevision(revision));
        }
        let header_size = le_u32(block, 12);
        if header_size < MIN_HEADER_SIZE || header_size as usize > block.len() {
            return Err(PartitionError::GptBadHeaderSize(header_size));
        }
        // §5.3.2: the CRC covers HeaderSize bytes with the CRC field zeroed.
        let stored = le_u32(block, 16);
        let mut digest = Crc32Digest::new();
        digest.update(&block[..16]);
        digest.update(&[0; 4]);
        digest.update(&block[20..header_size as usize]);
        let computed = digest.finalize();
        if stored != computed {
            return Err(PartitionError::GptHeaderCrc {
                lba,
                stored,
                computed,
            });
        }
        let header = GptHeader {
            my_lba: le_u64(block, 24),
            alternate_lba: le_u64(block, 32),
            first_usable_lba: le_u64(block, 40),
            last_usable_lba: le_u64(block, 48),
            disk_guid: guid_at(block, 56),
            entry_lba: le_u64(block, 72),
            entry_count: le_u32(block, 80),
            entry_size: le_u32(block, 84),
            entry_array_crc32: le_u32(block, 88),
        };
        if header.my_lba != lba {
            return Err(PartitionError::GptMyLbaMismatch {
                lba,
                my_lba: header.my_lba,
            });
        }
        let (first, last) = (header.first_usable_lba, header.last_usable_lba);
        // The usable area must exclude LBA 0/1 (MBR, primary header) and the last block.
        if first < 2 || first > last || last >= num_blocks.saturating_sub(1) {
            return Err(PartitionError::GptBadUsableRange { first, last });
        }
        if header.entry_size < MIN_ENTRY_SIZE
            || !header.entry_size.is_power_of_two()
            || header.entry_size > MAX_ENTRY_SIZE
        {
            return Err(PartitionError::GptBadEntrySize(header.entry_size));
        }
        if header.entry_array_bytes() > MAX_ENTRY_ARRAY_BYTES {
            return Err(PartitionError::GptTooManyEntries(header.entry_count));
        }
        header.check_entry_array_placement(block.len() as u64, num_blocks)?;
        Ok(header)
    }

    fn entry_array_bytes(&self) -> u64 {
        u64::from(self.entry_count) * u64::from(self.entry_size)
    }

    /// Blocks taken by the entry array.
    pub fn entry_array_blocks(&self, block_size: u64) -> u64 {
        self.entry_array_bytes().div_ceil(block_size.max(1))
    }

    /// The entry array must lie on the disk, past the MBR, and clear of both
    /// this header and the usable area (§5.3.2).
    fn check_entry_array_placement(
        &self,
        block_size: u64,
        num_blocks: u64,
    ) -> Result<(), PartitionError> {
        let bad = PartitionError::GptBadEntryArray {
            lba: self.entry_lba,
        };
        let start = self.entry_lba;
        let blocks = self.entry_array_blocks(block_size);
        let end = start.checked_add(blocks).ok_or(bad)?; // exclusive
        let overlaps = |lo: u64, hi_inclusive: u64| start <= hi_inclusive && lo < end;
        if start == 0
            || end > num_blocks
            || overlaps(self.my_lba, self.my_lba)
            || (blocks > 0 && overlaps(self.first_usable_lba, self.last_usable_lba))
        {
            return Err(bad);
        }
        Ok(())
    }
}

fn guid_at(bytes: &[u8], offset: usize) -> Guid {
    Guid::from_bytes(platform::le::guid_bytes_at(bytes, offset).unwrap_or([0; 16]))
}

/// Reads a header at `lba` and its entry array, checking the array's CRC.
fn read_table(disk: &dyn BlockDevice, lba: u64) -> Result<(GptHeader, Vec<u8>), PartitionError> {
    let num_blocks = disk.num_blocks();
    let header = GptHeader::parse(&read_block(disk, lba)?, lba, num_blocks)?;
    let block_size = u64::from(disk.block_size());
    let blocks = header.entry_array_blocks(block_size);
    let byte_len = blocks
        .checked_mul(block_size)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(PartitionError::GptTooManyEntries(header.entry_count))?;
    let mut entries = super::buffer(byte_len)?;
    disk.read_blocks(header.entry_lba, &mut entries)?;
    entries.truncate(header.entry_array_bytes() as usize);
    let computed = crc32(&entries);
    if computed != header.entry_array_crc32 {
        return Err(PartitionError::GptEntriesCrc {
            stored: header.entry_array_crc32,
            computed,
        });
    }
    Ok((header, entries))
}

/// The primary GPT as the disk holds it: the header block (LBA 1) and the
/// partition entry array, both checked (signature, CRCs). For measured
/// boot's EV_EFI_GPT_EVENT (TCG PC Client PFP, UEFI_GPT_DATA), which
/// measures the table the firmware booted from.
pub fn primary_table(disk: &dyn BlockDevice) -> Result<(Vec<u8>, Vec<u8>), PartitionError> {
    let (_, entries) = read_table(disk, 1)?;
    Ok((read_block(disk, 1)?, entries))
}

/// Reads the GPT, falling back to the backup header (at the primary's
/// AlternateLBA, else the last LBA) when the primary is invalid (§5.3.2).
pub fn read(disk: &dyn BlockDevice) -> Result<PartitionTable, PartitionError> {
    let last_lba = disk
        .num_blocks()
        .checked_sub(1)
        .ok_or(PartitionError::GptNoValidHeader)?;
    let (header, entries, used_backup) = match read_table(disk, 1) {
        Ok((header, entries)) => (header, entries, false),
        Err(primary_error) => {
            log::warn!("gpt: primary table invalid ({primary_error}); trying backup");
            // Only trust AlternateLBA if the primary header itself checked out.
            let mut candidates = Vec::new();
            if let Ok(block) = read_block(disk, 1)
                && let Ok(primary) = GptHeader::parse(&block, 1, disk.num_blocks())
                && primary.alternate_lba != last_lba
            {
                candidates.push(primary.alternate_lba);
            }
            candidates.push(last_lba);
            let mut found = None;
            for lba in candidates {
                match read_table(disk, lba) {
                    Ok((header, entries)) => {
                        found = Some((header, entries));
                        break;
                    }
                    Err(e) => log::warn!("gpt: backup table at LBA {lba} invalid ({e})"),
                }
            }
            let (header, entries) = found.ok_or(PartitionError::GptNoValidHeader)?;
            (header, entries, true)
        }
    };

    let mut partitions = Vec::new();
    let mut rejected = Vec::new();
    for (index, entry) in entries.chunks_exact(header.entry_size as usize).enumerate() {
        let type_guid = guid_at(entry, 0);
        if type_guid.is_zero() {
            continue; // unused entry (§5.3.3)
        }
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let start_lba = le_u64(entry, 32);
        let end_lba = le_u64(entry, 40);
        if let Err(e) = check_range(
            number,
            start_lba,
            end_lba,
            header.first_usable_lba,
            header.last_usable_lba,
        ) {
            reject(&mut rejected, e);
            continue;
        }
        let partition = Partition {
            number,
            start_lba,
            end_lba,
            kind: PartitionKind::Gpt(GptPartition {
                type_guid,
                unique_guid: guid_at(entry, 16),
                attributes: le_u64(entry, 48),
                name: decode_name(&entry[56..128]),
            }),
        };
        accept_unless_overlapping(partition, &mut partitions, &mut rejected);
    }
    Ok(PartitionTable {
        scheme: Scheme::Gpt {
            disk_guid: header.disk_guid,
            used_backup,
        },
        partitions,
        rejected,
    })
}

/// PartitionName: up to 36 UCS-2 code units, NUL-terminated if shorter.
fn decode_name(raw: &[u8]) -> String {
    let units = platform::le::u16_units(raw).take_while(|&unit| unit != 0);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::test_util::{image, require_tool};
    use crate::partition::{SIGNATURE_TYPE_GUID, read_partitions};
    use platform::block::MemDisk;
    use std::process::Command;

    const DISK_BYTES: u64 = 64 << 20;
    const BLOCK: usize = 512;

    /// A 64 MiB GPT image with three partitions, made by sgdisk.
    fn sgdisk_image(name: &str) -> Vec<u8> {
        require_tool("sgdisk");
        let path = image(name, DISK_BYTES);
        let status = Command::new("sgdisk")
            .args([
                "-n1:2048:+16M",
                "-t1:ef00",
                "-c1:EFI System",
                "-u1:11111111-2222-3333-4444-555555555555",
                "-n2:0:+8M",
                "-t2:8300",
                "-c2:root",
                "-n3:0:0",
                "-t3:8200",
                "-U",
                "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
        bytes
    }

    fn guid(text: &str) -> Guid {
        Guid::try_parse(text).unwrap()
    }

    fn check_sgdisk_layout(table: &PartitionTable) {
        assert_eq!(table.partitions.len(), 3, "{:?}", table.rejected);
        assert!(table.rejected.is_empty());
        let esp = &table.partitions[0];
        assert_eq!(
            (esp.number, esp.start_lba, esp.end_lba),
            (1, 2048, 2048 + 32768 - 1)
        );
        let PartitionKind::Gpt(gpt) = &esp.kind else {
            panic!("not GPT")
        };
        assert_eq!(gpt.name, "EFI System");
        assert_eq!(gpt.type_guid, guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"));
        assert_eq!(
            gpt.unique_guid,
            guid("11111111-2222-3333-4444-555555555555")
        );
        let root = &table.partitions[1];
        assert_eq!((root.number, root.start_lba), (2, 2048 + 32768));
        assert_eq!(root.size_in_blocks(), 16384);
        // sgdisk leaves 33 blocks for the backup entries + header.
        let last = &table.partitions[2];
        assert_eq!(last.end_lba, DISK_BYTES / 512 - 34);
        let Scheme::Gpt { disk_guid, .. } = table.scheme else {
            panic!()
        };
        assert_eq!(disk_guid, guid("AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"));
        let crate::partition::MediaNode::HardDrive(hd) = esp.media_node() else {
            panic!()
        };
        assert_eq!(hd.signature, gpt.unique_guid.to_bytes());
        assert_eq!(hd.signature_type, SIGNATURE_TYPE_GUID);
        assert_eq!(
            (hd.partition_number, hd.partition_start, hd.partition_size),
            (1, 2048, 32768)
        );
    }

    #[test]
    fn reads_sgdisk_image() {
        let mut bytes = sgdisk_image("plain");
        let disk = MemDisk::new(&mut bytes, 512);
        let table = read_partitions(&disk).unwrap();
        assert!(matches!(
            table.scheme,
            Scheme::Gpt {
                used_backup: false,
                ..
            }
        ));
        check_sgdisk_layout(&table);
    }

    #[test]
    fn corrupt_primary_header_falls_back_to_backup() {
        let mut bytes = sgdisk_image("backup");
        bytes[BLOCK + 40] ^= 0xFF; // FirstUsableLBA: header CRC now fails
        let disk = MemDisk::new(&mut bytes, 512);
        let table = read_partitions(&disk).unwrap();
        assert!(matches!(
            table.scheme,
            Scheme::Gpt {
                used_backup: true,
                ..
            }
        ));
        check_sgdisk_layout(&table);
    }

    #[test]
    fn corrupt_primary_entries_fall_back_to_backup() {
        let mut bytes = sgdisk_image("entries");
        bytes[2 * BLOCK + 56] ^= 0xFF; // first entry's name: array CRC fails
        let disk = MemDisk::new(&mut bytes, 512);
        assert!(matches!(
            read_table(&disk, 1),
            Err(PartitionError::GptEntriesCrc { .. })
        ));
        let table = read_partitions(&disk).unwrap();
        assert!(matches!(
            table.scheme,
            Scheme::Gpt {
                used_backup: true,
                ..
            }
        ));
        check_sgdisk_layout(&table);
    }

    #[test]
    fn both_headers_corrupt_is_an_error() {
        let mut bytes = sgdisk_image("both");
        let len = bytes.len();
        bytes[BLOCK] = b'X';
        bytes[len - BLOCK] = b'X';
        let disk = MemDisk::new(&mut bytes, 512);
        assert_eq!(
            read_partitions(&disk),
            Err(PartitionError::GptNoValidHeader)
        );
    }

    /// Rewrites entry `index` of the primary table and fixes up both CRCs.
    fn patch_entry(bytes: &mut [u8], index: usize, start: u64, end: u64) {
        let entry = 2 * BLOCK + index * 128;
        bytes[entry..entry + 16].copy_from_slice(&[0x42; 16]);
        bytes[entry + 32..entry + 40].copy_from_slice(&start.to_le_bytes());
        bytes[entry + 40..entry + 48].copy_from_slice(&end.to_le_bytes());
        let count = le_u32(&bytes[BLOCK..], 80) as usize;
        let crc = crc32(&bytes[2 * BLOCK..2 * BLOCK + count * 128]);
        bytes[BLOCK + 88..BLOCK + 92].copy_from_slice(&crc.to_le_bytes());
        bytes[BLOCK + 16..BLOCK + 20].fill(0);
        let crc = crc32(&bytes[BLOCK..BLOCK + 92]);
        bytes[BLOCK + 16..BLOCK + 20].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn hostile_entries_are_skipped_but_valid_ones_kept() {
        let mut bytes = sgdisk_image("hostile");
        patch_entry(&mut bytes, 3, 3000, 4000); // overlaps partition 1
        patch_entry(&mut bytes, 4, 100, 1 << 40); // past the disk
        patch_entry(&mut bytes, 5, 5000, 4000); // reversed
        let disk = MemDisk::new(&mut bytes, 512);
        let table = read_partitions(&disk).unwrap();
        assert!(matches!(
            table.scheme,
            Scheme::Gpt {
                used_backup: false,
                ..
            }
        ));
        assert_eq!(table.partitions.len(), 3);
        assert_eq!(
            table.rejected,
            vec![
                PartitionError::PartitionOverlap {
                    number: 4,
                    other: 1
                },
                PartitionError::PartitionOutOfRange {
                    number: 5,
                    start: 100,
                    end: 1 << 40,
                    limit: DISK_BYTES / 512 - 34
                },
                PartitionError::PartitionEndBeforeStart {
                    number: 6,
                    start: 5000,
                    end: 4000
                },
            ]
        );
    }

    /// Builds a bare header block with a valid CRC.
    fn header_block(entry_lba: u64, count: u32, entry_size: u32) -> Vec<u8> {
        let mut block = vec![0u8; BLOCK];
        block[..8].copy_from_slice(SIGNATURE);
        block[8..12].copy_from_slice(&REVISION_MAJOR.to_le_bytes());
        block[12..16].copy_from_slice(&92u32.to_le_bytes());
        block[24..32].copy_from_slice(&1u64.to_le_bytes());
        block[32..40].copy_from_slice(&999u64.to_le_bytes());
        block[40..48].copy_from_slice(&34u64.to_le_bytes());
        block[48..56].copy_from_slice(&966u64.to_le_bytes());
        block[72..80].copy_from_slice(&entry_lba.to_le_bytes());
        block[80..84].copy_from_slice(&count.to_le_bytes());
        block[84..88].copy_from_slice(&entry_size.to_le_bytes());
        let crc = crc32(&block[..92]);
        block[16..20].copy_from_slice(&crc.to_le_bytes());
        block
    }

    #[test]
    fn header_validation() {
        assert!(GptHeader::parse(&header_block(2, 128, 128), 1, 1000).is_ok());
        assert_eq!(
            GptHeader::parse(&header_block(2, 128, 128), 5, 1000),
            Err(PartitionError::GptMyLbaMismatch { lba: 5, my_lba: 1 })
        );
        assert_eq!(
            GptHeader::parse(&header_block(2, 128, 64), 1, 1000),
            Err(PartitionError::GptBadEntrySize(64))
        );
        assert_eq!(
            GptHeader::parse(&header_block(2, 128, 200), 1, 1000),
            Err(PartitionError::GptBadEntrySize(200))
        );
        assert_eq!(
            GptHeader::parse(&header_block(2, u32::MAX, 128), 1, 1000),
            Err(PartitionError::GptTooManyEntries(u32::MAX))
        );
        // Entry array over the header, into the usable area, off the disk.
        for lba in [1, 20, 990, u64::MAX - 1] {
            assert_eq!(
                GptHeader::parse(&header_block(lba, 128, 128), 1, 1000),
                Err(PartitionError::GptBadEntryArray { lba })
            );
        }
        let mut block = header_block(2, 128, 128);
        block[16] ^= 1;
        assert!(matches!(
            GptHeader::parse(&block, 1, 1000),
            Err(PartitionError::GptHeaderCrc { .. })
        ));
        // The usable area must fit the disk.
        assert_eq!(
            GptHeader::parse(&header_block(2, 128, 128), 1, 500),
            Err(PartitionError::GptBadUsableRange {
                first: 34,
                last: 966
            })
        );
    }
}
