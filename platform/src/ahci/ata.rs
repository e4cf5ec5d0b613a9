//! What travels inside AHCI commands, as plain bytes: the host-to-device
//! register FIS (Serial ATA 3.x §10.5.5), physical region descriptor tables
//! (AHCI 1.3.1 §4.2.3.3), SCSI command blocks carried by ATAPI PACKET
//! (MMC-6, SPC-4), and the parsers of what devices return (IDENTIFY DEVICE
//! data, ACS-3 §7.12.7; READ CAPACITY(10), SBC-3 §5.15; fixed sense data,
//! SPC-4 §4.5.3). Everything here trusts nothing the device sends.
#![forbid(unsafe_code)]

/// ATA commands (ACS-3 §7).
pub mod command {
    pub const READ_DMA_EXT: u8 = 0x25;
    pub const WRITE_DMA_EXT: u8 = 0x35;
    pub const PACKET: u8 = 0xA0;
    pub const IDENTIFY_PACKET_DEVICE: u8 = 0xA1;
    pub const FLUSH_CACHE_EXT: u8 = 0xEA;
    pub const IDENTIFY_DEVICE: u8 = 0xEC;
}

/// SCSI operation codes sent through PACKET (SPC-4, SBC-3, MMC-6): the
/// shared ones of `crate::scsi`, and the two only ATAPI needs.
pub mod scsi {
    pub use crate::scsi::op::{READ_10, READ_CAPACITY_10, TEST_UNIT_READY};
    pub const REQUEST_SENSE: u8 = 0x03;
    pub const READ_12: u8 = 0xA8;
}

/// FIS type of a register host-to-device FIS (SATA 3.x §10.5.5).
pub const FIS_TYPE_REG_H2D: u8 = 0x27;
/// Its length in bytes; the command header counts it in dwords.
pub const H2D_FIS_BYTES: usize = 20;
/// Device register bit 6: the LBA fields hold an LBA (ACS-3 §6.1).
const DEVICE_LBA: u8 = 1 << 6;
/// Features bit 0 of PACKET: the data phase is DMA (ACS-3 §7.18).
const PACKET_DMA: u8 = 1;

/// Largest byte count one PRD entry can describe (AHCI 1.3.1 §4.2.3.3:
/// DBC is 22 bits holding count - 1).
pub const PRD_MAX_BYTES: u32 = 4 << 20;
/// PRD entry size in the command table.
pub const PRD_BYTES: usize = 16;

/// A register host-to-device FIS with the C bit set: `command` with its
/// 48-bit LBA, 16-bit count and features (ACS-3 §6: the EXT commands use
/// all 48 bits; the others ignore the upper ones).
pub fn h2d_fis(command: u8, features: u16, lba: u64, count: u16) -> [u8; H2D_FIS_BYTES] {
    let lba = lba.to_le_bytes();
    let features = features.to_le_bytes();
    let count = count.to_le_bytes();
    let mut fis = [0u8; H2D_FIS_BYTES];
    fis[0] = FIS_TYPE_REG_H2D;
    // C bit: this FIS updates the command register (port multiplier 0).
    fis[1] = 1 << 7;
    fis[2] = command;
    fis[3] = features[0];
    fis[4..7].copy_from_slice(&lba[..3]);
    fis[7] = DEVICE_LBA;
    fis[8..11].copy_from_slice(&lba[3..6]);
    fis[11] = features[1];
    fis[12] = count[0];
    fis[13] = count[1];
    fis
}

/// The FIS of a PACKET command whose data phase (if any) is DMA.
pub fn packet_fis() -> [u8; H2D_FIS_BYTES] {
    h2d_fis(command::PACKET, u16::from(PACKET_DMA), 0, 0)
}

