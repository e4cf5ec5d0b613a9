//! Real distro boot chains under the firmware. Each test passes only on
//! lines printed by the booted kernel's own userspace (the test initramfs's
//! `/init`), never on firmware output.

use std::time::Duration;

use vm_tests::{
    EspBuilder, GRUB_CMDLINE, SIGNED_GRUB, SIGNED_SHIM, Vm, boot_firmware, deb_trixie,
    debian13_kernel, default_image, expect_linux_environment, firmware, grub_cfg, initramfs_for,
};

const TIMEOUT: Duration = Duration::from_secs(240);

/// Waits for the kernel GRUB started to report its command line, the Linux
/// environment and a finished `/init`, then for QEMU to exit: the guest's
/// `poweroff -f` must end it (ACPI S5 through the FADT).
fn assert_grub_booted_userspace(vm: &mut Vm) {
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.entry=grub"),
        "booted through GRUB: {}",
        cmdline.line
    );
    expect_linux_environment(vm, TIMEOUT);
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}

/// Debian's signed shim -> signed GRUB -> Debian kernel + initrd, from the
/// removable-media path `\EFI\BOOT\BOOTX64.EFI`.
#[test]
fn shim_grub_debian_kernel() {
    let image = default_image();
    let mut vm = boot_firmware(&image.disk);
    assert_grub_booted_userspace(&mut vm);
}

/// The default chain in a 128 MiB VM. GRUB 2.06 loads the kernel with its
/// relocator, which stages the kernel's whole init_size (64 MiB for Debian's
/// 6.1) at the lowest free address and wants it at pref_address (16 MiB)
/// inside one free memory-map entry; when the staging copy crosses 16 MiB
/// that first try fails and leaks the 64 MiB, and the kernel no longer fits
/// below 192 MiB. The firmware keeps its fixed pages (the variable journal
/// and the panic note) just below 16 MiB, so the staging copy lands on the
/// target itself. With the former fixed 32 MiB firmware heap GRUB ran out of
/// memory even at 192 MiB.
#[test]
fn shim_grub_in_a_128_mib_vm() {
    let image = default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&image.disk)
        .memory_mib(128)
        .spawn();
    assert_grub_booted_userspace(&mut vm);
    assert!(
        vm.find("firmware memory at ExitBootServices: heap high-water")
            .is_some(),
        "the firmware reported its footprint"
    );
}

/// Debian 13's chain (signed shim 16.1, GRUB 2.12, kernel 6.12) laid out
/// as the removable-media path.
fn debian13_chain_disk() -> std::path::PathBuf {
    let kernel = debian13_kernel();
    let initrd = initramfs_for(&kernel, "", &[]);
    let version = &kernel.version;
    let shim = deb_trixie("shim-signed").join(SIGNED_SHIM);
    let grub = deb_trixie("grub-efi-amd64-signed").join(SIGNED_GRUB);
    let grub_cfg = grub_cfg("Debian GNU/Linux 13 (vmfw test)", version, GRUB_CMDLINE);
    EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), &initrd)
        .file("/EFI/BOOT/BOOTX64.EFI", shim)
        .file("/EFI/BOOT/grubx64.efi", grub)
        .bytes("/EFI/debian/grub.cfg", grub_cfg)
        .build()
}

/// Debian 13's chain: signed shim 16.1, GRUB 2.12 and the 6.12 kernel,
/// laid out as the removable-media path.
#[test]
fn shim_grub_debian13_kernel() {
    let disk = debian13_chain_disk();
    let mut vm = boot_firmware(&disk);
    assert_grub_booted_userspace(&mut vm);
}

/// The Debian 13 chain in a 144 MiB VM. GRUB 2.12 grows its heap on demand,
/// so the firmware's own footprint decides here; with the former fixed
/// 32 MiB heap the kernel's EFI stub failed at 160 MiB ("Failed to
/// decompress kernel").
#[test]
fn shim_grub_debian13_in_a_144_mib_vm() {
    let disk = debian13_chain_disk();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&disk)
        .memory_mib(144)
        .spawn();
    assert_grub_booted_userspace(&mut vm);
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
    assert_grub_booted_userspace(&mut vm);
    let linux_bar = vm
        .find("pci 0000:00:01.0: BAR 4 [mem ")
        .expect("Linux listed the virtio BAR");
    assert!(
        linux_bar.line.contains(&format!("[mem {address}-")),
        "Linux kept our address {address}: {}",
        linux_bar.line
    );
}

/// QEMU microvm (`pcie=on`): no SeaBIOS before the firmware, the PCIe ECAM
/// only in the DSDT's `_CBA` (no MCFG), no PM timer and no PIT behind port
/// 0x61. The firmware finds the virtio-blk disk through the `_CBA` window,
/// places its BARs itself, refuses to calibrate the TSC against the absent
/// PIT, and the default chain boots to the initramfs's userspace.
#[test]
fn shim_grub_on_qemu_microvm() {
    let image = default_image();
    let mut vm = Vm::builder()
        .microvm()
        .firmware(firmware())
        .disk(&image.disk)
        .spawn();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(cmdline.line.contains("vmfw.entry=grub"), "{}", cmdline.line);
    // microvm has no SMBIOS tables to hand on (`INIT: dmi=no`).
    for line in [
        "INIT: efi=yes",
        "INIT: efivar-rw=ok",
        "INIT: acpi=yes",
        "INIT: disk=/dev/vda ok",
        "INIT: done",
    ] {
        vm.expect(line, TIMEOUT).unwrap();
    }
    assert!(
        vm.find("PCIe ECAM at 0xe0000000 from the host bridge's _CBA")
            .is_some(),
        "the ECAM window came from the DSDT"
    );
    assert!(
        vm.find("calibrated against PIT").is_none(),
        "no calibration against a PIT that is not there"
    );
}
