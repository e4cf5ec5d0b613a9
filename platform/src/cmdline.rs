//! The firmware command line's one grammar (QEMU `-append`, PVH
//! `hvm_start_info.cmdline_paddr`), shared by every word the firmware reads:
//! `log=`, `pci=`, `boot=`, `menu=`, `path=`, `bootnext=`, `kernel=`,
//! `initrd=`, `cmdline=`, `linux-boot=`.
//!
//! - Words are separated by ASCII whitespace outside double quotes.
//! - A double quote opens or closes a quoted run anywhere in a word
//!   (`cmdline="console=ttyS0 quiet"`); the quotes are not part of the value.
//! - Inside quotes, `\"` and `\\` stand for `"` and `\`; any other backslash
//!   is itself, so `\EFI\...` paths need no escaping anywhere.
//! - A quote that is never closed makes the whole line invalid
//!   ([`validate`]): the firmware then takes none of its words, rather than
//!   guessing where the kernel's command line ends and reading the rest of it
//!   as firmware options.
//!
//! Tokenizing borrows from the line and allocates nothing, so it runs before
//! the heap exists (the log level) as well as after.
#![forbid(unsafe_code)]

use core::fmt;
use core::str::Chars;

/// Why a command line is refused as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError {
    /// The double quote at byte `at` is never closed.
    UnclosedQuote { at: usize },
}

impl fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineError::UnclosedQuote { at } => {
                write!(f, "the quote at byte {at} is never closed")
            }
        }
    }
}

/// Checks that every quote of `line` is closed.
pub fn validate(line: &str) -> Result<(), CmdlineError> {
    let bytes = line.as_bytes();
    let mut open_at = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => open_at = if open_at.is_some() { None } else { Some(i) },
            b'\\' if open_at.is_some() && is_escapable(bytes.get(i + 1)) => i += 1,
            _ => {}
        }
        i += 1;
    }
    match open_at {
        Some(at) => Err(CmdlineError::UnclosedQuote { at }),
        None => Ok(()),
    }
}

/// The words of `line`, in order. On a line [`validate`] refused, the last
/// word runs to the end of the line.
pub fn words(line: &str) -> Words<'_> {
    Words { rest: line }
}

/// The values of every `key=` word of `line`, in order (callers that take
/// one value use the last valid one, so a later word overrides an earlier).
pub fn values<'a>(line: &'a str, key: &'a str) -> impl Iterator<Item = Value<'a>> + 'a {
    words(line).filter_map(move |word| match word.key_value() {
        Some((k, value)) if k == key => Some(value),
        _ => None,
    })
}

/// Whether `line` holds the word `key=value` (with `value` possibly quoted).
pub fn has(line: &str, key: &str, value: &str) -> bool {
    values(line, key).any(|v| v.is(value))
}

fn is_escapable(next: Option<&u8>) -> bool {
    matches!(next, Some(b'"' | b'\\'))
}

/// Iterator over the words of a command line.
#[derive(Clone, Debug)]
pub struct Words<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Words<'a> {
    type Item = Word<'a>;

    fn next(&mut self) -> Option<Word<'a>> {
        // Every byte the grammar looks at is ASCII, so byte offsets found
        // here are char boundaries of the UTF-8 line.
        let bytes = self.rest.as_bytes();
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
        let mut in_quote = false;
        let mut end = start;
        while end < bytes.len() {
            match bytes[end] {
                b'"' => in_quote = !in_quote,
                b'\\' if in_quote && is_escapable(bytes.get(end + 1)) => end += 1,
                b if b.is_ascii_whitespace() && !in_quote => break,
                _ => {}
            }
            end += 1;
        }
        let end = end.min(bytes.len());
        let raw = &self.rest[start..end];
        self.rest = &self.rest[end..];
        Some(Word { raw })
    }
}

/// One word, as written (quotes and escapes still in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word<'a> {
    raw: &'a str,
}

impl<'a> Word<'a> {
    /// The word as written on the line.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// `key=value` split at the first `=`; None when the word has no `=` or
    /// a quote comes before it (a quoted word is text, not an option).
    pub fn key_value(&self) -> Option<(&'a str, Value<'a>)> {
        let (key, value) = self.raw.split_once('=')?;
        (!key.contains('"')).then_some((key, Value { raw: value }))
    }

    /// The whole word with its quotes removed and escapes applied.
    pub fn text(&self) -> Value<'a> {
        Value { raw: self.raw }
    }
}

/// A value (or word) still in its written form; read it with [`Value::chars`],
/// [`Value::plain`], [`Value::is`] or, with a heap, [`Value::to_string`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a str,
}

