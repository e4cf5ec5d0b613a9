//! SMBIOS discovery (DMTF DSP0134 3.7): the entry point the VMM placed in the
//! BIOS F segment, and a bounded walk over the structure table.
//!
//! Decoding lives in [`parse`] and works on byte slices; physical memory is
//! read through [`PhysicalMemory`](crate::acpi::PhysicalMemory).

use core::fmt;

use crate::acpi::{IdentityMapped, PhysicalMemory};

pub use parse::{EntryPoint, Structure, Structures, SystemInfo};

/// Why an entry point or structure could not be decoded. Carries the
/// offending value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmbiosError {
    Truncated {
        needed: usize,
        available: usize,
    },
    BadAnchor([u8; 5]),
    BadChecksum {
        anchor: [u8; 5],
        sum: u8,
    },
    BadLength(u8),
    /// A structure's formatted area is shorter than its 4-byte header.
    BadStructureLength {
        offset: usize,
        length: u8,
    },
    /// A string set runs past the end of the table.
    UnterminatedStrings {
        offset: usize,
    },
}

impl fmt::Display for SmbiosError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmbiosError::Truncated { needed, available } => {
                write!(f, "truncated: need {needed} bytes, have {available}")
            }
            SmbiosError::BadAnchor(a) => write!(f, "bad anchor {a:02x?}"),
            SmbiosError::BadChecksum { anchor, sum } => write!(
                f,
                "{} checksum sums to {sum:#04x}",
                crate::acpi::Ascii(anchor)
            ),
            SmbiosError::BadLength(len) => write!(f, "bad entry point length {len}"),
            SmbiosError::BadStructureLength { offset, length } => {
                write!(f, "structure at {offset:#x} has length {length}")
            }
            SmbiosError::UnterminatedStrings { offset } => {
                write!(f, "structure at {offset:#x} has unterminated strings")
            }
        }
    }
}

pub mod parse {
    #![forbid(unsafe_code)]

    use super::SmbiosError;
    use crate::acpi::parse::checksum;
    use crate::le::{u16_at, u32_at, u64_at};

    fn need(bytes: &[u8], needed: usize) -> Result<(), SmbiosError> {
        if bytes.len() < needed {
            return Err(SmbiosError::Truncated {
                needed,
                available: bytes.len(),
            });
        }
        Ok(())
    }

    fn verify(bytes: &[u8], anchor: &[u8]) -> Result<(), SmbiosError> {
        let sum = checksum(bytes);
        if sum != 0 {
            let mut a = [0; 5];
            a[..anchor.len()].copy_from_slice(anchor);
            return Err(SmbiosError::BadChecksum { anchor: a, sum });
        }
        Ok(())
    }

