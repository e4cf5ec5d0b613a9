//! The variable journal's format: how the non-volatile variables changed
//! after ExitBootServices are kept in reserved RAM across a warm reset
//! (see [`super::journal`] for where the region lives and why). Pure
//! functions over byte slices with checked arithmetic: the region's
//! contents at the next start are an allegation, checked in full before a
//! byte of it is used.
//!
//! One journal is one record at the start of the region (all integers
//! little-endian):
//!
//! | offset | size | field                                                   |
//! |--------|------|---------------------------------------------------------|
//! | 0      | 8    | magic `"VMFWJRN\0"`                                     |
//! | 8      | 4    | format version, 1                                       |
//! | 12     | 4    | `length`: bytes of payload after this 32-byte header    |
//! | 16     | 4    | CRC-32 (ISO-HDLC) of the header with this field zero, followed by the payload |
//! | 20     | 4    | `base_generation`: generation of the ESP store slot the running store descends from (0: none) |
//! | 24     | 4    | `sequence`: runtime writes recorded since ExitBootServices |
//! | 28     | 4    | reserved, zero                                          |
//!
//! The payload is a whole store image of the non-volatile variables
//! (`efi::variables`, generation 0): the journal is not a list of changes
//! but the state after the last one, so applying it is loading it, and a
//! journal that is written again replaces the previous one. A torn write
//! (a reset in the middle of SetVariable) fails the CRC and the journal is
//! ignored as a whole.

#![forbid(unsafe_code)]

use core::fmt;

use platform::crc32::Crc32Digest;
use platform::le::u32_at;

pub const JOURNAL_MAGIC: [u8; 8] = *b"VMFWJRN\0";
pub const JOURNAL_VERSION: u32 = 1;
pub const JOURNAL_HEADER_SIZE: usize = 32;

/// Why the region holds no usable journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalError {
    /// An all-zero header: nothing was recorded (a cold start, or the
    /// journal was applied and cleared).
    Empty,
    /// The region is shorter than a header.
    RegionTooSmall {
        len: usize,
    },
    BadMagic([u8; 8]),
    BadVersion(u32),
    /// The header claims more payload than the region holds.
    TooLarge {
        length: usize,
        capacity: usize,
    },
    BadCrc {
        stored: u32,
        computed: u32,
    },
    /// The reserved field is not zero.
    BadReserved(u32),
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Empty => write!(f, "empty"),
            JournalError::RegionTooSmall { len } => write!(f, "region of {len} bytes too small"),
            JournalError::BadMagic(magic) => write!(f, "bad magic {magic:02x?}"),
            JournalError::BadVersion(v) => write!(f, "unsupported version {v}"),
            JournalError::TooLarge { length, capacity } => {
                write!(
                    f,
                    "payload of {length} bytes exceeds the {capacity}-byte region"
                )
            }
            JournalError::BadCrc { stored, computed } => {
                write!(f, "CRC {stored:#010x} stored, {computed:#010x} computed")
            }
            JournalError::BadReserved(value) => write!(f, "reserved field {value:#x}"),
        }
    }
}

/// A journal that passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Journal<'r> {
    pub base_generation: u32,
    pub sequence: u32,
    /// A store image, still to be checked by `VariableStore::load`.
    pub payload: &'r [u8],
}

/// Largest payload a region of `region_len` bytes holds.
pub fn payload_capacity(region_len: usize) -> usize {
    region_len.saturating_sub(JOURNAL_HEADER_SIZE)
}

/// Checks the journal at the start of `region`: magic, version, length
/// within the region, reserved field, CRC.
pub fn parse_journal(region: &[u8]) -> Result<Journal<'_>, JournalError> {
    let header = region
        .get(..JOURNAL_HEADER_SIZE)
        .ok_or(JournalError::RegionTooSmall { len: region.len() })?;
    if header.iter().all(|&b| b == 0) {
        return Err(JournalError::Empty);
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&header[..8]);
    if magic != JOURNAL_MAGIC {
        return Err(JournalError::BadMagic(magic));
    }
    // Every offset below is inside the 32-byte header checked above.
    let field = |offset| u32_at(header, offset).unwrap_or(0);
    let version = field(8);
    if version != JOURNAL_VERSION {
        return Err(JournalError::BadVersion(version));
    }
    let length = field(12) as usize;
    let capacity = payload_capacity(region.len());
    if length > capacity {
        return Err(JournalError::TooLarge { length, capacity });
    }
    let reserved = field(28);
    if reserved != 0 {
        return Err(JournalError::BadReserved(reserved));
    }
    let stored = field(16);
    // `length` <= capacity, so the record lies inside the region.
    let record = &region[..JOURNAL_HEADER_SIZE + length];
    let computed = record_crc(record);
    if stored != computed {
        return Err(JournalError::BadCrc { stored, computed });
    }
    Ok(Journal {
        base_generation: field(20),
        sequence: field(24),
        payload: &record[JOURNAL_HEADER_SIZE..],
    })
}

