//! Secure Boot's authenticated writes over guest-controlled bytes
//! (`efi::secure_boot`): the input is a kept-updates log as `vars.bin`
//! might hold it, replayed as the firmware does at every start on a
//! baseline with the test db CA as PK and KEK; every record's payload
//! also goes through the EFI_VARIABLE_AUTHENTICATION_2 parser. A refused
//! update must leave the state as it was.
#![no_main]

use efi::secure_boot::authenticated_write::KeyState;
use efi::secure_boot::key_input;
use efi::secure_boot::{auth2, kept_updates};
use libfuzzer_sys::fuzz_target;
use secure_boot::signature_list;

/// The test db CA of secure-boot/tests/data (a self-signed RSA-2048 root).
const DB_CA: &[u8] = include_bytes!("../../secure-boot/tests/data/db-ca.der");

fuzz_target!(|input: &[u8]| {
    let ca = ca_list();
    let mut container = key_input::MAGIC.to_vec();
    for name in ["PK", "KEK"] {
        container.push(name.len() as u8);
        container.extend_from_slice(name.as_bytes());
        container.extend_from_slice(&(ca.len() as u32).to_le_bytes());
        container.extend_from_slice(&ca);
    }
    let baseline = key_input::parse(&container).expect("the baseline parses");
    let mut state = KeyState::from_input(&baseline);
    let (updates, _) = kept_updates::parse(input);
    for update in updates {
        let _ = auth2::parse(update.payload);
        let before = state.clone();
        if state
            .apply(update.key, update.attributes, update.payload)
            .is_err()
        {
            assert_eq!(state, before, "a refused update changed the state");
        }
    }
});

fn ca_list() -> Vec<u8> {
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
