//! EFI_FIRMWARE_VOLUME2_PROTOCOL (PI 1.8 vol. 3 §3.4.1) on the handle of
//! the firmware's volume (the parent module), whose files are the
//! built-in applications and the firmware's drivers. It is how a caller
//! names an image loaded from a firmware volume: the edk2 Shell's `drivers`
//! and `dh` read the EFI_SECTION_USER_INTERFACE section of the file in the
//! image's `FvFile()` path through ReadSection on LoadedImage.DeviceHandle.
//!
//! The volume is read-only and holds no code to hand out (the code is the
//! firmware's own): each file's contents are its user-interface section
//! (`crate::fv_sections`), which ReadFile returns as the file's section
//! stream and ReadSection finds in it. WriteFile is EFI_WRITE_PROTECTED
//! (the volume disallows writes); SetVolumeAttributes (nothing to change),
//! GetInfo and SetInfo (no information type) are EFI_UNSUPPORTED.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;

use platform::memory::MemoryType;
use platform::sync::Global;
use uefi_raw::protocol::firmware_volume::{
    FirmwareVolume2Protocol, FvAttributes, FvFileAttributes, FvFiletype, FvWriteFileData,
    FvWritePolicy, SectionType,
};
use uefi_raw::{Guid, Status};

use super::{FileKind, VolumeFile, volume_file, volume_files};
use crate::boundary;
use crate::fv_sections::{file_contents, find_section, next_file};
use crate::ids::Interface;

pub const FIRMWARE_VOLUME2_GUID: Guid = FirmwareVolume2Protocol::GUID;

/// GetNextFile's key: the index of the next file, a little-endian u64.
const KEY_SIZE: u32 = 8;

/// The one instance, installed on the volume handle.
static INSTANCE: Global<Interface> = Global::new(Interface::NULL);

/// The protocol instance of the volume (created on first use, never freed:
/// callers keep the pointer).
pub fn interface() -> *mut c_void {
    INSTANCE.with(|instance| {
        if instance.is_null() {
            let protocol: *mut FirmwareVolume2Protocol =
                Box::leak(Box::new(FirmwareVolume2Protocol {
                    get_volume_attributes,
                    set_volume_attributes,
                    read_file,
                    read_section,
                    write_file,
                    get_next_file,
                    key_size: KEY_SIZE,
                    // No volume contains ours (§3.4.1: the parent volume's
                    // handle, for a volume found inside a file of another).
                    parent_handle: core::ptr::null_mut(),
                    get_info,
                    set_info,
                }));
            *instance = Interface::from_ptr(protocol);
        }
        instance.as_exposed_ptr()
    })
}

/// `This` must be our instance: nothing is read through a foreign one.
fn check_this(this: *const FirmwareVolume2Protocol) -> Result<(), Status> {
    let ours = INSTANCE.with(|instance| *instance);
    if ours.is_null() || ours != Interface::from_ptr(this) {
        return Err(Status::INVALID_PARAMETER);
    }
    Ok(())
}

/// The EFI_FV_FILETYPE of a file.
fn type_of(file: &VolumeFile) -> FvFiletype {
    match file.kind {
        FileKind::Application => FvFiletype::APPLICATION,
        FileKind::Driver => FvFiletype::DRIVER,
    }
}

/// The file's section stream (its user-interface section).
fn contents(file: &VolumeFile) -> Result<Vec<u8>, Status> {
    file_contents(file.name).ok_or(Status::DEVICE_ERROR)
}

