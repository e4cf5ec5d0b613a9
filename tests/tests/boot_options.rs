//! The firmware's automatic boot options (UEFI 2.10 §3.1) as the booted Linux sees them:
//! the test initramfs runs Debian's `efibootmgr -v` and prints its output as `INIT: ebm:`
//! lines, so each check passes only on what the guest's own userspace read from efivarfs.
//!
//! - `automatic_options_and_boot_current`: a fresh ESP holding a UKI as the removable-media
//!   path and a BLS Type #1 entry. The first start creates Boot0000 (the partition, booted
//!   through `\EFI\BOOT\BOOTX64.EFI`), Boot0001 (the built-in BLS loader,
//!   `Fv(2FBC36D0-...)/FvFile(EB51AC8F-...)`) and the hidden Boot0002 (the boot menu), puts
//!   the first two in BootOrder and boots Boot0000: BootCurrent 0000. The second start on the
//!   same disk, with `bootnext=0001` on the firmware command line, creates nothing, boots the
//!   BLS loader's option (the BLS entry's command line reaches the kernel) and reports
//!   BootCurrent 0001.
//! - `bls_only_disk_boots_through_the_bls_option`: without a removable-media path the BLS
//!   loader's option is Boot0000 and boots by default, with BootCurrent 0000.
//! - `kernel_from_the_firmware_command_line_is_boot_current`: `kernel=` on the firmware
//!   command line boots the built-in direct-boot image through its automatic option
//!   (`Fv(2FBC36D0-...)/FvFile(0F7C4C2E-...)`, hidden, not in BootOrder): BootCurrent names
//!   it. The next start without `kernel=` deletes the option and boots the BLS loader's.
//! - `shell_dh_lists_the_running_boot_menu`: with `menu=1` the boot menu (a built-in image)
//!   starts the edk2 Shell from the removable-media path; the Shell's `dh` lists the menu's
//!   image handle and the storage drivers' as `LoadedImage(<name>)`, the name read from the
//!   user-interface section of the image's `FvFile(...)` through the firmware volume's
//!   EFI_FIRMWARE_VOLUME2_PROTOCOL.

use std::path::PathBuf;
use std::time::Duration;

use vm_tests::{
    EspBuilder, Program, TempDisk, Vm, bls_entry, deb_trixie, debian_kernel,
    expect_linux_environment, firmware, initramfs_with, unified_kernel_image,
};

const TIMEOUT: Duration = Duration::from_secs(300);
const UKI_CMDLINE: &str = "console=ttyS0 panic=-1 vmfw.entry=uki";
const BLS_OPTIONS: &str = "console=ttyS0 panic=-1 vmfw.entry=bls";

/// Prints `efibootmgr -v`, one `INIT: ebm: ` line per output line, and its exit status.
const EFIBOOTMGR_REPORT: &str = r#"
LD_LIBRARY_PATH=/lib/x86_64-linux-gnu efibootmgr -v > /tmp/ebm 2>&1
echo "INIT: efibootmgr status=$?"
sed 's/^/INIT: ebm: /' /tmp/ebm
"#;

/// An ESP with the Debian kernel and an efibootmgr initramfs as a BLS entry, plus (when
/// `with_uki`) a UKI of the same at the removable-media path.
fn disk(with_uki: bool) -> PathBuf {
    let kernel = debian_kernel();
    let version = &kernel.version;
    let initrd = initramfs_with(EFIBOOTMGR_REPORT, &[], &[Program::Efibootmgr]);
    let mut esp = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), &initrd)
        .bytes(
            "/loader/entries/debian.conf",
            bls_entry("Debian (boot options test)", version, BLS_OPTIONS),
        );
    if with_uki {
        let uki = unified_kernel_image(
            &kernel,
            &initrd,
            UKI_CMDLINE,
            "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian (UKI)\"\n",
        );
        esp = esp.file("/EFI/BOOT/BOOTX64.EFI", uki);
    }
    esp.build()
}

