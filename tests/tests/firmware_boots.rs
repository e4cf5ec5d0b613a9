//! Our firmware on its own: it must come up, report the platform it found and, with nothing
//! to boot, say so, all within 2 s of QEMU's start (under TCG).

use std::time::Duration;

use vm_tests::{EspBuilder, Vm, boot_firmware, firmware};

/// The start-up budget. Generous expect timeouts give better failure messages than a 2 s one;
/// the budget is asserted on the line timestamps.
const STARTUP_BUDGET: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(20);

/// Waits for the "no bootable device" report, then checks each start-up line arrived in time.
fn assert_reports_platform_and_no_boot_device(vm: &mut Vm) {
    let last = vm.expect("no bootable device", WAIT).unwrap();
    for pattern in ["vmfw", "RSDP at 0x", "memory map", "no bootable device"] {
        let found = vm
            .find(pattern)
            .unwrap_or_else(|| panic!("firmware never printed {pattern:?}"));
        assert!(
            found.elapsed <= STARTUP_BUDGET,
            "{pattern:?} came {:?} after start: {:?}",
            found.elapsed,
            found.line
        );
    }
    assert!(last.elapsed <= STARTUP_BUDGET);
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
