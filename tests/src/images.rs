//! The standard Debian 12 test disk, and helpers that boot a disk image.

use std::path::{Path, PathBuf};

use crate::build::firmware;
use crate::deb::{DebianKernel, deb, debian_kernel};
use crate::disk::EspBuilder;
use crate::initramfs::initramfs;
use crate::qemu::Vm;
use crate::uki::systemd_boot;

/// Marks which boot path started the kernel: each entry adds its own `vmfw.entry=`.
pub const BLS_CMDLINE: &str = "console=ttyS0 panic=-1 vmfw.entry=bls";
pub const GRUB_CMDLINE: &str = "console=ttyS0 panic=-1 vmfw.entry=grub";
pub const SYSTEMD_BOOT_CMDLINE: &str = "console=ttyS0 panic=-1 vmfw.entry=systemd-boot";

/// Debian's signed shim inside an extracted `shim-signed` package (`deb`, `deb_trixie`).
pub const SIGNED_SHIM: &str = "usr/lib/shim/shimx64.efi.signed";
/// Debian's signed GRUB inside an extracted `grub-efi-amd64-signed` package.
pub const SIGNED_GRUB: &str = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed";

/// A `grub.cfg` that boots `/vmlinuz-<version>` with `/initrd.img-<version>` and
/// `cmdline` at once, from one menu entry titled `title`.
pub fn grub_cfg(title: &str, version: &str, cmdline: &str) -> String {
    format!(
        "set timeout=0\n\
         set default=0\n\
         menuentry '{title}' {{\n\
         \techo 'GRUB: loading Linux {version}'\n\
         \tlinux /vmlinuz-{version} {cmdline}\n\
         \tinitrd /initrd.img-{version}\n\
         }}\n"
    )
}

/// `loader.conf` for systemd-boot: boot `debian.conf` at once, no menu.
const SYSTEMD_BOOT_LOADER_CONF: &str = "timeout 0\ndefault debian.conf\n";

/// The default image and what it was made from.
#[derive(Clone, Debug)]
pub struct DefaultImage {
    /// Raw GPT disk image.
    pub disk: PathBuf,
    pub kernel: DebianKernel,
    /// The standard initramfs (no extra script).
    pub initrd: PathBuf,
}

/// Builds (or reuses) the default disk: an ESP holding
/// - `/vmlinuz-<ver>` and `/initrd.img-<ver>` (Debian 12 kernel, [`initramfs`] with no extras);
/// - `/loader/entries/debian.conf`, a BLS Type #1 entry with [`BLS_CMDLINE`];
/// - `\EFI\BOOT\BOOTX64.EFI` = Debian's signed shim, `\EFI\BOOT\grubx64.efi` = Debian's signed
///   GRUB, and `\EFI\debian\grub.cfg` (the prefix built into that GRUB) booting the same kernel
///   with [`GRUB_CMDLINE`].
pub fn default_image() -> DefaultImage {
    default_image_in_blocks_of(512)
}

/// The default image's files on a 4Kn disk: 4096-byte logical blocks for the GPT's LBAs and
/// a FAT32 ESP with 4096-byte sectors (at least 272 MiB, the FAT32 minimum at that sector
/// size; the image file is sparse). For `logical_block_size=4096` virtio-blk, NVMe or SCSI.
pub fn default_image_4kn() -> DefaultImage {
    default_image_in_blocks_of(4096)
}

fn default_image_in_blocks_of(block_size: u64) -> DefaultImage {
    let kernel = debian_kernel();
    let initrd = initramfs("", &[]);
    let version = &kernel.version;
    let shim = deb("shim-signed").join(SIGNED_SHIM);
    let grub = deb("grub-efi-amd64-signed").join(SIGNED_GRUB);
    let grub_cfg = grub_cfg("Debian GNU/Linux 12 (vmfw test)", version, GRUB_CMDLINE);
    let disk = EspBuilder::new()
        .block_size(block_size)
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), &initrd)
        .bytes(
            "/loader/entries/debian.conf",
            bls_entry(BLS_TITLE, version, BLS_CMDLINE),
        )
        .file("/EFI/BOOT/BOOTX64.EFI", shim)
        .file("/EFI/BOOT/grubx64.efi", grub)
        .bytes("/EFI/debian/grub.cfg", grub_cfg)
        .build();
    DefaultImage {
        disk,
        kernel,
        initrd,
    }
}

