//! Installer ISOs (issue 21): an ISO 9660 image with an El Torito EFI boot
//! image, laid out as Debian's installer ISOs are (`vm_tests::iso`), booted
//! through Debian's signed shim and GRUB. Each test passes only on lines the
//! booted kernel's own userspace prints.

use std::time::Duration;

use vm_tests::iso::{IsoLayout, installer_iso, installer_iso_with};
use vm_tests::{Vm, debian_kernel, firmware, initramfs};

const TIMEOUT: Duration = Duration::from_secs(240);
const CMDLINE: &str = "console=ttyS0 panic=-1 vmfw.entry=iso";

/// The test kernel and initramfs as the ISO's installer.
fn test_iso() -> std::path::PathBuf {
    let kernel = debian_kernel();
    installer_iso(
        "vmfw test installer",
        &kernel.vmlinuz,
        &initramfs("", &[]),
        CMDLINE,
    )
}

fn assert_iso_booted_userspace(vm: &mut Vm) {
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.entry=iso"),
        "booted the ISO's kernel: {}",
        cmdline.line
    );
    // Not `expect_linux_environment`: its disk line wants a virtio-blk
    // disk, and the test initramfs has no SCSI driver for a CD-ROM.
    for line in [
        "INIT: efi=yes",
        "INIT: efivar-rw=ok",
        "INIT: acpi=yes",
        "INIT: dmi=yes",
    ] {
        vm.expect(line, TIMEOUT).unwrap();
    }
    vm.expect("INIT: done", TIMEOUT).unwrap();
}

/// An ISO written to a disk (512-byte blocks, no partition table): the
/// firmware finds the El Torito catalog, publishes the EFI image as a
/// `CDROM(...)` partition, and boots its `\EFI\BOOT\BOOTX64.EFI`.
#[test]
fn iso_on_a_disk_boots_through_its_el_torito_image() {
    let mut vm = Vm::builder().firmware(firmware()).disk(test_iso()).spawn();
    assert_iso_booted_userspace(&mut vm);
    assert!(
        vm.find("El Torito, 1 partitions").is_some(),
        "the firmware read the El Torito catalog"
    );
    // The boot image is no ESP to the variable store: nothing is written
    // into an installer medium, even one on a writable disk.
    assert!(
        vm.find("variables: no EFI System Partition").is_some(),
        "the variable store stayed off the ISO"
    );
}

/// The same ISO on a virtio-scsi CD-ROM (`scsi-cd`, 2048-byte blocks): the
/// El Torito image's 512-byte FAT is read through whole CD blocks.
#[test]
fn iso_on_a_scsi_cdrom_boots() {
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(test_iso(), vm_tests::DiskBus::ScsiCdrom)
        .spawn();
    assert_iso_booted_userspace(&mut vm);
    assert!(
        vm.find("SCSI CD-ROM").is_some() && vm.find("blocks of 2048 bytes").is_some(),
        "the firmware found the CD-ROM"
    );
}

/// Debian 12's own installer (`debian-installer-12-netboot-amd64`: its
/// kernel and initrd) on an installer ISO in a CD-ROM on `bus`, to the
/// installer's first question on the serial console.
fn debian_installer_boots_from(bus: vm_tests::DiskBus) {
    let images = vm_tests::deb("debian-installer-12-netboot-amd64")
        .join("usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64");
    let iso = installer_iso(
        "Debian GNU/Linux 12 installer (vmfw test)",
        &images.join("linux"),
        &images.join("initrd.gz"),
        "console=ttyS0 vmfw.entry=iso",
    );
    let mut vm = Vm::builder().firmware(firmware()).disk_on(iso, bus).spawn();
    let command_line = vm
        .expect("Kernel command line:", TIMEOUT)
        .expect("the installer's kernel started");
    assert!(
        command_line.line.contains("vmfw.entry=iso"),
        "{}",
        command_line.line
    );
    vm.expect(INSTALLER_QUESTION, Duration::from_secs(400))
        .unwrap();
}

#[test]
fn debian_installer_iso_boots_from_a_scsi_cdrom() {
    debian_installer_boots_from(vm_tests::DiskBus::ScsiCdrom);
}

/// QEMU's `-cdrom`: an ATAPI drive on q35's AHCI controller.
#[test]
fn debian_installer_iso_boots_from_a_sata_cdrom() {
    debian_installer_boots_from(vm_tests::DiskBus::SataCdrom);
}

/// What the installer's userspace (debconf's newt frontend on the serial
/// console) shows first.
const INSTALLER_QUESTION: &str = "Select a language";

/// A hybrid ISO (GPT with the EFI image as partition 2, as Debian's ISOs
/// are): on a disk its GPT ESP boots; on a CD-ROM (2048-byte blocks, where
/// the GPT written for 512-byte blocks is not found) its El Torito image.
#[test]
fn hybrid_iso_boots_as_a_disk_and_as_a_cdrom() {
    let kernel = debian_kernel();
    let iso = installer_iso_with(
        "vmfw test installer",
        &kernel.vmlinuz,
        &initramfs("", &[]),
        CMDLINE,
        IsoLayout::HybridGpt,
    );
    let mut vm = Vm::builder().firmware(firmware()).disk(&iso).spawn();
    assert_iso_booted_userspace(&mut vm);
    assert!(
        vm.find("GPT, ").is_some() && vm.find("UEFI disk Pci(0x1,0x0) partition 2").is_some(),
        "booted from the GPT's ESP"
    );
    drop(vm);
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&iso, vm_tests::DiskBus::ScsiCdrom)
        .spawn();
    assert_iso_booted_userspace(&mut vm);
    assert!(
        vm.find("El Torito, 1 partitions").is_some(),
        "booted from the El Torito image"
    );
}

/// A CD whose El Torito boot record names itself as the boot catalog (a
/// catalog "looping" back to the volume descriptors) falls through cleanly:
/// one line says why, and the default image on the next disk boots.
#[test]
fn cd_with_a_looping_boot_catalog_falls_through_to_the_next_disk() {
    let iso = std::fs::read(test_iso()).unwrap();
    let mut hostile = iso.clone();
    let boot_record = 17 * 2048;
    assert_eq!(&hostile[boot_record + 1..boot_record + 6], b"CD001");
    hostile[boot_record + 0x47..boot_record + 0x4B].copy_from_slice(&17u32.to_le_bytes());
    let dir = std::env::temp_dir().join(format!("vmfw-hostile-cd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cd = dir.join("looping-catalog.iso");
    std::fs::write(&cd, &hostile).unwrap();
    let image = vm_tests::default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&cd, vm_tests::DiskBus::ScsiCdrom)
        .disk(&image.disk)
        .spawn();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(cmdline.line.contains("vmfw.entry=grub"), "{}", cmdline.line);
    vm.expect("INIT: done", TIMEOUT).unwrap();
    assert!(
        vm.find("El Torito boot catalog at CD sector 17 is missing or invalid")
            .is_some(),
        "the firmware said why the CD has no boot image"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
