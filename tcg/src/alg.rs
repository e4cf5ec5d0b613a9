//! PCR bank hash algorithms (TCG Algorithm Registry) and their digests,
//! computed with RustCrypto.

use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use uefi_raw::protocol::tcg::AlgorithmId;

/// The banks this firmware can measure into, in the order the TCG PC Client
/// Platform Firmware Profile lists digests (TPM_ALG_ID order).
pub const SUPPORTED: [AlgorithmId; 4] = [
    AlgorithmId::SHA1,
    AlgorithmId::SHA256,
    AlgorithmId::SHA384,
    AlgorithmId::SHA512,
];

/// The largest digest of a supported algorithm (SHA-512).
pub const MAX_DIGEST_SIZE: usize = 64;

/// Digest size in bytes of `alg`, or None for an algorithm this firmware
/// does not hash (SM3 banks are left unextended and reported as such).
pub fn digest_size(alg: AlgorithmId) -> Option<usize> {
    match alg {
        AlgorithmId::SHA1 => Some(20),
        AlgorithmId::SHA256 => Some(32),
        AlgorithmId::SHA384 => Some(48),
        AlgorithmId::SHA512 => Some(64),
        _ => None,
    }
}

/// One digest of one algorithm (TPMT_HA without the marshalling).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    alg: AlgorithmId,
    len: u8,
    bytes: [u8; MAX_DIGEST_SIZE],
}

impl Digest {
    /// A digest of `alg` from its bytes; None if the length is not the
    /// algorithm's or the algorithm is not supported.
    pub fn from_bytes(alg: AlgorithmId, bytes: &[u8]) -> Option<Self> {
        if digest_size(alg)? != bytes.len() {
            return None;
        }
        let mut out = [0; MAX_DIGEST_SIZE];
        out[..bytes.len()].copy_from_slice(bytes);
        Some(Self {
            alg,
            len: bytes.len() as u8,
            bytes: out,
        })
    }

    /// The all-zero digest of `alg` (a PCR after reset, locality 0).
    pub fn zero(alg: AlgorithmId) -> Option<Self> {
        Self::from_bytes(alg, &[0; MAX_DIGEST_SIZE][..digest_size(alg)?])
    }

    pub fn alg(&self) -> AlgorithmId {
        self.alg
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for Digest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}:", self.alg)?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// An incremental hash of one supported algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    /// None for an algorithm this firmware does not hash.
    pub fn new(alg: AlgorithmId) -> Option<Self> {
        Some(match alg {
            AlgorithmId::SHA1 => Self::Sha1(Sha1::new()),
            AlgorithmId::SHA256 => Self::Sha256(Sha256::new()),
            AlgorithmId::SHA384 => Self::Sha384(Sha384::new()),
            AlgorithmId::SHA512 => Self::Sha512(Sha512::new()),
            _ => return None,
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        let (alg, bytes): (AlgorithmId, &[u8]) = match self {
            Self::Sha1(h) => (AlgorithmId::SHA1, &h.finalize()),
            Self::Sha256(h) => (AlgorithmId::SHA256, &h.finalize()),
            Self::Sha384(h) => (AlgorithmId::SHA384, &h.finalize()),
            Self::Sha512(h) => (AlgorithmId::SHA512, &h.finalize()),
        };
        // The output sizes are the algorithms' own.
        Digest::from_bytes(alg, bytes).expect("digest size matches its algorithm")
    }
}

/// The digest of `data` with `alg`; None for an unsupported algorithm.
pub fn hash(alg: AlgorithmId, data: &[u8]) -> Option<Digest> {
    let mut h = Hasher::new(alg)?;
    h.update(data);
    Some(h.finish())
}

/// TPM2_PCR_Extend's arithmetic for one bank: `H(old || digest)`
/// (TPM 2.0 Part 1, §17.7.1). None if the two differ in algorithm.
pub fn extend(old: &Digest, digest: &Digest) -> Option<Digest> {
    if old.alg != digest.alg {
        return None;
    }
    let mut h = Hasher::new(old.alg)?;
    h.update(old.as_bytes());
    h.update(digest.as_bytes());
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &Digest) -> alloc::string::String {
        d.as_bytes()
            .iter()
            .map(|b| alloc::format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn known_answers() {
        // FIPS 180 "abc" vectors.
        let abc = |alg| hex(&hash(alg, b"abc").unwrap());
        assert_eq!(
            abc(AlgorithmId::SHA1),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            abc(AlgorithmId::SHA256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(abc(AlgorithmId::SHA384).starts_with("cb00753f45a35e8b"));
        assert!(abc(AlgorithmId::SHA512).starts_with("ddaf35a193617aba"));
        assert!(hash(AlgorithmId::SM3_256, b"abc").is_none());
    }

    #[test]
    fn extend_is_hash_of_old_then_new() {
        let zero = Digest::zero(AlgorithmId::SHA256).unwrap();
        let event = hash(AlgorithmId::SHA256, b"event").unwrap();
        let mut both = [0u8; 64];
        both[32..].copy_from_slice(event.as_bytes());
        assert_eq!(
            extend(&zero, &event).unwrap(),
            hash(AlgorithmId::SHA256, &both).unwrap()
        );
        let sha1 = Digest::zero(AlgorithmId::SHA1).unwrap();
        assert!(extend(&sha1, &event).is_none());
    }

    #[test]
    fn digests_check_their_length() {
        assert!(Digest::from_bytes(AlgorithmId::SHA256, &[0; 20]).is_none());
        assert!(Digest::from_bytes(AlgorithmId::SHA1, &[0; 20]).is_some());
    }
}
