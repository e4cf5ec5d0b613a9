//! EFI_UNICODE_COLLATION_PROTOCOL2 (UEFI 2.10 §19.2) for English ("en"):
//! case-insensitive comparison and wildcard matching (the edk2 Shell's file
//! name globbing and command lookup use it) and FAT 8.3 name conversion.
//! Case mapping covers ASCII and Latin-1, the characters FAT's OEM code page
//! shares with UCS-2 here.
//!
//! The pure functions are host-tested; the `extern "efiapi"` layer at the
//! bottom only reads and writes the caller's strings.

use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ffi::c_void;

use uefi_raw::protocol::string::UnicodeCollationProtocol;
use uefi_raw::{Boolean, Char8, Char16, Status};

/// Upper case of a UCS-2 character: ASCII a-z and Latin-1 à-þ (except ÷).
pub fn to_upper(c: u16) -> u16 {
    match c {
        0x61..=0x7a => c - 0x20,
        0xe0..=0xfe if c != 0xf7 => c - 0x20,
        _ => c,
    }
}

/// Lower case of a UCS-2 character: ASCII A-Z and Latin-1 À-Þ (except ×).
pub fn to_lower(c: u16) -> u16 {
    match c {
        0x41..=0x5a => c + 0x20,
        0xc0..=0xde if c != 0xd7 => c + 0x20,
        _ => c,
    }
}

/// StriColl: compares without regard to case.
pub fn compare_ignoring_case(a: &[u16], b: &[u16]) -> Ordering {
    a.iter()
        .map(|&c| to_upper(c))
        .cmp(b.iter().map(|&c| to_upper(c)))
}

/// One pattern element of MetaiMatch.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Element {
    /// `*`: any run of characters, also empty.
    Any,
    /// `?`: exactly one character.
    One,
    /// `[...]`: one character from the set (single characters and `a-z` ranges).
    Set(Vec<(u16, u16)>),
    Literal(u16),
}

/// Splits a pattern into elements. An unterminated `[` is a literal.
fn parse_pattern(pattern: &[u16]) -> Vec<Element> {
    let mut elements = Vec::new();
    let mut i = 0;
    while let Some(&c) = pattern.get(i) {
        i += 1;
        let element = match c {
            0x2a => Element::Any,
            0x3f => Element::One,
            0x5b => match pattern[i..].iter().position(|&c| c == 0x5d) {
                Some(len) => {
                    let set = parse_set(&pattern[i..i + len]);
                    i += len + 1;
                    Element::Set(set)
                }
                None => Element::Literal(c),
            },
            c => Element::Literal(c),
        };
        elements.push(element);
    }
    elements
}

/// The ranges inside `[...]`: `a-z` is a range, anything else one character.
fn parse_set(inner: &[u16]) -> Vec<(u16, u16)> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while let Some(&low) = inner.get(i) {
        match (inner.get(i + 1), inner.get(i + 2)) {
            (Some(0x2d), Some(&high)) => {
                ranges.push((to_upper(low), to_upper(high)));
                i += 3;
            }
            _ => {
                ranges.push((to_upper(low), to_upper(low)));
                i += 1;
            }
        }
    }
    ranges
}

fn element_matches(element: &Element, c: u16) -> bool {
    let c = to_upper(c);
    match element {
        Element::Any | Element::One => true,
        Element::Set(ranges) => ranges.iter().any(|&(low, high)| (low..=high).contains(&c)),
        Element::Literal(l) => to_upper(*l) == c,
    }
}

/// MetaiMatch: whether `text` matches `pattern` (`*`, `?`, `[set]`),
/// ignoring case. Backtracks only to the last `*`, so it runs in
/// O(len(text) * len(pattern)).
pub fn wildcard_match(text: &[u16], pattern: &[u16]) -> bool {
    let elements = parse_pattern(pattern);
    let (mut t, mut p) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match elements.get(p) {
            Some(Element::Any) => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(element) if element_matches(element, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((after_star, consumed)) => {
                    p = after_star;
                    t = consumed + 1;
                    star = Some((after_star, consumed + 1));
                }
                None => return false,
            },
        }
    }
    elements[p..].iter().all(|e| *e == Element::Any)
}

/// Characters a FAT short name may hold besides letters and digits
/// (Microsoft FAT specification §6.1).
const FAT_SPECIALS: &[u8] = b"$%'-_@~`!(){}^#&";

