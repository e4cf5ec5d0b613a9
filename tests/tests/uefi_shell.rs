//! The edk2 UEFI Shell (Debian 13 package `efi-shell-x64`) booted as
//! `\EFI\BOOT\BOOTX64.EFI`. Its `startup.nsh` runs commands that exercise
//! the firmware's file system, memory map, handle database, variables and
//! SMBIOS table, then `reset -s` powers QEMU off (ResetSystem, shutdown).

use std::path::PathBuf;
use std::time::Duration;

use vm_tests::{EspBuilder, Vm, deb_trixie, firmware};

const TIMEOUT: Duration = Duration::from_secs(240);

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

const STARTUP: &str = "echo VMFW-SHELL-START\r\n\
fs0:\r\n\
ls\r\n\
type hello.txt\r\n\
memmap\r\n\
devices\r\n\
dmpstore -all\r\n\
smbiosview\r\n\
echo VMFW-SHELL-END\r\n\
reset -s\r\n";

#[test]
fn uefi_shell_runs_startup_script() {
    let disk = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", shell_binary())
        .bytes("/startup.nsh", STARTUP)
        .bytes("/hello.txt", "Hello from the ESP\r\n")
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(&disk).spawn();
    let mut expect = |pattern: &str| vm.expect(pattern, TIMEOUT).unwrap();

    // Start-up: HII strings resolve (the banner comes from the Shell's
    // string package), and the ESP is mapped through its device path text.
    expect("UEFI Interactive Shell");
    expect("Mapping table");
    let fs0 = expect("FS0: Alias(s)");
    assert!(fs0.line.contains("HD0"), "{}", fs0.line);
    expect("PciRoot(0x0)/Pci(0x1,0x0)/HD(1,GPT,");
    expect("VMFW-SHELL-START");

    // ls: the FAT root directory through SimpleFileSystem.
    expect("Directory of: FS0:\\");
    expect("<DIR>");
    let hello = expect("hello.txt");
    assert!(
        hello.line.contains(" 20 "),
        "size of hello.txt: {}",
        hello.line
    );
    expect("startup.nsh");
    expect("2 File(s)");

    // type: the file's contents.
    expect("Hello from the ESP");

    // memmap: GetMemoryMap with the firmware's runtime regions.
    expect("Type       Start");
    expect("RT_Code");
    expect("Available");
    expect("Total Memory:");

    // devices: the handle database walk completes (our drivers record no
    // driver-controller relationships, so the table is empty).
    expect("Device Name");

    // dmpstore -all: GetNextVariableName/GetVariable over the volatile store,
    // which holds the Shell's own variables by now.
    let variable = expect("Variable BS '158DEF5A-F656-419C-B027-7A3192C079D2:");
    assert!(variable.line.contains("DataSize"), "{}", variable.line);

    // smbiosview: the SMBIOS configuration table QEMU provides.
    expect("SMBIOS Entry Point Structure");
    expect("Manufacturer: QEMU");
    expect("Type: End-of-Table");

    // reset -s: ResetSystem(EfiResetShutdown) powers QEMU off.
    expect("VMFW-SHELL-END");
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}
