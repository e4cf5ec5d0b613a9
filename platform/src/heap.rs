//! The firmware heap: arenas of pages taken from the memory map as the heap
//! grows and given back when they empty, so the firmware's own footprint
//! follows what it uses (a few MiB) instead of a fixed reservation that was
//! a sixth of a 192 MiB VM.
//!
//! Each arena is a first-fit free list (`linked_list_allocator::Heap`). An
//! allocation that fits no arena adds one of at least [`GROW_STEP`] (a large
//! one gets an arena of its own size, returned whole when freed). Growth
//! needs the memory map, which may be busy: the allocator can be called from
//! inside `memory::with_map`. So the heap grows early, whenever an
//! allocation leaves less than [`LOW_WATER`] free, and allocations made while
//! the map is busy are served from that cushion.
//!
//! The heap lives in boot-services data: nothing in the firmware allocates
//! after ExitBootServices (runtime services use static buffers).

use crate::memory::{self, MemoryType, Placement};
use crate::sync::Global;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use linked_list_allocator::Heap;

const PAGE_SIZE: usize = 4096;
/// The least an arena grows by: few growths during a boot, little waste.
pub const GROW_STEP: usize = 2 << 20;
/// Free space below which the heap grows ahead of need (see the module doc).
pub const LOW_WATER: usize = 512 << 10;
/// Arenas at most; a heap needing more fails its allocations (they are
/// fallible) rather than tracking an unbounded list without a heap.
const MAX_ARENAS: usize = 64;
/// Room for the free list's bookkeeping and alignment inside an arena
/// created for one large allocation.
const ARENA_OVERHEAD: usize = 64;

/// Where arenas come from.
pub trait PageSource {
    /// `pages` 4 KiB pages, identity mapped read-write, or None when there is
    /// no memory or the source is busy.
    fn allocate_pages(&self, pages: usize) -> Option<usize>;
    /// Gives back pages [`PageSource::allocate_pages`] returned.
    ///
    /// # Safety
    /// Nothing may use the pages any more.
    unsafe fn free_pages(&self, base: usize, pages: usize);
}

/// The firmware's page source: boot-services data pages of the memory map.
/// When the map is busy (the allocator called from inside `with_map`), it
/// has nothing to give, and a release leaves the pages allocated until the
/// OS reclaims boot-services memory.
pub struct BootServicesPages;

impl PageSource for BootServicesPages {
    fn allocate_pages(&self, pages: usize) -> Option<usize> {
        memory::try_with_map(|m| {
            m.allocate(
                Placement::Anywhere,
                MemoryType::BOOT_SERVICES_DATA,
                pages as u64,
            )
        })?
        .ok()
        .map(|base| base as usize)
    }

    unsafe fn free_pages(&self, base: usize, pages: usize) {
        let _ = memory::try_with_map(|m| m.free(base as u64, pages as u64));
    }
}

struct Arena {
    heap: Heap,
    base: usize,
    pages: usize,
}

impl Arena {
    fn contains(&self, addr: usize) -> bool {
        (self.base..self.base + self.pages * PAGE_SIZE).contains(&addr)
    }
}

/// What the heap holds, for the firmware's memory report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes allocated now.
    pub used: usize,
    /// The most bytes allocated at once.
    pub high_water: usize,
    /// Bytes of pages the arenas hold now.
    pub arena_bytes: usize,
    /// Arenas now.
    pub arenas: usize,
}

struct State {
    arenas: [Option<Arena>; MAX_ARENAS],
    stats: HeapStats,
}

/// A heap that grows from a [`PageSource`]; usable as the global allocator.
pub struct GrowingHeap<S> {
    source: S,
    state: Global<State>,
}

impl<S: PageSource> GrowingHeap<S> {
    pub const fn new(source: S) -> Self {
        GrowingHeap {
            source,
            state: Global::new(State {
                arenas: [const { None }; MAX_ARENAS],
                stats: HeapStats {
                    used: 0,
                    high_water: 0,
                    arena_bytes: 0,
                    arenas: 0,
                },
            }),
        }
    }

    /// Takes the first arena; false when the source has no memory.
    pub fn init(&self) -> bool {
        self.state
            .try_with(|state| self.grow(state, GROW_STEP))
            .unwrap_or(false)
    }

