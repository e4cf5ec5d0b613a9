//! What the booted OS decides for the next boot takes effect after a reboot (issue 17): Debian's
//! `efibootmgr` runs in the test initramfs of a Linux the firmware booted, the guest reboots with
//! `reboot -f`, and each step passes only on the next boot's own `INIT:` lines (efibootmgr's
//! view of efivarfs and the kernel's command line). One QEMU process and one writable disk carry
//! the four boots; the firmware keeps what the OS wrote after ExitBootServices in its variable
//! journal and writes it to the ESP at the next start.
//!
//! 1. A fresh ESP: the removable-media path (a UKI) boots as the automatic Boot0000. `/init`
//!    runs `efibootmgr -n` with the built-in BLS loader's automatic option and `efibootmgr -c`
//!    for a new "OS entry" (the same UKI, by partition and file), which efibootmgr puts first
//!    in BootOrder.
//! 2. BootNext boots the BLS loader once: BootCurrent is its option and the kernel has the BLS
//!    entry's command line.
//! 3. BootNext is gone and BootOrder starts with the OS's entry: BootCurrent is the new
//!    option. `/init` sets OsIndications' BOOT_TO_FW_UI bit, which is what
//!    `systemctl reboot --firmware-setup` writes.
//! 4. The firmware stops in its boot menu and waits (no countdown); Enter boots the
//!    highlighted entry; OsIndications no longer asks for the firmware UI.
//!
//! `acpi_reset` reboots through the kernel's default (q35's ACPI reset register),
//! `efi_reset` through ResetSystem (`reboot=efi` on both command lines).

use std::time::Duration;

use vm_tests::{
    EspBuilder, Program, TempDisk, Vm, bls_entry, debian_kernel, firmware, initramfs_with,
    unified_kernel_image,
};

const STEP: Duration = Duration::from_secs(300);
const MENU_WAIT: Duration = Duration::from_secs(5);

/// `/init`'s script. Steps are told apart by marker variables, each created once: efivarfs
/// makes existing variables immutable and busybox has no `chattr`.
const SCRIPT: &str = r#"
d=/sys/firmware/efi/efivars
g=6b1f3c2e-9a47-4d0b-8e55-1c2d3e4f5a6b
ebm() { LD_LIBRARY_PATH=/lib/x86_64-linux-gnu efibootmgr "$@"; }
ebm > /tmp/ebm 2>&1
sed 's/^/INIT: ebm: /' /tmp/ebm
echo "INIT: cmdline $(cat /proc/cmdline)"
mark() { printf '\007\000\000\000x' > $d/VmfwStep$1-$g && echo "INIT: step $1 recorded"; }
if [ ! -e $d/VmfwStep1-$g ]; then
  bls=$(grep 'BLS Type #1 loader' /tmp/ebm | head -1 | cut -c5-8)
  ebm -n "$bls" > /dev/null && echo "INIT: BootNext set to $bls"
  ebm -c -d /dev/vda -p 1 -L "OS entry" -l '\EFI\BOOT\BOOTX64.EFI' > /tmp/created 2>&1
  echo "INIT: efibootmgr -c status=$?"
  mark 1
  sync
  reboot -f
elif [ ! -e $d/VmfwStep2-$g ]; then
  mark 2
  sync
  reboot -f
elif [ ! -e $d/VmfwStep3-$g ]; then
  if printf '\007\000\000\000\001\000\000\000\000\000\000\000' \
      > $d/OsIndications-8be4df61-93ca-11d2-aa0d-00e098032b8c; then
    echo "INIT: firmware setup requested"
  fi
  mark 3
  sync
  reboot -f
else
  od -An -tx1 $d/OsIndications-8be4df61-93ca-11d2-aa0d-00e098032b8c | tr -d ' \n' \
    | sed 's/^/INIT: OsIndications /'
  echo
  echo "INIT: all steps done"
fi
"#;

