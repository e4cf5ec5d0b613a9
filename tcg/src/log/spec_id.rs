//! The log's first entry (PFP §10.4.5.1 "Specification ID Version Event"
//! and the TCG_PCR_EVENT structure): a SHA-1-format event in PCR 0 of type
//! EV_NO_ACTION with a zero digest, whose data, TCG_EfiSpecIDEvent, says
//! the log is crypto-agile and gives the size of every algorithm's digest
//! that the TCG_PCR_EVENT2 entries after it may carry.

use alloc::vec::Vec;
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};

use super::LogError;
use super::wire::{Put, Reader};

/// `signature`: "Spec ID Event03" and its NUL, the TPM 2.0 crypto-agile
/// log (PFP §10.4.5.1).
pub const SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";

/// `platformClass` 0: a client platform (the TCG ACPI
/// Specification's platform class of the TPM2/TCPA tables).
pub const PLATFORM_CLASS_CLIENT: u32 = 0;

/// `specVersionMajor`.`specVersionMinor` 2.0: the PFP for TPM family 2.0.
pub const SPEC_VERSION: (u8, u8) = (2, 0);

/// `specErrata`: the PFP errata level the log follows. 2 marks logs that
/// use the revision 1.05 events (EV_EFI_VARIABLE_BOOT2,
/// UEFI_PLATFORM_FIRMWARE_BLOB2, UEFI_HANDOFF_TABLE_POINTERS2).
pub const SPEC_ERRATA: u8 = 2;

/// `uintnSize` 2: UINTN fields in event data are 64-bit (the value counts
/// 32-bit words).
pub const UINTN_SIZE_64: u8 = 2;

/// Bytes of a TCG_PCR_EVENT header: PCRIndex, EventType, a SHA-1 digest,
/// EventSize.
pub const LEGACY_HEADER_SIZE: usize = 4 + 4 + 20 + 4;

/// A parsed TCG_EfiSpecIDEvent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecId {
    pub platform_class: u32,
    pub spec_version: (u8, u8),
    pub spec_errata: u8,
    pub uintn_size: u8,
    /// `digestSizes`: each algorithm the TCG_PCR_EVENT2 entries may carry
    /// and its digest size in bytes, in the log's order.
    pub algorithms: Vec<(AlgorithmId, u16)>,
    pub vendor_info: Vec<u8>,
}

impl SpecId {
    /// The digest size the log declares for `alg`.
    pub fn digest_size(&self, alg: AlgorithmId) -> Option<usize> {
        self.algorithms
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|&(_, size)| usize::from(size))
    }

    /// The banks, in the log's order.
    pub fn banks(&self) -> Vec<AlgorithmId> {
        self.algorithms.iter().map(|&(alg, _)| alg).collect()
    }
}

/// The TCG_EfiSpecIDEvent data for `banks` (each of which this firmware
/// can hash), with no vendor information.
pub(crate) fn event_data(banks: &[AlgorithmId]) -> Result<Vec<u8>, LogError> {
    let duplicate = banks
        .iter()
        .enumerate()
        .any(|(i, alg)| banks[..i].contains(alg));
    if banks.is_empty() || duplicate {
        return Err(LogError::BadBanks);
    }
    let mut data = Vec::new();
    data.extend_from_slice(SIGNATURE);
    data.put_u32(PLATFORM_CLASS_CLIENT);
    data.put_u8(SPEC_VERSION.1);
    data.put_u8(SPEC_VERSION.0);
    data.put_u8(SPEC_ERRATA);
    data.put_u8(UINTN_SIZE_64);
    data.put_u32(u32::try_from(banks.len()).map_err(|_| LogError::BadBanks)?);
    for &alg in banks {
        let size = crate::alg::digest_size(alg).ok_or(LogError::UnsupportedAlgorithm(alg))?;
        data.put_u16(alg.0);
        data.put_u16(size as u16);
    }
    // vendorInfoSize (a UINT8) and no vendorInfo.
    data.put_u8(0);
    Ok(data)
}

/// The whole first entry: TCG_PCR_EVENT carrying the Spec ID event.
pub(crate) fn first_event(banks: &[AlgorithmId]) -> Result<Vec<u8>, LogError> {
    let data = event_data(banks)?;
    let mut event = Vec::with_capacity(LEGACY_HEADER_SIZE + data.len());
    event.put_u32(0);
    event.put_u32(EventType::NO_ACTION.0);
    event.extend_from_slice(&[0; 20]);
    event.put_u32(data.len() as u32);
    event.extend_from_slice(&data);
    Ok(event)
}

