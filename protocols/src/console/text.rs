//! Text screen model behind EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL (UEFI 2.10
//! §12.4), rendered for a serial terminal: UCS-2 becomes UTF-8, colours and
//! cursor moves become ANSI/VT100 escape sequences (ECMA-48). The cursor
//! position is tracked the way a VT100 moves it, so `Mode.CursorColumn/Row`
//! stay truthful for applications that position text themselves.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt;
use core::fmt::Write as _;

use uefi_raw::Status;

/// The text modes we offer, as (columns, rows). §12.4.5 requires mode 0 to
/// be 80x25; mode 1 (80x50) is optional and mode 2+ are device specific.
pub const MODES: [(usize, usize); 3] = [(80, 25), (80, 50), (100, 31)];

/// EFI_TEXT_ATTR(EFI_LIGHTGRAY, EFI_BLACK), the attribute after Reset.
pub const DEFAULT_ATTRIBUTE: usize = 0x07;
/// Foreground in bits 0-3, background in bits 4-6 (§12.4.7).
const ATTRIBUTE_MASK: usize = 0x7f;

const BACKSPACE: u16 = 0x08;
const LINE_FEED: u16 = 0x0a;
const CARRIAGE_RETURN: u16 = 0x0d;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextError {
    UnsupportedMode(usize),
    UnsupportedAttribute(usize),
    CursorOutOfRange {
        column: usize,
        row: usize,
    },
    /// TestString: the first character the console cannot render.
    Unrenderable(u16),
}

impl TextError {
    /// The status §12.4 prescribes for each case: all are EFI_UNSUPPORTED.
    pub fn status(&self) -> Status {
        Status::UNSUPPORTED
    }
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::UnsupportedMode(m) => write!(f, "text mode {m} is not supported"),
            TextError::UnsupportedAttribute(a) => {
                write!(f, "text attribute {a:#x} is not supported")
            }
            TextError::CursorOutOfRange { column, row } => {
                write!(f, "cursor position ({column}, {row}) is outside the mode")
            }
            TextError::Unrenderable(c) => write!(f, "character {c:#06x} cannot be rendered"),
        }
    }
}

/// Whether a UCS-2 code unit prints as exactly one terminal cell. A UTF-8
/// terminal can show most of the BMP, but column tracking needs narrow,
/// non-combining characters: Latin, Greek, Cyrillic, common punctuation and
/// symbols, and the drawing set of §12.4 (box drawing U+2500-257F, block
/// elements U+2580-259F, geometric shapes U+25A0-25FF, arrows U+2190-21FF).
pub fn is_printable(c: u16) -> bool {
    matches!(
        c,
        0x20..=0x7e
            | 0xa0..=0x2ff
            | 0x370..=0x52f
            | 0x1e00..=0x1fff
            | 0x2010..=0x2027
            | 0x2030..=0x205e
            | 0x20a0..=0x20c0
            | 0x2100..=0x214f
            | 0x2190..=0x22ff
            | 0x2500..=0x25ff
    )
}

/// Appends `c` as UTF-8; the printable set excludes surrogates, so every
/// value here is a scalar value.
fn push_utf8(c: u16, out: &mut Vec<u8>) {
    if let Some(ch) = char::from_u32(u32::from(c)) {
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
}

/// ANSI colour numbers indexed by the EFI colour's low three bits: EFI
/// orders blue/green/red as bits 0/1/2, ANSI orders red/green/blue.
const ANSI_COLOUR: [u8; 8] = [0, 4, 2, 6, 1, 5, 3, 7];

/// What OutputString did besides writing bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputReport {
    /// Characters skipped because they cannot be rendered.
    pub unknown_glyphs: usize,
}

impl OutputReport {
    /// SUCCESS, or EFI_WARN_UNKNOWN_GLYPH when something was skipped (§12.4.3).
    pub fn status(&self) -> Status {
        if self.unknown_glyphs == 0 {
            Status::SUCCESS
        } else {
            Status::WARN_UNKNOWN_GLYPH
        }
    }
}

/// The console's state, mirrored into SIMPLE_TEXT_OUTPUT_MODE after every
/// call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    pub mode: usize,
    pub attribute: usize,
    pub column: usize,
    pub row: usize,
    pub cursor_visible: bool,
    /// A character went into the last column: like a VT100, the cursor
    /// stays there and the line wraps only when the next character comes.
    pub wrap_pending: bool,
}

impl Default for Screen {
    fn default() -> Self {
        Self::new()
    }
}

impl Screen {
    pub const fn new() -> Self {
        Screen {
            mode: 0,
            attribute: DEFAULT_ATTRIBUTE,
            column: 0,
            row: 0,
            cursor_visible: true,
            wrap_pending: false,
        }
    }

