//! The serial console as EFI text protocols (UEFI 2.10 §12): ConOut renders
//! EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL calls as UTF-8 and ANSI/VT100 escapes,
//! ConIn/ConInEx decode the terminal's key sequences, and the same handle
//! carries EFI_SERIAL_IO_PROTOCOL and a `VenHw/Uart/VenUtf8` device path.
//!
//! [`text`], [`input`], [`serial_io`] and [`device_path`] hold the logic
//! (no `unsafe`, host-tested); `firmware` is the thin `extern "efiapi"`
//! layer over `platform::serial`.

pub mod device_path;
mod firmware;
pub mod input;
pub mod serial_io;
pub mod text;

pub use firmware::{ConsoleHandles, clear, install, read_key, wait_events, write_text};
