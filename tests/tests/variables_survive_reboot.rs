//! Non-volatile variables the booted OS writes after ExitBootServices survive a reboot
//! (issue 17): the firmware keeps them in a journal in reserved RAM, which a warm reset keeps,
//! and writes them to `\EFI\vmfw\vars.bin` at the next start (`efi::runtime::journal`,
//! `loaders::nv_journal`). Debian's kernel boots through the built-in BLS loader from a writable
//! disk; the test initramfs's `/init` writes a variable through efivarfs on the boot where it is
//! absent, then reboots, and reports it on the boot where it is present. Each test passes only on
//! the booted system's own `INIT:` lines (and the firmware's serial for the journal).
//!
//! - `os_variable_survives_acpi_reset`: `reboot -f` with the kernel's default method (on q35 the
//!   ACPI reset register: the firmware logs no ResetSystem call); afterwards a fresh QEMU process on the same disk still sees the
//!   variable, so the journal reached the disk.
//! - `os_variable_survives_efi_reset`: the same with `reboot=efi` (ResetSystem, as a guest of a
//!   HW-reduced-ACPI VMM such as Cloud Hypervisor resets; the firmware logs the call).
//! - `os_variable_survives_efi_reset_debian13`: the same with Debian 13's kernel 6.12.
//! - `power_off_loses_os_variable`: `poweroff -f` ends the QEMU process, RAM and the journal with
//!   it: the next process does not see the variable. This is the documented limit.

use std::time::Duration;

use vm_tests::{
    BLS_CMDLINE, DebianKernel, EspBuilder, TempDisk, Vm, bls_entry, debian_kernel, debian13_kernel,
    firmware, initramfs_for,
};

const STEP: Duration = Duration::from_secs(300);
const EXIT: Duration = Duration::from_secs(60);

/// The variable `/init` writes: `VmfwJournal-<GUID>`, NV|BS|RT, this value.
const VARIABLE: &str = "VmfwJournal-3c1f9a52-7d64-4b1e-a8e3-5f02c9d7b416";
const VALUE: &str = "written-by-linux";

/// `/init`'s extra script: report the variable when present; otherwise write it through
/// efivarfs (4 bytes of attributes, NV|BS|RT = 7, then the data) and run `then_on_first_boot`.
fn init_script(then_on_first_boot: &str) -> String {
    format!(
        r#"
v=/sys/firmware/efi/efivars/{VARIABLE}
if [ -e $v ]; then
  echo "INIT: survived $(tail -c +5 $v)"
else
  echo "INIT: journal variable absent"
  if printf '\007\000\000\000{VALUE}' > $v; then
    echo "INIT: journal variable written"
  else
    echo "INIT: journal variable write failed"
  fi
  {then_on_first_boot}
fi
"#
    )
}

/// A writable copy of a disk whose ESP holds Debian's kernel, an initramfs running `script`,
/// and a BLS entry with `options` (the built-in BLS loader boots it: no removable-media path).
fn bls_disk(kernel: &DebianKernel, name: &str, script: &str, options: &str) -> TempDisk {
    let version = &kernel.version;
    let image = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(
            &format!("/initrd.img-{version}"),
            initramfs_for(kernel, script, &[]),
        )
        .bytes(
            "/loader/entries/debian.conf",
            bls_entry("Debian journal test", version, options),
        )
        .build();
    TempDisk::copy_of(&image, &format!("journal-{name}"))
}

fn expect_line(vm: &mut Vm, line: &str) {
    if let Err(e) = vm.expect(line, STEP) {
        panic!("expected {line:?}: {e}");
    }
}

/// First boot writes and reboots through the kernel's reboot method; the firmware applies the
/// journal; the second boot (same QEMU process) reports the value; then a fresh QEMU process
/// reports it from the disk.
fn survives_reboot(kernel: &DebianKernel, name: &str, options: &str, through_reset_system: bool) {
    let disk = bls_disk(kernel, name, &init_script("sync\n  reboot -f"), options);
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .arg("-action")
        .arg("reboot=reset")
        .spawn();
    expect_line(&mut vm, "INIT: journal variable absent");
    expect_line(&mut vm, "INIT: journal variable written");
    if through_reset_system {
        expect_line(&mut vm, "ResetSystem: type ");
    }
    expect_line(&mut vm, "variables: journal applied");
    expect_line(&mut vm, &format!("INIT: survived {VALUE}"));
    expect_line(&mut vm, "INIT: done");
    vm.wait_exit(EXIT).unwrap();
    let transcript = vm.transcript();
    assert_eq!(
        transcript.contains("ResetSystem: type "),
        through_reset_system,
        "the guest reset {} ResetSystem:\n{transcript}",
        if through_reset_system {
            "through"
        } else {
            "without"
        }
    );
    assert_eq!(
        transcript.matches("INIT: journal variable absent").count(),
        1,
        "the reboot must not lose the variable:\n{transcript}"
    );

    // The journal went to the ESP: a cold start (new QEMU process, RAM gone) still has it.
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .spawn();
    expect_line(&mut vm, &format!("INIT: survived {VALUE}"));
    expect_line(&mut vm, "INIT: done");
    vm.wait_exit(EXIT).unwrap();
    assert!(
        vm.find("variables: journal applied").is_none(),
        "a cold start finds no journal"
    );
}

#[test]
fn os_variable_survives_acpi_reset() {
    survives_reboot(&debian_kernel(), "acpi", BLS_CMDLINE, false);
}

#[test]
fn os_variable_survives_efi_reset() {
    let options = format!("{BLS_CMDLINE} reboot=efi");
    survives_reboot(&debian_kernel(), "efi", &options, true);
}

/// A newer kernel (Debian 13's 6.12) reaches the journal region through its own runtime
/// mappings as well.
#[test]
fn os_variable_survives_efi_reset_debian13() {
    let options = format!("{BLS_CMDLINE} reboot=efi");
    survives_reboot(&debian13_kernel(), "efi13", &options, true);
}

#[test]
fn power_off_loses_os_variable() {
    // Without a reboot the script runs on to `poweroff -f`, which ends the QEMU process.
    let disk = bls_disk(&debian_kernel(), "poweroff", &init_script(""), BLS_CMDLINE);
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .spawn();
    expect_line(&mut vm, "INIT: journal variable absent");
    expect_line(&mut vm, "INIT: journal variable written");
    expect_line(&mut vm, "INIT: done");
    vm.wait_exit(EXIT).unwrap();

    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .spawn();
    expect_line(&mut vm, "INIT: journal variable absent");
    expect_line(&mut vm, "INIT: done");
    vm.wait_exit(EXIT).unwrap();
    assert!(vm.find("variables: journal applied").is_none());
}
