//! HII package lists (UEFI 2.10 §33.3.1) as a caller hands them to
//! NewPackageList or UpdatePackageList: the package walk, string-package
//! languages and the string-block walk behind GetString (§33.3.6.2), the
//! string package edit model behind NewString/SetString (parse, edit,
//! serialize), list updates and keyboard layouts, for the ids and languages
//! the first two input bytes choose.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocols::hii::packages::{keyboard_layouts, normalize, update_list};
use protocols::hii::strings::{StringPackage, new_string, secondary_languages, set_string};
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
                // What the edit model writes must read back the same.
                if let Ok(parsed) = StringPackage::parse(package) {
                    if let Ok(written) = parsed.serialize() {
                        assert_eq!(StringPackage::parse(&written).as_ref(), Ok(&parsed));
                    }
                }
            }
        }
    }
    if let Ok(all) = languages(list) {
        for language in all.split(|&b| b == b';') {
            let _ = list_string(list, language, id);
            let _ = secondary_languages(list, language);
            let _ = set_string(list, id, language, None, &[0x41]);
        }
    }
    let _ = list_string(list, b"en-US", id);
    let _ = has_package(list, PACKAGE_TYPE_STRINGS, None);
    let _ = has_package(list, 0x01, None);
    let _ = keyboard_layouts(list);
    let _ = new_string(list, b"en-US", Some(&[0x45]), None, &[0x41]);
    if let Ok(canonical) = normalize(list) {
        let _ = update_list(&canonical, list);
    }
});
