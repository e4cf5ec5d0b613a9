//! The firmware's built-in applications, the BLS Type #1 loader
//! (`crate::bls_boot`), the boot menu (`crate::menu`) and the direct kernel
//! boot of `kernel=` (`crate::direct`), as EFI images:
//! registered with `efi::builtin_images` under fixed file GUIDs of the
//! firmware volume, loaded with LoadImage of
//! `Fv(2FBC36D0-1A63-4377-AA16-872A5F25934B)/FvFile(<file>)` and started
//! with StartImage, so they get an image handle with LoadedImage, run as
//! that image (the parent of the images they load) and can be named by a
//! Boot#### option (§3.1.3) like any application.

use alloc::string::String;
use alloc::vec::Vec;
use efi::builtin_images::{self, BuiltinImage};
use efi::ids::HandleId;
use platform::sync::Global;
use uefi_raw::protocol::loaded_image::LoadedImageProtocol;
use uefi_raw::table::system::SystemTable;
use uefi_raw::{Guid, Status, guid};

use crate::direct::DirectBoot;
use crate::services::{self, Services};

use crate::image_boot::load_and_start;
use crate::menu::MenuTimeout;

/// The BLS Type #1 loader's FvFile() GUID.
pub const BLS_LOADER_FILE: Guid = guid!("eb51ac8f-d5e6-467f-8472-520bc777f144");
/// The boot menu's FvFile() GUID.
pub const BOOT_MENU_FILE: Guid = guid!("a33a8786-5f3c-4b4d-80f8-c15577dc42ea");
/// The direct kernel boot's FvFile() GUID.
pub const DIRECT_KERNEL_FILE: Guid = guid!("0f7c4c2e-8d4b-4e6b-9c1a-3b5e2d7f6a10");

/// The names the images carry (ComponentName2, logs) and their automatic
/// Boot#### options' descriptions.
pub const BLS_LOADER_NAME: &str = "BLS Type #1 loader";
pub const BOOT_MENU_NAME: &str = "Boot menu";
pub const DIRECT_KERNEL_NAME: &str = "Direct kernel boot";

/// The firmware command line, which the built-ins read as the boot
/// manager does (`boot=`, `menu=`).
static COMMAND_LINE: Global<String> = Global::new(String::new());
/// This boot's menu timeout as the boot manager decided it (None: no menu
/// configured, so the menu started on purpose waits for the user).
static MENU_TIMEOUT: Global<Option<MenuTimeout>> = Global::new(None);

/// Registers the built-ins; called once before the boot manager runs.
pub fn register() {
    for image in [
        BuiltinImage {
            file: BLS_LOADER_FILE,
            name: BLS_LOADER_NAME,
            entry: bls_loader_entry,
        },
        BuiltinImage {
            file: BOOT_MENU_FILE,
            name: BOOT_MENU_NAME,
            entry: boot_menu_entry,
        },
        BuiltinImage {
            file: DIRECT_KERNEL_FILE,
            name: DIRECT_KERNEL_NAME,
            entry: direct_kernel_entry,
        },
    ] {
        if let Err(status) = builtin_images::register(image) {
            log::warn!("cannot register the built-in {}: {status:?}", image.name);
        }
    }
}

/// Keeps the firmware command line for the built-ins.
pub fn set_command_line(cmdline: &str) {
    COMMAND_LINE.with(|c| *c = String::from(cmdline));
}

/// Records this boot's menu timeout for the boot menu's image.
pub fn set_menu_timeout(timeout: Option<MenuTimeout>) {
    MENU_TIMEOUT.with(|t| *t = timeout);
}

/// The device path of the built-in `file`.
pub fn device_path(file: &Guid) -> Vec<u8> {
    builtin_images::device_path(file)
}

/// Loads and starts the built-in `file` from the firmware's image (the
/// boot manager's path to it); returns the status it ended with.
pub fn start(file: &Guid, description: &str) -> Status {
    // A boot option of the firmware's own (TCG PFP §3.3.4.4).
    efi::tcg2::boot_option_attempt();
    load_and_start(&device_path(file), description)
}

