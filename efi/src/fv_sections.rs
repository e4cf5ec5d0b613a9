//! The pure part of the firmware volume (`crate::firmware_volume`): the
//! contents of its files as PI section streams, the section lookup
//! ReadSection does over them, and the key walk of GetNextFile.
//!
//! A file of the firmware's volume has no code of its own to give (the code
//! is the firmware's); its contents are one EFI_SECTION_USER_INTERFACE
//! section holding its name (PI 1.8 vol. 3 §2.1.4.1.7 and §3.2.5: a
//! EFI_COMMON_SECTION_HEADER, 24-bit size including the header and a type
//! byte, then the NUL-terminated UCS-2 string). ReadFile returns that
//! stream, ReadSection finds sections in it like in any FFS file.

#![forbid(unsafe_code)]

use alloc::vec::Vec;

/// EFI_SECTION_USER_INTERFACE (PI vol. 3 §3.2.5.2).
pub const SECTION_USER_INTERFACE: u8 = 0x15;
/// EFI_COMMON_SECTION_HEADER: Size[3] and Type.
const SECTION_HEADER: usize = 4;
/// Sections start on 4-byte boundaries within a file (PI vol. 3 §2.1.4).
const SECTION_ALIGNMENT: usize = 4;
/// The largest size the 24-bit Size field holds; larger sections need the
/// extended header, which names never need.
const MAX_SECTION: usize = 0x00ff_ffff;

/// The section stream of a file named `name`: its user-interface section.
/// None for a name too long for a common section header.
pub fn file_contents(name: &str) -> Option<Vec<u8>> {
    let units = name.encode_utf16().count().checked_add(1)?;
    let size = units.checked_mul(2)?.checked_add(SECTION_HEADER)?;
    if size > MAX_SECTION {
        return None;
    }
    let mut stream = Vec::with_capacity(size);
    stream.extend_from_slice(&u32::try_from(size).ok()?.to_le_bytes()[..3]);
    stream.push(SECTION_USER_INTERFACE);
    for unit in name.encode_utf16().chain([0]) {
        stream.extend_from_slice(&unit.to_le_bytes());
    }
    Some(stream)
}

/// The contents (without header) of the `instance`-th (zero-based) section
/// of `section_type` in `stream`, searched left to right as ReadSection
/// does (PI vol. 3 §3.4.1.5). None when there is none or the stream is
/// malformed before it.
pub fn find_section(stream: &[u8], section_type: u8, instance: usize) -> Option<&[u8]> {
    let mut offset = 0usize;
    let mut seen = 0usize;
    while offset < stream.len() {
        let header = stream.get(offset..offset.checked_add(SECTION_HEADER)?)?;
        let size =
            usize::from(header[0]) | (usize::from(header[1]) << 8) | (usize::from(header[2]) << 16);
        // A size of 0xFFFFFF marks the extended header, which our files
        // never hold; smaller than a header is corrupt.
        if !(SECTION_HEADER..MAX_SECTION).contains(&size) {
            return None;
        }
        let end = offset.checked_add(size)?;
        let body = stream.get(offset + SECTION_HEADER..end)?;
        if header[3] == section_type {
            if seen == instance {
                return Some(body);
            }
            seen += 1;
        }
        offset = end.checked_next_multiple_of(SECTION_ALIGNMENT)?;
    }
    None
}

/// GetNextFile's walk (PI vol. 3 §3.4.1.7): the key is the index of the
/// next file to look at (0, the all-zero key, starts over). Returns the
/// index of the first file at or after `key` that `wanted` accepts; the
/// caller's next key is that index + 1. None when no file is left.
pub fn next_file<T>(files: &[T], key: u64, wanted: impl Fn(&T) -> bool) -> Option<usize> {
    let start = usize::try_from(key).ok()?;
    files
        .get(start..)?
        .iter()
        .position(wanted)
        .and_then(|found| start.checked_add(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ucs2(name: &str) -> Vec<u8> {
        name.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    #[test]
    fn a_file_is_one_user_interface_section() {
        let stream = file_contents("FatDriver").unwrap();
        assert_eq!(stream.len(), 4 + 2 * 10);
        assert_eq!(&stream[..4], &[24, 0, 0, SECTION_USER_INTERFACE]);
        assert_eq!(
            find_section(&stream, SECTION_USER_INTERFACE, 0),
            Some(&ucs2("FatDriver")[..])
        );
    }

    #[test]
    fn other_types_and_instances_are_not_found() {
        let stream = file_contents("Boot menu").unwrap();
        assert_eq!(find_section(&stream, 0x10, 0), None); // PE32
        assert_eq!(find_section(&stream, SECTION_USER_INTERFACE, 1), None);
        assert_eq!(find_section(&[], SECTION_USER_INTERFACE, 0), None);
    }

    #[test]
    fn sections_are_walked_on_4_byte_boundaries() {
        // A 6-byte RAW section (padded to 8), then two UI sections.
        let mut stream = vec![6, 0, 0, 0x19, 0xaa, 0xbb, 0, 0];
        let first = file_contents("A").unwrap(); // 8 bytes
        let second = file_contents("BC").unwrap(); // 10 bytes
        stream.extend_from_slice(&first);
        stream.extend_from_slice(&second);
        assert_eq!(find_section(&stream, 0x19, 0), Some(&[0xaa, 0xbb][..]));
        assert_eq!(
            find_section(&stream, SECTION_USER_INTERFACE, 0),
            Some(&ucs2("A")[..])
        );
        assert_eq!(
            find_section(&stream, SECTION_USER_INTERFACE, 1),
            Some(&ucs2("BC")[..])
        );
    }

    #[test]
    fn malformed_streams_end_the_search() {
        // Size smaller than the header, size past the end, extended header,
        // a truncated header: nothing found, nothing panics.
        for stream in [
            &[2, 0, 0, SECTION_USER_INTERFACE][..],
            &[40, 0, 0, SECTION_USER_INTERFACE, 0, 0][..],
            &[0xff, 0xff, 0xff, SECTION_USER_INTERFACE, 0, 0, 0, 0][..],
            &[8, 0][..],
        ] {
            assert_eq!(find_section(stream, SECTION_USER_INTERFACE, 0), None);
        }
    }

    #[test]
    fn overlong_names_have_no_section() {
        let name = "x".repeat(MAX_SECTION / 2);
        assert!(file_contents(&name).is_none());
    }

    #[test]
    fn the_key_walks_matching_files_in_order() {
        let files = [1, 2, 3, 4, 5];
        let even = |f: &i32| f % 2 == 0;
        let mut key = 0u64;
        let mut seen = Vec::new();
        while let Some(found) = next_file(&files, key, even) {
            seen.push(files[found]);
            key = found as u64 + 1;
        }
        assert_eq!(seen, [2, 4]);
        assert_eq!(next_file(&files, 0, |_| true), Some(0));
        assert_eq!(next_file(&files, 5, |_| true), None);
        assert_eq!(next_file(&files, 6, |_| true), None);
        assert_eq!(next_file(&files, u64::MAX, |_| true), None);
        assert_eq!(next_file::<i32>(&[], 0, |_| true), None);
    }
}
