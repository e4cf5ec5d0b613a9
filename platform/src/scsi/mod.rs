//! SCSI commands the firmware sends and the answers it reads (SPC-4, SBC-3,
//! MMC-6), for any transport that carries CDBs (virtio-scsi). Pure: CDBs
//! are built into arrays and answers parsed from byte slices with checks, so
//! nothing a device returns can make the firmware panic. [`disk`] makes
//! block devices of a controller's units.
#![forbid(unsafe_code)]

pub mod disk;

use alloc::vec::Vec;

/// Operation codes.
pub mod op {
    pub const TEST_UNIT_READY: u8 = 0x00;
    pub const INQUIRY: u8 = 0x12;
    pub const READ_CAPACITY_10: u8 = 0x25;
    pub const READ_10: u8 = 0x28;
    pub const WRITE_10: u8 = 0x2A;
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    pub const READ_16: u8 = 0x88;
    pub const WRITE_16: u8 = 0x8A;
    pub const SERVICE_ACTION_IN_16: u8 = 0x9E;
    pub const REPORT_LUNS: u8 = 0xA0;
    /// SERVICE ACTION IN(16)'s READ CAPACITY(16).
    pub const SA_READ_CAPACITY_16: u8 = 0x10;
}

/// INQUIRY's standard data: as much as the firmware reads of it.
pub const INQUIRY_LEN: usize = 36;
/// READ CAPACITY(16) parameter data read.
pub const CAPACITY_16_LEN: usize = 32;
pub const CAPACITY_10_LEN: usize = 8;

/// SCSI status GOOD and CHECK CONDITION (SAM-5 §5.3.1).
pub const STATUS_GOOD: u8 = 0x00;
pub const STATUS_CHECK_CONDITION: u8 = 0x02;

/// A CDB in the 16 bytes every command here fits.
pub type Cdb = [u8; 16];

pub fn test_unit_ready() -> Cdb {
    [0; 16]
}

pub fn inquiry() -> Cdb {
    let mut cdb = [0; 16];
    cdb[0] = op::INQUIRY;
    cdb[3..5].copy_from_slice(&(INQUIRY_LEN as u16).to_be_bytes());
    cdb
}

pub fn read_capacity_10() -> Cdb {
    let mut cdb = [0; 16];
    cdb[0] = op::READ_CAPACITY_10;
    cdb
}

pub fn read_capacity_16() -> Cdb {
    let mut cdb = [0; 16];
    cdb[0] = op::SERVICE_ACTION_IN_16;
    cdb[1] = op::SA_READ_CAPACITY_16;
    cdb[10..14].copy_from_slice(&(CAPACITY_16_LEN as u32).to_be_bytes());
    cdb
}

/// REPORT LUNS for up to `entries` LUNs (SELECT REPORT 0: every LUN).
pub fn report_luns(entries: u32) -> Cdb {
    let mut cdb = [0; 16];
    cdb[0] = op::REPORT_LUNS;
    let bytes = 8u32.saturating_add(entries.saturating_mul(8));
    cdb[6..10].copy_from_slice(&bytes.to_be_bytes());
    cdb
}

pub fn synchronize_cache() -> Cdb {
    let mut cdb = [0; 16];
    cdb[0] = op::SYNCHRONIZE_CACHE_10;
    cdb
}

/// READ or WRITE of `blocks` blocks at `lba`: the 10-byte form when both
/// fit it (some devices know no other), else the 16-byte one. None when
/// `blocks` does not fit even READ(16)'s 32-bit count.
pub fn read_write(write: bool, lba: u64, blocks: u64) -> Option<Cdb> {
    let mut cdb = [0; 16];
    if let (Ok(lba32), Ok(count16)) = (u32::try_from(lba), u16::try_from(blocks)) {
        cdb[0] = if write { op::WRITE_10 } else { op::READ_10 };
        cdb[2..6].copy_from_slice(&lba32.to_be_bytes());
        cdb[7..9].copy_from_slice(&count16.to_be_bytes());
    } else {
        cdb[0] = if write { op::WRITE_16 } else { op::READ_16 };
        cdb[2..10].copy_from_slice(&lba.to_be_bytes());
        cdb[10..14].copy_from_slice(&u32::try_from(blocks).ok()?.to_be_bytes());
    }
    Some(cdb)
}

