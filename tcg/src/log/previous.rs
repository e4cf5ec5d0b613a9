//! Events an earlier firmware stage already measured and logged. Under QEMU
//! `-kernel` SeaBIOS runs first and, with a TPM 2.0, extends PCRs 0-7 and
//! logs in its own crypto-agile log in the area the ACPI TPM2 table's
//! LAML/LASA give (TCG ACPI Specification, TPM2 table: "Log Area Minimum
//! Length", "Log Area Start Address"; the TCPA table's for TPM 1.2). Our log must
//! carry those entries, or replaying it cannot reach the TPM's PCRs.
//!
//! Linux reads the log at the TPM2 table's LASA *before* the EFI one
//! (drivers/char/tpm/eventlog/common.c tries ACPI first, EFI only when the
//! table has no log area or, in newer kernels, the area holds no TPM 2.0
//! log). So the firmware, which forwards QEMU's TPM2 table unchanged,
//! writes its whole log into that area (`efi::tcg2::init`: copy the area,
//! [`import_previous`] the copy, start a [`super::LogWriter`] over the area
//! itself and [`append_raw`](super::LogWriter::append_raw) the imported
//! entries: both views are one log).

use alloc::vec::Vec;
use uefi_raw::protocol::tcg::AlgorithmId;

use super::LogError;
use super::event2::parse_at;
use super::spec_id::{LEGACY_HEADER_SIZE, SpecId, parse_first};
use super::wire::Reader;

/// The entries of an earlier stage's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousLog<'a> {
    pub spec_id: SpecId,
    /// Its banks, in its order (compare with the TPM's active banks before
    /// copying entries with [`super::LogWriter::append_raw`]).
    pub banks: Vec<AlgorithmId>,
    /// Each TCG_PCR_EVENT2 after the Spec ID event, whole, in order.
    pub events: Vec<&'a [u8]>,
    /// Bytes of log used in the area.
    pub len: usize,
}

/// Reads the log in `area` (a log area of LAML bytes): its Spec ID event
/// and the entries after it, up to the first empty entry (no digests: the
/// zeroed rest of the area) or the end of the area. None if the area holds
/// no log (its first entry's header is all zero: nothing ran before us, or
/// it did not log); an error if it holds something else.
pub fn import_previous(area: &[u8]) -> Result<Option<PreviousLog<'_>>, LogError> {
    let header = area.get(..LEGACY_HEADER_SIZE).unwrap_or(area);
    if header.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let (spec_id, mut offset) = parse_first(area)?;
    let mut events = Vec::new();
    loop {
        // PCRIndex, EventType and the digest count; a count of zero (or no
        // room for the three) ends the log.
        let mut r = Reader::new(&area[offset..]);
        let header = (r.u32(), r.u32(), r.u32());
        let empty = match header {
            (Some(_), Some(_), Some(count)) => count == 0,
            _ => true,
        };
        if empty {
            break;
        }
        let event = parse_at(area, offset, &spec_id)?;
        offset += event.raw.len();
        events.push(event.raw);
    }
    Ok(Some(PreviousLog {
        banks: spec_id.banks(),
        spec_id,
        events,
        len: offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogWriter, action};
    use alloc::vec;

    const BANKS: [AlgorithmId; 1] = [AlgorithmId::SHA256];

    fn area_with(events: usize, size: usize) -> (Vec<u8>, usize) {
        let mut area = vec![0; size];
        let mut log = LogWriter::new(&mut area, &BANKS).unwrap();
        let a = action("x");
        for _ in 0..events {
            log.append(2, a.event_type, &a.digests(&BANKS).unwrap(), &a.data)
                .unwrap();
        }
        let len = log.len();
        (area, len)
    }

    #[test]
    fn stops_at_the_first_empty_entry() {
        let (mut area, len) = area_with(2, 4096);
        // Garbage after an empty entry (12 zero bytes) is not read.
        area[len + 12..len + 40].fill(0xab);
        let previous = import_previous(&area).unwrap().unwrap();
        assert_eq!(previous.events.len(), 2);
        assert_eq!(previous.len, len);
        assert_eq!(previous.banks, BANKS);
        // A log that fills its area exactly, and one leaving fewer bytes
        // than a header.
        let exact = import_previous(&area[..len]).unwrap().unwrap();
        assert_eq!(exact.events.len(), 2);
        let short = import_previous(&area[..len + 5]).unwrap().unwrap();
        assert_eq!(short.events.len(), 2);
    }

    #[test]
    fn a_broken_entry_is_an_error() {
        let (area, len) = area_with(2, 4096);
        let first = import_previous(&area).unwrap().unwrap().events[0].len();
        // The second entry cut short by the area's end.
        assert!(import_previous(&area[..len - 1]).is_err());
        assert!(import_previous(&area[..len - first + 20]).is_err());
        // No log at all, and something that is not one.
        assert_eq!(import_previous(&[0; 64]), Ok(None));
        assert_eq!(import_previous(&[]), Ok(None));
        let mut not_a_log = [0; 64];
        not_a_log[40] = 1;
        assert_eq!(import_previous(&not_a_log), Ok(None));
        not_a_log[4] = 3;
        assert!(import_previous(&not_a_log).is_err());
    }
}
