//! Revision 2 of EFI_FILE_PROTOCOL (UEFI 2.10 §13.5.7-§13.5.10): OpenEx,
//! ReadEx, WriteEx and FlushEx, each carrying an EFI_FILE_IO_TOKEN.
//!
//! The FAT driver works synchronously, which the spec allows: a request runs
//! to completion inside the call. With a null Token->Event that is the
//! blocking I/O the caller asked for; with an event, the token's Status (and
//! BufferSize) are filled in and the event is signalled before the call
//! returns EFI_SUCCESS. A request refused before it starts (a bad parameter,
//! a handle opened read-only, ...) returns that status directly and signals
//! nothing, as no I/O was queued.
//!
//! The event is signalled last, with no borrow of the handle or the token
//! held: its notify function may run at once (below TPL_CALLBACK) and may
//! use the handle, close it, or free the token (§13.5.7 "the callback ... may
//! occur before the original asynchronous I/O request call returns").

use core::ffi::c_void;

use uefi_raw::protocol::file_system::{
    FileAttribute, FileIoToken, FileMode, FileProtocolV1, FileProtocolV2,
};
use uefi_raw::{Event, Status};

use super::file::{file_flush, file_open, file_read, file_write};

/// The Event of the caller's token, checked: EFI_INVALID_PARAMETER for a null
/// token or an event this firmware did not create.
///
/// # Safety
/// `token` is null or points to the caller's EFI_FILE_IO_TOKEN.
unsafe fn token_event(token: *mut FileIoToken) -> Result<Event, Status> {
    if token.is_null() || !token.is_aligned() {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: non-null and aligned; the caller's token by this function's
    // contract.
    let event = unsafe { (*token).event };
    if !event.is_null() && !is_event(event) {
        return Err(Status::INVALID_PARAMETER);
    }
    Ok(event)
}

/// Finishes a request that ran: records `status` in the token and, for a
/// non-blocking request, signals its event. Returns what the call returns.
///
/// # Safety
/// `token` passed [`token_event`], which returned `event`; nothing borrows
/// the token or the file handle.
unsafe fn complete(token: *mut FileIoToken, event: Event, status: Status) -> Status {
    if event.is_null() {
        // Blocking I/O: the call's own status is the result (§13.5.7).
        // SAFETY: the caller's token, checked by `token_event`.
        unsafe { (*token).status = status };
        return status;
    }
    if status.is_error() {
        // Refused before any I/O was queued: nothing to signal.
        return status;
    }
    // SAFETY: as above; the token is not touched after the signal, whose
    // notify function may free it.
    unsafe { (*token).status = status };
    signal(event);
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5.7 requires of the caller.
pub(super) unsafe extern "efiapi" fn file_open_ex(
    this: *mut FileProtocolV2,
    new_handle: *mut *mut FileProtocolV2,
    file_name: *const u16,
    open_mode: FileMode,
    attributes: FileAttribute,
    token: *mut FileIoToken,
) -> Status {
    // SAFETY: as this function's # Safety requires.
    let event = match unsafe { token_event(token) } {
        Ok(event) => event,
        Err(status) => return status,
    };
    // Revision 2 extends revision 1 (the V1 table comes first), so the
    // pointers are the same objects; Open checks them all.
    // SAFETY: as this function's # Safety requires.
    let status = unsafe {
        file_open(
            this.cast::<FileProtocolV1>(),
            new_handle.cast::<*mut FileProtocolV1>(),
            file_name,
            open_mode,
            attributes,
        )
    };
    // SAFETY: `token` passed `token_event`; Open holds no borrow any more.
    unsafe { complete(token, event, status) }
}

/// ReadEx and WriteEx: `transfer` is Read or Write, given the token's
/// BufferSize and Buffer; the bytes moved go back into BufferSize.
///
/// # Safety
/// `token` is as [`token_event`] requires; its Buffer holds BufferSize bytes
/// (readable for WriteEx, writable for ReadEx).
unsafe fn transfer_ex(
    this: *mut FileProtocolV2,
    token: *mut FileIoToken,
    transfer: impl FnOnce(*mut FileProtocolV1, *mut usize, *mut c_void) -> Status,
) -> Status {
    // SAFETY: as this function's # Safety requires.
    let event = match unsafe { token_event(token) } {
        Ok(event) => event,
        Err(status) => return status,
    };
    // SAFETY: the caller's token, checked by `token_event`.
    let (mut size, buffer) = unsafe { ((*token).buffer_size, (*token).buffer) };
    let status = transfer(this.cast(), &mut size, buffer);
    // SAFETY: as above; the transfer holds no borrow any more.
    unsafe { (*token).buffer_size = size };
    // SAFETY: `token` passed `token_event`.
    unsafe { complete(token, event, status) }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5.8 requires of the caller.
pub(super) unsafe extern "efiapi" fn file_read_ex(
    this: *mut FileProtocolV2,
    token: *mut FileIoToken,
) -> Status {
    // SAFETY: as this function's # Safety requires; Read gets the token's
    // own buffer and size, which the caller vouches for (§13.5.8).
    unsafe {
        transfer_ex(this, token, |this, size, buffer| {
            file_read(this, size, buffer)
        })
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5.9 requires of the caller.
pub(super) unsafe extern "efiapi" fn file_write_ex(
    this: *mut FileProtocolV2,
    token: *mut FileIoToken,
) -> Status {
    // SAFETY: as this function's # Safety requires; Write gets the token's
    // own buffer and size, which the caller vouches for (§13.5.9).
    unsafe {
        transfer_ex(this, token, |this, size, buffer| {
            file_write(this, size, buffer.cast_const())
        })
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §13.5.10 requires of the caller.
pub(super) unsafe extern "efiapi" fn file_flush_ex(
    this: *mut FileProtocolV2,
    token: *mut FileIoToken,
) -> Status {
    // SAFETY: as this function's # Safety requires.
    let event = match unsafe { token_event(token) } {
        Ok(event) => event,
        Err(status) => return status,
    };
    // SAFETY: `this` is the caller's `This`, as Flush requires.
    let status = unsafe { file_flush(this.cast()) };
    // SAFETY: `token` passed `token_event`; Flush holds no borrow any more.
    unsafe { complete(token, event, status) }
}

/// Whether `event` is an open event of this firmware.
#[cfg(not(test))]
fn is_event(event: Event) -> bool {
    efi::events::is_valid_event(event)
}

#[cfg(not(test))]
fn signal(event: Event) {
    // SAFETY: SignalEvent takes the event by value and only looks it up
    // (§7.1.4); `token_event` checked it is one of ours.
    let _ = unsafe { efi::events::signal_event(event) };
}

// Host tests have no event services: they record what would be signalled.
#[cfg(test)]
use super::tests::{is_test_event as is_event, record_signal as signal};
