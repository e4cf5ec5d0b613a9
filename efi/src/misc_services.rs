//! Miscellaneous Boot Services (UEFI 2.10 §7.5): Stall, SetWatchdogTimer,
//! GetNextMonotonicCount (over the count in [`crate::runtime::monotonic`]),
//! CalculateCrc32, CopyMem and SetMem.
//!
//! Stall and SetWatchdogTimer run on the event table
//! ([`crate::events`]): a stall fires expired timers, and the watchdog is
//! one of the table's timers.

use core::ffi::c_void;

use log::{debug, warn};
use uefi_raw::{Char16, Status};

use crate::events::{services, status_of};

/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.5): every
/// argument is a value, and handles and events are only looked up.
pub unsafe extern "efiapi" fn stall(microseconds: usize) -> Status {
    match services() {
        Some(events) => events.stall(microseconds as u64),
        None => platform::tsc::stall_us(microseconds as u64),
    }
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.5 requires of the caller.
pub unsafe extern "efiapi" fn set_watchdog_timer(
    timeout: usize,
    watchdog_code: u64,
    data_size: usize,
    watchdog_data: *const Char16,
) -> Status {
    let Some(events) = services() else {
        return Status::UNSUPPORTED;
    };
    let result = events.set_watchdog(timeout, watchdog_code);
    if result.is_ok() && timeout != 0 {
        debug!(
            "watchdog armed: {timeout} s, code {watchdog_code:#x}, {data_size} bytes of data at {watchdog_data:p}"
        );
    }
    status_of(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.5 requires of the caller.
pub unsafe extern "efiapi" fn get_next_monotonic_count(count: *mut u64) -> Status {
    if count.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let value = crate::runtime::monotonic::next_count();
    // SAFETY: non-null Count points to a UINT64 the caller owns (§7.5.4).
    unsafe { count.write_unaligned(value) };
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.5 requires of the caller.
pub unsafe extern "efiapi" fn calculate_crc32(
    data: *const c_void,
    data_size: usize,
    crc32: *mut u32,
) -> Status {
    if data.is_null() || data_size == 0 || crc32.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: Data points to DataSize readable bytes (§7.5.5), non-null and
    // non-empty as checked.
    let bytes = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), data_size) };
    let value = platform::crc32::crc32(bytes);
    // SAFETY: non-null Crc32 points to a UINT32 the caller owns.
    unsafe { crc32.write_unaligned(value) };
    Status::SUCCESS
}

/// CopyMem (§7.5.6): overlapping buffers are copied as memmove does.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §7.5.6 requires of the caller.
pub unsafe extern "efiapi" fn copy_mem(destination: *mut u8, source: *const u8, length: usize) {
    if length == 0 {
        return;
    }
    if destination.is_null() || source.is_null() {
        warn!("CopyMem with a null buffer ({destination:p} <- {source:p}, {length} bytes)");
        return;
    }
    // SAFETY: the caller guarantees both buffers span `length` bytes
    // (§7.5.6); `copy` is memmove, so overlap is allowed.
    unsafe { core::ptr::copy(source, destination, length) };
}

/// SetMem (§7.5.7).
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §7.5.7 requires of the caller.
pub unsafe extern "efiapi" fn set_mem(buffer: *mut u8, size: usize, value: u8) {
    if size == 0 {
        return;
    }
    if buffer.is_null() {
        warn!("SetMem on a null buffer ({size} bytes)");
        return;
    }
    // SAFETY: the caller guarantees `buffer` spans `size` writable bytes.
    unsafe { core::ptr::write_bytes(buffer, value, size) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misc_services() {
        let mut data = *b"123456789";
        let mut crc = 0u32;
        let data_ptr = data.as_mut_ptr().cast::<c_void>();
        assert_eq!(
            // SAFETY: test arguments are live locals of the sizes passed.
            unsafe { calculate_crc32(data_ptr, data.len(), &mut crc) },
            Status::SUCCESS
        );
        assert_eq!(crc, 0xCBF4_3926);
        assert_eq!(
            // SAFETY: test arguments are live locals of the sizes passed.
            unsafe { calculate_crc32(data_ptr, 0, &mut crc) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: test arguments are live locals of the sizes passed.
            unsafe { calculate_crc32(core::ptr::null_mut(), 9, &mut crc) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: test arguments are live locals of the sizes passed.
            unsafe { calculate_crc32(data_ptr, 9, core::ptr::null_mut()) },
            Status::INVALID_PARAMETER
        );

        // Overlapping moves in both directions.
        let mut buf = *b"abcdefgh";
        let base = buf.as_mut_ptr();
        // SAFETY: test arguments are live locals of the sizes passed.
        unsafe { copy_mem(base.wrapping_add(2).cast(), base.cast(), 4) };
        assert_eq!(&buf, b"ababcdgh");
        let base = buf.as_mut_ptr();
        // SAFETY: test arguments are live locals of the sizes passed.
        unsafe { copy_mem(base.cast(), base.wrapping_add(3).cast(), 5) };
        assert_eq!(&buf, b"bcdghdgh");
        // SAFETY: test arguments are live locals of the sizes passed.
        unsafe { copy_mem(core::ptr::null_mut(), base.cast(), 0) };

        // SAFETY: test arguments are live locals of the sizes passed.
        unsafe { set_mem(buf.as_mut_ptr().cast(), 3, b'z') };
        assert_eq!(&buf, b"zzzghdgh");

        let (mut first, mut second) = (0u64, 0u64);
        assert_eq!(
            // SAFETY: test arguments are live locals of the sizes passed.
            unsafe { get_next_monotonic_count(&mut first) },
            Status::SUCCESS
        );
        assert_eq!(
            // SAFETY: test arguments are live locals of the sizes passed.
            unsafe { get_next_monotonic_count(&mut second) },
            Status::SUCCESS
        );
        assert!(second > first);
        assert_eq!(
            // SAFETY: test arguments are live locals of the sizes passed.
            unsafe { get_next_monotonic_count(core::ptr::null_mut()) },
            Status::INVALID_PARAMETER
        );
    }
}
