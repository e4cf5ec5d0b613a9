//! EFI_PARTITION_INFO_PROTOCOL (UEFI 2.10 §13.18): the partition table entry
//! behind a partition handle.

use uefi_raw::{Guid, guid};

use crate::partition::{Partition, PartitionKind};

/// EFI_PARTITION_INFO_PROTOCOL_GUID (§13.18); neither uefi-raw nor r-efi
/// defines it.
pub const PARTITION_INFO_GUID: Guid = guid!("8cf2f62c-bc9b-4821-808d-ec9ec421a1a0");
/// EFI_PARTITION_INFO_PROTOCOL_REVISION, spelled 0x0001000 in §13.18.
pub const PARTITION_INFO_REVISION: u32 = 0x1000;
pub const PARTITION_TYPE_OTHER: u32 = 0;
pub const PARTITION_TYPE_MBR: u32 = 1;
pub const PARTITION_TYPE_GPT: u32 = 2;

/// EFI System Partition type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B (§5.3.3).
pub const ESP_TYPE_GUID: Guid = guid!("c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
/// MBR OSType of an EFI System Partition (§5.2.2).
pub const MBR_TYPE_ESP: u8 = 0xEF;

/// The protocol is a plain structure; `record` holds the MBR_PARTITION_RECORD
/// (16 bytes) or EFI_PARTITION_ENTRY (128 bytes) of the partition.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub revision: u32,
    pub partition_type: u32,
    /// 1 for the EFI System Partition.
    pub system: u8,
    pub reserved: [u8; 7],
    pub record: [u8; 128],
}

const _: () = assert!(core::mem::size_of::<PartitionInfo>() == 144);
const _: () = assert!(core::mem::offset_of!(PartitionInfo, record) == 16);

/// Offset of the four primary records in the MBR (§5.2.1, Table 5-1).
const MBR_RECORDS_OFFSET: usize = 446;
const MBR_RECORD_SIZE: usize = 16;

pub fn is_esp(partition: &Partition) -> bool {
    match &partition.kind {
        PartitionKind::Gpt(gpt) => gpt.type_guid == ESP_TYPE_GUID,
        PartitionKind::Mbr(mbr) => mbr.os_type == MBR_TYPE_ESP,
        // Not an ESP to the firmware's own uses (the variable store picks
        // the first ESP): it must never write into an installer's boot
        // image, even on an ISO written to a disk. edk2 leaves System 0 too.
        PartitionKind::ElTorito(_) => false,
    }
}

