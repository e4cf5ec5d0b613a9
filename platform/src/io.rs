//! Port I/O and MMIO: the only place the firmware touches hardware registers
//! directly. Everything above this module uses typed wrappers.

use core::arch::asm;

/// An x86 I/O port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port(pub u16);

impl Port {
    pub fn read_u8(self) -> u8 {
        let value: u8;
        // SAFETY: `in` has no memory effects; reading a port is at worst a
        // device side effect the caller asked for.
        unsafe {
            asm!("in al, dx", out("al") value, in("dx") self.0, options(nomem, nostack, preserves_flags))
        };
        value
    }

    pub fn read_u16(self) -> u16 {
        let value: u16;
        // SAFETY: as for `read_u8`.
        unsafe {
            asm!("in ax, dx", out("ax") value, in("dx") self.0, options(nomem, nostack, preserves_flags))
        };
        value
    }

    pub fn read_u32(self) -> u32 {
        let value: u32;
        // SAFETY: as for `read_u8`.
        unsafe {
            asm!("in eax, dx", out("eax") value, in("dx") self.0, options(nomem, nostack, preserves_flags))
        };
        value
    }

    pub fn write_u8(self, value: u8) {
        // SAFETY: `out` has no effect on memory the compiler knows about.
        unsafe {
            asm!("out dx, al", in("dx") self.0, in("al") value, options(nomem, nostack, preserves_flags))
        };
    }

    pub fn write_u16(self, value: u16) {
        // SAFETY: as for `write_u8`.
        unsafe {
            asm!("out dx, ax", in("dx") self.0, in("ax") value, options(nomem, nostack, preserves_flags))
        };
    }

    pub fn write_u32(self, value: u32) {
        // SAFETY: as for `write_u8`.
        unsafe {
            asm!("out dx, eax", in("dx") self.0, in("eax") value, options(nomem, nostack, preserves_flags))
        };
    }

    pub fn offset(self, by: u16) -> Port {
        Port(self.0.wrapping_add(by))
    }
}

/// A window of memory-mapped device registers, identity mapped.
///
/// Offsets are checked against the window's length so a driver bug cannot
/// turn into a stray write elsewhere in memory.
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
