//! A Debian 12 (and 13) system as its own tools install it (debootstrap, `grub-install --uefi-secure-boot
//! --force-extra-removable`, `update-grub`): our firmware boots it from the removable path
//! through shim, GRUB reads its real `grub.cfg` from the ext4 root, the Debian initramfs finds
//! the root by UUID, and systemd finishes booting with no failed unit and the ESP mounted.
//! The passing line comes from a unit of the installed system itself, which then powers the
//! machine off (ACPI S5). The VM has a cloud
//! machine's shape, two vCPUs and 4 GiB (RAM above 4 GiB on q35), which no other test covers.
//! Secure Boot: the installed system reports the `SecureBoot` variable, the kernel's lockdown
//! and `mokutil --sb-state`; Debian 12 boots once without keys and once with Microsoft's (the
//! usual cloud policy, `vmfw-keys --microsoft`), Debian 13 with them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vm_tests::sb_keys::microsoft_keys;
use vm_tests::swtpm::TpmInterface;
use vm_tests::{INSTALLED_DEBIAN_BOOTED, Vm, firmware, installed_debian, installed_debian13};

/// systemd finishes in about a minute under TCG, under two minutes with both tests' guests
/// (two vCPUs each) sharing a 2-core machine; the rest is margin for a slower CI machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(360);

/// Boots twice from one writable copy: the second start finds the variable store and the ESP
/// as the first boot and Linux's clean power-off left them. The first boot has no key input
/// (setup mode, Secure Boot off); the second has Microsoft's keys, and the same installed
/// system boots through them with Secure Boot on, as a user turning it on for an existing VM
/// would see.
#[test]
fn installed_debian_boots_to_a_finished_systemd() {
    let copy = std::env::temp_dir().join(format!("vmfw-installed-{}.img", std::process::id()));
    let status = Command::new("cp")
        .arg("--sparse=always")
        .arg(installed_debian())
        .arg(&copy)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "copy the installed disk to {}",
        copy.display()
    );
    // The first boot creates the store (the firmware's automatic Boot0000-0002 and BootOrder,
    // with the global defaults PlatformLang, Lang, ConIn, ConOut, ErrOut and Timeout, then
    // shim's SbatLevel); the second reads it back. Nothing in this chain asks for a monotonic
    // count, so the firmware's MonotonicHigh is not written.
    boots_to_a_finished_systemd(&copy, true, NO_STORE, SecureBoot::Off, false);
    boots_to_a_finished_systemd(
        &copy,
        true,
        "variables: 11 loaded from \\EFI\\vmfw\\vars.bin",
        SecureBoot::MicrosoftKeys,
        false,
    );
    let _ = std::fs::remove_file(&copy);
}

/// Debian 13: shim 16.1, GRUB 2.12 (whose font and video set-up from `update-grub`'s config
/// alone takes ~7 s under TCG, under OVMF too), kernel 6.12, systemd 257; with Secure Boot on
/// and a TPM 2.0 (swtpm, `tpm-crb`): `systemd-analyze has-tpm2` reports the firmware's and the
/// driver's support.
#[test]
fn installed_debian13_boots_to_a_finished_systemd() {
    boots_to_a_finished_systemd(
        &installed_debian13(),
        false,
        NO_STORE,
        SecureBoot::MicrosoftKeys,
        true,
    );
}

/// The key input a boot gets, and what the installed system then reports.
#[derive(Clone, Copy)]
enum SecureBoot {
    /// No key input: setup mode.
    Off,
    /// Microsoft's KEK and UEFI CA in db, as `vmfw-keys --microsoft` makes them.
    MicrosoftKeys,
}

impl SecureBoot {
    fn report(self) -> &'static str {
        match self {
            SecureBoot::Off => {
                "VMFW-SECUREBOOT: secureboot=0 lockdown=none mokutil=[SecureBoot disabled]"
            }
            SecureBoot::MicrosoftKeys => {
                "VMFW-SECUREBOOT: secureboot=1 lockdown=integrity mokutil=[SecureBoot enabled]"
            }
        }
    }
}

/// What the firmware says of a disk that has never stored a non-volatile variable.
const NO_STORE: &str = "variables: no \\EFI\\vmfw\\vars.bin, starting empty";

/// Boots `disk` (`writable`: guest writes reach the file) until the installed system's report,
/// checks it and the firmware's `store` line, and waits for the system's own power-off.
fn boots_to_a_finished_systemd(
    disk: &Path,
    writable: bool,
    store: &str,
    secure_boot: SecureBoot,
    tpm: bool,
) {
    let mut builder = Vm::builder().firmware(firmware()).cpus(2).memory_mib(4096);
    if tpm {
        builder = builder.tpm(TpmInterface::Crb);
    }
    if let SecureBoot::MicrosoftKeys = secure_boot {
        builder = builder
            .arg("-initrd")
            .arg(microsoft_keys().to_str().unwrap());
    }
    let builder = if writable {
        builder.disk_writable(disk)
    } else {
        builder.disk(disk)
    };
    let mut vm = builder.spawn();
    vm.expect(store, Duration::from_secs(60)).unwrap();
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
    let sb = vm.expect("VMFW-SECUREBOOT:", BOOT_TIMEOUT).unwrap();
    eprintln!("[{:8.3}] {}", sb.elapsed.as_secs_f64(), sb.line);
    assert_eq!(sb.line.trim(), secure_boot.report());
    let has_tpm2 = vm.expect("VMFW-TPM2:", BOOT_TIMEOUT).unwrap();
    eprintln!("[{:8.3}] {}", has_tpm2.elapsed.as_secs_f64(), has_tpm2.line);
    if tpm {
        // systemd sees the firmware's TPM2 support (the event log) and the driver.
        assert!(
            has_tpm2.line.contains("+firmware") && has_tpm2.line.contains("+driver"),
            "{}",
            has_tpm2.line
        );
    }
    let report = vm.expect("VMFW-INSTALLED:", BOOT_TIMEOUT).unwrap();
    eprintln!("[{:8.3}] {}", report.elapsed.as_secs_f64(), report.line);
    assert_eq!(report.line.trim(), INSTALLED_DEBIAN_BOOTED);
    vm.wait_exit(Duration::from_secs(120)).unwrap();
}
