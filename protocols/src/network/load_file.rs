//! The EFI boundary both network LoadFiles (PXE, HTTP boot) share (UEFI
//! 2.10 §13.1.1): the argument checks, and the answer (the size written
//! back, `EFI_BUFFER_TOO_SMALL` for a size query or a short buffer).

use core::ffi::c_void;

use efi::boundary;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::{Boolean, Status};

use super::error::NetBootError;

/// A checked LoadFile call.
pub(super) struct LoadFileCall<'a> {
    /// The caller's buffer; `None` for a size query (NULL or empty).
    pub buffer: Option<&'a mut [u8]>,
    size_out: *mut usize,
}

/// Checks a LoadFile call: `FilePath` must be the End node (the file comes
/// from DHCP or `http=`, nothing names one), BootPolicy TRUE (a boot
/// manager's load; FALSE is `EFI_UNSUPPORTED`, as in edk2), `BufferSize`
/// readable.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §13.1.1 requires of the caller.
pub(super) unsafe fn accept<'a>(
    file_path: *const DevicePathProtocol,
    boot_policy: Boolean,
    buffer_size: *mut usize,
    buffer: *mut c_void,
) -> Result<LoadFileCall<'a>, Status> {
    // SAFETY: the caller passes a readable device path or NULL (§13.1.1).
    if unsafe { boundary::read(file_path.cast::<u8>()) } != Ok(0x7F) {
        return Err(Status::INVALID_PARAMETER);
    }
    if !bool::from(boot_policy) {
        return Err(Status::UNSUPPORTED);
    }
    // SAFETY: as above, for the size.
    let size = unsafe { boundary::read(buffer_size) }?;
    let buffer = if buffer.is_null() || size == 0 {
        None
    } else {
        // SAFETY: the caller hands us `BufferSize` bytes at `Buffer`.
        Some(unsafe { boundary::bytes_mut(buffer.cast(), size) }?)
    };
    Ok(LoadFileCall {
        buffer,
        size_out: buffer_size,
    })
}

impl LoadFileCall<'_> {
    /// Answers with `outcome`: the bytes placed in the buffer, or
    /// `BufferTooSmall` with the file's size for a size query or a short
    /// buffer, or the failure (logged with `what`).
    pub(super) fn answer(self, outcome: Result<u64, NetBootError>, what: &str) -> Status {
        let (status, size) = match outcome {
            Ok(size) => (Status::SUCCESS, size),
            Err(NetBootError::BufferTooSmall { needed }) => (Status::BUFFER_TOO_SMALL, needed),
            Err(error) => {
                log::warn!("{what}: boot failed: {error}");
                return error.status();
            }
        };
        let Ok(size) = usize::try_from(size) else {
            return Status::OUT_OF_RESOURCES;
        };
        // SAFETY: `accept` read through this pointer, so it is non-NULL and
        // the caller's to write (§13.1.1).
        let _ = unsafe { boundary::write(self.size_out, size) };
        status
    }
}
