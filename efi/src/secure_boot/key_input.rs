//! The Secure Boot key input a VMM hands the firmware (README "Secure
//! Boot"): the initial PK, KEK, db, dbx and dbt as EFI_SIGNATURE_LISTs in
//! one small container, passed as a PVH module (QEMU `-initrd`, Cloud
//! Hypervisor `--initramfs`). The VMM and the firmware image are trusted;
//! the guest's disk is not, so the keys come from here and not from the
//! ESP.
//!
//! Format (all integers little-endian):
//!
//! ```text
//! "VMFWSBK1"                      magic and version
//! repeat until the end:
//!   u8   name length (1-3)       "PK", "KEK", "db", "dbx" or "dbt"
//!   name bytes                   ASCII, no NUL
//!   u32  data length             at least one EFI_SIGNATURE_LIST
//!   data                         EFI_SIGNATURE_LISTs (UEFI 2.10 §32.4.1)
//! ```
//!
//! Each name appears at most once; PK, when present, is one X.509
//! certificate (§32.3.1: PK holds a single EFI_CERT_X509_GUID entry).

#![forbid(unsafe_code)]

use core::fmt;

use ::secure_boot::signature_list::{self, EFI_CERT_X509_GUID};

/// The container's first eight bytes.
pub const MAGIC: &[u8; 8] = b"VMFWSBK1";

/// The key variables a key input may set, in the order they are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyName {
    Pk,
    Kek,
    Db,
    Dbx,
    Dbt,
}

impl KeyName {
    pub const ALL: [KeyName; 5] = [
        KeyName::Pk,
        KeyName::Kek,
        KeyName::Db,
        KeyName::Dbx,
        KeyName::Dbt,
    ];

    /// The variable's name, as the container and UEFI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyName::Pk => "PK",
            KeyName::Kek => "KEK",
            KeyName::Db => "db",
            KeyName::Dbx => "dbx",
            KeyName::Dbt => "dbt",
        }
    }

    fn from_bytes(name: &[u8]) -> Option<KeyName> {
        KeyName::ALL
            .into_iter()
            .find(|key| key.as_str().as_bytes() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A key input, borrowed from the module's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyInput<'a> {
    lists: [Option<&'a [u8]>; 5],
}

impl<'a> KeyInput<'a> {
    /// The EFI_SIGNATURE_LISTs given for `key`, if any.
    pub fn get(&self, key: KeyName) -> Option<&'a [u8]> {
        self.lists[key.index()]
    }
}

/// Why a key input was refused; the whole input is refused, never a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyInputError {
    /// The first eight bytes are not [`MAGIC`].
    NotKeyInput,
    /// A record runs past the end; the offset where it starts.
    Truncated {
        offset: usize,
    },
    /// A record's name is none of the key variables.
    UnknownName {
        offset: usize,
    },
    Duplicate(KeyName),
    /// The key's data is not a sequence of whole EFI_SIGNATURE_LISTs.
    BadSignatureList {
        key: KeyName,
    },
    /// PK must be exactly one X.509 certificate.
    PkNotOneCertificate,
}

impl fmt::Display for KeyInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyInputError::NotKeyInput => write!(f, "does not start with {:?}", "VMFWSBK1"),
            KeyInputError::Truncated { offset } => {
                write!(f, "record at byte {offset} runs past the end")
            }
            KeyInputError::UnknownName { offset } => {
                write!(f, "record at byte {offset} names no key variable")
            }
            KeyInputError::Duplicate(key) => write!(f, "{} given twice", key.as_str()),
            KeyInputError::BadSignatureList { key } => {
                write!(f, "{}: not a sequence of EFI_SIGNATURE_LISTs", key.as_str())
            }
            KeyInputError::PkNotOneCertificate => {
                f.write_str("PK is not exactly one X.509 certificate")
            }
        }
    }
}

/// Parses a key input; see the module documentation for the format.
pub fn parse(bytes: &[u8]) -> Result<KeyInput<'_>, KeyInputError> {
    let mut rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(KeyInputError::NotKeyInput)?;
    let mut input = KeyInput::default();
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let truncated = KeyInputError::Truncated { offset };
        let (&name_len, after) = rest.split_first().ok_or(truncated)?;
        let (name, after) = after
            .split_at_checked(usize::from(name_len))
            .ok_or(truncated)?;
        let key = KeyName::from_bytes(name).ok_or(KeyInputError::UnknownName { offset })?;
        let (len, after) = after.split_first_chunk::<4>().ok_or(truncated)?;
        let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| truncated)?;
        let (data, after) = after.split_at_checked(len).ok_or(truncated)?;
        if input.lists[key.index()].is_some() {
            return Err(KeyInputError::Duplicate(key));
        }
        check_signature_lists(key, data)?;
        input.lists[key.index()] = Some(data);
        rest = after;
    }
    Ok(input)
}

