//! Disks beyond 512-byte virtio-blk (issue 21): NVMe namespaces and 4Kn
//! (4096-byte logical block) images. Each test passes only on lines printed
//! by the booted kernel's own userspace (the test initramfs's `/init`), and
//! checks the firmware's log named the disk.

use std::time::Duration;

use vm_tests::{
    DiskBus, Vm, default_image, default_image_4kn, expect_linux_environment, firmware, initramfs,
};

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
    assert!(
        vm.find("new automatic boot option 'UEFI NVMe disk Pci(0x1,0x0) ns 1 partition 1'")
            .is_some(),
        "the boot option names the namespace"
    );
}

/// The default image's files on a 4Kn disk (GPT in 4096-byte LBAs, FAT32
/// with 4096-byte sectors) from virtio-blk with `logical_block_size=4096`.
/// The guest's initramfs also reads `/dev/vda`.
#[test]
fn image_4kn_boots_from_virtio_blk_4k() {
    let image = default_image_4kn();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&image.disk, DiskBus::VirtioBlk { block_size: 4096 })
        .spawn();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(cmdline.line.contains("vmfw.entry=grub"), "{}", cmdline.line);
    expect_linux_environment(&mut vm, TIMEOUT);
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    let line = vm
        .find("disk 00:01.0: ")
        .expect("firmware log names the disk")
        .line;
    assert!(line.contains("blocks of 4096 bytes, GPT"), "{line}");
}

/// The same 4Kn image from an NVMe namespace formatted with 4096-byte
/// blocks.
#[test]
fn image_4kn_boots_from_nvme_4k() {
    let image = default_image_4kn();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&image.disk, DiskBus::Nvme { block_size: 4096 })
        .spawn();
    assert_grub_booted_userspace(&mut vm);
    assert_disk_named(&vm, "NVMe 00:01.0 ns1", 4096);
}

/// `/init`'s extra step: wait for Linux's own NVMe driver to find the
/// namespace and read its GPT header (LBA 1 of a 512-byte namespace).
const READ_NVME_FROM_LINUX: &str = r#"
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if [ "$(dd if=/dev/nvme0n1 bs=512 skip=1 count=1 2>/dev/null | head -c 8)" = "EFI PART" ]; then
  echo "INIT: nvme-gpt=ok"
else
  echo "INIT: nvme-gpt=fail"
fi
"#;

/// After ExitBootServices the firmware has shut the controller down; the
/// OS's own NVMe driver must find it ready to reset and use. The default
/// image's files with an initramfs that loads `nvme` and reads the disk.
#[test]
fn linux_takes_over_the_nvme_controller() {
    let disk = vm_tests::images::shim_grub_disk(&initramfs(READ_NVME_FROM_LINUX, &["nvme"]));
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&disk, DiskBus::Nvme { block_size: 512 })
        .spawn();
    vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        vm.find("nvme at 00:01.0: shut down").is_some(),
        "the firmware shut the controller down at ExitBootServices"
    );
    vm.expect("INIT: nvme-gpt=ok", TIMEOUT).unwrap();
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
}

/// Hostile media fall through: an NVMe namespace of size 0 (an empty
/// drive file) is logged and skipped, and the default image on a second
/// controller still boots.
#[test]
fn empty_nvme_namespace_is_skipped() {
    let image = default_image();
    let empty = std::env::temp_dir().join(format!("vmfw-empty-nvme-{}.img", std::process::id()));
    std::fs::write(&empty, b"").unwrap();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&empty, DiskBus::Nvme { block_size: 512 })
        .disk_on(&image.disk, DiskBus::Nvme { block_size: 512 })
        .spawn();
    assert_grub_booted_userspace(&mut vm);
    std::fs::remove_file(&empty).unwrap();
    assert!(
        vm.find("nvme at 00:01.0 ns1: size 0; skipped").is_some(),
        "the empty namespace is named and skipped"
    );
    assert_disk_named(&vm, "NVMe 00:02.0 ns1", 512);
}
