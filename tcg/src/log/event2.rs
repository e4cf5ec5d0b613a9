//! TCG_PCR_EVENT2 (PFP §10.2 crypto-agile log entry format), the crypto-agile entry: PCRIndex,
//! EventType, TPML_DIGEST_VALUES (a count, then per algorithm a TPMT_HA:
//! the TPM_ALG_ID and the digest, whose size only the Spec ID event gives),
//! EventSize and the event data. All fields little-endian (PFP §10.2).

use alloc::vec::Vec;
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};

use super::LogError;
use super::spec_id::SpecId;
use super::wire::{Put, Reader};
use crate::alg::Digest;

/// One TPMT_HA of a parsed entry; the algorithm may be one this firmware
/// does not hash (its size then came from the Spec ID event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawDigest<'a> {
    pub alg: AlgorithmId,
    pub bytes: &'a [u8],
}

impl RawDigest<'_> {
    /// As a [`Digest`], for an algorithm this firmware hashes.
    pub fn digest(&self) -> Option<Digest> {
        Digest::from_bytes(self.alg, self.bytes)
    }
}

/// One parsed TCG_PCR_EVENT2, borrowing the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent<'a> {
    /// Where the entry starts in the log.
    pub offset: usize,
    pub pcr: u32,
    pub event_type: EventType,
    pub digests: Vec<RawDigest<'a>>,
    pub data: &'a [u8],
    /// The whole entry, as [`super::LogWriter::append_raw`] takes it.
    pub raw: &'a [u8],
}

impl LogEvent<'_> {
    /// This entry's digest of `alg`.
    pub fn digest(&self, alg: AlgorithmId) -> Option<Digest> {
        self.digests.iter().find(|d| d.alg == alg)?.digest()
    }
}

/// The bytes of one TCG_PCR_EVENT2, e.g. for the EFI_TCG2_FINAL_EVENTS_TABLE
/// (TCG EFI Protocol Specification), which repeats entries of the log. `digests`
/// are written in the order given; [`super::LogWriter::append`] checks
/// them against the log's banks.
pub fn event2(
    pcr: u32,
    event_type: EventType,
    digests: &[Digest],
    data: &[u8],
) -> Result<Vec<u8>, LogError> {
    let count = u32::try_from(digests.len()).map_err(|_| LogError::TooLarge)?;
    let size = u32::try_from(data.len()).map_err(|_| LogError::TooLarge)?;
    let digest_bytes: usize = digests.iter().map(|d| 2 + d.as_bytes().len()).sum();
    let mut event = Vec::with_capacity(16 + digest_bytes + data.len());
    event.put_u32(pcr);
    event.put_u32(event_type.0);
    event.put_u32(count);
    for d in digests {
        event.put_u16(d.alg().0);
        event.extend_from_slice(d.as_bytes());
    }
    event.put_u32(size);
    event.extend_from_slice(data);
    Ok(event)
}

/// Parses the TCG_PCR_EVENT2 at `offset` of `log`, taking digest sizes
/// from `spec`. Refuses an entry that runs past `log`, an algorithm the
/// Spec ID event does not list (its size is unknown), a count larger than
/// that list and an algorithm given twice.
pub(crate) fn parse_at<'a>(
    log: &'a [u8],
    offset: usize,
    spec: &SpecId,
) -> Result<LogEvent<'a>, LogError> {
    let bad = |what| LogError::Malformed { offset, what };
    let rest = log.get(offset..).ok_or(bad("entry starts past the log"))?;
    let mut r = Reader::new(rest);
    let short = bad("entry runs past the log");
    let pcr = r.u32().ok_or(short)?;
    let event_type = EventType(r.u32().ok_or(short)?);
    let count = r.u32().ok_or(short)?;
    if count == 0 || usize::try_from(count).map_or(true, |c| c > spec.algorithms.len()) {
        return Err(bad("digest count is zero or above the Spec ID event's"));
    }
    let mut digests: Vec<RawDigest<'a>> = Vec::with_capacity(spec.algorithms.len());
    for _ in 0..count {
        let alg = AlgorithmId(r.u16().ok_or(short)?);
        let size = spec
            .digest_size(alg)
            .ok_or(bad("algorithm missing from the Spec ID event"))?;
        if digests.iter().any(|d| d.alg == alg) {
            return Err(bad("algorithm given twice"));
        }
        let bytes = r.take(size).ok_or(short)?;
        digests.push(RawDigest { alg, bytes });
    }
    let size = usize::try_from(r.u32().ok_or(short)?).map_err(|_| short)?;
    let data = r.take(size).ok_or(short)?;
    let raw = &rest[..r.pos()];
    Ok(LogEvent {
        offset,
        pcr,
        event_type,
        digests,
        data,
        raw,
    })
}
