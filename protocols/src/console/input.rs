//! Serial keyboard input for EFI_SIMPLE_TEXT_INPUT(_EX)_PROTOCOL (UEFI 2.10
//! §12.2, §12.3): decodes the byte stream a VT100/xterm/PuTTY terminal sends
//! into EFI keys, queues them, and keeps the RegisterKeyNotify list.
#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use efi::ids::KeyNotifyHandle;

use uefi_raw::protocol::console::{InputKey, KeyData, KeyShiftState, KeyState, KeyToggleState};

// EFI_KEY_STATE bits (§12.2.3) as the integers the decoder works with; the
// caller's values may carry bits no flag names.
const SHIFT_STATE_VALID: u32 = KeyShiftState::VALID.bits();
const LEFT_SHIFT_PRESSED: u32 = KeyShiftState::LEFT_SHIFT.bits();
const LEFT_CONTROL_PRESSED: u32 = KeyShiftState::LEFT_CONTROL.bits();
const LEFT_ALT_PRESSED: u32 = KeyShiftState::LEFT_ALT.bits();
const TOGGLE_STATE_VALID: u8 = KeyToggleState::VALID.bits();
const KEY_STATE_EXPOSED: u8 = KeyToggleState::EXPOSED.bits();
const SCROLL_LOCK_ACTIVE: u8 = KeyToggleState::SCROLL_LOCK_ACTIVE.bits();
const NUM_LOCK_ACTIVE: u8 = KeyToggleState::NUM_LOCK_ACTIVE.bits();
const CAPS_LOCK_ACTIVE: u8 = KeyToggleState::CAPS_LOCK_ACTIVE.bits();

/// EFI scan codes (§12.3, table "EFI Scan Codes for EFI_SIMPLE_TEXT_INPUT_PROTOCOL").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ScanCode(pub u16);

impl ScanCode {
    pub const NULL: ScanCode = ScanCode(0x00);
    pub const UP: ScanCode = ScanCode(0x01);
    pub const DOWN: ScanCode = ScanCode(0x02);
    pub const RIGHT: ScanCode = ScanCode(0x03);
    pub const LEFT: ScanCode = ScanCode(0x04);
    pub const HOME: ScanCode = ScanCode(0x05);
    pub const END: ScanCode = ScanCode(0x06);
    pub const INSERT: ScanCode = ScanCode(0x07);
    pub const DELETE: ScanCode = ScanCode(0x08);
    pub const PAGE_UP: ScanCode = ScanCode(0x09);
    pub const PAGE_DOWN: ScanCode = ScanCode(0x0a);
    /// F1..F10 are 0x0b..0x14, F11 and F12 are 0x15 and 0x16.
    pub const F1: ScanCode = ScanCode(0x0b);
    pub const F12: ScanCode = ScanCode(0x16);
    pub const ESC: ScanCode = ScanCode(0x17);

    /// Function key `n` (1-12).
    pub const fn function(n: u16) -> ScanCode {
        ScanCode(Self::F1.0 + n - 1)
    }
}

pub const CHAR_BACKSPACE: u16 = 0x08;
pub const CHAR_TAB: u16 = 0x09;
pub const CHAR_LINEFEED: u16 = 0x0a;
pub const CHAR_CARRIAGE_RETURN: u16 = 0x0d;

const ESC: u8 = 0x1b;
const DEL: u8 = 0x7f;

/// How long an ESC may wait for the rest of its sequence before it counts as
/// the Esc key. A terminal sends a sequence in one write, so its bytes
/// arrive back to back (87 us apart at 115200 baud).
pub const ESC_TIMEOUT_NS: u64 = 5_000_000;

/// Longest escape sequence we collect; anything longer is not a key.
const MAX_SEQUENCE: usize = 8;

/// A decoded key. `unicode` is what EFI_SIMPLE_TEXT_INPUT_PROTOCOL returns;
/// the Ex protocol reports control characters as the letter plus
/// LEFT_CONTROL_PRESSED in `shift_state`, as edk2's terminal driver does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Key {
    pub scan: ScanCode,
    pub unicode: u16,
    /// EFI_*_PRESSED bits (SHIFT_STATE_VALID when non-zero).
    pub shift_state: u32,
    /// The character the Ex protocol reports (differs for Ctrl+letter).
    pub ex_unicode: u16,
}

