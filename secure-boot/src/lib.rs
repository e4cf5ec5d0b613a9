//! The UEFI Secure Boot verification core (UEFI 2.10 §32), pure functions
//! over byte slices: the Authenticode digest and certificate table of a
//! PE/COFF image, PKCS#7 SignedData verification against a trust anchor,
//! EFI_SIGNATURE_LIST parsing and merging, and the db/dbx image policy.
//!
//! Nothing here touches the firmware: the caller hands in the image and the
//! db/dbx variable contents and gets a verdict it can log and act on. The
//! cryptography is RustCrypto's (sha2, rsa, der, x509-cert, cms); this crate
//! only decides which bytes are hashed and which keys are trusted.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod authenticode;
pub mod error;
pub mod pkcs7;
pub mod policy;
pub mod signature_list;
mod signed_data;

pub use error::Error;
pub use policy::{Allowed, Refused, verify_image};