/// CRC of a header-and-payload record, its CRC field counted as zero.
fn record_crc(record: &[u8]) -> u32 {
    let mut digest = Crc32Digest::new();
    digest.update(&record[..16]);
    digest.update(&[0; 4]);
    digest.update(&record[20..]);
    digest.finalize()
}

/// Writes a journal into `region`: `write_payload` fills the payload area
/// and returns the payload's length (or fails, e.g. when the store image
/// does not fit: then the region is left cleared, not half-written). The
/// header's magic is written last, so a reset during the write leaves a
/// region that fails [`parse_journal`] rather than a mix of two journals.
pub fn write_journal<E>(
    region: &mut [u8],
    base_generation: u32,
    sequence: u32,
    write_payload: impl FnOnce(&mut [u8]) -> Result<usize, E>,
) -> Result<usize, WriteError<E>> {
    if region.len() < JOURNAL_HEADER_SIZE {
        return Err(WriteError::RegionTooSmall { len: region.len() });
    }
    clear_journal(region);
    let (header, payload_area) = region.split_at_mut(JOURNAL_HEADER_SIZE);
    let length = write_payload(payload_area).map_err(WriteError::Payload)?;
    if length > payload_area.len() {
        payload_area.fill(0);
        return Err(WriteError::TooLarge {
            length,
            capacity: payload_area.len(),
        });
    }
    let length_field = u32::try_from(length).map_err(|_| WriteError::TooLarge {
        length,
        capacity: payload_area.len(),
    })?;
    header[8..12].copy_from_slice(&JOURNAL_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&length_field.to_le_bytes());
    header[20..24].copy_from_slice(&base_generation.to_le_bytes());
    header[24..28].copy_from_slice(&sequence.to_le_bytes());
    header[0..8].copy_from_slice(&JOURNAL_MAGIC);
    let total = JOURNAL_HEADER_SIZE + length;
    let crc = record_crc(&region[..total]);
    region[16..20].copy_from_slice(&crc.to_le_bytes());
    Ok(total)
}

/// Why [`write_journal`] recorded nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError<E> {
    RegionTooSmall {
        len: usize,
    },
    /// `write_payload` claimed more than the payload area holds.
    TooLarge {
        length: usize,
        capacity: usize,
    },
    Payload(E),
}

/// Marks the region empty (the header zeroed). The payload bytes are left:
/// without a header nothing reads them.
pub fn clear_journal(region: &mut [u8]) {
    let end = region.len().min(JOURNAL_HEADER_SIZE);
    region[..end].fill(0);
}

/// What the next start does with a journal, given the generation of the
/// ESP store slot it loaded (None: no store file, or none loaded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyDecision {
    /// The journal continues the store on disk: load it and write it back.
    Apply,
    /// The disk was written after the journal's boot loaded it (another
    /// firmware without a journal, or a restored disk image): the journal
    /// would roll those writes back, so it is dropped.
    Stale { journal_base: u32, disk: u32 },
}

