//! Our firmware on its own: it must come up, report the platform it found and, with nothing
//! to boot, say so. How fast it does that is the benchmark's job (`bench`, firmware phase
//! times), not a timed assertion here: a loaded CI machine must not fail a correct firmware.

use std::time::Duration;

use vm_tests::{EspBuilder, Vm, boot_firmware, firmware};

const WAIT: Duration = Duration::from_secs(60);

/// Waits for the "no bootable device" report, then checks the start-up lines came before it.
fn assert_reports_platform_and_no_boot_device(vm: &mut Vm) {
    let last = vm.expect("no bootable device", WAIT).unwrap();
    for pattern in ["vmfw", "RSDP at 0x", "memory map"] {
        let found = vm
            .find(pattern)
            .unwrap_or_else(|| panic!("firmware never printed {pattern:?}"));
        assert!(
            found.elapsed <= last.elapsed,
            "{pattern:?} came after the no-bootable-device report: {:?}",
            found.line
        );
    }
}

#[test]
fn boots_without_disk_and_reports_no_bootable_device() {
    let mut vm = Vm::builder().firmware(firmware()).spawn();
    assert_reports_platform_and_no_boot_device(&mut vm);
}

#[test]
fn empty_esp_is_not_bootable() {
    let disk = EspBuilder::new().dir("/EFI/BOOT").build();
    let mut vm = boot_firmware(&disk);
    assert_reports_platform_and_no_boot_device(&mut vm);
}
