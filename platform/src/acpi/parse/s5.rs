//! The `\_S5` sleep-type package, found in DSDT AML without an interpreter
//! (ACPI 6.5 §7.4.2, AML grammar §20.2).

use crate::acpi::AcpiError;
use crate::le::{u16_at, u32_at};

/// SLP_TYPx values for one sleep state (ACPI 6.5 §7.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SleepType {
    pub a: u8,
    pub b: u8,
}

// AML opcodes (ACPI 6.5 §20.2).
const NAME_OP: u8 = 0x08;
const PACKAGE_OP: u8 = 0x12;
const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const BYTE_PREFIX: u8 = 0x0A;
const WORD_PREFIX: u8 = 0x0B;
const DWORD_PREFIX: u8 = 0x0C;
const QWORD_PREFIX: u8 = 0x0E;
const ROOT_CHAR: u8 = b'\\';
const PARENT_PREFIX_CHAR: u8 = b'^';

/// Finds `Name(_S5_, Package(){a, b, ...})` in AML and returns its sleep
/// types, without an interpreter: the object is a static package in
/// every VMM's DSDT.
pub fn find_s5(aml: &[u8]) -> Result<SleepType, AcpiError> {
    let mut from = 0;
    while let Some(pos) = aml
        .get(from..)
        .and_then(|rest| rest.windows(4).position(|w| w == b"_S5_"))
    {
        let at = from + pos;
        if preceded_by_name_op(aml, at)
            && let Some(sleep) = s5_package(aml.get(at + 4..).unwrap_or(&[]))
        {
            return Ok(sleep);
        }
        from = at + 1;
    }
    Err(AcpiError::NoS5)
}

/// Checks for NameOp before the name segment, allowing a root prefix or
/// parent prefixes in between (NameString, ACPI 6.5 §20.2.2).
fn preceded_by_name_op(aml: &[u8], at: usize) -> bool {
    let mut i = at;
    while i > 0 && aml[i - 1] == PARENT_PREFIX_CHAR {
        i -= 1;
    }
    if i == at && i > 0 && aml[i - 1] == ROOT_CHAR {
        i -= 1;
    }
    i > 0 && aml[i - 1] == NAME_OP
}

/// Decodes `PackageOp PkgLength NumElements elements...`.
fn s5_package(aml: &[u8]) -> Option<SleepType> {
    if *aml.first()? != PACKAGE_OP {
        return None;
    }
    let (pkg_len, len_bytes) = pkg_length(aml.get(1..)?)?;
    // PkgLength counts itself and the contents, not the opcode.
    let package = aml.get(1..1usize.checked_add(pkg_len)?)?;
    let mut rest = package.get(len_bytes..)?;
    let count = *rest.first()?;
    rest = &rest[1..];
    let (first, used) = integer(rest)?;
    if count >= 2 {
        let (second, _) = integer(rest.get(used..)?)?;
        Some(SleepType {
            a: slp_typ(first)?,
            b: slp_typ(second)?,
        })
    } else if count == 1 {
        // A single integer carries SLP_TYPa in bits 0-7 and SLP_TYPb in
        // bits 8-15, the form older DSDTs and Cloud Hypervisor use.
        Some(SleepType {
            a: slp_typ(first & 0xff)?,
            b: slp_typ((first >> 8) & 0xff)?,
        })
    } else {
        None
    }
}

/// SLP_TYP is a 3-bit field of PM1_CNT (ACPI 6.5 §4.8.3.2.1).
fn slp_typ(value: u64) -> Option<u8> {
    (value <= 7).then_some(value as u8)
}

/// Decodes PkgLength (ACPI 6.5 §20.2.4): returns the length and the
/// number of bytes the encoding took.
pub fn pkg_length(aml: &[u8]) -> Option<(usize, usize)> {
    let lead = *aml.first()?;
    let follow = usize::from(lead >> 6);
    if follow == 0 {
        return Some((usize::from(lead & 0x3f), 1));
    }
    let mut len = usize::from(lead & 0x0f);
    for i in 0..follow {
        len |= usize::from(*aml.get(1 + i)?) << (4 + 8 * i);
    }
    Some((len, 1 + follow))
}