/// Hands `data` out as ReadFile and ReadSection do (§3.4.1.4, §3.4.1.5):
/// with `*buffer` NULL, a new boot services pool buffer the caller frees
/// (`*buffer_size` is ignored on input); otherwise the caller's buffer of
/// `*buffer_size` bytes, filled as far as it goes, EFI_WARN_BUFFER_TOO_SMALL
/// when `data` did not fit. `*buffer_size` is `data`'s size on return.
///
/// # Safety
/// `buffer` and `buffer_size` as those functions require: null or valid;
/// a non-null `*buffer` valid for `*buffer_size` bytes.
unsafe fn hand_out(
    data: &[u8],
    buffer: *mut *mut c_void,
    buffer_size: *mut usize,
) -> Result<Status, Status> {
    // SAFETY: this function's contract.
    let destination = unsafe { boundary::read(buffer) }?;
    if buffer_size.is_null() {
        return Err(Status::INVALID_PARAMETER);
    }
    let status = if destination.is_null() {
        let pool = crate::pool::allocate(MemoryType::BOOT_SERVICES_DATA, data.len())?;
        // SAFETY: the pool block was just allocated with `data.len()` bytes.
        let target = unsafe { core::slice::from_raw_parts_mut(pool, data.len()) };
        target.copy_from_slice(data);
        // SAFETY: this function's contract; on failure the block goes back.
        if let Err(status) = unsafe { boundary::write(buffer, pool.cast::<c_void>()) } {
            let _ = crate::pool::free(pool);
            return Err(status);
        }
        Status::SUCCESS
    } else {
        // SAFETY: this function's contract.
        let capacity = unsafe { boundary::read(buffer_size) }?;
        let copied = capacity.min(data.len());
        // SAFETY: the caller's buffer holds `capacity` >= `copied` bytes.
        let target = unsafe { boundary::bytes_mut(destination.cast::<u8>(), copied) }?;
        target.copy_from_slice(&data[..copied]);
        if copied < data.len() {
            Status::WARN_BUFFER_TOO_SMALL
        } else {
            Status::SUCCESS
        }
    };
    // SAFETY: this function's contract (checked non-null above).
    unsafe { boundary::write(buffer_size, data.len()) }?;
    Ok(status)
}

/// Turns a result carrying a success or warning status into the status.
fn outcome(result: Result<Status, Status>) -> Status {
    result.unwrap_or_else(|status| status)
}

/// GetVolumeAttributes (§3.4.1.1): reads are enabled, writes are not, and
/// neither can be changed, nor is there a lock; files need no alignment.
///
/// # Safety
/// `attributes` is null or valid for writing an EFI_FV_ATTRIBUTES.
unsafe extern "efiapi" fn get_volume_attributes(
    this: *const FirmwareVolume2Protocol,
    attributes: *mut FvAttributes,
) -> Status {
    let result = check_this(this).and_then(|()| {
        // SAFETY: this function's contract.
        unsafe { boundary::write(attributes, FvAttributes::READ_STATUS) }
    });
    boundary::status(result)
}

/// SetVolumeAttributes (§3.4.1.2): the volume has no capability to
/// change (no *_CAP bit), so there is nothing this can do.
unsafe extern "efiapi" fn set_volume_attributes(
    _this: *const FirmwareVolume2Protocol,
    _attributes: *mut FvAttributes,
) -> Status {
    Status::UNSUPPORTED
}

/// ReadFile (§3.4.1.4): a file's type, attributes (none: no alignment, not
/// memory-mapped) and contents, its section stream. With a NULL `buffer`
/// only the type, attributes and size.
///
/// # Safety
/// Pointer arguments as PI vol. 3 §3.4.1.4 requires of the caller.
unsafe extern "efiapi" fn read_file(
    this: *const FirmwareVolume2Protocol,
    name: *const Guid,
    buffer: *mut *mut c_void,
    buffer_size: *mut usize,
    found_type: *mut FvFiletype,
    attributes: *mut FvFileAttributes,
    authentication_status: *mut u32,
) -> Status {
    let result = (|| {
        check_this(this)?;
        if buffer_size.is_null() || found_type.is_null() || attributes.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        // SAFETY: the caller's GUID, as this function's # Safety requires.
        let name = unsafe { boundary::guid(name) }?;
        let file = volume_file(&name).ok_or(Status::NOT_FOUND)?;
        let data = contents(&file)?;
        let status = if buffer.is_null() {
            // SAFETY: checked non-null above; the caller's UINTN.
            unsafe { boundary::write(buffer_size, data.len()) }?;
            Status::SUCCESS
        } else {
            // Unauthenticated, like every file of an unsigned volume.
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            unsafe { boundary::write(authentication_status, 0) }?;
            // SAFETY: as above.
            unsafe { hand_out(&data, buffer, buffer_size) }?
        };
        // SAFETY: checked non-null above; the caller's outputs.
        unsafe {
            boundary::write(found_type, type_of(&file))?;
            boundary::write(attributes, FvFileAttributes::empty())?;
        }
        Ok(status)
    })();
    outcome(result)
}

