//! ResetSystem (UEFI 2.10 §8.5.1) through the ACPI reset register when
//! the FADT has one, else the chipset's fixed mechanisms.

use log::info;
use platform::acpi::AcpiInfo;
use platform::reset::{self, ResetKind};
use platform::sync::Global;
use uefi_raw::Status;
use uefi_raw::table::runtime::ResetType;

use super::flush_pending_variables;

pub(super) static ACPI: Global<Option<AcpiInfo>> = Global::new(None);

/// Which platform reset an EFI_RESET_TYPE asks for; None is power-off.
/// Platform-specific and unknown types get a cold reset.
pub fn reset_kind(reset_type: ResetType) -> Option<ResetKind> {
    match reset_type {
        ResetType::SHUTDOWN => None,
        ResetType::WARM => Some(ResetKind::Warm),
        _ => Some(ResetKind::Cold),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn reset_system(
    reset_type: ResetType,
    status: Status,
    _data_size: usize,
    _data: *const u8,
) -> ! {
    // One line naming the caller's reset type, so a log tells ResetSystem
    // from a reset the OS made through the ACPI register or the keyboard
    // controller (the variable journal must survive both).
    info!("ResetSystem: type {}", reset_type.0);
    reset(reset_type, status)
}

/// The watchdog's reset action (§7.5.2: on expiry the platform resets),
/// for `events::set_watchdog_reset_hook`: ResetSystem(EfiResetCold) with
/// EFI_TIMEOUT as the reason. `code` was logged by the watchdog already.
pub fn watchdog_reset(_code: u64) {
    reset(ResetType::COLD, Status::TIMEOUT)
}

/// ResetSystem (§8.5.1) for firmware code, e.g. the watchdog's expiry
/// (§7.5.2): pending variables are flushed, then the reset goes through
/// the ACPI reset register when the FADT has one.
pub fn reset(reset_type: ResetType, status: Status) -> ! {
    if status.is_error() {
        info!("ResetSystem: reset after error status {:#x}", status.0);
    }
    // No tick across the reset (a no-op after ExitBootServices stopped it).
    crate::events::stop_interrupts();
    flush_pending_variables();
    // Copied out so no borrow is held while resetting; a re-entrant call
    // (ResetSystem may interrupt other services, §8.1) goes without ACPI.
    let acpi = ACPI.try_with(|acpi| acpi.clone()).flatten();
    match reset_kind(reset_type) {
        // SAFETY: `ACPI` holds what `init` was given, the platform's ACPI
        // information as discovered at boot.
        None => unsafe { reset::shutdown(acpi.as_ref()) },
        // SAFETY: as above.
        Some(kind) => unsafe { reset::reset(kind, acpi.as_ref()) },
    }
}

/// The warm reset after a firmware panic: through the ACPI reset register
/// when known, and without flushing variables (the state that panicked may
/// be half-updated; what the store already holds on disk stays).
pub fn reset_after_panic() -> ! {
    let acpi = ACPI.try_with(|acpi| acpi.clone()).flatten();
    // SAFETY: `ACPI` holds what `init` was given, the platform's ACPI
    // information as discovered at boot.
    unsafe { reset::reset(ResetKind::Warm, acpi.as_ref()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_types() {
        assert_eq!(reset_kind(ResetType::COLD), Some(ResetKind::Cold));
        assert_eq!(reset_kind(ResetType::WARM), Some(ResetKind::Warm));
        assert_eq!(reset_kind(ResetType::SHUTDOWN), None);
        assert_eq!(
            reset_kind(ResetType::PLATFORM_SPECIFIC),
            Some(ResetKind::Cold)
        );
        assert_eq!(reset_kind(ResetType(77)), Some(ResetKind::Cold));
    }
}
