//! The words the storage log lines and controller names use for sizes,
//! partitions and FAT types.

use alloc::format;
use alloc::string::String;

use super::partition_info::is_esp;
use crate::device_path::format_guid;
use crate::fat::FatType;
use crate::partition::{Partition, PartitionKind};

/// `1536` -> "1.5 KiB": binary units, one decimal when not whole.
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let exponent = UNITS
        .iter()
        .enumerate()
        .rev()
        .find(|(i, _)| bytes >> (10 * i) != 0)
        .map_or(0, |(i, _)| i);
    if exponent == 0 {
        return format!("{bytes} bytes");
    }
    let tenths = u128::from(bytes) * 10 / (1u128 << (10 * exponent));
    let unit = UNITS[exponent];
    match tenths % 10 {
        0 => format!("{} {unit}", tenths / 10),
        tenth => format!("{}.{tenth} {unit}", tenths / 10),
    }
}

pub(super) fn describe(partition: &Partition) -> String {
    if is_esp(partition) {
        return String::from("ESP");
    }
    match &partition.kind {
        PartitionKind::Gpt(gpt) if gpt.name.is_empty() => {
            format!("type {}", format_guid(&gpt.type_guid))
        }
        PartitionKind::Gpt(gpt) => format!("\"{}\"", gpt.name),
        PartitionKind::Mbr(mbr) => format!("type {:#04x}", mbr.os_type),
        PartitionKind::ElTorito(image) => format!(
            "El Torito boot entry {}, platform {:#04x}",
            image.boot_entry, image.platform_id
        ),
    }
}

pub(super) fn fat_type_name(fat_type: FatType) -> &'static str {
    match fat_type {
        FatType::Fat12 => "FAT12",
        FatType::Fat16 => "FAT16",
        FatType::Fat32 => "FAT32",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_size(100), "100 bytes");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(512 << 20), "512 MiB");
        assert_eq!(human_size(7 << 29), "3.5 GiB");
    }
}
