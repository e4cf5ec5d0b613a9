//! Unified kernel images (UAPI "Unified Kernel Image", BLS Type #2): the PE
//! section table the boot manager reads from a UKI's first
//! `HEADER_READ_SIZE` bytes, then the `.osrel` and `.uname` sections it
//! builds the menu entry from, as `loaders::bls_boot` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loaders::uki::{
    HEADER_READ_SIZE, MAX_METADATA_SIZE, is_pe_image, parse_os_release, sections, type2_entry,
};

/// The contents of a section, when they lie inside `data`.
fn contents(data: &[u8], offset: u32, size: u32) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    data.get(start..end)
}

fuzz_target!(|data: &[u8]| {
    let header = &data[..data.len().min(HEADER_READ_SIZE)];
    let _ = is_pe_image(header);
    let table = sections(header).unwrap_or_default();
    let metadata = |name: &str| {
        let found = table.iter().find(|s| s.name == name)?;
        if found.size > MAX_METADATA_SIZE {
            return None;
        }
        contents(data, found.file_offset, found.size)
    };
    let osrel = metadata(".osrel");
    let uname = metadata(".uname");
    for name in ["debian.efi", "linux+3-1.efi", "uki.EFI", "notes.txt"] {
        if let Some(entry) = type2_entry(name, osrel, uname) {
            assert_eq!(entry.file_name, name);
        }
    }
    let _ = parse_os_release(data);
});
