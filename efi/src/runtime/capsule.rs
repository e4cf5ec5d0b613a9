//! Capsule services (UEFI 2.10 §8.5.3): UpdateCapsule and
//! QueryCapsuleCapabilities check their arguments as §8.5.3.1/§8.5.3.3
//! require, then report EFI_UNSUPPORTED: this firmware processes no
//! capsule type (and the RT properties table says so).
//!
//! The argument rules are pure functions ([`check_capsule_flags`]); the
//! entry points only read the caller's header array.

use uefi_raw::capsule::{CapsuleFlags, CapsuleHeader};
use uefi_raw::table::runtime::ResetType;
use uefi_raw::{PhysicalAddress, Status};

/// Why a capsule argument was refused (each maps to
/// EFI_INVALID_PARAMETER).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapsuleArgError {
    /// CapsuleCount is 0.
    NoCapsules,
    /// CapsuleHeaderArray or one of its entries is NULL.
    NullHeader,
    /// POPULATE_SYSTEM_TABLE or INITIATE_RESET without
    /// PERSIST_ACROSS_RESET (§8.5.3.1 "Flags").
    FlagsNeedPersist(u32),
    /// A capsule that persists across reset, but no ScatterGatherList
    /// (§8.5.3.1: ScatterGatherList "is ignored if the capsule does not
    /// persist across reset", so it is required otherwise).
    NoScatterGatherList,
    /// CapsuleImageSize smaller than the header (§8.5.3.1,
    /// EFI_CAPSULE_HEADER).
    ImageSmallerThanHeader { header: u32, image: u32 },
}

/// Checks one capsule header's flags and sizes against §8.5.3.1.
/// `scatter_gather_list` is None for QueryCapsuleCapabilities, which has no
/// such argument.
pub fn check_capsule_header(
    flags: u32,
    header_size: u32,
    image_size: u32,
    scatter_gather_list: Option<PhysicalAddress>,
) -> Result<(), CapsuleArgError> {
    check_capsule_flags(flags, scatter_gather_list)?;
    if image_size < header_size {
        return Err(CapsuleArgError::ImageSmallerThanHeader {
            header: header_size,
            image: image_size,
        });
    }
    Ok(())
}

/// The flag rules of §8.5.3.1: POPULATE_SYSTEM_TABLE and INITIATE_RESET
/// each require PERSIST_ACROSS_RESET, and a persisting capsule needs a
/// scatter-gather list (UpdateCapsule only).
pub fn check_capsule_flags(
    flags: u32,
    scatter_gather_list: Option<PhysicalAddress>,
) -> Result<(), CapsuleArgError> {
    let flags_set = CapsuleFlags::from_bits_retain(flags);
    let persist = flags_set.contains(CapsuleFlags::PERSIST_ACROSS_RESET);
    let needs_persist = CapsuleFlags::POPULATE_SYSTEM_TABLE | CapsuleFlags::INITIATE_RESET;
    if !persist && flags_set.intersects(needs_persist) {
        return Err(CapsuleArgError::FlagsNeedPersist(flags));
    }
    if persist && scatter_gather_list == Some(0) {
        return Err(CapsuleArgError::NoScatterGatherList);
    }
    Ok(())
}

/// Reads and checks every header of the caller's array.
///
/// # Safety
/// `capsules` is null or points to `count` readable pointers, each null or
/// pointing to a readable EFI_CAPSULE_HEADER (§8.5.3.1).
unsafe fn check_headers(
    capsules: *const *const CapsuleHeader,
    count: usize,
    scatter_gather_list: Option<PhysicalAddress>,
) -> Result<(), CapsuleArgError> {
    if count == 0 {
        return Err(CapsuleArgError::NoCapsules);
    }
    if capsules.is_null() {
        return Err(CapsuleArgError::NullHeader);
    }
    for index in 0..count {
        // SAFETY: the caller's array holds `count` entries (this function's
        // contract); `add` stays within it.
        let entry = unsafe { crate::boundary::read(capsules.add(index)) }
            .map_err(|_| CapsuleArgError::NullHeader)?;
        // SAFETY: each non-null entry points to an EFI_CAPSULE_HEADER
        // (this function's contract); null is rejected by `read`.
        let header =
            unsafe { crate::boundary::read(entry) }.map_err(|_| CapsuleArgError::NullHeader)?;
        check_capsule_header(
            header.flags.bits(),
            header.header_size,
            header.capsule_image_size,
            scatter_gather_list,
        )?;
    }
    Ok(())
}

/// UpdateCapsule (§8.5.3.1): bad arguments are EFI_INVALID_PARAMETER;
/// valid ones name a capsule type this platform does not process, so
/// EFI_UNSUPPORTED.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §8.5.3.1 requires of the caller.
pub unsafe extern "efiapi" fn update_capsule(
    capsules: *const *const CapsuleHeader,
    count: usize,
    scatter_gather_list: PhysicalAddress,
) -> Status {
    // SAFETY: the caller's array, as this function's contract says.
    match unsafe { check_headers(capsules, count, Some(scatter_gather_list)) } {
        Ok(()) => Status::UNSUPPORTED,
        Err(_) => Status::INVALID_PARAMETER,
    }
}

