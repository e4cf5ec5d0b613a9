//! Direct kernel boot named on the firmware's command line (QEMU `-append`,
//! `hvm_start_info.cmdline_paddr`):
//!
//! ```text
//! kernel=\vmlinuz initrd=\initrd.img cmdline="console=ttyS0 root=/dev/vda2" linux-boot=protocol
//! ```
//!
//! - `kernel=PATH`: the kernel file, on the first file system that has it
//!   (`\` or `/` separators).
//! - `initrd=PATH`: an initrd; repeat it to concatenate several.
//! - `cmdline=TEXT`: the kernel command line; double quotes let it hold
//!   spaces (`cmdline="a b"`), `\"` and `\\` escape inside them, and the
//!   words inside them are the kernel's, never firmware options
//!   (`platform::cmdline` is the one grammar).
//! - `linux-boot=stub|protocol`: how to start the kernel. `stub` (default)
//!   LoadImage/StartImage's the bzImage's EFI stub with the command line as
//!   LoadOptions and the initrd served by the LoadFile2 initrd protocol;
//!   `protocol` uses the Linux 64-bit boot protocol (`crate::linux_boot`),
//!   which is also what kernels without an EFI stub get.
//!
//! The boot manager does not boot the request itself: it hands it, as
//! [`DirectBoot::to_words`], to the built-in direct-boot image
//! (`crate::builtins`) through that image's hidden Boot#### option, so
//! BootCurrent names the option and the kernel's parent is that image.

use crate::efi_file::{EfiFile, efi_path};
use crate::file_loading::{self, LoadError};
use crate::image_boot;
use crate::initrd;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use log::{info, warn};
use platform::memory::MemoryType;
use uefi_raw::Status;

/// How to start the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinuxBootMethod {
    /// Through its EFI stub when it has one (a PE image), else the protocol.
    #[default]
    Stub,
    /// The Linux 64-bit boot protocol even when the kernel has a stub.
    Protocol,
}

/// A direct boot request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectBoot {
    pub kernel: String,
    pub initrds: Vec<String>,
    pub cmdline: String,
    pub method: LinuxBootMethod,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectBootError {
    /// `linux-boot=` with a value other than `stub` or `protocol`.
    UnknownMethod(String),
}

impl fmt::Display for DirectBootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectBootError::UnknownMethod(m) => {
                write!(f, "linux-boot={m}: expected stub or protocol")
            }
        }
    }
}

/// The direct boot the firmware command line asks for, if it names a
/// `kernel=`. The last `kernel=`, `cmdline=` and `linux-boot=` win.
pub fn parse(cmdline: &str) -> Result<Option<DirectBoot>, DirectBootError> {
    let mut boot = DirectBoot::default();
    let mut kernel = None;
    for word in platform::cmdline::words(cmdline) {
        let Some((key, value)) = word.key_value() else {
            continue;
        };
        match key {
            "kernel" => kernel = Some(efi_path(&value.to_string())),
            "initrd" => boot.initrds.push(efi_path(&value.to_string())),
            "cmdline" => boot.cmdline = value.to_string(),
            "linux-boot" => {
                boot.method = match value.plain() {
                    Some("stub") => LinuxBootMethod::Stub,
                    Some("protocol") => LinuxBootMethod::Protocol,
                    _ => return Err(DirectBootError::UnknownMethod(value.to_string())),
                }
            }
            _ => {}
        }
    }
    Ok(kernel.map(|kernel| DirectBoot { kernel, ..boot }))
}

/// The direct boot the firmware command line asks for, if any; a malformed
/// request is logged and ignored.
pub fn request_from_cmdline(cmdline: &str) -> Option<DirectBoot> {
    parse(cmdline)
        .map_err(|e| warn!("direct boot: {e}"))
        .ok()
        .flatten()
}

impl DirectBoot {
    /// The request as firmware command line words, which [`parse`] reads
    /// back as the same request: what the direct-boot image gets as its
    /// LoadOptions (`crate::builtins`). Values with whitespace or quotes
    /// are quoted, with `\` and `"` escaped inside the quotes; outside
    /// quotes a backslash is an ordinary character (path separators).
    pub fn to_words(&self) -> String {
        let mut words = Vec::new();
        words.push(word("kernel", &self.kernel));
        for initrd in &self.initrds {
            words.push(word("initrd", initrd));
        }
        if !self.cmdline.is_empty() {
            words.push(word("cmdline", &self.cmdline));
        }
        if self.method == LinuxBootMethod::Protocol {
            words.push(String::from("linux-boot=protocol"));
        }
        words.join(" ")
    }
}

