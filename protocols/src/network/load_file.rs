//! The one EFI_LOAD_FILE_PROTOCOL (UEFI 2.10 §13.1.1) of both network boot
//! clients (PXE, HTTP boot): the interface, the argument checks and the
//! answer (the size written back, `EFI_BUFFER_TOO_SMALL` for a size query
//! or a short buffer); each client only says how it gets its file.

use alloc::boxed::Box;
use core::ffi::c_void;

use efi::boundary;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::media::LoadFileProtocol;
use uefi_raw::{Boolean, Status};

use super::error::NetBootError;

/// A network client's boot file behind a LoadFile.
pub(super) trait NetworkFile {
    /// Marks this client's interfaces, so a stranger's `This` is refused.
    const SIGNATURE: u64;
    /// Names the client in the log.
    const NAME: &'static str;
    /// The file into `buffer`; `BufferTooSmall` with its size for a size
    /// query (`None`) or a buffer too small.
    fn load(&self, buffer: Option<&mut [u8]>) -> Result<u64, NetBootError>;
}

#[repr(C)]
struct Instance<T> {
    protocol: LoadFileProtocol,
    signature: u64,
    source: T,
}

/// A LoadFile interface over `source`; never freed.
pub(super) fn new_interface<T: NetworkFile + 'static>(source: T) -> *mut c_void {
    Box::into_raw(Box::new(Instance {
        protocol: LoadFileProtocol {
            load_file: load_file::<T>,
        },
        signature: T::SIGNATURE,
        source,
    }))
    .cast()
}

/// LoadFile: `FilePath` must be the End node (the file comes from DHCP or
/// `http=`, nothing names one), BootPolicy TRUE (a boot manager's load;
/// FALSE is `EFI_UNSUPPORTED`, as in edk2), `BufferSize` readable.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §13.1.1 requires of the caller.
unsafe extern "efiapi" fn load_file<T: NetworkFile>(
    this: *mut LoadFileProtocol,
    file_path: *const DevicePathProtocol,
    boot_policy: Boolean,
    buffer_size: *mut usize,
    buffer: *mut c_void,
) -> Status {
    let instance = this.cast::<Instance<T>>();
    if instance.is_null() || !instance.is_aligned() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: non-null and aligned; an interface from our handle (§13.1),
    // readable through its signature.
    if unsafe { (&raw const (*instance).signature).read() } != T::SIGNATURE {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the signature marks an `Instance<T>` made by `new_interface`,
    // never freed; only shared references are taken.
    let source = unsafe { &(*instance).source };
    // SAFETY: the caller passes a readable device path or NULL (§13.1.1).
    if unsafe { boundary::read(file_path.cast::<u8>()) } != Ok(0x7F) {
        return Status::INVALID_PARAMETER;
    }
    if !bool::from(boot_policy) {
        return Status::UNSUPPORTED;
    }
    // SAFETY: as above, for the size.
    let Ok(size) = (unsafe { boundary::read(buffer_size) }) else {
        return Status::INVALID_PARAMETER;
    };
    let target = if buffer.is_null() || size == 0 {
        None
    } else {
        // SAFETY: the caller hands us `BufferSize` bytes at `Buffer`.
        match unsafe { boundary::bytes_mut(buffer.cast(), size) } {
            Ok(slice) => Some(slice),
            Err(status) => return status,
        }
    };
    let (status, size) = match source.load(target) {
        Ok(size) => (Status::SUCCESS, size),
        Err(NetBootError::BufferTooSmall { needed }) => (Status::BUFFER_TOO_SMALL, needed),
        Err(error) => {
            log::warn!("{}: boot failed: {error}", T::NAME);
            return error.status();
        }
    };
    let Ok(size) = usize::try_from(size) else {
        return Status::OUT_OF_RESOURCES;
    };
    // SAFETY: read above, so non-NULL and the caller's to write (§13.1.1).
    let _ = unsafe { boundary::write(buffer_size, size) };
    status
}
