//! Who may change a Secure Boot key variable, and to what (UEFI 2.10
//! §8.2.2, §32.3): the decision for one EFI_VARIABLE_AUTHENTICATION_2
//! write, made over the key variables' values and time stamps held in a
//! [`KeyState`]. Pure: the caller stores the result.
//!
//! | variable | user mode: signed by | setup mode (no PK) |
//! |---|---|---|
//! | `PK` | the current PK | the certificate it enrolls (self-signed) |
//! | `KEK` | PK | no signature checked |
//! | `db`, `dbx`, `dbt` | PK or any X.509 entry of KEK | no signature checked |
//!
//! This follows edk2's AuthVariableLib (ProcessVarWithPk, ProcessVarWithKek).
//! In every mode the header must be well formed, the TimeStamp later than
//! the stored one (APPEND_WRITE: any; the stored one becomes the later of
//! the two), and the data EFI_SIGNATURE_LISTs (PK: one X.509 certificate).
//! APPEND_WRITE merges the lists without duplicates; empty data without
//! APPEND_WRITE deletes the variable, whose TimeStamp is kept (stricter
//! than edk2, which forgets it: an old signed payload cannot be replayed
//! after a delete). Anything else is refused and the
//! state is unchanged.

#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt;

use ::secure_boot::signature_list::{self, EFI_CERT_X509_GUID};

use super::auth2::{self, Auth2Error, TimeStamp};
use super::key_input::{KeyInput, KeyName, check_signature_lists};
use crate::variables::Attributes;

/// The attributes a key variable write must carry (§32.3), APPEND_WRITE
/// aside.
pub const KEY_ATTRIBUTES: Attributes = Attributes::BOOTSERVICE_ACCESS
    .union(Attributes::RUNTIME_ACCESS)
    .union(Attributes::NON_VOLATILE)
    .union(Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS);

/// The key variables' values and the TimeStamp of each one's last
/// authenticated write (zero for a value from the VMM).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyState {
    values: [Option<Vec<u8>>; 5],
    times: [TimeStamp; 5],
}

/// Why an authenticated write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Attributes other than NV|BS|RT|TIME_BASED_AUTH (+APPEND_WRITE):
    /// EFI_INVALID_PARAMETER, as §8.2.3 answers an attribute mismatch.
    Attributes(u32),
    Header(Auth2Error),
    /// The TimeStamp is not later than the stored one.
    TimeStamp,
    /// The data are not acceptable signature lists for the variable.
    Data,
    /// No trusted key's signature verifies.
    Signature(::secure_boot::Error),
    /// Nobody may sign it now (deleting PK in setup mode, or a KEK/db
    /// write that needs a signer when none is enrolled).
    NoSigner,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Attributes(bits) => write!(f, "attributes {bits:#x}"),
            Refusal::Header(e) => e.fmt(f),
            Refusal::TimeStamp => f.write_str("TimeStamp not later than the stored one"),
            Refusal::Data => f.write_str("data are not valid EFI_SIGNATURE_LISTs"),
            Refusal::Signature(e) => write!(f, "signature: {e}"),
            Refusal::NoSigner => f.write_str("no key may sign it"),
        }
    }
}

/// What an accepted write changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The variable now holds this many bytes.
    Set(usize),
    Deleted,
}

impl KeyState {
    /// The VMM's key input as the starting point.
    pub fn from_input(input: &KeyInput<'_>) -> KeyState {
        let mut state = KeyState::default();
        for key in KeyName::ALL {
            state.values[key as usize] = input.get(key).map(<[u8]>::to_vec);
        }
        state
    }

    /// The state from values held elsewhere (the variable store) and the
    /// time stamps [`Self::times`] gave.
    pub fn new(values: [Option<Vec<u8>>; 5], times: [TimeStamp; 5]) -> KeyState {
        KeyState { values, times }
    }

    /// Each key variable's time stamp, in [`KeyName::ALL`] order.
    pub fn times(&self) -> [TimeStamp; 5] {
        self.times
    }

    pub fn get(&self, key: KeyName) -> Option<&[u8]> {
        self.values[key as usize].as_deref()
    }

