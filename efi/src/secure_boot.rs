//! Secure Boot's state and variables (UEFI 2.10 §32.3), with the keys from
//! the VMM's key input ([`key_input`]).
//!
//! The firmware image and the VMM are trusted, the guest's disk is not: PK,
//! KEK, db, dbx and dbt are published at every start from the key input
//! with the kept authenticated updates replayed on it (below), never taken
//! from `vars.bin` as they are; a copy there that differs is reported and
//! replaced. With a PK the platform is in user mode and SecureBoot is 1;
//! without one it is in setup mode and SecureBoot is 0.
//!
//! | variable | attributes | value |
//! |---|---|---|
//! | `PK`, `KEK` (global), `db`, `dbx`, `dbt` (image security database) | NV,BS,RT,AT | the key input's signature lists, kept updates replayed |
//! | `SetupMode` | BS,RT | 1 without PK, else 0 (follows PK writes at once) |
//! | `SecureBoot` | BS,RT | 1 with PK at start, else 0 |
//! | `AuditMode`, `DeployedMode` | BS,RT | 0: neither mode is offered |
//! | `VendorKeys` | BS,RT | 1 with PK while the keys are the VMM's unchanged, else 0 |
//! | `SignatureSupport` | BS,RT | EFI_CERT_SHA256, EFI_CERT_X509, EFI_CERT_X509_SHA256 |
//!
//! While SecureBoot is 1, LoadImage passes every image to
//! [`image_allowed`] (db/dbx, §32.5.3.3); refused ones are listed in the
//! EFI_IMAGE_EXECUTION_INFO_TABLE ([`execution_info`]).
//!
//! Callers of SetVariable get EFI_WRITE_PROTECTED for the mode variables
//! (§3.3 lists them read-only) and for the kept updates. The key variables
//! change only by an EFI_VARIABLE_AUTHENTICATION_2 write (§8.2.2), decided
//! in [`authenticated_write`] (PK signs PK and KEK, PK or a KEK certificate
//! signs db/dbx/dbt; in setup mode edk2's rules); a write without
//! TIME_BASED_AUTHENTICATED_WRITE_ACCESS gets EFI_INVALID_PARAMETER, a
//! refused one EFI_SECURITY_VIOLATION. The same holds after
//! ExitBootServices: the verification allocates, and each write runs in
//! the static call arena (`platform::call_arena`), which the OS keeps;
//! a write whose copies would not fit it gets EFI_OUT_OF_RESOURCES.
//!
//! Every accepted write is kept with its payload ([`kept_updates`],
//! `VmfwSecureBootUpdates`); at each start the key input is the baseline
//! and the kept updates are replayed on it, each verified again against
//! the keys of that moment; one that fails is dropped with a warning. An
//! attacker who can write the disk can therefore delete kept updates (roll
//! back to the VMM's keys or to an older prefix of the updates) but not
//! add or alter one.
//!
//! | kept updates | attributes | value |
//! |---|---|---|
//! | `VmfwSecureBootUpdates` (vendor 9b5cb5da-67ed-4a4c-ba31-502b698d2ac7) | NV,BS,RT | [`kept_updates`] records |

pub mod auth2;
pub mod authenticated_write;
pub mod execution_info;
pub mod kept_updates;
pub mod key_input;

use alloc::vec::Vec;

use log::{debug, info, warn};
use platform::memory::MemoryType;
use platform::sync::Global;
use uefi_raw::table::runtime::VariableVendor;
use uefi_raw::{Guid, Status};

use crate::runtime::{persist_variables, runtime_phase, with_variables};
use crate::variables::{Attributes, VarError};
use ::secure_boot::signature_list::{
    EFI_CERT_SHA256_GUID, EFI_CERT_X509_GUID, EFI_CERT_X509_SHA256_GUID,
};
use auth2::TimeStamp;
use authenticated_write::{Change, KEY_ATTRIBUTES, KeyState, Refusal};
use kept_updates::Update;
use key_input::{KeyInput, KeyName};
use platform::call_arena::{ARENA_SIZE, with_call_arena};

const GLOBAL: Guid = VariableVendor::GLOBAL_VARIABLE.0;
/// EFI_IMAGE_SECURITY_DATABASE_GUID (§32.6.1): db, dbx, dbt.
pub const IMAGE_SECURITY_DATABASE: Guid = VariableVendor::IMAGE_SECURITY_DATABASE.0;

const BS_RT: Attributes = Attributes::BOOTSERVICE_ACCESS.union(Attributes::RUNTIME_ACCESS);

