//! TPM 2.0 and TCG measured-boot formats, as pure code over byte slices:
//! the hash algorithms of PCR banks ([`alg`]), the crypto-agile event log
//! ([`log`]: writer, event data, parser, replay, an earlier stage's log)
//! and the TPM 2.0 commands the firmware sends ([`tpm2`]). Everything here is
//! independent of how the TPM is reached (the platform's CRB or FIFO
//! transport) and of UEFI (the TCG2 protocol in the `efi` crate).
//!
//! Spec vocabulary comes from uefi-raw (`AlgorithmId`, `EventType`).

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod alg;
pub mod log;
pub mod tpm2;