/// The LoadOptions of the direct kernel boot's image for `request`: its
/// firmware command line words (`DirectBoot::to_words`) as UCS-2 with a
/// terminating NUL, as a shell passes a command line (§9.1).
pub fn direct_kernel_load_options(request: &DirectBoot) -> Vec<u8> {
    request
        .to_words()
        .encode_utf16()
        .chain(core::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// The text of UCS-2 LoadOptions up to the first NUL (or the end); None
/// when they are not whole UCS-2 text.
pub fn load_options_text(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0);
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// Runs `body` with the boot services of the image `image` started with
/// `system_table` (validated once, here); INVALID_PARAMETER for a table
/// that is not one.
fn as_image(
    image: HandleId,
    system_table: *mut SystemTable,
    body: impl FnOnce(Services) -> Status,
) -> Status {
    // SAFETY: StartImage passes its system table, valid while the image
    // runs (the image returns before ExitBootServices unless it boots an
    // OS, which never comes back).
    let services = match unsafe { Services::new(image, system_table) } {
        Ok(services) => services,
        Err(status) => return status,
    };
    let _entered = services::enter(services);
    body(services)
}

/// The BLS loader: boots the first BLS entry that boots; returns
/// NOT_FOUND when none did.
fn bls_loader_entry(image: HandleId, system_table: *mut SystemTable) -> Status {
    as_image(image, system_table, |_| {
        crate::bls_boot::run();
        Status::NOT_FOUND
    })
}

/// The direct kernel boot: boots the request its LoadOptions carry (the
/// `kernel=` words of the firmware command line, which the boot manager
/// passes from the image's Boot#### option). Returns NOT_FOUND when the
/// kernel is on no file system, INVALID_PARAMETER without a request (the
/// image started without LoadOptions, or a stale option), else the
/// failure's status.
fn direct_kernel_entry(image: HandleId, system_table: *mut SystemTable) -> Status {
    as_image(image, system_table, |services| {
        let request = own_load_options(&services)
            .as_deref()
            .and_then(load_options_text)
            .and_then(|text| crate::direct::parse(&text).ok().flatten());
        let Some(request) = request else {
            log::warn!("{DIRECT_KERNEL_NAME}: no kernel= request in its LoadOptions");
            return Status::INVALID_PARAMETER;
        };
        crate::direct::run(&request)
    })
}

/// A copy of the LoadOptions of the running image (its LoadedImage, §9.1).
fn own_load_options(services: &Services) -> Option<Vec<u8>> {
    let loaded =
        services.protocol::<LoadedImageProtocol>(services.image(), &LoadedImageProtocol::GUID)?;
    // SAFETY: `loaded` is the LoadedImage protocol installed on this
    // image's handle; it lives as long as the image.
    let (options, size) = unsafe {
        let loaded = loaded.as_ref();
        (loaded.load_options, loaded.load_options_size)
    };
    if options.is_null() || size == 0 {
        return None;
    }
    // LoadOptionsSize is whoever started the image's: a request is a
    // firmware-command-line-like text, and a Boot#### option's OptionalData
    // is at most a variable's 64 KiB, so anything larger is refused.
    if size > MAX_LOAD_OPTIONS {
        log::warn!(
            "{DIRECT_KERNEL_NAME}: LoadOptions of {size} bytes, more than {MAX_LOAD_OPTIONS}: refused"
        );
        return None;
    }
    // SAFETY: whoever started the image pointed LoadOptions at `size`
    // bytes that live until StartImage returns (`crate::image_boot`).
    let bytes = unsafe { core::slice::from_raw_parts(options.cast::<u8>(), size as usize) };
    Some(bytes.to_vec())
}

/// The largest LoadOptions a built-in reads (see `own_load_options`).
const MAX_LOAD_OPTIONS: u32 = 64 * 1024;

/// The boot menu as the firmware's UI: the configured countdown, or waiting
/// for the user when none is configured (it was picked on purpose, through
/// its Boot#### option). Returns ABORTED when the pick did not boot.
fn boot_menu_entry(image: HandleId, system_table: *mut SystemTable) -> Status {
    as_image(image, system_table, |_| {
        let cmdline = COMMAND_LINE.with(|c| c.clone());
        let timeout = MENU_TIMEOUT.with(|t| *t);
        crate::menu::run_as_firmware_ui(&cmdline, timeout);
        Status::ABORTED
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_direct_request_travels_as_ucs2_load_options() {
        let request = crate::direct::parse(r#"kernel=\k initrd=\i cmdline="a b""#)
            .unwrap()
            .unwrap();
        let bytes = direct_kernel_load_options(&request);
        assert_eq!(&bytes[bytes.len() - 2..], &[0, 0]);
        let text = load_options_text(&bytes).unwrap();
        assert_eq!(crate::direct::parse(&text).unwrap(), Some(request));
        assert_eq!(load_options_text(&[b'a', 0, 0, 0, b'b', 0]).unwrap(), "a");
        assert_eq!(load_options_text(b"a"), None);
        assert_eq!(load_options_text(&[0x00, 0xd8]), None, "a lone surrogate");
    }
}
