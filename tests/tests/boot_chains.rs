//! Real distro boot chains under the firmware. Each test passes only on
//! lines printed by the booted kernel's own userspace (the test initramfs's
//! `/init`), never on firmware output.

use std::time::Duration;

use vm_tests::{
    EspBuilder, GRUB_CMDLINE, Vm, boot_firmware, deb_trixie, debian13_kernel, default_image,
    expect_linux_environment, firmware, initramfs_for,
};

const TIMEOUT: Duration = Duration::from_secs(240);

/// Debian's signed shim -> signed GRUB -> Debian kernel + initrd, from the
/// removable-media path `\EFI\BOOT\BOOTX64.EFI`.
#[test]
fn shim_grub_debian_kernel() {
    let image = default_image();
    let mut vm = boot_firmware(&image.disk);
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.entry=grub"),
        "booted through GRUB: {}",
        cmdline.line
    );
    expect_linux_environment(&mut vm, TIMEOUT);
    vm.expect("INIT: done", TIMEOUT).unwrap();
    // The guest's `poweroff -f` must end QEMU (ACPI S5 through the FADT).
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}

/// Debian 13's chain: signed shim 16.1, GRUB 2.12 and the 6.12 kernel,
/// laid out as the removable-media path.
#[test]
fn shim_grub_debian13_kernel() {
    let kernel = debian13_kernel();
    let initrd = initramfs_for(&kernel, "", &[]);
    let version = &kernel.version;
    let shim = deb_trixie("shim-signed").join("usr/lib/shim/shimx64.efi.signed");
    let grub = deb_trixie("grub-efi-amd64-signed")
        .join("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed");
    let grub_cfg = format!(
        "set timeout=0\n\
         set default=0\n\
         menuentry 'Debian GNU/Linux 13 (vmfw test)' {{\n\
         \tlinux /vmlinuz-{version} {GRUB_CMDLINE}\n\
         \tinitrd /initrd.img-{version}\n\
         }}\n"
    );
    let disk = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), &initrd)
        .file("/EFI/BOOT/BOOTX64.EFI", shim)
        .file("/EFI/BOOT/grubx64.efi", grub)
        .bytes("/EFI/debian/grub.cfg", grub_cfg)
        .build();
    let mut vm = boot_firmware(&disk);
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.entry=grub"),
        "booted through GRUB: {}",
        cmdline.line
    );
    expect_linux_environment(&mut vm, TIMEOUT);
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}

/// `pci=reassign`: the firmware ignores the BARs SeaBIOS assigned and places
/// every bus 0 BAR itself, as it must on a VMM that leaves them unassigned.
/// The disk must work at the new addresses for the firmware, GRUB and
/// Linux, which keeps them (its own log shows the virtio BAR where we put it).
#[test]
fn shim_grub_with_firmware_assigned_bars() {
    let image = default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image.disk)
        .append("pci=reassign")
        .spawn();
    let assigned = vm.expect("pci: 00:01.0 BAR4 assigned ", TIMEOUT).unwrap();
    let address = assigned
        .line
        .split_whitespace()
        .nth(4)
        .expect("an address after 'assigned'")
        .to_string();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(cmdline.line.contains("vmfw.entry=grub"), "{}", cmdline.line);
    expect_linux_environment(&mut vm, TIMEOUT);
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    let linux_bar = vm
        .find("pci 0000:00:01.0: BAR 4 [mem ")
        .expect("Linux listed the virtio BAR");
    assert!(
        linux_bar.line.contains(&format!("[mem {address}-")),
        "Linux kept our address {address}: {}",
        linux_bar.line
    );
}
