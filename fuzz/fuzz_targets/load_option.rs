//! EFI_LOAD_OPTION (UEFI 2.10 §3.1.3) and BootOrder: decode, re-encode, and
//! decode again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loaders::load_option::{LoadOption, parse_boot_order, serialize_boot_order};

fuzz_target!(|data: &[u8]| {
    if let Ok(option) = LoadOption::parse(data) {
        let _ = option.is_active();
        let _ = option.device_path().to_text();
        if let Ok(bytes) = option.to_bytes() {
            assert_eq!(LoadOption::parse(&bytes).ok(), Some(option));
        }
    }
    if let Ok(order) = parse_boot_order(data) {
        assert_eq!(serialize_boot_order(&order), data);
    }
});
