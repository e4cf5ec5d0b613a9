//! Real distro boot chains under the firmware. Each test passes only on
//! lines printed by the booted kernel's own userspace (the test initramfs's
//! `/init`), never on firmware output.

use std::time::Duration;

use vm_tests::{boot_firmware, default_image, expect_linux_environment};

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
