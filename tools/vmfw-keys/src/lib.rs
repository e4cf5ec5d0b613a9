//! vmfw's Secure Boot key input (`efi::secure_boot::key_input` reads it):
//! PK, KEK, db, dbx and dbt as EFI_SIGNATURE_LISTs (UEFI 2.10 §32.4.1) in a
//! small container the VMM hands the firmware as a PVH module.

use secure_boot::signature_list::{
    self, EFI_CERT_SHA256_GUID, EFI_CERT_X509_GUID, Guid, Signature, SignatureList,
};

/// The container's magic, as the firmware checks it.
pub const MAGIC: &[u8; 8] = b"VMFWSBK1";

/// SignatureOwner of Microsoft's entries (the GUID Microsoft's own
/// signature lists carry).
pub const MICROSOFT_OWNER: Guid = guid("77fa9abd-0359-4d32-bd60-28f4e78f784b");
/// SignatureOwner of entries made here unless `--owner` says otherwise.
pub const VMFW_OWNER: Guid = guid("9d7c8f6e-3a52-4b1e-8f0d-6c2a41b5e7a3");

/// Microsoft's KEK CAs (certs/README.md).
pub const MICROSOFT_KEK: [&str; 2] = [
    include_str!("../certs/ms-kek-2011.pem"),
    include_str!("../certs/ms-kek-2023.pem"),
];
/// Microsoft's db CAs: Windows and third-party (UEFI CA), 2011 and 2023.
pub const MICROSOFT_DB: [&str; 4] = [
    include_str!("../certs/windows-2011.pem"),
    include_str!("../certs/ms-uefi-2011.pem"),
    include_str!("../certs/windows-2023.pem"),
    include_str!("../certs/ms-uefi-2023.pem"),
];

/// The key variables, in the container's order.
pub const KEYS: [&str; 5] = ["PK", "KEK", "db", "dbx", "dbt"];

/// A GUID in its EFI byte order from its text form; panics on a malformed
/// constant (only used on literals here and on `--owner`, checked first).
pub const fn guid(text: &str) -> Guid {
    match parse_guid(text) {
        Some(guid) => guid,
        None => panic!("malformed GUID"),
    }
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` into EFI byte order (the
/// first three groups little-endian).
pub const fn parse_guid(text: &str) -> Option<Guid> {
    let t = text.as_bytes();
    if t.len() != 36 || t[8] != b'-' || t[13] != b'-' || t[18] != b'-' || t[23] != b'-' {
        return None;
    }
    // Byte i of the EFI layout comes from the hex pair at text offset ORDER[i].
    const ORDER: [usize; 16] = [6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        let (Some(hi), Some(lo)) = (hex(t[ORDER[i]]), hex(t[ORDER[i] + 1])) else {
            return None;
        };
        out[i] = hi << 4 | lo;
        i += 1;
    }
    Some(out)
}

const fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A DER X.509 certificate from PEM or DER bytes, checked to parse.
pub fn certificate_der(bytes: &[u8]) -> Result<Vec<u8>, String> {
    // PEM files often carry openssl's text dump before the block.
    let pem_start = bytes.windows(10).position(|w| w == b"-----BEGIN");
    let der = if let Some(start) = pem_start {
        let (label, der) =
            pem_rfc7468::decode_vec(&bytes[start..]).map_err(|e| format!("PEM: {e}"))?;
        if label != "CERTIFICATE" {
            return Err(format!("PEM holds a {label}, not a CERTIFICATE"));
        }
        der
    } else {
        bytes.to_vec()
    };
    secure_boot::pkcs7::parse_certificate(&der).map_err(|e| format!("X.509: {e}"))?;
    Ok(der)
}

/// One signature list holding one X.509 certificate.
pub fn x509_list(der: &[u8], owner: Guid) -> SignatureList {
    SignatureList {
        signature_type: EFI_CERT_X509_GUID,
        header: Vec::new(),
        signature_size: (16 + der.len()) as u32,
        signatures: vec![Signature {
            owner,
            data: der.to_vec(),
        }],
    }
}

/// One signature list holding SHA-256 hashes (image digests for db/dbx).
pub fn sha256_list(hashes: &[[u8; 32]], owner: Guid) -> SignatureList {
    SignatureList {
        signature_type: EFI_CERT_SHA256_GUID,
        header: Vec::new(),
        signature_size: 16 + 32,
        signatures: hashes
            .iter()
            .map(|hash| Signature {
                owner,
                data: hash.to_vec(),
            })
            .collect(),
    }
}

/// The key input: `entries` pairs a key name of [`KEYS`] with its lists;
/// keys without lists are left out. Errors name the key.
pub fn key_input(entries: &[(&str, Vec<SignatureList>)]) -> Result<Vec<u8>, String> {
    let mut out = MAGIC.to_vec();
    for key in KEYS {
        let lists: Vec<SignatureList> = entries
            .iter()
            .filter(|(name, _)| *name == key)
            .flat_map(|(_, lists)| lists.iter().cloned())
            .collect();
        if lists.is_empty() {
            continue;
        }
        let data = signature_list::serialise(&lists).map_err(|e| format!("{key}: {e}"))?;
        let len = u32::try_from(data.len()).map_err(|_| format!("{key}: too large"))?;
        out.push(key.len() as u8);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_in_efi_byte_order() {
        // EFI_CERT_X509_GUID as the spec writes it.
        assert_eq!(
            guid("a5c059a1-94e4-4aa7-87b5-ab155c2bf072"),
            EFI_CERT_X509_GUID
        );
        assert_eq!(parse_guid("a5c059a1-94e4-4aa7-87b5-ab155c2bf07"), None);
        assert_eq!(parse_guid("a5c059a1x94e4-4aa7-87b5-ab155c2bf072"), None);
    }

    #[test]
    fn microsoft_certificates_parse() {
        for pem in MICROSOFT_KEK.iter().chain(&MICROSOFT_DB) {
            certificate_der(pem.as_bytes()).unwrap();
        }
    }

    #[test]
    fn a_key_input_has_the_magic_and_one_record_per_key() {
        let pk = certificate_der(MICROSOFT_KEK[0].as_bytes()).unwrap();
        let db = certificate_der(MICROSOFT_DB[1].as_bytes()).unwrap();
        let input = key_input(&[
            ("db", vec![x509_list(&db, MICROSOFT_OWNER)]),
            ("PK", vec![x509_list(&pk, VMFW_OWNER)]),
            ("db", vec![sha256_list(&[[7; 32]], VMFW_OWNER)]),
        ])
        .unwrap();
        assert!(input.starts_with(MAGIC));
        // PK first, then db with both lists.
        assert_eq!(&input[8..11], b"\x02PK");
        let pk_len = u32::from_le_bytes(input[11..15].try_into().unwrap()) as usize;
        let db_at = 15 + pk_len;
        assert_eq!(&input[db_at..db_at + 3], b"\x02db");
        let db_len = u32::from_le_bytes(input[db_at + 3..db_at + 7].try_into().unwrap()) as usize;
        let lists = signature_list::parse(&input[db_at + 7..db_at + 7 + db_len]).unwrap();
        assert_eq!(lists.len(), 2);
        assert_eq!(input.len(), db_at + 7 + db_len);
    }
}
