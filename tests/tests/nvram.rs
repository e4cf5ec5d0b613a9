//! Persistent UEFI variables (`\EFI\vmfw\vars.bin` on the ESP) and the
//! boot manager's Boot####/BootOrder handling, across reboots of the guest.
//!
//! - `variables_survive_reset`: the `varset` EFI app sets a non-volatile and a volatile
//!   variable and warm-resets; after the reset (same QEMU process) and again in a fresh QEMU
//!   process on the same disk, the non-volatile one reads back with the same attributes and
//!   data and the volatile one is gone.
//! - `shim_fallback_boot_entry_persists`: Debian's shim starts its fallback (`fbx64.efi`),
//!   which reads `\EFI\debian\BOOTX64.CSV` and creates a Boot#### entry plus BootOrder; the
//!   next QEMU process boots through that entry to the guest's userspace.
//! - `read_only_disk_keeps_variables_in_ram`: on a read-only disk the firmware says changes
//!   will not persist, shim's and the guest's writes succeed in RAM, and the chain boots.

use std::time::Duration;

use vm_tests::{
    EspBuilder, GRUB_CMDLINE, SIGNED_GRUB, SIGNED_SHIM, TempDisk, Vm, deb, debian_kernel,
    default_image, efi_app, expect_linux_environment, firmware, grub_cfg, initramfs,
};

const STEP: Duration = Duration::from_secs(180);
const BOOT: Duration = Duration::from_secs(400);

/// The value `varset` stores, with NON_VOLATILE|BOOTSERVICE_ACCESS|RUNTIME_ACCESS.
const PERSISTED: &str = "VARSET: nv attributes=0x7 data=survives-reset";

fn expect_second_boot(vm: &mut Vm) {
    vm.expect(PERSISTED, STEP).unwrap();
    vm.expect("VARSET: volatile=absent", STEP).unwrap();
    vm.expect("VARSET: done", STEP).unwrap();
    vm.wait_exit(STEP).unwrap();
}

#[test]
fn variables_survive_reset() {
    let image = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("varset"))
        .build();
    let disk = TempDisk::copy_of(&image, "nvram-varset");

    // First QEMU process, allowed to reboot: set, warm reset, read back.
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .arg("-action")
        .arg("reboot=reset")
        .spawn();
    vm.expect("VARSET: first boot", STEP).unwrap();
    // QueryVariableInfo describes the 128 KiB store less its 24-byte header.
    let query = vm.expect("VARSET: query status=0x0", STEP).unwrap();
    assert!(
        query.line.contains(&format!("maximum={}", 128 * 1024 - 24)),
        "{}",
        query.line
    );
    // Authenticated variables cannot be verified here: EFI_UNSUPPORTED.
    vm.expect("VARSET: authenticated status=0x8000000000000003", STEP)
        .unwrap();
    vm.expect("VARSET: set, resetting", STEP).unwrap();
    vm.expect("loaded from \\EFI\\vmfw\\vars.bin", STEP)
        .unwrap();
    expect_second_boot(&mut vm);
    let first = vm.transcript();
    assert_eq!(
        first.matches("VARSET: first boot").count(),
        1,
        "the warm reset must not lose the variable:\n{first}"
    );

    // A fresh QEMU process on the same disk.
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .spawn();
    expect_second_boot(&mut vm);
    assert!(!vm.transcript().contains("VARSET: first boot"));
}

/// `BOOTX64.CSV` as distros ship it next to shim: UTF-16LE with a BOM, one line
/// `loader,label,options,description`.
fn boot_csv() -> Vec<u8> {
    let text = "shimx64.efi,debian,,This is the boot entry for debian\n";
    let mut bytes = vec![0xff, 0xfe];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    bytes
}

