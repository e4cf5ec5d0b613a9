//! EFI_TCG2_FINAL_EVENTS_TABLE (TCG EFI Protocol Specification, "Final
//! Events Table"): a configuration table repeating every entry logged after
//! the first GetEventLog call, so an OS that read the log before
//! ExitBootServices still sees the events logged after it. Layout: Version
//! (UINT64, 1), NumberOfEvents (UINT64), then the TCG_PCR_EVENT2 entries.

use uefi_raw::{Guid, guid};

use super::LogError;

/// The configuration table's GUID (EFI_TCG2_FINAL_EVENTS_TABLE_GUID).
pub const FINAL_EVENTS_TABLE_GUID: Guid = guid!("1e2ed096-30e2-4254-bd89-863bbef82325");

/// EFI_TCG2_FINAL_EVENTS_TABLE_VERSION.
pub const FINAL_EVENTS_TABLE_VERSION: u64 = 1;

const HEADER_SIZE: usize = 16;

/// The table in a fixed buffer the caller owns (it is installed once, by
/// address). Bytes past the entries stay zero.
pub struct FinalEvents<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: u64,
}

impl<'a> FinalEvents<'a> {
    /// Zeroes `buf` and writes the header with no events.
    pub fn new(buf: &'a mut [u8]) -> Result<Self, LogError> {
        if buf.len() < HEADER_SIZE {
            return Err(LogError::Full);
        }
        buf.fill(0);
        buf[..8].copy_from_slice(&FINAL_EVENTS_TABLE_VERSION.to_le_bytes());
        Ok(Self {
            buf,
            len: HEADER_SIZE,
            count: 0,
        })
    }

    /// Appends one TCG_PCR_EVENT2 (the bytes [`super::LogWriter::entry`]
    /// gives) and counts it; [`LogError::Full`] leaves the table as it was.
    pub fn append(&mut self, event: &[u8]) -> Result<(), LogError> {
        let end = self.len.checked_add(event.len()).ok_or(LogError::Full)?;
        let count = self.count.checked_add(1).ok_or(LogError::Full)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(LogError::Full)?
            .copy_from_slice(event);
        self.buf[8..16].copy_from_slice(&count.to_le_bytes());
        self.len = end;
        self.count = count;
        Ok(())
    }

    /// NumberOfEvents.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The table so far: header and entries.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogWriter, action};
    use alloc::vec;
    use uefi_raw::protocol::tcg::AlgorithmId;

    #[test]
    fn header_then_counted_entries() {
        let banks = [AlgorithmId::SHA256];
        let mut log_buf = vec![0; 1024];
        let log = LogWriter::new(&mut log_buf, &banks).unwrap();
        let a = action("Exit Boot Services Invocation");
        let entry = log
            .entry(5, a.event_type, &a.digests(&banks).unwrap(), &a.data)
            .unwrap();
        let mut buf = vec![0xff; 16 + entry.len() + 10];
        let mut table = FinalEvents::new(&mut buf).unwrap();
        assert_eq!(
            table.as_bytes(),
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        table.append(&entry).unwrap();
        assert_eq!(table.count(), 1);
        assert_eq!(&table.as_bytes()[8..16], &1u64.to_le_bytes());
        assert_eq!(&table.as_bytes()[16..], &entry[..]);
        // No room for a second: nothing changes.
        assert_eq!(table.append(&entry), Err(LogError::Full));
        assert_eq!(table.count(), 1);
        assert_eq!(table.as_bytes().len(), 16 + entry.len());
        assert!(FinalEvents::new(&mut [0; 15]).is_err());
    }
}
