//! A GUID Partition Table written directly (UEFI 2.10 §5.2.3 protective MBR, §5.3 GPT
//! header and entries), for disks whose logical blocks are not 512 bytes: sgdisk assumes
//! 512-byte sectors on image files, so 4Kn images get their table from here.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::util::crc32;

/// Partition entries in the array, and the size of each (§5.3.3: at least 16 KiB).
const ENTRIES: u32 = 128;
const ENTRY_BYTES: u32 = 128;

/// One partition: blocks `first..=last`.
pub struct GptPartition {
    pub type_guid: [u8; 16],
    pub unique_guid: [u8; 16],
    pub first: u64,
    pub last: u64,
    pub name: String,
}

/// A GUID in its textual form as the on-disk bytes (§Appendix A: the first three fields
/// little-endian, the rest as written).
pub fn guid_bytes(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    assert_eq!(hex.len(), 32, "GUID {text}");
    let byte = |i: usize| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex GUID");
    let mut out = [0u8; 16];
    for (to, from) in [3, 2, 1, 0, 5, 4, 7, 6].into_iter().enumerate() {
        out[to] = byte(from);
    }
    for (i, out) in out.iter_mut().enumerate().skip(8) {
        *out = byte(i);
    }
    out
}

/// The partition type GUID of an sgdisk type code the builders use.
pub fn type_guid(code: &str) -> [u8; 16] {
    guid_bytes(match code {
        "EF00" => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "EA00" => "BC13C2FF-59E6-4262-A352-B275FD6F7172",
        "8300" => "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        other => panic!("no GPT type GUID for type code {other}"),
    })
}

/// Writes a protective MBR, the primary header and entries at LBA 1 and 2, and the backup
/// entries and header at the end of `disk` (whose length is already set).
pub fn write(disk: &Path, block_size: u64, disk_guid: [u8; 16], partitions: &[GptPartition]) {
    let file = File::options()
        .write(true)
        .open(disk)
        .unwrap_or_else(|e| panic!("open {}: {e}", disk.display()));
    let len = file.metadata().expect("stat disk").len();
    let blocks = len / block_size;
    let array_bytes = u64::from(ENTRIES * ENTRY_BYTES);
    let array_blocks = array_bytes.div_ceil(block_size);
    let first_usable = 2 + array_blocks;
    let last_usable = blocks - 2 - array_blocks;
    for p in partitions {
        assert!(
            first_usable <= p.first && p.first <= p.last && p.last <= last_usable,
            "partition {} outside {first_usable}..={last_usable}",
            p.name
        );
    }

    let mut array = vec![0u8; array_bytes as usize];
    for (entry, p) in array.chunks_exact_mut(ENTRY_BYTES as usize).zip(partitions) {
        entry[0..16].copy_from_slice(&p.type_guid);
        entry[16..32].copy_from_slice(&p.unique_guid);
        entry[32..40].copy_from_slice(&p.first.to_le_bytes());
        entry[40..48].copy_from_slice(&p.last.to_le_bytes());
        for (i, unit) in p.name.encode_utf16().take(36).enumerate() {
            entry[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
    }
    let array_crc = crc32(&array);

    let header = |my_lba: u64, alternate: u64, entries_lba: u64| {
        let mut h = vec![0u8; block_size as usize];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h[32..40].copy_from_slice(&alternate.to_le_bytes());
        h[40..48].copy_from_slice(&first_usable.to_le_bytes());
        h[48..56].copy_from_slice(&last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&disk_guid);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&ENTRIES.to_le_bytes());
        h[84..88].copy_from_slice(&ENTRY_BYTES.to_le_bytes());
        h[88..92].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };

    // §5.2.3: one record of type 0xEE covering the disk from LBA 1.
    let mut mbr = vec![0u8; block_size as usize];
    let record = &mut mbr[446..462];
    record[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    record[4] = 0xEE;
    record[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    record[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(blocks - 1).unwrap_or(u32::MAX);
    record[12..16].copy_from_slice(&size.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;

    let last = blocks - 1;
    let backup_array = last - array_blocks;
    let at = |lba: u64| lba * block_size;
    for (lba, bytes) in [
        (0, mbr),
        (1, header(1, last, 2)),
        (2, array.clone()),
        (backup_array, array),
        (last, header(last, 1, backup_array)),
    ] {
        file.write_all_at(&bytes, at(lba))
            .unwrap_or_else(|e| panic!("write {}: {e}", disk.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stored_mixed_endian() {
        assert_eq!(
            guid_bytes("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
            [
                0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
                0xC9, 0x3B
            ]
        );
    }

    /// sgdisk reads a 512-byte table this module wrote: same layout, checksums valid.
    #[test]
    fn sgdisk_accepts_a_512_byte_table() {
        let disk = std::env::temp_dir().join(format!("vmfw-gpt-{}.img", std::process::id()));
        File::create(&disk).unwrap().set_len(8 << 20).unwrap();
        let partition = GptPartition {
            type_guid: type_guid("EF00"),
            unique_guid: guid_bytes("01234567-89AB-CDEF-0123-456789ABCDEF"),
            first: 2048,
            last: 4095,
            name: "EFI System Partition".into(),
        };
        write(
            &disk,
            512,
            guid_bytes("11111111-2222-3333-4444-555555555555"),
            &[partition],
        );
        let out = std::process::Command::new("sgdisk")
            .arg("--verify")
            .arg("--print")
            .arg(&disk)
            .output()
            .unwrap();
        std::fs::remove_file(&disk).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("No problems found"), "{text}");
        assert!(
            text.contains("11111111-2222-3333-4444-555555555555"),
            "{text}"
        );
        assert!(text.contains("2048            4095"), "{text}");
        assert!(text.contains("EF00  EFI System Partition"), "{text}");
    }
}