#[test]
fn shim_fallback_boot_entry_persists() {
    let kernel = debian_kernel();
    let initrd = initramfs("", &[]);
    let version = &kernel.version;
    let shim = deb("shim-signed").join(SIGNED_SHIM);
    let fallback = deb("shim-helpers-amd64-signed").join("usr/lib/shim/fbx64.efi.signed");
    let grub = deb("grub-efi-amd64-signed").join(SIGNED_GRUB);
    let grub_cfg = grub_cfg(
        "Debian GNU/Linux 12 (vmfw fallback test)",
        version,
        GRUB_CMDLINE,
    );
    // The layout of a Debian cloud image's ESP.
    let image = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), &initrd)
        .file("/EFI/BOOT/BOOTX64.EFI", &shim)
        .file("/EFI/BOOT/fbx64.efi", fallback)
        .file("/EFI/debian/shimx64.efi", &shim)
        .file("/EFI/debian/grubx64.efi", grub)
        .bytes("/EFI/debian/BOOTX64.CSV", boot_csv())
        .bytes("/EFI/debian/grub.cfg", grub_cfg)
        .build();
    let disk = TempDisk::copy_of(&image, "nvram-fallback");

    // First start: no BootOrder, so the removable path runs shim, which runs the fallback;
    // it creates the entry and resets (QEMU exits: -no-reboot) or boots the entry itself.
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .spawn();
    vm.expect("booting \\EFI\\BOOT\\BOOTX64.EFI", STEP).unwrap();
    vm.wait_exit(BOOT).unwrap();
    let first = vm.transcript();
    assert!(
        first.contains("no \\EFI\\vmfw\\vars.bin"),
        "the disk starts without a store:\n{first}"
    );

    // Next start: the entry is in BootOrder and the boot manager boots through it.
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_writable(&disk.0)
        .spawn();
    vm.expect("loaded from \\EFI\\vmfw\\vars.bin", STEP)
        .unwrap();
    let booting = vm.expect("booting Boot", STEP).unwrap();
    assert!(
        booting.line.contains("(debian)") && booting.line.contains("shimx64.efi"),
        "{}",
        booting.line
    );
    let cmdline = vm.expect("INIT: cmdline=", BOOT).unwrap();
    assert!(cmdline.line.contains("vmfw.entry=grub"), "{}", cmdline.line);
    vm.expect("INIT: done", BOOT).unwrap();
    vm.wait_exit(STEP).unwrap();
    let second = vm.transcript();
    assert!(
        !second.contains("booting \\EFI\\BOOT\\BOOTX64.EFI"),
        "the removable path is not needed any more:\n{second}"
    );
}

/// The default image on a disk QEMU presents read-only (virtio-blk
/// VIRTIO_BLK_F_RO): no `vars.bin` and none can be made, so the firmware warns
/// once and keeps non-volatile variables in RAM; shim's SbatLevel write and
/// the guest's efivarfs write both succeed, and the chain boots.
#[test]
fn read_only_disk_keeps_variables_in_ram() {
    let image = default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .arg("-drive")
        .arg(format!(
            "if=none,id=ro,file={},format=raw,readonly=on",
            image.disk.display()
        ))
        .arg("-device")
        .arg("virtio-blk-pci,drive=ro,disable-legacy=on")
        .spawn();
    let warning = vm.expect("changes will not persist", STEP).unwrap();
    assert!(warning.line.contains("not writable"), "{}", warning.line);
    let cmdline = vm.expect("INIT: cmdline=", BOOT).unwrap();
    assert!(cmdline.line.contains("vmfw.entry=grub"), "{}", cmdline.line);
    expect_linux_environment(&mut vm, BOOT);
    vm.expect("INIT: done", BOOT).unwrap();
    vm.wait_exit(STEP).unwrap();
    let transcript = vm.transcript();
    assert_eq!(
        transcript.matches("changes will not persist").count(),
        1,
        "{transcript}"
    );
    assert!(
        !transcript.contains("non-volatile variables not saved"),
        "{transcript}"
    );
}