/// StrToFat: `text` as an upper-case FAT 8.3 OEM name into `fat`, which it
/// fills up to its length; `.` and spaces are dropped (they separate or pad
/// the 8.3 fields, which the caller lays out). Returns whether a character
/// that FAT cannot hold was replaced by `_`.
pub fn to_fat(text: &[u16], fat: &mut [u8]) -> bool {
    let mut replaced = false;
    let mut out = fat.iter_mut();
    for &c in text
        .iter()
        .filter(|&&c| c != u16::from(b'.') && c != u16::from(b' '))
    {
        let Some(slot) = out.next() else { break };
        let upper = to_upper(c);
        *slot = match u8::try_from(upper) {
            Ok(b) if b.is_ascii_alphanumeric() || FAT_SPECIALS.contains(&b) || b >= 0x80 => b,
            _ => {
                replaced = true;
                b'_'
            }
        };
    }
    replaced
}

/// FatToStr: an OEM name (ends at `fat`'s length or its first NUL) as UCS-2;
/// the OEM code page here is Latin-1, which maps one to one.
pub fn from_fat(fat: &[u8]) -> Vec<u16> {
    fat.iter()
        .take_while(|&&b| b != 0)
        .map(|&b| u16::from(b))
        .collect()
}

// --- extern "efiapi" layer ----------------------------------------------------

/// Longest string the protocol reads; a missing NUL ends there.
const MAX_STRING: usize = 1 << 16;

/// RFC 4646 language codes, NUL-terminated (§19.2 SupportedLanguages).
static LANGUAGES: [u8; 3] = *b"en\0";

struct Shared(UnicodeCollationProtocol);

// SAFETY: the instance is immutable after construction (function pointers
// and a pointer to an immutable static), so sharing it is sound.
unsafe impl Sync for Shared {}

static PROTOCOL: Shared = Shared(UnicodeCollationProtocol {
    stri_coll,
    metai_match,
    str_lwr,
    str_upr,
    fat_to_str,
    str_to_fat,
    supported_languages: LANGUAGES.as_ptr(),
});

