//! EFI_MEMORY_ATTRIBUTE_PROTOCOL (UEFI 2.10 §37.7): lets shim and the Linux
//! EFI stub map the images they load W^X. The page tables
//! (`platform::paging`) are the only state: Get reads them, Set/Clear add or
//! remove the EFI_MEMORY_RP/RO/XP restrictions page by page.
//!
//! Only memory the firmware allocated (loader, boot-services and
//! runtime-services code/data) may change, never the firmware's own image:
//! an application must not be able to make firmware code writable.

use crate::boundary;
use crate::handles::HandleId;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ops::Range;
use platform::memory::{self, MemoryAttribute, MemoryType, PAGE_SIZE, Region};
use platform::paging::{self, Access};
use platform::sync::Global;
use uefi_raw::protocol::memory_protection::MemoryAttributeProtocol as Protocol;
use uefi_raw::{PhysicalAddress, Status};

/// EFI_MEMORY_RP, EFI_MEMORY_RO and EFI_MEMORY_XP: the attributes this
/// protocol sets and clears (EFI_MEMORY_ACCESS_MASK, §7.2.3).
const RP: MemoryAttribute = MemoryAttribute::READ_PROTECT;
const RO: MemoryAttribute = MemoryAttribute::READ_ONLY;
const XP: MemoryAttribute = MemoryAttribute::EXECUTE_PROTECT;
const ACCESS_MASK: MemoryAttribute = RP.union(RO).union(XP);

/// The firmware image, whose rights are fixed.
static FIRMWARE: Global<Range<u64>> = Global::new(0..0);

/// Ranges whose rights were restricted (through this protocol or by
/// LoadImage mapping an image W^X). Freeing memory in them gives the pages
/// back their default read-write-execute rights, so the next owner of the
/// pages (the firmware's own pool among others) does not fault.
static RESTRICTED: Global<Vec<Range<u64>>> = Global::new(Vec::new());

/// Sets the rights of `range` (page aligned) and remembers it for `release`.
pub fn restrict(range: Range<u64>, access: Access) {
    paging::set_access(range.start, range.end - range.start, access);
    RESTRICTED.with(|r| r.push(range));
}

/// Restores default rights to the restricted parts of `freed`; called
/// when pages are freed.
pub fn release(freed: Range<u64>) {
    let pieces = RESTRICTED.with(|r| take_overlaps(r, &freed));
    for piece in pieces {
        paging::set_access(piece.start, piece.end - piece.start, Access::RWX);
    }
}

/// Removes `freed` from the ranges in `tracked`, returning the parts that
/// were in it.
fn take_overlaps(tracked: &mut Vec<Range<u64>>, freed: &Range<u64>) -> Vec<Range<u64>> {
    let mut taken = Vec::new();
    let mut kept = Vec::with_capacity(tracked.len());
    for range in tracked.drain(..) {
        let (start, end) = (range.start.max(freed.start), range.end.min(freed.end));
        if start >= end {
            kept.push(range);
            continue;
        }
        taken.push(start..end);
        if range.start < start {
            kept.push(range.start..start);
        }
        if end < range.end {
            kept.push(end..range.end);
        }
    }
    *tracked = kept;
    taken
}

/// The EFI_MEMORY_* access attributes describing `access`. XP is reported
/// only when the CPU enforces it.
pub fn attributes_of(access: Access, nx: bool) -> MemoryAttribute {
    let mut attributes = MemoryAttribute::empty();
    if !access.present {
        attributes |= RP;
    }
    if !access.writable {
        attributes |= RO;
    }
    if !access.executable && nx {
        attributes |= XP;
    }
    attributes
}

/// `access` with the restrictions in `attributes` added (`set`) or removed.
pub fn apply(access: Access, attributes: MemoryAttribute, set: bool) -> Access {
    let mut access = access;
    if attributes.contains(RP) {
        access.present = !set;
    }
    if attributes.contains(RO) {
        access.writable = !set;
    }
    if attributes.contains(XP) {
        access.executable = !set;
    }
    access
}

/// Checks a range argument: non-empty, page aligned, no overflow.
pub fn check_range(base: u64, length: u64) -> Result<Range<u64>, Status> {
    if length == 0 || !base.is_multiple_of(PAGE_SIZE) || !length.is_multiple_of(PAGE_SIZE) {
        return Err(Status::INVALID_PARAMETER);
    }
    let end = base.checked_add(length).ok_or(Status::INVALID_PARAMETER)?;
    Ok(base..end)
}