    /// (columns, rows) of the current mode.
    pub fn size(&self) -> (usize, usize) {
        MODES.get(self.mode).copied().unwrap_or(MODES[0])
    }

    /// QueryMode (§12.4.4).
    pub fn query_mode(mode: usize) -> Result<(usize, usize), TextError> {
        MODES
            .get(mode)
            .copied()
            .ok_or(TextError::UnsupportedMode(mode))
    }

    /// Reset (§12.4.2): default colours, mode 0, cleared, cursor shown.
    pub fn reset(&mut self, out: &mut Vec<u8>) {
        self.attribute = DEFAULT_ATTRIBUTE;
        push_sgr(self.attribute, out);
        self.mode = 0;
        self.clear_screen(out);
        self.enable_cursor(true, out);
    }

    /// OutputString (§12.4.3). Moves the cursor like a VT100 does: CR to
    /// column 0, LF one row down (the terminal scrolls at the last row), BS
    /// one column left, and a printable character one column right. After
    /// the last column the wrap is deferred to the next printable character
    /// (so a full line followed by CR LF, or a full last row, does not
    /// scroll twice) and then sent as CR LF, so a terminal wider than the
    /// mode wraps at the same place.
    pub fn output_string(&mut self, text: &[u16], out: &mut Vec<u8>) -> OutputReport {
        let (columns, rows) = self.size();
        let last_row = rows.saturating_sub(1);
        let mut report = OutputReport::default();
        for &c in text.iter().take_while(|&&c| c != 0) {
            match c {
                BACKSPACE => {
                    // From a pending wrap the terminal's cursor sits on the
                    // last column and moves left of it.
                    self.wrap_pending = false;
                    self.column = self.column.saturating_sub(1);
                    out.push(0x08);
                }
                LINE_FEED => {
                    self.wrap_pending = false;
                    self.row = (self.row + 1).min(last_row);
                    out.push(b'\n');
                }
                CARRIAGE_RETURN => {
                    self.wrap_pending = false;
                    self.column = 0;
                    out.push(b'\r');
                }
                c if is_printable(c) => {
                    if core::mem::take(&mut self.wrap_pending) {
                        self.column = 0;
                        self.row = (self.row + 1).min(last_row);
                        out.extend_from_slice(b"\r\n");
                    }
                    push_utf8(c, out);
                    if self.column + 1 >= columns {
                        self.wrap_pending = true;
                    } else {
                        self.column += 1;
                    }
                }
                _ => report.unknown_glyphs += 1,
            }
        }
        report
    }

    /// TestString (§12.4.4): every character must be renderable (the
    /// cursor-moving controls included).
    pub fn test_string(text: &[u16]) -> Result<(), TextError> {
        match text
            .iter()
            .take_while(|&&c| c != 0)
            .find(|&&c| !matches!(c, BACKSPACE | LINE_FEED | CARRIAGE_RETURN) && !is_printable(c))
        {
            Some(&c) => Err(TextError::Unrenderable(c)),
            None => Ok(()),
        }
    }

    /// SetMode (§12.4.5): switching clears the screen and homes the cursor.
    pub fn set_mode(&mut self, mode: usize, out: &mut Vec<u8>) -> Result<(), TextError> {
        Self::query_mode(mode)?;
        self.mode = mode;
        self.clear_screen(out);
        Ok(())
    }

    /// SetAttribute (§12.4.7): bits above 6 are not attributes.
    pub fn set_attribute(&mut self, attribute: usize, out: &mut Vec<u8>) -> Result<(), TextError> {
        if attribute & !ATTRIBUTE_MASK != 0 {
            return Err(TextError::UnsupportedAttribute(attribute));
        }
        self.attribute = attribute;
        push_sgr(attribute, out);
        Ok(())
    }

