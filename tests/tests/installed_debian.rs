//! A Debian 12 system as its own tools install it (debootstrap, `grub-install --uefi-secure-boot
//! --force-extra-removable`, `update-grub`): our firmware boots it from the removable path
//! through shim, GRUB reads its real `grub.cfg` from the ext4 root, the Debian initramfs finds
//! the root by UUID, and systemd finishes booting with no failed unit and the ESP mounted.
//! The passing line comes from a unit of the installed system itself.

use std::time::Duration;

use vm_tests::{INSTALLED_DEBIAN_BOOTED, boot_firmware, installed_debian};

/// systemd takes about a minute under TCG; the margin is for a loaded CI machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(400);

#[test]
fn installed_debian_boots_to_a_finished_systemd() {
    let disk = installed_debian();
    let mut vm = boot_firmware(&disk);
    vm.expect("booting \\EFI\\BOOT\\BOOTX64.EFI", Duration::from_secs(60))
        .unwrap();
    let report = vm.expect("VMFW-INSTALLED:", BOOT_TIMEOUT).unwrap();
    eprintln!("[{:8.3}] {}", report.elapsed.as_secs_f64(), report.line);
    assert_eq!(report.line.trim(), INSTALLED_DEBIAN_BOOTED);
}
