//! Pure decoders for the ACPI structures. No memory access beyond the slices
//! they are given.
#![forbid(unsafe_code)]

use super::{AcpiError, MAX_TABLE_LEN};
use crate::le::{u32_at, u64_at};

/// Byte sum modulo 256; every ACPI checksum makes this zero.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
}

fn need(bytes: &[u8], needed: usize) -> Result<(), AcpiError> {
    if bytes.len() < needed {
        return Err(AcpiError::Truncated {
            needed,
            available: bytes.len(),
        });
    }
    Ok(())
}

pub const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// ACPI 1.0 RSDP size, covered by the first checksum (ACPI 6.5 §5.2.5.3).
pub const RSDP_V1_LEN: usize = 20;
/// ACPI 2.0+ RSDP size, covered by the extended checksum.
pub const RSDP_V2_LEN: usize = 36;

/// Root System Description Pointer (ACPI 6.5 §5.2.5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    pub revision: u8,
    pub oem_id: [u8; 6],
    pub rsdt_address: u32,
    /// Zero for a revision 0 (ACPI 1.0) RSDP.
    pub xsdt_address: u64,
}

impl Rsdp {
    /// Decodes an RSDP, verifying the 20-byte checksum and, for revision
    /// 2 and later, the extended checksum over the whole structure.
    pub fn parse(bytes: &[u8]) -> Result<Rsdp, AcpiError> {
        need(bytes, RSDP_V1_LEN)?;
        let mut signature = [0; 8];
        signature.copy_from_slice(&bytes[..8]);
        if &signature != RSDP_SIGNATURE {
            return Err(AcpiError::BadSignature(signature));
        }
        let sum = checksum(&bytes[..RSDP_V1_LEN]);
        if sum != 0 {
            return Err(AcpiError::BadChecksum {
                signature: *b"RSDP",
                sum,
            });
        }
        let mut oem_id = [0; 6];
        oem_id.copy_from_slice(&bytes[9..15]);
        let revision = bytes[15];
        let rsdt_address = u32_at(bytes, 16).unwrap_or(0);
        let mut xsdt_address = 0;
        if revision >= 2 {
            need(bytes, RSDP_V2_LEN)?;
            let length = u32_at(bytes, 20).unwrap_or(0);
            if (length as usize) < RSDP_V2_LEN || length as usize > bytes.len() {
                return Err(AcpiError::BadLength(length));
            }
            let sum = checksum(&bytes[..length as usize]);
            if sum != 0 {
                return Err(AcpiError::BadChecksum {
                    signature: *b"XSDP",
                    sum,
                });
            }
            xsdt_address = u64_at(bytes, 24).unwrap_or(0);
        }
        Ok(Rsdp {
            revision,
            oem_id,
            rsdt_address,
            xsdt_address,
        })
    }

    /// Physical address and entry width of the root table; the XSDT is
    /// preferred when present (ACPI 6.5 §5.2.5.3: "An ACPI-compatible
    /// OS must use the XSDT if present").
    pub fn root_table(&self) -> Option<(u64, usize)> {
        if self.xsdt_address != 0 {
            Some((self.xsdt_address, 8))
        } else if self.rsdt_address != 0 {
            Some((u64::from(self.rsdt_address), 4))
        } else {
            None
        }
    }
}

/// Finds a valid RSDP in `area` (which starts at physical `base`),
/// looking on 16-byte boundaries as ACPI 6.5 §5.2.5.1 requires. Returns
/// the RSDP's physical address.
pub fn scan_for_rsdp(area: &[u8], base: u64) -> Option<(u64, Rsdp)> {
    (0..area.len()).step_by(16).find_map(|offset| {
        let candidate = &area[offset..];
        if !candidate.starts_with(RSDP_SIGNATURE) {
            return None;
        }
        let rsdp = Rsdp::parse(candidate).ok()?;
        Some((base.checked_add(offset as u64)?, rsdp))
    })
}

/// Length of the common table header (ACPI 6.5 §5.2.6).
pub const SDT_HEADER_LEN: usize = 36;

/// System Description Table header (ACPI 6.5 §5.2.6, Table 5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdtHeader {
    pub signature: [u8; 4],
    pub length: u32,
    pub revision: u8,
    pub oem_id: [u8; 6],
    pub oem_table_id: [u8; 8],
}

impl SdtHeader {
    /// Decodes a header and checks its length is plausible; does not
    /// check the checksum (the body may not be mapped yet).
    pub fn parse(bytes: &[u8]) -> Result<SdtHeader, AcpiError> {
        need(bytes, SDT_HEADER_LEN)?;
        let mut signature = [0; 4];
        signature.copy_from_slice(&bytes[..4]);
        let length = u32_at(bytes, 4).unwrap_or(0);
        if (length as usize) < SDT_HEADER_LEN || length as usize > MAX_TABLE_LEN {
            return Err(AcpiError::BadLength(length));
        }
        let mut oem_id = [0; 6];
        oem_id.copy_from_slice(&bytes[10..16]);
        let mut oem_table_id = [0; 8];
        oem_table_id.copy_from_slice(&bytes[16..24]);
        Ok(SdtHeader {
            signature,
            length,
            revision: bytes[8],
            oem_id,
            oem_table_id,
        })
    }
}

/// Validates a whole table: header, `bytes.len() >= length` and a zero
/// checksum over `length` bytes. Returns the table cut to its length.
pub fn validate_table(bytes: &[u8]) -> Result<(SdtHeader, &[u8]), AcpiError> {
    let header = SdtHeader::parse(bytes)?;
    let table = bytes
        .get(..header.length as usize)
        .ok_or(AcpiError::Truncated {
            needed: header.length as usize,
            available: bytes.len(),
        })?;
    let sum = checksum(table);
    if sum != 0 {
        return Err(AcpiError::BadChecksum {
            signature: header.signature,
            sum,
        });
    }
    Ok((header, table))
}

/// The table addresses in an XSDT (`entry_size` 8) or RSDT (4): the body
/// after the header is an array of physical addresses (ACPI 6.5 §5.2.7,
/// §5.2.8). A trailing partial entry is ignored.
pub fn root_entries(table: &[u8], entry_size: usize) -> impl Iterator<Item = u64> + '_ {
    let body = table.get(SDT_HEADER_LEN..).unwrap_or(&[]);
    body.chunks_exact(entry_size).map(move |entry| {
        if entry_size == 8 {
            u64_at(entry, 0).unwrap_or(0)
        } else {
            u64::from(u32_at(entry, 0).unwrap_or(0))
        }
    })
}

mod cba;
mod fadt;
mod gas;
mod mcfg;
mod s5;
mod tpm2;

pub use cba::find_cba;
pub use fadt::{Fadt, FadtFlags};
pub use gas::{AddressSpace, GenericAddress};
pub use mcfg::{Ecam, mcfg_entries};
pub use s5::{SleepType, find_s5, pkg_length};
pub use tpm2::{LogArea, Tpm2Table, start_method};

#[cfg(test)]
mod tests;
