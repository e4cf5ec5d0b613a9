//! Miscellaneous Boot Services (UEFI 2.10 §7.5): Stall, SetWatchdogTimer,
//! GetNextMonotonicCount, CalculateCrc32, CopyMem and SetMem, plus the
//! runtime GetNextHighMonotonicCount (§8.5.2) that shares the count.
//!
//! Stall and SetWatchdogTimer run on the event table
//! ([`crate::events`]): a stall fires expired timers, and the watchdog is
//! one of the table's timers.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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

/// Low 32 bits count calls; the high 32 bits are the non-volatile part
/// (§7.5.3), incremented at every reset (`runtime::restore_persisted_state`)
/// and by GetNextHighMonotonicCount. A static: the runtime service uses it
/// after ExitBootServices.
static MONOTONIC_COUNT: AtomicU64 = AtomicU64::new(0);

/// Whether the high half is saved when it changes: only once the boot
/// seeded it from the store, or an early change would overwrite the
/// persisted count.
static HIGH_IS_PERSISTENT: AtomicBool = AtomicBool::new(false);

/// Whether this boot's high half is in the store yet. It is written before
/// the first count of the boot is handed out, not at every boot: the count
/// only has to grow across the values callers saw (§7.5.3), so a boot that
/// hands out none may leave the store as it was, and the common boot makes
/// no variable-store write for it.
static HIGH_SAVED_THIS_BOOT: AtomicBool = AtomicBool::new(false);

/// Seeds the high 32 bits (the persisted count of resets plus this one) at
/// boot; from then on changes to them are saved.
pub fn set_monotonic_high(high: u32) {
    MONOTONIC_COUNT.store(u64::from(high) << 32, Ordering::Relaxed);
    HIGH_IS_PERSISTENT.store(true, Ordering::Relaxed);
    HIGH_SAVED_THIS_BOOT.store(false, Ordering::Relaxed);
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.5 requires of the caller.
pub unsafe extern "efiapi" fn get_next_monotonic_count(count: *mut u64) -> Status {
    if count.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let value = MONOTONIC_COUNT.fetch_add(1, Ordering::Relaxed);
    if !HIGH_SAVED_THIS_BOOT.swap(true, Ordering::Relaxed) {
        persist_high((value >> 32) as u32);
    }
    // SAFETY: non-null Count points to a UINT64 the caller owns (§7.5.4).
    unsafe { count.write_unaligned(value) };
    if value as u32 == u32::MAX {
        // The low half wrapped into the high half (§7.5.3), which is
        // non-volatile.
        persist_high((value >> 32) as u32 + 1);
    }
    Status::SUCCESS
}

/// Saves the high half; a failure leaves the count working for this boot.
fn persist_high(high: u32) {
    if !HIGH_IS_PERSISTENT.load(Ordering::Relaxed) {
        return;
    }
    let status = crate::runtime::persisted::store_monotonic_high(high);
    if status != Status::SUCCESS {
        warn!("monotonic count: high half {high:#x} not saved ({status:?})");
    }
}

/// Runtime GetNextHighMonotonicCount (§8.5.2): increments the high 32 bits,
/// restarting the low part.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §8.5.2 requires of the caller.
pub unsafe extern "efiapi" fn get_next_high_monotonic_count(high_count: *mut u32) -> Status {
    if high_count.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let next = MONOTONIC_COUNT
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(((v >> 32).wrapping_add(1)) << 32)
        })
        .map_or(0, |previous| ((previous >> 32) as u32).wrapping_add(1));
    // §8.5.2: the high half is non-volatile. After ExitBootServices the
    // store keeps it in RAM only (README, "UEFI variables").
    persist_high(next);
    HIGH_SAVED_THIS_BOOT.store(true, Ordering::Relaxed);
    // SAFETY: non-null HighCount points to a UINT32 the caller owns.
    unsafe { high_count.write_unaligned(next) };
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
        let mut high = 0u32;
        assert_eq!(
            // SAFETY: test arguments are live locals of the sizes passed.
            unsafe { get_next_high_monotonic_count(&mut high) },
            Status::SUCCESS
        );
        assert_eq!(
            // SAFETY: test arguments are live locals of the sizes passed.
            unsafe { get_next_monotonic_count(&mut first) },
            Status::SUCCESS
        );
        assert_eq!(first >> 32, u64::from(high));
    }
}
