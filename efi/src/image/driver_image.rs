//! The images of the firmware's own drivers (`crate::driver_images`): a
//! driver of the firmware has no PE file and no entry point to call; its
//! handle becomes an image that is already started and resident.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_void;

use platform::memory::MemoryType;
use uefi_raw::Status;
use uefi_raw::protocol::loaded_image::LoadedImageProtocol;

use super::{FIRMWARE_RANGE, IMAGES, Image, firmware_image_handle, install_image};
use crate::ids::HandleId;
use crate::spec_gaps;

/// Makes the firmware driver on `handle` an image of the firmware volume,
/// as a built-in application's (`load_builtin`): its LoadedImage describes
/// the firmware image its code lives in (ImageBase/ImageSize the firmware's
/// whole range), with the volume as DeviceHandle, `file_path`
/// (`FvFile(<file>)`) as FilePath, the firmware's image as ParentHandle and
/// boot services code and data as for any boot services driver (§7.4.1,
/// §9.1). It is started and resident, as a driver whose entry point
/// returned EFI_SUCCESS stays (§7.4.2): StartImage refuses it, and
/// UnloadImage answers EFI_UNSUPPORTED since it has no Unload function
/// (§7.4.4). EFI_INVALID_PARAMETER when `handle` is an image already.
pub(crate) fn adopt_driver_image(
    handle: HandleId,
    name: &str,
    file_path: Vec<u8>,
    device_path: Vec<u8>,
) -> Result<(), Status> {
    if IMAGES.with(|images| images.contains_key(&handle)) {
        return Err(Status::INVALID_PARAMETER);
    }
    let (base, size) = FIRMWARE_RANGE.with(|r| *r);
    let image = Image {
        name: String::from(name),
        alloc_base: 0,
        alloc_pages: 0,
        base,
        size,
        entry: 0,
        is_application: false,
        builtin: None,
        started: true,
        refused_by_policy: false,
        exit_data: (0, core::ptr::null_mut()),
        loaded_image: Box::new(LoadedImageProtocol {
            revision: spec_gaps::LOADED_IMAGE_PROTOCOL_REVISION,
            parent_handle: firmware_image_handle().as_raw(),
            system_table: crate::table_storage::system_table(),
            device_handle: crate::builtin_images::volume_handle().as_raw(),
            file_path: core::ptr::null_mut(),
            reserved: core::ptr::null_mut(),
            load_options_size: 0,
            load_options: core::ptr::null_mut(),
            image_base: base as *const c_void,
            image_size: size,
            image_code_type: MemoryType::BOOT_SERVICES_CODE,
            image_data_type: MemoryType::BOOT_SERVICES_DATA,
            unload: None,
        }),
        _file_path: file_path,
        device_path: Some(device_path),
    };
    install_image(handle, image, None)
}