/// The read-only variables describing the mode (§3.3, §32.3).
const MODE_VARIABLES: [&str; 6] = [
    "SetupMode",
    "SecureBoot",
    "AuditMode",
    "DeployedMode",
    "VendorKeys",
    "SignatureSupport",
];

/// The time stamp of each key variable's last authenticated write (the
/// values are the store's); None before [`install`]. No heap memory, so
/// it stays valid after ExitBootServices.
static TIMES: Global<Option<[TimeStamp; 5]>> = Global::new(None);

/// SecureBoot is 1: LoadImage verifies what it loads (§32.5).
fn enforce() {
    crate::image::set_image_verifier(image_allowed);
}

impl KeyName {
    /// The vendor GUID the variable lives under.
    pub fn guid(self) -> Guid {
        match self {
            KeyName::Pk | KeyName::Kek => GLOBAL,
            KeyName::Db | KeyName::Dbx | KeyName::Dbt => IMAGE_SECURITY_DATABASE,
        }
    }

    fn of(name: &[u16], guid: &Guid) -> Option<KeyName> {
        KeyName::ALL
            .into_iter()
            .find(|key| key.guid() == *guid && key.as_str().encode_utf16().eq(name.iter().copied()))
    }
}

/// What SetVariable answers a caller writing `name` when it is one of
/// Secure Boot's variables (the write is done here when it is an accepted
/// authenticated one); None for every other variable.
pub fn intercept_write(
    name: &[u16],
    guid: &Guid,
    attributes: Attributes,
    data: &[u8],
) -> Option<Status> {
    if *guid == GLOBAL
        && MODE_VARIABLES
            .iter()
            .any(|mode| mode.encode_utf16().eq(name.iter().copied()))
    {
        return Some(Status::WRITE_PROTECTED);
    }
    if *guid == kept_updates::VENDOR {
        return Some(Status::WRITE_PROTECTED);
    }
    let key = KeyName::of(name, guid)?;
    if !attributes.contains(Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS) {
        return Some(Status::INVALID_PARAMETER);
    }
    if data.len() > MAX_PAYLOAD {
        return Some(Status::OUT_OF_RESOURCES);
    }
    // The verification allocates: from the call arena, which also works
    // after ExitBootServices. Persisting (disk I/O in boot services, with
    // its own lasting allocations) runs after the arena is left.
    let (result, peak) = with_call_arena(|| authenticated_write(key, attributes, data));
    let status = result.and_then(|()| persist_variables());
    if !runtime_phase() {
        debug!(
            "secure boot: write of {} used {peak} bytes of the call arena",
            key.as_str()
        );
    }
    Some(status.err().unwrap_or(Status::SUCCESS))
}

/// The largest EFI_VARIABLE_AUTHENTICATION_2 payload taken: what the call
/// arena holds for one write (about four copies of payload, kept updates
/// and values, and the RSA and DER work) stays well inside
/// [`ARENA_SIZE`]; see [`fits_arena`].
const MAX_PAYLOAD: usize = 32 << 10;
/// What the signature check itself needs besides the data: measured peak
/// for a KEK-signed db append with 2048-bit RSA (README), with margin for
/// 4096-bit keys and longer chains.
const CRYPTO_RESERVE: usize = 96 << 10;

/// Whether a write of `payload` over a kept-updates log of `log` bytes and
/// the values `values` (the variable, PK, KEK) fits the call arena: the
/// copies it makes (log with the new record, signed bytes, parsed and
/// merged lists at up to four times their size) plus the crypto.
fn fits_arena(payload: usize, log: usize, values: usize) -> bool {
    let need = log
        .saturating_add(payload)
        .saturating_mul(2)
        .saturating_add(payload.saturating_mul(4))
        .saturating_add(values.saturating_mul(6))
        .saturating_add(CRYPTO_RESERVE);
    need <= ARENA_SIZE
}

