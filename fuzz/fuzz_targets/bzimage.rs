//! The Linux bzImage setup header (Documentation/arch/x86/boot.rst) and the
//! boot_params page built from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loaders::bzimage::{BootParams, SetupHeader};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = SetupHeader::parse(data) else {
        return;
    };
    let _ = header.kernel(data).len();
    let _ = header.efi_handover_64_offset();
    if let Ok(mut params) = BootParams::new(data, &header) {
        let _ = params.set_cmdline(0x2_0000, 4096);
        let _ = params.set_ramdisk(0x1000_0000, 0x10_0000);
        let _ = params.as_bytes()[0];
    }
});
