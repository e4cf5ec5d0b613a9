//! The PCIe host bridge's `_CBA` (ACPI 6.5 §6.5.6: the ECAM base of a host
//! bridge), found in DSDT AML without an interpreter. VMMs without an MCFG
//! table (QEMU microvm with `pcie=on`, whose generic PCIe host bridge the
//! DSDT describes) state the ECAM window only there, as
//! `Method(_CBA) { Return (base) }` or `Name(_CBA, base)`.

use super::s5::integer;

const NAME_OP: u8 = 0x08;
const RETURN_OP: u8 = 0xA4;

/// The first `_CBA` in `aml` whose value is a constant.
pub fn find_cba(aml: &[u8]) -> Option<u64> {
    let mut from = 0;
    while let Some(pos) = aml
        .get(from..)
        .and_then(|rest| rest.windows(4).position(|w| w == b"_CBA"))
    {
        let at = from + pos;
        let after = aml.get(at + 4..).unwrap_or(&[]);
        let value = if at > 0 && aml[at - 1] == NAME_OP {
            integer(after).map(|(value, _)| value)
        } else {
            // MethodOp PkgLength NameString MethodFlags, then the body:
            // a method of no arguments that returns a constant.
            match after {
                [flags, RETURN_OP, rest @ ..] if flags & 0x07 == 0 => {
                    integer(rest).map(|(value, _)| value)
                }
                _ => None,
            }
        };
        if let Some(value) = value.filter(|&base| base != 0 && base % (1 << 20) == 0) {
            return Some(value);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_returning_a_constant() {
        // Method(_CBA, 0, NotSerialized) { Return (0xE0000000) }, as QEMU's
        // generic PCIe host bridge writes it; then the same as a qword.
        let aml = [
            0x14, 0x0B, b'_', b'C', b'B', b'A', 0x00, 0xA4, 0x0C, 0x00, 0x00, 0x00, 0xE0,
        ];
        assert_eq!(find_cba(&aml), Some(0xE000_0000));
        let mut qword = alloc::vec![0x14, 0x0F, b'_', b'C', b'B', b'A', 0x00, 0xA4, 0x0E];
        qword.extend_from_slice(&0x40_0000_0000u64.to_le_bytes());
        assert_eq!(find_cba(&qword), Some(0x40_0000_0000));
    }

    #[test]
    fn name_with_a_constant() {
        let aml = [0x08, b'_', b'C', b'B', b'A', 0x0C, 0x00, 0x00, 0x00, 0xB0];
        assert_eq!(find_cba(&aml), Some(0xB000_0000));
    }

    #[test]
    fn computed_misaligned_or_truncated_values_are_not_taken() {
        // A method with an argument, a body that is no constant return, a
        // base not on a 1 MiB boundary, zero, and the AML cut short.
        for aml in [
            &[
                0x14, 0x0B, b'_', b'C', b'B', b'A', 0x01, 0xA4, 0x0C, 0, 0, 0, 0xE0,
            ][..],
            &[0x14, 0x08, b'_', b'C', b'B', b'A', 0x00, 0x70, 0x0A, 0x01][..],
            &[0x08, b'_', b'C', b'B', b'A', 0x0C, 0x00, 0x10, 0x00, 0xE0][..],
            &[0x08, b'_', b'C', b'B', b'A', 0x00][..],
            &[0x14, 0x0B, b'_', b'C', b'B', b'A', 0x00, 0xA4, 0x0C, 0x00][..],
            &b"_CB"[..],
        ] {
            assert_eq!(find_cba(aml), None, "{aml:x?}");
        }
    }
}