/// What INQUIRY says of a logical unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inquiry {
    /// Peripheral device type: 0 direct access (disk), 5 CD/DVD.
    pub device_type: u8,
    /// Peripheral qualifier 0: a device is connected at this LUN.
    pub connected: bool,
    pub removable: bool,
}

pub const TYPE_DISK: u8 = 0x00;
pub const TYPE_CDROM: u8 = 0x05;

impl Inquiry {
    pub fn parse(data: &[u8]) -> Option<Self> {
        let (&byte0, &byte1) = (data.first()?, data.get(1)?);
        Some(Inquiry {
            device_type: byte0 & 0x1F,
            connected: byte0 >> 5 == 0,
            removable: byte1 & 0x80 != 0,
        })
    }
}

/// A logical unit's capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub blocks: u64,
    pub block_size: u32,
}

impl Capacity {
    /// READ CAPACITY(10) data: the last LBA (0xFFFFFFFF: ask READ
    /// CAPACITY(16)) and the block length.
    pub fn parse_10(data: &[u8]) -> Option<Self> {
        let last = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?);
        let block_size = u32::from_be_bytes(data.get(4..8)?.try_into().ok()?);
        (last != u32::MAX).then_some(Capacity {
            blocks: u64::from(last) + 1,
            block_size,
        })
    }

    pub fn parse_16(data: &[u8]) -> Option<Self> {
        let last = u64::from_be_bytes(data.get(0..8)?.try_into().ok()?);
        let block_size = u32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
        Some(Capacity {
            blocks: last.checked_add(1)?,
            block_size,
        })
    }

    /// Whether the firmware's block layers can use it: a power-of-two
    /// block of 512 bytes to 64 KiB, and some blocks.
    pub fn usable(&self) -> bool {
        self.blocks > 0
            && self.block_size.is_power_of_two()
            && (512..=65536).contains(&self.block_size)
    }
}

/// The LUN numbers of a REPORT LUNS answer (single-level, peripheral or
/// flat addressing, SAM-5 §4.7), at most `max` of them.
pub fn parse_report_luns(data: &[u8], max: usize) -> Vec<u16> {
    let Some(len) = data
        .get(0..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return Vec::new();
    };
    let list = data.get(8..).unwrap_or(&[]);
    let entries = (len as usize / 8).min(list.len() / 8).min(max);
    list.chunks_exact(8)
        .take(entries)
        .filter_map(|entry| match entry[0] >> 6 {
            // Peripheral device addressing: bus 0, LUN in byte 1.
            0 if entry[0] == 0 => Some(u16::from(entry[1])),
            // Flat space addressing: a 14-bit LUN.
            1 => Some(u16::from_be_bytes([entry[0] & 0x3F, entry[1]])),
            _ => None,
        })
        .collect()
}

/// The sense key and additional sense code of fixed or descriptor format
/// sense data (SPC-4 §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
}

pub const SENSE_NOT_READY: u8 = 0x02;
pub const SENSE_UNIT_ATTENTION: u8 = 0x06;
/// ASC 0x3A: medium not present.
pub const ASC_NO_MEDIUM: u8 = 0x3A;

