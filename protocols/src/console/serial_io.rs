//! Settings logic of EFI_SERIAL_IO_PROTOCOL (UEFI 2.10 §12.8) for the 16550
//! console UART: it runs at 115200 baud; parity, data bits, stop bits, the
//! receive FIFO, the timeout and the modem-control outputs (with the
//! 16550's MCR loopback) are adjustable, and software loopback keeps
//! written bytes in a FIFO for Read instead of sending them. This module
//! decides and encodes the register values; `firmware.rs` writes them
//! through `platform::serial`.
#![forbid(unsafe_code)]

use core::fmt;

use uefi_raw::Status;

pub const BAUD_RATE: u64 = 115_200;
/// Device defaults (§12.8.4: a 0 argument selects them).
pub const DATA_BITS: u8 = 8;
/// The UART's receive FIFO (16550A).
pub const FIFO_DEPTH: u32 = 16;
/// §12.8: the default timeout is 1,000,000 us.
pub const DEFAULT_TIMEOUT_US: u32 = 1_000_000;
/// edk2 bounds the timeout to 100 s; so do we.
const MAX_TIMEOUT_US: u32 = 100_000_000;

/// EFI_PARITY_TYPE (§12.8.1): 0 is "device default".
pub const PARITY_DEFAULT: u32 = 0;
pub const PARITY_NONE: u32 = 1;
pub const PARITY_EVEN: u32 = 2;
pub const PARITY_ODD: u32 = 3;
pub const PARITY_MARK: u32 = 4;
pub const PARITY_SPACE: u32 = 5;
/// EFI_STOP_BITS_TYPE (§12.8.1): 0 is "device default".
pub const STOP_BITS_DEFAULT: u32 = 0;
pub const ONE_STOP_BIT: u32 = 1;
pub const ONE_FIVE_STOP_BITS: u32 = 2;
pub const TWO_STOP_BITS: u32 = 3;

/// EFI_SERIAL_* control bits (§12.8.6).
pub const DATA_TERMINAL_READY: u32 = 0x0001;
pub const REQUEST_TO_SEND: u32 = 0x0002;
pub const CLEAR_TO_SEND: u32 = 0x0010;
pub const DATA_SET_READY: u32 = 0x0020;
pub const CARRIER_DETECT: u32 = 0x0080;
pub const INPUT_BUFFER_EMPTY: u32 = 0x0100;
pub const OUTPUT_BUFFER_EMPTY: u32 = 0x0200;
pub const HARDWARE_LOOPBACK_ENABLE: u32 = 0x1000;
pub const SOFTWARE_LOOPBACK_ENABLE: u32 = 0x2000;
/// The settable bits we honour: the two modem outputs, the 16550's
/// internal loopback (MCR bit 4) and software loopback ([`LoopbackFifo`]).
/// Hardware flow control is not offered.
pub const SETTABLE: u32 =
    DATA_TERMINAL_READY | REQUEST_TO_SEND | HARDWARE_LOOPBACK_ENABLE | SOFTWARE_LOOPBACK_ENABLE;
/// Everything GetControl can report, for SERIAL_IO_MODE.ControlMask.
pub const CONTROL_MASK: u32 = SETTABLE
    | CLEAR_TO_SEND
    | DATA_SET_READY
    | CARRIER_DETECT
    | INPUT_BUFFER_EMPTY
    | OUTPUT_BUFFER_EMPTY;

