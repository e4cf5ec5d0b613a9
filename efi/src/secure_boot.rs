//! Secure Boot's state and variables (UEFI 2.10 §32.3), with the keys from
//! the VMM's key input ([`key_input`]).
//!
//! The firmware image and the VMM are trusted, the guest's disk is not: PK,
//! KEK, db, dbx and dbt are published at every start from the key input,
//! never taken from `vars.bin`; a copy there that differs is reported and
//! replaced. With a PK the platform is in user mode and SecureBoot is 1;
//! without a key input (or with one that holds no PK) it is in setup mode
//! and SecureBoot is 0.
//!
//! | variable | attributes | value |
//! |---|---|---|
//! | `PK`, `KEK` (global), `db`, `dbx`, `dbt` (image security database) | NV,BS,RT,AT | the key input's signature lists |
//! | `SetupMode` | BS,RT | 1 without PK, else 0 |
//! | `SecureBoot` | BS,RT | 1 with PK, else 0 |
//! | `AuditMode`, `DeployedMode` | BS,RT | 0: neither mode is offered |
//! | `VendorKeys` | BS,RT | 1 when the keys are the VMM's (always, with PK), else 0 |
//! | `SignatureSupport` | BS,RT | EFI_CERT_SHA256, EFI_CERT_X509, EFI_CERT_X509_SHA256 |
//!
//! While SecureBoot is 1, LoadImage passes every image to
//! [`image_allowed`] (db/dbx, §32.5.3.3); refused ones are listed in the
//! EFI_IMAGE_EXECUTION_INFO_TABLE ([`execution_info`]).
//!
//! Callers of SetVariable get EFI_WRITE_PROTECTED for the mode variables
//! (§3.3 lists them read-only). Authenticated updates of the key variables
//! (EFI_VARIABLE_AUTHENTICATION_2, §8.2.2) are not implemented yet: such a
//! write gets EFI_UNSUPPORTED, and one without
//! TIME_BASED_AUTHENTICATED_WRITE_ACCESS gets EFI_INVALID_PARAMETER, as the
//! spec requires for these variables.

pub mod execution_info;
pub mod key_input;

use alloc::vec::Vec;

use log::{info, warn};
use platform::memory::MemoryType;
use platform::sync::Global;
use uefi_raw::table::runtime::VariableVendor;
use uefi_raw::{Guid, Status};

use crate::runtime::with_variables;
use crate::variables::{Attributes, VarError};
use ::secure_boot::signature_list::{
    EFI_CERT_SHA256_GUID, EFI_CERT_X509_GUID, EFI_CERT_X509_SHA256_GUID,
};
use key_input::{KeyInput, KeyName};

const GLOBAL: Guid = VariableVendor::GLOBAL_VARIABLE.0;
/// EFI_IMAGE_SECURITY_DATABASE_GUID (§32.6.1): db, dbx, dbt.
pub const IMAGE_SECURITY_DATABASE: Guid = VariableVendor::IMAGE_SECURITY_DATABASE.0;

const BS_RT: Attributes = Attributes::BOOTSERVICE_ACCESS.union(Attributes::RUNTIME_ACCESS);
/// §32.3: the key variables are non-volatile, time-based authenticated.
const KEY_ATTRIBUTES: Attributes = BS_RT
    .union(Attributes::NON_VOLATILE)
    .union(Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS);

/// The read-only variables describing the mode (§3.3, §32.3).
const MODE_VARIABLES: [&str; 6] = [
    "SetupMode",
    "SecureBoot",
    "AuditMode",
    "DeployedMode",
    "VendorKeys",
    "SignatureSupport",
];

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

/// What SetVariable must answer a caller writing `name`, when it is one
/// of Secure Boot's variables; None for every other variable.
pub fn refuse_write(name: &[u16], guid: &Guid, attributes: Attributes) -> Option<Status> {
    if *guid == GLOBAL
        && MODE_VARIABLES
            .iter()
            .any(|mode| mode.encode_utf16().eq(name.iter().copied()))
    {
        return Some(Status::WRITE_PROTECTED);
    }
    KeyName::of(name, guid)?;
    Some(
        if attributes.contains(Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS) {
            Status::UNSUPPORTED
        } else {
            Status::INVALID_PARAMETER
        },
    )
}

/// Publishes the Secure Boot variables from the VMM's key input (None:
/// none was given) over whatever the store loaded from disk, and sets the
/// mode. Runs once, after the persisted store is loaded and before
/// anything is booted.
pub fn install(input: Option<&KeyInput<'_>>) {
    let empty = KeyInput::default();
    let input = input.unwrap_or(&empty);
    publish_keys(input);
    let user_mode = input.get(KeyName::Pk).is_some();
    publish_mode(user_mode, user_mode);
    if user_mode {
        enforce();
        let size = |key| input.get(key).map_or(0, <[u8]>::len);
        info!(
            "secure boot: on, keys from the VMM (PK, KEK {} bytes, db {} bytes, dbx {} bytes)",
            size(KeyName::Kek),
            size(KeyName::Db),
            size(KeyName::Dbx)
        );
    } else {
        info!("secure boot: off (setup mode, no PK from the VMM)");
    }
}

/// Secure Boot with no key at all, for a key input that was refused: the
/// VMM asked for a policy and did not get one, so no image outside the
/// firmware verifies, rather than every image running unverified.
pub fn install_without_keys() {
    publish_keys(&KeyInput::default());
    publish_mode(true, false);
    enforce();
    warn!("secure boot: on with no keys; no image from a disk will start");
}

/// The key variables as `input` has them; also installs the write rules,
/// before anything can call SetVariable.
fn publish_keys(input: &KeyInput<'_>) {
    crate::runtime::set_write_guard(refuse_write);
    for key in KeyName::ALL {
        if let Err(e) = publish_key(key, input.get(key)) {
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
            "secure boot: {} in vars.bin is not the VMM's ({} bytes); the VMM's keys are kept",
            key.as_str(),
            found.len()
        );
    }
    with_variables(|store| {
        if on_disk.is_some() {
            store.set_authenticated_by_firmware(&name, &guid, Attributes::empty(), &[])?;
        }
        match lists {
            Some(lists) => store.set_authenticated_by_firmware(&name, &guid, KEY_ATTRIBUTES, lists),
            None => Ok(()),
        }
    })
    .unwrap_or(Err(VarError::Unavailable))
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

    fn utf16(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn callers_cannot_write_the_secure_boot_variables() {
        let at = BS_RT | Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
        for mode in MODE_VARIABLES {
            assert_eq!(
                refuse_write(&utf16(mode), &GLOBAL, BS_RT),
                Some(Status::WRITE_PROTECTED)
            );
        }
        for key in KeyName::ALL {
            let name = utf16(key.as_str());
            assert_eq!(
                refuse_write(&name, &key.guid(), at),
                Some(Status::UNSUPPORTED)
            );
            assert_eq!(
                refuse_write(&name, &key.guid(), BS_RT),
                Some(Status::INVALID_PARAMETER)
            );
        }
        // The same names under another vendor GUID are ordinary variables.
        assert_eq!(refuse_write(&utf16("db"), &GLOBAL, BS_RT), None);
        assert_eq!(
            refuse_write(&utf16("SecureBoot"), &IMAGE_SECURITY_DATABASE, BS_RT),
            None
        );
        assert_eq!(refuse_write(&utf16("BootOrder"), &GLOBAL, BS_RT), None);
    }
}
