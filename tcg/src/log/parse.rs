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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::spec_id::LEGACY_HEADER_SIZE;
    use crate::log::{LogWriter, action, event2, separator};
    use alloc::vec;
    use uefi_raw::protocol::tcg::{AlgorithmId, EventType};

    const BANKS: [AlgorithmId; 2] = [AlgorithmId::SHA1, AlgorithmId::SHA256];

    fn sample() -> Vec<u8> {
        let mut buf = vec![0; 1024];
        let mut log = LogWriter::new(&mut buf, &BANKS).unwrap();
        for (pcr, e) in [(4, action("a")), (0, separator()), (5, action("bc"))] {
            log.append(pcr, e.event_type, &e.digests(&BANKS).unwrap(), &e.data)
                .unwrap();
        }
        let len = log.len();
        buf.truncate(len);
        buf
    }

    #[test]
    fn entries_in_order_and_the_zero_tail() {
        let log = sample();
        let parsed = parse(&log).unwrap();
        let pcrs: Vec<u32> = parsed.events.iter().map(|e| e.pcr).collect();
        assert_eq!(pcrs, [4, 0, 5]);
        assert_eq!(parsed.events[2].data, b"bc");
        assert_eq!(parsed.len, log.len());
        // The raw slices tile the log after the Spec ID event.
        let mut at = parsed.events[0].offset;
        for e in &parsed.events {
            assert_eq!(e.offset, at);
            at += e.raw.len();
        }
        assert_eq!(at, log.len());
        let mut padded = log.clone();
        padded.resize(4096, 0);
        assert_eq!(parse(&padded).unwrap(), parsed);
    }

    #[test]
    fn truncations_and_garbage_fail_cleanly() {
        let log = sample();
        let ends: Vec<usize> = {
            let parsed = parse(&log).unwrap();
            parsed.events.iter().map(|e| e.offset).collect()
        };
        for cut in ends[0]..log.len() {
            // A cut at an entry boundary is a shorter, valid log; so is one
            // leaving only zero bytes of the next entry (PCR 0's index).
            let start = ends.iter().rev().find(|&&e| e <= cut).unwrap();
            let valid = log[*start..cut].iter().all(|&b| b == 0);
            assert_eq!(parse(&log[..cut]).is_ok(), valid, "cut at {cut}");
        }
        for cut in 0..ends[0] {
            assert!(parse(&log[..cut]).is_err(), "cut at {cut}");
        }
        // A non-zero byte in the tail is an entry that runs past the end.
        let mut tail = log.clone();
        tail.extend_from_slice(&[0, 0, 0, 0, 1]);
        assert!(parse(&tail).is_err());
    }

    #[test]
    fn algorithms_come_from_the_spec_id_event() {
        let mut log = sample();
        let first = parse(&log).unwrap().events[0].offset;
        // The first entry's first TPMT_HA names SHA-384, which the Spec ID
        // event does not size.
        log[first + 12..first + 14].copy_from_slice(&AlgorithmId::SHA384.0.to_le_bytes());
        assert!(matches!(parse(&log), Err(LogError::Malformed { offset, .. }) if offset == first));
        // A count above the Spec ID event's.
        let mut log = sample();
        log[first + 8] = 3;
        assert!(parse(&log).is_err());
        log[first + 8] = 0;
        assert!(parse(&log).is_err());
    }

    #[test]
    fn an_unhashable_algorithm_is_read_with_its_declared_size() {
        // A Spec ID event with SM3 (32 bytes) next to SHA-256: entries
        // parse, and replay covers SHA-256 only.
        let mut log = vec![0u8; LEGACY_HEADER_SIZE];
        log[4] = EventType::NO_ACTION.0 as u8;
        let mut data = b"Spec ID Event03\0".to_vec();
        data.extend_from_slice(&[0, 0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0]);
        data.extend_from_slice(&[0x12, 0, 32, 0, 0x0b, 0, 32, 0, 0]);
        log[28..32].copy_from_slice(&(data.len() as u32).to_le_bytes());
        log.extend_from_slice(&data);
        let sha256 = crate::alg::hash(AlgorithmId::SHA256, b"x").unwrap();
        let mut entry = event2(7, EventType::EFI_ACTION, &[sha256], b"x").unwrap();
        // Splice an SM3 TPMT_HA in front of the SHA-256 one.
        entry[8] = 2;
        let mut sm3 = vec![0x12, 0];
        sm3.extend_from_slice(&[0x5a; 32]);
        entry.splice(12..12, sm3);
        log.extend_from_slice(&entry);
        let parsed = parse(&log).unwrap();
        assert_eq!(parsed.events[0].digests.len(), 2);
        assert_eq!(parsed.events[0].digests[0].digest(), None);
        let pcrs = crate::log::replay(&parsed).unwrap();
        assert_eq!(
            pcrs.get(AlgorithmId::SHA256, 7),
            crate::alg::extend(
                &crate::alg::Digest::zero(AlgorithmId::SHA256).unwrap(),
                &sha256
            )
        );
        assert_eq!(pcrs.get(AlgorithmId::SM3_256, 7), None);
    }
}