// 16550 register bits (PC16550D datasheet).
/// LCR bits 0-1: word length minus 5.
const LCR_WORD_LENGTH_MASK: u8 = 0x03;
/// LCR bit 2: 2 stop bits (1.5 with a 5-bit word).
const LCR_EXTRA_STOP: u8 = 1 << 2;
const LCR_PARITY_ENABLE: u8 = 1 << 3;
const LCR_EVEN_PARITY: u8 = 1 << 4;
const LCR_STICK_PARITY: u8 = 1 << 5;
const MCR_DTR: u8 = 1 << 0;
const MCR_RTS: u8 = 1 << 1;
const MCR_LOOPBACK: u8 = 1 << 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialError {
    BaudRate(u64),
    DataBits(u8),
    Parity(u32),
    StopBits(u32),
    /// A stop-bit setting the 16550 cannot combine with this word length
    /// (1.5 needs 5 data bits; 2 needs 6 or more).
    StopBitsForWord {
        stop_bits: u32,
        data_bits: u8,
    },
    FifoDepth(u32),
    Timeout(u32),
    ControlBits(u32),
}

impl SerialError {
    pub fn status(&self) -> Status {
        match self {
            SerialError::ControlBits(_) => Status::UNSUPPORTED,
            _ => Status::INVALID_PARAMETER,
        }
    }
}

impl fmt::Display for SerialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerialError::BaudRate(v) => write!(f, "baud rate {v} (only {BAUD_RATE})"),
            SerialError::DataBits(v) => write!(f, "{v} data bits (5 to 8)"),
            SerialError::Parity(v) => write!(f, "parity type {v}"),
            SerialError::StopBits(v) => write!(f, "stop bits type {v}"),
            SerialError::StopBitsForWord {
                stop_bits,
                data_bits,
            } => write!(f, "stop bits type {stop_bits} with {data_bits} data bits"),
            SerialError::FifoDepth(v) => write!(f, "receive FIFO depth {v} (at most {FIFO_DEPTH})"),
            SerialError::Timeout(v) => write!(f, "timeout {v} us"),
            SerialError::ControlBits(v) => write!(f, "control bits {v:#x}"),
        }
    }
}

/// The adjustable state, mirrored into SERIAL_IO_MODE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub timeout_us: u32,
    pub control: u32,
    pub receive_fifo_depth: u32,
    /// EFI_PARITY_TYPE, never the 0 default.
    pub parity: u32,
    pub data_bits: u8,
    /// EFI_STOP_BITS_TYPE, never the 0 default.
    pub stop_bits: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

impl Settings {
    /// The device defaults: 115200 8N1, 16-byte FIFO, DTR and RTS on.
    pub const fn new() -> Self {
        Settings {
            timeout_us: DEFAULT_TIMEOUT_US,
            control: DATA_TERMINAL_READY | REQUEST_TO_SEND,
            receive_fifo_depth: FIFO_DEPTH,
            parity: PARITY_NONE,
            data_bits: DATA_BITS,
            stop_bits: ONE_STOP_BIT,
        }
    }

    /// SetAttributes (§12.8.4): zero means "device default" for every
    /// field. Checks everything before changing anything.
    pub fn set_attributes(
        &mut self,
        baud_rate: u64,
        fifo_depth: u32,
        timeout_us: u32,
        parity: u32,
        data_bits: u8,
        stop_bits: u32,
    ) -> Result<(), SerialError> {
        if baud_rate != 0 && baud_rate != BAUD_RATE {
            return Err(SerialError::BaudRate(baud_rate));
        }
        if fifo_depth > FIFO_DEPTH {
            return Err(SerialError::FifoDepth(fifo_depth));
        }
        if timeout_us > MAX_TIMEOUT_US {
            return Err(SerialError::Timeout(timeout_us));
        }
        let parity = match parity {
            PARITY_DEFAULT => PARITY_NONE,
            PARITY_NONE..=PARITY_SPACE => parity,
            _ => return Err(SerialError::Parity(parity)),
        };
        let data_bits = match data_bits {
            0 => DATA_BITS,
            5..=8 => data_bits,
            _ => return Err(SerialError::DataBits(data_bits)),
        };
        let stop_bits = match stop_bits {
            STOP_BITS_DEFAULT => ONE_STOP_BIT,
            ONE_STOP_BIT..=TWO_STOP_BITS => stop_bits,
            _ => return Err(SerialError::StopBits(stop_bits)),
        };
        // One LCR bit selects the extra stop bit: 1.5 for 5-bit words, 2
        // otherwise (PC16550D, LCR bit 2).
        let combinable = match stop_bits {
            ONE_FIVE_STOP_BITS => data_bits == 5,
            TWO_STOP_BITS => data_bits > 5,
            _ => true,
        };
        if !combinable {
            return Err(SerialError::StopBitsForWord {
                stop_bits,
                data_bits,
            });
        }
        self.timeout_us = if timeout_us == 0 {
            DEFAULT_TIMEOUT_US
        } else {
            timeout_us
        };
        self.receive_fifo_depth = if fifo_depth == 0 {
            FIFO_DEPTH
        } else {
            fifo_depth
        };
        self.parity = parity;
        self.data_bits = data_bits;
        self.stop_bits = stop_bits;
        Ok(())
    }