/// Waits for the guest's report and returns its `efibootmgr -v` lines (prefix removed);
/// checks the kernel came through `entry` (`vmfw.entry=` on its command line).
fn efibootmgr_report(vm: &mut Vm, entry: &str) -> Vec<String> {
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains(&format!("vmfw.entry={entry}")),
        "booted through {entry}: {}",
        cmdline.line
    );
    expect_linux_environment(vm, TIMEOUT);
    let status = vm.expect("INIT: efibootmgr status=", TIMEOUT).unwrap();
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    let lines: Vec<String> = vm
        .transcript()
        .lines()
        .filter_map(|l| {
            l.split_once("INIT: ebm: ")
                .map(|(_, rest)| rest.trim_end().to_owned())
        })
        .collect();
    assert!(
        status.line.trim_end().ends_with("status=0"),
        "efibootmgr failed: {}\n{}",
        status.line,
        lines.join("\n")
    );
    lines
}

/// The line starting with `prefix`, or a panic listing all of them.
fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in efibootmgr -v:\n{}", lines.join("\n")))
}

/// Case-insensitive, since efivar prints GUIDs in lower case.
fn contains(line: &str, wanted: &str) -> bool {
    line.to_ascii_lowercase()
        .contains(&wanted.to_ascii_lowercase())
}

const FV: &str = "2FBC36D0-1A63-4377-AA16-872A5F25934B";
const BLS_FILE: &str = "EB51AC8F-D5E6-467F-8472-520BC777F144";
const MENU_FILE: &str = "A33A8786-5F3C-4B4D-80F8-C15577DC42EA";
const DIRECT_FILE: &str = "0F7C4C2E-8D4B-4E6B-9C1A-3B5E2D7F6A10";

#[test]
fn automatic_options_and_boot_current() {
    let disk = TempDisk::copy_of(&disk(true), "boot-options-removable");

    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .spawn();
    let lines = efibootmgr_report(&mut vm, "uki");
    assert_eq!(line(&lines, "BootCurrent:"), "BootCurrent: 0000");
    assert_eq!(line(&lines, "BootOrder:"), "BootOrder: 0000,0001");
    let removable = line(&lines, "Boot0000");
    assert!(
        removable.starts_with("Boot0000* UEFI disk") && contains(removable, "/HD(1,GPT,"),
        "the removable option names the partition: {removable}"
    );
    let bls = line(&lines, "Boot0001");
    assert!(
        bls.starts_with("Boot0001* BLS Type #1 loader")
            && contains(bls, FV)
            && contains(bls, &format!("FvFile({BLS_FILE})")),
        "the BLS loader's option: {bls}"
    );
    let menu = line(&lines, "Boot0002");
    assert!(
        menu.contains("Boot menu") && contains(menu, &format!("FvFile({MENU_FILE})")),
        "the boot menu's option: {menu}"
    );
    let created = vm.transcript().matches("new automatic boot option").count();
    assert_eq!(created, 3, "three options created on the first start");

    // Same disk again, the BLS loader's option picked for this start only.
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .append("bootnext=0001")
        .name("automatic_options_and_boot_current_second_start")
        .spawn();
    let lines = efibootmgr_report(&mut vm, "bls");
    assert_eq!(line(&lines, "BootCurrent:"), "BootCurrent: 0001");
    assert_eq!(line(&lines, "BootOrder:"), "BootOrder: 0000,0001");
    assert!(
        vm.find("new automatic boot option").is_none(),
        "the second start with the same disk creates nothing"
    );
    // The first start wrote the store once (its refresh, in one batch); the
    // guest's runtime writes are not persisted.
    assert!(
        vm.find("loaded from \\EFI\\vmfw\\vars.bin (slot 0, generation 1)")
            .is_some(),
        "one store write on the first start"
    );
}

