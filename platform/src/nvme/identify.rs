//! Identify data structures (NVM Express Base Specification 2.0 §5.17.2;
//! NVM Command Set Specification 1.0 §4.1.5.1): the few fields the driver
//! needs, parsed from 4 KiB the device wrote, never trusting them.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use crate::le::{u32_at, u64_at};

/// Identify Controller (Base Figure 275).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerData {
    pub serial: String,
    pub model: String,
    /// Maximum Data Transfer Size as a power of two of minimum pages; 0 is
    /// no limit.
    pub mdts: u8,
    /// Number of Namespaces: the largest namespace ID.
    pub namespaces: u32,
    /// A volatile write cache is present, so Flush has work to do.
    pub volatile_write_cache: bool,
}

/// ASCII text fields are space padded (Base §1.5); some devices pad with
/// NULs instead.
fn text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| {
            if (0x20..0x7F).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim()
        .into()
}

pub fn controller(data: &[u8; 4096]) -> ControllerData {
    ControllerData {
        serial: text(&data[4..24]),
        model: text(&data[24..64]),
        mdts: data[77],
        namespaces: u32_at(data, 516).unwrap_or(0),
        volatile_write_cache: data[525] & 1 != 0,
    }
}

/// Why a namespace cannot be a block device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceError {
    /// NSZE is 0: inactive, or an empty namespace.
    Empty,
    /// FLBAS names a format beyond NLBAF.
    BadFormatIndex(u8),
    /// The format's block size is not 512 B..64 KiB.
    BadBlockSize(u8),
    /// The format carries metadata, which plain Read/Write would need a
    /// buffer for.
    Metadata(u16),
}

impl core::fmt::Display for NamespaceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => write!(f, "size 0"),
            Self::BadFormatIndex(i) => write!(f, "LBA format index {i} out of range"),
            Self::BadBlockSize(lbads) => write!(f, "unusable LBA data size 2^{lbads}"),
            Self::Metadata(ms) => write!(f, "{ms} bytes of metadata per block"),
        }
    }
}

/// Identify Namespace (NVM Command Set Figure 97).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceData {
    pub blocks: u64,
    pub block_size: u32,
    /// IEEE EUI-64, as stored (bytes 127:120); zero when not assigned.
    pub eui64: [u8; 8],
}

pub fn namespace(data: &[u8; 4096]) -> Result<NamespaceData, NamespaceError> {
    let blocks = u64_at(data, 0).unwrap_or(0);
    if blocks == 0 {
        return Err(NamespaceError::Empty);
    }
    // NLBAF is 0's based; FLBAS bits 3:0 and (with more than 16 formats)
    // 6:5 as the upper bits select the format in use.
    let formats = u16::from(data[25]) + 1;
    let flbas = data[26];
    let index = (flbas & 0xF) | ((flbas >> 1) & 0x30);
    if u16::from(index) >= formats || index >= 64 {
        return Err(NamespaceError::BadFormatIndex(index));
    }
    let format = u32_at(data, 128 + 4 * usize::from(index)).unwrap_or(0);
    let metadata = format as u16;
    let lbads = (format >> 16) as u8;
    if !(9..=16).contains(&lbads) {
        return Err(NamespaceError::BadBlockSize(lbads));
    }
    if metadata != 0 {
        return Err(NamespaceError::Metadata(metadata));
    }
    let mut eui64 = [0; 8];
    eui64.copy_from_slice(&data[120..128]);
    Ok(NamespaceData {
        blocks,
        block_size: 1 << lbads,
        eui64,
    })
}

/// Active Namespace ID list (Base §5.17.2.2): ascending IDs, zero ends it.
pub fn namespace_list(data: &[u8; 4096]) -> Vec<u32> {
    data.chunks_exact(4)
        .map(|id| u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
        .take_while(|&id| id != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace_page(blocks: u64, formats: &[u32], flbas: u8) -> Box<[u8; 4096]> {
        let mut data = Box::new([0u8; 4096]);
        data[..8].copy_from_slice(&blocks.to_le_bytes());
        data[25] = formats.len().saturating_sub(1) as u8;
        data[26] = flbas;
        data[120..128].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        for (i, format) in formats.iter().enumerate() {
            data[128 + 4 * i..132 + 4 * i].copy_from_slice(&format.to_le_bytes());
        }
        data
    }

    #[test]
    fn controller_fields() {
        let mut data = Box::new([0u8; 4096]);
        data[4..12].copy_from_slice(b"vmfw0   ");
        data[24..40].copy_from_slice(b"QEMU NVMe Ctrl  ");
        data[30] = 0xFF;
        data[77] = 7;
        data[516..520].copy_from_slice(&256u32.to_le_bytes());
        data[525] = 1;
        let id = controller(&data);
        assert_eq!(id.serial, "vmfw0");
        assert_eq!(id.model, "QEMU N?Me Ctrl");
        assert_eq!(
            (id.mdts, id.namespaces, id.volatile_write_cache),
            (7, 256, true)
        );
    }

    #[test]
    fn namespace_formats() {
        // 512-byte and 4 KiB formats; the second in use.
        let ns = namespace(&namespace_page(1000, &[9 << 16, 12 << 16], 1)).unwrap();
        assert_eq!((ns.blocks, ns.block_size), (1000, 4096));
        assert_eq!(ns.eui64, [1, 2, 3, 4, 5, 6, 7, 8]);
        // Format index 17 through FLBAS bits 6:5.
        let mut formats = vec![0u32; 18];
        formats[17] = 9 << 16;
        let ns = namespace(&namespace_page(8, &formats, 0x21)).unwrap();
        assert_eq!(ns.block_size, 512);
    }

    #[test]
    fn hostile_namespaces_are_refused() {
        assert_eq!(
            namespace(&namespace_page(0, &[9 << 16], 0)),
            Err(NamespaceError::Empty)
        );
        assert_eq!(
            namespace(&namespace_page(8, &[9 << 16], 3)),
            Err(NamespaceError::BadFormatIndex(3))
        );
        for lbads in [0u32, 8, 17, 255] {
            assert_eq!(
                namespace(&namespace_page(8, &[lbads << 16], 0)),
                Err(NamespaceError::BadBlockSize(lbads as u8))
            );
        }
        assert_eq!(
            namespace(&namespace_page(8, &[9 << 16 | 8], 0)),
            Err(NamespaceError::Metadata(8))
        );
        // All 0xFF (a dead device): 64 formats, index 0x3F is out of range
        // only if NLBAF says so; either way no panic.
        let _ = namespace(&Box::new([0xFF; 4096]));
    }

    #[test]
    fn namespace_list_stops_at_zero() {
        let mut data = Box::new([0u8; 4096]);
        data[..4].copy_from_slice(&1u32.to_le_bytes());
        data[4..8].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(namespace_list(&data), [1, 7]);
        let full = Box::new([1u8; 4096]);
        assert_eq!(namespace_list(&full).len(), 1024);
    }
}
