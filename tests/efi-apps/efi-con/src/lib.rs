//! Console output on the system table's ConOut (UEFI 2.10 §12.4 Simple Text Output),
//! shared by the test applications, and the little else they share ([`time`]).
#![no_std]

pub mod time;

use core::fmt::{self, Write};

use r_efi::protocols::simple_text_output;

/// Prints formatted text on `con_out`, `\n` becoming CRLF. Output errors have nowhere else
/// to go, so they are dropped.
pub fn print(con_out: *mut simple_text_output::Protocol, args: fmt::Arguments) {
    let mut writer = Writer {
        con_out,
        buf: [0; 128],
        len: 0,
    };
    let _ = writer.write_fmt(args);
    writer.flush();
}

/// Buffers UCS-2 code units and hands them to OutputString in NUL-terminated batches.
struct Writer {
    con_out: *mut simple_text_output::Protocol,
    buf: [u16; 128],
    len: usize,
}

impl Writer {
    fn push(&mut self, unit: u16) {
        // Keep one slot for the terminating NUL.
        if self.len + 1 >= self.buf.len() {
            self.flush();
        }
        self.buf[self.len] = unit;
        self.len += 1;
    }

    fn flush(&mut self) {
        if self.len > 0 && !self.con_out.is_null() {
            self.buf[self.len] = 0;
            // SAFETY: `con_out` is the system table's non-null ConOut, valid while boot
            // services run; `buf` is NUL-terminated as OutputString requires (§12.4.3).
            let output_string = unsafe { (*self.con_out).output_string };
            let _ = output_string(self.con_out, self.buf.as_mut_ptr());
        }
        self.len = 0;
    }
}

impl Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '\n' {
                self.push(u16::from(b'\r'));
            }
            // ConOut takes UCS-2 only (UEFI 2.10 §12.4); anything outside the BMP becomes '?'.
            self.push(u16::try_from(u32::from(c)).unwrap_or(u16::from(b'?')));
        }
        Ok(())
    }
}

/// Encodes an ASCII literal as a NUL-terminated UCS-2 array (EFI file names, §13.5).
pub const fn ucs2<const N: usize>(s: &str) -> [u16; N] {
    let bytes = s.as_bytes();
    assert!(bytes.len() < N, "no room for the NUL terminator");
    let mut out = [0u16; N];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i] as u16;
        i += 1;
    }
    out
}
