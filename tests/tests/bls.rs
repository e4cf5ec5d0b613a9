//! The firmware's built-in Boot Loader Specification Type #1 boot: an entry in
//! `/loader/entries/` on the ESP boots the Debian kernel through its EFI stub,
//! with the entry's `options` as the kernel command line and its initrds
//! served through the Linux initrd LoadFile2 protocol. Each test passes only on
//! lines printed by the booted kernel's userspace (the initramfs's `/init`).

use std::time::Duration;

use vm_tests::{
    BLS_CMDLINE, EspBuilder, Vm, bls_entry, debian_kernel, debian13_kernel, default_image,
    expect_linux_environment, firmware, initramfs, initramfs_for,
};

const TIMEOUT: Duration = Duration::from_secs(240);

/// Waits for the kernel booted from the BLS entry to report its command line,
/// EFI and a finished `/init`, then for QEMU to exit on the guest's poweroff.
fn assert_booted_from_bls_entry(vm: &mut Vm) {
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.entry=bls"),
        "booted through the BLS entry: {}",
        cmdline.line
    );
    assert!(
        cmdline.line.contains(BLS_CMDLINE),
        "the entry's options reached /proc/cmdline whole: {}",
        cmdline.line
    );
    expect_linux_environment(vm, TIMEOUT);
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    // No `initrd=` is passed: the stub found the initrd through LoadFile2.
    assert!(
        vm.find("Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path")
            .is_some(),
        "the EFI stub read the initrd through the LoadFile2 protocol"
    );
}

/// `boot=bls` on the firmware command line puts the BLS entry of the default
/// image ahead of its shim/GRUB removable-media path.
#[test]
fn bls_entry_boots_first_with_boot_bls() {
    let image = default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image.disk)
        .append("boot=bls")
        .spawn();
    assert_booted_from_bls_entry(&mut vm);
    assert!(
        vm.find("booting BLS entry 'Debian GNU/Linux 12 (vmfw test)")
            .is_some(),
        "firmware named the entry it booted"
    );
}

/// With no `\EFI\BOOT\BOOTX64.EFI` on the ESP, the default policy falls
/// through to the BLS entry.
#[test]
fn bls_entry_boots_without_removable_media_path() {
    let kernel = debian_kernel();
    let version = &kernel.version;
    let entry = bls_entry("Debian BLS only", version, BLS_CMDLINE);
    let disk = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), initramfs("", &[]))
        .bytes("/loader/entries/debian.conf", entry)
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(&disk).spawn();
    assert_booted_from_bls_entry(&mut vm);
}

/// `loader.conf` makes a broken entry (its kernel is missing) the default:
/// the firmware reports it and boots the next entry, whose two initrds arrive
/// concatenated (the second archive's `/init` replaces the first's).
#[test]
fn broken_default_entry_falls_back_to_next_with_two_initrds() {
    let kernel = debian_kernel();
    let version = &kernel.version;
    let broken = format!(
        "title Broken\n\
         linux /missing-vmlinuz\n\
         initrd /initrd-base.img\n\
         options {BLS_CMDLINE} broken\n"
    );
    let good = format!(
        "title Debian two initrds\n\
         linux /vmlinuz-{version}\n\
         initrd /initrd-base.img\n\
         initrd /initrd-overlay.img\n\
         options {BLS_CMDLINE}\n"
    );
    let disk = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file("/initrd-base.img", initramfs("", &[]))
        .file(
            "/initrd-overlay.img",
            initramfs("echo 'INIT: overlay initrd'", &[]),
        )
        .bytes("/loader/loader.conf", "timeout 0\ndefault broken\n")
        .bytes("/loader/entries/broken.conf", broken)
        .bytes("/loader/entries/debian.conf", good)
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(&disk).spawn();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        !cmdline.line.contains("broken"),
        "the broken entry did not boot: {}",
        cmdline.line
    );
    vm.expect("INIT: overlay initrd", TIMEOUT).unwrap();
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    let warning = vm
        .find("BLS entry 'Broken'")
        .expect("firmware reported the broken entry");
    assert!(warning.line.contains("missing-vmlinuz"), "{}", warning.line);
    assert!(vm.find("booting BLS entry 'Debian two initrds'").is_some());
}

/// Debian 13's 6.12 kernel declares NX_COMPAT, so LoadImage maps it W^X
/// (headers and read-only data RO+NX, code RX, data RW+NX); its EFI stub,
/// which decompresses the kernel before ExitBootServices, must run that way
/// and the kernel's userspace come up, with the initrd read through
/// LoadFile2.
#[test]
fn debian13_kernel_boots_from_bls_entry_mapped_wx() {
    let kernel = debian13_kernel();
    let version = &kernel.version;
    let entry = bls_entry("Debian 13 BLS", version, BLS_CMDLINE);
    let disk = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(
            &format!("/initrd.img-{version}"),
            initramfs_for(&kernel, "", &[]),
        )
        .bytes("/loader/entries/debian13.conf", entry)
        .build();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&disk)
        .append("log=debug")
        .spawn();
    assert_booted_from_bls_entry(&mut vm);
    let loaded = vm
        .find(&format!("loaded \\vmlinuz-{version} at"))
        .expect("the firmware logged the kernel's LoadImage");
    assert!(
        loaded.line.contains("W^X"),
        "the NX_COMPAT kernel was mapped W^X: {}",
        loaded.line
    );
}
