//! The note a firmware panic leaves for the next start, in a page of RAM a
//! warm reset keeps (the firmware reserves it; the VMM reloads only the
//! firmware image). It names the boot option that was booting, so the next
//! start skips that option once instead of panicking on it again: a VM
//! whose first option panics the firmware still boots its second.
//!
//! 16 bytes: magic, option number, whether an option was booting, and a
//! CRC-32 over the first 12 bytes, so stale or random RAM is no note.
#![forbid(unsafe_code)]

use crate::crc32::crc32;

pub const NOTE_SIZE: usize = 16;
const MAGIC: [u8; 4] = *b"vPNC";
const HAS_OPTION: u16 = 1;

/// What a panic left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PanicNote {
    /// The Boot#### option that was booting, if any.
    pub option: Option<u16>,
}

impl PanicNote {
    pub fn encode(&self) -> [u8; NOTE_SIZE] {
        let mut note = [0u8; NOTE_SIZE];
        note[..4].copy_from_slice(&MAGIC);
        note[4..6].copy_from_slice(&self.option.unwrap_or(0).to_le_bytes());
        let flags = if self.option.is_some() { HAS_OPTION } else { 0 };
        note[6..8].copy_from_slice(&flags.to_le_bytes());
        let crc = crc32(&note[..12]);
        note[12..].copy_from_slice(&crc.to_le_bytes());
        note
    }

    /// The note in `bytes`, or None when they hold none (no magic, a bad
    /// CRC, unknown flags).
    pub fn decode(bytes: &[u8; NOTE_SIZE]) -> Option<PanicNote> {
        if bytes[..4] != MAGIC || bytes[8..12] != [0; 4] {
            return None;
        }
        let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        if crc != crc32(&bytes[..12]) {
            return None;
        }
        let option = u16::from_le_bytes([bytes[4], bytes[5]]);
        match u16::from_le_bytes([bytes[6], bytes[7]]) {
            0 => Some(PanicNote { option: None }),
            HAS_OPTION => Some(PanicNote {
                option: Some(option),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for option in [None, Some(0), Some(0x1234), Some(0xffff)] {
            let note = PanicNote { option };
            assert_eq!(PanicNote::decode(&note.encode()), Some(note));
        }
    }

    #[test]
    fn zeroed_or_damaged_ram_is_no_note() {
        assert_eq!(PanicNote::decode(&[0; NOTE_SIZE]), None);
        let good = PanicNote { option: Some(3) }.encode();
        for byte in 0..NOTE_SIZE {
            let mut bad = good;
            bad[byte] ^= 0x40;
            assert_eq!(PanicNote::decode(&bad), None, "byte {byte} flipped");
        }
    }
}
