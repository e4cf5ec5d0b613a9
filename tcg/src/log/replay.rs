//! Replaying a log: the PCR values a TPM holds after extending, from reset,
//! every measured entry's digests (TPM 2.0 Library Part 1, PCR extend; PFP
//! §10.4.1: EV_NO_ACTION entries are informational and never extended).

use alloc::collections::BTreeMap;
use alloc::string::String;
use uefi_raw::protocol::tcg::{AlgorithmId, EventType};

use super::LogError;
use super::parse::ParsedLog;
use crate::alg::{self, Digest};

/// PCRs of a PC Client TPM (PFP §3.3.4 PCR usage: 0-23).
pub const PCR_COUNT: u32 = 24;

/// "StartupLocality\0", the EV_NO_ACTION event (PFP §10.4.5 EV_NO_ACTION
/// events, "Startup Locality Event") after which PCR 0 starts at the locality TPM2_Startup
/// came from instead of zero.
const STARTUP_LOCALITY: &[u8; 16] = b"StartupLocality\0";

/// PCR values per (bank, index) after a replay.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PcrValues {
    values: BTreeMap<(AlgorithmId, u32), Digest>,
}

impl PcrValues {
    /// The value of `pcr` in `bank`, when the log's banks include it (PCRs
    /// no entry touched hold their reset value).
    pub fn get(&self, bank: AlgorithmId, pcr: u32) -> Option<Digest> {
        self.values.get(&(bank, pcr)).copied()
    }

    /// Lowercase hex of [`get`](Self::get), as tools print PCRs.
    pub fn hex(&self, bank: AlgorithmId, pcr: u32) -> Option<String> {
        let digest = self.get(bank, pcr)?;
        Some(digest.as_bytes().iter().fold(String::new(), |mut s, b| {
            use core::fmt::Write;
            let _ = write!(s, "{b:02x}");
            s
        }))
    }

    /// Every (bank, pcr) and its value.
    pub fn iter(&self) -> impl Iterator<Item = (AlgorithmId, u32, &Digest)> {
        self.values.iter().map(|(&(bank, pcr), d)| (bank, pcr, d))
    }
}

/// A PCR's value at TPM2_Startup(CLEAR): zero, except PCRs 17-22 (the
/// dynamic-launch PCRs) which start all ones (PFP §3.3.4, TPM 2.0 Library
/// Part 1 PCR initialization), and PCR 0 set to the startup locality by a Startup Locality
/// event.
fn reset_value(bank: AlgorithmId, pcr: u32, locality: u8) -> Option<Digest> {
    let size = alg::digest_size(bank)?;
    let mut bytes = [0u8; alg::MAX_DIGEST_SIZE];
    if (17..=22).contains(&pcr) {
        bytes[..size].fill(0xff);
    } else if pcr == 0 {
        bytes[size - 1] = locality;
    }
    Digest::from_bytes(bank, &bytes[..size])
}

/// Replays `log` for every bank its Spec ID event lists that this crate can
/// hash (an SM3 bank is skipped). Fails on an entry for a PCR above 23 or
/// one missing a digest of a replayed bank.
pub fn replay(log: &ParsedLog<'_>) -> Result<PcrValues, LogError> {
    let banks: alloc::vec::Vec<AlgorithmId> = log
        .spec_id
        .banks()
        .into_iter()
        .filter(|&b| alg::digest_size(b).is_some())
        .collect();
    let locality = log
        .events
        .iter()
        .find(|e| {
            e.event_type == EventType::NO_ACTION
                && e.data.len() == 17
                && e.data[..16] == STARTUP_LOCALITY[..]
        })
        .map_or(0, |e| e.data[16]);
    let mut values = BTreeMap::new();
    for &bank in &banks {
        for pcr in 0..PCR_COUNT {
            if let Some(reset) = reset_value(bank, pcr, locality) {
                values.insert((bank, pcr), reset);
            }
        }
    }
    for event in &log.events {
        if event.event_type == EventType::NO_ACTION {
            continue;
        }
        let bad = |what| LogError::Malformed {
            offset: event.offset,
            what,
        };
        if event.pcr >= PCR_COUNT {
            return Err(bad("PCR index above 23"));
        }
        for &bank in &banks {
            let digest = event
                .digest(bank)
                .ok_or(bad("entry lacks a bank's digest"))?;
            let pcr = values
                .get_mut(&(bank, event.pcr))
                .ok_or(bad("PCR not replayed"))?;
            *pcr = alg::extend(pcr, &digest).ok_or(bad("digest of another bank"))?;
        }
    }
    Ok(PcrValues { values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogWriter, action, parse, separator};
    use alloc::vec;

    const BANKS: [AlgorithmId; 2] = [AlgorithmId::SHA1, AlgorithmId::SHA256];

    fn zero(bank: AlgorithmId) -> Digest {
        Digest::zero(bank).unwrap()
    }

    #[test]
    fn extends_in_order_and_skips_no_action() {
        let mut buf = vec![0; 1024];
        let mut log = LogWriter::new(&mut buf, &BANKS).unwrap();
        let a = action("a");
        let sep = separator();
        log.append(4, a.event_type, &a.digests(&BANKS).unwrap(), &a.data)
            .unwrap();
        log.append(4, sep.event_type, &sep.digests(&BANKS).unwrap(), &sep.data)
            .unwrap();
        // An EV_NO_ACTION entry with a non-zero digest changes nothing.
        log.append(
            4,
            EventType::NO_ACTION,
            &a.digests(&BANKS).unwrap(),
            b"note",
        )
        .unwrap();
        let pcrs = replay(&parse(log.as_bytes()).unwrap()).unwrap();
        for bank in BANKS {
            let once = alg::extend(&zero(bank), &alg::hash(bank, b"a").unwrap()).unwrap();
            let twice = alg::extend(&once, &alg::hash(bank, &[0; 4]).unwrap()).unwrap();
            assert_eq!(pcrs.get(bank, 4), Some(twice));
            assert_eq!(pcrs.get(bank, 0), Some(zero(bank)));
            assert!(pcrs.hex(bank, 17).unwrap().chars().all(|c| c == 'f'));
            assert_eq!(pcrs.get(bank, 24), None);
        }
        assert_eq!(pcrs.get(AlgorithmId::SHA384, 4), None);
        assert_eq!(pcrs.iter().count(), 48);
    }

    #[test]
    fn startup_locality_sets_pcr0() {
        let mut buf = vec![0; 1024];
        let mut log = LogWriter::new(&mut buf, &BANKS).unwrap();
        let zeros = [zero(BANKS[0]), zero(BANKS[1])];
        log.append(0, EventType::NO_ACTION, &zeros, b"StartupLocality\0\x03")
            .unwrap();
        let pcrs = replay(&parse(log.as_bytes()).unwrap()).unwrap();
        let hex = pcrs.hex(AlgorithmId::SHA1, 0).unwrap();
        assert_eq!(hex, "0000000000000000000000000000000000000003");
    }

    #[test]
    fn refuses_pcrs_past_23() {
        let mut buf = vec![0; 1024];
        let mut log = LogWriter::new(&mut buf, &BANKS).unwrap();
        let a = action("a");
        log.append(24, a.event_type, &a.digests(&BANKS).unwrap(), &a.data)
            .unwrap();
        assert!(replay(&parse(log.as_bytes()).unwrap()).is_err());
    }
}
