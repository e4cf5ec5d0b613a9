//! EFI_SIGNATURE_LIST / EFI_SIGNATURE_DATA (UEFI 2.10 §32.4.1): the format of
//! PK, KEK, db and dbx. Parse, serialise, and merge for
//! EFI_VARIABLE_APPEND_WRITE (§8.2.1: "the firmware ... shall not append
//! duplicate signatures").
//!
//! ```text
//! EFI_SIGNATURE_LIST { SignatureType: GUID, SignatureListSize: u32,
//!   SignatureHeaderSize: u32, SignatureSize: u32,
//!   SignatureHeader[SignatureHeaderSize], Signatures[..][SignatureSize] }
//! EFI_SIGNATURE_DATA { SignatureOwner: GUID, SignatureData[SignatureSize - 16] }
//! ```

use alloc::vec::Vec;

use crate::authenticode::guid_bytes;
use crate::error::Error;

/// An EFI_GUID in its on-disk byte order.
pub type Guid = [u8; 16];

// The GUIDs of UEFI 2.10 §32.4.1 (neither r-efi nor uefi-raw defines them).
/// EFI_CERT_SHA256_GUID: SignatureData is a 32-byte SHA-256 (image) hash.
pub const EFI_CERT_SHA256_GUID: Guid = guid_bytes(
    0xc1c41626,
    0x504c,
    0x4092,
    [0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28],
);
/// EFI_CERT_X509_GUID: SignatureData is one DER X.509 certificate.
pub const EFI_CERT_X509_GUID: Guid = guid_bytes(
    0xa5c059a1,
    0x94e4,
    0x4aa7,
    [0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72],
);
/// EFI_CERT_X509_SHA256_GUID: SignatureData is EFI_CERT_X509_SHA256, the
/// SHA-256 of a certificate's TBSCertificate and a 16-byte EFI_TIME of
/// revocation.
pub const EFI_CERT_X509_SHA256_GUID: Guid = guid_bytes(
    0x3bd2a492,
    0x96c0,
    0x4079,
    [0xb4, 0x20, 0xfc, 0xf9, 0x8e, 0xf1, 0x03, 0xed],
);

/// Bytes of the fixed EFI_SIGNATURE_LIST header.
const LIST_HEADER: usize = 28;
/// Bytes of EFI_SIGNATURE_DATA.SignatureOwner.
const OWNER: usize = 16;

/// One EFI_SIGNATURE_DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub owner: Guid,
    pub data: Vec<u8>,
}

/// One EFI_SIGNATURE_LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureList {
    pub signature_type: Guid,
    pub header: Vec<u8>,
    /// SignatureSize: every entry is this long (owner included).
    pub signature_size: u32,
    pub signatures: Vec<Signature>,
}

