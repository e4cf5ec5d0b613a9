//! Fallible heap allocation for sizes the firmware does not choose: what a
//! disk, a file, a variable or an EFI caller says. Each helper reserves the
//! whole size first (`try_reserve_exact`), so a size the heap cannot hold is
//! an [`OutOfMemory`] error the caller turns into its layer's error (at the
//! EFI boundary EFI_OUT_OF_RESOURCES, UEFI 2.10 Appendix D), never the
//! allocation-failure panic of `Vec::with_capacity` or `vec![0; n]`.
//!
//! What stays infallible, by rule rather than per site (the audit is
//! `docs/allocation-audit.md`): small fixed-size bookkeeping whose size the
//! firmware chooses (a handle's protocol entry, an event, an open record, a
//! driver's instance, a log line) and collections bounded by a small fixed
//! limit named where they are built (64 KiB device paths, 64 KiB variables,
//! 64 vararg pairs, 4 KiB FAT sectors). Such allocations are a few hundred
//! bytes to a few KiB and come out of the heap's 512 KiB cushion
//! (`heap::LOW_WATER`); if even that fails, the panic handler resets.

use alloc::vec::Vec;
use core::fmt;

/// The heap could not hold `bytes` more bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    pub bytes: usize,
}

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no memory for {} bytes", self.bytes)
    }
}

/// Reserves room for `additional` more elements of `v`, exactly.
pub fn reserve<T>(v: &mut Vec<T>, additional: usize) -> Result<(), OutOfMemory> {
    v.try_reserve_exact(additional).map_err(|_| OutOfMemory {
        bytes: additional.saturating_mul(core::mem::size_of::<T>()),
    })
}

/// Pushes `value`, growing `v` (amortised) fallibly.
pub fn push<T>(v: &mut Vec<T>, value: T) -> Result<(), OutOfMemory> {
    v.try_reserve(1).map_err(|_| OutOfMemory {
        bytes: v
            .len()
            .saturating_add(1)
            .saturating_mul(core::mem::size_of::<T>()),
    })?;
    v.push(value);
    Ok(())
}

/// An empty vector with room for `n` elements.
pub fn with_capacity<T>(n: usize) -> Result<Vec<T>, OutOfMemory> {
    let mut v = Vec::new();
    reserve(&mut v, n)?;
    Ok(v)
}

/// `n` zero bytes.
pub fn vec_zeroed(n: usize) -> Result<Vec<u8>, OutOfMemory> {
    let mut v = with_capacity(n)?;
    v.resize(n, 0);
    Ok(v)
}

/// A copy of `src`.
pub fn copy<T: Copy>(src: &[T]) -> Result<Vec<T>, OutOfMemory> {
    let mut v = with_capacity(src.len())?;
    v.extend_from_slice(src);
    Ok(v)
}

/// `src`'s items, collected into a vector reserved for `n` of them first
/// (what `collect` would grow to, without the panic).
pub fn collect<T>(n: usize, src: impl IntoIterator<Item = T>) -> Result<Vec<T>, OutOfMemory> {
    let mut v = with_capacity(n)?;
    for item in src {
        push(&mut v, item)?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_no_heap_can_hold_are_errors_not_panics() {
        // More than isize::MAX bytes: refused before any allocation.
        assert_eq!(
            vec_zeroed(usize::MAX),
            Err(OutOfMemory { bytes: usize::MAX })
        );
        assert!(with_capacity::<u64>(usize::MAX / 4).is_err());
        let mut v = vec![1u8];
        assert!(reserve(&mut v, usize::MAX).is_err());
        assert_eq!(v, [1], "a failed reserve leaves the vector as it was");
    }

    #[test]
    fn sizes_that_fit_behave_like_the_infallible_forms() {
        assert_eq!(vec_zeroed(3), Ok(vec![0, 0, 0]));
        assert_eq!(copy(&[1u16, 2]), Ok(vec![1, 2]));
        assert_eq!(collect(1, [1, 2, 3]), Ok(vec![1, 2, 3]));
        let mut v = Vec::new();
        push(&mut v, 7u32).unwrap();
        assert_eq!(v, [7]);
        assert!(with_capacity::<u8>(0).unwrap().is_empty());
    }
}
