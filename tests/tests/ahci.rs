//! Disks and CD-ROMs on q35's AHCI controller (ICH9, 00:1f.2): the firmware's AHCI driver
//! boots the default chain from a SATA disk, and publishes an ISO in an ATAPI drive as
//! removable, read-only media of 2048-byte blocks. Boots pass only on lines printed by the
//! booted kernel's own userspace; media checks on the `blkinfo` EFI app's report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vm_tests::iso::installer_iso;
use vm_tests::{DiskBus, EspBuilder, Vm, cache_dir, debian_kernel, efi_app, firmware, initramfs};

const TIMEOUT: Duration = Duration::from_secs(240);

/// Lines `/init` prints after loading Linux's own AHCI driver: the disk the firmware booted
/// from, read again after ExitBootServices stopped the firmware's ports.
const SATA_CHECK: &str = r#"
sata=none
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/sda ] && break; sleep 1; done
if [ -b /dev/sda ]; then
  if dd if=/dev/sda of=/dev/null bs=512 count=2048 2>/dev/null; then sata="/dev/sda ok"; else sata="/dev/sda fail"; fi
fi
echo "INIT: sata=$sata"
"#;

/// The default image's chain (Debian 12 signed shim -> signed GRUB -> kernel 6.1) with an
/// initramfs that also loads `ahci` and `sd_mod` and reads the disk (`SATA_CHECK`).
fn sata_chain_disk() -> PathBuf {
    vm_tests::images::shim_grub_disk(&initramfs(SATA_CHECK, &["ahci", "sd_mod"]))
}

/// Debian 12's shim -> GRUB -> kernel from `\EFI\BOOT\BOOTX64.EFI` on a SATA disk, the only
/// disk of the VM; Linux's `ahci` driver then reads the same disk.
#[test]
fn shim_grub_debian_kernel_from_a_sata_disk() {
    let disk = sata_chain_disk();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&disk, DiskBus::SataDisk)
        .spawn();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.entry=grub"),
        "booted through GRUB: {}",
        cmdline.line
    );
    for line in ["INIT: efi=yes", "INIT: efivar-rw=ok", "INIT: acpi=yes"] {
        vm.expect(line, TIMEOUT)
            .unwrap_or_else(|e| panic!("guest did not report {line:?}: {e}"));
    }
    vm.expect("INIT: sata=/dev/sda ok", TIMEOUT).unwrap();
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    assert!(
        vm.find("disk SATA disk 0:").is_some(),
        "the firmware named the disk"
    );
}

/// An ISO 9660 image (`xorriso -as mkisofs`, volume id `VMFWTEST`) of a few files.
fn test_iso() -> PathBuf {
    let dir = cache_dir("ahci");
    let iso = dir.join("vmfwtest.iso");
    if iso.is_file() {
        return iso;
    }
    let tree = dir.join("iso-tree");
    std::fs::create_dir_all(tree.join("boot")).unwrap();
    std::fs::write(tree.join("README.TXT"), "vmfw AHCI test medium\n").unwrap();
    std::fs::write(tree.join("boot/data.bin"), vec![0xA5u8; 300 << 10]).unwrap();
    let partial = dir.join("vmfwtest.iso.partial");
    let out = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-V", "VMFWTEST", "-o"])
        .arg(&partial)
        .arg(&tree)
        .output()
        .expect("xorriso (tests/scripts/setup.sh installs it)");
    assert!(out.status.success(), "xorriso: {out:?}");
    std::fs::rename(&partial, &iso).unwrap();
    iso
}

fn blocks_of(iso: &Path) -> u64 {
    std::fs::metadata(iso).unwrap().len() / 2048
}