fn bad(field: &'static str, value: usize) -> Error {
    Error::SignatureList {
        field,
        value: value as u64,
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The SignatureData length the spec fixes for a type, if it does.
fn fixed_data_size(signature_type: &Guid) -> Option<usize> {
    match *signature_type {
        EFI_CERT_SHA256_GUID => Some(32),
        EFI_CERT_X509_SHA256_GUID => Some(32 + 16),
        _ => None,
    }
}

/// Parses a variable's data as a sequence of EFI_SIGNATURE_LISTs. Sizes that
/// do not add up, entries shorter than their owner GUID, or a hash list whose
/// SignatureSize is not the one §32.4.1 fixes for its type are refused.
pub fn parse(mut data: &[u8]) -> Result<Vec<SignatureList>, Error> {
    let mut lists = Vec::new();
    let mut offset = 0usize;
    while !data.is_empty() {
        let head = data.get(..LIST_HEADER).ok_or(bad("header at", offset))?;
        let list_size = u32_at(head, 16) as usize;
        let header_size = u32_at(head, 20) as usize;
        let signature_size = u32_at(head, 24);
        let size = signature_size as usize;
        let body = LIST_HEADER
            .checked_add(header_size)
            .filter(|&b| b <= list_size)
            .ok_or(bad("SignatureHeaderSize", header_size))?;
        let list = data
            .get(..list_size)
            .ok_or(bad("SignatureListSize", list_size))?;
        if size <= OWNER || !(list_size - body).is_multiple_of(size) {
            return Err(bad("SignatureSize", size));
        }
        let mut signature_type = [0u8; 16];
        signature_type.copy_from_slice(&head[..16]);
        if fixed_data_size(&signature_type).is_some_and(|n| n + OWNER != size) {
            return Err(bad("SignatureSize", size));
        }
        let signatures = list[body..]
            .chunks_exact(size)
            .map(|entry| {
                let mut owner = [0u8; 16];
                owner.copy_from_slice(&entry[..OWNER]);
                Signature {
                    owner,
                    data: entry[OWNER..].to_vec(),
                }
            })
            .collect();
        lists.push(SignatureList {
            signature_type,
            header: list[LIST_HEADER..body].to_vec(),
            signature_size,
            signatures,
        });
        data = &data[list_size..];
        offset += list_size;
    }
    Ok(lists)
}

/// Serialises lists back to the variable format. Lists with no entry are
/// dropped (an empty list carries nothing and §32.4.1 gives it no meaning).
pub fn serialise(lists: &[SignatureList]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for list in lists.iter().filter(|l| !l.signatures.is_empty()) {
        let size = list.signature_size as usize;
        let total = list
            .signatures
            .len()
            .checked_mul(size)
            .and_then(|n| n.checked_add(LIST_HEADER + list.header.len()))
            .filter(|&n| u32::try_from(n).is_ok())
            .ok_or(bad("SignatureListSize", list.signatures.len()))?;
        let header_size = u32::try_from(list.header.len())
            .map_err(|_| bad("SignatureHeaderSize", list.header.len()))?;
        out.extend_from_slice(&list.signature_type);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&header_size.to_le_bytes());
        out.extend_from_slice(&list.signature_size.to_le_bytes());
        out.extend_from_slice(&list.header);
        for s in &list.signatures {
            if s.data.len().checked_add(OWNER) != Some(size) {
                return Err(bad("SignatureSize", s.data.len()));
            }
            out.extend_from_slice(&s.owner);
            out.extend_from_slice(&s.data);
        }
    }
    Ok(out)
}

/// The EFI_VARIABLE_APPEND_WRITE merge of `new` into `existing` (both in
/// the variable format): entries whose type and SignatureData already
/// appear are dropped (the owner does not make an entry new, as in edk2);
/// the rest join an existing list of the same type, header and
/// SignatureSize, or follow as a new list.
pub fn merge(existing: &[u8], new: &[u8]) -> Result<Vec<u8>, Error> {
    let mut lists = parse(existing)?;
    for incoming in parse(new)? {
        for signature in incoming.signatures {
            let present = lists.iter().any(|l| {
                l.signature_type == incoming.signature_type
                    && l.signatures.iter().any(|s| s.data == signature.data)
            });
            if present {
                continue;
            }
            let same = lists.iter_mut().find(|l| {
                l.signature_type == incoming.signature_type
                    && l.header == incoming.header
                    && l.signature_size == incoming.signature_size
            });
            match same {
                Some(list) => list.signatures.push(signature),
                None => lists.push(SignatureList {
                    signature_type: incoming.signature_type,
                    header: incoming.header.clone(),
                    signature_size: incoming.signature_size,
                    signatures: alloc::vec![signature],
                }),
            }
        }
    }
    serialise(&lists)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const OWNER_A: Guid = [0xaa; 16];

    fn hash_list(hashes: &[[u8; 32]]) -> Vec<u8> {
        serialise(&[SignatureList {
            signature_type: EFI_CERT_SHA256_GUID,
            header: vec![],
            signature_size: 48,
            signatures: hashes
                .iter()
                .map(|h| Signature {
                    owner: OWNER_A,
                    data: h.to_vec(),
                })
                .collect(),
        }])
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let bytes = hash_list(&[[1; 32], [2; 32]]);
        assert_eq!(bytes.len(), 28 + 2 * 48);
        let lists = parse(&bytes).unwrap();
        assert_eq!(lists.len(), 1);
        assert_eq!(lists[0].signatures[1].data, vec![2; 32]);
        assert_eq!(serialise(&lists).unwrap(), bytes);
        assert_eq!(parse(&[]).unwrap(), vec![]);
    }

    #[test]
    fn merge_drops_duplicates_and_joins_lists() {
        let a = hash_list(&[[1; 32]]);
        let b = hash_list(&[[1; 32], [2; 32]]);
        let merged = merge(&a, &b).unwrap();
        assert_eq!(merged, hash_list(&[[1; 32], [2; 32]]));
        assert_eq!(merge(&merged, &b).unwrap(), merged);
        // A certificate is a list of its own (its size differs).
        let cert = serialise(&[SignatureList {
            signature_type: EFI_CERT_X509_GUID,
            header: vec![],
            signature_size: 16 + 3,
            signatures: vec![Signature {
                owner: OWNER_A,
                data: vec![0x30, 1, 0],
            }],
        }])
        .unwrap();
        let both = merge(&merged, &cert).unwrap();
        assert_eq!(parse(&both).unwrap().len(), 2);
        assert_eq!(merge(&both, &cert).unwrap(), both);
        assert_eq!(merge(&[], &both).unwrap(), both);
    }

    #[test]
    fn hostile_sizes_are_refused() {
        let good = hash_list(&[[1; 32]]);
        let set = |at: usize, v: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            b
        };
        for (bytes, field) in [
            (set(16, u32::MAX), "SignatureListSize"),
            (set(16, 27), "SignatureHeaderSize"),
            (set(20, u32::MAX), "SignatureHeaderSize"),
            (set(24, 0), "SignatureSize"),
            (set(24, 16), "SignatureSize"),
            (set(24, 47), "SignatureSize"),
            (set(24, u32::MAX), "SignatureSize"),
        ] {
            match parse(&bytes) {
                Err(Error::SignatureList { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        // A SHA-256 list whose SignatureSize is not 16 + 32.
        let mut odd = set(24, 16 + 4);
        odd[16..20].copy_from_slice(&(28u32 + 20).to_le_bytes());
        assert!(parse(&odd[..48]).is_err());
        for len in 0..good.len() {
            assert!(parse(&good[..len]).is_err() || len == 0);
        }
    }
}