pub(super) fn check_signature_lists(key: KeyName, data: &[u8]) -> Result<(), KeyInputError> {
    let lists = match signature_list::parse(data) {
        Ok(lists) if !lists.is_empty() => lists,
        _ => return Err(KeyInputError::BadSignatureList { key }),
    };
    if key == KeyName::Pk
        && !matches!(lists.as_slice(), [one] if one.signature_type == EFI_CERT_X509_GUID && one.signatures.len() == 1)
    {
        return Err(KeyInputError::PkNotOneCertificate);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::secure_boot::signature_list::{EFI_CERT_SHA256_GUID, Guid};
    use alloc::vec::Vec;

    const LIST_HEADER_SIZE: usize = 28;
    const SIGNATURE_OWNER_SIZE: usize = 16;
    const CERT_X509: Guid = EFI_CERT_X509_GUID;
    const CERT_SHA256: Guid = EFI_CERT_SHA256_GUID;

    /// One EFI_SIGNATURE_LIST of `entries` signatures of `data_len` bytes.
    fn list(signature_type: Guid, entries: usize, data_len: usize) -> Vec<u8> {
        let signature_size = SIGNATURE_OWNER_SIZE + data_len;
        let mut out = Vec::new();
        out.extend_from_slice(&signature_type);
        out.extend_from_slice(
            &((LIST_HEADER_SIZE + entries * signature_size) as u32).to_le_bytes(),
        );
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(signature_size as u32).to_le_bytes());
        for i in 0..entries {
            out.extend_from_slice(&[0x11; SIGNATURE_OWNER_SIZE]);
            out.extend(core::iter::repeat_n(i as u8, data_len));
        }
        out
    }

    fn record(name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = vec![name.len() as u8];
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    fn input(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for r in records {
            out.extend_from_slice(r);
        }
        out
    }

    #[test]
    fn a_full_input_gives_each_key_its_lists() {
        let pk = list(CERT_X509, 1, 700);
        let mut db = list(CERT_X509, 2, 900);
        db.extend(list(CERT_SHA256, 3, 32));
        let dbx = list(CERT_SHA256, 1, 32);
        let bytes = input(&[record("PK", &pk), record("db", &db), record("dbx", &dbx)]);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.get(KeyName::Pk), Some(pk.as_slice()));
        assert_eq!(parsed.get(KeyName::Db), Some(db.as_slice()));
        assert_eq!(parsed.get(KeyName::Dbx), Some(dbx.as_slice()));
        assert_eq!(parsed.get(KeyName::Kek), None);
    }

    #[test]
    fn an_empty_container_is_setup_mode_input() {
        assert_eq!(parse(MAGIC).unwrap(), KeyInput::default());
    }

    #[test]
    fn anything_else_is_not_a_key_input() {
        assert_eq!(parse(b"\x1f\x8b\x08 gzip"), Err(KeyInputError::NotKeyInput));
        assert_eq!(parse(b""), Err(KeyInputError::NotKeyInput));
    }

    #[test]
    fn malformed_records_refuse_the_whole_input() {
        let db = list(CERT_SHA256, 1, 32);
        let good = record("db", &db);
        // Cut anywhere inside the record.
        for cut in 1..good.len() {
            let bytes = input(&[good[..cut].to_vec()]);
            assert!(parse(&bytes).is_err(), "cut at {cut}");
        }
        assert_eq!(
            parse(&input(&[record("DB", &db)])),
            Err(KeyInputError::UnknownName { offset: 8 })
        );
        assert_eq!(
            parse(&input(&[good.clone(), good.clone()])),
            Err(KeyInputError::Duplicate(KeyName::Db))
        );
        assert_eq!(
            parse(&input(&[record("dbx", &[])])),
            Err(KeyInputError::BadSignatureList { key: KeyName::Dbx })
        );
    }

    #[test]
    fn signature_lists_whose_sizes_do_not_add_up_are_refused() {
        let mut short = list(CERT_SHA256, 2, 32);
        short.truncate(short.len() - 1);
        let mut uneven = list(CERT_SHA256, 2, 32);
        uneven[16..20].copy_from_slice(&((LIST_HEADER_SIZE + 48 + 5) as u32).to_le_bytes());
        let mut huge_header = list(CERT_SHA256, 1, 32);
        huge_header[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        for bad in [short, uneven, huge_header] {
            assert_eq!(
                parse(&input(&[record("db", &bad)])),
                Err(KeyInputError::BadSignatureList { key: KeyName::Db })
            );
        }
    }

    #[test]
    fn pk_is_one_certificate() {
        for pk in [
            list(CERT_X509, 2, 700),
            list(CERT_SHA256, 1, 32),
            [list(CERT_X509, 1, 700), list(CERT_X509, 1, 700)].concat(),
        ] {
            assert_eq!(
                parse(&input(&[record("PK", &pk)])),
                Err(KeyInputError::PkNotOneCertificate)
            );
        }
    }
}
