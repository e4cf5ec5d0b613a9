//! 16550 UART at COM1 (0x3F8), the console on QEMU and Cloud Hypervisor.
//!
//! Hand-written on `x86_64` ports rather than the `uart_16550` crate: the
//! console polls the line status once per 16-byte FIFO load (every port
//! access is a VM exit). It runs at 115200 8N1 unless EFI_SERIAL_IO's
//! SetAttributes/SetControl (UEFI 2.10 §12.8) change the line format, the
//! FIFO or the modem outputs, through the setters below.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};
use x86_64::instructions::port::{PortReadOnly, PortWriteOnly};

const COM1: u16 = 0x3F8;

// Register offsets from the base port (PC16550D datasheet).
const DATA: u16 = 0;
const INTERRUPT_ENABLE: u16 = 1;
const FIFO_CONTROL: u16 = 2;
const LINE_CONTROL: u16 = 3;
const MODEM_CONTROL: u16 = 4;
const LINE_STATUS: u16 = 5;

const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// Writes a UART register at `offset` from COM1.
fn write_register(offset: u16, value: u8) {
    // SAFETY: COM1's registers (0x3F8..0x3FF) belong to this driver; writing
    // them changes the UART's state and nothing in memory.
    unsafe { PortWriteOnly::<u8>::new(COM1 + offset).write(value) }
}

/// Reads a UART register at `offset` from COM1.
fn read_register(offset: u16) -> u8 {
    // SAFETY: as for `write_register`; reading DATA consumes a received byte,
    // which only this driver does.
    unsafe { PortReadOnly::<u8>::new(COM1 + offset).read() }
}

/// LCR bit 7: the divisor latch is mapped at DATA/INTERRUPT_ENABLE.
const LCR_DIVISOR_LATCH: u8 = 0x80;
/// FCR: FIFOs on, both cleared, receive trigger at 14 bytes.
const FCR_FIFOS_ON: u8 = 0xC7;

/// Programs 115200 8N1 with FIFOs on, interrupts off.
pub fn init() {
    write_register(INTERRUPT_ENABLE, 0);
    write_register(LINE_CONTROL, LCR_DIVISOR_LATCH);
    write_register(DATA, 1); // 115200 baud
    write_register(INTERRUPT_ENABLE, 0);
    write_register(LINE_CONTROL, 0x03); // 8N1
    set_fifo_enabled(true);
    write_register(MODEM_CONTROL, 0x03); // DTR, RTS
}

/// Sets the line format (word length, stop bits, parity: LCR bits 0-5).
/// The divisor latch bit is never set here, so the baud rate stays.
pub fn set_line_control(value: u8) {
    write_register(LINE_CONTROL, value & !LCR_DIVISOR_LATCH);
}

/// Sets the modem control outputs (DTR bit 0, RTS bit 1, loopback bit 4).
pub fn set_modem_control(value: u8) {
    write_register(MODEM_CONTROL, value);
}

/// Turns the 16-byte FIFOs on (cleared) or off (16450 mode, one byte in
/// each direction); the transmitter then writes one byte per poll.
pub fn set_fifo_enabled(enabled: bool) {
    let (fcr, burst) = if enabled {
        (FCR_FIFOS_ON, TX_FIFO_BYTES)
    } else {
        (0, 1)
    };
    write_register(FIFO_CONTROL, fcr);
    TX_BURST.store(burst, Ordering::Relaxed);
}

/// Transmit FIFO depth of the 16550 (PC16550D datasheet): with FIFOs on,
/// THR empty means this many bytes may be written without polling again.
const TX_FIFO_BYTES: usize = 16;
/// Bytes per THR-empty poll: the FIFO depth, or 1 with FIFOs off.
static TX_BURST: AtomicUsize = AtomicUsize::new(TX_FIFO_BYTES);

/// Waits until the transmitter can take a byte (with FIFOs on: the whole
/// FIFO is free).
fn wait_transmitter_empty() {
    // A VMM's UART is always ready; the bound keeps a wedged one from hanging us.
    for _ in 0..100_000 {
        if read_register(LINE_STATUS) & LSR_THR_EMPTY != 0 {
            break;
        }
    }
}

/// Feeds the transmitter, polling the line status once per FIFO load
/// instead of once per byte: every port access traps to the VMM.
struct Transmitter {
    room: usize,
}

impl Transmitter {
    fn put(&mut self, byte: u8) {
        if self.room == 0 {
            wait_transmitter_empty();
            self.room = TX_BURST.load(Ordering::Relaxed);
        }
        write_register(DATA, byte);
        self.room -= 1;
    }
}

/// Writes `bytes` as they are.
pub fn write_raw(bytes: &[u8]) {
    let mut tx = Transmitter { room: 0 };
    for &b in bytes {
        tx.put(b);
    }
}

/// Writes `bytes` with LF sent as CR LF.
pub fn write_bytes(bytes: &[u8]) {
    let mut tx = Transmitter { room: 0 };
    for &b in bytes {
        if b == b'\n' {
            tx.put(b'\r');
        }
        tx.put(b);
    }
}

/// A byte from the receive FIFO, if one is waiting.
pub fn try_read_byte() -> Option<u8> {
    (read_register(LINE_STATUS) & LSR_DATA_READY != 0).then(|| read_register(DATA))
}

/// `fmt::Write` sink for the serial port.
pub struct Serial;

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Boot-progress code on the debug port 0x80 (Cloud Hypervisor timestamps
/// writes there; on QEMU it is a no-op).
pub fn progress(code: u8) {
    // SAFETY: port 0x80 is the POST/debug port; nothing decodes it as memory.
    unsafe { PortWriteOnly::<u8>::new(0x80).write(code) }
}
