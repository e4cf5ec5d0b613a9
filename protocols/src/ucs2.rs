//! UCS-2 as protocols hand it to EFI callers: NUL-terminated CHAR16 in
//! little-endian bytes (UEFI 2.10 §2.3.1), for the text a protocol returns
//! in a caller's buffer or in pool memory (file names, volume labels,
//! device path text).
#![forbid(unsafe_code)]

use alloc::vec::Vec;

/// `text` as NUL-terminated UCS-2 bytes.
pub fn nul_terminated_bytes(text: &str) -> Vec<u8> {
    text.encode_utf16()
        .chain(core::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ends_with_a_nul_unit() {
        assert_eq!(super::nul_terminated_bytes("A\\"), [0x41, 0, 0x5c, 0, 0, 0]);
        assert_eq!(super::nul_terminated_bytes(""), [0, 0]);
    }
}
