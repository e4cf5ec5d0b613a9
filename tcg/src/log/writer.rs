//! The log this firmware hands over (EFI_TCG2_EVENT_LOG_FORMAT_TCG_2, TCG
//! EFI Protocol Specification, GetEventLog), written into a fixed buffer the caller
//! owns (EFI pages that must not move once the OS is told where they are).

use alloc::vec::Vec;
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};

use super::LogError;
use super::event2::{event2, parse_at};
use super::spec_id::{self, SpecId};
use crate::alg::Digest;

/// Appends entries to a crypto-agile log in `buf`. Bytes past [`len`]
/// stay zero, so the buffer always holds a complete log followed by an
/// all-zero tail.
///
/// [`len`]: LogWriter::len
pub struct LogWriter<'a> {
    buf: &'a mut [u8],
    banks: Vec<AlgorithmId>,
    spec: SpecId,
    len: usize,
    last: usize,
}

impl<'a> LogWriter<'a> {
    /// Zeroes `buf` and writes the Spec ID event (PFP §10.4.5.1) for the
    /// active `banks` (in the order entries will list their digests).
    /// Fails if a bank is one this firmware cannot hash, `banks` is empty
    /// or repeats one, or `buf` cannot hold the first entry.
    pub fn new(buf: &'a mut [u8], banks: &[AlgorithmId]) -> Result<Self, LogError> {
        let first = spec_id::first_event(banks)?;
        let (spec, _) = spec_id::parse_first(&first)?;
        let out = buf.get_mut(..first.len()).ok_or(LogError::Full)?;
        out.copy_from_slice(&first);
        buf[first.len()..].fill(0);
        Ok(Self {
            len: first.len(),
            last: 0,
            buf,
            banks: banks.to_vec(),
            spec,
        })
    }

    /// The active banks the log was started with.
    pub fn banks(&self) -> &[AlgorithmId] {
        &self.banks
    }

    /// Bytes of log written (GetEventLog's EventLogLastEntry is
    /// `start + last_entry_offset()`, the end of the log `start + len()`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: the Spec ID event is there from the start.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the last entry written (the Spec ID event's 0 until an
    /// event is appended).
    pub fn last_entry_offset(&self) -> usize {
        self.last
    }

    /// The log written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The TCG_PCR_EVENT2 for `pcr`, `event_type`, one digest per active
    /// bank (in any order; written in the banks' order) and `data`, as
    /// [`append`](Self::append) would write it; for the final-events table.
    pub fn entry(
        &self,
        pcr: u32,
        event_type: EventType,
        digests: &[Digest],
        data: &[u8],
    ) -> Result<Vec<u8>, LogError> {
        let mut ordered = Vec::with_capacity(self.banks.len());
        for &alg in &self.banks {
            let d = digests.iter().find(|d| d.alg() == alg);
            ordered.push(*d.ok_or(LogError::BankMismatch)?);
        }
        if digests.len() != ordered.len() {
            return Err(LogError::BankMismatch);
        }
        event2(pcr, event_type, &ordered, data)
    }

    /// Appends a TCG_PCR_EVENT2 (see [`entry`](Self::entry)). A full
    /// buffer is [`LogError::Full`] (EFI_TCG2's EventLogTruncated) and
    /// leaves the log as it was.
    pub fn append(
        &mut self,
        pcr: u32,
        event_type: EventType,
        digests: &[Digest],
        data: &[u8],
    ) -> Result<(), LogError> {
        let event = self.entry(pcr, event_type, digests, data)?;
        self.put(&event)
    }

    /// Appends an entry copied from an earlier stage's log (see
    /// [`super::import_previous`]): one whole TCG_PCR_EVENT2 whose digests
    /// are exactly this log's banks, else [`LogError::BankMismatch`] or
    /// [`LogError::Malformed`]; nothing is written then.
    pub fn append_raw(&mut self, event: &[u8]) -> Result<(), LogError> {
        let parsed = parse_at(event, 0, &self.spec)?;
        if parsed.raw.len() != event.len() {
            return Err(LogError::Malformed {
                offset: parsed.raw.len(),
                what: "bytes after the entry",
            });
        }
        let same_banks = parsed.digests.len() == self.banks.len()
            && self.banks.iter().all(|&alg| parsed.digest(alg).is_some());
        if !same_banks {
            return Err(LogError::BankMismatch);
        }
        self.put(event)
    }

