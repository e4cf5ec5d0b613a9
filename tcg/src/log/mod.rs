//! The TPM 2.0 crypto-agile event log (EFI_TCG2_EVENT_LOG_FORMAT_TCG_2),
//! as the TCG PC Client Platform Firmware Profile (PFP, rev 1.05/1.06)
//! chapter 10 "Event Logging" and the TCG EFI Protocol Specification
//! (GetEventLog, EFI_TCG2_FINAL_EVENTS_TABLE) define it. Section numbers
//! are rev 1.05's (rev 1.04 numbers the same text one chapter lower, e.g.
//! §9.4.5.1); structures and events are named as the PFP names them.
//!
//! | piece | follows |
//! | --- | --- |
//! | [`spec_id`]: the first entry, a TCG_PCR_EVENT (SHA-1 format) carrying TCG_EfiSpecIDEvent "Spec ID Event03" | PFP §10.2 (TCG_PCR_EVENT), §10.4.5.1 (Specification ID Version Event) |
//! | [`event2`]: TCG_PCR_EVENT2 with TPML_DIGEST_VALUES | PFP §10.2 (crypto-agile entry; every entry carries every bank's digest) |
//! | [`LogWriter`]: the log in a fixed buffer, full is an error (EventLogTruncated) | TCG EFI Protocol Specification (GetEventLog, HashLogExtendEvent) |
//! | the event builders ([`Event`], [`gpt`], [`image_load`]...): event data and what each digest covers: UEFI_VARIABLE_DATA, UEFI_IMAGE_LOAD_EVENT, UEFI_GPT_DATA, UEFI_HANDOFF_TABLE_POINTERS2, UEFI_PLATFORM_FIRMWARE_BLOB2, EV_SEPARATOR, EV_EFI_ACTION, EV_S_CRTM_VERSION | PFP §10.4.1 (event types) and the chapter 10 structures, §3.3.4 (which PCR) |
//! | [`FinalEvents`]: EFI_TCG2_FINAL_EVENTS_TABLE in a fixed buffer | TCG EFI Protocol Specification (final events table) |
//! | [`parse()`] and [`replay()`] | PFP §10.2; TPM 2.0 Library Part 1 (PCR extend) |
//! | [`import_previous`]: SeaBIOS's log from the ACPI TPM2 table's LAML/LASA (the table itself: `platform::acpi::parse::Tpm2Table`) | TCG ACPI Specification (TPM2 table) |
//!
//! All of it is pure: byte slices in, byte vectors or errors out, checked
//! arithmetic, no panic on any input (the `event_log` fuzz target).
//!
//! What SeaBIOS (1.16, QEMU's) leaves in its log, for the firmware that
//! imports it: a Spec ID event (version 2.0, errata 2, uintnSize 2) with
//! every active bank, then TCG_PCR_EVENT2 entries with real per-bank
//! digests: PCR 1 EV_EVENT_TAG (SMBIOS), PCR 2 EV_ACTION "Start Option ROM
//! Scan" and an EV_EVENT_TAG per option ROM, PCR 4 EV_ACTION "Calling INT
//! 19h", and EV_SEPARATOR 0xFFFFFFFF in each of PCRs 0-7. The builders here
//! produce byte for byte what edk2 (OVMF) logs for the same events. Both
//! logs are test fixtures (tests/data/README.md).

mod event2;
mod events;
mod final_events;
mod parse;
mod previous;
mod replay;
pub mod spec_id;
mod wire;
mod writer;

pub use event2::{LogEvent, RawDigest, event2};
pub use events::{
    BankHasher, CALLING_EFI_APPLICATION, EXIT_BOOT_SERVICES_INVOCATION,
    EXIT_BOOT_SERVICES_SUCCEEDED, Event, RETURNING_FROM_EFI_APPLICATION, action, digests, gpt,
    handoff_tables2, image_load, platform_firmware_blob2, s_crtm_version, separator,
    separator_error, variable_authority, variable_boot, variable_boot2, variable_driver_config,
};
pub use final_events::{FINAL_EVENTS_TABLE_GUID, FINAL_EVENTS_TABLE_VERSION, FinalEvents};
pub use parse::{ParsedLog, parse};
pub use previous::{PreviousLog, import_previous};
pub use replay::{PCR_COUNT, PcrValues, replay};
pub use spec_id::SpecId;
pub use writer::LogWriter;

use uefi_raw::protocol::tcg::AlgorithmId;

/// Why a log could not be written or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogError {
    /// The log buffer has no room for the entry; nothing was written
    /// (EFI_TCG2_PROTOCOL reports EventLogTruncated).
    Full,
    /// A bank this crate cannot hash.
    UnsupportedAlgorithm(AlgorithmId),
    /// No banks, or a bank given twice.
    BadBanks,
    /// An entry's digests are not exactly the log's banks.
    BankMismatch,
    /// A field too large for its structure (event data over 4 GiB, a
    /// description over 255 bytes).
    TooLarge,
    /// Bytes that are not a well-formed log: `what` is wrong at `offset`.
    Malformed { offset: usize, what: &'static str },
}

/// The name of `bank` as Linux's sysfs and tpm2-tools spell it
/// (`/sys/class/tpm/tpm0/pcr-<name>/<index>`).
pub fn bank_name(bank: AlgorithmId) -> Option<&'static str> {
    Some(match bank {
        AlgorithmId::SHA1 => "sha1",
        AlgorithmId::SHA256 => "sha256",
        AlgorithmId::SHA384 => "sha384",
        AlgorithmId::SHA512 => "sha512",
        AlgorithmId::SM3_256 => "sm3_256",
        _ => return None,
    })
}
