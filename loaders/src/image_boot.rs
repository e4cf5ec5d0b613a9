//! Loading and starting EFI images (UEFI 2.10 §7.4 LoadImage/StartImage):
//! by device path, or by file on a volume, with LoadOptions (§9.1). Every
//! call goes through the boot services of the image running
//! (`crate::services`): the boot manager's (the firmware image) or a
//! built-in image's, which so becomes the parent of what it loads.

use crate::file_loading::LoadError;
use crate::services::{self, Services};
use alloc::string::ToString;
use alloc::vec::Vec;
use core::ffi::c_void;
use efi::ids::HandleId;
use log::info;
use protocols::device_path::DevicePathBuf;
use uefi_raw::Status;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::loaded_image::LoadedImageProtocol;

/// `device`'s path followed by a FilePath node for `file` and End
/// (UEFI 2.10 §10.3.5.4), built with the shared device-path builder.
pub fn file_device_path(device: HandleId, file: &str) -> Option<Vec<u8>> {
    let installed = handle_device_path(&services::current().ok()?, device)?;
    let mut path = DevicePathBuf::from_bytes(&installed).ok()?;
    path.push(&protocols::device_path::file_path(file).ok()?)
        .ok()?;
    Some(path.as_bytes().to_vec())
}

/// The device path installed on `handle` (HandleProtocol), End included.
pub fn handle_device_path(services: &Services, handle: HandleId) -> Option<Vec<u8>> {
    let dp = services.protocol::<DevicePathProtocol>(handle, &DevicePathProtocol::GUID)?;
    // SAFETY: device paths installed on handles are well formed.
    unsafe { efi::device_path::read_path(dp.as_ptr()) }.ok()
}

/// Loads and starts the image at `path`; returns the status it ended with.
pub fn load_and_start(path: &[u8], description: &str) -> Status {
    load_and_start_with_options(path, &[], description)
}

/// Loads the image at `path` and starts it with `load_options` as its
/// LoadOptions (UEFI 2.10 §9.1; none when empty); returns the status it
/// ended with.
pub fn load_and_start_with_options(path: &[u8], load_options: &[u8], description: &str) -> Status {
    let services = match services::current() {
        Ok(services) => services,
        Err(status) => return status,
    };
    let handle = match services.load_image(path, true) {
        Ok(handle) => handle,
        Err(status) => return status,
    };
    start_loaded(&services, handle, load_options, description)
}

/// Starts the loaded image `handle` with `load_options` as its LoadOptions
/// (none when empty); returns the status it ended with.
pub fn start_loaded(
    services: &Services,
    handle: HandleId,
    load_options: &[u8],
    description: &str,
) -> Status {
    set_load_options(services, handle, load_options);
    info!("booting {description}");
    services.start_image(handle)
}

/// Points the LoadedImage of `handle` (loaded, not started) at `options`,
/// which must outlive the image's run; nothing when `options` is empty.
fn set_load_options(services: &Services, handle: HandleId, options: &[u8]) {
    let Ok(size) = u32::try_from(options.len()) else {
        return;
    };
    if size == 0 {
        return;
    }
    if let Some(mut loaded) =
        services.protocol::<LoadedImageProtocol>(handle, &LoadedImageProtocol::GUID)
    {
        // SAFETY: `loaded` is the LoadedImage protocol of the image just
        // loaded, not yet started, so nothing else accesses it; the caller
        // keeps `options` alive until the image's StartImage returns.
        let loaded = unsafe { loaded.as_mut() };
        loaded.load_options = options.as_ptr().cast::<c_void>();
        loaded.load_options_size = size;
    }
}

/// LoadImage of `path` on the volume `fs`: the firmware reads the file
/// itself through the volume's SimpleFileSystem, so the image gets the
/// volume as its device and the file as its path.
pub fn load_from_volume(fs: HandleId, path: &str) -> Result<HandleId, LoadError> {
    let load_error = |status| LoadError::Load {
        path: path.to_string(),
        status,
    };
    let services = services::current().map_err(load_error)?;
    let device_path = file_device_path(fs, path).ok_or(load_error(Status::NOT_FOUND))?;
    services.load_image(&device_path, false).map_err(load_error)
}

/// Starts a loaded image with `options` as its LoadOptions (UCS-2, §9.1:
/// the EFI stub's command line). Empty options are not passed at all, so a
/// UKI uses the command line built into it. Returns the image's exit status.
pub fn start_with_options(handle: HandleId, options: &str, description: &str) -> Status {
    let services = match services::current() {
        Ok(services) => services,
        Err(status) => return status,
    };
    let bytes: Vec<u8> = if options.is_empty() {
        Vec::new()
    } else {
        options
            .encode_utf16()
            .chain(core::iter::once(0))
            .flat_map(u16::to_le_bytes)
            .collect()
    };
    // `bytes` outlives the image's run (StartImage returns before it is
    // dropped).
    set_load_options(&services, handle, &bytes);
    info!("booting {description}");
    let status = services.start_image(handle);
    drop(bytes);
    status
}
