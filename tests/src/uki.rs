//! Unified kernel images (UAPI "Unified Kernel Image") built from Debian's
//! `systemd-boot-efi` stub (`linuxx64.efi.stub`) the way systemd's
//! documentation assembles one by hand: `objcopy --add-section` for each
//! payload with `--change-section-vma` placing it after the stub's own
//! sections. Cached under `.cache/uki/`, keyed by the inputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::deb::{DebianKernel, deb};
use crate::paths::cache_dir;
use crate::util::{KeyHasher, publish, run, temp_sibling};

/// The stub inside an extracted `systemd-boot-efi` package (`deb`, `deb_trixie`).
pub const SYSTEMD_STUB: &str = "usr/lib/systemd/boot/efi/linuxx64.efi.stub";
/// systemd-boot inside the same package.
pub const SYSTEMD_BOOT_EFI: &str = "usr/lib/systemd/boot/efi/systemd-bootx64.efi";

/// Debian 12's systemd stub.
pub fn systemd_stub() -> PathBuf {
    deb("systemd-boot-efi").join(SYSTEMD_STUB)
}

/// systemd-boot itself, from the same package.
pub fn systemd_boot() -> PathBuf {
    deb("systemd-boot-efi").join(SYSTEMD_BOOT_EFI)
}

/// Sections are placed on this boundary (a multiple of any PE section alignment).
const SECTION_ALIGN: u64 = 0x10000;

/// End (VMA + size) of the last section of the PE `image`, from `objdump -h`.
fn sections_end(image: &Path) -> u64 {
    let listing = run(Command::new("objdump").arg("-h").arg(image));
    listing
        .lines()
        .filter_map(|line| {
            // "  0 .text  0000bff0  0000000000004000  ..."
            let fields: Vec<&str> = line.split_whitespace().collect();
            let index_ok = fields.first()?.parse::<u32>().is_ok();
            let size = u64::from_str_radix(fields.get(2)?, 16).ok()?;
            let vma = u64::from_str_radix(fields.get(3)?, 16).ok()?;
            index_ok.then_some(vma + size)
        })
        .max()
        .unwrap_or_else(|| panic!("no sections in objdump -h {}:\n{listing}", image.display()))
}

/// Builds (or reuses) a UKI of `kernel` with `initrd`, the embedded command
/// line `cmdline`, `os_release` as `.osrel` and the kernel release as `.uname`,
/// on Debian 12's systemd stub.
pub fn unified_kernel_image(
    kernel: &DebianKernel,
    initrd: &Path,
    cmdline: &str,
    os_release: &str,
) -> PathBuf {
    unified_kernel_image_on(&systemd_stub(), kernel, initrd, cmdline, os_release)
}

/// As [`unified_kernel_image`], on the systemd stub `stub`.
pub fn unified_kernel_image_on(
    stub: &Path,
    kernel: &DebianKernel,
    initrd: &Path,
    cmdline: &str,
    os_release: &str,
) -> PathBuf {
    let mut key = KeyHasher::new("uki v1");
    key.file(stub)
        .file(&kernel.vmlinuz)
        .file(initrd)
        .str(cmdline)
        .str(os_release)
        .str(&kernel.version);
    let out = cache_dir("uki").join(format!("uki-{}.efi", key.hex()));
    if out.is_file() {
        return out;
    }

    let work = temp_sibling(&out);
    std::fs::create_dir_all(&work).unwrap_or_else(|e| panic!("mkdir {}: {e}", work.display()));
    let write = |name: &str, text: &str| {
        let path = work.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    };
    let payloads = [
        (".osrel", write("osrel", os_release)),
        (".cmdline", write("cmdline", cmdline)),
        (".uname", write("uname", &kernel.version)),
        (".initrd", initrd.to_path_buf()),
        (".linux", kernel.vmlinuz.clone()),
    ];
    let mut objcopy = Command::new("objcopy");
    let mut vma = sections_end(stub).next_multiple_of(SECTION_ALIGN);
    for (name, path) in &payloads {
        let size = std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
            .len();
        objcopy
            .arg("--add-section")
            .arg(format!("{name}={}", path.display()))
            .arg("--change-section-vma")
            .arg(format!("{name}={vma:#x}"));
        vma = (vma + size).next_multiple_of(SECTION_ALIGN);
    }
    let image = work.join("uki.efi");
    run(objcopy.arg(stub).arg(&image));
    publish(&image, &out);
    let _ = std::fs::remove_dir_all(&work);
    out
}