/// Parses the first entry of `log`; returns the Spec ID event and the
/// entry's length.
pub(crate) fn parse_first(log: &[u8]) -> Result<(SpecId, usize), LogError> {
    let bad = |what| LogError::Malformed { offset: 0, what };
    let mut r = Reader::new(log);
    let pcr = r.u32().ok_or(bad("short TCG_PCR_EVENT header"))?;
    let event_type = r.u32().ok_or(bad("short TCG_PCR_EVENT header"))?;
    r.take(20).ok_or(bad("short TCG_PCR_EVENT header"))?;
    let size = r.u32().ok_or(bad("short TCG_PCR_EVENT header"))?;
    if pcr != 0 || EventType(event_type) != EventType::NO_ACTION {
        return Err(bad("first event is not EV_NO_ACTION in PCR 0"));
    }
    let size = usize::try_from(size).map_err(|_| bad("Spec ID event runs past the log"))?;
    let data = r.take(size).ok_or(bad("Spec ID event runs past the log"))?;
    let spec_id = parse_data(data).ok_or(bad("malformed TCG_EfiSpecIDEvent"))?;
    Ok((spec_id, r.pos()))
}

/// TCG_EfiSpecIDEvent; None unless it is the crypto-agile "Spec ID
/// Event03" with every field inside `data` and nothing after the vendor
/// information.
fn parse_data(data: &[u8]) -> Option<SpecId> {
    let mut r = Reader::new(data);
    if r.take(16)? != SIGNATURE {
        return None;
    }
    let platform_class = r.u32()?;
    let minor = r.u8()?;
    let major = r.u8()?;
    let spec_errata = r.u8()?;
    let uintn_size = r.u8()?;
    let count = usize::try_from(r.u32()?).ok()?;
    // Each entry is four bytes; a count the data cannot hold is refused
    // before anything is allocated for it.
    if count == 0 || count > r.remaining() / 4 {
        return None;
    }
    let mut algorithms = Vec::with_capacity(count);
    for _ in 0..count {
        let alg = AlgorithmId(r.u16()?);
        let size = r.u16()?;
        // An algorithm listed twice, or a known one with a size that is
        // not its own, would make the entries ambiguous.
        if size == 0 || algorithms.iter().any(|&(a, _)| a == alg) {
            return None;
        }
        if crate::alg::digest_size(alg).is_some_and(|own| own != usize::from(size)) {
            return None;
        }
        algorithms.push((alg, size));
    }
    let vendor_size = usize::from(r.u8()?);
    let vendor_info = r.take(vendor_size)?.to_vec();
    if r.remaining() != 0 {
        return None;
    }
    Some(SpecId {
        platform_class,
        spec_version: (major, minor),
        spec_errata,
        uintn_size,
        algorithms,
        vendor_info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let banks = [AlgorithmId::SHA1, AlgorithmId::SHA256];
        let first = first_event(&banks).unwrap();
        // 16 + 4 + 4 + 4 + 2 * 4 + 1 bytes of data.
        assert_eq!(first.len(), LEGACY_HEADER_SIZE + 37);
        let (spec, len) = parse_first(&first).unwrap();
        assert_eq!(len, first.len());
        assert_eq!(spec.banks(), banks);
        assert_eq!(spec.digest_size(AlgorithmId::SHA256), Some(32));
        assert_eq!(spec.spec_version, (2, 0));
        assert_eq!(spec.uintn_size, 2);
        assert!(spec.vendor_info.is_empty());
    }

    #[test]
    fn refuses_bad_spec_ids() {
        let first = first_event(&[AlgorithmId::SHA256]).unwrap();
        // Every truncation fails without panicking.
        for cut in 0..first.len() {
            assert!(parse_first(&first[..cut]).is_err(), "cut at {cut}");
        }
        // A SHA-256 entry claiming 20 bytes.
        let mut wrong = first.clone();
        wrong[LEGACY_HEADER_SIZE + 30] = 20;
        assert!(parse_first(&wrong).is_err());
        // A TPM 1.2 "Spec ID Event02" log.
        let mut old = first.clone();
        old[LEGACY_HEADER_SIZE + 14] = b'2';
        assert!(parse_first(&old).is_err());
        // An unsupported bank is refused when writing.
        assert_eq!(
            first_event(&[AlgorithmId::SM3_256]),
            Err(LogError::UnsupportedAlgorithm(AlgorithmId::SM3_256))
        );
    }
}