/// One PRD entry: `bytes` (even, 2..=4 MiB) at bus address `addr` (word
/// aligned), without the interrupt bit: we poll.
pub fn prd_entry(addr: u64, bytes: u32) -> [u8; PRD_BYTES] {
    let mut entry = [0u8; PRD_BYTES];
    entry[..8].copy_from_slice(&addr.to_le_bytes());
    entry[12..].copy_from_slice(&(bytes.saturating_sub(1) & (PRD_MAX_BYTES - 1)).to_le_bytes());
    entry
}

/// Cuts `len` bytes at `addr` into PRD pieces of at most [`PRD_MAX_BYTES`].
/// None if the buffer cannot be described: odd address or length (DBA bit 0
/// is reserved and DBC must be even), more than `max_entries` pieces, or an
/// address range that wraps.
pub fn prd_split(addr: u64, len: usize, max_entries: usize) -> Option<alloc::vec::Vec<(u64, u32)>> {
    let len = u64::try_from(len).ok()?;
    if len == 0 || !addr.is_multiple_of(2) || !len.is_multiple_of(2) {
        return None;
    }
    addr.checked_add(len)?;
    let step = u64::from(PRD_MAX_BYTES);
    let entries = usize::try_from(len.div_ceil(step)).ok()?;
    if entries > max_entries {
        return None;
    }
    Some(
        (0..len)
            .step_by(PRD_MAX_BYTES as usize)
            .map(|offset| (addr + offset, (len - offset).min(step) as u32))
            .collect(),
    )
}

/// A 12-byte SCSI command block (ATAPI devices take 12 bytes, or 16 if
/// IDENTIFY PACKET DEVICE word 0 says so; the tail stays zero).
pub type Cdb = [u8; 12];

pub fn cdb_test_unit_ready() -> Cdb {
    [0; 12]
}

/// REQUEST SENSE for `len` bytes of fixed-format sense data (SPC-4 §6.29).
pub fn cdb_request_sense(len: u8) -> Cdb {
    let mut cdb = [0u8; 12];
    cdb[0] = scsi::REQUEST_SENSE;
    cdb[4] = len;
    cdb
}

pub fn cdb_read_capacity() -> Cdb {
    let mut cdb = [0u8; 12];
    cdb[0] = scsi::READ_CAPACITY_10;
    cdb
}

/// READ(10) when `blocks` fits its 16-bit length, else READ(12) (MMC-6
/// §6.15, §6.16): both take a 32-bit LBA, which covers any CD or DVD.
pub fn cdb_read(lba: u32, blocks: u32) -> Cdb {
    let mut cdb = [0u8; 12];
    cdb[2..6].copy_from_slice(&lba.to_be_bytes());
    match u16::try_from(blocks) {
        Ok(short) => {
            cdb[0] = scsi::READ_10;
            cdb[7..9].copy_from_slice(&short.to_be_bytes());
        }
        Err(_) => {
            cdb[0] = scsi::READ_12;
            cdb[6..10].copy_from_slice(&blocks.to_be_bytes());
        }
    }
    cdb
}

/// READ CAPACITY(10) data: (number of blocks, block length). None for a
/// short answer, an unusable block length, or a last LBA of 0xFFFFFFFF
/// (which means "use READ CAPACITY(16)": no CD is that large).
pub fn parse_read_capacity(data: &[u8]) -> Option<(u64, u32)> {
    crate::scsi::Capacity::parse_10(data)
        .filter(crate::scsi::Capacity::usable)
        .map(|capacity| (capacity.blocks, capacity.block_size))
}

/// Sense key and additional sense code of fixed-format sense data
/// (response code 0x70/0x71, SPC-4 §4.5.3).
pub fn parse_sense(data: &[u8]) -> Option<(u8, u8)> {
    let code = data.first()? & 0x7F;
    if code != 0x70 && code != 0x71 {
        return None;
    }
    Some((data.get(2)? & 0x0F, *data.get(12)?))
}

pub mod sense {
    pub use crate::scsi::{
        ASC_NO_MEDIUM as ASC_MEDIUM_NOT_PRESENT, SENSE_NOT_READY as NOT_READY,
        SENSE_UNIT_ATTENTION as UNIT_ATTENTION,
    };
}