/// Checks the attribute mask of Set/ClearMemoryAttributes.
pub fn check_attributes(attributes: MemoryAttribute, nx: bool) -> Result<(), Status> {
    if attributes.is_empty() {
        return Err(Status::INVALID_PARAMETER);
    }
    // On raw bits: a caller's value may hold bits no flag names.
    if attributes.bits() & !ACCESS_MASK.bits() != 0 || (attributes.contains(XP) && !nx) {
        return Err(Status::UNSUPPORTED);
    }
    Ok(())
}

/// Whether `range` may change rights: wholly inside memory allocated as code
/// or data (not free, reserved or MMIO) and outside the firmware image.
pub fn check_changeable(
    range: &Range<u64>,
    regions: &[Region],
    firmware: &Range<u64>,
) -> Result<(), Status> {
    if range.start < firmware.end && firmware.start < range.end {
        return Err(Status::ACCESS_DENIED);
    }
    let mut covered = range.start;
    while covered < range.end {
        let region = regions
            .iter()
            .find(|r| r.start <= covered && covered < r.end())
            .ok_or(Status::INVALID_PARAMETER)?;
        if !matches!(
            region.ty,
            MemoryType::LOADER_CODE
                | MemoryType::LOADER_DATA
                | MemoryType::BOOT_SERVICES_CODE
                | MemoryType::BOOT_SERVICES_DATA
                | MemoryType::RUNTIME_SERVICES_CODE
                | MemoryType::RUNTIME_SERVICES_DATA
        ) {
            return Err(Status::INVALID_PARAMETER);
        }
        covered = region.end();
    }
    Ok(())
}

/// GetMemoryAttributes: the access attributes shared by the whole range, or
/// EFI_NO_MAPPING when they differ.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §37.7 requires of the caller.
unsafe extern "efiapi" fn get_memory_attributes(
    _this: *const Protocol,
    base: PhysicalAddress,
    length: u64,
    attributes: *mut MemoryAttribute,
) -> Status {
    let result = (|| {
        if attributes.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        let range = check_range(base, length)?;
        let nx = paging::nx_supported();
        let mut common = None;
        let mut addr = range.start;
        while addr < range.end {
            let (access, size) = paging::access(addr).ok_or(Status::UNSUPPORTED)?;
            let here = attributes_of(access, nx);
            if common.is_some_and(|c| c != here) {
                return Err(Status::NO_MAPPING);
            }
            common = Some(here);
            // Next mapping: the end of the page (of `size`) holding `addr`.
            addr = (addr & !(size - 1)).saturating_add(size);
        }
        // SAFETY: the caller's pointers, as this function's # Safety requires.
        unsafe { boundary::write(attributes, common.unwrap_or(MemoryAttribute::empty())) }
    })();
    boundary::status(result)
}

fn change(base: u64, length: u64, attributes: MemoryAttribute, set: bool) -> Status {
    let result = (|| {
        let range = check_range(base, length)?;
        let nx = paging::nx_supported();
        check_attributes(attributes, nx)?;
        let firmware = FIRMWARE.with(|f| f.clone());
        memory::with_map(|m| check_changeable(&range, m.regions(), &firmware))?;
        paging::modify_access(range.start, length, |access| apply(access, attributes, set));
        if set {
            RESTRICTED.with(|r| r.push(range));
        }
        Ok(())
    })();
    boundary::status(result)
}

/// SetMemoryAttributes: adds the restrictions in `attributes`.
///
/// # Safety
/// None beyond the calling convention: `this` is not dereferenced.
unsafe extern "efiapi" fn set_memory_attributes(
    _this: *const Protocol,
    base: PhysicalAddress,
    length: u64,
    attributes: MemoryAttribute,
) -> Status {
    change(base, length, attributes, true)
}

/// ClearMemoryAttributes: removes the restrictions in `attributes`.
///
/// # Safety
/// None beyond the calling convention: `this` is not dereferenced.
unsafe extern "efiapi" fn clear_memory_attributes(
    _this: *const Protocol,
    base: PhysicalAddress,
    length: u64,
    attributes: MemoryAttribute,
) -> Status {
    change(base, length, attributes, false)
}

