//! The firmware's UEFI drivers as images of its firmware volume
//! (`crate::builtin_images`). A driver of the firmware has no PE file: its
//! code is the firmware's, and its handle exists from the start. Registered
//! here, the handle (its DriverBinding's ImageHandle) gets
//! EFI_LOADED_IMAGE_PROTOCOL and EFI_LOADED_IMAGE_DEVICE_PATH_PROTOCOL
//! (UEFI 2.10 §9.1, §9.2) naming `Fv(...)/FvFile(<its file GUID>)`, with the
//! volume as DeviceHandle, like a driver edk2 dispatched from flash; the
//! volume lists the file, so EFI_FIRMWARE_VOLUME2_PROTOCOL.ReadSection of
//! its user-interface section names it (the Shell's `drivers` and `dh`).

use crate::builtin_images::{self, FileKind, VolumeFile};
use crate::ids::HandleId;
use uefi_raw::{Guid, Status};

/// Makes the firmware driver on `handle` the image of the volume's file
/// `file`, named `name`: resident, as a driver whose entry point returned
/// EFI_SUCCESS stays (`crate::image::adopt_driver_image`). Once per handle
/// (EFI_INVALID_PARAMETER for a handle that is an image already).
pub fn register_driver_image(
    handle: HandleId,
    file: Guid,
    name: &'static str,
) -> Result<(), Status> {
    builtin_images::ensure_volume()?;
    crate::image::adopt_driver_image(
        handle,
        name,
        builtin_images::file_node_path(&file),
        builtin_images::device_path(&file),
    )?;
    builtin_images::add_driver_file(VolumeFile {
        file,
        name,
        kind: FileKind::Driver,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin_images::{file_node_path, volume_file, volume_handle};
    use crate::protocol_services as ps;
    use uefi_raw::guid;

    #[test]
    fn a_driver_image_is_a_resident_driver_file_of_the_volume() {
        use uefi_raw::protocol::loaded_image::LoadedImageProtocol;
        let _serial = crate::builtin_images::serial_tests();
        let driver = guid!("0d4c2b1a-9e8f-4a7b-8c6d-5e4f3a2b1c0d");
        let handle = ps::new_handle();
        register_driver_image(handle, driver, "SomeDriver").unwrap();
        assert_eq!(
            volume_file(&driver),
            Some(VolumeFile {
                file: driver,
                name: "SomeDriver",
                kind: FileKind::Driver,
            })
        );
        let loaded = ps::get_protocol::<LoadedImageProtocol>(handle, &LoadedImageProtocol::GUID)
            .expect("LoadedImage on the driver's handle");
        // SAFETY: the interface just installed, owned by `crate::image`.
        let (device, path, code) = unsafe {
            (
                (*loaded).device_handle,
                (*loaded).file_path,
                (*loaded).image_code_type,
            )
        };
        assert_eq!(HandleId::from_raw(device), volume_handle());
        assert_eq!(code, platform::memory::MemoryType::BOOT_SERVICES_CODE);
        // SAFETY: FilePath points at the image's FvFile()/End copy.
        let path = unsafe { core::slice::from_raw_parts(path.cast::<u8>(), 24) };
        assert_eq!(path, &file_node_path(&driver)[..]);
        // Started and without Unload: UnloadImage refuses (§7.4.4), and the
        // handle cannot become a second image.
        // SAFETY: UnloadImage takes the handle by value.
        let status = unsafe { crate::image::unload_image(handle.as_raw()) };
        assert_eq!(status, Status::UNSUPPORTED);
        assert_eq!(
            register_driver_image(handle, driver, "SomeDriver"),
            Err(Status::INVALID_PARAMETER)
        );
    }
}
