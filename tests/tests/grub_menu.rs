//! GRUB's interactive menu driven over the serial console. GRUB reads keys
//! through the firmware's ConIn (EFI_SIMPLE_TEXT_INPUT_PROTOCOL, decoding the
//! terminal's VT100 sequences) and draws through ConOut; the test picks the
//! second menu entry with the down arrow, edits its `linux` line and boots it
//! with Ctrl-x. It passes only when the edited command line shows up in the
//! booted kernel's `/proc/cmdline`, printed by the initramfs's `/init`.

use std::time::Duration;

use vm_tests::{EspBuilder, SIGNED_GRUB, SIGNED_SHIM, Vm, deb, debian_kernel, firmware, initramfs};

const TIMEOUT: Duration = Duration::from_secs(240);
/// Long enough that GRUB never boots the default on its own on a busy machine.
const GRUB_TIMEOUT_SECONDS: u32 = 600;

const DOWN: &[u8] = b"\x1b[B";
const CTRL_E: &[u8] = b"\x05";
const CTRL_X: &[u8] = b"\x18";

#[test]
fn grub_menu_edit_and_boot_second_entry() {
    let kernel = debian_kernel();
    let version = &kernel.version;
    let shim = deb("shim-signed").join(SIGNED_SHIM);
    let grub = deb("grub-efi-amd64-signed").join(SIGNED_GRUB);
    // The `linux` line comes first in the second entry, so in GRUB's editor
    // (which shows `setparams '<title>'` above the body) it is reached with
    // one down arrow.
    let grub_cfg = format!(
        "set timeout={GRUB_TIMEOUT_SECONDS}\n\
         set default=0\n\
         menuentry 'First entry' {{\n\
         \tlinux /vmlinuz-{version} console=ttyS0 panic=-1 vmfw.entry=first\n\
         \tinitrd /initrd.img-{version}\n\
         }}\n\
         menuentry 'Second entry' {{linux /vmlinuz-{version} console=ttyS0 panic=-1 vmfw.entry=second\n\
         \tinitrd /initrd.img-{version}\n\
         }}\n"
    );
    let disk = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), initramfs("", &[]))
        .file("/EFI/BOOT/BOOTX64.EFI", shim)
        .file("/EFI/BOOT/grubx64.efi", grub)
        .bytes("/EFI/debian/grub.cfg", grub_cfg)
        .build();
    let mut vm = Vm::builder().firmware(firmware()).disk(&disk).spawn();

    // GRUB's menu, drawn through ConOut with cursor positioning (one long
    // console "line"), with its countdown running.
    vm.expect("executed automatically", TIMEOUT).unwrap();
    vm.send(DOWN).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    vm.send(b"e").unwrap();
    // The editor shows the entry's source and its key help.
    vm.expect("Ctrl-x", TIMEOUT).unwrap();
    vm.send(DOWN).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    vm.send(CTRL_E).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    vm.send(b" vmfw.edited=1").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    vm.send(CTRL_X).unwrap();

    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.entry=second"),
        "the down arrow selected the second entry: {}",
        cmdline.line
    );
    assert!(
        cmdline.line.contains("vmfw.entry=second vmfw.edited=1"),
        "the edit typed in GRUB's editor reached /proc/cmdline: {}",
        cmdline.line
    );
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}