    /// A decoded entry point: where the structure table is and how big.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct EntryPoint {
        pub major: u8,
        pub minor: u8,
        pub table_address: u64,
        /// Exact length (2.x) or maximum length (3.x) of the table.
        pub table_len: u32,
        /// Structure count (2.x only; 3.x tables end at a type 127).
        pub structure_count: Option<u16>,
        /// Size of the entry point itself, for copying it.
        pub entry_point_len: u8,
    }

    impl EntryPoint {
        /// Decodes the 64-bit `_SM3_` (DSP0134 §5.2.2), the 32-bit `_SM_`
        /// (§5.2.1) or the legacy 15-byte `_DMI_` entry point, verifying
        /// every checksum.
        pub fn parse(bytes: &[u8]) -> Result<EntryPoint, SmbiosError> {
            if bytes.starts_with(b"_SM3_") {
                Self::parse_v3(bytes)
            } else if bytes.starts_with(b"_SM_") {
                Self::parse_v2(bytes)
            } else if bytes.starts_with(b"_DMI_") {
                Self::parse_legacy(bytes)
            } else {
                let mut anchor = [0; 5];
                let n = bytes.len().min(5);
                anchor[..n].copy_from_slice(&bytes[..n]);
                Err(SmbiosError::BadAnchor(anchor))
            }
        }

        fn parse_v3(bytes: &[u8]) -> Result<EntryPoint, SmbiosError> {
            need(bytes, 0x18)?;
            let len = bytes[6];
            if len < 0x18 {
                return Err(SmbiosError::BadLength(len));
            }
            need(bytes, usize::from(len))?;
            verify(&bytes[..usize::from(len)], b"_SM3_")?;
            Ok(EntryPoint {
                major: bytes[7],
                minor: bytes[8],
                table_address: u64_at(bytes, 0x10).unwrap_or(0),
                table_len: u32_at(bytes, 0x0c).unwrap_or(0),
                structure_count: None,
                entry_point_len: len,
            })
        }

        fn parse_v2(bytes: &[u8]) -> Result<EntryPoint, SmbiosError> {
            need(bytes, 0x1f)?;
            let len = bytes[5];
            // 0x1F per the spec; 0x1E appears in tables built to a typo in
            // SMBIOS 2.1.
            if !(0x1e..=0x20).contains(&len) {
                return Err(SmbiosError::BadLength(len));
            }
            need(bytes, usize::from(len))?;
            verify(&bytes[..usize::from(len)], b"_SM_")?;
            let intermediate = Self::parse_legacy(&bytes[0x10..])?;
            Ok(EntryPoint {
                major: bytes[6],
                minor: bytes[7],
                entry_point_len: len,
                ..intermediate
            })
        }

        /// The `_DMI_` structure, alone or as the intermediate part of `_SM_`.
        fn parse_legacy(bytes: &[u8]) -> Result<EntryPoint, SmbiosError> {
            need(bytes, 0x0f)?;
            if !bytes.starts_with(b"_DMI_") {
                let mut anchor = [0; 5];
                anchor.copy_from_slice(&bytes[..5]);
                return Err(SmbiosError::BadAnchor(anchor));
            }
            verify(&bytes[..0x0f], b"_DMI_")?;
            let bcd = bytes[0x0e];
            Ok(EntryPoint {
                major: bcd >> 4,
                minor: bcd & 0x0f,
                table_address: u64::from(u32_at(bytes, 8).unwrap_or(0)),
                table_len: u32::from(u16_at(bytes, 6).unwrap_or(0)),
                structure_count: u16_at(bytes, 0x0c),
                entry_point_len: 0x0f,
            })
        }
    }

    /// Scans `area` (at physical `base`) on 16-byte boundaries, as DSP0134
    /// §5.2 prescribes for the 0xF0000-0xFFFFF window; a valid 3.x entry
    /// point wins over a 2.x one. Returns the physical address too.
    pub fn scan(area: &[u8], base: u64) -> Option<(u64, EntryPoint)> {
        let mut found: Option<(u64, EntryPoint)> = None;
        for offset in (0..area.len()).step_by(16) {
            let candidate = &area[offset..];
            let Ok(entry) = EntryPoint::parse(candidate) else {
                continue;
            };
            let address = base.checked_add(offset as u64)?;
            if candidate.starts_with(b"_SM3_") {
                return Some((address, entry));
            }
            found.get_or_insert((address, entry));
        }
        found
    }

    /// End-of-table structure type (DSP0134 §7.46).
    pub const END_OF_TABLE: u8 = 127;

    /// One structure: the formatted area (header included) and its strings.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Structure<'a> {
        pub kind: u8,
        pub handle: u16,
        pub formatted: &'a [u8],
        /// The string set without its final terminator.
        strings: &'a [u8],
    }

    impl<'a> Structure<'a> {
        /// String number `index` (1-based, as the formatted area refers to
        /// strings; 0 means "none").
        pub fn string(&self, index: u8) -> Option<&'a [u8]> {
            let n = usize::from(index).checked_sub(1)?;
            self.strings
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .nth(n)
        }

        /// The string referenced by the byte at `offset` of the formatted
        /// area.
        pub fn string_at(&self, offset: usize) -> Option<&'a [u8]> {
            self.string(*self.formatted.get(offset)?)
        }
    }

    /// Iterates the structure table (DSP0134 §6.1.2, §6.1.3): each formatted
    /// area is followed by NUL-terminated strings and a final NUL. Stops at
    /// type 127, the end of the slice, or `max_count`; a malformed structure
    /// yields one error and ends the walk.
    pub struct Structures<'a> {
        table: &'a [u8],
        offset: usize,
        remaining: usize,
    }

    impl<'a> Structures<'a> {
        pub fn new(table: &'a [u8], max_count: usize) -> Self {
            Structures {
                table,
                offset: 0,
                remaining: max_count,
            }
        }
    }

    impl<'a> Iterator for Structures<'a> {
        type Item = Result<Structure<'a>, SmbiosError>;

        fn next(&mut self) -> Option<Self::Item> {
            if self.remaining == 0 {
                return None;
            }
            let start = self.offset;
            let rest = self.table.get(start..)?;
            // Fewer bytes than a header: the table is done (padding).
            if rest.len() < 4 {
                return None;
            }
            self.remaining -= 1;
            let length = rest[1];
            if length < 4 || usize::from(length) > rest.len() {
                self.remaining = 0;
                return Some(Err(SmbiosError::BadStructureLength {
                    offset: start,
                    length,
                }));
            }
            let formatted = &rest[..usize::from(length)];
            let after = &rest[usize::from(length)..];
            // The string set ends at the first double NUL; a structure
            // without strings is followed by two NULs as well.
            let Some(end) = after.windows(2).position(|w| w == [0, 0]) else {
                self.remaining = 0;
                return Some(Err(SmbiosError::UnterminatedStrings { offset: start }));
            };
            self.offset = start + usize::from(length) + end + 2;
            let structure = Structure {
                kind: rest[0],
                handle: u16_at(rest, 2).unwrap_or(0),
                formatted,
                strings: &after[..end],
            };
            if structure.kind == END_OF_TABLE {
                self.remaining = 0;
            }
            Some(Ok(structure))
        }
    }

    /// Identification strings for a boot log line.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SystemInfo<'a> {
        pub bios_vendor: Option<&'a [u8]>,
        pub bios_version: Option<&'a [u8]>,
        pub manufacturer: Option<&'a [u8]>,
        pub product: Option<&'a [u8]>,
    }

    impl<'a> SystemInfo<'a> {
        /// Reads type 0 (BIOS, §7.1) vendor/version and type 1 (System,
        /// §7.2) manufacturer/product from the table.
        pub fn from_table(table: &'a [u8], max_count: usize) -> Result<Self, SmbiosError> {
            let mut info = SystemInfo::default();
            for structure in Structures::new(table, max_count) {
                let s = structure?;
                match s.kind {
                    0 => {
                        info.bios_vendor = s.string_at(4);
                        info.bios_version = s.string_at(5);
                    }
                    1 => {
                        info.manufacturer = s.string_at(4);
                        info.product = s.string_at(5);
                    }
                    _ => {}
                }
            }
            Ok(info)
        }
    }
}

