//! Reading a whole crypto-agile log (the bytes GetEventLog points at, or
//! Linux's `binary_bios_measurements`): the Spec ID event, then
//! TCG_PCR_EVENT2 entries to the end of the bytes or an all-zero tail
//! (the unused rest of a fixed log area).

use alloc::vec::Vec;

use super::LogError;
use super::event2::{LogEvent, parse_at};
use super::spec_id::{SpecId, parse_first};

/// A parsed log, borrowing its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedLog<'a> {
    pub spec_id: SpecId,
    /// Every TCG_PCR_EVENT2 after the Spec ID event, in order.
    pub events: Vec<LogEvent<'a>>,
    /// Bytes of log before the all-zero tail (or the end).
    pub len: usize,
}

/// Parses `log`. Fails on a first entry that is not a crypto-agile Spec ID
/// event and on any entry that runs past the bytes, has an algorithm the
/// Spec ID event does not size, or repeats an algorithm.
pub fn parse(log: &[u8]) -> Result<ParsedLog<'_>, LogError> {
    let (spec_id, mut offset) = parse_first(log)?;
    let mut events = Vec::new();
    while offset < log.len() {
        if log[offset..].iter().all(|&b| b == 0) {
            break;
        }
        let event = parse_at(log, offset, &spec_id)?;
        offset += event.raw.len();
        events.push(event);
    }
    Ok(ParsedLog {
        spec_id,
        events,
        len: offset,
    })
}
