//! The UEFI SCT's across-reset rules of the runtime services, through the `sctreset` EFI
//! app (tests/efi-apps/sctreset): the monotonic count's high half grows across a reset
//! (UEFI 2.10 §7.5.3, §8.5.2), GetTime keeps SetTime's TimeZone and Daylight (§8.3.2), and
//! an armed wakeup alarm stays armed at the same time (§8.3.3/§8.3.4).
//!
//! - `rules_hold_across_reset_on_firmware`: ResetSystem(EfiResetCold) in the same QEMU
//!   process, as the SCT does it;
//! - `rules_hold_across_power_cycle_on_firmware`: the second boot in a fresh QEMU process on
//!   the same disk (new CMOS clock, so only what reached `\EFI\vmfw\vars.bin` remains);
//! - `rules_hold_across_reset_on_ovmf`: the same app on edk2 OVMF, the reference, which
//!   breaks the wakeup rule (the app skips it there and says why).

use std::time::Duration;

use vm_tests::{EspBuilder, TempDisk, Vm, efi_app, firmware};

const STEP: Duration = Duration::from_secs(180);

fn sctreset_disk(name: &str) -> TempDisk {
    let image = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("sctreset"))
        .build();
    TempDisk::copy_of(&image, &format!("sctreset-{name}"))
}

/// Expects the second boot's verdict: `passed` rules passed, none failed, then power-off.
fn expect_all_passed(vm: &mut Vm, passed: u32) {
    let summary = vm.expect(" passed, ", STEP).unwrap();
    let failures: Vec<String> = vm
        .transcript()
        .lines()
        .filter(|l| l.contains("SCTRESET: FAIL"))
        .map(str::to_owned)
        .collect();
    assert!(
        summary
            .line
            .trim_end()
            .ends_with(&format!("{passed} passed, 0 failed")),
        "{}\n{}",
        summary.line,
        failures.join("\n")
    );
    vm.wait_exit(STEP).unwrap();
}

#[test]
fn rules_hold_across_reset_on_firmware() {
    let disk = sctreset_disk("reset");
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .arg("-action")
        .arg("reboot=reset")
        .spawn();
    vm.expect("SCTRESET: SetWakeupTime status=0x0", STEP)
        .unwrap();
    vm.expect("SCTRESET: resetting", STEP).unwrap();
    expect_all_passed(&mut vm, 4);
}

#[test]
fn rules_hold_across_power_cycle_on_firmware() {
    let disk = sctreset_disk("power-cycle");
    // `-no-reboot` (the harness default) ends the process at the reset.
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .spawn();
    vm.expect("SCTRESET: resetting", STEP).unwrap();
    vm.wait_exit(STEP).unwrap();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .spawn();
    expect_all_passed(&mut vm, 4);
    assert!(!vm.transcript().contains("SCTRESET: resetting"));
}

#[test]
fn rules_hold_across_reset_on_ovmf() {
    let disk = sctreset_disk("ovmf");
    let mut vm = Vm::builder()
        .ovmf()
        .disk_writable(&disk.0)
        .arg("-action")
        .arg("reboot=reset")
        .spawn();
    vm.expect("SCTRESET: SetWakeupTime status=0x0", STEP)
        .unwrap();
    vm.expect("SCTRESET: resetting", STEP).unwrap();
    // edk2 leaves the wakeup alarm disarmed after a reset: the app skips that rule there.
    expect_all_passed(&mut vm, 3);
}
