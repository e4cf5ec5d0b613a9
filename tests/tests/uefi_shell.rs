//! The edk2 UEFI Shell (Debian 13 package `efi-shell-x64`) booted as
//! `\EFI\BOOT\BOOTX64.EFI`. Its `startup.nsh` runs commands that exercise
//! the firmware's file system, memory map, variables, SMBIOS table and
//! driver model (`drivers`, `devices`); then the test types `dh -d`,
//! `disconnect` and `connect -r` on a second disk at the prompt, and
//! `reset -s` powers QEMU off (ResetSystem, shutdown).

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
dmpstore -all\r\n\
smbiosview\r\n\
echo VMFW-DRIVERS\r\n\
drivers\r\n\
echo VMFW-DEVICES\r\n\
devices\r\n\
echo VMFW-SHELL-END\r\n";

/// The serial lines between the Shell's output lines `from` and `to`
/// (output lines only: the echoed command lines carry the prompt too).
fn section(transcript: &str, from: &str, to: &str) -> Vec<String> {
    let lines: Vec<&str> = transcript.lines().map(str::trim_end).collect();
    let start = lines
        .iter()
        .rposition(|l| l.trim() == from)
        .unwrap_or_else(|| panic!("no {from} line"));
    let end = lines[start..]
        .iter()
        .position(|l| l.trim() == to)
        .map_or(lines.len(), |e| start + e);
    lines[start + 1..end]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// How many rows of the Shell's `devices` output are FAT volumes.
fn fat_volume_rows(rows: &[String]) -> usize {
    rows.iter()
        .filter(|r| r.ends_with("FAT32 file system"))
        .count()
}

/// The `devices` row naming `name`: handle index, T, CFG, DIAG, #P, #D, #C.
fn device_row<'a>(rows: &'a [String], name: &str) -> Option<Vec<&'a str>> {
    rows.iter()
        .find(|r| r.trim_end().ends_with(name))
        .map(|r| r.split_whitespace().take(7).collect())
}

/// Waits for the Shell's own output line `marker` (not the echoed command).
fn expect_output(vm: &mut Vm, marker: &str) {
    loop {
        let found = vm.expect(marker, TIMEOUT).unwrap();
        if found.line.trim() == marker {
            return;
        }
    }
}

/// Types one command at the prompt and waits for it to finish (the Shell
/// echoes `marker` afterwards). Commands are kept short: the UART's receive
/// FIFO is 16 bytes.
fn run(vm: &mut Vm, command: &str, marker: &str) {
    vm.expect("FS0:\\>", TIMEOUT).unwrap();
    vm.send(format!("{command}\r").as_bytes()).unwrap();
    vm.expect("FS0:\\>", TIMEOUT).unwrap();
    vm.send(format!("echo {marker}\r").as_bytes()).unwrap();
    expect_output(vm, marker);
}