    /// Setup mode: no PK (§32.3).
    pub fn setup_mode(&self) -> bool {
        self.get(KeyName::Pk).is_none()
    }

    /// Applies one SetVariable of `key` with `attributes` and `payload`
    /// (EFI_VARIABLE_AUTHENTICATION_2 and data), or refuses it and changes
    /// nothing.
    pub fn apply(
        &mut self,
        key: KeyName,
        attributes: Attributes,
        payload: &[u8],
    ) -> Result<Change, Refusal> {
        let append = attributes.contains(Attributes::APPEND_WRITE);
        if attributes - Attributes::APPEND_WRITE != KEY_ATTRIBUTES {
            return Err(Refusal::Attributes(attributes.bits()));
        }
        let auth = auth2::parse(payload).map_err(Refusal::Header)?;
        let index = key as usize;
        if !append && !auth.time_stamp.is_later_than(&self.times[index]) {
            return Err(Refusal::TimeStamp);
        }
        let delete = auth.data.is_empty() && !append;
        if !auth.data.is_empty() {
            check_signature_lists(key, auth.data).map_err(|_| Refusal::Data)?;
        }
        let name: Vec<u16> = key.as_str().encode_utf16().collect();
        let signed = auth2::signed_bytes(
            &name,
            &key.guid().to_bytes(),
            attributes.bits(),
            &auth.time_stamp,
            auth.data,
        );
        self.check_signer(key, auth.signed_data, &signed, auth.data)?;
        let new_value = match (&self.values[index], append) {
            _ if delete => None,
            (Some(existing), true) => {
                Some(signature_list::merge(existing, auth.data).map_err(|_| Refusal::Data)?)
            }
            (None, true) if auth.data.is_empty() => None,
            _ => Some(auth.data.to_vec()),
        };
        if key == KeyName::Pk && new_value.as_deref().is_some_and(|v| v != auth.data) {
            // An append to PK would make it two certificates (§32.3.1).
            return Err(Refusal::Data);
        }
        if append {
            if auth.time_stamp.is_later_than(&self.times[index]) {
                self.times[index] = auth.time_stamp;
            }
        } else {
            self.times[index] = auth.time_stamp;
        }
        let change = new_value
            .as_ref()
            .map_or(Change::Deleted, |v| Change::Set(v.len()));
        self.values[index] = new_value;
        Ok(change)
    }

    /// Verifies `signed_data` over `signed` with the keys that may sign
    /// `key` now (module table). `data` is the new value, whose own
    /// certificate signs a PK enrolled in setup mode.
    fn check_signer(
        &self,
        key: KeyName,
        signed_data: &[u8],
        signed: &[u8],
        data: &[u8],
    ) -> Result<(), Refusal> {
        let setup = self.setup_mode();
        let anchors: Vec<Vec<u8>> = match key {
            KeyName::Pk if setup => x509_entries(data),
            _ if setup => return Ok(()),
            KeyName::Pk | KeyName::Kek => x509_entries(self.get(KeyName::Pk).unwrap_or_default()),
            KeyName::Db | KeyName::Dbx | KeyName::Dbt => {
                let mut anchors = x509_entries(self.get(KeyName::Pk).unwrap_or_default());
                anchors.extend(x509_entries(self.get(KeyName::Kek).unwrap_or_default()));
                anchors
            }
        };
        if anchors.is_empty() {
            return Err(Refusal::NoSigner);
        }
        let pkcs7 = ::secure_boot::pkcs7::parse(signed_data).map_err(Refusal::Signature)?;
        let mut last = Refusal::NoSigner;
        for anchor in &anchors {
            match pkcs7.verify_detached(signed, anchor) {
                Ok(_) => return Ok(()),
                Err(e) => last = Refusal::Signature(e),
            }
        }
        Err(last)
    }
}