/// QueryCapsuleCapabilities (§8.5.3.3): the same header rules plus
/// non-null outputs; a valid query is EFI_UNSUPPORTED (no capsule type is
/// processed here).
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §8.5.3.3 requires of the caller.
pub unsafe extern "efiapi" fn query_capsule_capabilities(
    capsules: *const *const CapsuleHeader,
    count: usize,
    maximum_size: *mut u64,
    reset_type: *mut ResetType,
) -> Status {
    if maximum_size.is_null() || reset_type.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's array, as this function's contract says.
    match unsafe { check_headers(capsules, count, None) } {
        Ok(()) => Status::UNSUPPORTED,
        Err(_) => Status::INVALID_PARAMETER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uefi_raw::Guid;

    const PERSIST: u32 = CapsuleFlags::PERSIST_ACROSS_RESET.bits();
    const POPULATE: u32 = CapsuleFlags::POPULATE_SYSTEM_TABLE.bits();
    const RESET: u32 = CapsuleFlags::INITIATE_RESET.bits();

    #[test]
    fn flag_rules() {
        assert_eq!(check_capsule_flags(0, Some(0)), Ok(()));
        assert_eq!(check_capsule_flags(0x1234, Some(0)), Ok(()));
        assert_eq!(
            check_capsule_flags(POPULATE, Some(0x1000)),
            Err(CapsuleArgError::FlagsNeedPersist(POPULATE))
        );
        assert_eq!(
            check_capsule_flags(RESET, Some(0x1000)),
            Err(CapsuleArgError::FlagsNeedPersist(RESET))
        );
        assert_eq!(
            check_capsule_flags(PERSIST, Some(0)),
            Err(CapsuleArgError::NoScatterGatherList)
        );
        assert_eq!(
            check_capsule_flags(PERSIST | POPULATE, Some(0)),
            Err(CapsuleArgError::NoScatterGatherList)
        );
        assert_eq!(
            check_capsule_flags(PERSIST | POPULATE | RESET, Some(0x1000)),
            Ok(())
        );
        // QueryCapsuleCapabilities has no list to check.
        assert_eq!(check_capsule_flags(PERSIST, None), Ok(()));
        assert_eq!(
            check_capsule_header(0, 28, 27, None),
            Err(CapsuleArgError::ImageSmallerThanHeader {
                header: 28,
                image: 27
            })
        );
    }

    fn header(flags: u32) -> CapsuleHeader {
        CapsuleHeader {
            capsule_guid: Guid::ZERO,
            header_size: 28,
            flags: CapsuleFlags::from_bits_retain(flags),
            capsule_image_size: 28,
        }
    }

    #[test]
    fn entry_points_check_before_refusing() {
        let good = header(0);
        let list = [&raw const good, core::ptr::null()];
        let (mut size, mut reset) = (0u64, ResetType::COLD);
        // SAFETY: every call below passes null or live locals.
        let update = |list: *const *const CapsuleHeader, count, sg| unsafe {
            update_capsule(list, count, sg)
        };
        assert_eq!(update(list.as_ptr(), 0, 0), Status::INVALID_PARAMETER);
        assert_eq!(update(core::ptr::null(), 1, 0), Status::INVALID_PARAMETER);
        assert_eq!(update(list.as_ptr(), 2, 0), Status::INVALID_PARAMETER);
        assert_eq!(update(list.as_ptr(), 1, 0), Status::UNSUPPORTED);
        for flags in [PERSIST, PERSIST | POPULATE, POPULATE, RESET] {
            let bad = header(flags);
            let bad_list = [&raw const bad];
            assert_eq!(update(bad_list.as_ptr(), 1, 0), Status::INVALID_PARAMETER);
        }
        let persisting = header(PERSIST);
        let persisting_list = [&raw const persisting];
        assert_eq!(
            update(persisting_list.as_ptr(), 1, 0x1000),
            Status::UNSUPPORTED
        );

        // SAFETY: every call below passes null or live locals.
        let query = |list: *const *const CapsuleHeader, count, size, reset| unsafe {
            query_capsule_capabilities(list, count, size, reset)
        };
        assert_eq!(
            query(list.as_ptr(), 1, core::ptr::null_mut(), &mut reset),
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            query(list.as_ptr(), 1, &mut size, core::ptr::null_mut()),
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            query(list.as_ptr(), 0, &mut size, &mut reset),
            Status::INVALID_PARAMETER
        );
        let populate = header(POPULATE);
        let populate_list = [&raw const populate];
        assert_eq!(
            query(populate_list.as_ptr(), 1, &mut size, &mut reset),
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            query(list.as_ptr(), 1, &mut size, &mut reset),
            Status::UNSUPPORTED
        );
    }
}
