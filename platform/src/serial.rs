//! 16550 UART at COM1 (0x3F8), the console on QEMU and Cloud Hypervisor.

use crate::io::Port;
use core::fmt;

const COM1: Port = Port(0x3F8);

// Register offsets from the base port (PC16550D datasheet).
const DATA: u16 = 0;
const INTERRUPT_ENABLE: u16 = 1;
const FIFO_CONTROL: u16 = 2;
const LINE_CONTROL: u16 = 3;
const MODEM_CONTROL: u16 = 4;
const LINE_STATUS: u16 = 5;

const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// Programs 115200 8N1 with FIFOs on, interrupts off.
pub fn init() {
    COM1.offset(INTERRUPT_ENABLE).write_u8(0);
    COM1.offset(LINE_CONTROL).write_u8(0x80); // DLAB to set the divisor
    COM1.offset(DATA).write_u8(1); // 115200 baud
    COM1.offset(INTERRUPT_ENABLE).write_u8(0);
    COM1.offset(LINE_CONTROL).write_u8(0x03); // 8N1
    COM1.offset(FIFO_CONTROL).write_u8(0xC7); // enable + clear FIFOs
    COM1.offset(MODEM_CONTROL).write_u8(0x03); // DTR, RTS
}

/// Transmit FIFO depth of the 16550 (PC16550D datasheet): with FIFOs on,
/// THR empty means this many bytes may be written without polling again.
const TX_FIFO_BYTES: usize = 16;

/// Waits until the transmitter can take a byte (with FIFOs on: the whole
/// FIFO is free).
fn wait_transmitter_empty() {
    // A VMM's UART is always ready; the bound keeps a wedged one from hanging us.
    for _ in 0..100_000 {
        if COM1.offset(LINE_STATUS).read_u8() & LSR_THR_EMPTY != 0 {
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
            self.room = TX_FIFO_BYTES;
        }
        COM1.offset(DATA).write_u8(byte);
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
    (COM1.offset(LINE_STATUS).read_u8() & LSR_DATA_READY != 0).then(|| COM1.offset(DATA).read_u8())
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
    Port(0x80).write_u8(code);
}