/// The DER certificates of the EFI_CERT_X509 entries in `lists`.
fn x509_entries(lists: &[u8]) -> Vec<Vec<u8>> {
    signature_list::parse(lists)
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l.signature_type == EFI_CERT_X509_GUID)
        .flat_map(|l| l.signatures.into_iter().map(|s| s.data))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::secure_boot::authenticode::{
        EFI_CERT_TYPE_PKCS7_GUID, WIN_CERT_REVISION_2_0, WIN_CERT_TYPE_EFI_GUID,
    };
    use ::secure_boot::signature_list::EFI_CERT_SHA256_GUID;

    /// One EFI_CERT_SHA256 list holding `hash`.
    fn hash_list(hash: u8) -> Vec<u8> {
        let mut out = EFI_CERT_SHA256_GUID.to_vec();
        out.extend_from_slice(&(28u32 + 48).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&48u32.to_le_bytes());
        out.extend_from_slice(&[0x11; 16]);
        out.extend_from_slice(&[hash; 32]);
        out
    }

    /// An unsigned payload (CertData not a SignedData) at `year`.
    fn payload(year: u16, data: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 16];
        out[..2].copy_from_slice(&year.to_le_bytes());
        out[2] = 1;
        out[3] = 1;
        let mut out = out.to_vec();
        out.extend_from_slice(&(24u32 + 2).to_le_bytes());
        out.extend_from_slice(&WIN_CERT_REVISION_2_0.to_le_bytes());
        out.extend_from_slice(&WIN_CERT_TYPE_EFI_GUID.to_le_bytes());
        out.extend_from_slice(&EFI_CERT_TYPE_PKCS7_GUID);
        out.extend_from_slice(&[0x30, 0x00]);
        out.extend_from_slice(data);
        out
    }

    const APPEND: Attributes = KEY_ATTRIBUTES.union(Attributes::APPEND_WRITE);

    #[test]
    fn setup_mode_takes_db_unsigned_with_later_time_stamps() {
        let mut state = KeyState::default();
        let one = hash_list(1);
        assert_eq!(
            state.apply(KeyName::Db, KEY_ATTRIBUTES, &payload(2020, &one)),
            Ok(Change::Set(one.len()))
        );
        // Same or older time stamp: refused, nothing changes.
        let before = state.clone();
        for year in [2019, 2020] {
            assert_eq!(
                state.apply(KeyName::Db, KEY_ATTRIBUTES, &payload(year, &hash_list(2))),
                Err(Refusal::TimeStamp)
            );
        }
        assert_eq!(state, before);
        // An append may be older; it merges without duplicates.
        let merged = state
            .apply(KeyName::Db, APPEND, &payload(2000, &hash_list(2)))
            .unwrap();
        assert_eq!(merged, Change::Set(28 + 2 * 48));
        assert_eq!(
            state.apply(KeyName::Db, APPEND, &payload(2000, &one)),
            Ok(Change::Set(28 + 2 * 48))
        );
        // Delete with empty data, then the time stamp is still held.
        assert_eq!(
            state.apply(KeyName::Db, KEY_ATTRIBUTES, &payload(2021, &[])),
            Ok(Change::Deleted)
        );
        assert_eq!(state.get(KeyName::Db), None);
        assert_eq!(
            state.apply(KeyName::Db, KEY_ATTRIBUTES, &payload(2021, &one)),
            Err(Refusal::TimeStamp)
        );
    }

    #[test]
    fn refuses_bad_data_attributes_and_unsigned_pk() {
        let mut state = KeyState::default();
        assert_eq!(
            state.apply(KeyName::Db, KEY_ATTRIBUTES, &payload(2020, b"junk")),
            Err(Refusal::Data)
        );
        assert_eq!(
            state.apply(
                KeyName::Db,
                KEY_ATTRIBUTES - Attributes::RUNTIME_ACCESS,
                &payload(2020, &hash_list(1))
            ),
            Err(Refusal::Attributes(
                (KEY_ATTRIBUTES - Attributes::RUNTIME_ACCESS).bits()
            ))
        );
        // PK must be one certificate, and in setup mode signed by it.
        assert_eq!(
            state.apply(KeyName::Pk, KEY_ATTRIBUTES, &payload(2020, &hash_list(1))),
            Err(Refusal::Data)
        );
        // Deleting a PK that is not there: nobody can sign that.
        assert_eq!(
            state.apply(KeyName::Pk, KEY_ATTRIBUTES, &payload(2020, &[])),
            Err(Refusal::NoSigner)
        );
        assert_eq!(state, KeyState::default());
    }
}