/// SetVariable of key variable `key` with an EFI_VARIABLE_AUTHENTICATION_2
/// payload: verified, stored and kept (the caller persists), or refused
/// with nothing changed. Runs in the call arena: every allocation is freed
/// or forgotten by the time it returns, and nothing it logs is printed
/// after ExitBootServices (the OS owns the serial port).
fn authenticated_write(key: KeyName, attributes: Attributes, payload: &[u8]) -> Result<(), Status> {
    let quiet = runtime_phase();
    // None: no keys were installed (a refused key input); nothing can be
    // verified, so nothing is accepted.
    let Some(Some(times)) = TIMES.try_with(|times| *times) else {
        return Err(Status::SECURITY_VIOLATION);
    };
    let log = kept_log();
    let needed = [key, KeyName::Pk, KeyName::Kek];
    let mut values: [Option<Vec<u8>>; 5] = Default::default();
    let mut value_bytes = 0usize;
    for k in needed {
        if values[k as usize].is_none() {
            let value = key_value(k);
            value_bytes = value_bytes.saturating_add(value.len());
            values[k as usize] = (!value.is_empty()).then_some(value);
        }
    }
    if !fits_arena(payload.len(), log.len(), value_bytes) {
        return Err(Status::OUT_OF_RESOURCES);
    }
    let old_value = values[key as usize].clone();
    let mut next = KeyState::new(values, times);
    let change = match next.apply(key, attributes, payload) {
        Ok(change) => change,
        Err(refusal) => {
            if !quiet {
                warn!("secure boot: write of {} refused: {refusal}", key.as_str());
            }
            return Err(match refusal {
                Refusal::Attributes(_) => Status::INVALID_PARAMETER,
                _ => Status::SECURITY_VIOLATION,
            });
        }
    };
    let old_len = log.len();
    let mut new_log = Vec::new();
    if new_log
        .try_reserve_exact(old_len + 9 + payload.len())
        .is_err()
    {
        return Err(Status::OUT_OF_RESOURCES);
    }
    new_log.extend_from_slice(&log);
    drop(log);
    let update = Update {
        key,
        attributes,
        payload,
    };
    kept_updates::push(&mut new_log, &update).ok_or(Status::OUT_OF_RESOURCES)?;
    let stored = store_key(key, next.get(key)).and_then(|()| store_log(&new_log));
    if let Err(e) = stored {
        if !quiet {
            warn!("secure boot: write of {} not stored: {e}", key.as_str());
        }
        let _ = store_key(key, old_value.as_deref()).and_then(|()| store_log(&new_log[..old_len]));
        return Err(e.status());
    }
    let setup = next.setup_mode();
    TIMES.with(|times| *times = Some(next.times()));
    // §32.3: SetupMode follows PK at once; SecureBoot at the next start.
    set_mode_variable("SetupMode", &[u8::from(setup)]);
    set_mode_variable("VendorKeys", &[0]);
    if !quiet {
        match change {
            Change::Set(len) => info!("secure boot: {} updated ({len} bytes)", key.as_str()),
            Change::Deleted => info!("secure boot: {} deleted", key.as_str()),
        }
    }
    Ok(())
}

fn utf16(name: &str) -> Vec<u16> {
    name.encode_utf16().collect()
}

/// The kept updates as `vars.bin` (or the last write) has them.
fn kept_log() -> Vec<u8> {
    let name = utf16(kept_updates::NAME);
    with_variables(|store| {
        store
            .find(&name, &kept_updates::VENDOR)
            .map(|v| v.data.to_vec())
    })
    .flatten()
    .unwrap_or_default()
}

/// Replaces the kept updates with `log` (deletes them when empty).
fn store_log(log: &[u8]) -> Result<(), VarError> {
    let name = utf16(kept_updates::NAME);
    let attributes = BS_RT.union(Attributes::NON_VOLATILE);
    with_variables(|store| {
        let exists = store.find(&name, &kept_updates::VENDOR).is_some();
        if log.is_empty() {
            return match exists {
                true => store.set(&name, &kept_updates::VENDOR, attributes, &[]),
                false => Ok(()),
            };
        }
        store.set(&name, &kept_updates::VENDOR, attributes, log)
    })
    .unwrap_or(Err(VarError::Unavailable))
}

/// Sets key variable `key` in the store to `value` (deletes it for None).
fn store_key(key: KeyName, value: Option<&[u8]>) -> Result<(), VarError> {
    let name = utf16(key.as_str());
    let guid = key.guid();
    with_variables(|store| {
        if store.find(&name, &guid).is_some() {
            store.set_authenticated_by_firmware(&name, &guid, Attributes::empty(), &[])?;
        }
        match value {
            Some(value) => store.set_authenticated_by_firmware(&name, &guid, KEY_ATTRIBUTES, value),
            None => Ok(()),
        }
    })
    .unwrap_or(Err(VarError::Unavailable))
}

