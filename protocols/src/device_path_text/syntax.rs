//! The lexical pieces of the device-path text syntax (UEFI 2.10 §10.6.1):
//! numbers, GUIDs, hex byte strings, EISA ids and IP addresses, each with
//! the parser and the printer that must agree with it.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use uefi_raw::Guid;

/// Splits `text` at `separator` where it is outside parentheses
/// (§10.6.1: `/` separates nodes and `,` instances, but both may appear
/// inside a node's parameter list).
pub fn split_top_level(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if c == separator && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The text a parameter holds: surrounding spaces are not part of it, and
/// a stray `)` left by an over-closed node (the SCT sends
/// `BMC(0x00,0x12345678FFFFFFFF))`) is ignored as EDK2-style parsers do.
fn trimmed(text: &str) -> &str {
    text.trim().trim_end_matches(')').trim_end()
}

/// A number: `0x` hexadecimal, otherwise decimal (§10.6.1.1 "Integer").
/// Empty text is an omitted optional parameter and reads as 0.
pub fn number(text: &str) -> Option<u64> {
    let text = trimmed(text);
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if text.is_empty() => Some(0),
        None if text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}

/// A number that must fit `T`.
pub fn int<T: TryFrom<u64>>(text: &str) -> Option<T> {
    T::try_from(number(text)?).ok()
}

/// An even count of hex digits (an optional `0x` prefix allowed) as bytes
/// in text order.
pub fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let text = trimmed(text);
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Bytes as lower-case hex digits, in order (EDK2 writes them so too).
pub fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A registry-format GUID (`XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`).
pub fn parse_guid(text: &str) -> Option<Guid> {
    let parts: Vec<&str> = trimmed(text).split('-').collect();
    let [a, b, c, d, e] = parts.as_slice() else {
        return None;
    };
    if (a.len(), b.len(), c.len(), d.len(), e.len()) != (8, 4, 4, 4, 12) {
        return None;
    }
    let hex32 = |t: &str| {
        t.bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then(|| u32::from_str_radix(t, 16).ok())
            .flatten()
    };
    let d = hex_bytes(d)?;
    let e = hex_bytes(e)?;
    // The first three fields are stored little-endian (UEFI 2.10 Appendix A).
    Some(Guid::new(
        hex32(a)?.to_le_bytes(),
        u16::try_from(hex32(b)?).ok()?.to_le_bytes(),
        u16::try_from(hex32(c)?).ok()?.to_le_bytes(),
        *d.first()?,
        *d.get(1)?,
        e.as_slice().try_into().ok()?,
    ))
}

/// A GUID in registry format, upper case.
pub fn guid_text(guid: &Guid) -> String {
    String::from_utf8_lossy(&guid.to_ascii_hex_lower()).to_ascii_uppercase()
}

/// The GUID stored at `bytes[offset..offset + 16]`.
pub fn guid_at(bytes: &[u8], offset: usize) -> Option<Guid> {
    Some(Guid::from_bytes(
        bytes
            .get(offset..offset.checked_add(16)?)?
            .try_into()
            .ok()?,
    ))
}

/// An ACPI `_HID`/`_CID` value as text: the compressed EISA form
/// (`PNP0A03`, §10.6.1.3) when it encodes three letters `A`-`Z`, otherwise
/// a `0x` number, so that every value reads back unchanged.
pub fn eisa_text(id: u32) -> String {
    let letter = |shift: u32| char::from(b'@' + ((id >> shift) & 0x1F) as u8);
    let letters: String = [10, 5, 0].iter().map(|&s| letter(s)).collect();
    if id & 0x8000 == 0 && letters.chars().all(|c| c.is_ascii_uppercase()) {
        alloc::format!("{letters}{:04X}", id >> 16)
    } else {
        alloc::format!("0x{id:x}")
    }
}

/// The inverse of [`eisa_text`]; `PNP` followed by a non-hex tail or any
/// other malformed text is rejected.
pub fn parse_eisa(text: &str) -> Option<u32> {
    let text = trimmed(text);
    let bytes = text.as_bytes();
    if bytes.len() == 7 && bytes[..3].iter().all(u8::is_ascii_uppercase) {
        let product = u32::from_str_radix(text.get(3..)?, 16).ok()?;
        if !bytes[3..].iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let compressed = bytes[..3]
            .iter()
            .fold(0u32, |acc, &b| (acc << 5) | u32::from(b - b'@'));
        return Some((product << 16) | compressed);
    }
    int(text)
}

/// `a.b.c.d` with decimal octets.
pub fn parse_ipv4(text: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = trimmed(text).split('.').collect();
    let [a, b, c, d] = parts.as_slice() else {
        return None;
    };
    let octet = |t: &str| {
        (!t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u8>().ok())
            .flatten()
    };
    Some([octet(a)?, octet(b)?, octet(c)?, octet(d)?])
}

pub fn ipv4_text(address: &[u8]) -> String {
    let mut text = String::new();
    for (i, octet) in address.iter().enumerate() {
        let separator = if i == 0 { "" } else { "." };
        let _ = write!(text, "{separator}{octet}");
    }
    text
}

/// RFC 4291 §2.2 text: eight hex groups, or fewer around one `::`.
pub fn parse_ipv6(text: &str) -> Option<[u8; 16]> {
    let text = trimmed(text);
    let groups = |part: &str| -> Option<Vec<u16>> {
        if part.is_empty() {
            return Some(Vec::new());
        }
        part.split(':')
            .map(|g| {
                (!g.is_empty() && g.len() <= 4 && g.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| u16::from_str_radix(g, 16).ok())
                    .flatten()
            })
            .collect()
    };
    let words: Vec<u16> = match text.split_once("::") {
        Some((head, tail)) => {
            let (head, tail) = (groups(head)?, groups(tail)?);
            let zeros = 8usize.checked_sub(head.len() + tail.len())?;
            if zeros == 0 {
                return None;
            }
            head.into_iter()
                .chain(core::iter::repeat_n(0, zeros))
                .chain(tail)
                .collect()
        }
        None => groups(text)?,
    };
    if words.len() != 8 {
        return None;
    }
    let mut address = [0u8; 16];
    for (chunk, word) in address.chunks_exact_mut(2).zip(words) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    Some(address)
}

/// All eight groups, upper-case hex, without `::` compression: parsers
/// that know only the full form (the SCT's among them) read it too.
pub fn ipv6_text(address: &[u8]) -> String {
    let mut text = String::new();
    for (i, pair) in address.chunks(2).enumerate() {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        let separator = if i == 0 { "" } else { ":" };
        let _ = write!(text, "{separator}{word:X}");
    }
    text
}

/// An ASCII string parameter as bytes; other characters cannot be stored
/// in the node's CHAR8 field and are rejected.
pub fn ascii(text: &str) -> Option<&[u8]> {
    text.is_ascii().then_some(text.as_bytes())
}

/// Characters a string parameter of a node with several parameters cannot
/// hold: the text syntax has no escapes (§10.6.1), so `BBS(,(,))` or a
/// description with a comma would print as text that parses to another
/// path. Such strings are refused when parsed, and such nodes print in the
/// generic `Path(type,subtype,hex)` form.
const UNLISTABLE: [char; 3] = ['(', ')', ','];

/// [`ascii`] for a string among other parameters (see [`UNLISTABLE`]).
pub fn listed_ascii(text: &str) -> Option<&[u8]> {
    ascii(text).filter(|_| !text.contains(UNLISTABLE))
}

/// [`ascii_until_nul`] for a string printed among other parameters.
pub fn listed_ascii_until_nul(bytes: &[u8]) -> Option<&str> {
    ascii_until_nul(bytes).filter(|text| !text.contains(UNLISTABLE))
}

/// The ASCII string at the start of `bytes`, up to its NUL (or the end).
pub fn ascii_until_nul(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = core::str::from_utf8(&bytes[..end]).ok()?;
    text.is_ascii().then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_hex_with_prefix_and_decimal_without() {
        assert_eq!(number("0x1F"), Some(31));
        assert_eq!(number(" 12 "), Some(12));
        assert_eq!(number(""), Some(0));
        assert_eq!(number("0x12345678FFFFFFFF)"), Some(0x1234_5678_FFFF_FFFF));
        assert_eq!(number("0x"), None);
        assert_eq!(number("1a"), None);
        assert_eq!(number("0x1_0"), None);
        assert_eq!(number("99999999999999999999"), None);
        assert_eq!(int::<u8>("256"), None);
    }

    #[test]
    fn eisa_ids_round_trip() {
        assert_eq!(eisa_text(0x0A03_41D0), "PNP0A03");
        assert_eq!(parse_eisa("PNP0A03"), Some(0x0A03_41D0));
        assert_eq!(parse_eisa("PNPABCD"), Some(0xABCD_41D0));
        for id in [0u32, 0xFFFF_FFFF, 0x1234_8000, 0x0A03_41D0, 0x0001_0421] {
            assert_eq!(parse_eisa(&eisa_text(id)), Some(id), "{id:#x}");
        }
        assert_eq!(parse_eisa("PNPXYZW"), None);
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(parse_ipv4("192.168.0.1"), Some([192, 168, 0, 1]));
        assert_eq!(parse_ipv4("256.1.1.1"), None);
        assert_eq!(parse_ipv4("1.2.3"), None);
        assert_eq!(ipv4_text(&[12, 34, 56, 78]), "12.34.56.78");
        let full = "1234:5678:ABCD:1234:5678:ABCD:1234:5678";
        let address = parse_ipv6(full).unwrap();
        assert_eq!(ipv6_text(&address), full);
        assert_eq!(parse_ipv6("fe80::1").unwrap()[15], 1);
        assert_eq!(parse_ipv6("::").unwrap(), [0; 16]);
        assert_eq!(parse_ipv6("1:2:3:4:5:6:7:8:9"), None);
        assert_eq!(parse_ipv6("1::2::3"), None);
    }

    #[test]
    fn guids_and_hex() {
        let text = "5AF6C71E-1261-4637-9838-C4E9913D1DBB";
        assert_eq!(guid_text(&parse_guid(text).unwrap()), text);
        assert_eq!(parse_guid("5AF6C71E-1261-4637-9838-C4E9913D1DB"), None);
        assert_eq!(parse_guid("+AF6C71E-1261-4637-9838-C4E9913D1DBB"), None);
        assert_eq!(hex_bytes("0123AB"), Some(vec![1, 0x23, 0xAB]));
        assert_eq!(hex_bytes("012"), None);
        assert_eq!(hex_string(&[0xAB, 1]), "ab01");
    }
}
