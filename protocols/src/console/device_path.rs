//! Device path of the console handle (UEFI 2.10 §10.3):
//! `VenHw(<CONSOLE_VENDOR_GUID>)/Uart(115200,8,N,1)/VenUtf8()`. The terminal
//! node is VT-UTF8 rather than edk2's usual VT100 because OutputString sends
//! UTF-8 (§10.3.4, UART and Vendor-Defined Messaging nodes).
#![forbid(unsafe_code)]

use uefi_raw::protocol::device_path::{DeviceSubType, DeviceType};
use uefi_raw::{Guid, guid};

/// Identifies our UART as the root of the console path (VenHw node).
pub const CONSOLE_VENDOR_GUID: Guid = guid!("eb9f7613-5de3-4336-bde5-3ce64aa3242c");

/// DEVICE_PATH_MESSAGING_VT_UTF8, a terminal-type vendor GUID (§10.3.4).
pub const VT_UTF8_GUID: Guid = guid!("ad15a0d6-8bec-4acf-a073-d01de77e2d88");

const HARDWARE: u8 = DeviceType::HARDWARE.0;
const HARDWARE_VENDOR: u8 = DeviceSubType::HARDWARE_VENDOR.0;
const MESSAGING: u8 = DeviceType::MESSAGING.0;
const MESSAGING_UART: u8 = DeviceSubType::MESSAGING_UART.0;
const MESSAGING_VENDOR: u8 = DeviceSubType::MESSAGING_VENDOR.0;
const END: u8 = DeviceType::END.0;
const END_ENTIRE: u8 = DeviceSubType::END_ENTIRE.0;

const VENDOR_LEN: usize = 4 + 16;
/// Header, reserved u32, baud rate u64, data bits, parity, stop bits.
const UART_LEN: usize = 4 + 4 + 8 + 3;
const END_LEN: usize = 4;
pub const CONSOLE_PATH_LEN: usize = VENDOR_LEN + UART_LEN + VENDOR_LEN + END_LEN;

pub const BAUD_RATE: u64 = 115_200;
pub const DATA_BITS: u8 = 8;
/// UART node encodings: parity 1 = none, stop bits 1 = one.
const PARITY_NONE: u8 = 1;
const ONE_STOP_BIT: u8 = 1;

const fn put(path: &mut [u8; CONSOLE_PATH_LEN], at: usize, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        path[at + i] = bytes[i];
        i += 1;
    }
}

const fn header(path: &mut [u8; CONSOLE_PATH_LEN], at: usize, kind: u8, sub_type: u8, len: usize) {
    put(path, at, &[kind, sub_type, len as u8, (len >> 8) as u8]);
}

const fn build() -> [u8; CONSOLE_PATH_LEN] {
    let mut path = [0u8; CONSOLE_PATH_LEN];
    let mut at = 0;
    header(&mut path, at, HARDWARE, HARDWARE_VENDOR, VENDOR_LEN);
    put(&mut path, at + 4, &CONSOLE_VENDOR_GUID.to_bytes());
    at += VENDOR_LEN;
    header(&mut path, at, MESSAGING, MESSAGING_UART, UART_LEN);
    put(&mut path, at + 8, &BAUD_RATE.to_le_bytes());
    put(&mut path, at + 16, &[DATA_BITS, PARITY_NONE, ONE_STOP_BIT]);
    at += UART_LEN;
    header(&mut path, at, MESSAGING, MESSAGING_VENDOR, VENDOR_LEN);
    put(&mut path, at + 4, &VT_UTF8_GUID.to_bytes());
    at += VENDOR_LEN;
    header(&mut path, at, END, END_ENTIRE, END_LEN);
    path
}

/// The packed device path bytes, in the firmware image.
pub static CONSOLE_DEVICE_PATH: [u8; CONSOLE_PATH_LEN] = build();

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the nodes as a consumer would: (type, subtype, body).
    fn nodes(mut path: &[u8]) -> Vec<(u8, u8, &[u8])> {
        let mut out = Vec::new();
        while path.len() >= 4 {
            let len = usize::from(u16::from_le_bytes([path[2], path[3]]));
            assert!(len >= 4 && len <= path.len());
            out.push((path[0], path[1], &path[4..len]));
            path = &path[len..];
        }
        assert!(path.is_empty());
        out
    }

    #[test]
    fn console_path_layout() {
        let n = nodes(&CONSOLE_DEVICE_PATH);
        assert_eq!(n.len(), 4);
        assert_eq!((n[0].0, n[0].1), (1, 4));
        assert_eq!(n[0].2, &CONSOLE_VENDOR_GUID.to_bytes());
        assert_eq!((n[1].0, n[1].1, n[1].2.len()), (3, 14, 15));
        assert_eq!(&n[1].2[..4], &[0; 4]);
        assert_eq!(
            u64::from_le_bytes(n[1].2[4..12].try_into().unwrap()),
            115_200
        );
        assert_eq!(&n[1].2[12..], &[8, 1, 1]);
        assert_eq!((n[2].0, n[2].1), (3, 10));
        // GUID fields are little-endian in memory (Appendix A).
        assert_eq!(&n[2].2[..4], &[0xd6, 0xa0, 0x15, 0xad]);
        assert_eq!((n[3].0, n[3].1, n[3].2.len()), (0x7f, 0xff, 0));
    }
}
