//! EFI_IMAGE_EXECUTION_INFO_TABLE (UEFI 2.10 §32.5.3.1): the configuration
//! table under EFI_IMAGE_SECURITY_DATABASE_GUID that lists the images
//! Secure Boot refused, so a loader or the OS can tell the user what did
//! not run and why (as edk2 does, only refused images are listed).
//!
//! ```text
//! EFI_IMAGE_EXECUTION_INFO_TABLE { UINTN NumberOfImages; EFI_IMAGE_EXECUTION_INFO[] }
//! EFI_IMAGE_EXECUTION_INFO { UINT32 Action; UINT32 InfoSize; CHAR16 Name[] (NUL-terminated);
//!   EFI_DEVICE_PATH DevicePath; EFI_SIGNATURE_LIST Signature (optional) }
//! ```

#![forbid(unsafe_code)]

use alloc::vec::Vec;

use ::secure_boot::Refused;
use ::secure_boot::signature_list::EFI_CERT_SHA256_GUID;

/// EFI_IMAGE_EXECUTION_ACTION values (§32.5.3.1).
pub const AUTH_SIG_FAILED: u32 = 0x1;
pub const AUTH_SIG_NOT_FOUND: u32 = 0x3;
pub const AUTH_SIG_FOUND: u32 = 0x4;
pub const POLICY_FAILED: u32 = 0x5;

/// The action recorded for a refusal: found in dbx, a signature that did
/// not verify, no signature db knows, or a policy that could not be read.
pub fn action(refused: &Refused) -> u32 {
    match refused {
        Refused::HashInDbx { .. }
        | Refused::CertificateInDbx { .. }
        | Refused::CertificateHashInDbx { .. } => AUTH_SIG_FOUND,
        Refused::NotInDb { signatures: 0, .. } => AUTH_SIG_NOT_FOUND,
        Refused::NotInDb { .. } | Refused::Malformed(_) => AUTH_SIG_FAILED,
        Refused::BadDb(_) | Refused::BadDbx(_) => POLICY_FAILED,
    }
}

/// One EFI_IMAGE_EXECUTION_INFO. `name` is UCS-2 without the NUL,
/// `device_path` a whole path (End-terminated; empty for none). An image
/// no db entry allows carries its SHA-256 as a one-entry EFI_CERT_SHA256
/// list, the entry a user would enroll in db to allow it.
pub fn record(refused: &Refused, name: &[u16], device_path: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&action(refused).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // InfoSize, below.
    for unit in name.iter().copied().chain([0]) {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out.extend_from_slice(device_path);
    if let Refused::NotInDb { sha256, .. } = refused {
        const LIST_HEADER: u32 = 28;
        const SIGNATURE_SIZE: u32 = 16 + 32;
        out.extend_from_slice(&EFI_CERT_SHA256_GUID);
        out.extend_from_slice(&(LIST_HEADER + SIGNATURE_SIZE).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&SIGNATURE_SIZE.to_le_bytes());
        out.extend_from_slice(&[0; 16]); // SignatureOwner: none.
        out.extend_from_slice(sha256);
    }
    let size = u32::try_from(out.len()).unwrap_or(u32::MAX);
    out[4..8].copy_from_slice(&size.to_le_bytes());
    out
}

/// The whole table over `records` (each from [`record`]).
pub fn table(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(records.len() as u64).to_le_bytes());
    for record in records {
        out.extend_from_slice(record);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_image_is_listed_with_its_hash() {
        let refused = Refused::NotInDb {
            signatures: 0,
            last_error: None,
            sha256: [0xab; 32],
        };
        let name: Vec<u16> = "\\X.EFI".encode_utf16().collect();
        let path = [0x7f, 0xff, 4, 0];
        let one = record(&refused, &name, &path);
        assert_eq!(&one[..4], &AUTH_SIG_NOT_FOUND.to_le_bytes());
        assert_eq!(
            u32::from_le_bytes(one[4..8].try_into().unwrap()) as usize,
            one.len()
        );
        let name_end = 8 + 2 * (name.len() + 1);
        assert_eq!(&one[name_end - 2..name_end], &[0, 0]);
        assert_eq!(&one[name_end..name_end + 4], &path);
        let list = &one[name_end + 4..];
        assert_eq!(&list[..16], &EFI_CERT_SHA256_GUID);
        assert_eq!(list.len(), 28 + 48);
        assert_eq!(&list[list.len() - 32..], &[0xab; 32]);

        let whole = table(&[one.clone(), one.clone()]);
        assert_eq!(&whole[..8], &2u64.to_le_bytes());
        assert_eq!(whole.len(), 8 + 2 * one.len());
    }

    #[test]
    fn a_revoked_image_is_signature_found_with_no_list() {
        let refused = Refused::HashInDbx {
            entry: ::secure_boot::policy::Entry {
                list: 0,
                index: 0,
                owner: [0; 16],
            },
        };
        let one = record(&refused, &[], &[]);
        assert_eq!(&one[..4], &AUTH_SIG_FOUND.to_le_bytes());
        assert_eq!(one.len(), 8 + 2);
    }
}