/// The VMM's key input with the kept updates replayed on it, each verified
/// again; the ones that fail are dropped (one warning each) and the log
/// is rewritten without them.
fn replay(input: &KeyInput<'_>) -> (KeyState, usize) {
    let mut state = KeyState::from_input(input);
    let log = kept_log();
    let (updates, clean) = kept_updates::parse(&log);
    if !clean {
        warn!(
            "secure boot: kept updates truncated after record {}; the rest dropped",
            updates.len()
        );
    }
    let mut kept = Vec::new();
    for (index, update) in updates.iter().enumerate() {
        match state.apply(update.key, update.attributes, update.payload) {
            Ok(_) => {
                let _ = kept_updates::push(&mut kept, update);
            }
            Err(refusal) => warn!(
                "secure boot: kept update {index} ({}) dropped: {refusal}",
                update.key.as_str()
            ),
        }
    }
    let applied = kept_updates::parse(&kept).0.len();
    if kept != log
        && let Err(e) = store_log(&kept)
    {
        warn!("secure boot: kept updates not rewritten: {e}");
    }
    (state, applied)
}

/// Publishes the Secure Boot variables from the VMM's key input (None:
/// none was given) over whatever the store loaded from disk, and sets the
/// mode. Runs once, after the persisted store is loaded and before
/// anything is booted.
pub fn install(input: Option<&KeyInput<'_>>) {
    let empty = KeyInput::default();
    let (state, applied) = replay(input.unwrap_or(&empty));
    publish_keys(&state);
    let user_mode = !state.setup_mode();
    // VendorKeys (§3.3): 1 only while the keys are the VMM's unchanged.
    publish_mode(user_mode, user_mode && applied == 0);
    // Authenticated writes need the time stamps; without them (a refused
    // key input) every one is refused.
    TIMES.with(|slot| *slot = Some(state.times()));
    if user_mode {
        enforce();
        let size = |key| state.get(key).map_or(0, <[u8]>::len);
        info!(
            "secure boot: on, keys from the VMM and {applied} kept updates (PK, KEK {} bytes, db {} bytes, dbx {} bytes)",
            size(KeyName::Kek),
            size(KeyName::Db),
            size(KeyName::Dbx)
        );
    } else {
        info!("secure boot: off (setup mode, no PK; {applied} kept updates)");
    }
}

/// Secure Boot with no key at all, for a key input that was refused: the
/// VMM asked for a policy and did not get one, so no image outside the
/// firmware verifies, rather than every image running unverified.
pub fn install_without_keys() {
    // The kept updates are not replayed (on an empty baseline they could
    // enroll keys the VMM did not give), and no authenticated write is
    // taken: TIMES stays None.
    publish_keys(&KeyState::default());
    publish_mode(true, false);
    enforce();
    warn!("secure boot: on with no keys; no image from a disk will start");
}

/// The key variables as `state` has them; also installs the write rules,
/// before anything can call SetVariable.
fn publish_keys(state: &KeyState) {
    crate::runtime::set_write_guard(intercept_write);
    for key in KeyName::ALL {
        if let Err(e) = publish_key(key, state.get(key)) {
            warn!("secure boot: {} not published: {e}", key.as_str());
        }
    }
}

/// The mode variables: `enforced` is SecureBoot (and not SetupMode),
/// `vendor_keys` whether the keys in force are the VMM's.
fn publish_mode(enforced: bool, vendor_keys: bool) {
    let mode = |name: &str, value: bool| set_mode_variable(name, &[u8::from(value)]);
    mode("SetupMode", !enforced);
    mode("SecureBoot", enforced);
    mode("AuditMode", false);
    mode("DeployedMode", false);
    mode("VendorKeys", vendor_keys);
    let supported = [
        EFI_CERT_SHA256_GUID,
        EFI_CERT_X509_GUID,
        EFI_CERT_X509_SHA256_GUID,
    ]
    .concat();
    set_mode_variable("SignatureSupport", &supported);
}

/// Sets key variable `key` to `lists` (deletes it for None). A different
/// value loaded from `vars.bin` is the disk's, not the VMM's: reported.
fn publish_key(key: KeyName, lists: Option<&[u8]>) -> Result<(), VarError> {
    let name: Vec<u16> = key.as_str().encode_utf16().collect();
    let guid = key.guid();
    let on_disk = with_variables(|store| {
        store
            .find(&name, &guid)
            .map(|v| (v.attributes, v.data.to_vec()))
    })
    .flatten();
    let unchanged = match (&on_disk, lists) {
        (Some((attributes, data)), Some(lists)) => {
            *attributes == KEY_ATTRIBUTES && data.as_slice() == lists
        }
        (None, None) => true,
        _ => false,
    };
    if unchanged {
        return Ok(());
    }
    if let Some((_, found)) = &on_disk {
        warn!(
            "secure boot: {} in vars.bin is not the VMM's ({} bytes) nor a kept update's; the VMM's keys are kept",
            key.as_str(),
            found.len()
        );
    }
    store_key(key, lists)
}

