//! Buffers in whole EFI pages (UEFI 2.10 §7.2.1 AllocatePages) rather than
//! on the firmware heap: initrds and kernels are tens of MiB, more than the
//! heap holds, and the Linux boot protocol needs them at addresses it
//! controls (below `initrd_addr_max`, at the kernel's alignment).

use crate::services;
use core::ptr::NonNull;
use platform::memory::{MemoryType, PAGE_SIZE};
use uefi_raw::table::boot::AllocateType;
use uefi_raw::{PhysicalAddress, Status};

/// `len` bytes at the start of `pages` EFI pages, freed on drop unless
/// [`PageBuffer::leak`]ed (memory handed to the kernel).
pub struct PageBuffer {
    base: NonNull<u8>,
    pages: usize,
    len: usize,
}

/// Pages needed for `len` bytes (at least one, so the buffer has an address).
fn pages_for(len: usize) -> Option<usize> {
    Some(len.checked_add(PAGE_SIZE as usize - 1)? / PAGE_SIZE as usize).map(|p| p.max(1))
}

impl PageBuffer {
    /// Zeroed `len` bytes of `memory_type` pages ending at or below `max_address`.
    pub fn allocate(len: usize, memory_type: MemoryType, max_address: u64) -> Result<Self, Status> {
        Self::allocate_with_room(len, len, memory_type, max_address)
    }

    /// Like [`PageBuffer::allocate`], with pages for `capacity >= len` bytes
    /// of which only the first `len` are zeroed and visible: the rest is
    /// reserved for whoever the pages are handed to. A kernel's `init_size`
    /// area is tens of MiB that it does not need cleared (Linux
    /// `Documentation/arch/x86/boot.rst`), and clearing it is a measurable
    /// share of the boot under emulation.
    pub fn allocate_with_room(
        len: usize,
        capacity: usize,
        memory_type: MemoryType,
        max_address: u64,
    ) -> Result<Self, Status> {
        let pages = pages_for(capacity.max(len)).ok_or(Status::OUT_OF_RESOURCES)?;
        let address = services::current()?.allocate_pages(
            AllocateType::MAX_ADDRESS,
            memory_type,
            pages,
            max_address,
        )?;
        Self::from_allocation(address, pages, len)
    }

    /// `len` zeroed bytes of `memory_type` pages at exactly `address`, with
    /// room for `capacity` bytes as in [`PageBuffer::allocate_with_room`].
    pub fn allocate_at(
        address: u64,
        len: usize,
        capacity: usize,
        memory_type: MemoryType,
    ) -> Result<Self, Status> {
        let pages = pages_for(capacity.max(len)).ok_or(Status::OUT_OF_RESOURCES)?;
        let address = services::current()?.allocate_pages(
            AllocateType::ADDRESS,
            memory_type,
            pages,
            address,
        )?;
        Self::from_allocation(address, pages, len)
    }

    fn from_allocation(address: PhysicalAddress, pages: usize, len: usize) -> Result<Self, Status> {
        let base = NonNull::new(address as *mut u8).ok_or(Status::OUT_OF_RESOURCES)?;
        // SAFETY: AllocatePages just gave us `pages` pages at `base`,
        // identity-mapped and owned by nobody else; `len` fits in them.
        unsafe { core::ptr::write_bytes(base.as_ptr(), 0, len) };
        Ok(PageBuffer { base, pages, len })
    }

    pub fn address(&self) -> u64 {
        self.base.as_ptr() as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `base` holds `pages * PAGE_SIZE >= len` bytes we own; the
        // first `len` were zeroed at allocation.
        unsafe { core::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(self.base.as_ptr(), self.len) }
    }

    /// Shortens the visible length (the pages stay allocated).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Gives the pages up without freeing them: they now belong to whatever
    /// the caller handed their address to (a kernel after ExitBootServices).
    pub fn leak(self) -> (u64, usize) {
        let kept = (self.address(), self.len);
        core::mem::forget(self);
        kept
    }
}

impl Drop for PageBuffer {
    fn drop(&mut self) {
        let status = services::current().map_or(Status::NOT_READY, |s| {
            s.free_pages(self.address(), self.pages)
        });
        if status.is_error() {
            log::warn!(
                "freeing {} pages at {:#x}: {status:?}",
                self.pages,
                self.address()
            );
        }
    }
}

/// Host tests: give the global memory map a page-aligned arena to allocate from.
#[cfg(test)]
pub(crate) fn test_arena() {
    use std::sync::Once;
    static ARENA: Once = Once::new();
    ARENA.call_once(|| {
        const SIZE: usize = 4 << 20;
        let layout = std::alloc::Layout::from_size_align(SIZE, PAGE_SIZE as usize).unwrap();
        // SAFETY: non-zero size; the arena is leaked for the process lifetime.
        let base = unsafe { std::alloc::alloc_zeroed(layout) } as u64;
        platform::memory::with_map(|m| m.add(base, SIZE as u64, MemoryType::CONVENTIONAL)).unwrap();
    });
    services::enter_for_tests();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_count_rounds_up_and_is_never_zero() {
        assert_eq!(pages_for(0), Some(1));
        assert_eq!(pages_for(1), Some(1));
        assert_eq!(pages_for(4096), Some(1));
        assert_eq!(pages_for(4097), Some(2));
        assert_eq!(pages_for(usize::MAX), None);
    }

    #[test]
    fn buffers_are_zeroed_writable_and_returned() {
        test_arena();
        let mut buffer = PageBuffer::allocate(5000, MemoryType::LOADER_DATA, u64::MAX).unwrap();
        assert_eq!(buffer.address() % PAGE_SIZE, 0);
        assert_eq!(buffer.len(), 5000);
        assert!(buffer.as_slice().iter().all(|&b| b == 0));
        buffer.as_mut_slice()[4999] = 7;
        assert_eq!(buffer.as_slice()[4999], 7);
        let address = buffer.address();
        drop(buffer);
        // Freed: the same pages can be had again at that address.
        let again = PageBuffer::allocate_at(address, 8192, 8192, MemoryType::LOADER_DATA).unwrap();
        assert_eq!(again.address(), address);
    }

    #[test]
    fn room_beyond_the_visible_bytes_is_reserved() {
        test_arena();
        let mut buffer =
            PageBuffer::allocate_with_room(100, 3 * 4096, MemoryType::LOADER_DATA, u64::MAX)
                .unwrap();
        assert_eq!(buffer.len(), 100);
        assert!(buffer.as_slice().iter().all(|&b| b == 0));
        let address = buffer.address();
        // All three pages are taken: none of them can be had at its address.
        for page in 0..3 {
            let at = address + page * PAGE_SIZE;
            assert!(PageBuffer::allocate_at(at, 1, 1, MemoryType::LOADER_DATA).is_err());
        }
        buffer.truncate(10);
        drop(buffer);
        let again = PageBuffer::allocate_at(address, 1, 3 * 4096, MemoryType::LOADER_DATA);
        assert!(again.is_ok(), "all three pages freed");
    }
}
