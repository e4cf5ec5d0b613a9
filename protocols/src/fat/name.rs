//! File names: 8.3 short names, VFAT long names (UCS-2, checksummed), the
//! short alias generated for a long name, and case-insensitive comparison.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use super::FatError;

/// Longest long name, in UCS-2 units (Microsoft FAT specification, "FAT Long
/// Directory Entries").
pub(crate) const MAX_LONG_NAME: usize = 255;
/// UCS-2 units carried by one long-name directory entry.
pub(crate) const UNITS_PER_ENTRY: usize = 13;
/// Byte offsets of those units inside the 32-byte entry.
pub(crate) const UNIT_OFFSETS: [usize; UNITS_PER_ENTRY] =
    [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// The checksum of an 11-byte short name that every long-name entry carries.
pub(crate) fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// Case-insensitive equality as FAT lookups need it (Unicode simple upper case).
pub(crate) fn names_equal(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

/// Shows a short directory-entry name as `BASE.EXT`, applying the NT
/// lower-case flags (byte 12, bits 3 and 4) that Windows and Linux write.
pub(crate) fn short_display(raw: &[u8; 11], nt_flags: u8) -> String {
    let mut out = String::new();
    let convert = |b: u8, lower: bool| {
        let c = char::from(b);
        if lower { c.to_ascii_lowercase() } else { c }
    };
    for (i, &b) in raw[..8].iter().enumerate() {
        if b == b' ' {
            break;
        }
        // 0x05 stands for a leading 0xE5, which would mean "deleted".
        let b = if i == 0 && b == 0x05 { 0xE5 } else { b };
        out.push(convert(b, nt_flags & 0x08 != 0));
    }
    let ext: Vec<u8> = raw[8..]
        .iter()
        .copied()
        .take_while(|&b| b != b' ')
        .collect();
    if !ext.is_empty() {
        out.push('.');
        for b in ext {
            out.push(convert(b, nt_flags & 0x10 != 0));
        }
    }
    out
}

/// Characters a long name may not contain (besides controls).
fn forbidden_in_long(c: char) -> bool {
    matches!(c, '"' | '*' | '/' | ':' | '<' | '>' | '?' | '\\' | '|') || (c as u32) < 0x20
}

/// Characters allowed in a short name besides upper-case letters and digits.
fn allowed_in_short(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || b"$%'-_@~`!(){}^#&".contains(&c)
}

/// Validates a name for a new entry and returns it as UCS-2.
pub(crate) fn to_ucs2(name: &str) -> Result<Vec<u16>, FatError> {
    let trimmed = name.trim_end_matches(['.', ' ']);
    if trimmed.is_empty() || name == "." || name == ".." || name.len() != trimmed.len() {
        return Err(FatError::InvalidName(name.chars().last().unwrap_or(' ')));
    }
    let mut units = Vec::new();
    for c in name.chars() {
        if forbidden_in_long(c) {
            return Err(FatError::InvalidName(c));
        }
        let code = u16::try_from(u32::from(c)).map_err(|_| FatError::InvalidName(c))?;
        units.push(code);
    }
    if units.len() > MAX_LONG_NAME {
        return Err(FatError::NameTooLong(units.len()));
    }
    Ok(units)
}

/// The 8.3 form of `name` when it is exactly a valid upper-case short name,
/// so that no long-name entries are needed.
pub(crate) fn exact_short(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = match name.rfind('.') {
        Some(dot) => (&name[..dot], &name[dot + 1..]),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 {
        return None;
    }
    let mut raw = [b' '; 11];
    for (i, b) in base.bytes().enumerate() {
        if !allowed_in_short(b) {
            return None;
        }
        raw[i] = b;
    }
    for (i, b) in ext.bytes().enumerate() {
        if !allowed_in_short(b) {
            return None;
        }
        raw[8 + i] = b;
    }
    if raw[0] == 0xE5 {
        return None;
    }
    Some(raw)
}

/// Builds the short alias for a long name: the upper-cased, filtered basis
/// with a `~N` numeric tail chosen so it collides with none of `taken`
/// (Microsoft FAT specification, "Basis-Name Generation Algorithm").
pub(crate) fn generate_alias(name: &str, taken: &[[u8; 11]]) -> Result<[u8; 11], FatError> {
    let mut sorted = taken.to_vec();
    sorted.sort_unstable();
    let taken = |candidate: &[u8; 11]| sorted.binary_search(candidate).is_ok();
    let upper: String = name.chars().flat_map(char::to_uppercase).collect();
    let dotless = upper.trim_start_matches('.');
    let mut lossy = dotless.len() != upper.len();
    let upper = dotless;
    let mut filter = |s: &str| -> Vec<u8> {
        let mut out = Vec::new();
        for c in s.chars() {
            if c == ' ' || c == '.' {
                lossy = true;
                continue;
            }
            let b = if c.is_ascii() && allowed_in_short(c as u8) {
                c as u8
            } else {
                lossy = true;
                b'_'
            };
            out.push(b);
        }
        out
    };
    let (base, ext) = match upper.rfind('.') {
        Some(dot) => (filter(&upper[..dot]), filter(&upper[dot + 1..])),
        None => (filter(upper), Vec::new()),
    };
    let mut basis = [b' '; 11];
    let base_fits = base.len() <= 8;
    for (i, &b) in base.iter().take(8).enumerate() {
        basis[i] = b;
    }
    for (i, &b) in ext.iter().take(3).enumerate() {
        basis[8 + i] = b;
    }
    if base.is_empty() {
        basis[0] = b'_';
    }
    if ext.len() > 3 || !base_fits {
        lossy = true;
    }
    if !lossy && !taken(&basis) {
        return Ok(basis);
    }
    let base_len = base.len().clamp(1, 8);
    for n in 1u32..1_000_000 {
        let mut tail = [0u8; 7];
        let mut digits = 0;
        let mut v = n;
        while v > 0 {
            tail[6 - digits] = b'0' + (v % 10) as u8;
            digits += 1;
            v /= 10;
        }
        let tail_len = digits + 1;
        tail[6 - digits] = b'~';
        let keep = base_len.min(8 - tail_len);
        let mut candidate = basis;
        candidate[keep..8].fill(b' ');
        candidate[keep..keep + tail_len].copy_from_slice(&tail[7 - tail_len..]);
        if !taken(&candidate) {
            return Ok(candidate);
        }
    }
    Err(FatError::DirectoryFull)
}

/// Date and time as FAT stores it: local time, two-second resolution for
/// modification, 10 ms for creation, date only for access.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl DateTime {
    /// The FAT epoch, used when no clock is set.
    pub const EPOCH: DateTime = DateTime {
        year: 1980,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };

    pub(crate) fn from_fat(date: u16, time: u16) -> DateTime {
        DateTime {
            year: 1980 + (date >> 9),
            month: ((date >> 5) & 0xF) as u8,
            day: (date & 0x1F) as u8,
            hour: (time >> 11) as u8,
            minute: ((time >> 5) & 0x3F) as u8,
            second: ((time & 0x1F) * 2) as u8,
        }
    }

    /// (date, time) words; years outside 1980..=2107 are clamped.
    pub(crate) fn to_fat(self) -> (u16, u16) {
        let year = self.year.clamp(1980, 2107) - 1980;
        let date =
            year << 9 | u16::from(self.month.clamp(1, 12)) << 5 | u16::from(self.day.clamp(1, 31));
        let time = u16::from(self.hour.min(23)) << 11
            | u16::from(self.minute.min(59)) << 5
            | u16::from(self.second.min(59) / 2);
        (date, time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_unique_and_follow_the_basis_rules() {
        assert_eq!(
            &generate_alias("Linux Kernel Image.efi", &[]).unwrap(),
            b"LINUXK~1EFI"
        );
        assert_eq!(
            &generate_alias("Linux Kernel Image.efi", &[*b"LINUXK~1EFI"]).unwrap(),
            b"LINUXK~2EFI"
        );
        assert_eq!(&generate_alias("readme.txt", &[]).unwrap(), b"README  TXT");
        assert_eq!(&generate_alias(".bashrc", &[]).unwrap(), b"BASHRC~1   ");
        assert_eq!(&generate_alias("a+b.tar.gz", &[]).unwrap(), b"A_BTAR~1GZ ");
        assert_eq!(exact_short("EFI"), Some(*b"EFI        "));
        assert_eq!(exact_short("efi"), None);
        let taken: Vec<[u8; 11]> = (1..=9)
            .map(|n| {
                let mut raw = *b"LONGNA~0TXT";
                raw[7] = b'0' + n;
                raw
            })
            .collect();
        assert_eq!(
            &generate_alias("long name.txt", &taken).unwrap(),
            b"LONGN~10TXT"
        );
    }

    #[test]
    fn checksum_and_names() {
        // Rotate-right-and-add over the 11 bytes, as the specification's
        // ChkSum routine computes it.
        let mut sum = 0u8;
        for &b in b"FOO     BAR" {
            sum = (if sum & 1 != 0 { 0x80 } else { 0 }) + (sum >> 1);
            sum = sum.wrapping_add(b);
        }
        assert_eq!(lfn_checksum(b"FOO     BAR"), sum);
        assert!(names_equal("Grüße.TXT", "GRÜSSE.txt"));
        assert!(names_equal("ÉCOLE", "école"));
        assert!(!names_equal("a.txt", "a.txt2"));
        assert_eq!(short_display(b"README  TXT", 0x18), "readme.txt");
        let mut raw = *b"XBC        ";
        raw[0] = 0x05;
        assert_eq!(short_display(&raw, 0), "\u{e5}BC");
        assert!(matches!(
            to_ucs2("bad?name"),
            Err(FatError::InvalidName('?'))
        ));
        assert!(matches!(
            to_ucs2("trailing."),
            Err(FatError::InvalidName('.'))
        ));
        assert_eq!(to_ucs2("é").unwrap(), [0xE9]);
        let t = DateTime {
            year: 2024,
            month: 2,
            day: 29,
            hour: 13,
            minute: 37,
            second: 42,
        };
        let (d, tm) = t.to_fat();
        assert_eq!(DateTime::from_fat(d, tm), t);
    }
}