/// Applies a journal only over the store generation it was based on.
/// Generation 0 stands for "no store slot", which a disk slot never has
/// (the first write is generation 1).
pub fn apply_decision(journal: &Journal<'_>, disk_generation: Option<u32>) -> ApplyDecision {
    let disk = disk_generation.unwrap_or(0);
    if journal.base_generation == disk {
        ApplyDecision::Apply
    } else {
        ApplyDecision::Stale {
            journal_base: journal.base_generation,
            disk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    const REGION: usize = 256;

    fn written(payload: &[u8], base: u32) -> Vec<u8> {
        let mut region = vec![0u8; REGION];
        let total = write_journal::<()>(&mut region, base, 3, |area| {
            area[..payload.len()].copy_from_slice(payload);
            Ok(payload.len())
        })
        .unwrap();
        assert_eq!(total, JOURNAL_HEADER_SIZE + payload.len());
        region
    }

    #[test]
    fn round_trips() {
        let region = written(b"store image", 7);
        assert_eq!(
            parse_journal(&region),
            Ok(Journal {
                base_generation: 7,
                sequence: 3,
                payload: b"store image",
            })
        );
        // A payload filling the region exactly.
        let full = vec![0xa5; payload_capacity(REGION)];
        let region = written(&full, 1);
        assert_eq!(parse_journal(&region).unwrap().payload, &full[..]);
    }

    #[test]
    fn empty_region_is_no_journal() {
        assert_eq!(parse_journal(&[0u8; REGION]), Err(JournalError::Empty));
        let mut region = written(b"x", 1);
        clear_journal(&mut region);
        assert_eq!(parse_journal(&region), Err(JournalError::Empty));
        assert_eq!(
            parse_journal(&[0u8; 31]),
            Err(JournalError::RegionTooSmall { len: 31 })
        );
    }

    #[test]
    fn torn_write_fails_the_crc() {
        // A reset after the header but before the last payload bytes.
        let mut region = written(b"abcdefgh", 1);
        region[JOURNAL_HEADER_SIZE + 7] = 0;
        assert!(matches!(
            parse_journal(&region),
            Err(JournalError::BadCrc { .. })
        ));
        // Any single flipped bit of the record is caught.
        let good = written(b"abcdefgh", 1);
        for byte in 0..JOURNAL_HEADER_SIZE + 8 {
            let mut region = good.clone();
            region[byte] ^= 0x10;
            assert!(parse_journal(&region).is_err(), "flip at {byte}");
        }
    }

    #[test]
    fn rejects_wrong_magic_version_length_reserved() {
        let good = written(b"abc", 1);
        let mut region = good.clone();
        region[0] = b'X';
        assert!(matches!(
            parse_journal(&region),
            Err(JournalError::BadMagic(_))
        ));
        let mut region = good.clone();
        region[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(parse_journal(&region), Err(JournalError::BadVersion(2)));
        let mut region = good.clone();
        region[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            parse_journal(&region),
            Err(JournalError::TooLarge {
                length: u32::MAX as usize,
                capacity: REGION - JOURNAL_HEADER_SIZE
            })
        );
        let mut region = good;
        region[28] = 1;
        assert_eq!(parse_journal(&region), Err(JournalError::BadReserved(1)));
    }

    #[test]
    fn a_region_too_small_for_the_payload_keeps_nothing() {
        let mut region = written(b"previous", 1);
        let result = write_journal(&mut region, 1, 4, |area| {
            Err::<usize, _>(area.len() + 1) // the store image needs more
        });
        assert_eq!(
            result,
            Err(WriteError::Payload(REGION - JOURNAL_HEADER_SIZE + 1))
        );
        assert_eq!(parse_journal(&region), Err(JournalError::Empty));
        let result = write_journal::<()>(&mut region, 1, 4, |area| Ok(area.len() + 1));
        assert!(matches!(result, Err(WriteError::TooLarge { .. })));
        assert_eq!(parse_journal(&region), Err(JournalError::Empty));
        assert_eq!(
            write_journal::<()>(&mut [0u8; 8], 1, 1, |_| Ok(0)),
            Err(WriteError::RegionTooSmall { len: 8 })
        );
    }

    #[test]
    fn applies_only_over_its_base_generation() {
        let region = written(b"abc", 5);
        let journal = parse_journal(&region).unwrap();
        assert_eq!(apply_decision(&journal, Some(5)), ApplyDecision::Apply);
        assert_eq!(
            apply_decision(&journal, Some(6)),
            ApplyDecision::Stale {
                journal_base: 5,
                disk: 6
            }
        );
        assert_eq!(
            apply_decision(&journal, None),
            ApplyDecision::Stale {
                journal_base: 5,
                disk: 0
            }
        );
        let region = written(b"abc", 0);
        let journal = parse_journal(&region).unwrap();
        assert_eq!(apply_decision(&journal, None), ApplyDecision::Apply);
    }
}
