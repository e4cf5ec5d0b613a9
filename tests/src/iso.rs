//! Installer-style ISO images, laid out as Debian's own: an ISO 9660 file system holding the
//! kernel, the initrd, `/boot/grub/grub.cfg` and `/.disk/info`, and an El Torito EFI boot
//! image (`/boot/grub/efi.img`, a small FAT) holding Debian's signed shim as
//! `\EFI\BOOT\BOOTX64.EFI` and signed GRUB beside it. Debian's signed GRUB finds its
//! configuration as on a Debian installer ISO: its built-in config searches for `/.disk/info`
//! and sources `/boot/grub/grub.cfg` from that file system. Built with xorriso, cached in
//! `<root>/.cache/iso/` by a hash of the inputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::deb::deb;
use crate::disk::{FatContents, FileSource};
use crate::images::{SIGNED_GRUB, SIGNED_SHIM};
use crate::paths::cache_dir;
use crate::util::{KeyHasher, publish, remove_any, run, temp_sibling};

/// How the ISO image presents itself besides El Torito.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsoLayout {
    /// ISO 9660 and El Torito only: written to a disk, only the El Torito catalog finds
    /// the boot image.
    Plain,
    /// Hybrid, as Debian's ISOs are: the EFI image also appended as partition 2 of a GPT
    /// (type EF00) for 512-byte-block media (a USB stick, a virtual disk).
    HybridGpt,
}

/// An ISO whose GRUB boots `kernel` with `initrd` and `cmdline` at once (menu entry
/// `title`).
pub fn installer_iso(title: &str, kernel: &Path, initrd: &Path, cmdline: &str) -> PathBuf {
    installer_iso_with(title, kernel, initrd, cmdline, IsoLayout::Plain)
}

/// [`installer_iso`] with the given layout.
pub fn installer_iso_with(
    title: &str,
    kernel: &Path,
    initrd: &Path,
    cmdline: &str,
    layout: IsoLayout,
) -> PathBuf {
    let shim = deb("shim-signed").join(SIGNED_SHIM);
    let grub = deb("grub-efi-amd64-signed").join(SIGNED_GRUB);
    let efi = FatContents::new()
        .file("/EFI/BOOT/BOOTX64.EFI", &shim)
        .file("/EFI/BOOT/grubx64.efi", &grub);
    let grub_cfg = format!(
        "set timeout=0\n\
         set default=0\n\
         menuentry '{title}' {{\n\
         \techo 'GRUB: loading the installer from the ISO'\n\
         \tlinux /install.amd/vmlinuz {cmdline}\n\
         \tinitrd /install.amd/initrd.gz\n\
         }}\n"
    );
    let files = [
        (
            "install.amd/vmlinuz",
            FileSource::Host(kernel.to_path_buf()),
        ),
        (
            "install.amd/initrd.gz",
            FileSource::Host(initrd.to_path_buf()),
        ),
        (
            "boot/grub/grub.cfg",
            FileSource::Bytes(grub_cfg.into_bytes()),
        ),
        (
            ".disk/info",
            FileSource::Bytes(format!("{title}\n").into_bytes()),
        ),
    ];

    let mut key = KeyHasher::new("installer iso v1");
    if layout == IsoLayout::HybridGpt {
        key.str("hybrid gpt");
    }
    efi.hash_into(&mut key);
    for (path, source) in &files {
        key.str(path);
        match source {
            FileSource::Host(host) => key.file(host),
            FileSource::Bytes(data) => key.bytes(data),
        };
    }
    let out = cache_dir("iso").join(format!("installer-{}.iso", key.hex()));
    if out.is_file() {
        return out;
    }
    let scratch = temp_sibling(&out.with_extension("d"));
    let tree = scratch.join("tree");
    std::fs::create_dir_all(tree.join("boot/grub"))
        .unwrap_or_else(|e| panic!("create {}: {e}", tree.display()));
    for (path, source) in &files {
        let dest = tree.join(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        match source {
            FileSource::Host(host) => std::fs::copy(host, &dest).map(|_| ()),
            FileSource::Bytes(data) => std::fs::write(&dest, data),
        }
        .unwrap_or_else(|e| panic!("write {}: {e}", dest.display()));
    }
    // Content plus a quarter, in whole MiB: FAT16 at this size, and a sector count
    // (512-byte units) the El Torito entry's 16 bits hold, as on Debian's ISOs.
    let mib = 1024 * 1024;
    let bytes = (efi.content_size() * 5 / 4).div_ceil(mib) * mib + mib;
    efi.make_fat(
        &tree.join("boot/grub/efi.img"),
        bytes,
        None,
        "VMFW_EFI",
        512,
        &scratch,
    );
    let iso = scratch.join("out.iso");
    let mut xorriso = Command::new("xorriso");
    xorriso
        .args([
            "-as",
            "mkisofs",
            "-quiet",
            "-R",
            "-J",
            "-V",
            "VMFW_INSTALLER",
        ])
        .args(["-e", "boot/grub/efi.img", "-no-emul-boot"]);
    if layout == IsoLayout::HybridGpt {
        xorriso
            .args(["-append_partition", "2", "0xef"])
            .arg(tree.join("boot/grub/efi.img"))
            .arg("-appended_part_as_gpt");
    }
    run(xorriso.arg("-o").arg(&iso).arg(&tree));
    publish(&iso, &out);
    remove_any(&scratch);
    out
}
