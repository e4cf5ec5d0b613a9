//! The on-disk (and in-RAM) store image format of the variable store
//! (see [`crate::variables`]): header layout, records, CRC and sealing.
//! Pure functions over byte slices with checked arithmetic.
//!
//! Store image, version 1 (all integers little-endian):
//!
//! | offset | size | field                                                  |
//! |--------|------|--------------------------------------------------------|
//! | 0      | 8    | magic `"VMFWVAR\0"`                                    |
//! | 8      | 4    | format version, 1                                      |
//! | 12     | 4    | `used`: bytes of records following the header          |
//! | 16     | 4    | CRC-32 (ISO-HDLC, as EFI table headers) of the header with this field zero, followed by the `used` record bytes |
//! | 20     | 4    | `generation`: write sequence number of a persisted image (0 in RAM); lets a reader of two slots pick the newer |
//!
//! Records follow back to back, each:
//!
//! | offset | size        | field                                           |
//! |--------|-------------|-------------------------------------------------|
//! | 0      | 4           | attributes (EFI_VARIABLE_*)                     |
//! | 4      | 16          | vendor GUID (EFI_GUID memory layout)            |
//! | 20     | 4           | `name_size`: name bytes including the NUL       |
//! | 24     | 4           | `data_size`: data bytes, at least 1             |
//! | 28     | `name_size` | name, UCS-2 little-endian, NUL-terminated       |
//! |        | `data_size` | data                                            |
//!
//! Deleting or resizing a variable compacts the records behind it, so the
//! image never contains holes.

use core::fmt;

use platform::crc32::crc32;
use uefi_raw::Guid;

use super::{Attributes, VariableRef};

pub const MAGIC: [u8; 8] = *b"VMFWVAR\0";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_SIZE: usize = 24;
pub const RECORD_HEADER_SIZE: usize = 28;

/// Why a store image was rejected by [`VariableStore::load`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    Truncated {
        len: usize,
        needed: usize,
    },
    BadMagic([u8; 8]),
    BadVersion(u32),
    BadCrc {
        stored: u32,
        computed: u32,
    },
    /// A malformed record starts at this offset of the record area.
    BadRecord {
        offset: usize,
    },
    /// A second record with the same name and GUID starts here.
    Duplicate {
        offset: usize,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Truncated { len, needed } => {
                write!(f, "image of {len} bytes is truncated, needs {needed}")
            }
            Corruption::BadMagic(magic) => write!(f, "bad magic {magic:02x?}"),
            Corruption::BadVersion(v) => write!(f, "unsupported format version {v}"),
            Corruption::BadCrc { stored, computed } => {
                write!(f, "CRC {stored:#010x} stored, {computed:#010x} computed")
            }
            Corruption::BadRecord { offset } => write!(f, "malformed record at {offset}"),
            Corruption::Duplicate { offset } => write!(f, "duplicate variable at {offset}"),
        }
    }
}

/// The generation field of a store image's header, read without checking
/// the image (a reader of two slots tries the higher one first and falls
/// back when [`VariableStore::load`] rejects it). None when too short.
pub fn image_generation(image: &[u8]) -> Option<u32> {
    platform::le::u32_at(image, 20)
}

/// Stamps `generation` into a store image and recomputes its CRC. Fails
/// when `image` is shorter than its header says (never for an image from
/// [`VariableStore::serialise_non_volatile`]).
pub fn seal_image(image: &mut [u8], generation: u32) -> Result<(), Corruption> {
    let len = image.len();
    let used = platform::le::u32_at(image, 12).ok_or(Corruption::Truncated {
        len,
        needed: HEADER_SIZE,
    })? as usize;
    let total = HEADER_SIZE.saturating_add(used);
    let whole = image
        .get_mut(..total)
        .ok_or(Corruption::Truncated { len, needed: total })?;
    whole[16..20].fill(0);
    whole[20..24].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32(whole);
    whole[16..20].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Location and header fields of one record inside the record area.
#[derive(Clone, Copy, Debug)]
pub(super) struct Record {
    pub(super) offset: usize,
    pub(super) attributes: Attributes,
    pub(super) guid: Guid,
    pub(super) name_size: usize,
    pub(super) data_size: usize,
}

impl Record {
    pub(super) fn len(&self) -> usize {
        RECORD_HEADER_SIZE + self.name_size + self.data_size
    }

    pub(super) fn end(&self) -> usize {
        self.offset + self.len()
    }

    pub(super) fn data_start(&self) -> usize {
        self.offset + RECORD_HEADER_SIZE + self.name_size
    }

    pub(super) fn view<'s>(&self, records: &'s [u8]) -> VariableRef<'s> {
        let name_start = self.offset + RECORD_HEADER_SIZE;
        VariableRef {
            attributes: self.attributes,
            guid: self.guid,
            name_bytes: &records[name_start..name_start + self.name_size - 2],
            data: &records[self.data_start()..self.end()],
        }
    }
}

/// Parses the record at `offset` of `records`, checking only that it fits.
pub(super) fn parse_record(records: &[u8], offset: usize) -> Option<Record> {
    let header = records.get(offset..offset.checked_add(RECORD_HEADER_SIZE)?)?;
    let guid_bytes = platform::le::guid_bytes_at(header, 4)?;
    let record = Record {
        offset,
        attributes: Attributes::from_bits_retain(platform::le::u32_at(header, 0)?),
        guid: Guid::from_bytes(guid_bytes),
        name_size: usize::try_from(platform::le::u32_at(header, 20)?).ok()?,
        data_size: usize::try_from(platform::le::u32_at(header, 24)?).ok()?,
    };
    let end = offset
        .checked_add(RECORD_HEADER_SIZE)?
        .checked_add(record.name_size)?
        .checked_add(record.data_size)?;
    (record.name_size >= 2 && end <= records.len()).then_some(record)
}

/// Iterates the records of a well-formed record area; stops at anything
/// malformed.
pub(super) struct Records<'s> {
    pub(super) records: &'s [u8],
    pub(super) offset: usize,
}

impl Iterator for Records<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.offset >= self.records.len() {
            return None;
        }
        let record = parse_record(self.records, self.offset)?;
        self.offset = record.end();
        Some(record)
    }
}
