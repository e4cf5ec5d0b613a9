//! The variable journal: how a non-volatile variable the OS sets after
//! ExitBootServices survives a reboot although the firmware never writes
//! the disk while the OS owns it (UEFI 2.10 §8.2: a NON_VOLATILE variable
//! persists across a reset; §7.4.6: after ExitBootServices the OS owns the
//! devices).
//!
//! After ExitBootServices every SetVariable that creates, changes or
//! deletes a non-volatile variable writes the sealed image of all
//! non-volatile variables into a region of reserved RAM
//! ([`super::journal_format`]). The next start of the firmware finds the
//! region at the same fixed physical address, checks it, loads the image
//! and writes it to the ESP store (`loaders::nv_journal`), before anything
//! boots, then clears the region.
//!
//! Where the region lives (set by `src/main.rs` with [`set_region`]):
//! - at a fixed physical address above the firmware image (4 MiB), not a
//!   pointer left somewhere: the next start must find it without trusting
//!   anything the previous boot left. QEMU's reset keeps RAM but reloads
//!   our ELF at 1 MiB (data and bss start over), and SeaBIOS, which runs
//!   again first, uses memory below 1 MiB and the top of RAM below 4 GiB;
//!   neither touches 4 MiB.
//! - typed EfiRuntimeServicesData (with EFI_MEMORY_RUNTIME) in the memory
//!   map: the OS does not use it, and it maps it for runtime services like
//!   the firmware image's own data. Linux maps runtime regions 1:1 besides
//!   their virtual addresses, which is how the rest of the firmware's
//!   runtime code reaches its statics after SetVirtualAddressMap too
//!   ([`super::virtual_map`]). EfiReservedMemoryType would not be mapped
//!   for runtime services at all.
//! - reserved before the firmware heap or any other allocation exists, so
//!   the new start cannot overwrite it before reading it.
//! - as large as the whole variable store buffer plus the journal header:
//!   every image the store can hold fits, so the journal can only be
//!   "full" when the store itself is, which SetVariable already reports as
//!   EFI_OUT_OF_RESOURCES before changing anything. [`arm`] refuses a
//!   smaller region rather than drop writes later.
//!
//! Under QEMU a warm reset (ResetSystem, the ACPI reset register, the
//! keyboard controller) keeps RAM and so the journal; a power-off (QEMU
//! exits, S5) loses it and with it every change the OS made since
//! ExitBootServices. Cloud Hypervisor builds a new VM, with new memory, on
//! every reboot, so there any reboot is a power-off for the journal.
//!
//! Measured under QEMU/TCG (README, "What survives reboot and power-off"):
//! the region survives both the ACPI-register reset and ResetSystem (VM
//! test `variables_survive_reboot`); checking an empty region costs about
//! 0.1 ms at start; a runtime write adds up to ~0.6 ms per SetVariable
//! with a few hundred variables; the region adds 33 pages of runtime data.

use core::sync::atomic::{AtomicU32, Ordering};

use platform::sync::Global;
use uefi_raw::Status;

use super::journal_format::{WriteError, payload_capacity, write_journal};
use super::variable_services::with_variables;
use crate::variables::{Attributes, HEADER_SIZE, VarError};

const NV_ATTRIBUTES: Attributes = Attributes::NON_VOLATILE
    .union(Attributes::BOOTSERVICE_ACCESS)
    .union(Attributes::RUNTIME_ACCESS);

#[derive(Clone, Copy)]
struct Region {
    base: u64,
    len: usize,
}

static REGION: Global<Option<Region>> = Global::new(None);
/// The ESP store generation the running store descends from; set by
/// [`arm`] at ExitBootServices. None: runtime changes stay in RAM.
static ARMED_BASE: Global<Option<u32>> = Global::new(None);
/// Journal writes since ExitBootServices (for the next start's log line).
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Hands the journal region to this module.
///
/// # Safety
/// `base..base + len` must be RAM that nothing else uses for the rest of
/// this boot and of the OS it boots (reserved as EfiRuntimeServicesData
/// before any allocation), identity mapped while the firmware runs on its
/// own page tables and mapped 1:1 by the OS for runtime services.
pub unsafe fn set_region(base: u64, len: usize) {
    REGION.with(|region| *region = Some(Region { base, len }));
}

/// Runs `f` over the journal region; None when there is none (or on a
/// re-entrant call).
pub fn with_region<R>(f: impl FnOnce(&mut [u8]) -> R) -> Option<R> {
    REGION
        .try_with(|region| {
            region.map(|region| {
                // SAFETY: `set_region`'s contract gives us this memory alone;
                // the REGION borrow held here keeps the slice unique.
                let bytes =
                    unsafe { core::slice::from_raw_parts_mut(region.base as *mut u8, region.len) };
                f(bytes)
            })
        })
        .flatten()
}

/// Makes runtime changes to non-volatile variables go to the journal,
/// recording that they continue the ESP store slot of `base_generation`
/// (0: none). Called at ExitBootServices when the store is backed by a
/// writable ESP. Returns false, and leaves runtime changes in RAM as
/// before, when there is no region or it cannot hold the whole store.
pub fn arm(base_generation: u32) -> bool {
    let capacity = with_region(|region| payload_capacity(region.len())).unwrap_or(0);
    // The largest image the store can produce: its whole buffer.
    let store_size = with_variables(|store| store.query_info(NV_ATTRIBUTES))
        .and_then(Result::ok)
        .and_then(|info| usize::try_from(info.maximum_storage).ok())
        .map_or(usize::MAX, |records| records.saturating_add(HEADER_SIZE));
    if capacity < store_size {
        return false;
    }
    SEQUENCE.store(0, Ordering::Relaxed);
    ARMED_BASE.with(|armed| *armed = Some(base_generation));
    true
}

/// Records the non-volatile variables after a runtime change (called by
/// SetVariable once the store holds the change). Ok when not armed: the
/// change then lives in RAM only, as without a journal. Allocates nothing:
/// the heap is gone after ExitBootServices.
pub(super) fn record_runtime_change() -> Result<(), Status> {
    let Some(base_generation) = ARMED_BASE.try_with(|armed| *armed).flatten() else {
        return Ok(());
    };
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    let written = with_region(|region| {
        with_variables(|store| {
            write_journal(region, base_generation, sequence, |area| {
                store.serialise_non_volatile(area)
            })
        })
    })
    .flatten();
    match written {
        Some(Ok(_)) => Ok(()),
        // Unreachable with the region `arm` accepts; reported rather than
        // losing the write silently.
        Some(Err(WriteError::Payload(VarError::StoreTooSmall { .. })))
        | Some(Err(WriteError::TooLarge { .. })) => Err(Status::OUT_OF_RESOURCES),
        Some(Err(_)) | None => Err(Status::DEVICE_ERROR),
    }
}
