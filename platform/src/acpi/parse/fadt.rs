//! The Fixed ACPI Description Table (ACPI 6.5 §5.2.9): the fields the
//! firmware uses for power management, reset and the DSDT.

use super::{GenericAddress, need};
use crate::acpi::AcpiError;
use crate::le::{u32_at, u64_at};

bitflags::bitflags! {
    /// FADT Flags (ACPI 6.5 §5.2.9, Table 5.10); only the ones the
    /// firmware acts on are named, the rest are retained.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct FadtFlags: u32 {
        /// The PM timer is 32 bits wide rather than 24.
        const TMR_VAL_EXT = 1 << 8;
        /// RESET_REG describes a working reset register.
        const RESET_REG_SUP = 1 << 10;
        /// No fixed hardware: PM1/PM timer are absent, sleep goes
        /// through SLEEP_CONTROL_REG.
        const HW_REDUCED_ACPI = 1 << 20;
        const _ = !0;
    }
}

/// Fields of the Fixed ACPI Description Table the firmware uses
/// (ACPI 6.5 §5.2.9, Table 5.9). Fields beyond a short (older) table's
/// length read as absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fadt {
    pub flags: FadtFlags,
    /// X_DSDT when nonzero, else DSDT.
    pub dsdt: u64,
    pub pm1a_cnt: Option<GenericAddress>,
    pub pm1b_cnt: Option<GenericAddress>,
    pub pm_timer: Option<GenericAddress>,
    /// CMOS RAM index of the century, zero if unsupported.
    pub century: u8,
    pub reset_reg: Option<GenericAddress>,
    pub reset_value: u8,
    pub sleep_control: Option<GenericAddress>,
    pub sleep_status: Option<GenericAddress>,
}

// Byte offsets in Table 5.9.
const FADT_DSDT: usize = 40;
const FADT_PM1A_CNT_BLK: usize = 64;
const FADT_PM1B_CNT_BLK: usize = 68;
const FADT_PM_TMR_BLK: usize = 76;
const FADT_PM1_CNT_LEN: usize = 89;
const FADT_PM_TMR_LEN: usize = 91;
const FADT_CENTURY: usize = 108;
const FADT_FLAGS: usize = 112;
const FADT_RESET_REG: usize = 116;
const FADT_RESET_VALUE: usize = 128;
const FADT_X_DSDT: usize = 140;
const FADT_X_PM1A_CNT_BLK: usize = 172;
const FADT_X_PM1B_CNT_BLK: usize = 184;
const FADT_X_PM_TMR_BLK: usize = 208;
const FADT_SLEEP_CONTROL_REG: usize = 244;
const FADT_SLEEP_STATUS_REG: usize = 256;

impl Fadt {
    /// Decodes a validated FADT (signature "FACP").
    pub fn parse(table: &[u8]) -> Result<Fadt, AcpiError> {
        // The ACPI 1.0 FADT ends after the flags; nothing older exists.
        need(table, FADT_FLAGS + 4)?;
        let byte = |at: usize| table.get(at).copied().unwrap_or(0);
        let legacy_port = |at: usize| u32_at(table, at).unwrap_or(0);
        // ACPI 6.5 §5.2.9: the X_ field, when nonzero, supersedes the
        // 32-bit one.
        let block = |x_at: usize, legacy_at: usize, len: u8| {
            GenericAddress::parse(table, x_at)
                .or_else(|| GenericAddress::io_port(legacy_port(legacy_at), len))
        };
        let pm1_len = byte(FADT_PM1_CNT_LEN).max(2);
        let x_dsdt = u64_at(table, FADT_X_DSDT).unwrap_or(0);
        Ok(Fadt {
            flags: FadtFlags::from_bits_retain(u32_at(table, FADT_FLAGS).unwrap_or(0)),
            dsdt: if x_dsdt != 0 {
                x_dsdt
            } else {
                u64::from(legacy_port(FADT_DSDT))
            },
            pm1a_cnt: block(FADT_X_PM1A_CNT_BLK, FADT_PM1A_CNT_BLK, pm1_len),
            pm1b_cnt: block(FADT_X_PM1B_CNT_BLK, FADT_PM1B_CNT_BLK, pm1_len),
            pm_timer: block(
                FADT_X_PM_TMR_BLK,
                FADT_PM_TMR_BLK,
                byte(FADT_PM_TMR_LEN).max(4),
            ),
            century: byte(FADT_CENTURY),
            reset_reg: GenericAddress::parse(table, FADT_RESET_REG),
            reset_value: byte(FADT_RESET_VALUE),
            sleep_control: GenericAddress::parse(table, FADT_SLEEP_CONTROL_REG),
            sleep_status: GenericAddress::parse(table, FADT_SLEEP_STATUS_REG),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::AddressSpace;
    use crate::acpi::test_tables::*;

    #[test]
    fn fadt_legacy_blocks() {
        let fadt = Fadt::parse(&q35_fadt(0x5000)).unwrap();
        assert_eq!(fadt.dsdt, 0x5000);
        assert_eq!(
            fadt.pm1a_cnt,
            Some(GenericAddress {
                space: AddressSpace::SYSTEM_IO,
                bit_width: 16,
                bit_offset: 0,
                access_size: 0,
                address: 0x604
            })
        );
        assert_eq!(fadt.pm1b_cnt, None);
        assert_eq!(fadt.pm_timer.unwrap().address, 0x608);
        assert_eq!(fadt.pm_timer.unwrap().access_bytes(1), 4);
        assert_eq!(fadt.century, 0x32);
        assert_eq!(fadt.reset_reg.unwrap().address, 0xcf9);
        assert_eq!(fadt.reset_value, 6);
        assert!(
            fadt.flags
                .contains(FadtFlags::RESET_REG_SUP | FadtFlags::TMR_VAL_EXT)
        );
        assert_eq!(fadt.sleep_control, None);
    }

    #[test]
    fn fadt_x_fields_supersede_legacy_ones() {
        let mut body = vec![0u8; 244 - 36];
        body[40 - 36..44 - 36].copy_from_slice(&0x5000u32.to_le_bytes());
        body[64 - 36..68 - 36].copy_from_slice(&0x604u32.to_le_bytes());
        body[140 - 36..148 - 36].copy_from_slice(&0x1_0000_5000u64.to_le_bytes());
        body[172 - 36..184 - 36].copy_from_slice(&gas(0, 16, 2, 0xfed0_0000));
        let fadt = Fadt::parse(&table(b"FACP", &body)).unwrap();
        assert_eq!(fadt.dsdt, 0x1_0000_5000);
        let pm1a = fadt.pm1a_cnt.unwrap();
        assert_eq!(pm1a.space, AddressSpace::SYSTEM_MEMORY);
        assert_eq!(pm1a.address, 0xfed0_0000);
        assert_eq!(pm1a.access_bytes(1), 2);
    }

    #[test]
    fn acpi_1_fadt_is_accepted_and_too_short_rejected() {
        let fadt = Fadt::parse(&table(b"FACP", &[0u8; 116 - 36])).unwrap();
        assert_eq!(fadt.reset_reg, None);
        assert_eq!(fadt.sleep_control, None);
        assert!(matches!(
            Fadt::parse(&table(b"FACP", &[0u8; 40])),
            Err(AcpiError::Truncated { .. })
        ));
    }
}