#[test]
fn uefi_shell_runs_startup_script() {
    let disk = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", shell_binary())
        .bytes("/startup.nsh", STARTUP)
        .bytes("/hello.txt", "Hello from the ESP\r\n")
        .build();
    // A second disk for the driver model: disconnected and connected again.
    let data = EspBuilder::new()
        .bytes("/data.txt", "Data disk\r\n")
        .build();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk(&disk)
        .disk(&data)
        .spawn();
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

    // dmpstore -all: GetNextVariableName/GetVariable over the volatile store,
    // which holds the Shell's own variables by now.
    let variable = expect("Variable BS '158DEF5A-F656-419C-B027-7A3192C079D2:");
    assert!(variable.line.contains("DataSize"), "{}", variable.line);

    // smbiosview: the SMBIOS configuration table QEMU provides.
    expect("SMBIOS Entry Point Structure");
    expect("Manufacturer: QEMU");
    expect("Type: End-of-Table");

    expect_output(&mut vm, "VMFW-SHELL-END");
    let transcript = vm.transcript();

    // drivers: the firmware's two storage drivers (UEFI 2.10 §11.1), named
    // through ComponentName2: the partition driver a bus driver with a
    // child per partition, the FAT driver a device driver, each managing
    // one controller per disk.
    let drivers = section(&transcript, "VMFW-DRIVERS", "VMFW-DEVICES");
    let driver_row = |name: &str| -> Vec<String> {
        let row = drivers
            .iter()
            .find(|r| r.contains(name))
            .unwrap_or_else(|| panic!("no {name} in {drivers:#?}"));
        row.split_whitespace().take(7).map(str::to_owned).collect()
    };
    assert_eq!(
        driver_row("Partition driver (GPT, MBR)")[1..],
        ["00000020", "B", "-", "-", "2", "2"]
    );
    assert_eq!(
        driver_row("FAT file system driver")[1..],
        ["00000010", "D", "-", "-", "2", "-"]
    );
    // IMAGE NAME: the Shell opens LoadedImage on each binding's ImageHandle
    // and reads the user-interface section of its FvFile() through the
    // firmware volume's EFI_FIRMWARE_VOLUME2_PROTOCOL (PI vol. 3 §3.4.1.5);
    // the names are the volume's, not the ComponentName2 driver names.
    for (driver, image) in [
        ("Partition driver (GPT, MBR)", "PartitionDriver"),
        ("FAT file system driver", "FatDriver"),
    ] {
        let row = drivers.iter().find(|r| r.contains(driver)).unwrap();
        assert!(row.trim_end().ends_with(&format!(" {image}")), "{row}");
    }

    // devices: each disk is a root controller managed by one driver with
    // one child (its ESP), and each ESP a device with one parent and the
    // FAT driver.
    let devices = section(&transcript, "VMFW-DEVICES", "VMFW-SHELL-END");
    let disk_columns = ["R", "-", "-", "0", "1", "1"];
    let volume_columns = ["D", "-", "-", "1", "1", "0"];
    for disk in ["Disk 00:01.0", "Disk 00:02.0"] {
        let row = device_row(&devices, disk).unwrap_or_else(|| panic!("{devices:#?}"));
        assert_eq!(row[1..], disk_columns, "{disk}");
    }
    let volumes: Vec<Vec<&str>> = devices
        .iter()
        .filter(|r| r.ends_with("FAT32 file system"))
        .map(|r| r.split_whitespace().take(7).collect())
        .collect();
    assert_eq!(volumes.len(), 2, "{devices:#?}");
    assert!(
        volumes.iter().all(|v| v[1..] == volume_columns),
        "{volumes:?}"
    );

    // The data disk's handle, as the Shell numbers it.
    let data_disk = device_row(&devices, "Disk 00:02.0").unwrap()[0].to_string();

    // dh -d: the relationships of one controller.
    run(&mut vm, &format!("dh -d {data_disk}"), "VMFW-DH");
    let transcript = vm.transcript();
    let dh = section(&transcript, "VMFW-SHELL-END", "VMFW-DH").join("\n");
    assert!(dh.contains("Controller Name    : Disk 00:02.0"), "{dh}");
    assert!(dh.contains("Controller Type    : ROOT"), "{dh}");
    let line_with = |text: &str| dh.lines().find(|l| l.contains(text)).unwrap_or_default();
    assert!(
        line_with("Partition driver (GPT, MBR)").contains("Drv["),
        "managed by: {dh}"
    );
    assert!(
        line_with("FAT32 file system").contains("Child["),
        "child: {dh}"
    );

    // disconnect: DisconnectController stops the partition driver, which
    // first has the FAT driver let go of the partition; both disappear.
    run(
        &mut vm,
        &format!("disconnect {data_disk}"),
        "VMFW-DISCONNECT",
    );
    run(&mut vm, "devices", "VMFW-DEVICES-2");
    let transcript = vm.transcript();
    let disconnect = section(&transcript, "VMFW-DH", "VMFW-DISCONNECT").join("\n");
    assert!(disconnect.contains("Result Success"), "{disconnect}");
    let devices = section(&transcript, "VMFW-DISCONNECT", "VMFW-DEVICES-2");
    assert!(
        device_row(&devices, "Disk 00:02.0").is_none(),
        "{devices:#?}"
    );
    assert_eq!(
        device_row(&devices, "Disk 00:01.0").unwrap()[1..],
        disk_columns
    );
    assert_eq!(fat_volume_rows(&devices), 1, "{devices:#?}");

    // connect -r: ConnectController brings partition and volume back.
    run(&mut vm, &format!("connect -r {data_disk}"), "VMFW-CONNECT");
    run(&mut vm, "devices", "VMFW-DEVICES-3");
    let transcript = vm.transcript();
    let connect = section(&transcript, "VMFW-DEVICES-2", "VMFW-CONNECT").join("\n");
    assert!(connect.contains("Result Success"), "{connect}");
    let devices = section(&transcript, "VMFW-CONNECT", "VMFW-DEVICES-3");
    assert_eq!(
        device_row(&devices, "Disk 00:02.0").unwrap()[1..],
        disk_columns,
        "{devices:#?}"
    );
    assert_eq!(fat_volume_rows(&devices), 2, "{devices:#?}");

    // The reconnected volume reads: map it again and list it.
    run(&mut vm, "map -r", "VMFW-MAP");
    run(&mut vm, "ls fs1:", "VMFW-LS");
    let transcript = vm.transcript();
    let listing = section(&transcript, "VMFW-MAP", "VMFW-LS").join("\n");
    assert!(listing.contains("data.txt"), "{listing}");

    // dh -v of the FAT driver's handle: the Shell's LoadedImage dump starts
    // with the name the firmware volume gives the image (the rest of the
    // dump, the LoadedImage fields, this Shell build prints for no image).
    let fat_driver = drivers
        .iter()
        .find(|r| r.contains("FAT file system driver"))
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    run(&mut vm, &format!("dh -v {fat_driver}"), "VMFW-DH-V");
    let transcript = vm.transcript();
    let dump = section(&transcript, "VMFW-LS", "VMFW-DH-V").join("\n");
    assert!(
        dump.lines()
            .any(|l| l.trim() == "Name..........: FatDriver"),
        "{dump}"
    );

    // reset -s: ResetSystem(EfiResetShutdown) powers QEMU off.
    vm.expect("FS0:\\>", TIMEOUT).unwrap();
    vm.send(b"reset -s\r").unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}
