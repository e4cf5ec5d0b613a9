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
//! log). So a firmware that forwards QEMU's TPM2 table unchanged must either
//! write its whole log into that area (copy the area, [`import_previous`]
//! the copy, start a [`super::LogWriter`] over the area itself and
//! [`append_raw`](super::LogWriter::append_raw) the imported entries: then
//! both views are one log), or clear LAML/LASA in the table it hands on.

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

/// Where an earlier stage's log lives: LASA and LAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogArea {
    pub address: u64,
    pub length: u32,
}

/// The log area of an ACPI "TPM2" table (TCG ACPI Specification: after
/// the 36-byte header, platform class and reserved (2 + 2 bytes), the CRB
/// control area address (8) and start method (4) come the start method's
/// parameters, 12 bytes up to table revision 4 and 16 from revision 5,
/// then LAML (4) and LASA (8): at 64 and 68 in QEMU's revision 4 table).
/// None if the table (by its Length field) ends before them (they are
/// optional) or the area is empty.
pub fn tpm2_table_log_area(table: &[u8]) -> Option<LogArea> {
    if table.get(..4)? != b"TPM2" {
        return None;
    }
    let table = within_length(table)?;
    let at = if *table.get(8)? >= 5 { 68 } else { 64 };
    log_area_at(table, at)
}

/// The log area of an ACPI "TCPA" client table (TCG ACPI Specification:
/// platform class (2 bytes) at 36, LAML at 38, LASA at 42).
pub fn tcpa_table_log_area(table: &[u8]) -> Option<LogArea> {
    if table.get(..4)? != b"TCPA" {
        return None;
    }
    log_area_at(within_length(table)?, 38)
}

/// The table up to its header's Length (the bytes after it are not its).
fn within_length(table: &[u8]) -> Option<&[u8]> {
    let length = u32::from_le_bytes(table.get(4..8)?.try_into().ok()?);
    table.get(..usize::try_from(length).ok()?)
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

    #[test]
    fn acpi_log_area_fields() {
        let mut tcpa = vec![0u8; 50];
        tcpa[..4].copy_from_slice(b"TCPA");
        tcpa[4] = 50;
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
        // Bytes past the Length field are not the table's.
        tcpa[4] = 49;
        assert_eq!(tcpa_table_log_area(&tcpa), None);
        tcpa[4] = 50;
        tcpa[42..50].fill(0);
        assert_eq!(tcpa_table_log_area(&tcpa), None);
        assert_eq!(tpm2_table_log_area(&tcpa), None);
    }

    #[test]
    fn tpm2_revision_5_has_longer_parameters() {
        let mut tpm2 = vec![0u8; 80];
        tpm2[..4].copy_from_slice(b"TPM2");
        tpm2[4] = 80;
        tpm2[8] = 5;
        tpm2[68..72].copy_from_slice(&0x1_0000u32.to_le_bytes());
        tpm2[72..80].copy_from_slice(&0xbfff_0000u64.to_le_bytes());
        let area = LogArea {
            address: 0xbfff_0000,
            length: 0x1_0000,
        };
        assert_eq!(tpm2_table_log_area(&tpm2), Some(area));
        tpm2[4] = 76;
        assert_eq!(tpm2_table_log_area(&tpm2), None);
    }
}