/// The default image's shim -> GRUB -> Debian 12 kernel chain (no BLS entry) with `initrd`
/// in place of the standard initramfs: for tests whose `/init` checks more (Linux's own
/// ahci or nvme driver taking the disk over).
pub fn shim_grub_disk(initrd: &Path) -> PathBuf {
    let kernel = debian_kernel();
    let version = &kernel.version;
    EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), initrd)
        .file(
            "/EFI/BOOT/BOOTX64.EFI",
            deb("shim-signed").join(SIGNED_SHIM),
        )
        .file(
            "/EFI/BOOT/grubx64.efi",
            deb("grub-efi-amd64-signed").join(SIGNED_GRUB),
        )
        .bytes(
            "/EFI/debian/grub.cfg",
            grub_cfg("Debian GNU/Linux 12 (vmfw test)", version, GRUB_CMDLINE),
        )
        .build()
}

/// Builds (or reuses) the default disk's twin for systemd-boot: the same kernel and
/// initramfs under the same names, a BLS Type #1 entry `/loader/entries/debian.conf` with
/// [`SYSTEMD_BOOT_CMDLINE`], `/loader/loader.conf` selecting it with no menu, and Debian's
/// systemd-boot as `\EFI\BOOT\BOOTX64.EFI` (no shim or GRUB), so boot-time comparisons
/// between the chains differ only in the loader.
pub fn systemd_boot_image() -> DefaultImage {
    let kernel = debian_kernel();
    let initrd = initramfs("", &[]);
    let version = &kernel.version;
    let disk = EspBuilder::new()
        .file(&format!("/vmlinuz-{version}"), &kernel.vmlinuz)
        .file(&format!("/initrd.img-{version}"), &initrd)
        .bytes("/loader/loader.conf", SYSTEMD_BOOT_LOADER_CONF)
        .bytes(
            "/loader/entries/debian.conf",
            bls_entry(BLS_TITLE, version, SYSTEMD_BOOT_CMDLINE),
        )
        .file("/EFI/BOOT/BOOTX64.EFI", systemd_boot())
        .build();
    DefaultImage {
        disk,
        kernel,
        initrd,
    }
}

/// The test images' title for their BLS entries.
const BLS_TITLE: &str = "Debian GNU/Linux 12 (vmfw test)";

/// A BLS Type #1 entry (Boot Loader Specification, "Type #1 Boot Loader Entry Keys") titled
/// `title` for the kernel `version` and its initrd at the ESP's root, with `options`.
pub fn bls_entry(title: &str, version: &str, options: &str) -> String {
    format!(
        "title {title}\n\
         version {version}\n\
         linux /vmlinuz-{version}\n\
         initrd /initrd.img-{version}\n\
         options {options}\n"
    )
}

/// Starts OVMF (the baseline UEFI) with `disk` attached.
pub fn boot_ovmf(disk: &Path) -> Vm {
    Vm::builder().ovmf().disk(disk).spawn()
}

/// Starts our firmware with `disk` attached.
pub fn boot_firmware(disk: &Path) -> Vm {
    Vm::builder().firmware(firmware()).disk(disk).spawn()
}

/// What every booted Linux must report from its own userspace (the test
/// initramfs's `/init`): EFI present, efivarfs readable and writable through
/// runtime services, ACPI and SMBIOS tables visible, the virtio disk usable.
/// Expects the lines in the order `/init` prints them, after `INIT: cmdline=`.
pub fn expect_linux_environment(vm: &mut Vm, timeout: std::time::Duration) {
    for line in [
        "INIT: efi=yes",
        "INIT: efivar-rw=ok",
        "INIT: acpi=yes",
        "INIT: dmi=yes",
        "INIT: disk=/dev/vda ok",
    ] {
        if let Err(e) = vm.expect(line, timeout) {
            panic!("guest did not report {line:?}: {e}");
        }
    }
}