/// ReadSection (§3.4.1.5): the contents, without header, of a section of a
/// file; the user-interface section (instance 0) is each file's name.
///
/// # Safety
/// Pointer arguments as PI vol. 3 §3.4.1.5 requires of the caller.
unsafe extern "efiapi" fn read_section(
    this: *const FirmwareVolume2Protocol,
    name: *const Guid,
    section_type: SectionType,
    section_instance: usize,
    buffer: *mut *mut c_void,
    buffer_size: *mut usize,
    authentication_status: *mut u32,
) -> Status {
    let result = (|| {
        check_this(this)?;
        if authentication_status.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        // SAFETY: the caller's GUID, as this function's # Safety requires.
        let name = unsafe { boundary::guid(name) }?;
        let file = volume_file(&name).ok_or(Status::NOT_FOUND)?;
        let data = contents(&file)?;
        let section =
            find_section(&data, section_type.0, section_instance).ok_or(Status::NOT_FOUND)?;
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let status = unsafe { hand_out(section, buffer, buffer_size) }?;
        // SAFETY: checked non-null above.
        unsafe { boundary::write(authentication_status, 0) }?;
        Ok(status)
    })();
    outcome(result)
}

/// WriteFile (§3.4.1.6): the volume disallows writes.
unsafe extern "efiapi" fn write_file(
    _this: *const FirmwareVolume2Protocol,
    _number_of_files: u32,
    _write_policy: FvWritePolicy,
    _file_data: *const FvWriteFileData,
) -> Status {
    Status::WRITE_PROTECTED
}

/// GetNextFile (§3.4.1.7): the next file of `*file_type` (ALL: any) after
/// the position in `key` (all zero: the first); outputs untouched when
/// none is left (EFI_NOT_FOUND).
///
/// # Safety
/// Pointer arguments as PI vol. 3 §3.4.1.7 requires of the caller: `key`
/// null or valid for KeySize bytes.
unsafe extern "efiapi" fn get_next_file(
    this: *const FirmwareVolume2Protocol,
    key: *mut c_void,
    file_type: *mut FvFiletype,
    name: *mut Guid,
    attributes: *mut FvFileAttributes,
    size: *mut usize,
) -> Status {
    let result = (|| {
        check_this(this)?;
        if name.is_null() || attributes.is_null() || size.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let key = key.cast::<u64>();
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let (position, wanted) = unsafe { (boundary::read(key)?, boundary::read(file_type)?) };
        let files = volume_files();
        let found = next_file(&files, position, |f| {
            wanted == FvFiletype::ALL || wanted == type_of(f)
        })
        .ok_or(Status::NOT_FOUND)?;
        let file = files[found];
        let length = contents(&file)?.len();
        let next = u64::try_from(found).map_err(|_| Status::DEVICE_ERROR)? + 1;
        // SAFETY: the caller's pointers, checked or read above.
        unsafe {
            boundary::write(key, next)?;
            boundary::write(file_type, type_of(&file))?;
            boundary::write(name, file.file)?;
            boundary::write(attributes, FvFileAttributes::empty())?;
            boundary::write(size, length)?;
        }
        Ok(())
    })();
    boundary::status(result)
}

/// GetInfo (§3.4.1.8): no information type is implemented.
unsafe extern "efiapi" fn get_info(
    _this: *const FirmwareVolume2Protocol,
    _information_type: *const Guid,
    _buffer_size: *mut usize,
    _buffer: *mut c_void,
) -> Status {
    Status::UNSUPPORTED
}

/// SetInfo (§3.4.1.9): no information type is implemented.
unsafe extern "efiapi" fn set_info(
    _this: *const FirmwareVolume2Protocol,
    _information_type: *const Guid,
    _buffer_size: usize,
    _buffer: *const c_void,
) -> Status {
    Status::UNSUPPORTED
}

#[cfg(test)]
mod tests {
    use super::super::add_driver_file;
    use super::*;
    use uefi_raw::guid;

    const DRIVER: Guid = guid!("c3f1a0d2-7b4e-4c1a-9e3d-5a6b7c8d9e01");

    fn fv() -> *const FirmwareVolume2Protocol {
        interface().cast()
    }

