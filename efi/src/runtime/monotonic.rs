//! The monotonic count (UEFI 2.10 §7.5.3, §8.5.2): one 64-bit counter whose
//! low half counts GetNextMonotonicCount calls and whose high half is
//! non-volatile, incremented at every reset and by the runtime service
//! GetNextHighMonotonicCount. The boot service GetNextMonotonicCount
//! ([`crate::misc_services`]) reads it through [`next_count`]; it lives here,
//! beside the variable store that keeps the high half, so that `runtime`
//! does not depend on `misc_services`.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use log::warn;
use uefi_raw::Status;

use super::persisted;

/// The count. A static: the runtime service uses it after
/// ExitBootServices.
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
pub fn set_high(high: u32) {
    MONOTONIC_COUNT.store(u64::from(high) << 32, Ordering::Relaxed);
    HIGH_IS_PERSISTENT.store(true, Ordering::Relaxed);
    HIGH_SAVED_THIS_BOOT.store(false, Ordering::Relaxed);
}

/// The next value of the count (GetNextMonotonicCount, §7.5.3). The boot's
/// high half reaches the store before its first value is handed out.
pub fn next_count() -> u64 {
    let value = MONOTONIC_COUNT.fetch_add(1, Ordering::Relaxed);
    if !HIGH_SAVED_THIS_BOOT.swap(true, Ordering::Relaxed) {
        persist_high((value >> 32) as u32);
    }
    if value as u32 == u32::MAX {
        // The low half wrapped into the high half (§7.5.3), which is
        // non-volatile.
        persist_high(((value >> 32) as u32).wrapping_add(1));
    }
    value
}

/// Saves the high half; a failure leaves the count working for this boot.
fn persist_high(high: u32) {
    if !HIGH_IS_PERSISTENT.load(Ordering::Relaxed) {
        return;
    }
    let status = persisted::store_monotonic_high(high);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_monotonic_count_advances_the_shared_counter() {
        let before = next_count();
        let second = next_count();
        assert!(second > before);
        let mut high = 0u32;
        assert_eq!(
            // SAFETY: a live local of the size passed.
            unsafe { get_next_high_monotonic_count(&mut high) },
            Status::SUCCESS
        );
        let after = next_count();
        assert_eq!(after >> 32, u64::from(high));
        assert!(after > second);
        assert_eq!(
            // SAFETY: null is what this checks.
            unsafe { get_next_high_monotonic_count(core::ptr::null_mut()) },
            Status::INVALID_PARAMETER
        );
    }
}