impl<'a> Value<'a> {
    /// The characters the value stands for: quotes removed, `\"` and `\\`
    /// inside quotes unescaped.
    pub fn chars(&self) -> Unquoted<'a> {
        Unquoted {
            chars: self.raw.chars(),
            in_quote: false,
        }
    }

    /// The value as a slice of the line when it holds no quote (the common
    /// case: `log=debug`, `path=\EFI\x.efi`), else None.
    pub fn plain(&self) -> Option<&'a str> {
        (!self.raw.contains('"')).then_some(self.raw)
    }

    /// Whether the value stands for exactly `text`.
    pub fn is(&self, text: &str) -> bool {
        self.chars().eq(text.chars())
    }

    /// The value as written, for messages.
    pub fn raw(&self) -> &'a str {
        self.raw
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.chars().try_for_each(|c| fmt::Write::write_char(f, c))
    }
}

/// The characters of a [`Value`].
#[derive(Clone, Debug)]
pub struct Unquoted<'a> {
    chars: Chars<'a>,
    in_quote: bool,
}

impl Iterator for Unquoted<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        loop {
            let c = self.chars.next()?;
            match c {
                '"' => self.in_quote = !self.in_quote,
                '\\' if self.in_quote => {
                    let mut ahead = self.chars.clone();
                    return match ahead.next() {
                        Some(escaped @ ('"' | '\\')) => {
                            self.chars = ahead;
                            Some(escaped)
                        }
                        _ => Some('\\'),
                    };
                }
                c => return Some(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    fn texts(line: &str) -> Vec<String> {
        words(line).map(|w| w.text().to_string()).collect()
    }

    #[test]
    fn words_split_at_unquoted_whitespace() {
        assert_eq!(texts("  a  b\tc\n"), ["a", "b", "c"]);
        assert_eq!(texts(""), Vec::<String>::new());
        assert_eq!(texts("   "), Vec::<String>::new());
    }

    #[test]
    fn quotes_hold_spaces_and_vanish_from_the_value() {
        let line = r#"kernel=\vmlinuz cmdline="console=ttyS0 path=\X.EFI menu=3" log=debug"#;
        assert_eq!(validate(line), Ok(()));
        let all: Vec<_> = words(line).map(|w| w.raw()).collect();
        assert_eq!(all.len(), 3);
        let cmdline: Vec<String> = values(line, "cmdline").map(|v| v.to_string()).collect();
        assert_eq!(cmdline, ["console=ttyS0 path=\\X.EFI menu=3"]);
        // The words inside the quotes are the kernel's, not the firmware's.
        assert_eq!(values(line, "path").count(), 0);
        assert_eq!(values(line, "menu").count(), 0);
        assert_eq!(
            values(line, "kernel").next().and_then(|v| v.plain()),
            Some("\\vmlinuz")
        );
    }

    #[test]
    fn escapes_apply_only_inside_quotes() {
        let line = r#"a="x \"y\" \\ \z" b=\\c"#;
        assert_eq!(validate(line), Ok(()));
        let a = values(line, "a").next().unwrap();
        assert_eq!(a.to_string(), r#"x "y" \ \z"#);
        assert_eq!(a.plain(), None);
        let b = values(line, "b").next().unwrap();
        assert_eq!(b.plain(), Some(r"\\c"));
        assert!(b.is(r"\\c"));
    }

    #[test]
    fn an_unclosed_quote_refuses_the_line_and_says_where() {
        assert_eq!(
            validate(r#"log=debug cmdline="quiet"#),
            Err(CmdlineError::UnclosedQuote { at: 18 })
        );
        // An escaped quote does not close the run.
        assert_eq!(
            validate(r#"a="x\""#),
            Err(CmdlineError::UnclosedQuote { at: 2 })
        );
        assert_eq!(validate(r#"a="x\\""#), Ok(()));
        // Words still end at the line's end on an invalid line.
        assert_eq!(words(r#"a "b c"#).count(), 2);
    }

    #[test]
    fn key_value_needs_an_unquoted_key() {
        let word = words(r#""log=debug""#).next().unwrap();
        assert_eq!(word.key_value(), None);
        assert_eq!(word.text().to_string(), "log=debug");
        let word = words("flag").next().unwrap();
        assert_eq!(word.key_value(), None);
        let word = words("x=").next().unwrap();
        let (key, value) = word.key_value().unwrap();
        assert_eq!((key, value.plain()), ("x", Some("")));
    }

    #[test]
    fn has_compares_the_unquoted_value() {
        assert!(has("pci=reassign", "pci", "reassign"));
        assert!(has(r#"pci="reassign""#, "pci", "reassign"));
        assert!(!has("pci=reassignx", "pci", "reassign"));
        assert!(!has(r#"cmdline="pci=reassign""#, "pci", "reassign"));
    }

    #[test]
    fn multibyte_text_survives() {
        let line = "a=\"é ü\" b=ß";
        assert_eq!(texts(line), ["a=é ü", "b=ß"]);
    }
}