/// Where the BIOS F segment starts and how long it is.
const F_SEGMENT: u64 = 0xf0000;
const F_SEGMENT_LEN: usize = 0x10000;
/// Structure count bound for 3.x tables, which carry no count.
const MAX_STRUCTURES: usize = 4096;

/// Finds the SMBIOS entry point in the F segment; returns its physical
/// address and decoded contents.
pub fn discover() -> Option<(u64, EntryPoint)> {
    discover_in(&IdentityMapped)
}

pub fn discover_in<M: PhysicalMemory>(memory: &M) -> Option<(u64, EntryPoint)> {
    let area = memory.bytes(F_SEGMENT, F_SEGMENT_LEN)?;
    parse::scan(area, F_SEGMENT)
}

/// The structure table an entry point describes and the count bound to walk
/// it with.
pub fn structure_table<'m, M: PhysicalMemory>(
    memory: &'m M,
    entry: &EntryPoint,
) -> Option<(&'m [u8], usize)> {
    let table = memory.bytes(entry.table_address, entry.table_len as usize)?;
    let count = entry.structure_count.map_or(MAX_STRUCTURES, usize::from);
    Some((table, count))
}

/// Logs the SMBIOS version and system identity; returns the entry point's
/// address for the EFI configuration table.
pub fn log_system_info() -> Option<(u64, EntryPoint)> {
    let (address, entry) = discover()?;
    log::info!(
        "smbios: {}.{} entry point at {address:#x}, table at {:#x}",
        entry.major,
        entry.minor,
        entry.table_address
    );
    if let Some((table, count)) = structure_table(&IdentityMapped, &entry) {
        match SystemInfo::from_table(table, count) {
            Ok(info) => log::info!(
                "smbios: {} {} (BIOS {} {})",
                Text(info.manufacturer),
                Text(info.product),
                Text(info.bios_vendor),
                Text(info.bios_version)
            ),
            Err(err) => log::warn!("smbios: structure table: {err}"),
        }
    }
    Some((address, entry))
}

