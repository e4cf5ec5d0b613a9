//! The log this firmware hands over (EFI_TCG2_EVENT_LOG_FORMAT_TCG_2, TCG
//! EFI Protocol §6.5 GetEventLog), written into a fixed buffer the caller
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
