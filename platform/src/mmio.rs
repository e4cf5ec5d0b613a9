//! Memory-mapped device register windows: the bounds-checked way drivers
//! touch MMIO. Port I/O goes through `x86_64::instructions::port`.

/// A window of memory-mapped device registers, identity mapped.
///
/// Offsets are checked against the window's length so a driver bug cannot
/// turn into a stray write elsewhere in memory. `read` and `write` are safe
/// because `new` is not: its caller vouches for the whole window, and the
/// window can only shrink (`sub`) after that.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: u64,
    len: u64,
}

impl Mmio {
    /// # Safety
    /// `base..base+len` must be device memory (or RAM owned by the caller)
    /// that is identity mapped for the firmware's whole life.
    pub const unsafe fn new(base: u64, len: u64) -> Self {
        Mmio { base, len }
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn addr<T>(&self, offset: u64) -> *mut T {
        let size = core::mem::size_of::<T>() as u64;
        assert!(
            offset.checked_add(size).is_some_and(|end| end <= self.len)
                && offset.is_multiple_of(size),
            "MMIO access at {offset:#x} outside window of {:#x} bytes",
            self.len
        );
        (self.base + offset) as *mut T
    }

    pub fn read<T: Copy>(&self, offset: u64) -> T {
        let ptr = self.addr::<T>(offset);
        // SAFETY: `new`'s contract makes the window mapped device memory;
        // `addr` checked bounds and alignment.
        unsafe { core::ptr::read_volatile(ptr) }
    }

    pub fn write<T: Copy>(&self, offset: u64, value: T) {
        let ptr = self.addr::<T>(offset);
        // SAFETY: as for `read`.
        unsafe { core::ptr::write_volatile(ptr, value) }
    }

    /// A sub-window, e.g. one capability structure inside a BAR.
    pub fn sub(&self, offset: u64, len: u64) -> Option<Mmio> {
        let end = offset.checked_add(len)?;
        (end <= self.len).then_some(Mmio {
            base: self.base + offset,
            len,
        })
    }
}
