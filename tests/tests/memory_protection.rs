//! Memory protection: the firmware maps itself W^X, LoadImage maps an
//! NX_COMPAT application W^X per section, and an application that
//! maps its own code read-only through EFI_MEMORY_ATTRIBUTE_PROTOCOL
//! (UEFI 2.10 §37.7) and then writes to it is stopped by a page fault that
//! the firmware reports with the faulting image's name
//! (tests/efi-apps/wxtest).

use std::time::Duration;

use vm_tests::{EspBuilder, boot_firmware, efi_app};

const TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn write_to_code_mapped_read_only_faults_and_names_the_image() {
    let disk = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("wxtest"))
        .build();
    let mut vm = boot_firmware(&disk);
    vm.expect("wxtest: argument checks passed", TIMEOUT)
        .unwrap();
    vm.expect("wxtest: own image mapped W^X by LoadImage", TIMEOUT)
        .unwrap();
    vm.expect("wxtest: firmware code is RX, data RW+NX", TIMEOUT)
        .unwrap();
    vm.expect("wxtest: writing to own code", TIMEOUT).unwrap();
    let fault = vm
        .expect("*** CPU exception 14 (page fault)", TIMEOUT)
        .unwrap();
    assert!(
        fault.line.contains("error code 0x3"),
        "a write to a present page: {}",
        fault.line
    );
    vm.expect("write to a read-only page", TIMEOUT).unwrap();
    let image = vm.expect("in image ", TIMEOUT).unwrap();
    assert!(
        image.line.contains("BOOTX64.EFI"),
        "the report names the faulting image: {}",
        image.line
    );
    assert!(vm.find("wxtest: FAIL").is_none(), "{}", vm.transcript());
}