impl Key {
    pub const fn char(c: u16) -> Key {
        Key {
            scan: ScanCode::NULL,
            unicode: c,
            shift_state: 0,
            ex_unicode: c,
        }
    }

    pub const fn scan(scan: ScanCode) -> Key {
        Key {
            scan,
            unicode: 0,
            shift_state: 0,
            ex_unicode: 0,
        }
    }

    fn with_modifiers(mut self, shift_state: u32) -> Key {
        if shift_state != 0 {
            self.shift_state = shift_state | SHIFT_STATE_VALID;
        }
        self
    }

    pub fn input_key(&self) -> InputKey {
        InputKey {
            scan_code: self.scan.0,
            unicode_char: self.unicode,
        }
    }

    pub fn key_data(&self, toggle_state: u8) -> KeyData {
        KeyData {
            key: InputKey {
                scan_code: self.scan.0,
                unicode_char: self.ex_unicode,
            },
            key_state: KeyState {
                key_shift_state: KeyShiftState::from_bits_retain(self.shift_state),
                key_toggle_state: KeyToggleState::from_bits_retain(toggle_state),
            },
        }
    }
}

/// The key for a byte outside an escape sequence.
fn plain_key(byte: u8) -> Option<Key> {
    match byte {
        // Terminals send DEL for the Backspace key.
        DEL | 0x08 => Some(Key::char(CHAR_BACKSPACE)),
        0x09 | 0x0a | 0x0d => Some(Key::char(u16::from(byte))),
        0x01..=0x1a | 0x1c..=0x1f => Some(Key {
            scan: ScanCode::NULL,
            unicode: u16::from(byte),
            shift_state: LEFT_CONTROL_PRESSED | SHIFT_STATE_VALID,
            // 0x01 is Ctrl+A; the Ex protocol reports the lower-case letter,
            // and 0x1c-0x1f are Ctrl+\ ] ^ _.
            ex_unicode: if byte <= 0x1a {
                u16::from(byte - 1 + b'a')
            } else {
                u16::from(byte + 0x40)
            },
        }),
        0x20..=0x7e => Some(Key::char(u16::from(byte))),
        // NUL and 8-bit bytes: not keys a UTF-8-less decoder can name.
        _ => None,
    }
}

/// xterm's modifier parameter (1 + shift + 2*alt + 4*ctrl) as EFI bits.
fn modifiers(parameter: u16) -> u32 {
    let bits = parameter.saturating_sub(1);
    let mut state = 0;
    if bits & 1 != 0 {
        state |= LEFT_SHIFT_PRESSED;
    }
    if bits & 2 != 0 {
        state |= LEFT_ALT_PRESSED;
    }
    if bits & 4 != 0 {
        state |= LEFT_CONTROL_PRESSED;
    }
    state
}

/// The key a letter names after ESC O (SS3) or a CSI without number.
fn letter_key(letter: u8) -> Option<ScanCode> {
    Some(match letter {
        b'A' => ScanCode::UP,
        b'B' => ScanCode::DOWN,
        b'C' => ScanCode::RIGHT,
        b'D' => ScanCode::LEFT,
        b'H' => ScanCode::HOME,
        b'F' => ScanCode::END,
        b'P' => ScanCode::function(1),
        b'Q' => ScanCode::function(2),
        b'R' => ScanCode::function(3),
        b'S' => ScanCode::function(4),
        _ => return None,
    })
}

/// The key of ESC [ n ~ (VT220 editing keypad and function keys).
fn tilde_key(n: u16) -> Option<ScanCode> {
    Some(match n {
        1 | 7 => ScanCode::HOME,
        2 => ScanCode::INSERT,
        3 => ScanCode::DELETE,
        4 | 8 => ScanCode::END,
        5 => ScanCode::PAGE_UP,
        6 => ScanCode::PAGE_DOWN,
        11..=15 => ScanCode::function(n - 10),
        17..=21 => ScanCode::function(n - 11),
        23 | 24 => ScanCode::function(n - 12),
        _ => return None,
    })
}