    /// The line control register for these settings (DLAB clear).
    pub fn line_control(&self) -> u8 {
        let word = (self.data_bits.saturating_sub(5)) & LCR_WORD_LENGTH_MASK;
        let stop = if self.stop_bits == ONE_STOP_BIT {
            0
        } else {
            LCR_EXTRA_STOP
        };
        let parity = match self.parity {
            PARITY_EVEN => LCR_PARITY_ENABLE | LCR_EVEN_PARITY,
            PARITY_ODD => LCR_PARITY_ENABLE,
            // Stick parity: the bit is the inverse of the even-parity
            // select, so odd-select sends 1 (mark), even-select 0 (space).
            PARITY_MARK => LCR_PARITY_ENABLE | LCR_STICK_PARITY,
            PARITY_SPACE => LCR_PARITY_ENABLE | LCR_EVEN_PARITY | LCR_STICK_PARITY,
            _ => 0,
        };
        word | stop | parity
    }

    /// Whether the receive FIFO is on: a depth of 1 is the 16550's
    /// FIFO-less (16450) mode, anything more the 16-byte FIFO.
    pub fn fifo_enabled(&self) -> bool {
        self.receive_fifo_depth > 1
    }

    /// SetControl (§12.8.5).
    pub fn set_control(&mut self, bits: u32) -> Result<(), SerialError> {
        if bits & !SETTABLE != 0 {
            return Err(SerialError::ControlBits(bits));
        }
        self.control = bits;
        Ok(())
    }

    /// The modem control register for the settable bits.
    pub fn modem_control(&self) -> u8 {
        let mut mcr = 0;
        if self.control & DATA_TERMINAL_READY != 0 {
            mcr |= MCR_DTR;
        }
        if self.control & REQUEST_TO_SEND != 0 {
            mcr |= MCR_RTS;
        }
        if self.control & HARDWARE_LOOPBACK_ENABLE != 0 {
            mcr |= MCR_LOOPBACK;
        }
        mcr
    }

    /// Whether Write and Read go through the [`LoopbackFifo`] (§12.8.5
    /// EFI_SERIAL_SOFTWARE_LOOPBACK_ENABLE) instead of the UART.
    pub fn software_loopback(&self) -> bool {
        self.control & SOFTWARE_LOOPBACK_ENABLE != 0
    }

    /// GetControl (§12.8.6): a VMM's line is always connected and writes
    /// complete synchronously.
    pub fn control(&self, input_empty: bool) -> u32 {
        let mut bits =
            self.control | CLEAR_TO_SEND | DATA_SET_READY | CARRIER_DETECT | OUTPUT_BUFFER_EMPTY;
        if input_empty {
            bits |= INPUT_BUFFER_EMPTY;
        }
        bits
    }
}

/// The bytes written while software loopback is on, waiting for Read: as
/// deep as the UART's receive FIFO, which is what a byte written in
/// loopback mode would land in on hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopbackFifo {
    bytes: [u8; FIFO_DEPTH as usize],
    head: usize,
    len: usize,
}

