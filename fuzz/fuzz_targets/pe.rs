//! PE32+ headers, section layout and base relocations (PE/COFF
//! specification; UEFI 2.10 §2.1.1): parse (also from a file's head alone,
//! as LoadImage does), then load at an odd address so every relocation is
//! applied (`load`, which reads through `load_from` as LoadImage does).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Images larger than this are not laid out (keeps each run fast; the
/// parser's own limits are exercised either way).
const MAX_LOADED: u32 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    // The headers-only section table reader (UKI metadata) must not panic either.
    let _ = efi::pe::section_headers(data);
    // LoadImage reads only a file's head before checking its headers
    // (`parse_headers` with the whole file's length): the head alone, as a
    // file whose sections lie beyond it, must not panic either.
    let _ = efi::pe::parse_headers(&data[..data.len().min(4096)], data.len().saturating_mul(2));
    let Ok(info) = efi::pe::parse(data) else {
        return;
    };
    let _ = info.nx_compat();
    for index in 0..16 {
        let _ = info.data_directory(index);
    }
    if info.size_of_image <= MAX_LOADED {
        let mut dest = vec![0u8; info.size_of_image as usize];
        let _ = efi::pe::load(data, &info, &mut dest, 0x7654_3000);
    }
});
