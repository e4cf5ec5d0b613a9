//! Memory allocation services (UEFI 2.10 §7.2).

// EFI services are safe `extern "efiapi" fn`s (the table's field types) whose
// pointer arguments the spec makes the caller responsible for.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::boundary::{read, write};
use crate::pool;
use core::ffi::c_void;
use platform::memory::{self, MemoryError, MemoryType, PAGE_SIZE, Placement};
use r_efi::efi::{AllocateType, MemoryDescriptor, PhysicalAddress, Status};

/// Descriptor stride we report; larger than the struct, as edk2 does, so
/// callers that ignore DescriptorSize are caught early.
pub const DESCRIPTOR_SIZE: usize = 48;
pub const DESCRIPTOR_VERSION: u32 = 1;

/// Types a caller may allocate: the spec's types other than conventional,
/// persistent and unaccepted memory, plus the OEM and OS ranges (§7.2.1).
fn allocatable(ty: u32) -> bool {
    let ty = MemoryType(ty);
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

pub extern "efiapi" fn allocate_pages(
    kind: AllocateType,
    ty: u32,
    pages: usize,
    address: *mut PhysicalAddress,
) -> Status {
    let result = (|| {
        if !allocatable(ty) {
            return Err(Status::INVALID_PARAMETER);
        }
        let requested = read(address)?;
        let placement = match kind {
            r_efi::efi::ALLOCATE_ANY_PAGES => Placement::Anywhere,
            r_efi::efi::ALLOCATE_MAX_ADDRESS => Placement::MaxAddress(requested),
            r_efi::efi::ALLOCATE_ADDRESS => {
                if requested % PAGE_SIZE != 0 {
                    return Err(Status::NOT_FOUND);
                }
                Placement::Address(requested)
            }
            _ => return Err(Status::INVALID_PARAMETER),
        };
        let base = memory::with_map(|m| m.allocate(placement, MemoryType(ty), pages as u64))
            .map_err(to_status)?;
        write(address, base)
    })();
    crate::boundary::status(result)
}

pub extern "efiapi" fn free_pages(address: PhysicalAddress, pages: usize) -> Status {
    match memory::with_map(|m| m.free(address, pages as u64)) {
        Ok(()) => {
            crate::memory_attribute::release(address..address + pages as u64 * PAGE_SIZE);
            Status::SUCCESS
        }
        Err(MemoryError::Misaligned(_)) => Status::INVALID_PARAMETER,
        Err(_) => Status::NOT_FOUND,
    }
}

pub extern "efiapi" fn get_memory_map(
    map_size: *mut usize,
    map: *mut MemoryDescriptor,
    map_key: *mut usize,
    descriptor_size: *mut usize,
    descriptor_version: *mut u32,
) -> Status {
    let result = (|| {
        let available = read(map_size)?;
        memory::with_map(|m| {
            let needed = m.regions().len() * DESCRIPTOR_SIZE;
            write(map_size, needed)?;
            // Reported even on BUFFER_TOO_SMALL so callers can size buffers.
            if !descriptor_size.is_null() {
                write(descriptor_size, DESCRIPTOR_SIZE)?;
            }
            if !descriptor_version.is_null() {
                write(descriptor_version, DESCRIPTOR_VERSION)?;
            }
            if available < needed {
                return Err(Status::BUFFER_TOO_SMALL);
            }
            if map.is_null() || map_key.is_null() {
                return Err(Status::INVALID_PARAMETER);
            }
            for (i, r) in m.regions().iter().enumerate() {
                let descriptor = MemoryDescriptor {
                    r#type: r.ty.0,
                    physical_start: r.start,
                    virtual_start: 0,
                    number_of_pages: r.pages,
                    attribute: r.attribute.bits(),
                };
                // SAFETY: the caller's buffer holds `available >= needed`
                // bytes, so descriptor i at i * DESCRIPTOR_SIZE fits.
                let slot =
                    unsafe { (map as *mut u8).add(i * DESCRIPTOR_SIZE) } as *mut MemoryDescriptor;
                write(slot, descriptor)?;
            }
            write(map_key, m.key() as usize)
        })
    })();
    crate::boundary::status(result)
}

pub extern "efiapi" fn allocate_pool(ty: u32, size: usize, buffer: *mut *mut c_void) -> Status {
    let result = (|| {
        if !allocatable(ty) || buffer.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let ptr = pool::allocate(MemoryType(ty), size)?;
        write(buffer, ptr as *mut c_void)
    })();
    crate::boundary::status(result)
}

pub extern "efiapi" fn free_pool(buffer: *mut c_void) -> Status {
    crate::boundary::status(pool::free(buffer as *mut u8))
}

/// Current map key, for ExitBootServices.
pub fn map_key() -> usize {
    memory::with_map(|m| m.key() as usize)
}