/// What a complete-or-not escape sequence (after its ESC) means.
enum Parse {
    /// More bytes are needed.
    Incomplete,
    Key(Key),
    /// A well-formed sequence that is no key we know: dropped.
    Ignored,
    /// Not an escape sequence: ESC was the Esc key and the bytes after it
    /// are ordinary input.
    NotASequence,
}

fn parse(sequence: &[u8]) -> Parse {
    match sequence {
        [] => Parse::Incomplete,
        [b'O'] => Parse::Incomplete,
        [b'O', letter] => letter_key(*letter).map_or(Parse::Ignored, |s| Parse::Key(Key::scan(s))),
        // Linux console: ESC [ [ A..E are F1..F5.
        [b'[', b'['] => Parse::Incomplete,
        [b'[', b'[', letter @ b'A'..=b'E'] => {
            Parse::Key(Key::scan(ScanCode::function(u16::from(letter - b'A') + 1)))
        }
        [b'[', b'[', _] => Parse::Ignored,
        [b'[', rest @ ..] => parse_csi(rest),
        _ => Parse::NotASequence,
    }
}

/// CSI parameters and final byte (ECMA-48 §5.4): digits and ';' then a byte
/// in 0x40..=0x7e.
fn parse_csi(body: &[u8]) -> Parse {
    let Some((&last, parameters)) = body.split_last() else {
        return Parse::Incomplete;
    };
    match last {
        // Parameter and intermediate bytes: the final byte is still to come.
        0x20..=0x3f => return Parse::Incomplete,
        0x40..=0x7e => {}
        _ => return Parse::Ignored,
    }
    // Private (`?`, `>`) or intermediate bytes: no key of ours.
    if parameters.iter().any(|b| !b.is_ascii_digit() && *b != b';') {
        return Parse::Ignored;
    }
    let mut numbers = [0u16; 2];
    for (slot, field) in numbers.iter_mut().zip(parameters.split(|&b| b == b';')) {
        for &digit in field {
            *slot = slot
                .saturating_mul(10)
                .saturating_add(u16::from(digit - b'0'));
        }
    }
    let scan = match last {
        b'~' => tilde_key(numbers[0]),
        letter => letter_key(letter),
    };
    match scan {
        Some(scan) => Parse::Key(Key::scan(scan).with_modifiers(modifiers(numbers[1]))),
        None => Parse::Ignored,
    }
}

/// Escape-sequence decoder. Bytes may arrive split across reads: an
/// incomplete sequence waits until more bytes come or [`Decoder::expire`]
/// decides it was a lone Esc key.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes after a pending ESC.
    sequence: Vec<u8>,
    escape_pending: bool,
    /// Inside an overlong CSI sequence: dropping bytes up to its final byte.
    discarding: bool,
    last_byte_ns: u64,
}

impl Decoder {
    pub const fn new() -> Self {
        Decoder {
            sequence: Vec::new(),
            escape_pending: false,
            discarding: false,
            last_byte_ns: 0,
        }
    }

    pub fn reset(&mut self) {
        self.sequence.clear();
        self.escape_pending = false;
        self.discarding = false;
    }

    /// Whether an ESC waits for the rest of its sequence.
    pub fn pending(&self) -> bool {
        self.escape_pending
    }

    /// Decodes one byte received at `now_ns`, appending finished keys.
    pub fn feed(&mut self, byte: u8, now_ns: u64, keys: &mut impl Extend<Key>) {
        self.last_byte_ns = now_ns;
        if self.discarding && byte != ESC {
            self.discarding = !(0x40..=0x7e).contains(&byte);
            return;
        }
        self.discarding = false;
        if !self.escape_pending {
            if byte == ESC {
                self.escape_pending = true;
            } else {
                keys.extend(plain_key(byte));
            }
            return;
        }
        if byte == ESC {
            // ESC ESC: the first was the Esc key, the second may start a sequence.
            self.flush(keys);
            self.escape_pending = true;
            return;
        }
        self.sequence.push(byte);
        match parse(&self.sequence) {
            Parse::Incomplete if self.sequence.len() < MAX_SEQUENCE => {}
            Parse::Incomplete => {
                self.reset();
                self.discarding = true;
            }
            Parse::Ignored => self.reset(),
            Parse::Key(key) => {
                keys.extend([key]);
                self.reset();
            }
            Parse::NotASequence => self.flush(keys),
        }
    }