/// Shows an optional SMBIOS string, `?` when absent.
struct Text<'a>(Option<&'a [u8]>);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{}", crate::acpi::Ascii(s)),
            None => f.write_str("?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse::*;
    use super::*;
    use crate::acpi::parse::checksum;
    use crate::acpi::test_tables::FakeMemory;
    use alloc::vec;
    use alloc::vec::Vec;

    fn fix(bytes: &mut [u8], at: usize) {
        bytes[at] = 0;
        bytes[at] = 0u8.wrapping_sub(checksum(bytes));
    }

    fn dmi(table: u32, len: u16, count: u16) -> Vec<u8> {
        let mut b = vec![0u8; 15];
        b[..5].copy_from_slice(b"_DMI_");
        b[6..8].copy_from_slice(&len.to_le_bytes());
        b[8..12].copy_from_slice(&table.to_le_bytes());
        b[12..14].copy_from_slice(&count.to_le_bytes());
        b[14] = 0x28;
        fix(&mut b, 5);
        b
    }

    fn sm2(table: u32, len: u16, count: u16) -> Vec<u8> {
        let mut b = vec![0u8; 0x1f];
        b[..4].copy_from_slice(b"_SM_");
        b[5] = 0x1f;
        b[6] = 2;
        b[7] = 8;
        b[0x10..0x1f].copy_from_slice(&dmi(table, len, count));
        fix(&mut b, 4);
        b
    }

    fn sm3(table: u64, max: u32) -> Vec<u8> {
        let mut b = vec![0u8; 0x18];
        b[..5].copy_from_slice(b"_SM3_");
        b[6] = 0x18;
        b[7] = 3;
        b[8] = 2;
        b[0x0a] = 1;
        b[0x0c..0x10].copy_from_slice(&max.to_le_bytes());
        b[0x10..0x18].copy_from_slice(&table.to_le_bytes());
        fix(&mut b, 5);
        b
    }

    /// Type 0, type 1 with strings, a type 32 without strings, end.
    fn sample_table() -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&[0, 0x18, 0, 0, 1, 2]);
        t.extend_from_slice(&[0; 0x18 - 6]);
        t.extend_from_slice(b"vmfw\x000.1\0\0");
        let mut sys = vec![1, 0x1b, 1, 0, 1, 2, 0, 0];
        sys.resize(0x1b, 0);
        t.extend_from_slice(&sys);
        t.extend_from_slice(b"QEMU\0Standard PC (Q35 + ICH9, 2009)\0\0");
        t.extend_from_slice(&[32, 0x0b, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        t.extend_from_slice(&[127, 4, 3, 0, 0, 0]);
        t
    }

    #[test]
    fn entry_points_decode() {
        let e = EntryPoint::parse(&sm3(0xbfff_0000, 0x200)).unwrap();
        assert_eq!((e.major, e.minor), (3, 2));
        assert_eq!(e.table_address, 0xbfff_0000);
        assert_eq!(e.table_len, 0x200);
        assert_eq!(e.structure_count, None);

        let e = EntryPoint::parse(&sm2(0xf1000, 0x123, 9)).unwrap();
        assert_eq!((e.major, e.minor), (2, 8));
        assert_eq!(e.table_address, 0xf1000);
        assert_eq!(e.table_len, 0x123);
        assert_eq!(e.structure_count, Some(9));
        assert_eq!(e.entry_point_len, 0x1f);

        let e = EntryPoint::parse(&dmi(0xf1000, 0x40, 3)).unwrap();
        assert_eq!((e.major, e.minor), (2, 8));
        assert_eq!(e.entry_point_len, 15);
    }

    #[test]
    fn entry_point_checksums_are_enforced() {
        let mut b = sm3(0x1000, 0x100);
        b[0x10] ^= 1;
        assert!(matches!(
            EntryPoint::parse(&b),
            Err(SmbiosError::BadChecksum { anchor, .. }) if &anchor == b"_SM3_"
        ));
        // Corrupting the intermediate part breaks both checksums; fixing the
        // outer one still leaves the intermediate one failing.
        let mut b = sm2(0x1000, 0x100, 1);
        b[0x18] ^= 1;
        fix(&mut b, 4);
        assert!(matches!(
            EntryPoint::parse(&b),
            Err(SmbiosError::BadChecksum { anchor, .. }) if &anchor == b"_DMI_"
        ));
        assert!(matches!(
            EntryPoint::parse(b"_SM3_"),
            Err(SmbiosError::Truncated { .. })
        ));
        assert!(matches!(
            EntryPoint::parse(b"hello world, not an anchor"),
            Err(SmbiosError::BadAnchor(_))
        ));
    }

    #[test]
    fn scan_prefers_v3_and_honours_alignment() {
        let mut area = vec![0u8; 0x100];
        area[0x10..0x2f].copy_from_slice(&sm2(0xf1000, 0x40, 3));
        area[0x38..0x50].copy_from_slice(&sm3(0x1000, 0x40)); // misaligned
        assert_eq!(scan(&area, 0xf0000).unwrap().0, 0xf0010);
        area[0x80..0x98].copy_from_slice(&sm3(0x1000, 0x40));
        let (address, entry) = scan(&area, 0xf0000).unwrap();
        assert_eq!(address, 0xf0080);
        assert_eq!(entry.major, 3);
        assert_eq!(scan(&[0u8; 64], 0xf0000), None);
    }

    #[test]
    fn structures_and_strings() {
        let table = sample_table();
        let all: Vec<_> = Structures::new(&table, 100)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            all.iter().map(|s| s.kind).collect::<Vec<_>>(),
            [0, 1, 32, 127]
        );
        assert_eq!(all[1].handle, 1);
        assert_eq!(all[1].string(1), Some(&b"QEMU"[..]));
        assert_eq!(
            all[1].string(2),
            Some(&b"Standard PC (Q35 + ICH9, 2009)"[..])
        );
        assert_eq!(all[1].string(0), None);
        assert_eq!(all[1].string(3), None);
        assert_eq!(all[2].string(1), None);

        let info = SystemInfo::from_table(&table, 100).unwrap();
        assert_eq!(info.manufacturer, Some(&b"QEMU"[..]));
        assert_eq!(info.bios_vendor, Some(&b"vmfw"[..]));
        assert_eq!(info.bios_version, Some(&b"0.1"[..]));
    }

    #[test]
    fn walk_is_bounded() {
        let table = sample_table();
        assert_eq!(Structures::new(&table, 2).count(), 2);
        // Nothing after the end-of-table structure is visited.
        let mut longer = table.clone();
        longer.extend_from_slice(&[1, 4, 9, 0, 0, 0]);
        assert_eq!(Structures::new(&longer, 100).count(), 4);

        let mut bad = table.clone();
        bad[1] = 2;
        let results: Vec<_> = Structures::new(&bad, 100).collect();
        assert_eq!(
            results,
            vec![Err(SmbiosError::BadStructureLength {
                offset: 0,
                length: 2
            })]
        );
        let cut = &table[..table.len() - 20];
        let last = Structures::new(cut, 100).last().unwrap();
        assert!(matches!(last, Err(SmbiosError::UnterminatedStrings { .. })));
    }

    #[test]
    fn discover_through_memory() {
        let mut memory = FakeMemory::default();
        let mut segment = vec![0u8; 0x10000];
        segment[0x20..0x38].copy_from_slice(&sm3(0x9000, 0x200));
        memory.put(0xf0000, segment);
        let table = sample_table();
        memory.put(0x9000, table.clone());
        let (address, entry) = discover_in(&memory).unwrap();
        assert_eq!(address, 0xf0020);
        // The 3.x length is a maximum: here it overshoots the mapped bytes,
        // so reading fails rather than reading past the table.
        assert!(structure_table(&memory, &entry).is_none());
        let exact = EntryPoint {
            table_len: table.len() as u32,
            ..entry
        };
        let (bytes, count) = structure_table(&memory, &exact).unwrap();
        assert_eq!(count, MAX_STRUCTURES);
        let info = SystemInfo::from_table(bytes, count).unwrap();
        assert_eq!(info.product, Some(&b"Standard PC (Q35 + ICH9, 2009)"[..]));
    }
}
