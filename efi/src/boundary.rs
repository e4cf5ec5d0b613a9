//! Checks on pointers received from EFI callers. A caller's pointer is an
//! allegation: these helpers reject null and misaligned values with the
//! spec's EFI_INVALID_PARAMETER; beyond that the spec makes the caller
//! responsible for the memory being valid. The helpers that dereference are
//! therefore `unsafe fn`s: each entry point states that contract in its
//! `# Safety` section and passes it on at the call.

use uefi_raw::{Guid, Status};

/// Reads a `T` the caller points at.
///
/// # Safety
/// `ptr` is null or valid for reading a `T` (alignment not required).
pub unsafe fn read<T: Copy>(ptr: *const T) -> Result<T, Status> {
    if ptr.is_null() {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: non-null; callers may pass unaligned GUIDs, hence the
    // unaligned read; validity of the memory is the caller's contract.
    Ok(unsafe { ptr.read_unaligned() })
}

/// Reads an EFI_GUID the caller points at.
///
/// # Safety
/// As for [`read`].
pub unsafe fn guid(ptr: *const Guid) -> Result<Guid, Status> {
    // SAFETY: this function's contract is `read`'s.
    unsafe { read(ptr) }
}

/// Writes through an output pointer.
///
/// # Safety
/// `ptr` is null or valid for writing a `T` (alignment not required).
pub unsafe fn write<T>(ptr: *mut T, value: T) -> Result<(), Status> {
    if ptr.is_null() {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: non-null output pointer the caller provided for this value.
    unsafe { ptr.write_unaligned(value) };
    Ok(())
}

/// A byte slice the caller provided (`len` may be 0 with any pointer).
///
/// # Safety
/// When `len` is not 0, `ptr` is null or valid for reading `len` bytes that
/// nothing writes to for `'a`.
pub unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], Status> {
    if len == 0 {
        return Ok(&[]);
    }
    if !plausible(ptr as usize, len) {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: non-null, does not wrap, within isize::MAX; the caller vouches
    // for `len` bytes.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// A buffer the caller hands over to be filled.
///
/// # Safety
/// When `len` is not 0, `ptr` is null or valid for reading and writing `len`
/// bytes that nothing else accesses for `'a`.
pub unsafe fn bytes_mut<'a>(ptr: *mut u8, len: usize) -> Result<&'a mut [u8], Status> {
    if len == 0 {
        return Ok(&mut []);
    }
    if !plausible(ptr as usize, len) {
        return Err(Status::INVALID_PARAMETER);
    }
    // SAFETY: as for `bytes`, and the caller hands the buffer to us to fill.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// A buffer a slice may describe: non-null, not wrapping the address space
/// and no longer than isize::MAX (`slice::from_raw_parts`' requirement).
fn plausible(addr: usize, len: usize) -> bool {
    addr != 0 && addr.checked_add(len).is_some() && len <= isize::MAX as usize
}

/// A NUL-terminated UCS-2 string, at most `max` characters. The copy
/// grows fallibly (callers allow up to 1M characters): no memory for it is
/// EFI_OUT_OF_RESOURCES.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated UCS-2 string, or to at least
/// `max` readable characters.
pub unsafe fn ucs2(ptr: *const u16, max: usize) -> Result<alloc::vec::Vec<u16>, Status> {
    if ptr.is_null() {
        return Err(Status::INVALID_PARAMETER);
    }
    let mut out = alloc::vec::Vec::new();
    for i in 0..max {
        // SAFETY: non-null; the string extends to its NUL by the caller's
        // contract and we stop there (or at `max`).
        let c = unsafe { ptr.add(i).read_unaligned() };
        if c == 0 {
            return Ok(out);
        }
        platform::fallible::push(&mut out, c).map_err(|_| Status::OUT_OF_RESOURCES)?;
    }
    Err(Status::INVALID_PARAMETER)
}

/// Converts a Result to the status returned across the boundary.
pub fn status(result: Result<(), Status>) -> Status {
    match result {
        Ok(()) => Status::SUCCESS,
        Err(e) => e,
    }
}
