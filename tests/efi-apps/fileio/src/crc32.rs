//! CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum `crc32`/zlib print.
//!
//! Computed in the app rather than with BootServices.CalculateCrc32 because that service
//! (UEFI 2.10 §7.5.1) takes the whole buffer at once and cannot continue a running CRC
//! across 1 MiB chunks.

#![forbid(unsafe_code)]

const POLY: u32 = 0xEDB8_8320;

/// One entry per byte value: the CRC register update for that byte.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
};

/// A running CRC-32 over data fed in pieces.
pub struct Crc32(u32);

impl Crc32 {
    pub const fn new() -> Self {
        Self(!0)
    }

    pub fn update(&mut self, data: &[u8]) {
        let mut crc = self.0;
        for &byte in data {
            crc = TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
        }
        self.0 = crc;
    }

    pub const fn finish(&self) -> u32 {
        !self.0
    }
}