    pub fn stats(&self) -> HeapStats {
        self.state.try_with(|s| s.stats).unwrap_or_default()
    }

    fn free_bytes(state: &State) -> usize {
        state.arenas.iter().flatten().map(|a| a.heap.free()).sum()
    }

    /// Adds an arena of at least `bytes`; false when none could be had.
    fn grow(&self, state: &mut State, bytes: usize) -> bool {
        let Some(slot) = state.arenas.iter_mut().find(|a| a.is_none()) else {
            return false;
        };
        let Some(pages) = bytes
            .max(GROW_STEP)
            .checked_next_multiple_of(PAGE_SIZE)
            .map(|b| b / PAGE_SIZE)
        else {
            return false;
        };
        let Some(base) = self.source.allocate_pages(pages) else {
            return false;
        };
        let mut heap = Heap::empty();
        // SAFETY: the source gave these pages to the heap alone, mapped
        // read-write; they stay until `release_empty` hands them back.
        unsafe { heap.init(base as *mut u8, pages * PAGE_SIZE) };
        *slot = Some(Arena { heap, base, pages });
        state.stats.arena_bytes += pages * PAGE_SIZE;
        state.stats.arenas += 1;
        true
    }

    fn allocate(&self, state: &mut State, layout: Layout) -> Option<NonNull<u8>> {
        let from_arenas = |state: &mut State| {
            state
                .arenas
                .iter_mut()
                .flatten()
                .find_map(|a| a.heap.allocate_first_fit(layout).ok())
        };
        let ptr = match from_arenas(state) {
            Some(ptr) => ptr,
            None => {
                let bytes = layout
                    .size()
                    .checked_add(layout.align())?
                    .checked_add(ARENA_OVERHEAD)?;
                if !self.grow(state, bytes) {
                    return None;
                }
                from_arenas(state)?
            }
        };
        state.stats.used += layout.size();
        state.stats.high_water = state.stats.high_water.max(state.stats.used);
        if Self::free_bytes(state) < LOW_WATER {
            // Best effort: a busy map leaves the cushion to serve until the
            // next allocation tries again.
            self.grow(state, GROW_STEP);
        }
        Some(ptr)
    }

    /// # Safety
    /// `ptr` came from `allocate` with `layout` and is not used any more.
    unsafe fn deallocate(&self, state: &mut State, ptr: *mut u8, layout: Layout) {
        let Some(index) = state
            .arenas
            .iter()
            .position(|a| a.as_ref().is_some_and(|a| a.contains(ptr as usize)))
        else {
            return;
        };
        let Some(arena) = state.arenas[index].as_mut() else {
            return;
        };
        // SAFETY: `ptr` lies in this arena, which allocated it with `layout`
        // (the caller's contract).
        unsafe { arena.heap.deallocate(NonNull::new_unchecked(ptr), layout) };
        state.stats.used = state.stats.used.saturating_sub(layout.size());
        self.release_empty(state, index);
    }

    /// Gives an emptied arena back when the others keep the cushion.
    fn release_empty(&self, state: &mut State, index: usize) {
        let Some(arena) = state.arenas[index].as_ref() else {
            return;
        };
        if arena.heap.used() != 0 || state.stats.arenas <= 1 {
            return;
        }
        let others_free = Self::free_bytes(state) - arena.heap.free();
        if others_free < LOW_WATER {
            return;
        }
        let (base, pages) = (arena.base, arena.pages);
        state.arenas[index] = None;
        state.stats.arena_bytes -= pages * PAGE_SIZE;
        state.stats.arenas -= 1;
        // SAFETY: the arena is empty and no longer listed.
        unsafe { self.source.free_pages(base, pages) };
    }
}

