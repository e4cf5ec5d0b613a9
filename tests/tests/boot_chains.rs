//! Real distro boot chains under the firmware. Each test passes only on
//! lines printed by the booted kernel's own userspace (the test initramfs's
//! `/init`), never on firmware output.

use std::time::Duration;

use vm_tests::{boot_firmware, default_image};

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
    vm.expect("INIT: efi=yes", TIMEOUT).unwrap();
    vm.expect("INIT: efivar-rw=ok", TIMEOUT).unwrap();
    vm.expect("INIT: acpi=yes", TIMEOUT).unwrap();
    vm.expect("INIT: dmi=yes", TIMEOUT).unwrap();
    vm.expect("INIT: disk=/dev/vda ok", TIMEOUT).unwrap();
    vm.expect("INIT: done", TIMEOUT).unwrap();
    // The guest's `poweroff -f` must end QEMU (ACPI S5 through the FADT).
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}
