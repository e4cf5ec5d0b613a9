//! The TPM2 table (TCG ACPI Specification, Version 1.3, §8.3 "ACPI Table
//! for TPM 2.0"): how the TPM is started (FIFO or CRB), where its control
//! area is and, in revision 4 tables, where the previous firmware stage
//! left its event log.

use super::{AcpiError, SDT_HEADER_LEN, need};
use crate::le::{u16_at, u32_at, u64_at};

/// Start Method values (TCG ACPI Specification §8.3, Table 8).
pub mod start_method {
    /// "Uses the Memory Mapped I/O Interface": the PTP FIFO (TIS) registers.
    pub const FIFO: u32 = 6;
    /// "Uses the Command Response Buffer Interface".
    pub const CRB: u32 = 7;
}

/// Bytes up to and including Start Method: header, Platform Class,
/// reserved, control area address, start method.
const MIN_LEN: usize = 52;
/// LAML follows the start-method parameters: 12 bytes of them up to table
/// revision 4 (QEMU's), 16 from revision 5; LASA follows LAML.
const LAML_AT_REV4: usize = 64;
const LAML_AT_REV5: usize = 68;

/// Where an earlier stage (SeaBIOS under QEMU) keeps its TCG event log:
/// Log Area Minimum Length and Log Area Start Address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogArea {
    pub min_len: u32,
    pub start: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tpm2Table {
    /// 0 = client, 1 = server.
    pub platform_class: u16,
    /// Address of the CRB control area (CTRL_REQ); zero for FIFO.
    pub control_area: u64,
    pub start_method: u32,
    /// Present when the table is long enough to hold LAML and LASA and
    /// they name a non-empty area.
    pub log_area: Option<LogArea>,
}

impl Tpm2Table {
    /// Decodes a validated table (see `validate_table`).
    pub fn parse(table: &[u8]) -> Result<Tpm2Table, AcpiError> {
        need(table, MIN_LEN)?;
        let platform_class = u16_at(table, SDT_HEADER_LEN).unwrap_or(0);
        let control_area = u64_at(table, 40).unwrap_or(0);
        let start_method = u32_at(table, 48).unwrap_or(0);
        let laml_at = if table[8] >= 5 {
            LAML_AT_REV5
        } else {
            LAML_AT_REV4
        };
        let log_area = match (u32_at(table, laml_at), u64_at(table, laml_at + 4)) {
            (Some(min_len), Some(start)) if min_len != 0 && start != 0 => {
                Some(LogArea { min_len, start })
            }
            _ => None,
        };
        Ok(Tpm2Table {
            platform_class,
            control_area,
            start_method,
            log_area,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::test_tables::table;

    fn body(control: u64, method: u32, log: Option<(u32, u64)>) -> alloc::vec::Vec<u8> {
        let mut b = alloc::vec![0u8; 4];
        b.extend_from_slice(&control.to_le_bytes());
        b.extend_from_slice(&method.to_le_bytes());
        if let Some((laml, lasa)) = log {
            b.extend_from_slice(&[0; 12]);
            b.extend_from_slice(&laml.to_le_bytes());
            b.extend_from_slice(&lasa.to_le_bytes());
        }
        b
    }

    #[test]
    fn qemu_crb_table_with_log_area() {
        let t = table(b"TPM2", &body(0xfed4_0040, 7, Some((0x10000, 0x7ffd_0000))));
        assert_eq!(t.len(), 76);
        assert_eq!(
            Tpm2Table::parse(&t).unwrap(),
            Tpm2Table {
                platform_class: 0,
                control_area: 0xfed4_0040,
                start_method: start_method::CRB,
                log_area: Some(LogArea {
                    min_len: 0x10000,
                    start: 0x7ffd_0000
                }),
            }
        );
    }

    #[test]
    fn short_table_has_no_log_area() {
        // Cloud Hypervisor's revision 3 table stops after Start Method.
        let t = table(b"TPM2", &body(0xfed4_0040, 7, None));
        assert_eq!(t.len(), 52);
        let parsed = Tpm2Table::parse(&t).unwrap();
        assert_eq!(parsed.log_area, None);
        assert_eq!(parsed.start_method, 7);
        let fifo = table(b"TPM2", &body(0, 6, Some((0, 0))));
        assert_eq!(Tpm2Table::parse(&fifo).unwrap().log_area, None);
    }

    #[test]
    fn revision_5_has_longer_start_method_parameters() {
        let mut b = alloc::vec![0u8; 4];
        b.extend_from_slice(&0xfed4_0040u64.to_le_bytes());
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&0x10000u32.to_le_bytes());
        b.extend_from_slice(&0x7ffd_0000u64.to_le_bytes());
        let mut t = table(b"TPM2", &b);
        t[8] = 5;
        let log_area = Tpm2Table::parse(&t).unwrap().log_area;
        assert_eq!(
            log_area,
            Some(LogArea {
                min_len: 0x10000,
                start: 0x7ffd_0000
            })
        );
        // Read as revision 4, LAML would be 4 bytes early (zero): no area.
        t[8] = 4;
        assert_eq!(Tpm2Table::parse(&t).unwrap().log_area, None);
    }

    /// The tables QEMU 7.2 built for tpm-crb and tpm-tis, as captured for
    /// the event-log tests (tcg/tests/data/README.md).
    #[test]
    fn qemu_tables() {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../tcg/tests/data/");
        let read = |name: &str| std::fs::read(alloc::format!("{data}{name}")).unwrap();
        let crb = read("qemu-tpm-crb.TPM2");
        let (_, crb) = crate::acpi::parse::validate_table(&crb).unwrap();
        assert_eq!(
            Tpm2Table::parse(crb).unwrap(),
            Tpm2Table {
                platform_class: 0,
                control_area: 0xfed4_0040,
                start_method: start_method::CRB,
                log_area: Some(LogArea {
                    min_len: 0x10000,
                    start: 0x1fff_0000
                }),
            }
        );
        let tis = read("qemu-tpm-tis.TPM2");
        let (_, tis) = crate::acpi::parse::validate_table(&tis).unwrap();
        let tis = Tpm2Table::parse(tis).unwrap();
        assert_eq!(
            (tis.control_area, tis.start_method),
            (0, start_method::FIFO)
        );
        assert!(tis.log_area.is_some());
    }

    #[test]
    fn truncated_table_is_refused() {
        let t = table(b"TPM2", &[0; 8]);
        assert!(matches!(
            Tpm2Table::parse(&t),
            Err(AcpiError::Truncated { .. })
        ));
    }
}