impl Default for LoopbackFifo {
    fn default() -> Self {
        Self::new()
    }
}

impl LoopbackFifo {
    pub const fn new() -> Self {
        LoopbackFifo {
            bytes: [0; FIFO_DEPTH as usize],
            head: 0,
            len: 0,
        }
    }

    /// Queues `byte`; false when the FIFO is full (Write then stops short
    /// with EFI_TIMEOUT, as a UART whose FIFO never drains would).
    pub fn push(&mut self, byte: u8) -> bool {
        if self.len == self.bytes.len() {
            return false;
        }
        self.bytes[(self.head + self.len) % self.bytes.len()] = byte;
        self.len += 1;
        true
    }

    pub fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let byte = self.bytes[self.head];
        self.head = (self.head + 1) % self.bytes.len();
        self.len -= 1;
        Some(byte)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        *self = Self::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_loopback_fifo_keeps_order_and_depth() {
        let mut s = Settings::new();
        assert!(!s.software_loopback());
        assert_eq!(s.set_control(SOFTWARE_LOOPBACK_ENABLE), Ok(()));
        assert!(s.software_loopback());
        assert_eq!(s.modem_control(), 0, "no UART bit for software loopback");
        let mut fifo = LoopbackFifo::new();
        assert!(fifo.is_empty());
        assert_eq!(fifo.pop(), None);
        for b in 0..FIFO_DEPTH as u8 {
            assert!(fifo.push(b));
        }
        assert!(!fifo.push(0xff), "full at the receive FIFO's depth");
        assert_eq!(fifo.pop(), Some(0));
        assert!(fifo.push(0x5a), "room again after a read, wrapping around");
        for b in 1..FIFO_DEPTH as u8 {
            assert_eq!(fifo.pop(), Some(b));
        }
        assert_eq!(fifo.pop(), Some(0x5a));
        assert!(fifo.is_empty());
        fifo.push(1);
        fifo.clear();
        assert_eq!(fifo.pop(), None);
    }

    #[test]
    fn attributes() {
        let mut s = Settings::new();
        assert_eq!(s.set_attributes(0, 0, 0, 0, 0, 0), Ok(()));
        assert_eq!(s, Settings::new());
        assert_eq!(s.set_attributes(115_200, 1, 5000, 1, 8, 1), Ok(()));
        assert_eq!((s.timeout_us, s.receive_fifo_depth), (5000, 1));
        assert!(!s.fifo_enabled());
        assert_eq!(
            s.set_attributes(9600, 0, 0, 0, 0, 0),
            Err(SerialError::BaudRate(9600))
        );
        assert_eq!(
            s.set_attributes(0, 0, 0, 6, 0, 0),
            Err(SerialError::Parity(6))
        );
        assert_eq!(
            s.set_attributes(0, 0, 0, 0, 4, 0),
            Err(SerialError::DataBits(4))
        );
        assert_eq!(
            s.set_attributes(0, 0, 0, 0, 9, 0),
            Err(SerialError::DataBits(9))
        );
        assert_eq!(
            s.set_attributes(0, 0, 0, 0, 0, 4),
            Err(SerialError::StopBits(4))
        );
        assert_eq!(
            s.set_attributes(0, 0, 0, 0, 8, ONE_FIVE_STOP_BITS),
            Err(SerialError::StopBitsForWord {
                stop_bits: 2,
                data_bits: 8
            })
        );
        assert_eq!(
            s.set_attributes(0, 0, 0, 0, 5, TWO_STOP_BITS),
            Err(SerialError::StopBitsForWord {
                stop_bits: 3,
                data_bits: 5
            })
        );
        assert_eq!(
            s.set_attributes(0, 64, 0, 0, 0, 0),
            Err(SerialError::FifoDepth(64))
        );
        assert_eq!(
            s.set_attributes(0, 0, 100_000_001, 0, 0, 0),
            Err(SerialError::Timeout(100_000_001))
        );
        assert_eq!(SerialError::Parity(6).status(), Status::INVALID_PARAMETER);
        // Failed calls leave the settings alone.
        assert_eq!((s.timeout_us, s.receive_fifo_depth), (5000, 1));
        // Every standard setting is taken and reported back.
        for parity in PARITY_NONE..=PARITY_SPACE {
            assert_eq!(s.set_attributes(0, 0, 0, parity, 0, 0), Ok(()));
            assert_eq!(s.parity, parity);
        }
        for data_bits in 5..=8 {
            assert_eq!(s.set_attributes(0, 0, 0, 0, data_bits, 0), Ok(()));
            assert_eq!(s.data_bits, data_bits);
        }
        assert_eq!(s.set_attributes(0, 0, 0, 0, 7, TWO_STOP_BITS), Ok(()));
        assert_eq!(s.stop_bits, TWO_STOP_BITS);
        assert_eq!(s.set_attributes(0, 0, 0, 0, 5, ONE_FIVE_STOP_BITS), Ok(()));
        assert_eq!(s.stop_bits, ONE_FIVE_STOP_BITS);
        // Zeroes restore the defaults.
        assert_eq!(s.set_attributes(0, 0, 0, 0, 0, 0), Ok(()));
        assert_eq!(s, Settings::new());
    }

