//! Variable Services (UEFI 2.10 §8.2): the EFI entry points over the
//! store in [`crate::variables`], and persisting NON_VOLATILE variables
//! through the core's hook.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use log::warn;
use platform::sync::Global;
use uefi_raw::table::runtime::VariableVendor;
use uefi_raw::{Char16, Guid, Status};

use super::virtual_map::RUNTIME_PHASE;
use crate::variables::{Attributes, MAX_NAME_SIZE, MAX_VARIABLE_SIZE_CAP, VarError, VariableStore};

pub(super) static VARIABLES: Global<Option<VariableStore<'static>>> = Global::new(None);

/// Runs `f` on the variable store; None before [`init`] or on re-entry.
/// Boot-time Rust code (boot manager) uses this rather than the EFI calls.
pub fn with_variables<R>(f: impl FnOnce(&mut VariableStore<'static>) -> R) -> Option<R> {
    VARIABLES.try_with(|store| store.as_mut().map(f)).flatten()
}

/// Replaces the (empty) store with a persisted image; on error the store
/// is unchanged and the caller logs a warning and starts empty.
pub fn load_variables(image: &[u8]) -> Result<usize, VarError> {
    with_variables(|store| store.load(image)).unwrap_or(Err(VarError::Unavailable))
}

/// Runs a variable operation, mapping "no store" (not initialised, or a
/// re-entrant call, which §8.1 forbids for these services) to a status.
fn variables<R>(f: impl FnOnce(&mut VariableStore<'static>) -> R) -> Result<R, Status> {
    VARIABLES
        .try_with(|store| store.as_mut().map(f).ok_or(Status::UNSUPPORTED))
        .unwrap_or(Err(Status::DEVICE_ERROR))
}

/// Copies a caller's NUL-terminated UCS-2 name into `buffer`, reading at
/// most `max_units` units (never past the NUL). None when no NUL is found
/// within the limit.
///
/// # Safety
/// `name` must be non-null and readable up to its NUL or `max_units` units.
unsafe fn read_name(name: *const Char16, max_units: usize, buffer: &mut [u16]) -> Option<&[u16]> {
    let limit = max_units.min(buffer.len());
    for index in 0..limit {
        // SAFETY: the caller guarantees readability up to the NUL or the
        // limit, and we stop at the first NUL.
        let unit = unsafe { name.add(index).read_unaligned() };
        if unit == 0 {
            return Some(&buffer[..index]);
        }
        buffer[index] = unit;
    }
    None
}

/// Room for the longest accepted name plus its NUL.
pub(super) const NAME_UNITS: usize = MAX_NAME_SIZE / 2;

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn get_variable(
    name: *const Char16,
    guid: *const Guid,
    attributes: *mut Attributes,
    data_size: *mut usize,
    data: *mut u8,
) -> Status {
    if name.is_null() || guid.is_null() || data_size.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let mut name_buffer = [0u16; NAME_UNITS];
    // SAFETY: `name` is non-null and NUL-terminated per §8.2.1.
    let Some(name) = (unsafe { read_name(name, NAME_UNITS, &mut name_buffer) }) else {
        // Longer than any name the store accepts, so not a variable.
        return Status::NOT_FOUND;
    };
    // SAFETY: `guid` and `data_size` are non-null caller pointers to an
    // EFI_GUID and a UINTN (§8.2.1).
    let (guid, capacity) = unsafe { (guid.read_unaligned(), data_size.read_unaligned()) };
    variables(|store| {
        let Some(variable) = store.find(name, &guid) else {
            return Status::NOT_FOUND;
        };
        let size = variable.data.len();
        if !attributes.is_null() {
            // SAFETY: optional UINT32 output, non-null. §8.2.1 returns the
            // attributes with EFI_BUFFER_TOO_SMALL as well.
            unsafe { attributes.write_unaligned(variable.attributes) };
        }
        // SAFETY: `data_size` is non-null (checked above).
        unsafe { data_size.write_unaligned(size) };
        if capacity < size {
            return Status::BUFFER_TOO_SMALL;
        }
        if data.is_null() || (data as usize).checked_add(size).is_none() {
            return Status::INVALID_PARAMETER;
        }
        // SAFETY: the caller's buffer holds `capacity` >= `size` bytes, and
        // it cannot overlap the store: the store is firmware data the caller
        // does not own.
        unsafe { core::ptr::copy_nonoverlapping(variable.data.as_ptr(), data, size) };
        Status::SUCCESS
    })
    .unwrap_or_else(|status| status)
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn get_next_variable_name(
    name_size: *mut usize,
    name: *mut Char16,
    guid: *mut Guid,
) -> Status {
    if name_size.is_null() || name.is_null() || guid.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: non-null UINTN in/out parameter (§8.2.2).
    let capacity = unsafe { name_size.read_unaligned() };
    let mut name_buffer = [0u16; NAME_UNITS];
    // §8.2.2: no NUL within the first VariableNameSize bytes is
    // EFI_INVALID_PARAMETER; nor can a longer name be a variable.
    // SAFETY: the caller's buffer holds `capacity` bytes, and read_name
    // stops at the first NUL.
    let Some(previous) = (unsafe { read_name(name, capacity / 2, &mut name_buffer) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: non-null EFI_GUID in/out parameter.
    let previous_guid = unsafe { guid.read_unaligned() };
    let previous = (!previous.is_empty()).then_some((previous, &previous_guid));
    variables(|store| match store.next_variable(previous) {
        Err(err) => err.status(),
        Ok(variable) => {
            let needed = variable.name_size();
            // SAFETY: `name_size` is non-null.
            unsafe { name_size.write_unaligned(needed) };
            if capacity < needed {
                return Status::BUFFER_TOO_SMALL;
            }
            for (index, unit) in variable.name().chain([0]).enumerate() {
                // SAFETY: the buffer holds `capacity` >= `needed` bytes,
                // i.e. every unit of the name and its NUL.
                unsafe { name.add(index).write_unaligned(unit) };
            }
            // SAFETY: non-null EFI_GUID output.
            unsafe { guid.write_unaligned(variable.guid) };
            Status::SUCCESS
        }
    })
    .unwrap_or_else(|status| status)
}

/// The globally defined variables UEFI 2.10 §3.3 says are to be treated
/// as read-only: the firmware describes itself with them at every start
/// (through [`set_variable_persisting`]), and a caller of SetVariable gets
/// EFI_WRITE_PROTECTED, as edk2's boot manager locks them.
const READ_ONLY_GLOBALS: [&str; 4] = [
    "PlatformLangCodes",
    "LangCodes",
    "BootOptionSupport",
    "OsIndicationsSupported",
];

/// Whether SetVariable callers may not change `name` of `guid`.
fn is_read_only(name: &[u16], guid: &Guid) -> bool {
    *guid == VariableVendor::GLOBAL_VARIABLE.0
        && READ_ONLY_GLOBALS
            .iter()
            .any(|read_only| read_only.encode_utf16().eq(name.iter().copied()))
}

/// Decides a caller's SetVariable (name, vendor, attributes, data) before
/// the store sees it: Some(status) answers the caller with that status,
/// the write refused or done by the guard
/// (`crate::secure_boot::intercept_write` for the Secure Boot variables,
/// whose authenticated writes it performs); None lets the store take it.
pub type WriteGuard = fn(&[u16], &Guid, Attributes, &[u8]) -> Option<Status>;

static WRITE_GUARD: Global<Option<WriteGuard>> = Global::new(None);

/// Installs the guard every caller's SetVariable passes first.
pub fn set_write_guard(guard: WriteGuard) {
    WRITE_GUARD.with(|slot| *slot = Some(guard));
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn set_variable(
    name: *const Char16,
    guid: *const Guid,
    attributes: Attributes,
    data_size: usize,
    data: *const u8,
) -> Status {
    if name.is_null() || guid.is_null() || (data.is_null() && data_size != 0) {
        return Status::INVALID_PARAMETER;
    }
    // Bound the size before forming a slice over the caller's memory.
    if data_size > MAX_VARIABLE_SIZE_CAP || (data as usize).checked_add(data_size).is_none() {
        return Status::INVALID_PARAMETER;
    }
    let mut name_buffer = [0u16; NAME_UNITS];
    // SAFETY: `name` is non-null and NUL-terminated per §8.2.3.
    let Some(name) = (unsafe { read_name(name, NAME_UNITS, &mut name_buffer) }) else {
        return Status::INVALID_PARAMETER;
    };
    // SAFETY: non-null EFI_GUID.
    let guid = unsafe { guid.read_unaligned() };
    if is_read_only(name, &guid) {
        return Status::WRITE_PROTECTED;
    }
    let data: &[u8] = if data_size == 0 {
        &[]
    } else {
        // SAFETY: `data` is non-null and the caller provides `data_size`
        // (at most 64 KiB) readable bytes, which are not the store's own
        // firmware data.
        unsafe { core::slice::from_raw_parts(data, data_size) }
    };
    // Secure Boot's variables: refused, or an authenticated write that is
    // handled (and answered) there.
    if let Some(status) = WRITE_GUARD
        .try_with(|guard| *guard)
        .flatten()
        .and_then(|guard| guard(name, &guid, attributes, data))
    {
        return status;
    }
    set_variable_persisting(name, &guid, attributes, data)
}

/// Writes the non-volatile variables to persistent storage. It gets an
/// image from [`VariableStore::non_volatile_image`] (generation 0) and
/// returns once the image is durable, or the status that prevented it.
pub type PersistHook = fn(Vec<u8>) -> Result<(), Status>;

static PERSIST_HOOK: Global<Option<PersistHook>> = Global::new(None);
/// A persist attempt failed: the RAM copy holds changes the disk lacks.
static PERSIST_PENDING: AtomicBool = AtomicBool::new(false);

/// Registers the hook that makes NON_VOLATILE variables survive a reset.
/// Without one they live in RAM only.
pub fn set_persist_hook(hook: PersistHook) {
    PERSIST_HOOK.with(|slot| *slot = Some(hook));
}

/// SetVariable for both EFI callers and the firmware's own Rust code (boot
/// manager): changes the store, then, when a NON_VOLATILE variable was
/// created, changed or deleted during boot services, persists the store
/// before returning (UEFI 2.10 §8.2.3: a non-volatile variable survives a
/// reset). After ExitBootServices the OS owns the disk, so changes go to
/// the journal in reserved RAM ([`super::journal`]), which the next start
/// applies to the disk. A failed write keeps the RAM copy, reports
/// EFI_DEVICE_ERROR and is retried by the next change or by ResetSystem.
pub fn set_variable_persisting(
    name: &[u16],
    guid: &Guid,
    attributes: Attributes,
    data: &[u8],
) -> Status {
    let changed = variables(|store| {
        let was_non_volatile = store
            .find(name, guid)
            .is_some_and(|v| v.attributes.contains(Attributes::NON_VOLATILE));
        store
            .set(name, guid, attributes, data)
            .map(|()| was_non_volatile || attributes.contains(Attributes::NON_VOLATILE))
    });
    match changed {
        Err(status) => status,
        Ok(Err(err)) => err.status(),
        Ok(Ok(false)) => Status::SUCCESS,
        Ok(Ok(true)) => match persist() {
            Ok(()) => Status::SUCCESS,
            Err(status) => status,
        },
    }
}

/// One change of a batch for [`set_variables_persisting`]: name (without
/// NUL), vendor GUID, attributes, data (empty to delete).
pub type VariableChange<'a> = (&'a [u16], Guid, Attributes, &'a [u8]);

/// Applies `changes` in order, as SetVariable would, and persists the
/// store once at the end when a non-volatile variable changed: one disk
/// write for the batch instead of one per variable. Returns each change's
/// status.
pub fn set_variables_persisting(changes: &[VariableChange<'_>]) -> Vec<Status> {
    let mut any_non_volatile = false;
    let mut statuses: Vec<Status> = changes
        .iter()
        .map(|&(name, guid, attributes, data)| {
            let result = variables(|store| {
                let was_non_volatile = store
                    .find(name, &guid)
                    .is_some_and(|v| v.attributes.contains(Attributes::NON_VOLATILE));
                store
                    .set(name, &guid, attributes, data)
                    .map(|()| was_non_volatile || attributes.contains(Attributes::NON_VOLATILE))
            });
            match result {
                Err(status) => status,
                Ok(Err(err)) => err.status(),
                Ok(Ok(non_volatile)) => {
                    any_non_volatile |= non_volatile;
                    Status::SUCCESS
                }
            }
        })
        .collect();
    if any_non_volatile && let Err(status) = persist() {
        for s in statuses.iter_mut().filter(|s| !s.is_error()) {
            *s = status;
        }
    }
    statuses
}

/// Hands the non-volatile variables to the persist hook (boot services)
/// or to the journal (runtime). No hook means RAM-only variables, which is
/// not an error. Secure Boot's authenticated writes change the store
/// directly and persist through here.
pub fn persist_variables() -> Result<(), Status> {
    persist()
}

fn persist() -> Result<(), Status> {
    if RUNTIME_PHASE.load(Ordering::Relaxed) {
        return super::journal::record_runtime_change();
    }
    let Some(hook) = PERSIST_HOOK.try_with(|slot| *slot).flatten() else {
        return Ok(());
    };
    // The store borrow ends before the hook runs: the hook does disk I/O,
    // which may poll timers and so run other code that reads variables.
    let Some(image) = with_variables(|store| store.non_volatile_image()) else {
        PERSIST_PENDING.store(true, Ordering::Relaxed);
        return Err(Status::DEVICE_ERROR);
    };
    match hook(image) {
        Ok(()) => {
            PERSIST_PENDING.store(false, Ordering::Relaxed);
            Ok(())
        }
        Err(status) => {
            PERSIST_PENDING.store(true, Ordering::Relaxed);
            warn!("non-volatile variables not saved: status {:#x}", status.0);
            Err(Status::DEVICE_ERROR)
        }
    }
}

/// Retries a failed persist; ResetSystem calls it during boot services so
/// nothing a caller set is lost to the reset.
pub fn flush_pending_variables() {
    if PERSIST_PENDING.load(Ordering::Relaxed) {
        let _ = persist();
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn query_variable_info(
    attributes: Attributes,
    maximum_storage: *mut u64,
    remaining_storage: *mut u64,
    maximum_variable_size: *mut u64,
) -> Status {
    if maximum_storage.is_null() || remaining_storage.is_null() || maximum_variable_size.is_null() {
        return Status::INVALID_PARAMETER;
    }
    variables(|store| match store.query_info(attributes) {
        Err(err) => err.status(),
        Ok(info) => {
            // SAFETY: the three outputs are non-null UINT64 pointers
            // (§8.2.4).
            unsafe {
                maximum_storage.write_unaligned(info.maximum_storage);
                remaining_storage.write_unaligned(info.remaining_storage);
                maximum_variable_size.write_unaligned(info.maximum_variable_size);
            }
            Status::SUCCESS
        }
    })
    .unwrap_or_else(|status| status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn the_firmware_descriptions_are_read_only_to_callers() {
        let global = VariableVendor::GLOBAL_VARIABLE.0;
        for name in READ_ONLY_GLOBALS {
            assert!(is_read_only(&utf16(name), &global), "{name}");
        }
        // What the OS and the user choose stays writable.
        for name in [
            "PlatformLang",
            "Timeout",
            "BootOrder",
            "OsIndications",
            "Boot0001",
        ] {
            assert!(!is_read_only(&utf16(name), &global), "{name}");
        }
        // Only under the global vendor GUID; no prefix matches.
        let other = Guid::from_bytes([7; 16]);
        assert!(!is_read_only(&utf16("LangCodes"), &other));
        assert!(!is_read_only(&utf16("LangCode"), &global));
        assert!(!is_read_only(&utf16("LangCodesX"), &global));
    }
}
