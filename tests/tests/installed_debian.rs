//! A Debian 12 (and 13) system as its own tools install it (debootstrap, `grub-install --uefi-secure-boot
//! --force-extra-removable`, `update-grub`): our firmware boots it from the removable path
//! through shim, GRUB reads its real `grub.cfg` from the ext4 root, the Debian initramfs finds
//! the root by UUID, and systemd finishes booting with no failed unit and the ESP mounted.
//! The passing line comes from a unit of the installed system itself. The VM has a cloud
//! machine's shape, two vCPUs and 4 GiB (RAM above 4 GiB on q35), which no other test covers.

use std::path::PathBuf;
use std::time::Duration;

use vm_tests::{INSTALLED_DEBIAN_BOOTED, Vm, firmware, installed_debian, installed_debian13};

/// systemd finishes in about a minute under TCG, under two minutes with both tests' guests
/// (two vCPUs each) sharing a 2-core machine; the rest is margin for a slower CI machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(360);

#[test]
fn installed_debian_boots_to_a_finished_systemd() {
    boots_to_a_finished_systemd(installed_debian());
}

/// Debian 13: shim 16.1, GRUB 2.12 (whose font and video set-up from `update-grub`'s config
/// alone takes ~7 s under TCG, under OVMF too), kernel 6.12, systemd 257.
#[test]
fn installed_debian13_boots_to_a_finished_systemd() {
    boots_to_a_finished_systemd(installed_debian13());
}

fn boots_to_a_finished_systemd(disk: PathBuf) {
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(disk)
        .cpus(2)
        .memory_mib(4096)
        .spawn();
    vm.expect("booting \\EFI\\BOOT\\BOOTX64.EFI", Duration::from_secs(60))
        .unwrap();
    // Linux sees both vCPUs and the RAM above 4 GiB (without it, about 2 GiB).
    let machine = vm.expect("VMFW-MACHINE:", BOOT_TIMEOUT).unwrap();
    eprintln!("[{:8.3}] {}", machine.elapsed.as_secs_f64(), machine.line);
    let field = |key: &str| -> u64 {
        let value = machine.line.split(key).nth(1).and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        });
        value.unwrap_or_else(|| panic!("no {key} in {:?}", machine.line))
    };
    assert_eq!(field("cpus="), 2, "{}", machine.line);
    assert!(field("mem_mib=") > 3584, "{}", machine.line);
    let report = vm.expect("VMFW-INSTALLED:", BOOT_TIMEOUT).unwrap();
    eprintln!("[{:8.3}] {}", report.elapsed.as_secs_f64(), report.line);
    assert_eq!(report.line.trim(), INSTALLED_DEBIAN_BOOTED);
}
