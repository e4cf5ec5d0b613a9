//! Events an earlier firmware stage already measured and logged. Under QEMU
//! `-kernel` SeaBIOS runs first and, with a TPM 2.0, extends PCRs 0-7 and
//! logs in its own crypto-agile log in the area the ACPI TPM2 table's
//! LAML/LASA give (TCG ACPI Specification, TPM2 table: "Log Area Minimum
//! Length", "Log Area Start Address"; the TCPA table's for TPM 1.2). Our log must
//! carry those entries, or replaying it cannot reach the TPM's PCRs.

use alloc::vec::Vec;
use uefi_raw::protocol::tcg::AlgorithmId;

use super::LogError;
use super::event2::parse_at;
use super::spec_id::{SpecId, parse_first};
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
/// zeroed rest of the area) or the end of the area.
pub fn import_previous(area: &[u8]) -> Result<PreviousLog<'_>, LogError> {
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
    Ok(PreviousLog {
        banks: spec_id.banks(),
        spec_id,
        events,
        len: offset,
    })
}

/// Where an earlier stage's log lives: LASA and LAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogArea {
    pub address: u64,
    pub length: u32,
}

/// The log area of an ACPI "TPM2" table (TCG ACPI Specification:
/// after the 36-byte header, platform class and reserved (2 + 2 bytes),
/// the CRB control area address (8), start method (4) and its 12 bytes of
/// parameters come LAML (4) at offset 64 and LASA (8) at 68). None if the
/// table is shorter (the fields are optional) or the area is empty.
pub fn tpm2_table_log_area(table: &[u8]) -> Option<LogArea> {
    if table.get(..4)? != b"TPM2" {
        return None;
    }
    log_area_at(table, 64)
}

/// The log area of an ACPI "TCPA" client table (TCG ACPI Specification:
/// platform class (2 bytes) at 36, LAML at 38, LASA at 42).
pub fn tcpa_table_log_area(table: &[u8]) -> Option<LogArea> {
    if table.get(..4)? != b"TCPA" {
        return None;
    }
    log_area_at(table, 38)
}

fn log_area_at(table: &[u8], at: usize) -> Option<LogArea> {
    let mut r = Reader::new(table.get(at..)?);
    let length = r.u32()?;
    let address = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    (length != 0 && address != 0).then_some(LogArea { address, length })
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
        let previous = import_previous(&area).unwrap();
        assert_eq!(previous.events.len(), 2);
        assert_eq!(previous.len, len);
        assert_eq!(previous.banks, BANKS);
        // A log that fills its area exactly, and one leaving fewer bytes
        // than a header.
        let exact = import_previous(&area[..len]).unwrap();
        assert_eq!(exact.events.len(), 2);
        let short = import_previous(&area[..len + 5]).unwrap();
        assert_eq!(short.events.len(), 2);
    }

    #[test]
    fn a_broken_entry_is_an_error() {
        let (area, len) = area_with(2, 4096);
        let first = import_previous(&area).unwrap().events[0].len();
        // The second entry cut short by the area's end.
        assert!(import_previous(&area[..len - 1]).is_err());
        assert!(import_previous(&area[..len - first + 20]).is_err());
        // No Spec ID event.
        assert!(import_previous(&[0; 64]).is_err());
    }

    #[test]
    fn acpi_log_area_fields() {
        let mut tcpa = vec![0u8; 50];
        tcpa[..4].copy_from_slice(b"TCPA");
        tcpa[38..42].copy_from_slice(&0x1_0000u32.to_le_bytes());
        tcpa[42..50].copy_from_slice(&0x7fff_0000u64.to_le_bytes());
        assert_eq!(
            tcpa_table_log_area(&tcpa),
            Some(LogArea {
                address: 0x7fff_0000,
                length: 0x1_0000
            })
        );
        assert_eq!(tcpa_table_log_area(&tcpa[..49]), None);
        tcpa[42..50].fill(0);
        assert_eq!(tcpa_table_log_area(&tcpa), None);
        assert_eq!(tpm2_table_log_area(&tcpa), None);
    }
}
