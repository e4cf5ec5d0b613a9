//! The CRC-32 every UEFI structure uses: table headers (UEFI 2.10 §4.2), the
//! GPT header and entry array (§5.3.2, §5.3.3) and CalculateCrc32 (§7.5.5).
//! The spec names it by reference to ISO 3309 / ITU-T V.42, i.e. the
//! catalogue's CRC-32/ISO-HDLC (reflected polynomial 0x04C11DB7, initial and
//! final XOR 0xFFFF_FFFF).
//!
//! The table-driven arithmetic comes from the `crc` crate (no_std, no
//! unsafe, widely used); this module only pins the algorithm so no caller
//! can pick a different one.
#![forbid(unsafe_code)]

/// `static`, not `const`: digests borrow the table for `'static`.
static ALGORITHM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    ALGORITHM.checksum(bytes)
}

/// A CRC-32 fed in pieces, for structures whose CRC covers themselves with
/// the CRC field read as zero (§4.2, §5.3.2) without copying them.
pub struct Crc32Digest(crc::Digest<'static, u32>);

impl Crc32Digest {
    pub fn new() -> Self {
        Self(ALGORITHM.digest())
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finalize(self) -> u32 {
        self.0.finalize()
    }
}

impl Default for Crc32Digest {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_catalogue_check_value() {
        // CRC-32/ISO-HDLC's published check value over "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn empty_input_is_zero() {
        assert_eq!(crc32(&[]), 0);
    }

    #[test]
    fn digest_in_pieces_equals_one_shot() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut digest = Crc32Digest::new();
        for piece in data.chunks(37) {
            digest.update(piece);
        }
        assert_eq!(digest.finalize(), crc32(&data));
    }

    #[test]
    fn digest_with_zeroed_field_equals_crc_of_zeroed_copy() {
        let mut header = [0xA5u8; 92];
        let mut digest = Crc32Digest::new();
        digest.update(&header[..16]);
        digest.update(&[0; 4]);
        digest.update(&header[20..]);
        header[16..20].fill(0);
        assert_eq!(digest.finalize(), crc32(&header));
    }
}