/// `key=value`, quoted when the command-line grammar (`platform::cmdline`)
/// would otherwise cut or unquote it.
fn word(key: &str, value: &str) -> String {
    if !value.chars().any(|c| c.is_whitespace() || c == '"') {
        return alloc::format!("{key}={value}");
    }
    let mut quoted = alloc::format!("{key}=\"");
    for c in value.chars() {
        if c == '\\' || c == '"' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Boots `request` from the first file system that holds its kernel.
/// Returns (after a warning) only when it did not boot: NOT_FOUND when no
/// file system holds the kernel, else the failure's status.
pub fn run(request: &DirectBoot) -> Status {
    for fs in crate::services::file_systems() {
        let Ok(root) = EfiFile::open_volume(fs) else {
            continue;
        };
        if root.open(&request.kernel).is_err() {
            continue;
        }
        let error = match boot(fs, &root, request) {
            Ok(()) => return Status::SUCCESS,
            Err(e) => e,
        };
        warn!("direct boot of {}: {error}", request.kernel);
        initrd::uninstall();
        return error.status();
    }
    warn!("direct boot: no file system holds {}", request.kernel);
    Status::NOT_FOUND
}

/// Boots `request` from the volume `root` (on `fs`); returns only on failure.
fn boot(fs: efi::ids::HandleId, root: &EfiFile, request: &DirectBoot) -> Result<(), LoadError> {
    let description = alloc::format!("{} (firmware command line)", request.kernel);
    let has_stub = file_loading::file_is_pe(root, &request.kernel)?;
    if request.method == LinuxBootMethod::Protocol || !has_stub {
        return file_loading::boot_with_protocol(
            root,
            &request.kernel,
            &request.initrds,
            &request.cmdline,
            &description,
        );
    }
    if !request.initrds.is_empty() {
        let image = file_loading::read_into_pages(
            root,
            &request.initrds,
            MemoryType::LOADER_DATA,
            u64::MAX,
        )?;
        initrd::install(image).map_err(LoadError::Initrd)?;
    }
    let handle = image_boot::load_from_volume(fs, &request.kernel)?;
    info!("direct boot through the EFI stub");
    let status = image_boot::start_with_options(handle, &request.cmdline, &description);
    Err(LoadError::Returned(status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn parses_a_direct_boot_request() {
        let request = parse(
            r#"log=info kernel=/boot/vmlinuz initrd=\a.img initrd=b.img cmdline="console=ttyS0 panic=-1" linux-boot=protocol"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            request,
            DirectBoot {
                kernel: "\\boot\\vmlinuz".to_string(),
                initrds: vec!["\\a.img".to_string(), "\\b.img".to_string()],
                cmdline: "console=ttyS0 panic=-1".to_string(),
                method: LinuxBootMethod::Protocol,
            }
        );
        let quoted = parse(r#"kernel="\my kernels\vmlinuz" cmdline="a=\"b c\" \\d""#)
            .unwrap()
            .unwrap();
        assert_eq!(quoted.kernel, "\\my kernels\\vmlinuz");
        assert_eq!(quoted.cmdline, r#"a="b c" \d"#);
        let plain = parse("kernel=\\vmlinuz").unwrap().unwrap();
        assert_eq!(plain.method, LinuxBootMethod::Stub);
        assert!(plain.initrds.is_empty() && plain.cmdline.is_empty());
    }

    #[test]
    fn a_request_reads_back_from_its_words() {
        let requests = [
            "kernel=\\vmlinuz",
            r#"kernel=/boot/vmlinuz initrd=\a.img initrd="b c.img" cmdline="console=ttyS0 x=\"q\" y=\\" linux-boot=protocol"#,
            r#"kernel="\dir with space\k" cmdline=quiet"#,
        ];
        for cmdline in requests {
            let request = parse(cmdline).unwrap().unwrap();
            let words = request.to_words();
            assert_eq!(parse(&words).unwrap(), Some(request.clone()), "{words}");
        }
        let request = parse(r#"kernel=/k cmdline="a b""#).unwrap().unwrap();
        assert_eq!(request.to_words(), r#"kernel=\k cmdline="a b""#);
    }

    #[test]
    fn no_kernel_means_no_direct_boot() {
        assert_eq!(parse("log=debug boot=bls initrd=\\x").unwrap(), None);
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(
            parse("kernel=\\k linux-boot=bios"),
            Err(DirectBootError::UnknownMethod("bios".to_string()))
        );
    }
}
