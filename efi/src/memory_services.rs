//! Memory allocation services (UEFI 2.10 §7.2).

use crate::boundary::{read, write};
use crate::pool;
use crate::spec_gaps;
use platform::memory::{self, MemoryError, MemoryType, PAGE_SIZE, Placement};
use uefi_raw::table::boot::{AllocateType, MemoryDescriptor};
use uefi_raw::{PhysicalAddress, Status};

/// Descriptor stride we report; larger than the struct, as edk2 does, so
/// callers that ignore DescriptorSize are caught early.
pub const DESCRIPTOR_SIZE: usize = 48;
pub const DESCRIPTOR_VERSION: u32 = 1;

/// Types a caller may allocate: the spec's types other than conventional,
/// persistent and unaccepted memory, plus the OEM and OS ranges (§7.2.1).
fn allocatable(ty: MemoryType) -> bool {
    match ty.0 {
        0x7000_0000.. => true,
        _ => ty.0 <= MemoryType::PAL_CODE.0 && ty != MemoryType::CONVENTIONAL,
    }
}

fn to_status(e: MemoryError) -> Status {
    match e {
        MemoryError::OutOfMemory { .. } | MemoryError::MapFull => Status::OUT_OF_RESOURCES,
        MemoryError::NotFree { .. } | MemoryError::NotAllocated { .. } => Status::NOT_FOUND,
        MemoryError::Misaligned(_) => Status::INVALID_PARAMETER,
    }
}

/// Runs `service` and, if it changed the memory map (its key moved),
/// signals EFI_EVENT_GROUP_MEMORY_MAP_CHANGE (UEFI 2.10 §7.1.2) once the
/// map is no longer borrowed. Pool requests served from an existing chunk
/// leave the map, and so the key, alone.
fn signalling_map_change(service: impl FnOnce() -> Status) -> Status {
    let before = map_key();
    let status = service();
    if map_key() != before {
        crate::events::signal_group_event(&spec_gaps::EVENT_GROUP_MEMORY_MAP_CHANGE);
    }
    status
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.2 requires of the caller.
pub unsafe extern "efiapi" fn allocate_pages(
    kind: AllocateType,
    ty: MemoryType,
    pages: usize,
    address: *mut PhysicalAddress,
) -> Status {
    signalling_map_change(|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { allocate_pages_unsignalled(kind, ty, pages, address) }
    })
}

/// AllocatePages without the memory map change signal.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §7.2 requires of the caller.
unsafe fn allocate_pages_unsignalled(
    kind: AllocateType,
    ty: MemoryType,
    pages: usize,
    address: *mut PhysicalAddress,
) -> Status {
    let result = (|| {
        if !allocatable(ty) {
            return Err(Status::INVALID_PARAMETER);
        }
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let requested = unsafe { read(address) }?;
        let placement = match kind {
            AllocateType::ANY_PAGES => Placement::Anywhere,
            AllocateType::MAX_ADDRESS => Placement::MaxAddress(requested),
            AllocateType::ADDRESS => {
                if requested % PAGE_SIZE != 0 {
                    return Err(Status::NOT_FOUND);
                }
                Placement::Address(requested)
            }
            _ => return Err(Status::INVALID_PARAMETER),
        };
        let base = memory::with_map(|m| m.allocate(placement, ty, pages as u64)).map_err(|e| {
            // Debug level: a loader that runs out of memory (GRUB's "out of
            // memory") then shows what it asked for.
            log::debug!("AllocatePages({placement:?}, {pages} pages): {e}");
            to_status(e)
        })?;
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { write(address, base) }
    })();
    crate::boundary::status(result)
}

/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.2): every
/// argument is a value, and handles and events are only looked up.
pub unsafe extern "efiapi" fn free_pages(address: PhysicalAddress, pages: usize) -> Status {
    signalling_map_change(|| free_pages_unsignalled(address, pages))
}

fn free_pages_unsignalled(address: PhysicalAddress, pages: usize) -> Status {
    match memory::with_map(|m| m.free(address, pages as u64)) {
        Ok(()) => {
            crate::memory_attribute::release(address..address + pages as u64 * PAGE_SIZE);
            Status::SUCCESS
        }
        Err(MemoryError::Misaligned(_)) => Status::INVALID_PARAMETER,
        Err(_) => Status::NOT_FOUND,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.2 requires of the caller.
pub unsafe extern "efiapi" fn get_memory_map(
    map_size: *mut usize,
    map: *mut MemoryDescriptor,
    map_key: *mut usize,
    descriptor_size: *mut usize,
    descriptor_version: *mut u32,
) -> Status {
    let result = (|| {
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        let available = unsafe { read(map_size) }?;
        memory::with_map(|m| {
            let needed = m.regions().len() * DESCRIPTOR_SIZE;
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            unsafe { write(map_size, needed) }?;
            // Reported even on BUFFER_TOO_SMALL so callers can size buffers.
            if !descriptor_size.is_null() {
                // SAFETY: the caller's pointers, as this function's # Safety requires.
                unsafe { write(descriptor_size, DESCRIPTOR_SIZE) }?;
            }
            if !descriptor_version.is_null() {
                // SAFETY: the caller's pointers, as this function's # Safety requires.
                unsafe { write(descriptor_version, DESCRIPTOR_VERSION) }?;
            }
            if available < needed {
                return Err(Status::BUFFER_TOO_SMALL);
            }
            if map.is_null() || map_key.is_null() {
                return Err(Status::INVALID_PARAMETER);
            }
            for (i, r) in m.regions().iter().enumerate() {
                let descriptor = MemoryDescriptor {
                    ty: r.ty,
                    padding: 0,
                    phys_start: r.start,
                    virt_start: 0,
                    page_count: r.pages,
                    att: r.attribute,
                };
                // SAFETY: the caller's buffer holds `available >= needed`
                // bytes, so descriptor i at i * DESCRIPTOR_SIZE fits.
                let slot =
                    unsafe { (map as *mut u8).add(i * DESCRIPTOR_SIZE) } as *mut MemoryDescriptor;
                // SAFETY: the caller's pointers, as this function's # Safety requires.
                unsafe { write(slot, descriptor) }?;
            }
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            unsafe { write(map_key, m.key() as usize) }
        })
    })();
    crate::boundary::status(result)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.2 requires of the caller.
pub unsafe extern "efiapi" fn allocate_pool(
    ty: MemoryType,
    size: usize,
    buffer: *mut *mut u8,
) -> Status {
    signalling_map_change(|| {
        let result = (|| {
            if !allocatable(ty) || buffer.is_null() {
                return Err(Status::INVALID_PARAMETER);
            }
            let ptr = pool::allocate(ty, size)?;
            // SAFETY: the caller's pointers, as this function's # Safety requires.
            unsafe { write(buffer, ptr) }
        })();
        crate::boundary::status(result)
    })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.2 requires of the caller.
pub unsafe extern "efiapi" fn free_pool(buffer: *mut u8) -> Status {
    // The pool keeps its chunks, so today this never changes the map; the
    // check keeps the rule true if it ever returns pages.
    signalling_map_change(|| crate::boundary::status(pool::free(buffer)))
}

/// Current map key, for ExitBootServices.
pub fn map_key() -> usize {
    memory::with_map(|m| m.key() as usize)
}