    /// After `ESC_TIMEOUT_NS` without a byte, a pending ESC is the Esc key
    /// and whatever followed it is ordinary input.
    pub fn expire(&mut self, now_ns: u64, keys: &mut impl Extend<Key>) {
        if self.escape_pending && now_ns.saturating_sub(self.last_byte_ns) >= ESC_TIMEOUT_NS {
            self.flush(keys);
        }
    }

    /// Emits the pending ESC as the Esc key and the bytes after it as keys.
    pub fn flush(&mut self, keys: &mut impl Extend<Key>) {
        if !self.escape_pending {
            return;
        }
        keys.extend([Key::scan(ScanCode::ESC)]);
        keys.extend(self.sequence.iter().filter_map(|&b| plain_key(b)));
        self.reset();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputError {
    /// SetState with bits we cannot honour (or without TOGGLE_STATE_VALID).
    UnsupportedToggleState(u8),
    /// UnregisterKeyNotify with a handle we did not issue.
    UnknownNotifyHandle(KeyNotifyHandle),
    NotifyHandlesExhausted,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::UnsupportedToggleState(s) => {
                write!(f, "toggle state {s:#x} is not supported")
            }
            InputError::UnknownNotifyHandle(h) => write!(f, "unknown key notify handle {h:#x}"),
            InputError::NotifyHandlesExhausted => write!(f, "key notify handles exhausted"),
        }
    }
}

/// Keys buffered beyond this are dropped: nobody is reading them.
pub const QUEUE_CAPACITY: usize = 64;
const TOGGLE_BITS: u8 = TOGGLE_STATE_VALID
    | KEY_STATE_EXPOSED
    | SCROLL_LOCK_ACTIVE
    | NUM_LOCK_ACTIVE
    | CAPS_LOCK_ACTIVE;

/// A registered key notification; `F` is the notify function type.
#[derive(Clone, Copy, Debug)]
struct Registration<F> {
    handle: KeyNotifyHandle,
    key: KeyData,
    function: F,
}

/// Shared state of ConIn and ConInEx.
pub struct Keyboard<F> {
    pub decoder: Decoder,
    queue: VecDeque<Key>,
    toggle_state: u8,
    notifies: Vec<Registration<F>>,
    next_handle: usize,
}

impl<F: Copy + PartialEq> Default for Keyboard<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Copy + PartialEq> Keyboard<F> {
    pub const fn new() -> Self {
        Keyboard {
            decoder: Decoder::new(),
            queue: VecDeque::new(),
            // The toggle state is tracked (SetState), so it is always
            // reported valid (§12.2.3 EFI_KEY_STATE).
            toggle_state: TOGGLE_STATE_VALID,
            notifies: Vec::new(),
            // Recognisable, never null, never an event or handle value.
            next_handle: 0x4b45_0001,
        }
    }

    /// Reset (§12.3.2): drops buffered keys and any partial sequence.
    pub fn reset(&mut self) {
        self.decoder.reset();
        self.queue.clear();
    }

    /// Decodes received bytes, then lets a stale ESC become the Esc key.
    /// Returns the notify functions the new keys trigger, with the key data
    /// to pass them; the caller runs them after releasing this state.
    pub fn receive(&mut self, bytes: &[u8], now_ns: u64) -> Vec<(F, KeyData)> {
        let mut keys = Vec::new();
        for &b in bytes {
            self.decoder.feed(b, now_ns, &mut keys);
        }
        self.decoder.expire(now_ns, &mut keys);
        let mut calls = Vec::new();
        for key in keys {
            let data = key.key_data(self.toggle_state);
            calls.extend(
                self.notifies
                    .iter()
                    .filter(|r| matches(&r.key, &data))
                    .map(|r| (r.function, data)),
            );
            if self.queue.len() < QUEUE_CAPACITY {
                self.queue.push_back(key);
            }
        }
        calls
    }