/// Installs the protocol on a new handle; `firmware` is the firmware
/// image's address range, whose rights callers may not change.
pub fn install(firmware: Range<u64>) -> Result<HandleId, Status> {
    FIRMWARE.with(|f| *f = firmware);
    let protocol = Box::leak(Box::new(Protocol {
        get_memory_attributes,
        set_memory_attributes,
        clear_memory_attributes,
    }));
    crate::protocol_services::install(
        None,
        &[(Protocol::GUID, protocol as *mut Protocol as *mut c_void)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: u64, pages: u64, ty: MemoryType) -> Region {
        Region {
            start,
            pages,
            ty,
            attribute: MemoryAttribute::WRITE_BACK,
            freeable: true,
        }
    }

    #[test]
    fn attributes_round_trip_through_access() {
        let none = MemoryAttribute::empty();
        assert_eq!(attributes_of(Access::RWX, true), none);
        assert_eq!(attributes_of(Access::RX, true), RO);
        assert_eq!(attributes_of(Access::RW, true), XP);
        assert_eq!(attributes_of(Access::RW, false), none);
        assert_eq!(attributes_of(Access::NONE, true), RP | RO | XP);
        assert_eq!(apply(Access::RWX, RO, true), Access::RX);
        assert_eq!(apply(Access::RX, RO, false), Access::RWX);
        assert_eq!(apply(Access::RWX, XP, true), Access::RW);
        assert_eq!(apply(Access::RW, RO | XP, true), Access::RO);
        assert!(!apply(Access::RW, RP, true).present);
    }

    #[test]
    fn ranges_must_be_page_aligned_and_non_empty() {
        assert_eq!(check_range(0x1000, 0x2000), Ok(0x1000..0x3000));
        assert_eq!(check_range(0x1000, 0), Err(Status::INVALID_PARAMETER));
        assert_eq!(check_range(0x1001, 0x1000), Err(Status::INVALID_PARAMETER));
        assert_eq!(check_range(0x1000, 0x800), Err(Status::INVALID_PARAMETER));
        assert_eq!(check_range(!0xfff, 0x2000), Err(Status::INVALID_PARAMETER));
    }

    #[test]
    fn attribute_masks_are_checked() {
        assert_eq!(check_attributes(RO | XP, true), Ok(()));
        assert_eq!(
            check_attributes(MemoryAttribute::empty(), true),
            Err(Status::INVALID_PARAMETER)
        );
        assert_eq!(
            check_attributes(MemoryAttribute::WRITE_BACK, true),
            Err(Status::UNSUPPORTED)
        );
        assert_eq!(check_attributes(XP, false), Err(Status::UNSUPPORTED));
    }

    #[test]
    fn only_allocated_memory_outside_the_firmware_changes() {
        let regions = [
            region(0x10_0000, 0x100, MemoryType::RUNTIME_SERVICES_CODE),
            region(0x20_0000, 0x10, MemoryType::LOADER_CODE),
            region(0x21_0000, 0x10, MemoryType::LOADER_DATA),
            region(0x22_0000, 0x10, MemoryType::CONVENTIONAL),
        ];
        let firmware = 0x10_0000..0x20_0000;
        let ok = |r: Range<u64>| check_changeable(&r, &regions, &firmware);
        assert_eq!(ok(0x20_0000..0x22_0000), Ok(()), "spans two allocations");
        assert_eq!(ok(0x1f_f000..0x20_1000), Err(Status::ACCESS_DENIED));
        assert_eq!(ok(0x21_f000..0x22_1000), Err(Status::INVALID_PARAMETER));
        assert_eq!(ok(0x40_0000..0x40_1000), Err(Status::INVALID_PARAMETER));
    }
    #[test]
    fn freeing_returns_only_the_restricted_parts() {
        let mut tracked = vec![0x1000..0x5000, 0x8000..0x9000];
        let taken = take_overlaps(&mut tracked, &(0x2000..0x3000));
        assert_eq!(taken, vec![0x2000..0x3000]);
        assert_eq!(tracked, [0x1000..0x2000, 0x3000..0x5000, 0x8000..0x9000]);
        assert_eq!(
            take_overlaps(&mut tracked, &(0x0..0x8800)),
            [0x1000..0x2000, 0x3000..0x5000, 0x8000..0x8800]
        );
        assert_eq!(tracked, vec![0x8800..0x9000]);
        assert!(take_overlaps(&mut tracked, &(0xa000..0xb000)).is_empty());
        assert_eq!(tracked, vec![0x8800..0x9000]);
    }
}