/// What IDENTIFY DEVICE says about an ATA disk (ACS-3 §7.12.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtaIdentity {
    pub sectors: u64,
    pub sector_bytes: u32,
    pub flush_ext: bool,
    pub model: alloc::string::String,
}

/// Why an IDENTIFY answer is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentifyError {
    /// Word 0 bit 15 set: not an ATA device (or not an IDENTIFY answer).
    NotAta,
    /// No 48-bit addressing (words 83/86 bit 10): the driver only speaks
    /// the EXT commands.
    NoLba48,
    /// Words 117-118 give a logical sector size that is not a power of two
    /// between 512 and 64 KiB.
    BadSectorSize(u64),
}

fn word(data: &[u8; 512], index: usize) -> u16 {
    u16::from_le_bytes([data[2 * index], data[2 * index + 1]])
}

/// ATA strings hold two characters per word, the first in the high byte
/// (ACS-3 §3.4.9); trailing padding trimmed, non-ASCII shown as '?'.
fn ata_string(data: &[u8; 512], words: core::ops::Range<usize>) -> alloc::string::String {
    let mut text: alloc::string::String = words
        .flat_map(|index| word(data, index).to_be_bytes())
        .map(|byte| {
            if byte.is_ascii_graphic() || byte == b' ' {
                char::from(byte)
            } else {
                '?'
            }
        })
        .collect();
    text.truncate(text.trim_end().len());
    text
}

/// Parses IDENTIFY DEVICE data.
pub fn parse_identify(data: &[u8; 512]) -> Result<AtaIdentity, IdentifyError> {
    if word(data, 0) & (1 << 15) != 0 {
        return Err(IdentifyError::NotAta);
    }
    // Words 83 and 86 bit 10: the 48-bit Address feature set is supported
    // and enabled; words 100-103 then hold the addressable sectors.
    if word(data, 83) & (1 << 10) == 0 || word(data, 86) & (1 << 10) == 0 {
        return Err(IdentifyError::NoLba48);
    }
    let sectors = (100..104).rev().fold(0u64, |acc, index| {
        (acc << 16) | u64::from(word(data, index))
    });
    // Word 106 is valid when bits 15:14 are 01b; bit 12 says words 117-118
    // give the logical sector size in words (else it is 256 words).
    let w106 = word(data, 106);
    let sector_bytes = if w106 & 0xC000 == 0x4000 && w106 & (1 << 12) != 0 {
        let words = u64::from(word(data, 117)) | (u64::from(word(data, 118)) << 16);
        let bytes = words * 2;
        if !bytes.is_power_of_two() || !(512..=65536).contains(&bytes) {
            return Err(IdentifyError::BadSectorSize(bytes));
        }
        bytes as u32
    } else {
        512
    };
    Ok(AtaIdentity {
        sectors,
        sector_bytes,
        // Word 83 bit 13: FLUSH CACHE EXT supported.
        flush_ext: word(data, 83) & (1 << 13) != 0,
        model: ata_string(data, 27..47),
    })
}

/// What IDENTIFY PACKET DEVICE says (ACS-3 §7.13.6): the device type
/// (word 0 bits 12:8, 5 = CD/DVD), the CDB length and the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtapiIdentity {
    pub device_type: u8,
    pub cdb_bytes: usize,
    pub model: alloc::string::String,
}

pub fn parse_identify_packet(data: &[u8; 512]) -> Result<AtapiIdentity, IdentifyError> {
    let w0 = word(data, 0);
    // Bits 15:14 = 10b: an ATAPI device.
    if w0 >> 14 != 0b10 {
        return Err(IdentifyError::NotAta);
    }
    Ok(AtapiIdentity {
        device_type: ((w0 >> 8) & 0x1F) as u8,
        cdb_bytes: if w0 & 0b11 == 1 { 16 } else { 12 },
        model: ata_string(data, 27..47),
    })
}
