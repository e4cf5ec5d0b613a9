//! A fixed arena for the allocations of one firmware call, usable after
//! ExitBootServices, when the boot-services heap ([`crate::heap`]) belongs
//! to the OS.
//!
//! Secure Boot's authenticated SetVariable (UEFI 2.10 §8.2.2) parses DER
//! and verifies RSA signatures with crates that allocate; at runtime it
//! still has to work (Linux writes db/dbx through efivarfs). So the global
//! allocator ([`WithCallArena`]) serves every allocation made inside
//! [`with_call_arena`] from a static buffer in the firmware image (its bss
//! is EfiRuntimeServicesData, which the OS keeps and maps), and the buffer
//! is re-initialised at the start of each such call: no pointer into it
//! outlives a call, so nothing in it needs converting when
//! SetVirtualAddressMap moves the firmware. Blocks freed after the call
//! are forgotten with the arena. Callers bound their inputs so that a call
//! fits ([`ARENA_SIZE`]); the firmware runs with interrupts off, so
//! nothing else allocates while a call runs.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use linked_list_allocator::Heap;

use crate::sync::Global;

/// Bytes of the arena (see `efi::secure_boot` for what one call needs).
pub const ARENA_SIZE: usize = 384 << 10;

/// The arena's memory, page aligned; only reached through a raw pointer.
#[repr(C, align(4096))]
struct Buffer(#[allow(dead_code)] [u8; ARENA_SIZE]);

static mut BUFFER: Buffer = Buffer([0; ARENA_SIZE]);
static ACTIVE: AtomicBool = AtomicBool::new(false);
static ARENA: Global<Heap> = Global::new(Heap::empty());
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The buffer's first byte (its address now: after SetVirtualAddressMap
/// the code runs at the new one).
fn buffer_start() -> *mut u8 {
    (&raw mut BUFFER).cast::<u8>()
}

fn buffer_range() -> (usize, usize) {
    let base = buffer_start() as usize;
    (base, base + ARENA_SIZE)
}

/// Runs `f` with every allocation served from the arena, emptied first;
/// returns its result and the most the arena held during it. A nested
/// call runs in the outer one's arena.
pub fn with_call_arena<R>(f: impl FnOnce() -> R) -> (R, usize) {
    if ACTIVE.load(Ordering::Relaxed) {
        return (f(), 0);
    }
    let ready = ARENA.try_with(|heap| {
        let mut fresh = Heap::empty();
        // SAFETY: the buffer is the arena's alone; no block handed out
        // from it is in use any more (calls do not nest past here and
        // blocks do not outlive one), so it may be reused whole.
        unsafe { fresh.init(buffer_start(), ARENA_SIZE) };
        *heap = fresh;
    });
    if ready.is_none() {
        return (f(), 0);
    }
    PEAK.store(0, Ordering::Relaxed);
    ACTIVE.store(true, Ordering::Relaxed);
    let result = f();
    ACTIVE.store(false, Ordering::Relaxed);
    (result, PEAK.load(Ordering::Relaxed))
}

/// The global allocator: `boot` outside [`with_call_arena`], the arena
/// inside it.
pub struct WithCallArena<A> {
    pub boot: A,
}

// SAFETY: inside a call, blocks come from the arena buffer only this
// allocator uses (or null when it is full); a block is returned to the
// allocator it came from, told apart by its address; arena blocks freed
// after their call are dropped with the arena.
unsafe impl<A: GlobalAlloc> GlobalAlloc for WithCallArena<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !ACTIVE.load(Ordering::Relaxed) {
            // SAFETY: the caller's contract, passed on.
            return unsafe { self.boot.alloc(layout) };
        }
        ARENA
            .try_with(|heap| {
                let block = heap.allocate_first_fit(layout).ok()?;
                PEAK.fetch_max(heap.used(), Ordering::Relaxed);
                Some(block)
            })
            .flatten()
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let (start, end) = buffer_range();
        if !(start..end).contains(&(block as usize)) {
            // SAFETY: not an arena block, so one `boot` handed out.
            return unsafe { self.boot.dealloc(block, layout) };
        }
        if !ACTIVE.load(Ordering::Relaxed) {
            return;
        }
        let _ = ARENA.try_with(|heap| {
            // SAFETY: an arena block of this call, allocated with `layout`.
            unsafe { heap.deallocate(NonNull::new_unchecked(block), layout) }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_allocates_from_the_arena_and_forgets_it_after() {
        let allocator = WithCallArena {
            boot: std::alloc::System,
        };
        let layout = Layout::from_size_align(64, 8).unwrap();
        let (start, end) = buffer_range();
        // SAFETY: a non-zero-sized layout, as GlobalAlloc::alloc requires.
        let alloc = |layout| unsafe { allocator.alloc(layout) };
        let (inside, peak) = with_call_arena(|| alloc(layout) as usize);
        assert!((start..end).contains(&inside));
        assert!(peak >= 64, "{peak}");
        // After the call: the boot allocator again; the arena block is
        // forgotten, not handed to it.
        let outside = alloc(layout);
        assert!(!(start..end).contains(&(outside as usize)));
        // SAFETY: both blocks came from `allocator` with `layout`.
        unsafe {
            allocator.dealloc(outside, layout);
            allocator.dealloc(inside as *mut u8, layout);
        }
        // The next call starts empty; more than the arena holds is null.
        let huge = Layout::from_size_align(ARENA_SIZE + 1, 8).unwrap();
        let (first, _) = with_call_arena(|| alloc(layout) as usize);
        assert_eq!(first, inside);
        let (null, _) = with_call_arena(|| alloc(huge));
        assert!(null.is_null());
    }
}