/// The `blkinfo` app, from a SATA disk, sees: its own disk (512-byte blocks, fixed,
/// writable), the ISO in the ATAPI drive on port 1 (2048-byte blocks, removable, media
/// present, read-only, ISO 9660's primary volume descriptor at block 16, WriteBlocks
/// `EFI_WRITE_PROTECTED`), and an empty ATAPI drive on port 2 (media absent, ReadBlocks
/// `EFI_NO_MEDIA`).
#[test]
fn iso_in_a_sata_cdrom_is_removable_read_only_media() {
    let esp = EspBuilder::new()
        .file("/EFI/BOOT/BOOTX64.EFI", efi_app("blkinfo"))
        .build();
    let iso = test_iso();
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&esp, DiskBus::SataDisk)
        .disk_on(&iso, DiskBus::SataCdrom)
        .args_empty_cdrom()
        .spawn();
    vm.expect("BLKINFO: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(30)).unwrap();
    let report: Vec<String> = vm
        .transcript()
        .lines()
        .filter(|line| line.contains("BLKINFO"))
        .map(String::from)
        .collect();
    let has = |text: &str| report.iter().any(|line| line.contains(text));
    assert!(has(" bs=512 last="), "the SATA disk: {report:#?}");
    assert!(has(" rm=0 mp=1 ro=0"), "the SATA disk: {report:#?}");
    let cd = format!(" bs=2048 last={} rm=1 mp=1 ro=1", blocks_of(&iso) - 1);
    assert!(has(&cd), "the CD-ROM ({cd}): {report:#?}");
    assert!(has(" pvd=CD001 vol=VMFWTEST"), "ISO 9660 read: {report:#?}");
    assert!(
        has(" write=0x8000000000000008"),
        "WriteBlocks on the CD: EFI_WRITE_PROTECTED: {report:#?}"
    );
    assert!(
        has(" bs=2048 last=0 rm=1 mp=0 ro=1"),
        "the empty drive: {report:#?}"
    );
    assert!(
        has(" read=0x800000000000000c"),
        "ReadBlocks without media: EFI_NO_MEDIA: {report:#?}"
    );
    assert!(
        vm.find("disk SATA CD-ROM 2: no media").is_some(),
        "the firmware logged the empty drive"
    );
}

/// An empty ATAPI drive on AHCI port 2 (ports 0 and 1 hold the test's disks).
trait EmptyCdrom {
    fn args_empty_cdrom(self) -> Self;
}

impl EmptyCdrom for vm_tests::VmBuilder {
    fn args_empty_cdrom(self) -> Self {
        self.arg("-drive")
            .arg("if=none,id=empty,media=cdrom")
            .arg("-device")
            .arg("ide-cd,drive=empty,bus=ide.2")
    }
}

/// An installer ISO laid out as Debian's (`vm_tests::iso`: shim and GRUB in the El Torito EFI
/// image, kernel and initrd in ISO 9660) in the ATAPI drive, the VM's only medium: the
/// firmware boots the El Torito image's `\EFI\BOOT\BOOTX64.EFI` from the CD-ROM's 2048-byte
/// blocks, and GRUB reads the kernel through the same BlockIo.
#[test]
fn installer_iso_boots_from_a_sata_cdrom() {
    let kernel = debian_kernel();
    let iso = installer_iso(
        "vmfw test installer",
        &kernel.vmlinuz,
        &initramfs("", &[]),
        "console=ttyS0 panic=-1 vmfw.entry=iso",
    );
    let mut vm = Vm::builder()
        .firmware(firmware())
        .disk_on(&iso, DiskBus::SataCdrom)
        .spawn();
    let cmdline = vm.expect("INIT: cmdline=", TIMEOUT).unwrap();
    assert!(
        cmdline.line.contains("vmfw.entry=iso"),
        "booted the ISO's kernel: {}",
        cmdline.line
    );
    for line in ["INIT: efi=yes", "INIT: efivar-rw=ok", "INIT: acpi=yes"] {
        vm.expect(line, TIMEOUT)
            .unwrap_or_else(|e| panic!("guest did not report {line:?}: {e}"));
    }
    vm.expect("INIT: done", TIMEOUT).unwrap();
    vm.wait_exit(Duration::from_secs(60)).unwrap();
    assert!(
        vm.find("disk SATA CD-ROM 0:").is_some(),
        "the firmware named the drive"
    );
}
