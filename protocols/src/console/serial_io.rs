//! Settings logic of EFI_SERIAL_IO_PROTOCOL (UEFI 2.10 §12.8) for the fixed
//! 16550 console UART: it runs at 115200 8N1 and only the timeout and the
//! modem-control outputs are adjustable.
#![forbid(unsafe_code)]

use core::fmt;

use uefi_raw::Status;

pub const BAUD_RATE: u64 = 115_200;
pub const DATA_BITS: u8 = 8;
/// The UART's receive FIFO (16550A).
pub const FIFO_DEPTH: u32 = 16;
/// §12.8: the default timeout is 1,000,000 us.
pub const DEFAULT_TIMEOUT_US: u32 = 1_000_000;
/// edk2 bounds the timeout to 100 s; so do we.
const MAX_TIMEOUT_US: u32 = 100_000_000;
/// EFI_PARITY_TYPE and EFI_STOP_BITS_TYPE: 0 is "device default", 1 is
/// NoParity / OneStopBit.
const DEFAULT: u32 = 0;
const PARITY_NONE: u32 = 1;
const ONE_STOP_BIT: u32 = 1;

/// EFI_SERIAL_* control bits (§12.8.6).
pub const DATA_TERMINAL_READY: u32 = 0x0001;
pub const REQUEST_TO_SEND: u32 = 0x0002;
pub const CLEAR_TO_SEND: u32 = 0x0010;
pub const DATA_SET_READY: u32 = 0x0020;
pub const CARRIER_DETECT: u32 = 0x0080;
pub const INPUT_BUFFER_EMPTY: u32 = 0x0100;
pub const OUTPUT_BUFFER_EMPTY: u32 = 0x0200;
/// The settable bits we honour; loopback and flow control are not offered.
pub const SETTABLE: u32 = DATA_TERMINAL_READY | REQUEST_TO_SEND;
/// Everything GetControl can report, for SERIAL_IO_MODE.ControlMask.
pub const CONTROL_MASK: u32 = SETTABLE
    | CLEAR_TO_SEND
    | DATA_SET_READY
    | CARRIER_DETECT
    | INPUT_BUFFER_EMPTY
    | OUTPUT_BUFFER_EMPTY;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialError {
    BaudRate(u64),
    DataBits(u8),
    Parity(u32),
    StopBits(u32),
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
            SerialError::DataBits(v) => write!(f, "{v} data bits (only {DATA_BITS})"),
            SerialError::Parity(v) => write!(f, "parity {v} (only none)"),
            SerialError::StopBits(v) => write!(f, "stop bits type {v} (only one)"),
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
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

impl Settings {
    pub const fn new() -> Self {
        Settings {
            timeout_us: DEFAULT_TIMEOUT_US,
            control: DATA_TERMINAL_READY | REQUEST_TO_SEND,
        }
    }

    /// SetAttributes (§12.8.4): zero means "default" for every field; the
    /// line settings must be the ones the UART runs at.
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
        if parity != DEFAULT && parity != PARITY_NONE {
            return Err(SerialError::Parity(parity));
        }
        if data_bits != 0 && data_bits != DATA_BITS {
            return Err(SerialError::DataBits(data_bits));
        }
        if stop_bits != DEFAULT && stop_bits != ONE_STOP_BIT {
            return Err(SerialError::StopBits(stop_bits));
        }
        self.timeout_us = if timeout_us == 0 {
            DEFAULT_TIMEOUT_US
        } else {
            timeout_us
        };
        Ok(())
    }

    /// SetControl (§12.8.5).
    pub fn set_control(&mut self, bits: u32) -> Result<(), SerialError> {
        if bits & !SETTABLE != 0 {
            return Err(SerialError::ControlBits(bits));
        }
        self.control = bits;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        let mut s = Settings::new();
        assert_eq!(s.set_attributes(0, 0, 0, 0, 0, 0), Ok(()));
        assert_eq!(s.timeout_us, DEFAULT_TIMEOUT_US);
        assert_eq!(s.set_attributes(115_200, 16, 5000, 1, 8, 1), Ok(()));
        assert_eq!(s.timeout_us, 5000);
        assert_eq!(
            s.set_attributes(9600, 0, 0, 0, 0, 0),
            Err(SerialError::BaudRate(9600))
        );
        assert_eq!(
            s.set_attributes(0, 0, 0, 2, 0, 0),
            Err(SerialError::Parity(2))
        );
        assert_eq!(
            s.set_attributes(0, 0, 0, 0, 7, 0),
            Err(SerialError::DataBits(7))
        );
        assert_eq!(
            s.set_attributes(0, 0, 0, 0, 0, 3),
            Err(SerialError::StopBits(3))
        );
        assert_eq!(
            s.set_attributes(0, 64, 0, 0, 0, 0),
            Err(SerialError::FifoDepth(64))
        );
        assert_eq!(
            s.set_attributes(0, 0, 100_000_001, 0, 0, 0),
            Err(SerialError::Timeout(100_000_001))
        );
        assert_eq!(SerialError::Parity(2).status(), Status::INVALID_PARAMETER);
        // Failed calls leave the settings alone.
        assert_eq!(s.timeout_us, 5000);
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
        // Hardware loopback is not offered.
        assert_eq!(s.set_control(0x1000), Err(SerialError::ControlBits(0x1000)));
        assert_eq!(
            SerialError::ControlBits(0x1000).status(),
            Status::UNSUPPORTED
        );
    }
}
