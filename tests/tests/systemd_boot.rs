//! systemd-boot (Debian's `systemd-boot-efi`, from Debian 12 and 13) as
//! `\EFI\BOOT\BOOTX64.EFI` reads the same BLS Type #1 entries as the built-in
//! loader and boots the Debian kernel. Passes only on lines printed by the initrd's `/init`.

use std::path::PathBuf;
use std::time::Duration;

use vm_tests::{
    DebianKernel, EspBuilder, SYSTEMD_BOOT_EFI, Vm, bls_entry, deb_trixie, debian_kernel,
    debian13_kernel, expect_linux_environment, firmware, initramfs, initramfs_for, systemd_boot,
};

const TIMEOUT: Duration = Duration::from_secs(300);
const SD_CMDLINE: &str = "console=ttyS0 panic=-1 vmfw.entry=systemd-boot";
/// systemd-boot records the entry it booted in `LoaderEntrySelected`
/// (systemd's Boot Loader Interface, vendor GUID 4a67b082-...): the firmware's
/// own BLS loader, which would boot the same entry were systemd-boot to fail,
/// does not set it. Printed without the attribute bytes and UTF-16 NULs.
const REPORT_SELECTED_ENTRY: &str = r#"v=/sys/firmware/efi/efivars/LoaderEntrySelected-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f
if [ -f "$v" ]; then echo "INIT: loader-entry-selected=$(tail -c +5 "$v" | tr -d '\000')"; else echo "INIT: loader-entry-selected=none"; fi"#;

/// Boots `systemd_boot` as `\EFI\BOOT\BOOTX64.EFI` with one BLS entry for
/// `kernel` and `initrd`, and checks systemd-boot itself booted it.
fn assert_systemd_boot_boots(systemd_boot: PathBuf, kernel: &DebianKernel, initrd: PathBuf) {
    let version = &kernel.version;
    let entry = bls_entry("Debian GNU/Linux (systemd-boot test)", version, SD_CMDLINE);
    let disk = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", systemd_boot)
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), initrd)
        .bytes("/loader/loader.conf", "timeout 0\ndefault debian.conf\n")
        .bytes("/loader/entries/debian.conf", entry)
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(&disk).spawn();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains(SD_CMDLINE),
        "the entry's options reached /proc/cmdline: {}",
        cmdline.line
    );
    expect_linux_environment(&mut vm, TIMEOUT);
    let selected = vm.expect("INIT: loader-entry-selected=", TIMEOUT).unwrap();
    assert!(
        selected
            .line
            .ends_with("INIT: loader-entry-selected=debian.conf"),
        "systemd-boot (not the firmware's BLS loader) booted the entry: {}",
        selected.line
    );
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}

/// Debian 12: systemd-boot 252 and kernel 6.1.
#[test]
fn systemd_boot_picks_the_bls_entry() {
    let kernel = debian_kernel();
    let initrd = initramfs(REPORT_SELECTED_ENTRY, &[]);
    assert_systemd_boot_boots(systemd_boot(), &kernel, initrd);
}

/// Debian 13: systemd-boot 257 and kernel 6.12.
#[test]
fn debian13_systemd_boot_picks_the_bls_entry() {
    let kernel = debian13_kernel();
    let initrd = initramfs_for(&kernel, REPORT_SELECTED_ENTRY, &[]);
    let systemd_boot = deb_trixie("systemd-boot-efi").join(SYSTEMD_BOOT_EFI);
    assert_systemd_boot_boots(systemd_boot, &kernel, initrd);
}
