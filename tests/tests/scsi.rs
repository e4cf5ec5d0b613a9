//! virtio-scsi disks (issue 21): the default image (Debian 12 shim -> GRUB
//! -> kernel) boots from a `scsi-hd` behind `virtio-scsi-pci`, to the
//! initramfs's userspace.

use std::time::Duration;

use vm_tests::{DiskBus, Vm, default_image, firmware};

const TIMEOUT: Duration = Duration::from_secs(240);

#[test]
fn default_image_boots_from_a_virtio_scsi_disk() {
    let image = default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&image.disk, DiskBus::ScsiDisk { block_size: 512 })
        .spawn();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(cmdline.line.contains("vmfw.entry=grub"), "{}", cmdline.line);
    // The test initramfs has no SCSI driver, so no disk line; the rest of
    // the Linux environment as every boot test checks it.
    for line in [
        "INIT: efi=yes",
        "INIT: efivar-rw=ok",
        "INIT: acpi=yes",
        "INIT: dmi=yes",
    ] {
        vm.expect(line, TIMEOUT).unwrap();
    }
    vm.expect("INIT: done", TIMEOUT).unwrap();
    assert!(
        vm.find("SCSI at 00:01.0: disk 0:0: 135168 blocks of 512 bytes")
            .is_some(),
        "the firmware drove the controller"
    );
    assert!(
        vm.find("(Boot0000: UEFI SCSI disk Pci(0x1,0x0) 0:0 partition 1)")
            .is_some(),
        "the boot option names the bus and the unit"
    );
}
