//! The Secure Boot core's parsers of guest-controlled bytes (`secure-boot`):
//! the first byte picks what the rest is.
//! - 0: a PE/COFF image: its Authenticode digest and certificate table
//!   (`authenticode::sha256`, `certificates`), and the raw WIN_CERTIFICATE
//!   walk over the whole input;
//! - 1: db/dbx data: EFI_SIGNATURE_LIST parse, serialise (round trip
//!   asserted) and the APPEND_WRITE merge of the input's two halves;
//! - 2: a PKCS#7 SignedData (Authenticode or EFI_VARIABLE_AUTHENTICATION_2):
//!   decode, the Authenticode digest, a detached verification;
//! - 3: the whole policy, `verify_image`, with the test db CA in db.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_boot::{authenticode, pkcs7, policy, signature_list};

/// The test db CA of secure-boot/tests/data (a self-signed RSA-2048 root).
const DB_CA: &[u8] = include_bytes!("../../secure-boot/tests/data/db-ca.der");

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let _ = authenticode::sha256(data);
            if let Ok(entries) = authenticode::certificates(data) {
                for e in entries {
                    let _ = e.signed_data();
                }
            }
            let _ = authenticode::walk(data);
        }
        1 => {
            if let Ok(lists) = signature_list::parse(data) {
                let bytes = signature_list::serialise(&lists).expect("parsed lists serialise");
                let again = signature_list::parse(&bytes).expect("serialised lists parse");
                let kept: Vec<_> = lists
                    .into_iter()
                    .filter(|l| !l.signatures.is_empty())
                    .collect();
                assert_eq!(again, kept, "round trip");
            }
            let (a, b) = data.split_at(data.len() / 2);
            if let Ok(merged) = signature_list::merge(a, b) {
                // Merging again adds nothing.
                assert_eq!(signature_list::merge(&merged, b).as_ref(), Ok(&merged));
            }
        }
        2 => {
            if let Ok(p7) = pkcs7::parse(data) {
                let _ = p7.authenticode_digest();
                let _ = p7.verify_authenticode(DB_CA);
                let _ = p7.verify_detached(b"payload", DB_CA);
            }
        }
        _ => {
            let db = db_list();
            let _ = policy::verify_image(data, &db, &[]);
        }
    }
});

fn db_list() -> Vec<u8> {
    signature_list::serialise(&[signature_list::SignatureList {
        signature_type: signature_list::EFI_CERT_X509_GUID,
        header: Vec::new(),
        signature_size: (16 + DB_CA.len()) as u32,
        signatures: vec![signature_list::Signature {
            owner: [0; 16],
            data: DB_CA.to_vec(),
        }],
    }])
    .expect("one certificate list")
}