impl Sense {
    pub fn parse(data: &[u8]) -> Option<Self> {
        match data.first()? & 0x7F {
            0x70 | 0x71 => Some(Sense {
                key: data.get(2)? & 0x0F,
                asc: *data.get(12)?,
                ascq: *data.get(13)?,
            }),
            0x72 | 0x73 => Some(Sense {
                key: data.get(1)? & 0x0F,
                asc: *data.get(2)?,
                ascq: *data.get(3)?,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_use_the_10_byte_form_when_it_fits() {
        let cdb = read_write(false, 0x1234_5678, 0x800).unwrap();
        assert_eq!(
            cdb[..10],
            [0x28, 0, 0x12, 0x34, 0x56, 0x78, 0, 0x08, 0x00, 0]
        );
        let cdb = read_write(true, 1 << 33, 8).unwrap();
        assert_eq!(cdb[0], op::WRITE_16);
        assert_eq!(cdb[2..10], (1u64 << 33).to_be_bytes());
        assert_eq!(cdb[10..14], 8u32.to_be_bytes());
        let cdb = read_write(false, 0, 0x10000).unwrap();
        assert_eq!(cdb[0], op::READ_16);
        assert_eq!(read_write(false, 0, 1 << 32), None);
    }

    #[test]
    fn answers_parse_and_short_ones_are_refused() {
        assert_eq!(
            Inquiry::parse(&[0x05, 0x80]),
            Some(Inquiry {
                device_type: TYPE_CDROM,
                connected: true,
                removable: true
            })
        );
        assert!(!Inquiry::parse(&[0x7F, 0]).unwrap().connected);
        assert_eq!(Inquiry::parse(&[0]), None);

        let mut rc16 = [0u8; 32];
        rc16[..8].copy_from_slice(&99u64.to_be_bytes());
        rc16[8..12].copy_from_slice(&4096u32.to_be_bytes());
        assert_eq!(
            Capacity::parse_16(&rc16),
            Some(Capacity {
                blocks: 100,
                block_size: 4096
            })
        );
        rc16[..8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(Capacity::parse_16(&rc16), None);
        assert_eq!(
            Capacity::parse_10(&[0, 0, 0x0F, 0xFF, 0, 0, 8, 0]),
            Some(Capacity {
                blocks: 0x1000,
                block_size: 2048
            })
        );
        assert_eq!(Capacity::parse_10(&[0xFF; 8]), None);
        assert_eq!(Capacity::parse_10(&[0; 7]), None);
        assert!(
            !Capacity {
                blocks: 8,
                block_size: 520
            }
            .usable()
        );
        assert!(
            !Capacity {
                blocks: 0,
                block_size: 512
            }
            .usable()
        );
    }

    #[test]
    fn report_luns_lists_peripheral_and_flat_luns_within_bounds() {
        let mut data = alloc::vec![0u8; 8 + 3 * 8];
        data[..4].copy_from_slice(&(3u32 * 8).to_be_bytes());
        data[8 + 1] = 0; // LUN 0, peripheral
        data[16] = 0x40; // flat, LUN 0x105
        data[17] = 0x05;
        data[16] |= 0x01;
        data[24] = 0xC0; // extended: skipped
        assert_eq!(parse_report_luns(&data, 16), [0, 0x105]);
        // A length beyond the data, or a list cut by `max`.
        data[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse_report_luns(&data, 1), [0]);
        assert!(parse_report_luns(&[0, 0], 4).is_empty());
    }

    #[test]
    fn sense_in_both_formats() {
        let mut fixed = [0u8; 18];
        fixed[0] = 0x70;
        fixed[2] = SENSE_NOT_READY;
        fixed[12] = ASC_NO_MEDIUM;
        assert_eq!(
            Sense::parse(&fixed),
            Some(Sense {
                key: SENSE_NOT_READY,
                asc: ASC_NO_MEDIUM,
                ascq: 0
            })
        );
        assert_eq!(
            Sense::parse(&[0x72, SENSE_UNIT_ATTENTION, 0x29, 0x00]),
            Some(Sense {
                key: SENSE_UNIT_ATTENTION,
                asc: 0x29,
                ascq: 0
            })
        );
        assert_eq!(Sense::parse(&[0x70, 0, 2]), None);
        assert_eq!(Sense::parse(&[]), None);
    }
}