/// The caller's NUL-terminated string, None when null or unterminated.
///
/// # Safety
/// `ptr` is null or a NUL-terminated UCS-2 string.
unsafe fn string(ptr: *const Char16) -> Option<Vec<u16>> {
    // SAFETY: this function's contract.
    unsafe { efi::boundary::ucs2(ptr, MAX_STRING) }.ok()
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §19.2 requires of the caller.
unsafe extern "efiapi" fn stri_coll(
    _this: *const UnicodeCollationProtocol,
    s1: *const Char16,
    s2: *const Char16,
) -> isize {
    // SAFETY: the caller's strings, as this function's # Safety requires.
    match unsafe { (string(s1), string(s2)) } {
        (Some(a), Some(b)) => compare_ignoring_case(&a, &b) as isize,
        _ => 0,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §19.2 requires of the caller.
unsafe extern "efiapi" fn metai_match(
    _this: *const UnicodeCollationProtocol,
    text: *const Char16,
    pattern: *const Char16,
) -> Boolean {
    // SAFETY: the caller's strings, as this function's # Safety requires.
    match unsafe { (string(text), string(pattern)) } {
        (Some(t), Some(p)) => wildcard_match(&t, &p).into(),
        _ => Boolean::FALSE,
    }
}

/// Rewrites the caller's NUL-terminated string in place with `map`.
///
/// # Safety
/// `s` is null or a writable NUL-terminated UCS-2 string.
unsafe fn map_in_place(s: *mut Char16, map: fn(u16) -> u16) {
    // SAFETY: this function's contract.
    let Some(text) = (unsafe { string(s) }) else {
        return;
    };
    for (i, c) in text.into_iter().enumerate() {
        // SAFETY: `string` just read `s` up to its NUL, so indices below the
        // length are inside the caller's writable string.
        unsafe { s.add(i).write_unaligned(map(c)) };
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §19.2 requires of the caller.
unsafe extern "efiapi" fn str_lwr(_this: *const UnicodeCollationProtocol, s: *mut Char16) {
    // SAFETY: the caller's string, as this function's # Safety requires.
    unsafe { map_in_place(s, to_lower) };
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §19.2 requires of the caller.
unsafe extern "efiapi" fn str_upr(_this: *const UnicodeCollationProtocol, s: *mut Char16) {
    // SAFETY: the caller's string, as this function's # Safety requires.
    unsafe { map_in_place(s, to_upper) };
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §19.2 requires of the caller.
unsafe extern "efiapi" fn fat_to_str(
    _this: *const UnicodeCollationProtocol,
    fat_size: usize,
    fat: *const Char8,
    s: *mut Char16,
) {
    if s.is_null() {
        return;
    }
    // SAFETY: the caller's buffer, as this function's # Safety requires.
    let Ok(fat) = (unsafe { efi::boundary::bytes(fat.cast::<u8>(), fat_size) }) else {
        return;
    };
    let text = from_fat(fat);
    for (i, c) in text.iter().chain(core::iter::once(&0)).enumerate() {
        // SAFETY: the caller provides room for `fat_size` characters plus
        // the NUL (§19.2 FatToStr); `text` has at most `fat_size`.
        unsafe { s.add(i).write_unaligned(*c) };
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §19.2 requires of the caller.
unsafe extern "efiapi" fn str_to_fat(
    _this: *const UnicodeCollationProtocol,
    s: *const Char16,
    fat_size: usize,
    fat: *mut Char8,
) -> Boolean {
    // SAFETY: the caller's string, as this function's # Safety requires.
    let Some(text) = (unsafe { string(s) }) else {
        return Boolean::FALSE;
    };
    // SAFETY: the caller's buffer, as this function's # Safety requires.
    match unsafe { efi::boundary::bytes_mut(fat.cast::<u8>(), fat_size) } {
        Ok(fat) => to_fat(&text, fat).into(),
        Err(_) => Boolean::FALSE,
    }
}

/// Installs the protocol on `handle` (a new handle when `None`).
pub fn install(handle: Option<efi::handles::HandleId>) -> Result<efi::handles::HandleId, Status> {
    efi::protocol_services::install(
        handle,
        &[(
            UnicodeCollationProtocol::GUID,
            (&raw const PROTOCOL.0).cast_mut().cast::<c_void>(),
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn case_maps_ascii_and_latin1_only() {
        assert_eq!(to_upper(u16::from(b'a')), u16::from(b'A'));
        assert_eq!(to_upper(0xe9), 0xc9); // é -> É
        assert_eq!(to_upper(0xf7), 0xf7); // ÷ has no case
        assert_eq!(to_lower(0xd7), 0xd7); // × has no case
        assert_eq!(to_lower(u16::from(b'Z')), u16::from(b'z'));
        assert_eq!(to_upper(0x3b1), 0x3b1); // Greek is outside the table
    }

    #[test]
    fn stri_coll_ignores_case() {
        assert_eq!(
            compare_ignoring_case(&u("Startup.NSH"), &u("startup.nsh")),
            Ordering::Equal
        );
        assert_eq!(compare_ignoring_case(&u("abc"), &u("ABD")), Ordering::Less);
        assert_eq!(
            compare_ignoring_case(&u("abcd"), &u("ABC")),
            Ordering::Greater
        );
    }

    #[test]
    fn wildcards_match_like_the_shell_expects() {
        let m = |t: &str, p: &str| wildcard_match(&u(t), &u(p));
        assert!(m("startup.nsh", "*.NSH"));
        assert!(m("startup.nsh", "st?rtup.*"));
        assert!(m("", "*"));
        assert!(m("abc", "a*b*c"));
        assert!(m("aXbYc", "a*b*c"));
        assert!(!m("abc", "a*d"));
        assert!(!m("abc", "ab"));
        assert!(!m("ab", "ab?"));
        assert!(m("file7.txt", "file[0-9].txt"));
        assert!(m("fileB.txt", "file[abc].txt"));
        assert!(!m("filed.txt", "file[abc].txt"));
        assert!(m("a[b", "a[b"), "an unterminated set is literal");
        assert!(m("mississippi", "*sip*"));
    }

    #[test]
    fn fat_names_are_upper_case_with_invalid_characters_replaced() {
        let mut fat = [b' '; 11];
        assert!(!to_fat(&u("read me.txt"), &mut fat));
        assert_eq!(&fat, b"READMETXT  ");
        let mut fat = [0u8; 4];
        assert!(to_fat(&u("a+b*"), &mut fat));
        assert_eq!(&fat, b"A_B_");
        let mut short = [0u8; 2];
        assert!(!to_fat(&u("abcdef"), &mut short));
        assert_eq!(&short, b"AB");
        assert_eq!(from_fat(b"KERNEL\0\0"), u("KERNEL"));
        assert_eq!(from_fat(&[0xc9, b'T']), [0xc9, u16::from(b'T')]);
    }
}
