//! The boot manager (UEFI 2.10 §3): tries each bootable file system in
//! device order with the removable-media path `\EFI\BOOT\BOOTX64.EFI`
//! (§3.5.1.1), falling through to the next when an option is missing, fails
//! to load, or returns; and the built-in BLS Type #1 boot (`crate::bls_boot`),
//! after those or, with `boot=bls` on the firmware command line, before them.

use alloc::vec::Vec;
use efi::handles::HandleId;
use efi::protocol_services as ps;
use log::{info, warn};
use r_efi::efi::Status;
use r_efi::protocols::{device_path, simple_file_system};

pub const REMOVABLE_MEDIA_PATH: &str = "\\EFI\\BOOT\\BOOTX64.EFI";

/// `device`'s path followed by a FilePath node for `file` and End.
pub fn file_device_path(device: HandleId, file: &str) -> Option<Vec<u8>> {
    let dp = ps::get_protocol::<device_path::Protocol>(device, &device_path::PROTOCOL_GUID)?;
    let mut path = efi::device_path::read_path(dp).ok()?;
    path.truncate(path.len().checked_sub(4)?); // drop End
    let name: Vec<u16> = file.encode_utf16().chain(core::iter::once(0)).collect();
    let len = u16::try_from(4 + name.len() * 2).ok()?;
    path.extend_from_slice(&[4, 4]);
    path.extend_from_slice(&len.to_le_bytes());
    for unit in name {
        path.extend_from_slice(&unit.to_le_bytes());
    }
    path.extend_from_slice(&efi::device_path::END);
    Some(path)
}

/// Loads and starts the image at `path`; returns the status it ended with.
pub fn load_and_start(path: &[u8], description: &str) -> Status {
    let mut handle: r_efi::efi::Handle = core::ptr::null_mut();
    let parent = efi::image::firmware_image_handle() as r_efi::efi::Handle;
    let status = efi::image::load_image(
        false.into(),
        parent,
        path.as_ptr() as *mut device_path::Protocol,
        core::ptr::null_mut(),
        0,
        &mut handle,
    );
    if status != Status::SUCCESS {
        return status;
    }
    info!("booting {description}");
    efi::image::start(handle as HandleId)
}

/// Which boot path the firmware command line asks to try first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootFirst {
    /// `\EFI\BOOT\BOOTX64.EFI` on each file system, then BLS entries (default).
    RemovableMedia,
    /// BLS Type #1 entries (`boot=bls`), then the removable-media path.
    Bls,
}

impl BootFirst {
    /// The last `boot=` word of the firmware command line decides; unknown
    /// values keep the default.
    pub fn from_cmdline(cmdline: &str) -> BootFirst {
        cmdline
            .split_ascii_whitespace()
            .rev()
            .find_map(|word| match word.strip_prefix("boot=")? {
                "bls" => Some(BootFirst::Bls),
                "removable" => Some(BootFirst::RemovableMedia),
                other => {
                    warn!("ignoring unknown boot={other}");
                    None
                }
            })
            .unwrap_or(BootFirst::RemovableMedia)
    }
}

/// Tries every boot option in the order `cmdline` (the firmware's own
/// command line) asks for. Returns when none booted.
pub fn run(cmdline: &str) {
    efi::events::ready_to_boot_notify();
    match BootFirst::from_cmdline(cmdline) {
        BootFirst::RemovableMedia => {
            run_removable_media();
            crate::bls_boot::run();
        }
        BootFirst::Bls => {
            crate::bls_boot::run();
            run_removable_media();
        }
    }
}

/// Tries `\EFI\BOOT\BOOTX64.EFI` on each file system in device order.
fn run_removable_media() {
    let file_systems = ps::handles_with(&simple_file_system::PROTOCOL_GUID);
    for fs in file_systems {
        let Some(path) = file_device_path(fs, REMOVABLE_MEDIA_PATH) else {
            continue;
        };
        let description = efi::device_path::file_path_text(&path).unwrap_or_default();
        match load_and_start(&path, &description) {
            Status::NOT_FOUND => continue,
            Status::SUCCESS => warn!("{description} returned; trying the next boot option"),
            status => warn!(
                "{description} failed: {}; trying the next boot option",
                status_name(status)
            ),
        }
    }
}

pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::SUCCESS => "success",
        Status::LOAD_ERROR => "load error",
        Status::INVALID_PARAMETER => "invalid parameter",
        Status::UNSUPPORTED => "unsupported",
        Status::NOT_FOUND => "not found",
        Status::OUT_OF_RESOURCES => "out of resources",
        Status::SECURITY_VIOLATION => "security violation",
        Status::ACCESS_DENIED => "access denied",
        Status::ABORTED => "aborted",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_chooses_what_boots_first() {
        assert_eq!(BootFirst::from_cmdline(""), BootFirst::RemovableMedia);
        assert_eq!(
            BootFirst::from_cmdline("log=debug boot=bls"),
            BootFirst::Bls
        );
        assert_eq!(
            BootFirst::from_cmdline("boot=bls boot=removable"),
            BootFirst::RemovableMedia
        );
        assert_eq!(
            BootFirst::from_cmdline("boot=floppy"),
            BootFirst::RemovableMedia
        );
        assert_eq!(
            BootFirst::from_cmdline("reboot=bls"),
            BootFirst::RemovableMedia
        );
    }
}
