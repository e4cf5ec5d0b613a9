//! The MCFG table (PCI Firmware Specification 3.3 §4.1.2): ECAM windows.

use super::SDT_HEADER_LEN;
use crate::le::{u16_at, u64_at};

/// One ECAM window from the MCFG (PCI Firmware Specification 3.3
/// §4.1.2, Table 4-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ecam {
    pub base: u64,
    pub segment: u16,
    pub start_bus: u8,
    pub end_bus: u8,
}

impl Ecam {
    /// Bytes the window spans: 1 MiB per bus (PCIe Base 6.0 §7.2.2).
    pub fn size(&self) -> u64 {
        (u64::from(self.end_bus.saturating_sub(self.start_bus)) + 1) << 20
    }
}

/// The MCFG's allocation entries: after the header and 8 reserved bytes,
/// 16-byte entries of base, segment, start and end bus.
pub fn mcfg_entries(table: &[u8]) -> impl Iterator<Item = Ecam> + '_ {
    let body = table.get(SDT_HEADER_LEN + 8..).unwrap_or(&[]);
    body.chunks_exact(16).filter_map(|entry| {
        Some(Ecam {
            base: u64_at(entry, 0)?,
            segment: u16_at(entry, 8)?,
            start_bus: entry[10],
            end_bus: entry[11],
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::test_tables::*;

    #[test]
    fn mcfg_entry() {
        let m = mcfg(0xb000_0000, 0, 0, 0xff);
        let ecam: Vec<Ecam> = mcfg_entries(&m).collect();
        assert_eq!(
            ecam,
            vec![Ecam {
                base: 0xb000_0000,
                segment: 0,
                start_bus: 0,
                end_bus: 0xff
            }]
        );
        assert_eq!(ecam[0].size(), 256 << 20);
    }
}
