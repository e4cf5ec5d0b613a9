//! Legacy MBR and its extended-partition (EBR) chain (UEFI 2.10 §5.2.1).
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use platform::block::BlockDevice;

use super::{
    MbrPartition, Partition, PartitionError, PartitionKind, PartitionTable, Scheme,
    accept_unless_overlapping, check_range, le_u16, le_u32, read_block, reject,
};

pub const BOOT_SIGNATURE: u16 = 0xAA55;
/// §5.2.3: the protective MBR's single partition type.
pub const OS_TYPE_GPT_PROTECTIVE: u8 = 0xEE;
/// Extended-partition container types (DOS CHS, DOS LBA, Linux).
pub const EXTENDED_TYPES: [u8; 3] = [0x05, 0x0F, 0x85];
/// Bound on the EBR chain, so a hostile chain cannot keep us reading forever.
pub const MAX_LOGICAL_PARTITIONS: usize = 128;

const DISK_SIGNATURE_OFFSET: usize = 440;
const RECORDS_OFFSET: usize = 446;
const SIGNATURE_OFFSET: usize = 510;

/// One 16-byte partition record (UEFI 2.10 Table 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MbrRecord {
    pub boot_indicator: u8,
    pub os_type: u8,
    pub starting_lba: u32,
    pub size_in_lba: u32,
}

impl MbrRecord {
    fn parse(raw: &[u8]) -> Self {
        MbrRecord {
            boot_indicator: raw[0],
            os_type: raw[4],
            starting_lba: le_u32(raw, 8),
            size_in_lba: le_u32(raw, 12),
        }
    }

    pub fn is_used(&self) -> bool {
        self.os_type != 0 && self.size_in_lba != 0
    }

    pub fn is_extended(&self) -> bool {
        EXTENDED_TYPES.contains(&self.os_type)
    }
}

/// A master boot record or EBR sector (the first 512 bytes of a block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mbr {
    pub disk_signature: u32,
    pub records: [MbrRecord; 4],
}

impl Mbr {
    pub fn parse(sector: &[u8]) -> Result<Self, PartitionError> {
        let signature = le_u16(sector, SIGNATURE_OFFSET);
        if sector.len() < 512 || signature != BOOT_SIGNATURE {
            return Err(PartitionError::NoBootSignature(signature));
        }
        let record = |i: usize| MbrRecord::parse(&sector[RECORDS_OFFSET + 16 * i..][..16]);
        Ok(Mbr {
            disk_signature: le_u32(sector, DISK_SIGNATURE_OFFSET),
            records: [record(0), record(1), record(2), record(3)],
        })
    }

    /// §5.2.3: a protective MBR has an 0xEE record; GPT then governs the disk.
    pub fn is_protective(&self) -> bool {
        self.records
            .iter()
            .any(|r| r.os_type == OS_TYPE_GPT_PROTECTIVE)
    }
}

fn partition(
    number: u32,
    start: u64,
    size: u32,
    record: &MbrRecord,
    mbr: &Mbr,
    logical: bool,
) -> Partition {
    Partition {
        number,
        start_lba: start,
        // size >= 1 for used records, so this never underflows; saturate anyway.
        end_lba: start.saturating_add(u64::from(size)).saturating_sub(1),
        kind: PartitionKind::Mbr(MbrPartition {
            os_type: record.os_type,
            disk_signature: mbr.disk_signature,
            bootable: record.boot_indicator == 0x80,
            logical,
        }),
    }
}

/// Lists the primary partitions 1..=4 and the logical partitions (from 5)
/// of the first extended partition. The extended container itself is not listed.
pub fn read(disk: &dyn BlockDevice, mbr: &Mbr) -> Result<PartitionTable, PartitionError> {
    let last_lba = disk.num_blocks().saturating_sub(1);
    let mut primaries: Vec<Partition> = Vec::new();
    let mut rejected = Vec::new();
    let mut extended = None;

    for (index, record) in mbr.records.iter().enumerate() {
        if !record.is_used() {
            continue;
        }
        let number = index as u32 + 1;
        let candidate = partition(
            number,
            u64::from(record.starting_lba),
            record.size_in_lba,
            record,
            mbr,
            false,
        );
        // LBA 0 holds the MBR itself.
        if let Err(e) = check_range(number, candidate.start_lba, candidate.end_lba, 1, last_lba) {
            reject(&mut rejected, e);
            continue;
        }
        let before = primaries.len();
        accept_unless_overlapping(candidate, &mut primaries, &mut rejected);
        if record.is_extended() && primaries.len() > before {
            if extended.is_none() {
                extended = primaries.last().map(|p| (p.number, p.start_lba, p.end_lba));
            } else {
                log::warn!("mbr: ignoring second extended partition {number}");
            }
        }
    }

    let mut logicals = Vec::new();
    if let Some((container, ext_start, ext_end)) = extended {
        primaries.retain(|p| p.number != container);
        read_logicals(disk, mbr, ext_start, ext_end, &mut logicals, &mut rejected);
    }
    primaries.extend(logicals);
    Ok(PartitionTable {
        scheme: Scheme::Mbr {
            disk_signature: mbr.disk_signature,
        },
        partitions: primaries,
        rejected,
    })
}