    pub fn key_available(&self) -> bool {
        !self.queue.is_empty()
    }

    pub fn pop(&mut self) -> Option<Key> {
        self.queue.pop_front()
    }

    pub fn toggle_state(&self) -> u8 {
        self.toggle_state
    }

    /// What ReadKeyStrokeEx returns with EFI_NOT_READY (§12.2.3: "Current
    /// KeyData.KeyState values are exposed"): no key, no modifier held
    /// (a serial line reports modifiers only with a key), and the current
    /// toggle state.
    pub fn idle_key_data(&self) -> KeyData {
        KeyData {
            key: InputKey {
                scan_code: 0,
                unicode_char: 0,
            },
            key_state: KeyState {
                key_shift_state: KeyShiftState::from_bits_retain(SHIFT_STATE_VALID),
                key_toggle_state: KeyToggleState::from_bits_retain(self.toggle_state),
            },
        }
    }

    /// SetState (§12.2.5): a serial line has no lock LEDs, so we just
    /// remember the state and report it with keys.
    pub fn set_state(&mut self, state: u8) -> Result<(), InputError> {
        if state & TOGGLE_STATE_VALID == 0 || state & !TOGGLE_BITS != 0 {
            return Err(InputError::UnsupportedToggleState(state));
        }
        self.toggle_state = state;
        Ok(())
    }

    /// RegisterKeyNotify (§12.2.6): registering the same key and function
    /// again returns the existing handle.
    pub fn register(&mut self, key: KeyData, function: F) -> Result<KeyNotifyHandle, InputError> {
        if let Some(r) = self
            .notifies
            .iter()
            .find(|r| same_key(&r.key, &key) && r.function == function)
        {
            return Ok(r.handle);
        }
        let handle = KeyNotifyHandle::from_value(self.next_handle);
        self.next_handle = self
            .next_handle
            .checked_add(1)
            .ok_or(InputError::NotifyHandlesExhausted)?;
        self.notifies.push(Registration {
            handle,
            key,
            function,
        });
        Ok(handle)
    }

    /// UnregisterKeyNotify (§12.2.7).
    pub fn unregister(&mut self, handle: KeyNotifyHandle) -> Result<(), InputError> {
        let at = self
            .notifies
            .iter()
            .position(|r| r.handle == handle)
            .ok_or(InputError::UnknownNotifyHandle(handle))?;
        self.notifies.remove(at);
        Ok(())
    }
}

fn same_key(a: &KeyData, b: &KeyData) -> bool {
    a.key.scan_code == b.key.scan_code
        && a.key.unicode_char == b.key.unicode_char
        && a.key_state.key_shift_state == b.key_state.key_shift_state
        && a.key_state.key_toggle_state == b.key_state.key_toggle_state
}