// SAFETY: `alloc` returns blocks of `layout` from arenas only this heap uses,
// or null; `dealloc` takes back only blocks it handed out. Re-entry (the page
// source allocating) finds the state busy and fails the inner allocation.
unsafe impl<S: PageSource> GlobalAlloc for GrowingHeap<S> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.state
            .try_with(|state| self.allocate(state, layout))
            .flatten()
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `deallocate`'s.
        let _ = self
            .state
            .try_with(|state| unsafe { self.deallocate(state, ptr, layout) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{alloc, dealloc};
    use std::cell::{Cell, RefCell};
    use std::vec::Vec;

    /// Pages from the host heap, with a budget and a busy switch.
    struct HostPages {
        budget: Cell<usize>,
        busy: Cell<bool>,
        live: RefCell<Vec<(usize, usize)>>,
    }

    impl HostPages {
        fn new(budget_pages: usize) -> Self {
            HostPages {
                budget: Cell::new(budget_pages),
                busy: Cell::new(false),
                live: RefCell::new(Vec::new()),
            }
        }
    }

    fn page_layout(pages: usize) -> Layout {
        Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).unwrap()
    }

    impl PageSource for &HostPages {
        fn allocate_pages(&self, pages: usize) -> Option<usize> {
            if self.busy.get() || pages > self.budget.get() {
                return None;
            }
            self.budget.set(self.budget.get() - pages);
            // SAFETY: a non-zero size.
            let base = unsafe { alloc(page_layout(pages)) } as usize;
            self.live.borrow_mut().push((base, pages));
            Some(base)
        }

        unsafe fn free_pages(&self, base: usize, pages: usize) {
            self.budget.set(self.budget.get() + pages);
            self.live.borrow_mut().retain(|&(b, _)| b != base);
            // SAFETY: allocated above with this layout.
            unsafe { dealloc(base as *mut u8, page_layout(pages)) };
        }
    }

    fn layout(bytes: usize) -> Layout {
        Layout::from_size_align(bytes, 8).unwrap()
    }

    #[test]
    fn starts_with_one_step_and_grows_for_a_large_block() {
        let pages = HostPages::new(10_000);
        let heap = GrowingHeap::new(&pages);
        assert!(heap.init());
        assert_eq!(heap.stats().arena_bytes, GROW_STEP);
        // SAFETY: valid layouts; the blocks are freed with them.
        unsafe {
            let big = heap.alloc(layout(10 << 20));
            assert!(!big.is_null());
            assert!(heap.stats().arena_bytes >= GROW_STEP + (10 << 20));
            assert_eq!(heap.stats().high_water, 10 << 20);
            heap.dealloc(big, layout(10 << 20));
        }
        // The large arena went back; the first stays.
        assert_eq!(heap.stats().arena_bytes, GROW_STEP);
        assert_eq!(heap.stats().arenas, 1);
        assert_eq!(pages.live.borrow().len(), 1);
    }

    #[test]
    fn exhaustion_is_a_null_not_a_panic() {
        let pages = HostPages::new(GROW_STEP / PAGE_SIZE + 10);
        let heap = GrowingHeap::new(&pages);
        assert!(heap.init());
        // SAFETY: a valid layout.
        let block = unsafe { heap.alloc(layout(8 << 20)) };
        assert!(block.is_null());
        // Small allocations still work.
        // SAFETY: a valid layout, freed with it.
        unsafe {
            let small = heap.alloc(layout(100));
            assert!(!small.is_null());
            heap.dealloc(small, layout(100));
        }
    }

    #[test]
    fn grows_ahead_of_need_so_a_busy_source_is_survived() {
        let pages = HostPages::new(10_000);
        let heap = GrowingHeap::new(&pages);
        assert!(heap.init());
        // Use the first arena down to the cushion: the heap grows early.
        let block = GROW_STEP - LOW_WATER + 4096;
        // SAFETY: valid layouts.
        let first = unsafe { heap.alloc(layout(block)) };
        assert!(!first.is_null());
        assert_eq!(heap.stats().arenas, 2, "grew below the low-water mark");
        // With the source busy, allocations up to the cushion still succeed.
        pages.busy.set(true);
        // SAFETY: valid layouts, freed with them.
        unsafe {
            let during = heap.alloc(layout(LOW_WATER));
            assert!(!during.is_null());
            heap.dealloc(during, layout(LOW_WATER));
            heap.dealloc(first, layout(block));
        }
    }

    #[test]
    fn foreign_pointers_are_ignored() {
        let pages = HostPages::new(10_000);
        let heap = GrowingHeap::new(&pages);
        assert!(heap.init());
        let mut outside = [0u64; 4];
        // SAFETY: the pointer is not the heap's; dealloc must ignore it.
        unsafe { heap.dealloc(outside.as_mut_ptr().cast(), layout(32)) };
        assert_eq!(heap.stats().used, 0);
    }
}