/// Decodes a ComputationalData integer: returns value and bytes used.
pub(super) fn integer(aml: &[u8]) -> Option<(u64, usize)> {
    match *aml.first()? {
        ZERO_OP => Some((0, 1)),
        ONE_OP => Some((1, 1)),
        BYTE_PREFIX => Some((u64::from(*aml.get(1)?), 2)),
        WORD_PREFIX => Some((u64::from(u16_at(aml, 1)?), 3)),
        DWORD_PREFIX => Some((u64::from(u32_at(aml, 1)?), 5)),
        QWORD_PREFIX => Some((crate::le::u64_at(aml, 1)?, 9)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::test_tables::*;

    #[test]
    fn pkg_length_encodings() {
        assert_eq!(pkg_length(&[0x06]), Some((6, 1)));
        // 2-byte form: low nibble 0x3, next byte 0x12 -> 0x123.
        assert_eq!(pkg_length(&[0x43, 0x12]), Some((0x123, 2)));
        assert_eq!(pkg_length(&[0x81, 0x34, 0x12]), Some((0x12341, 3)));
        assert_eq!(pkg_length(&[0x43]), None);
    }

    #[test]
    fn s5_qemu_zero_ops() {
        assert_eq!(find_s5(QEMU_S5), Ok(SleepType { a: 0, b: 0 }));
    }

    #[test]
    fn s5_byte_prefix_values_with_root_prefix() {
        // Name(\_S5_, Package(2){0x05, 0x07})
        let aml = [
            0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0a, 0x05, 0x0a, 0x07,
        ];
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 5, b: 7 }));
    }

    #[test]
    fn s5_mixed_one_op_and_parent_prefix() {
        // Name(^^_S5_, Package(4){One, 0x02, Zero, Zero})
        let aml = [
            0x08, b'^', b'^', b'_', b'S', b'5', b'_', 0x12, 0x07, 0x04, 0x01, 0x0a, 0x02, 0x00,
            0x00,
        ];
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 1, b: 2 }));
    }

    #[test]
    fn s5_single_element_cloud_hypervisor_form() {
        // Name(_S5_, Package(1){0x05})
        let aml = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x01, 0x0a, 0x05];
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 5, b: 0 }));
        // A word packing SLP_TYPa and SLP_TYPb.
        let aml = [
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x05, 0x01, 0x0b, 0x07, 0x03,
        ];
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 7, b: 3 }));
    }

    #[test]
    fn s5_two_byte_pkg_length() {
        let mut aml = vec![0x08, b'_', b'S', b'5', b'_', 0x12, 0x40, 0x01, 0x02];
        aml.extend_from_slice(&[0x0a, 0x03, 0x0a, 0x04]);
        // Pad the package to its declared length of 0x40 + 1 bytes.
        aml.resize(6 + 0x40, 0);
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 3, b: 4 }));
    }

    #[test]
    fn s5_skips_lookalikes_and_rejects_garbage() {
        // "_S5_" inside a string first (no NameOp), then the real object.
        let mut aml = vec![0x0d, b'_', b'S', b'5', b'_', 0x00];
        aml.extend_from_slice(QEMU_S5);
        assert_eq!(find_s5(&aml), Ok(SleepType { a: 0, b: 0 }));

        // A method named _S5_ is not a package.
        let method = [0x14, 0x08, b'_', b'S', b'5', b'_', 0x00, 0xa4, 0x00];
        assert_eq!(find_s5(&method), Err(AcpiError::NoS5));
        // Sleep type out of the 3-bit range.
        let aml = [
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0a, 0x09, 0x00, 0x00,
        ];
        assert_eq!(find_s5(&aml), Err(AcpiError::NoS5));
        // Truncated package.
        assert_eq!(find_s5(&QEMU_S5[..9]), Err(AcpiError::NoS5));
        assert_eq!(find_s5(b""), Err(AcpiError::NoS5));
    }
}