    fn ucs2(name: &str) -> Vec<u8> {
        name.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    fn read_ui(file: &Guid, capacity: usize) -> (Status, usize, Vec<u8>) {
        let mut data = alloc::vec![0xeeu8; capacity.max(1)];
        let mut buffer = data.as_mut_ptr().cast::<c_void>();
        let mut size = capacity;
        let mut authentication = u32::MAX;
        // SAFETY: every pointer is a live local; the buffer holds `capacity` bytes.
        let status = unsafe {
            read_section(
                fv(),
                file,
                SectionType::USER_INTERFACE,
                0,
                &mut buffer,
                &mut size,
                &mut authentication,
            )
        };
        data.truncate(capacity);
        (status, size, data)
    }

    /// Lists a driver file (its image is `crate::driver_images`' concern);
    /// the test holds the returned guard while it uses the volume.
    fn driver_registered() -> std::sync::MutexGuard<'static, ()> {
        let serial = super::super::serial_tests();
        add_driver_file(VolumeFile {
            file: DRIVER,
            name: "TestDriver",
            kind: FileKind::Driver,
        });
        serial
    }

    #[test]
    fn read_section_fills_a_large_enough_buffer() {
        let _serial = driver_registered();
        let (status, size, data) = read_ui(&DRIVER, 64);
        assert_eq!(status, Status::SUCCESS);
        assert_eq!(size, ucs2("TestDriver").len());
        assert_eq!(&data[..size], &ucs2("TestDriver")[..]);
    }

    #[test]
    fn read_section_truncates_into_a_small_buffer_with_a_warning() {
        let _serial = driver_registered();
        let (status, size, data) = read_ui(&DRIVER, 3);
        assert_eq!(status, Status::WARN_BUFFER_TOO_SMALL);
        assert_eq!(size, ucs2("TestDriver").len());
        assert_eq!(data, &ucs2("TestDriver")[..3]);
    }

    #[test]
    fn unknown_files_and_sections_are_not_found() {
        let _serial = driver_registered();
        let other = guid!("00000000-0000-0000-0000-000000000001");
        assert_eq!(read_ui(&other, 64).0, Status::NOT_FOUND);
        let mut buffer: *mut c_void = core::ptr::null_mut();
        let (mut size, mut authentication) = (0usize, 0u32);
        // SAFETY: live locals.
        let status = unsafe {
            read_section(
                fv(),
                &DRIVER,
                SectionType::PE32,
                0,
                &mut buffer,
                &mut size,
                &mut authentication,
            )
        };
        assert_eq!(status, Status::NOT_FOUND);
        // SAFETY: WriteFile reads none of its arguments.
        let status = unsafe { write_file(fv(), 0, FvWritePolicy(0), core::ptr::null()) };
        assert_eq!(status, Status::WRITE_PROTECTED);
    }

    #[test]
    fn a_foreign_this_is_refused() {
        let _serial = driver_registered();
        let mut attributes = FvAttributes::empty();
        // SAFETY: `this` is only compared, never read.
        let status = unsafe { get_volume_attributes(core::ptr::dangling(), &mut attributes) };
        assert_eq!(status, Status::INVALID_PARAMETER);
        // SAFETY: live locals.
        let status = unsafe { get_volume_attributes(fv(), &mut attributes) };
        assert_eq!(status, Status::SUCCESS);
        assert_eq!(attributes, FvAttributes::READ_STATUS);
    }

    #[test]
    fn get_next_file_lists_drivers_then_ends() {
        let _serial = driver_registered();
        let mut key = 0u64;
        let mut found = Vec::new();
        loop {
            let mut wanted = FvFiletype::DRIVER;
            let mut name = Guid::ZERO;
            let mut attributes = FvFileAttributes::empty();
            let mut size = 0usize;
            // SAFETY: live locals; the key is KeySize (8) bytes.
            let status = unsafe {
                get_next_file(
                    fv(),
                    (&raw mut key).cast(),
                    &mut wanted,
                    &mut name,
                    &mut attributes,
                    &mut size,
                )
            };
            if status == Status::NOT_FOUND {
                break;
            }
            assert_eq!(status, Status::SUCCESS);
            assert_eq!(wanted, FvFiletype::DRIVER);
            found.push((name, size));
        }
        assert!(found.contains(&(DRIVER, 4 + ucs2("TestDriver").len())));
    }
}
