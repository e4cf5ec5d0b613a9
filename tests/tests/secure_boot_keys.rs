//! The Secure Boot verification core (`secure-boot` crate) on the real
//! signed binaries Debian ships: Debian 12's and 13's shim, signed by
//! Microsoft, and Debian 12's GRUB, signed by Debian. A host-only test (no
//! VM); it needs the Debian packages (`deb`, `deb_trixie`, cached in .cache/).
//!
//! The anchors are public certificates committed under
//! secure-boot/tests/data/, taken from the PyPI package virt-firmware 26.10
//! (`virt/firmware/certs/`): `microsoft.com/ms-uefi-2011.pem` ("Microsoft
//! Corporation UEFI CA 2011", SHA-256 fingerprint 48:E9:9B:99:...:85:07) and
//! `debian.org/debian-2016.pem` ("Debian Secure Boot CA", 07:96:46:97:...:F1:A2),
//! converted to DER with `openssl x509 -outform DER`.

use std::path::Path;

use secure_boot::policy::{Allowed, Refused};
use secure_boot::signature_list::{self, EFI_CERT_X509_GUID, Signature, SignatureList};
use vm_tests::deb::{deb, deb_trixie};
use vm_tests::images::{SIGNED_GRUB, SIGNED_SHIM};
use vm_tests::workspace_root;

/// An owner GUID for the test lists (its value does not matter to the policy).
const OWNER: [u8; 16] = [0x77; 16];

fn cert(name: &str) -> Vec<u8> {
    let path = workspace_root().join("secure-boot/tests/data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A db holding one X.509 certificate.
fn db_of(der: &[u8]) -> Vec<u8> {
    signature_list::serialise(&[SignatureList {
        signature_type: EFI_CERT_X509_GUID,
        header: Vec::new(),
        signature_size: (16 + der.len()) as u32,
        signatures: vec![Signature {
            owner: OWNER,
            data: der.to_vec(),
        }],
    }])
    .unwrap()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check(image: &[u8], anchor: &str) -> Result<Allowed, Refused> {
    let verdict = secure_boot::verify_image(image, &db_of(&cert(anchor)), &[]);
    match &verdict {
        Ok(a) => println!("allowed: {a}"),
        Err(r) => println!("refused: {r}"),
    }
    verdict
}

#[test]
fn debian_12_shim_is_allowed_by_microsofts_uefi_ca() {
    let shim = read(&deb("shim-signed").join(SIGNED_SHIM));
    assert!(matches!(
        check(&shim, "ms-uefi-ca-2011.der"),
        Ok(Allowed::Certificate { signature: 0, .. })
    ));
    // Any other certificate in db: refused, the signatures found (Debian
    // 12's shim carries two) but untrusted.
    assert!(matches!(
        check(&shim, "other-ca.der"),
        Err(Refused::NotInDb { signatures: 2, .. })
    ));
    assert!(check(&shim, "debian-secure-boot-ca.der").is_err());
}

#[test]
fn debian_13_shim_is_allowed_by_microsofts_uefi_ca() {
    let shim = read(&deb_trixie("shim-signed").join(SIGNED_SHIM));
    assert!(check(&shim, "ms-uefi-ca-2011.der").is_ok());
    assert!(check(&shim, "other-ca.der").is_err());
}

#[test]
fn debian_12_grub_is_allowed_by_debians_ca_not_microsofts() {
    let grub = read(&deb("grub-efi-amd64-signed").join(SIGNED_GRUB));
    assert!(matches!(
        check(&grub, "debian-secure-boot-ca.der"),
        Ok(Allowed::Certificate { .. })
    ));
    assert!(check(&grub, "ms-uefi-ca-2011.der").is_err());
}

#[test]
fn a_flipped_byte_in_shim_is_refused() {
    let mut shim = read(&deb("shim-signed").join(SIGNED_SHIM));
    shim[0x1000] ^= 1;
    assert!(matches!(
        check(&shim, "ms-uefi-ca-2011.der"),
        Err(Refused::NotInDb { .. })
    ));
}
