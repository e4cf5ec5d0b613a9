//! HII package lists (UEFI 2.10 §33.3.1) as a caller hands them to
//! NewPackageList: the package walk, string-package languages, and the
//! string-block walk behind GetString (§33.3.6.2), for the ids and
//! languages the first two input bytes choose.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocols::hii::{
    find_string, has_package, languages, list_string, package_language, packages,
};

/// String package type (§33.3.1, EFI_HII_PACKAGE_STRINGS).
const PACKAGE_TYPE_STRINGS: u8 = 0x04;

fuzz_target!(|data: &[u8]| {
    let Some((id, list)) = data.split_first_chunk::<2>() else {
        return;
    };
    let id = u16::from_le_bytes(*id);
    if let Ok(found) = packages(list) {
        for (package_type, package) in found {
            if package_type == PACKAGE_TYPE_STRINGS {
                let _ = package_language(package);
                let _ = find_string(package, id);
                let _ = find_string(package, 1);
            }
        }
    }
    if let Ok(all) = languages(list) {
        for language in all.split(|&b| b == b';') {
            let _ = list_string(list, Some(language), id);
        }
    }
    let _ = list_string(list, None, id);
    let _ = list_string(list, Some(b"en-US"), id);
    let _ = has_package(list, PACKAGE_TYPE_STRINGS, None);
    let _ = has_package(list, 0x01, None);
});