/// Follows the EBR chain: each EBR's first record is a logical partition
/// relative to that EBR, its second links to the next EBR relative to the
/// start of the extended partition (§5.2.1).
fn read_logicals(
    disk: &dyn BlockDevice,
    mbr: &Mbr,
    ext_start: u64,
    ext_end: u64,
    logicals: &mut Vec<Partition>,
    rejected: &mut Vec<PartitionError>,
) {
    let mut visited: Vec<u64> = Vec::new();
    let mut next_number = 5u32;
    let mut ebr_lba = ext_start;
    loop {
        if visited.contains(&ebr_lba) {
            reject(rejected, PartitionError::EbrLoop { lba: ebr_lba });
            return;
        }
        if visited.len() >= MAX_LOGICAL_PARTITIONS {
            reject(
                rejected,
                PartitionError::EbrChainTooLong(MAX_LOGICAL_PARTITIONS),
            );
            return;
        }
        visited.push(ebr_lba);
        let ebr = match read_block(disk, ebr_lba).and_then(|block| {
            Mbr::parse(&block).map_err(|_| PartitionError::EbrBadSignature { lba: ebr_lba })
        }) {
            Ok(ebr) => ebr,
            Err(e) => {
                reject(rejected, e);
                return;
            }
        };
        let data = &ebr.records[0];
        if data.is_used() && !data.is_extended() {
            let number = next_number;
            next_number = next_number.saturating_add(1);
            match ebr_lba.checked_add(u64::from(data.starting_lba)) {
                Some(start) => {
                    let candidate = partition(number, start, data.size_in_lba, data, mbr, true);
                    // Must stay inside the container and clear of its EBR.
                    match check_range(
                        number,
                        start,
                        candidate.end_lba,
                        ebr_lba.saturating_add(1),
                        ext_end,
                    ) {
                        Ok(()) => accept_unless_overlapping(candidate, logicals, rejected),
                        Err(e) => reject(rejected, e),
                    }
                }
                None => reject(rejected, PartitionError::EbrOutOfRange { lba: ebr_lba }),
            }
        }
        let link = &ebr.records[1];
        if !link.is_used() || !link.is_extended() {
            return;
        }
        match ext_start.checked_add(u64::from(link.starting_lba)) {
            Some(next) if next > ext_start && next <= ext_end => ebr_lba = next,
            Some(next) if next == ext_start => ebr_lba = next, // caught as a loop
            other => {
                let lba = other.unwrap_or(u64::MAX);
                reject(rejected, PartitionError::EbrOutOfRange { lba });
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::test_util::{image, require_tool};
    use crate::partition::{PARTITION_FORMAT_MBR, SIGNATURE_TYPE_MBR, read_partitions};
    use platform::block::MemDisk;
    use std::io::Write;
    use std::process::{Command, Stdio};

    const DISK_BYTES: u64 = 64 << 20;

    fn sfdisk_image(name: &str, script: &str) -> Vec<u8> {
        require_tool("sfdisk");
        let path = image(name, DISK_BYTES);
        let mut child = Command::new("sfdisk")
            .arg("--no-reread")
            .arg("--no-tell-kernel")
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
        bytes
    }

    const SCRIPT: &str = "label: dos\nlabel-id: 0x12345678\n\
        start=2048, size=16384, type=ef, bootable\n\
        start=18432, size=8192, type=83\n\
        start=26624, type=5\n\
        start=28672, size=4096, type=83\n\
        start=34816, size=4096, type=82\n\
        start=40960, size=2048, type=83\n";

    fn layout(table: &PartitionTable) -> Vec<(u32, u64, u64, u8, bool)> {
        table
            .partitions
            .iter()
            .map(|p| {
                let PartitionKind::Mbr(m) = &p.kind else {
                    panic!("not MBR")
                };
                (p.number, p.start_lba, p.end_lba, m.os_type, m.logical)
            })
            .collect()
    }

    #[test]
    fn reads_sfdisk_image_with_logical_partitions() {
        let mut bytes = sfdisk_image("logical", SCRIPT);
        let disk = MemDisk::new(&mut bytes, 512);
        let table = read_partitions(&disk).unwrap();
        assert_eq!(
            table.scheme,
            Scheme::Mbr {
                disk_signature: 0x1234_5678
            }
        );
        assert!(table.rejected.is_empty(), "{:?}", table.rejected);
        assert_eq!(
            layout(&table),
            vec![
                (1, 2048, 18431, 0xEF, false),
                (2, 18432, 26623, 0x83, false),
                (5, 28672, 32767, 0x83, true),
                (6, 34816, 38911, 0x82, true),
                (7, 40960, 43007, 0x83, true),
            ]
        );
        let PartitionKind::Mbr(esp) = &table.partitions[0].kind else {
            panic!()
        };
        assert!(esp.bootable);
        let crate::partition::MediaNode::HardDrive(hd) = table.partitions[2].media_node() else {
            panic!()
        };
        assert_eq!(hd.partition_format, PARTITION_FORMAT_MBR);
        assert_eq!(hd.signature_type, SIGNATURE_TYPE_MBR);
        assert_eq!(hd.signature[..4], 0x1234_5678u32.to_le_bytes());
        assert_eq!(
            (hd.partition_number, hd.partition_start, hd.partition_size),
            (5, 28672, 4096)
        );
    }

    fn set_record(sector: &mut [u8], slot: usize, os_type: u8, start: u32, size: u32) {
        let at = RECORDS_OFFSET + 16 * slot;
        sector[at + 4] = os_type;
        sector[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
        sector[at + 12..at + 16].copy_from_slice(&size.to_le_bytes());
        sector[510] = 0x55;
        sector[511] = 0xAA;
    }

    #[test]
    fn ebr_loop_is_detected_and_earlier_logicals_kept() {
        let mut bytes = sfdisk_image("loop", SCRIPT);
        // The third EBR (at 40960 - 2048 = 38912) links back to the first one.
        let third_ebr = 38912 * 512;
        set_record(&mut bytes[third_ebr..third_ebr + 512], 1, 0x05, 0, 1);
        let disk = MemDisk::new(&mut bytes, 512);
        let table = read_partitions(&disk).unwrap();
        assert_eq!(table.rejected, vec![PartitionError::EbrLoop { lba: 26624 }]);
        assert_eq!(layout(&table).len(), 5);
        // A link back to the second EBR is a loop too.
        set_record(
            &mut bytes[third_ebr..third_ebr + 512],
            1,
            0x05,
            34816 - 2048 - 26624,
            1,
        );
        let disk = MemDisk::new(&mut bytes, 512);
        let table = read_partitions(&disk).unwrap();
        assert_eq!(table.rejected, vec![PartitionError::EbrLoop { lba: 32768 }]);
    }

    #[test]
    fn hostile_primary_entries() {
        let mut bytes = vec![0u8; 1 << 20];
        let blocks = (bytes.len() / 512) as u64;
        let mbr = &mut bytes[..512];
        set_record(mbr, 0, 0x83, 100, 100); // 100..=199
        set_record(mbr, 1, 0x83, 150, 100); // overlaps 1
        set_record(mbr, 2, 0x83, 1000, 5000); // past the disk
        set_record(mbr, 3, 0x83, 0, 10); // covers the MBR
        let disk = MemDisk::new(&mut bytes, 512);
        let table = read_partitions(&disk).unwrap();
        assert_eq!(layout(&table), vec![(1, 100, 199, 0x83, false)]);
        assert_eq!(
            table.rejected,
            vec![
                PartitionError::PartitionOverlap {
                    number: 2,
                    other: 1
                },
                PartitionError::PartitionOutOfRange {
                    number: 3,
                    start: 1000,
                    end: 5999,
                    limit: blocks - 1
                },
                PartitionError::PartitionOutOfRange {
                    number: 4,
                    start: 0,
                    end: 9,
                    limit: blocks - 1
                },
            ]
        );
    }

    #[test]
    fn hostile_logical_entries() {
        let mut bytes = vec![0u8; 1 << 20];
        set_record(&mut bytes[..512], 0, 0x0F, 100, 1000); // extended 100..=1099
        // EBR at 100: logical escaping the container, link to 200.
        set_record(&mut bytes[100 * 512..101 * 512], 0, 0x83, 1, 5000);
        set_record(&mut bytes[100 * 512..101 * 512], 1, 0x05, 100, 100);
        // EBR at 200: valid logical, link past the container.
        set_record(&mut bytes[200 * 512..201 * 512], 0, 0x83, 1, 50);
        set_record(&mut bytes[200 * 512..201 * 512], 1, 0x05, 5000, 10);
        let disk = MemDisk::new(&mut bytes, 512);
        let table = read_partitions(&disk).unwrap();
        assert_eq!(layout(&table), vec![(6, 201, 250, 0x83, true)]);
        assert_eq!(
            table.rejected,
            vec![
                PartitionError::PartitionOutOfRange {
                    number: 5,
                    start: 101,
                    end: 5100,
                    limit: 1099
                },
                PartitionError::EbrOutOfRange { lba: 5100 },
            ]
        );
    }

    #[test]
    fn long_chain_is_bounded() {
        let mut bytes = vec![0u8; 4 << 20];
        set_record(&mut bytes[..512], 0, 0x05, 1, 8000);
        // Every EBR links to the next block: more EBRs than we follow.
        for lba in 1..8000usize {
            let sector = &mut bytes[lba * 512..(lba + 1) * 512];
            set_record(sector, 1, 0x05, lba as u32, 1);
        }
        let disk = MemDisk::new(&mut bytes, 512);
        let table = read_partitions(&disk).unwrap();
        assert_eq!(
            table.rejected,
            vec![PartitionError::EbrChainTooLong(MAX_LOGICAL_PARTITIONS)]
        );
    }

    #[test]
    fn no_signature_is_an_error() {
        let mut bytes = vec![0u8; 4096];
        let disk = MemDisk::new(&mut bytes, 512);
        assert_eq!(
            read_partitions(&disk),
            Err(PartitionError::NoBootSignature(0))
        );
    }
}
