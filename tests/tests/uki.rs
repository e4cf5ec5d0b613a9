//! BLS Type #2: a unified kernel image in `/EFI/Linux/` booted by the
//! firmware's built-in BLS loader. The UKI (Debian's systemd stub + kernel +
//! initrd + command line) is assembled with objcopy; the test passes only
//! on lines printed by its initrd's `/init`.

use std::time::Duration;

use vm_tests::{
    EspBuilder, SYSTEMD_STUB, Vm, deb_trixie, debian_kernel, debian13_kernel,
    expect_linux_environment, firmware, initramfs, initramfs_for, unified_kernel_image,
    unified_kernel_image_on,
};

const TIMEOUT: Duration = Duration::from_secs(300);
const UKI_CMDLINE: &str = "console=ttyS0 panic=-1 vmfw.entry=uki";

/// Boots the firmware on `disk` and waits for the UKI's kernel to report the
/// embedded command line, the Linux environment and a finished `/init`.
fn boot_uki_to_userspace(disk: &std::path::Path) -> Vm {
    let mut vm = Vm::builder().firmware(firmware()).disk(disk).spawn();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains(UKI_CMDLINE),
        "the UKI's embedded .cmdline reached /proc/cmdline: {}",
        cmdline.line
    );
    expect_linux_environment(&mut vm, TIMEOUT);
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    vm
}

/// The ESP holds a UKI and a Type #1 entry of an older version with the same
/// sort-key: sorted together as the BLS says, the UKI (newer `.uname`) comes
/// first and boots with the command line embedded in it.
#[test]
fn unified_kernel_image_boots_with_embedded_cmdline() {
    let kernel = debian_kernel();
    let initrd = initramfs("", &[]);
    let os_release = "PRETTY_NAME=\"Debian UKI (vmfw test)\"\nID=debian\nVERSION_ID=\"12\"\n";
    let uki = unified_kernel_image(&kernel, &initrd, UKI_CMDLINE, os_release);
    let older = "title Debian older\n\
                 sort-key debian\n\
                 version 0.1-amd64\n\
                 linux /vmlinuz\n\
                 initrd /initrd.img\n\
                 options console=ttyS0 panic=-1 vmfw.entry=type1\n";
    let disk = EspBuilder::new()
        .file("/EFI/Linux/debian-uki.efi", &uki)
        .file("/vmlinuz", &kernel.vmlinuz)
        .file("/initrd.img", &initrd)
        .bytes("/loader/entries/older.conf", older)
        .build();
    let vm = boot_uki_to_userspace(&disk);
    let version = &kernel.version;
    assert!(
        vm.find(&format!(
            "booting BLS entry 'Debian UKI (vmfw test) ({version})'"
        ))
        .is_some(),
        "the firmware titled the UKI from its .osrel and .uname"
    );
}

/// Debian 13's systemd stub (257) around the 6.12 kernel, alone on the ESP.
#[test]
fn debian13_unified_kernel_image_boots() {
    let kernel = debian13_kernel();
    let initrd = initramfs_for(&kernel, "", &[]);
    let stub = deb_trixie("systemd-boot-efi").join(SYSTEMD_STUB);
    let os_release = "PRETTY_NAME=\"Debian 13 UKI (vmfw test)\"\nID=debian\nVERSION_ID=\"13\"\n";
    let uki = unified_kernel_image_on(&stub, &kernel, &initrd, UKI_CMDLINE, os_release);
    let disk = EspBuilder::new()
        .file("/EFI/Linux/debian13-uki.efi", &uki)
        .build();
    boot_uki_to_userspace(&disk);
}