fn set_mode_variable(name: &str, value: &[u8]) {
    let name16: Vec<u16> = name.encode_utf16().collect();
    let result = with_variables(|store| store.set(&name16, &GLOBAL, BS_RT, value))
        .unwrap_or(Err(VarError::Unavailable));
    if let Err(e) = result {
        warn!("secure boot: {name} not published: {e}");
    }
}

/// LoadImage's verdict on `image` while Secure Boot is on (§32.5.3.3):
/// db and dbx as they are now, one serial line either way, and a refused
/// image listed in the EFI_IMAGE_EXECUTION_INFO_TABLE. `name` is the file
/// the image came from, `device_path` its whole device path (may be empty).
pub fn image_allowed(image: &[u8], name: &str, device_path: &[u8]) -> bool {
    let db = key_value(KeyName::Db);
    let dbx = key_value(KeyName::Dbx);
    match ::secure_boot::verify_image(image, &db, &dbx) {
        Ok(allowed) => {
            info!("secure boot: {name} allowed: {allowed}");
            let entry = match allowed {
                ::secure_boot::Allowed::Certificate { entry, .. } => entry,
                ::secure_boot::Allowed::Hash { entry } => entry,
            };
            crate::tcg2::measure_authority(&db, entry.list, entry.index);
            true
        }
        Err(refused) => {
            warn!("secure boot: {name} refused (EFI_SECURITY_VIOLATION): {refused}");
            let name16: Vec<u16> = name.encode_utf16().collect();
            record_refusal(execution_info::record(&refused, &name16, device_path));
            false
        }
    }
}

/// The records of the EFI_IMAGE_EXECUTION_INFO_TABLE so far.
static REFUSED_IMAGES: Global<Vec<Vec<u8>>> = Global::new(Vec::new());
/// The installed table (pool memory, EfiRuntimeServicesData as in edk2).
static INSTALLED_TABLE: Global<Option<usize>> = Global::new(None);

/// Adds `record` and installs the grown table in place of the old one.
fn record_refusal(record: Vec<u8>) {
    let bytes = REFUSED_IMAGES.with(|records| {
        records.push(record);
        execution_info::table(records)
    });
    let Ok(table) = crate::pool::allocate(MemoryType::RUNTIME_SERVICES_DATA, bytes.len()) else {
        warn!("secure boot: no memory for the image execution information table");
        return;
    };
    // SAFETY: `table` was just allocated for `bytes.len()` bytes and is ours.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), table, bytes.len()) };
    if crate::tables::set_configuration_table(IMAGE_SECURITY_DATABASE, table.cast()).is_err() {
        let _ = crate::pool::free(table);
        return;
    }
    if let Some(old) = INSTALLED_TABLE.with(|installed| installed.replace(table as usize)) {
        let _ = crate::pool::free(old as *mut u8);
    }
}

/// The current value of key variable `key`; empty when it does not exist.
fn key_value(key: KeyName) -> Vec<u8> {
    let name: Vec<u16> = key.as_str().encode_utf16().collect();
    with_variables(|store| store.find(&name, &key.guid()).map(|v| v.data.to_vec()))
        .flatten()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_cannot_write_the_secure_boot_variables() {
        let at = KEY_ATTRIBUTES;
        for mode in MODE_VARIABLES {
            assert_eq!(
                intercept_write(&utf16(mode), &GLOBAL, BS_RT, &[1]),
                Some(Status::WRITE_PROTECTED)
            );
        }
        for key in KeyName::ALL {
            let name = utf16(key.as_str());
            // Not an EFI_VARIABLE_AUTHENTICATION_2 (and, before or
            // without install, nothing to verify against): refused.
            assert_eq!(
                intercept_write(&name, &key.guid(), at, &[]),
                Some(Status::SECURITY_VIOLATION)
            );
            assert_eq!(
                intercept_write(&name, &key.guid(), BS_RT, &[]),
                Some(Status::INVALID_PARAMETER)
            );
        }
        // The same names under another vendor GUID are ordinary variables.
        assert_eq!(
            intercept_write(
                &utf16(kept_updates::NAME),
                &kept_updates::VENDOR,
                BS_RT,
                &[1]
            ),
            Some(Status::WRITE_PROTECTED)
        );
        assert_eq!(intercept_write(&utf16("db"), &GLOBAL, BS_RT, &[]), None);
        assert_eq!(
            intercept_write(&utf16("SecureBoot"), &IMAGE_SECURITY_DATABASE, BS_RT, &[]),
            None
        );
        assert_eq!(
            intercept_write(&utf16("BootOrder"), &GLOBAL, BS_RT, &[]),
            None
        );
    }
}
