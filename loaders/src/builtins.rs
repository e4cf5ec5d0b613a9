//! The firmware's built-in applications, the BLS Type #1 loader
//! (`crate::bls_boot`) and the boot menu (`crate::menu`), as EFI images:
//! registered with `efi::builtin_images` under fixed file GUIDs of the
//! firmware volume, loaded with LoadImage of
//! `Fv(2FBC36D0-1A63-4377-AA16-872A5F25934B)/FvFile(<file>)` and started
//! with StartImage, so they get an image handle with LoadedImage, run as
//! that image (the parent of the images they load) and can be named by a
//! Boot#### option (§3.1.3) like any application.

use alloc::string::String;
use efi::builtin_images::{self, BuiltinImage};
use efi::ids::HandleId;
use platform::sync::Global;
use uefi_raw::{Guid, Status, guid};

use crate::image_boot::load_and_start;
use crate::menu::MenuTimeout;

/// The BLS Type #1 loader's FvFile() GUID.
pub const BLS_LOADER_FILE: Guid = guid!("eb51ac8f-d5e6-467f-8472-520bc777f144");
/// The boot menu's FvFile() GUID.
pub const BOOT_MENU_FILE: Guid = guid!("a33a8786-5f3c-4b4d-80f8-c15577dc42ea");

/// The names the images carry (ComponentName2, logs) and their automatic
/// Boot#### options' descriptions.
pub const BLS_LOADER_NAME: &str = "BLS Type #1 loader";
pub const BOOT_MENU_NAME: &str = "Boot menu";

/// The firmware command line, which the built-ins read as the boot
/// manager does (`boot=`, `menu=`).
static COMMAND_LINE: Global<String> = Global::new(String::new());
/// This boot's menu timeout as the boot manager decided it (None: no menu
/// configured, so the menu started on purpose waits for the user).
static MENU_TIMEOUT: Global<Option<MenuTimeout>> = Global::new(None);

/// Registers both built-ins; called once before the boot manager runs.
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
pub fn device_path(file: &Guid) -> alloc::vec::Vec<u8> {
    builtin_images::device_path(file)
}

/// Loads and starts the built-in `file` from the firmware's image (the
/// boot manager's path to it); returns the status it ended with.
pub fn start(file: &Guid, description: &str) -> Status {
    load_and_start(&device_path(file), description)
}

/// The BLS loader: boots the first BLS entry that boots; returns
/// NOT_FOUND when none did.
fn bls_loader_entry(_image: HandleId) -> Status {
    crate::bls_boot::run();
    Status::NOT_FOUND
}

/// The boot menu as the firmware's UI: the configured countdown, or waiting
/// for the user when none is configured (it was picked on purpose, through
/// its Boot#### option). Returns ABORTED when the pick did not boot.
fn boot_menu_entry(_image: HandleId) -> Status {
    let cmdline = COMMAND_LINE.with(|c| c.clone());
    let timeout = MENU_TIMEOUT.with(|t| *t);
    crate::menu::run_as_firmware_ui(&cmdline, timeout);
    Status::ABORTED
}
