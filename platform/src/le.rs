//! Checked little-endian field reads over byte slices.
//!
//! Every structure vmfw parses (ACPI, SMBIOS, hvm_start_info, GPT, MBR, FAT,
//! PE/COFF, the Linux boot protocol, EFI_LOAD_OPTION, HII packages, device
//! paths, the variable store) stores its integers little-endian (UEFI 2.10
//! §2.3.1 "Data Types"; the other formats say the same). The reads here
//! return `None` when the field does not lie wholly inside the slice, offset
//! overflow included, so parsers never index out of bounds on untrusted input;
//! each parser turns `None` into its own error.
//!
//! A dependency such as `zerocopy`'s byte-order types would only help with
//! `#[repr(C)]` overlays, which none of these parsers use: they read fields at
//! spec offsets out of unaligned buffers, and this is all that takes.
#![forbid(unsafe_code)]

/// The `N` bytes at `offset`, or `None` if they run past the end of `bytes`.
pub fn array_at<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    let field = bytes.get(offset..offset.checked_add(N)?)?;
    field.try_into().ok()
}

pub fn u8_at(bytes: &[u8], offset: usize) -> Option<u8> {
    bytes.get(offset).copied()
}

pub fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    array_at(bytes, offset).map(u16::from_le_bytes)
}

pub fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    array_at(bytes, offset).map(u32::from_le_bytes)
}

pub fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    array_at(bytes, offset).map(u64::from_le_bytes)
}

/// An EFI_GUID's 16 bytes as stored (UEFI 2.10 Appendix A: the first three
/// fields little-endian, the last eight bytes in order), for the caller's
/// GUID type to build from.
pub fn guid_bytes_at(bytes: &[u8], offset: usize) -> Option<[u8; 16]> {
    array_at(bytes, offset)
}

/// The little-endian 16-bit units of `bytes` in order, as CHAR16 strings
/// store them (UEFI 2.10 §2.3.1); an odd trailing byte is not a unit.
pub fn u16_units(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BYTES: [u8; 10] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A];

    #[test]
    fn reads_little_endian_at_any_offset() {
        assert_eq!(u8_at(&BYTES, 9), Some(0x0A));
        assert_eq!(u16_at(&BYTES, 0), Some(0x0201));
        assert_eq!(u16_at(&BYTES, 1), Some(0x0302));
        assert_eq!(u32_at(&BYTES, 3), Some(0x0706_0504));
        assert_eq!(u64_at(&BYTES, 2), Some(0x0A09_0807_0605_0403));
        assert_eq!(array_at::<3>(&BYTES, 7), Some([0x08, 0x09, 0x0A]));
    }

    #[test]
    fn a_field_ending_exactly_at_the_end_is_read() {
        assert_eq!(u16_at(&BYTES, 8), Some(0x0A09));
        assert_eq!(u64_at(&BYTES, 2), Some(0x0A09_0807_0605_0403));
    }

    #[test]
    fn short_input_is_none() {
        assert_eq!(u8_at(&BYTES, 10), None);
        assert_eq!(u16_at(&BYTES, 9), None);
        assert_eq!(u32_at(&BYTES, 7), None);
        assert_eq!(u64_at(&BYTES, 3), None);
        assert_eq!(u32_at(&[], 0), None);
        assert_eq!(guid_bytes_at(&BYTES, 0), None);
    }

    #[test]
    fn offset_overflow_is_none_not_a_panic() {
        assert_eq!(u8_at(&BYTES, usize::MAX), None);
        assert_eq!(u16_at(&BYTES, usize::MAX), None);
        assert_eq!(u32_at(&BYTES, usize::MAX - 2), None);
        assert_eq!(u64_at(&BYTES, usize::MAX - 1), None);
    }

    #[test]
    fn guid_bytes_are_returned_in_storage_order() {
        let mut raw = [0u8; 20];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = i as u8;
        }
        let expected: [u8; 16] = core::array::from_fn(|i| (i + 4) as u8);
        assert_eq!(guid_bytes_at(&raw, 4), Some(expected));
        assert_eq!(guid_bytes_at(&raw, 5), None);
    }

    #[test]
    fn u16_units_pairs_bytes_and_drops_an_odd_tail() {
        let units: Vec<u16> = u16_units(&[b'A', 0, 0x3B, 0x26, 0xFF]).collect();
        assert_eq!(units, [0x0041, 0x263B]);
        assert_eq!(u16_units(&[]).count(), 0);
    }

    #[test]
    fn zero_length_array_is_in_bounds_up_to_the_end() {
        assert_eq!(array_at::<0>(&BYTES, 10), Some([]));
        assert_eq!(array_at::<0>(&BYTES, 11), None);
    }
}