    /// ClearScreen (§12.4.8): erase in the current colours, cursor to (0, 0).
    pub fn clear_screen(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\x1b[2J\x1b[H");
        self.column = 0;
        self.row = 0;
        self.wrap_pending = false;
    }

    /// SetCursorPosition (§12.4.9), zero-based; the terminal counts from 1.
    pub fn set_cursor_position(
        &mut self,
        column: usize,
        row: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), TextError> {
        let (columns, rows) = self.size();
        if column >= columns || row >= rows {
            return Err(TextError::CursorOutOfRange { column, row });
        }
        self.column = column;
        self.row = row;
        self.wrap_pending = false;
        // Writing to a Vec cannot fail.
        let _ = write!(VecWriter(out), "\x1b[{};{}H", row + 1, column + 1);
        Ok(())
    }

    /// EnableCursor (§12.4.10): DECTCEM show/hide.
    pub fn enable_cursor(&mut self, visible: bool, out: &mut Vec<u8>) {
        self.cursor_visible = visible;
        out.extend_from_slice(if visible { b"\x1b[?25h" } else { b"\x1b[?25l" });
    }
}

/// SGR for an EFI attribute: reset, then bold for the bright foreground
/// colours 8-15 (the VT100 way to get them), then foreground and background.
fn push_sgr(attribute: usize, out: &mut Vec<u8>) {
    let foreground = ANSI_COLOUR[attribute & 7];
    let bright = attribute & 8 != 0;
    let background = ANSI_COLOUR[(attribute >> 4) & 7];
    let bold = if bright { "1;" } else { "" };
    let _ = write!(VecWriter(out), "\x1b[0;{bold}3{foreground};4{background}m");
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ucs2(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn render(screen: &mut Screen, text: &[u16]) -> (Vec<u8>, OutputReport) {
        let mut out = Vec::new();
        let report = screen.output_string(text, &mut out);
        (out, report)
    }

    #[test]
    fn ascii_passes_through_and_moves_the_cursor() {
        let mut s = Screen::new();
        let (out, report) = render(&mut s, &ucs2("Hello"));
        assert_eq!(out, b"Hello");
        assert_eq!(report.status(), Status::SUCCESS);
        assert_eq!((s.column, s.row), (5, 0));
        let (out, _) = render(&mut s, &ucs2("\r\nab"));
        assert_eq!(out, b"\r\nab");
        assert_eq!((s.column, s.row), (2, 1));
    }

    #[test]
    fn stops_at_nul() {
        let mut s = Screen::new();
        let (out, _) = render(&mut s, &[u16::from(b'a'), 0, u16::from(b'b')]);
        assert_eq!(out, b"a");
        assert_eq!(s.column, 1);
    }

    #[test]
    fn box_drawing_block_and_arrows_become_utf8() {
        let mut s = Screen::new();
        // BOXDRAW_DOWN_RIGHT, BOXDRAW_HORIZONTAL, BLOCKELEMENT_FULL_BLOCK,
        // GEOMETRICSHAPE_UP_TRIANGLE, ARROW_UP, ARROW_DOWN (§12.4 table).
        let (out, report) = render(
            &mut s,
            &[0x250c, 0x2500, 0x2588, 0x25b2, 0x2191, 0x2193, 0xe9],
        );
        assert_eq!(core::str::from_utf8(&out).unwrap(), "┌─█▲↑↓é");
        assert_eq!(report.unknown_glyphs, 0);
        // Each is one cell wide.
        assert_eq!(s.column, 7);
    }

    #[test]
    fn unknown_glyphs_are_skipped_with_a_warning() {
        let mut s = Screen::new();
        // A lone surrogate, a C0 control (TAB), a CJK ideograph (double width).
        let (out, report) = render(
            &mut s,
            &[u16::from(b'a'), 0xd800, 0x09, 0x4e2d, u16::from(b'b')],
        );
        assert_eq!(out, b"ab");
        assert_eq!(report.unknown_glyphs, 3);
        assert_eq!(report.status(), Status::WARN_UNKNOWN_GLYPH);
        assert_eq!(s.column, 2);
    }

    #[test]
    fn wraps_at_mode_width_and_stays_on_last_row() {
        let mut s = Screen::new();
        let line = [u16::from(b'x'); 81];
        let (out, _) = render(&mut s, &line);
        assert_eq!(&out[78..], b"xx\r\nx");
        assert_eq!((s.column, s.row), (1, 1));

        // A full line then CR LF moves down once, as on the terminal.
        let mut s = Screen::new();
        let (out, _) = render(&mut s, &[u16::from(b'-'); 80]);
        assert_eq!(out.len(), 80);
        assert_eq!((s.column, s.row, s.wrap_pending), (79, 0, true));
        render(&mut s, &ucs2("\r\n"));
        assert_eq!((s.column, s.row, s.wrap_pending), (0, 1, false));
        // A full last row does not scroll until more text comes.
        s.set_cursor_position(0, 24, &mut Vec::new()).unwrap();
        let (out, _) = render(&mut s, &[u16::from(b'='); 80]);
        assert!(!out.contains(&b'\n'));
        assert_eq!((s.column, s.row), (79, 24));

        s.set_cursor_position(0, 24, &mut Vec::new()).unwrap();
        render(&mut s, &ucs2("\n\n"));
        assert_eq!(s.row, 24);
        s.set_mode(2, &mut Vec::new()).unwrap();
        render(&mut s, &[u16::from(b'y'); 100]);
        assert_eq!((s.column, s.row), (99, 0));
        let (out, _) = render(&mut s, &ucs2("y"));
        assert_eq!(out, b"\r\ny");
        assert_eq!((s.column, s.row), (1, 1));
        // Backspace from a pending wrap lands left of the last column.
        let mut s = Screen::new();
        render(&mut s, &[u16::from(b'z'); 80]);
        render(&mut s, &ucs2("\u{8}"));
        assert_eq!((s.column, s.wrap_pending), (78, false));
    }

    #[test]
    fn backspace_stops_at_column_zero() {
        let mut s = Screen::new();
        let (out, _) = render(&mut s, &ucs2("a\u{8}\u{8}"));
        assert_eq!(out, b"a\x08\x08");
        assert_eq!(s.column, 0);
    }

    #[test]
    fn test_string_rejects_unrenderable() {
        assert_eq!(Screen::test_string(&ucs2("ok ┌─┐\r\n\u{8}")), Ok(()));
        assert_eq!(
            Screen::test_string(&[u16::from(b'a'), 0x1b]),
            Err(TextError::Unrenderable(0x1b))
        );
        assert_eq!(
            Screen::test_string(&[0xdc00]),
            Err(TextError::Unrenderable(0xdc00))
        );
        assert_eq!(TextError::Unrenderable(1).status(), Status::UNSUPPORTED);
    }

    #[test]
    fn modes() {
        assert_eq!(Screen::query_mode(0), Ok((80, 25)));
        assert_eq!(Screen::query_mode(1), Ok((80, 50)));
        assert_eq!(Screen::query_mode(2), Ok((100, 31)));
        assert_eq!(Screen::query_mode(3), Err(TextError::UnsupportedMode(3)));

        let mut s = Screen::new();
        render(&mut s, &ucs2("abc"));
        let mut out = Vec::new();
        s.set_mode(1, &mut out).unwrap();
        assert_eq!(out, b"\x1b[2J\x1b[H");
        assert_eq!((s.mode, s.column, s.row), (1, 0, 0));
        assert_eq!(s.size(), (80, 50));
        let mut out = Vec::new();
        assert_eq!(s.set_mode(7, &mut out), Err(TextError::UnsupportedMode(7)));
        assert!(out.is_empty());
        assert_eq!(s.mode, 1);
    }

    #[test]
    fn cursor_position_is_bounds_checked() {
        let mut s = Screen::new();
        let mut out = Vec::new();
        s.set_cursor_position(79, 24, &mut out).unwrap();
        assert_eq!(out, b"\x1b[25;80H");
        assert_eq!((s.column, s.row), (79, 24));
        assert_eq!(
            s.set_cursor_position(80, 0, &mut out),
            Err(TextError::CursorOutOfRange { column: 80, row: 0 })
        );
        assert_eq!(
            s.set_cursor_position(0, 25, &mut out),
            Err(TextError::CursorOutOfRange { column: 0, row: 25 })
        );
        assert_eq!((s.column, s.row), (79, 24));
    }

    #[test]
    fn attributes_map_to_sgr() {
        let mut s = Screen::new();
        let mut out = Vec::new();
        // EFI_YELLOW (0x0e) on EFI_BACKGROUND_BLUE (0x10).
        s.set_attribute(0x1e, &mut out).unwrap();
        assert_eq!(out, b"\x1b[0;1;33;44m");
        out.clear();
        // EFI_RED on EFI_BACKGROUND_CYAN.
        s.set_attribute(0x34, &mut out).unwrap();
        assert_eq!(out, b"\x1b[0;31;46m");
        assert_eq!(s.attribute, 0x34);
        assert_eq!(
            s.set_attribute(0x80, &mut out),
            Err(TextError::UnsupportedAttribute(0x80))
        );
        assert_eq!(s.attribute, 0x34);
    }

    #[test]
    fn clear_cursor_and_reset() {
        let mut s = Screen::new();
        render(&mut s, &ucs2("abc\r\n"));
        let mut out = Vec::new();
        s.clear_screen(&mut out);
        assert_eq!(out, b"\x1b[2J\x1b[H");
        assert_eq!((s.column, s.row), (0, 0));
        out.clear();
        s.enable_cursor(false, &mut out);
        assert_eq!(out, b"\x1b[?25l");
        assert!(!s.cursor_visible);

        s.set_mode(2, &mut Vec::new()).unwrap();
        s.set_attribute(0x1f, &mut Vec::new()).unwrap();
        out.clear();
        s.reset(&mut out);
        assert_eq!(out, b"\x1b[0;37;40m\x1b[2J\x1b[H\x1b[?25h");
        assert_eq!(s, Screen::new());
    }
}
