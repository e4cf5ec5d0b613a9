//! Global state for a single-threaded firmware. The firmware runs on one CPU
//! with interrupts off, so the only hazard is re-entrancy (an EFI notify
//! function calling back into a service mid-update); the borrow flag turns
//! that into a clear panic instead of aliased mutable state.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

pub struct Global<T> {
    borrowed: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by the `borrowed` flag, which is
// taken with an atomic swap; no reference escapes `with`.
unsafe impl<T: Send> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(value: T) -> Self {
        Global {
            borrowed: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` with exclusive access; panics on re-entry.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.try_with(f)
            .expect("re-entrant access to firmware global state")
    }

    /// Runs `f` with exclusive access, or returns None when already borrowed.
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self.borrowed.swap(true, Ordering::Acquire) {
            return None;
        }
        struct Release<'a>(&'a AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _release = Release(&self.borrowed);
        // SAFETY: the flag was clear and is now set by us, so this is the only
        // live reference until `_release` drops.
        let value = unsafe { &mut *self.value.get() };
        Some(f(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reentry_is_refused() {
        let g = Global::new(1);
        g.with(|v| {
            *v += 1;
            assert!(g.try_with(|_| ()).is_none());
        });
        assert_eq!(g.with(|v| *v), 2);
    }
}