    #[test]
    fn line_control_encoding() {
        let lcr = |parity, data_bits, stop_bits| {
            let mut s = Settings::new();
            s.set_attributes(0, 0, 0, parity, data_bits, stop_bits)
                .unwrap();
            s.line_control()
        };
        // 8N1, the value `platform::serial::init` programs.
        assert_eq!(Settings::new().line_control(), 0x03);
        assert_eq!(lcr(PARITY_EVEN, 7, ONE_STOP_BIT), 0x1a);
        assert_eq!(lcr(PARITY_ODD, 7, ONE_STOP_BIT), 0x0a);
        assert_eq!(lcr(PARITY_MARK, 8, ONE_STOP_BIT), 0x2b);
        assert_eq!(lcr(PARITY_SPACE, 8, ONE_STOP_BIT), 0x3b);
        assert_eq!(lcr(PARITY_NONE, 8, TWO_STOP_BITS), 0x07);
        assert_eq!(lcr(PARITY_NONE, 5, ONE_FIVE_STOP_BITS), 0x04);
        assert_eq!(lcr(PARITY_NONE, 6, ONE_STOP_BIT), 0x01);
        // Never the divisor latch bit.
        for parity in PARITY_NONE..=PARITY_SPACE {
            assert_eq!(lcr(parity, 8, TWO_STOP_BITS) & 0x80, 0);
        }
    }

    #[test]
    fn control_bits() {
        let mut s = Settings::new();
        assert_eq!(s.set_control(DATA_TERMINAL_READY), Ok(()));
        assert_eq!(
            s.control(true),
            DATA_TERMINAL_READY | 0x10 | 0x20 | 0x80 | 0x100 | 0x200
        );
        assert_eq!(s.control(false) & INPUT_BUFFER_EMPTY, 0);
        assert_eq!(s.modem_control(), 0x01);
        // The 16550's loopback (MCR bit 4) is offered and reported.
        assert_eq!(
            s.set_control(HARDWARE_LOOPBACK_ENABLE | REQUEST_TO_SEND),
            Ok(())
        );
        assert_eq!(s.modem_control(), 0x12);
        assert_ne!(s.control(true) & HARDWARE_LOOPBACK_ENABLE, 0);
        assert_eq!(Settings::new().modem_control(), 0x03);
        // Hardware flow control (EFI_SERIAL_HARDWARE_FLOW_CONTROL_ENABLE)
        // is not.
        assert_eq!(s.set_control(0x4000), Err(SerialError::ControlBits(0x4000)));
        assert_eq!(
            SerialError::ControlBits(0x4000).status(),
            Status::UNSUPPORTED
        );
    }
}