/// An ESP with the efibootmgr initramfs as a UKI at the removable-media path and as a BLS
/// Type #1 entry; `extra` goes on both kernel command lines.
fn disk(name: &str, extra: &str) -> TempDisk {
    let kernel = debian_kernel();
    let version = &kernel.version;
    let initrd = initramfs_with(SCRIPT, &[], &[Program::Efibootmgr]);
    let uki = unified_kernel_image(
        &kernel,
        &initrd,
        &format!("console=ttyS0 panic=-1 vmfw.entry=uki {extra}"),
        "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian (UKI)\"\n",
    );
    let image = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", uki)
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), &initrd)
        .bytes(
            "/loader/entries/debian.conf",
            bls_entry(
                "Debian (OS boot choices)",
                version,
                &format!("console=ttyS0 panic=-1 vmfw.entry=bls {extra}"),
            ),
        )
        .build();
    TempDisk::copy_of(&image, &format!("os-boot-choices-{name}"))
}

fn expect(vm: &mut Vm, line: &str) -> String {
    match vm.expect(line, STEP) {
        Ok(m) => m.line,
        Err(e) => panic!("expected {line:?}: {e}\n{}", vm.transcript()),
    }
}

/// The 4-digit number of the first option `efibootmgr` listed with `description`.
fn option_number(vm: &Vm, description: &str) -> String {
    let transcript = vm.transcript();
    transcript
        .lines()
        .filter_map(|l| l.split("INIT: ebm: ").nth(1))
        .find(|l| l.starts_with("Boot") && l.contains(description))
        .map(|l| l[4..8].to_string())
        .unwrap_or_else(|| panic!("no option {description:?}:\n{transcript}"))
}

fn run(name: &str, extra: &str) {
    let disk = disk(name, extra);
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .arg("-action")
        .arg("reboot=reset")
        .spawn();

    // Boot 1: the removable-media path; the OS picks BootNext and adds an entry.
    expect(&mut vm, "INIT: cmdline ");
    let bls = option_number(&vm, "BLS Type #1 loader");
    expect(&mut vm, &format!("INIT: BootNext set to {bls}"));
    expect(&mut vm, "INIT: efibootmgr -c status=0");
    expect(&mut vm, "INIT: step 1 recorded");

    // Boot 2: BootNext, once: the BLS loader's option boots.
    let current = expect(&mut vm, "INIT: ebm: BootCurrent: ");
    assert!(current.ends_with(&bls), "BootNext booted: {current}");
    let cmdline = expect(&mut vm, "INIT: cmdline ");
    assert!(
        cmdline.contains("vmfw.entry=bls"),
        "the BLS entry booted: {cmdline}"
    );
    expect(&mut vm, "INIT: step 2 recorded");

    // Boot 3: BootNext is gone; the OS's own entry heads BootOrder and boots.
    let current = expect(&mut vm, "INIT: ebm: BootCurrent: ");
    let os_entry = option_number(&vm, "OS entry");
    assert!(
        current.ends_with(&os_entry),
        "the entry made by efibootmgr -c booted: {current}"
    );
    let order = expect(&mut vm, "INIT: ebm: BootOrder: ");
    assert!(
        order.contains(&format!("BootOrder: {os_entry}")),
        "the OS's entry stays first: {order}"
    );
    let cmdline = expect(&mut vm, "INIT: cmdline ");
    assert!(
        cmdline.contains("vmfw.entry=uki"),
        "the UKI booted: {cmdline}"
    );
    expect(&mut vm, "INIT: firmware setup requested");
    expect(&mut vm, "INIT: step 3 recorded");

    // Boot 4: the firmware UI, waiting for the user.
    expect(&mut vm, "vmfw boot menu");
    expect(&mut vm, "Up/Down to select, Enter to boot.");
    std::thread::sleep(MENU_WAIT);
    let transcript = vm.transcript();
    let waiting = &transcript[transcript.rfind("vmfw boot menu").unwrap_or(0)..];
    assert!(
        !waiting.contains("Booting the selected option in") && !waiting.contains("INIT:"),
        "the firmware UI must wait for the user: {waiting}"
    );
    vm.send(b"\r").unwrap();
    let indications = expect(&mut vm, "INIT: OsIndications ");
    assert!(
        indications.ends_with("0000000000000000"),
        "the firmware cleared BOOT_TO_FW_UI: {indications}"
    );
    expect(&mut vm, "INIT: all steps done");
    expect(&mut vm, "INIT: done");
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    assert_eq!(
        vm.transcript()
            .matches("variables: journal applied")
            .count(),
        3,
        "each reboot applied the OS's changes from the journal"
    );
}

#[test]
fn os_boot_choices_survive_acpi_reset() {
    run("acpi", "");
}

#[test]
fn os_boot_choices_survive_efi_reset() {
    run("efi", "reboot=efi");
}