/// The PartitionInfo of `partition`. A primary MBR partition gets its record
/// verbatim from `mbr_sector` (LBA 0) when given; logical partitions get a
/// record rebuilt with their absolute start and LBA-only CHS values, and a
/// GPT entry is rebuilt from the parsed fields (§5.3.3, Table 5-6).
pub fn partition_info(partition: &Partition, mbr_sector: Option<&[u8]>) -> PartitionInfo {
    let mut record = [0u8; 128];
    let partition_type = match &partition.kind {
        PartitionKind::Gpt(gpt) => {
            record[0..16].copy_from_slice(&gpt.type_guid.to_bytes());
            record[16..32].copy_from_slice(&gpt.unique_guid.to_bytes());
            record[32..40].copy_from_slice(&partition.start_lba.to_le_bytes());
            record[40..48].copy_from_slice(&partition.end_lba.to_le_bytes());
            record[48..56].copy_from_slice(&gpt.attributes.to_le_bytes());
            for (slot, unit) in record[56..128]
                .chunks_exact_mut(2)
                .zip(gpt.name.encode_utf16())
            {
                slot.copy_from_slice(&unit.to_le_bytes());
            }
            PARTITION_TYPE_GPT
        }
        PartitionKind::Mbr(mbr) => {
            let slot = partition.number as usize;
            let raw = (!mbr.logical && (1..=4).contains(&slot))
                .then(|| {
                    let at = MBR_RECORDS_OFFSET + (slot - 1) * MBR_RECORD_SIZE;
                    mbr_sector?.get(at..at + MBR_RECORD_SIZE)
                })
                .flatten();
            match raw {
                Some(raw) => record[..MBR_RECORD_SIZE].copy_from_slice(raw),
                None => {
                    // CHS FE FF FF: "use the LBA fields" (cylinder 1023, head 254, sector 63).
                    let lba_only_chs = [0xFE, 0xFF, 0xFF];
                    record[0] = if mbr.bootable { 0x80 } else { 0 };
                    record[1..4].copy_from_slice(&lba_only_chs);
                    record[4] = mbr.os_type;
                    record[5..8].copy_from_slice(&lba_only_chs);
                    let start = u32::try_from(partition.start_lba).unwrap_or(u32::MAX);
                    let size = u32::try_from(partition.size_in_blocks()).unwrap_or(u32::MAX);
                    record[8..12].copy_from_slice(&start.to_le_bytes());
                    record[12..16].copy_from_slice(&size.to_le_bytes());
                }
            }
            PARTITION_TYPE_MBR
        }
        // §13.18: no record for other partition kinds.
        PartitionKind::ElTorito(_) => PARTITION_TYPE_OTHER,
    };
    PartitionInfo {
        revision: PARTITION_INFO_REVISION,
        partition_type,
        system: u8::from(is_esp(partition)),
        reserved: [0; 7],
        record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::partition::{GptPartition, MbrPartition};
    use std::vec;

    fn guid(text: &str) -> Guid {
        Guid::try_parse(text).unwrap()
    }

    #[test]
    fn partition_info_carries_the_table_entry() {
        let unique = guid("01234567-89AB-CDEF-0123-456789ABCDEF");
        let esp = Partition {
            number: 1,
            start_lba: 2048,
            end_lba: 4095,
            kind: PartitionKind::Gpt(GptPartition {
                type_guid: ESP_TYPE_GUID,
                unique_guid: unique,
                attributes: 1,
                name: String::from("EFI"),
            }),
        };
        assert_eq!(ESP_TYPE_GUID, guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"));
        let info = partition_info(&esp, None);
        assert_eq!(
            (info.revision, info.partition_type, info.system),
            (0x1000, 2, 1)
        );
        assert_eq!(info.record[0..16], ESP_TYPE_GUID.to_bytes());
        assert_eq!(info.record[16..32], unique.to_bytes());
        assert_eq!(info.record[32..40], 2048u64.to_le_bytes());
        assert_eq!(info.record[40..48], 4095u64.to_le_bytes());
        assert_eq!(info.record[48..56], 1u64.to_le_bytes());
        assert_eq!(info.record[56..64], [b'E', 0, b'F', 0, b'I', 0, 0, 0]);

        let mut sector = vec![0u8; 512];
        let raw = [0x80, 1, 2, 3, 0x83, 4, 5, 6, 0, 8, 0, 0, 0, 0x10, 0, 0];
        sector[446 + 16..446 + 32].copy_from_slice(&raw);
        let mbr = |number, logical| Partition {
            number,
            start_lba: 0x800,
            end_lba: 0x17FF,
            kind: PartitionKind::Mbr(MbrPartition {
                os_type: 0x83,
                disk_signature: 0x1234_5678,
                bootable: true,
                logical,
            }),
        };
        let primary = partition_info(&mbr(2, false), Some(&sector));
        assert_eq!((primary.partition_type, primary.system), (1, 0));
        assert_eq!(primary.record[..16], raw);
        assert!(primary.record[16..].iter().all(|&b| b == 0));
        let logical = partition_info(&mbr(5, true), Some(&sector));
        assert_eq!(
            logical.record[..16],
            [
                0x80, 0xFE, 0xFF, 0xFF, 0x83, 0xFE, 0xFF, 0xFF, 0, 8, 0, 0, 0, 0x10, 0, 0
            ]
        );
    }
}