#[test]
fn bls_only_disk_boots_through_the_bls_option() {
    let mut vm = Vm::builder().firmware(firmware()).disk(disk(false)).spawn();
    let lines = efibootmgr_report(&mut vm, "bls");
    assert_eq!(line(&lines, "BootCurrent:"), "BootCurrent: 0000");
    assert_eq!(line(&lines, "BootOrder:"), "BootOrder: 0000");
    let bls = line(&lines, "Boot0000");
    assert!(
        bls.starts_with("Boot0000* BLS Type #1 loader") && contains(bls, BLS_FILE),
        "the BLS loader's option: {bls}"
    );
}

#[test]
fn kernel_from_the_firmware_command_line_is_boot_current() {
    let disk = TempDisk::copy_of(&disk(false), "boot-options-direct");
    let version = debian_kernel().version;
    let cmdline = "console=ttyS0 panic=-1 vmfw.entry=direct";
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .append(format!(
            "kernel=\\vmlinuz-{version} initrd=\\initrd.img-{version} cmdline=\"{cmdline}\""
        ))
        .spawn();
    let lines = efibootmgr_report(&mut vm, "direct");
    let current = line(&lines, "BootCurrent:");
    let number = current.trim_start_matches("BootCurrent:").trim();
    assert_eq!(number.len(), 4, "BootCurrent names an option: {current}");
    let option = line(&lines, &format!("Boot{number}"));
    assert!(
        option.contains("Direct kernel boot")
            && contains(option, &format!("{FV})/FvFile({DIRECT_FILE})")),
        "BootCurrent's option is the direct-boot image: {option}"
    );
    let order = line(&lines, "BootOrder:");
    assert!(
        !order.contains(number),
        "the hidden direct-boot option stays out of BootOrder: {order}"
    );

    // Without kernel= the option is gone and the BLS loader's boots by default.
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .name("kernel_from_the_firmware_command_line_second_start")
        .spawn();
    let lines = efibootmgr_report(&mut vm, "bls");
    assert!(
        !lines.iter().any(|l| contains(l, DIRECT_FILE)),
        "no direct-boot option without kernel=:\n{}",
        lines.join("\n")
    );
    let bls = line(&lines, "Boot0000");
    assert!(contains(bls, BLS_FILE), "the BLS loader's option: {bls}");
    assert_eq!(line(&lines, "BootCurrent:"), "BootCurrent: 0000");
    // The store kept it from the first start, and this start deleted it.
    assert!(
        vm.find(&format!(
            "Boot{number}: automatic boot option no longer backed"
        ))
        .is_some(),
        "the direct-boot option was stored, then deleted"
    );
}

/// The edk2 UEFI Shell of Debian 13's `efi-shell-x64`.
fn shell_binary() -> PathBuf {
    let root = deb_trixie("efi-shell-x64");
    [
        "usr/share/efi-shell-x64/shellx64.efi",
        "usr/lib/efi-shell-x64/shellx64.efi",
    ]
    .iter()
    .map(|p| root.join(p))
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("no shellx64.efi under {}", root.display()))
}

#[test]
fn shell_dh_lists_the_running_boot_menu() {
    let disk = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", shell_binary())
        .bytes(
            "/startup.nsh",
            "echo VMFW-DH-START\r\ndh\r\necho VMFW-DH-END\r\nreset -s\r\n",
        )
        .build();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&disk)
        .append("menu=1")
        .spawn();
    vm.expect("VMFW-DH-END", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    let transcript = vm.transcript();
    let start = transcript.rfind("VMFW-DH-START").unwrap_or(0);
    let dh = &transcript[start..];
    // dh names an image loaded from a firmware volume by the user-interface
    // section of its FvFile() (read through EFI_FIRMWARE_VOLUME2_PROTOCOL on
    // LoadedImage.DeviceHandle), else by its FilePath: the running boot menu
    // and the firmware's storage drivers are named by the volume.
    for name in ["Boot menu", "PartitionDriver", "FatDriver"] {
        assert!(
            dh.lines()
                .any(|l| l.contains(&format!("LoadedImage({name})"))),
            "dh names the image {name}:\n{dh}"
        );
    }
}