    fn put(&mut self, event: &[u8]) -> Result<(), LogError> {
        let end = self.len.checked_add(event.len()).ok_or(LogError::Full)?;
        let out = self.buf.get_mut(self.len..end).ok_or(LogError::Full)?;
        out.copy_from_slice(event);
        self.last = self.len;
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{digests, parse, separator};

    const BANKS: [AlgorithmId; 2] = [AlgorithmId::SHA1, AlgorithmId::SHA256];

    #[test]
    fn appends_and_reports_the_last_entry() {
        let mut buf = [0xee; 512];
        let mut log = LogWriter::new(&mut buf, &BANKS).unwrap();
        assert_eq!(log.last_entry_offset(), 0);
        let first_len = log.len();
        let sep = separator();
        let d = sep.digests(&BANKS).unwrap();
        // Digests in any order are written in the banks' order.
        let reversed = [d[1], d[0]];
        log.append(3, sep.event_type, &reversed, &sep.data).unwrap();
        assert_eq!(log.last_entry_offset(), first_len);
        let entry = log.entry(3, sep.event_type, &d, &sep.data).unwrap();
        assert_eq!(&log.as_bytes()[first_len..], &entry[..]);
        assert_eq!(entry, event2(3, sep.event_type, &d, &sep.data).unwrap());
        // 12 + (2 + 20) + (2 + 32) + 4 + 4 bytes.
        assert_eq!(entry.len(), 76);
        let len = log.len();
        drop(log);
        assert!(buf[len..].iter().all(|&b| b == 0));
        let parsed = parse(&buf).unwrap();
        assert_eq!(parsed.len, len);
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.events[0].pcr, 3);
        assert_eq!(parsed.events[0].data, [0; 4]);
        assert_eq!(parsed.events[0].digest(AlgorithmId::SHA256), Some(d[1]));
    }

    #[test]
    fn a_full_buffer_writes_nothing() {
        let mut buf = [0; 200];
        let mut log = LogWriter::new(&mut buf, &BANKS).unwrap();
        let d = digests(&BANKS, b"x").unwrap();
        let mut appended = 0;
        loop {
            let before = (log.len(), log.last_entry_offset());
            match log.append(0, EventType::EFI_ACTION, &d, b"x") {
                Ok(()) => appended += 1,
                Err(e) => {
                    assert_eq!(e, LogError::Full);
                    assert_eq!((log.len(), log.last_entry_offset()), before);
                    break;
                }
            }
        }
        assert_eq!(appended, 1);
        let len = log.len();
        drop(log);
        assert!(buf[len..].iter().all(|&b| b == 0));
        // Too small for the Spec ID event itself.
        assert_eq!(
            LogWriter::new(&mut [0; 40], &BANKS).err(),
            Some(LogError::Full)
        );
    }

    #[test]
    fn digests_must_be_the_banks() {
        let mut buf = [0; 512];
        let mut log = LogWriter::new(&mut buf, &BANKS).unwrap();
        let sha256 = digests(&[AlgorithmId::SHA256], b"x").unwrap();
        let three = digests(
            &[AlgorithmId::SHA1, AlgorithmId::SHA256, AlgorithmId::SHA1],
            b"x",
        )
        .unwrap();
        for wrong in [&sha256[..], &three[..], &[]] {
            assert_eq!(
                log.append(0, EventType::EFI_ACTION, wrong, b"x"),
                Err(LogError::BankMismatch)
            );
        }
        // A raw entry of another log's banks, or with trailing bytes.
        let other = event2(0, EventType::EFI_ACTION, &sha256, b"x").unwrap();
        assert_eq!(log.append_raw(&other), Err(LogError::BankMismatch));
        let both = digests(&BANKS, b"x").unwrap();
        let mut long = event2(0, EventType::EFI_ACTION, &both, b"x").unwrap();
        log.append_raw(&long).unwrap();
        long.push(0);
        assert!(log.append_raw(&long).is_err());
        assert!(log.append_raw(&long[..10]).is_err());
        assert_eq!(parse(log.as_bytes()).unwrap().events.len(), 1);
    }

    #[test]
    fn refuses_bad_banks() {
        let mut buf = [0; 512];
        for banks in [&[][..], &[AlgorithmId::SHA256, AlgorithmId::SHA256]] {
            assert_eq!(
                LogWriter::new(&mut buf, banks).err(),
                Some(LogError::BadBanks)
            );
        }
        assert_eq!(
            LogWriter::new(&mut buf, &[AlgorithmId::SM3_256]).err(),
            Some(LogError::UnsupportedAlgorithm(AlgorithmId::SM3_256))
        );
    }
}
