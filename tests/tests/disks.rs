//! Disks beyond 512-byte virtio-blk (issue 21): NVMe namespaces and 4Kn
//! (4096-byte logical block) images. Each test passes only on lines printed
//! by the booted kernel's own userspace (the test initramfs's `/init`), and
//! checks the firmware's log named the disk.

use std::time::Duration;

use vm_tests::{DiskBus, Vm, default_image, firmware};

const TIMEOUT: Duration = Duration::from_secs(240);

/// Waits for the kernel GRUB started to report its command line, its UEFI
/// environment and a finished `/init`, then for the guest's `poweroff -f`.
/// The default initramfs looks for virtio disks only, so its `disk=` line
/// is not asked for here.
fn assert_grub_booted_userspace(vm: &mut Vm) {
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.entry=grub"),
        "booted through GRUB: {}",
        cmdline.line
    );
    for line in ["INIT: efi=yes", "INIT: efivar-rw=ok", "INIT: acpi=yes"] {
        if let Err(e) = vm.expect(line, TIMEOUT) {
            panic!("guest did not report {line:?}: {e}");
        }
    }
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}

/// The firmware names the disk by its bus in the log: `disk NVMe 00:01.0
/// ns1: 135168 blocks of 512 bytes, GPT, 1 partitions`.
fn assert_disk_named(vm: &Vm, label: &str, block_size: u32) {
    let line = vm
        .find(&format!("disk {label}"))
        .unwrap_or_else(|| panic!("firmware log names {label}"))
        .line;
    assert!(
        line.contains(&format!("blocks of {block_size} bytes, GPT")),
        "{line}"
    );
}

/// Debian's shim -> GRUB -> kernel, the default image, from an NVMe
/// namespace with 512-byte blocks.
#[test]
fn default_image_boots_from_nvme() {
    let image = default_image();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&image.disk, DiskBus::Nvme { block_size: 512 })
        .spawn();
    assert_grub_booted_userspace(&mut vm);
    assert_disk_named(&vm, "NVMe 00:01.0 ns1", 512);
}
