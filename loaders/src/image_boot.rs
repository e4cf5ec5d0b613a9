//! Loading and starting EFI images (UEFI 2.10 §7.4 LoadImage/StartImage):
//! by device path, or by file on a volume, with LoadOptions (§9.1).

use crate::file_loading::LoadError;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::ffi::c_void;
use efi::ids::HandleId;
use efi::protocol_services as ps;
use log::info;
use protocols::device_path::DevicePathBuf;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::loaded_image::LoadedImageProtocol;
use uefi_raw::{Handle, Status};

/// `device`'s path followed by a FilePath node for `file` and End
/// (UEFI 2.10 §10.3.5.4), built with the shared device-path builder.
pub fn file_device_path(device: HandleId, file: &str) -> Option<Vec<u8>> {
    let dp = ps::get_protocol::<DevicePathProtocol>(device, &DevicePathProtocol::GUID)?;
    // SAFETY: device paths installed on handles are well formed.
    let installed = unsafe { efi::device_path::read_path(dp) }.ok()?;
    let mut path = DevicePathBuf::from_bytes(&installed).ok()?;
    path.push(&protocols::device_path::file_path(file).ok()?)
        .ok()?;
    Some(path.as_bytes().to_vec())
}

/// The parent of the images the firmware loads: the built-in image running
/// (the BLS loader, the boot menu), else the firmware's own image.
fn parent_image() -> HandleId {
    efi::image::running_image().unwrap_or_else(efi::image::firmware_image_handle)
}

/// Loads and starts the image at `path`; returns the status it ended with.
pub fn load_and_start(path: &[u8], description: &str) -> Status {
    load_and_start_with_options(path, &[], description)
}

/// Loads the image at `path` and starts it with `load_options` as its
/// LoadOptions (UEFI 2.10 §9.1; none when empty); returns the status it
/// ended with.
pub fn load_and_start_with_options(path: &[u8], load_options: &[u8], description: &str) -> Status {
    let mut handle: Handle = core::ptr::null_mut();
    let parent = parent_image().as_raw();
    // SAFETY: `path` is a whole device path (End-terminated) and `handle` a
    // live local; there is no source buffer.
    let status = unsafe {
        efi::image::load_image(
            false.into(),
            parent,
            path.as_ptr().cast::<DevicePathProtocol>(),
            core::ptr::null(),
            0,
            &mut handle,
        )
    };
    if status != Status::SUCCESS {
        return status;
    }
    let handle = HandleId::from_raw(handle);
    set_load_options(handle, load_options);
    info!("booting {description}");
    efi::image::start(handle)
}

/// Points the LoadedImage of `handle` (loaded, not started) at `options`,
/// which must outlive the image's run; nothing when `options` is empty.
fn set_load_options(handle: HandleId, options: &[u8]) {
    let Ok(size) = u32::try_from(options.len()) else {
        return;
    };
    if size == 0 {
        return;
    }
    if let Some(loaded) =
        ps::get_protocol::<LoadedImageProtocol>(handle, &LoadedImageProtocol::GUID)
    {
        // SAFETY: `loaded` is the LoadedImage protocol of the image just
        // loaded, not yet started, so nothing else accesses it; the caller
        // keeps `options` alive until the image's StartImage returns.
        unsafe {
            (*loaded).load_options = options.as_ptr().cast::<c_void>();
            (*loaded).load_options_size = size;
        }
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
    let device_path = file_device_path(fs, path).ok_or(load_error(Status::NOT_FOUND))?;
    let mut handle: Handle = core::ptr::null_mut();
    // SAFETY: `device_path` is a whole device path (End-terminated) and
    // `handle` a live local; there is no source buffer.
    let status = unsafe {
        efi::image::load_image(
            false.into(),
            parent_image().as_raw(),
            device_path.as_ptr().cast::<DevicePathProtocol>(),
            core::ptr::null(),
            0,
            &mut handle,
        )
    };
    if status.is_error() {
        return Err(load_error(status));
    }
    Ok(HandleId::from_raw(handle))
}

/// Starts a loaded image with `options` as its LoadOptions (UCS-2, §9.1:
/// the EFI stub's command line). Empty options are not passed at all, so a
/// UKI uses the command line built into it. Returns the image's exit status.
pub fn start_with_options(handle: HandleId, options: &str, description: &str) -> Status {
    let options: Vec<u16> = if options.is_empty() {
        Vec::new()
    } else {
        options.encode_utf16().chain(core::iter::once(0)).collect()
    };
    let bytes: Vec<u8> = options.iter().flat_map(|c| c.to_le_bytes()).collect();
    // `bytes` outlives the image's run (start returns before it is dropped).
    set_load_options(handle, &bytes);
    info!("booting {description}");
    let status = efi::image::start(handle);
    drop(bytes);
    status
}