/// Whether a pressed key triggers a registration: scan code and character
/// must match; shift and toggle state only when the registration states
/// them valid (§12.2.6).
fn matches(registered: &KeyData, pressed: &KeyData) -> bool {
    let shift = registered.key_state.key_shift_state;
    let toggle = registered.key_state.key_toggle_state;
    registered.key.scan_code == pressed.key.scan_code
        && registered.key.unicode_char == pressed.key.unicode_char
        && (!shift.contains(KeyShiftState::VALID) || shift == pressed.key_state.key_shift_state)
        && (!toggle.contains(KeyToggleState::VALID) || toggle == pressed.key_state.key_toggle_state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Vec<Key> {
        let mut d = Decoder::new();
        let mut keys = Vec::new();
        for &b in bytes {
            d.feed(b, 0, &mut keys);
        }
        assert!(!d.pending(), "sequence {bytes:?} left pending");
        keys
    }

    fn scans(bytes: &[u8]) -> Vec<ScanCode> {
        decode(bytes).iter().map(|k| k.scan).collect()
    }

    #[test]
    fn arrows() {
        for (seq, scan) in [
            (&b"\x1b[A"[..], ScanCode::UP),
            (b"\x1b[B", ScanCode::DOWN),
            (b"\x1b[C", ScanCode::RIGHT),
            (b"\x1b[D", ScanCode::LEFT),
            (b"\x1bOA", ScanCode::UP),
            (b"\x1bOB", ScanCode::DOWN),
            (b"\x1bOC", ScanCode::RIGHT),
            (b"\x1bOD", ScanCode::LEFT),
        ] {
            assert_eq!(decode(seq), [Key::scan(scan)], "{seq:?}");
        }
    }

    #[test]
    fn editing_keys() {
        for (seq, scan) in [
            (&b"\x1b[H"[..], ScanCode::HOME),
            (b"\x1b[F", ScanCode::END),
            (b"\x1bOH", ScanCode::HOME),
            (b"\x1bOF", ScanCode::END),
            (b"\x1b[1~", ScanCode::HOME),
            (b"\x1b[4~", ScanCode::END),
            (b"\x1b[7~", ScanCode::HOME),
            (b"\x1b[8~", ScanCode::END),
            (b"\x1b[2~", ScanCode::INSERT),
            (b"\x1b[3~", ScanCode::DELETE),
            (b"\x1b[5~", ScanCode::PAGE_UP),
            (b"\x1b[6~", ScanCode::PAGE_DOWN),
        ] {
            assert_eq!(scans(seq), [scan], "{seq:?}");
        }
    }

    #[test]
    fn function_keys() {
        let ss3 = [b"\x1bOP", b"\x1bOQ", b"\x1bOR", b"\x1bOS"];
        for (i, seq) in ss3.iter().enumerate() {
            assert_eq!(scans(*seq), [ScanCode(0x0b + i as u16)]);
        }
        let vt220 = [11, 12, 13, 14, 15, 17, 18, 19, 20, 21, 23, 24];
        for (i, n) in vt220.iter().enumerate() {
            let seq = alloc::format!("\x1b[{n}~");
            assert_eq!(
                scans(seq.as_bytes()),
                [ScanCode(0x0b + i as u16)],
                "{seq:?}"
            );
        }
        assert_eq!(scans(b"\x1b[[A"), [ScanCode::function(1)]);
        assert_eq!(scans(b"\x1b[[E"), [ScanCode::function(5)]);
        assert_eq!(ScanCode::function(12), ScanCode::F12);
    }

    #[test]
    fn xterm_modifiers() {
        let keys = decode(b"\x1b[1;5A\x1b[3;2~");
        assert_eq!(keys[0].scan, ScanCode::UP);
        assert_eq!(
            keys[0].shift_state,
            SHIFT_STATE_VALID | LEFT_CONTROL_PRESSED
        );
        assert_eq!(keys[1].scan, ScanCode::DELETE);
        assert_eq!(keys[1].shift_state, SHIFT_STATE_VALID | LEFT_SHIFT_PRESSED);
    }

    #[test]
    fn plain_characters_and_controls() {
        assert_eq!(
            decode(b"a Z~"),
            [
                Key::char(0x61),
                Key::char(0x20),
                Key::char(0x5a),
                Key::char(0x7e)
            ]
        );
        assert_eq!(decode(b"\x7f"), [Key::char(CHAR_BACKSPACE)]);
        assert_eq!(decode(b"\x08"), [Key::char(CHAR_BACKSPACE)]);
        assert_eq!(decode(b"\r"), [Key::char(CHAR_CARRIAGE_RETURN)]);
        assert_eq!(decode(b"\t"), [Key::char(CHAR_TAB)]);
        let ctrl_c = decode(b"\x03")[0];
        assert_eq!(ctrl_c.input_key().unicode_char, 0x03);
        let ex = ctrl_c.key_data(0);
        assert_eq!(ex.key.unicode_char, u16::from(b'c'));
        assert_eq!(
            ex.key_state.key_shift_state.bits(),
            SHIFT_STATE_VALID | LEFT_CONTROL_PRESSED
        );
        assert_eq!(
            decode(b"\x1c")[0].key_data(0).key.unicode_char,
            u16::from(b'\\')
        );
        assert!(decode(b"\x00\x80\xff").is_empty());
    }

    #[test]
    fn sequences_split_across_reads() {
        let mut d = Decoder::new();
        let mut keys = Vec::new();
        d.feed(0x1b, 0, &mut keys);
        d.expire(1_000_000, &mut keys);
        assert!(keys.is_empty() && d.pending());
        d.feed(b'[', 1_000_000, &mut keys);
        d.feed(b'2', 2_000_000, &mut keys);
        d.expire(6_000_000, &mut keys);
        assert!(keys.is_empty());
        d.feed(b'4', 6_500_000, &mut keys);
        d.feed(b'~', 7_000_000, &mut keys);
        assert_eq!(keys, [Key::scan(ScanCode::F12)]);
        assert!(!d.pending());
    }

    #[test]
    fn lone_escape() {
        let mut d = Decoder::new();
        let mut keys = Vec::new();
        d.feed(0x1b, 100, &mut keys);
        d.expire(100 + ESC_TIMEOUT_NS - 1, &mut keys);
        assert!(keys.is_empty());
        d.expire(100 + ESC_TIMEOUT_NS, &mut keys);
        assert_eq!(keys, [Key::scan(ScanCode::ESC)]);
        assert!(!d.pending());

        // ESC then a letter: Esc and the letter (e.g. Alt+x).
        assert_eq!(
            decode(b"\x1bx"),
            [Key::scan(ScanCode::ESC), Key::char(u16::from(b'x'))]
        );
        // ESC ESC [A: Esc, then Up.
        let mut keys = Vec::new();
        let mut d = Decoder::new();
        for &b in b"\x1b\x1b[A" {
            d.feed(b, 0, &mut keys);
        }
        assert_eq!(keys, [Key::scan(ScanCode::ESC), Key::scan(ScanCode::UP)]);
        // ESC [ left hanging, then time out: Esc and '['.
        let mut keys = Vec::new();
        let mut d = Decoder::new();
        d.feed(0x1b, 0, &mut keys);
        d.feed(b'[', 0, &mut keys);
        d.expire(ESC_TIMEOUT_NS, &mut keys);
        assert_eq!(keys, [Key::scan(ScanCode::ESC), Key::char(u16::from(b'['))]);
    }

    #[test]
    fn unknown_sequences_are_dropped() {
        // Shift+Tab (CSI Z), a mouse-ish private sequence, an unknown SS3.
        assert_eq!(
            decode(b"\x1b[Za\x1b[?1hb\x1bOzc"),
            [Key::char(0x61), Key::char(0x62), Key::char(0x63)]
        );
        assert_eq!(decode(b"\x1b[99~"), []);
        // Overlong parameter strings end the sequence.
        assert_eq!(decode(b"\x1b[1111111111q"), []);
    }

    type Notify = u8;

    #[test]
    fn queue_and_reset() {
        let mut kb: Keyboard<Notify> = Keyboard::new();
        assert!(!kb.key_available());
        assert!(kb.receive(b"ab\x1b", 0).is_empty());
        assert_eq!(kb.pop(), Some(Key::char(0x61)));
        assert!(kb.key_available());
        kb.reset();
        assert!(!kb.key_available());
        assert!(!kb.decoder.pending());
        kb.receive(&[b'x'; QUEUE_CAPACITY + 10], 0);
        assert_eq!((0..).map_while(|_| kb.pop()).count(), QUEUE_CAPACITY);
    }

    #[test]
    fn lone_escape_through_the_keyboard() {
        let mut kb: Keyboard<Notify> = Keyboard::new();
        kb.receive(b"\x1b", 10);
        assert!(!kb.key_available());
        kb.receive(b"", 10 + ESC_TIMEOUT_NS);
        assert_eq!(kb.pop(), Some(Key::scan(ScanCode::ESC)));
    }

    #[test]
    fn set_state() {
        let mut kb: Keyboard<Notify> = Keyboard::new();
        assert_eq!(kb.set_state(TOGGLE_STATE_VALID | CAPS_LOCK_ACTIVE), Ok(()));
        assert_eq!(kb.toggle_state(), TOGGLE_STATE_VALID | CAPS_LOCK_ACTIVE);
        assert_eq!(
            kb.set_state(CAPS_LOCK_ACTIVE),
            Err(InputError::UnsupportedToggleState(CAPS_LOCK_ACTIVE))
        );
        assert_eq!(
            kb.set_state(TOGGLE_STATE_VALID | 0x20),
            Err(InputError::UnsupportedToggleState(0xa0))
        );
        kb.receive(b"q", 0);
        assert_eq!(
            kb.pop()
                .unwrap()
                .key_data(kb.toggle_state())
                .key_state
                .key_toggle_state
                .bits(),
            0x84
        );
    }

    #[test]
    fn idle_read_exposes_the_key_state() {
        // §12.2.3: EFI_NOT_READY still reports KeyState; the toggle state is
        // valid from the start, and follows SetState.
        let mut kb: Keyboard<Notify> = Keyboard::new();
        let idle = kb.idle_key_data();
        assert_eq!((idle.key.scan_code, idle.key.unicode_char), (0, 0));
        assert_eq!(idle.key_state.key_shift_state.bits(), SHIFT_STATE_VALID);
        assert_eq!(idle.key_state.key_toggle_state.bits(), TOGGLE_STATE_VALID);
        let exposed = TOGGLE_STATE_VALID | KEY_STATE_EXPOSED | NUM_LOCK_ACTIVE;
        assert_eq!(kb.set_state(exposed), Ok(()));
        assert_eq!(
            kb.idle_key_data().key_state.key_toggle_state.bits(),
            exposed
        );
        // Keys carry the valid toggle state too.
        kb.receive(b"a", 0);
        let key = kb.pop().unwrap().key_data(kb.toggle_state());
        assert_eq!(key.key_state.key_toggle_state.bits(), exposed);
    }

    fn key_data(scan: u16, unicode: u16, shift: u32) -> KeyData {
        KeyData {
            key: InputKey {
                scan_code: scan,
                unicode_char: unicode,
            },
            key_state: KeyState {
                key_shift_state: KeyShiftState::from_bits_retain(shift),
                key_toggle_state: KeyToggleState::empty(),
            },
        }
    }

    #[test]
    fn key_notifications() {
        let mut kb: Keyboard<Notify> = Keyboard::new();
        let f1 = kb.register(key_data(0x0b, 0, 0), 1).unwrap();
        let ctrl_x = kb
            .register(
                key_data(0, u16::from(b'x'), SHIFT_STATE_VALID | LEFT_CONTROL_PRESSED),
                2,
            )
            .unwrap();
        let plain_x = kb.register(key_data(0, u16::from(b'x'), 0), 3).unwrap();
        assert_ne!(f1, ctrl_x);
        // Same key and function: same handle.
        assert_eq!(kb.register(key_data(0x0b, 0, 0), 1), Ok(f1));

        let calls = kb.receive(b"\x1bOPx\x18", 0);
        let fired: Vec<Notify> = calls.iter().map(|(f, _)| *f).collect();
        // F1 -> 1; 'x' -> 3 (no shift state required); Ctrl+X -> 2 and 3
        // (3 does not state a shift state, so any matches).
        assert_eq!(fired, [1, 3, 2, 3]);
        assert_eq!(calls[0].1.key.scan_code, 0x0b);
        // Keys stay queued for ReadKeyStroke.
        assert_eq!(kb.pop(), Some(Key::scan(ScanCode::function(1))));

        assert_eq!(kb.unregister(plain_x), Ok(()));
        assert_eq!(
            kb.unregister(plain_x),
            Err(InputError::UnknownNotifyHandle(plain_x))
        );
        assert_eq!(
            kb.unregister(KeyNotifyHandle::NULL),
            Err(InputError::UnknownNotifyHandle(KeyNotifyHandle::NULL))
        );
        let fired: Vec<Notify> = kb.receive(b"x", 0).iter().map(|(f, _)| *f).collect();
        assert!(fired.is_empty());
    }
}
