//! AllocatePool/FreePool (UEFI 2.10 §7.2.4): sub-page allocations carved from
//! page runs of the requested memory type, so GetMemoryMap shows pool memory
//! with the type it was asked for. Each block carries a header naming its
//! chunk; FreePool only trusts a pointer after finding it inside a chunk.

use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;
use linked_list_allocator::Heap;
use platform::memory::{self, MemoryType, PAGE_SIZE, Placement};
use platform::sync::Global;
use uefi_raw::Status;

const HEADER: usize = 16;
const MAGIC: u32 = 0x6c6f_6f70; // "pool"
const MIN_CHUNK: u64 = 64 * 1024;

struct Chunk {
    base: u64,
    pages: u64,
    ty: MemoryType,
    heap: Heap,
}

// SAFETY: the heap's raw pointers refer to identity-mapped memory owned by
// the chunk; the firmware is single-threaded.
unsafe impl Send for Chunk {}

static CHUNKS: Global<Vec<Chunk>> = Global::new(Vec::new());

#[repr(C)]
struct Header {
    magic: u32,
    ty: u32,
    size: u64,
}

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, 8).ok()
}

pub fn allocate(ty: MemoryType, size: usize) -> Result<*mut u8, Status> {
    let layout = layout(size).ok_or(Status::OUT_OF_RESOURCES)?;
    CHUNKS.with(|chunks| {
        let block = match chunks
            .iter_mut()
            .filter(|c| c.ty == ty)
            .find_map(|c| c.heap.allocate_first_fit(layout).ok())
        {
            Some(block) => block,
            None => {
                let bytes =
                    ((layout.size() as u64 + 64).max(MIN_CHUNK) + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
                let pages = bytes / PAGE_SIZE;
                // The chunk list grows with the caller's allocations: room
                // for its entry first, so no failure is left holding pages.
                chunks
                    .try_reserve(1)
                    .map_err(|_| Status::OUT_OF_RESOURCES)?;
                let base = memory::with_map(|m| m.allocate(Placement::Anywhere, ty, pages))
                    .map_err(|_| Status::OUT_OF_RESOURCES)?;
                // SAFETY: the pages were just allocated for this chunk alone.
                let heap = unsafe { Heap::new(base as *mut u8, bytes as usize) };
                chunks.push(Chunk {
                    base,
                    pages,
                    ty,
                    heap,
                });
                let chunk = chunks.last_mut().ok_or(Status::OUT_OF_RESOURCES)?;
                chunk
                    .heap
                    .allocate_first_fit(layout)
                    .map_err(|_| Status::OUT_OF_RESOURCES)?
            }
        };
        let header = block.as_ptr() as *mut Header;
        // SAFETY: `block` is a fresh allocation of at least HEADER bytes,
        // 8-aligned, that nobody else references.
        unsafe {
            header.write(Header {
                magic: MAGIC,
                ty: ty.0,
                size: size as u64,
            })
        };
        // SAFETY: the block is HEADER + size bytes long.
        Ok(unsafe { block.as_ptr().add(HEADER) })
    })
}

pub fn free(ptr: *mut u8) -> Result<(), Status> {
    if ptr.is_null() || !(ptr as usize).is_multiple_of(8) {
        return Err(Status::INVALID_PARAMETER);
    }
    let addr = ptr as u64;
    CHUNKS.with(|chunks| {
        let chunk = chunks
            .iter_mut()
            .find(|c| c.base + HEADER as u64 <= addr && addr < c.base + c.pages * PAGE_SIZE)
            .ok_or(Status::INVALID_PARAMETER)?;
        let header = (addr - HEADER as u64) as *mut Header;
        // SAFETY: the address lies inside one of our chunks, so the header
        // location is mapped memory we own; a stale or forged pointer reads
        // some other header-sized part of the chunk, caught by the magic.
        let Header { magic, size, .. } = unsafe { header.read() };
        if magic != MAGIC {
            return Err(Status::INVALID_PARAMETER);
        }
        let layout = layout(size as usize).ok_or(Status::INVALID_PARAMETER)?;
        // SAFETY: clear the magic so a double free is caught; the header is ours.
        unsafe { (*header).magic = 0 };
        let block = NonNull::new(header as *mut u8).ok_or(Status::INVALID_PARAMETER)?;
        // SAFETY: `block` came from this chunk's heap with this layout (the
        // magic and size recorded at allocation say so).
        unsafe { chunk.heap.deallocate(block, layout) };
        Ok(())
    })
}
