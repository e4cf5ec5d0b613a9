//! TFTP (RFC 1350) reads with the block size and transfer size options
//! (RFC 2347 option negotiation, RFC 2348 `blksize`, RFC 2349 `tsize`): the
//! packets and the download's state machine, over byte slices. The UDP
//! exchange that drives it is in `tftp_client`.
//!
//! Block numbers are 16 bits; a file of more than 65535 blocks (a 100 MB
//! image at 1468-byte blocks) rolls over to 0, as tftp-hpa, dnsmasq and
//! QEMU's server do.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The well-known server port (RFC 1350 §4).
pub const SERVER_PORT: u16 = 69;
/// The block size without the option (RFC 1350).
pub const DEFAULT_BLOCK_SIZE: u16 = 512;
/// The largest block that fits an Ethernet frame: 1500 - 20 (IPv4) - 8 (UDP)
/// - 4 (TFTP header), as RFC 2348 suggests for Ethernet.
pub const ETHERNET_BLOCK_SIZE: u16 = 1468;

mod opcode {
    pub const READ_REQUEST: u16 = 1;
    pub const DATA: u16 = 3;
    pub const ACK: u16 = 4;
    pub const ERROR: u16 = 5;
    pub const OPTION_ACK: u16 = 6;
}

/// Error code 8 (RFC 2347): the client ends a transfer after the option
/// acknowledgement, e.g. when it only wanted the size.
pub const ERROR_OPTION_REFUSED: u16 = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TftpError {
    /// The server answered with an ERROR packet.
    Server { code: u16, message: String },
    /// A packet that is no TFTP reply to a read: wrong opcode, too short, an
    /// option acknowledgement with options we did not ask for or values out
    /// of range, a data block larger than negotiated.
    Malformed(&'static str),
}

impl fmt::Display for TftpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TftpError::Server { code, message } => {
                write!(f, "server error {code}: {message}")
            }
            TftpError::Malformed(what) => write!(f, "malformed reply: {what}"),
        }
    }
}

/// A read request (RFC 1350 §5, octet mode) for `file`, asking for
/// `block_size` when it is not the default and for the size when
/// `ask_size` (RFC 2349: `tsize` 0 in a read request).
pub fn read_request(file: &str, block_size: u16, ask_size: bool) -> Vec<u8> {
    let mut packet = Vec::with_capacity(file.len() + 32);
    packet.extend_from_slice(&opcode::READ_REQUEST.to_be_bytes());
    for field in [file, "octet"] {
        packet.extend_from_slice(field.as_bytes());
        packet.push(0);
    }
    let mut option = |name: &str, value: &str| {
        packet.extend_from_slice(name.as_bytes());
        packet.push(0);
        packet.extend_from_slice(value.as_bytes());
        packet.push(0);
    };
    if block_size != DEFAULT_BLOCK_SIZE {
        option("blksize", &alloc::format!("{block_size}"));
    }
    if ask_size {
        option("tsize", "0");
    }
    packet
}

/// An acknowledgement of `block`.
pub fn ack(block: u16) -> [u8; 4] {
    let [op0, op1] = opcode::ACK.to_be_bytes();
    let [b0, b1] = block.to_be_bytes();
    [op0, op1, b0, b1]
}

/// An ERROR packet with `code` and `message`.
pub fn error(code: u16, message: &str) -> Vec<u8> {
    let mut packet = Vec::with_capacity(message.len() + 5);
    packet.extend_from_slice(&opcode::ERROR.to_be_bytes());
    packet.extend_from_slice(&code.to_be_bytes());
    packet.extend_from_slice(message.as_bytes());
    packet.push(0);
    packet
}

/// What the client does after a packet from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'p> {
    /// Store `data` at `offset`, then acknowledge `ack`; `last` when it was
    /// the final block.
    Data {
        offset: u64,
        data: &'p [u8],
        ack: u16,
        last: bool,
    },
    /// The server accepted the options: acknowledge block 0 (RFC 2347) to
    /// start the data, or end the transfer if only the size was wanted.
    OptionsAccepted,
    /// A duplicate of a block already stored (our acknowledgement was lost,
    /// or the server retransmitted early): acknowledge it again, store
    /// nothing (RFC 1350 §6; never acknowledging twice on a duplicate's
    /// arrival alone would avoid the Sorcerer's Apprentice Syndrome, but a
    /// lock-step client only acknowledges what arrives).
    Duplicate { ack: u16 },
}

/// A read's state: the negotiated block size, the next block expected and
/// the size the server announced.
#[derive(Clone, Debug)]
pub struct Download {
    block_size: u16,
    requested_block_size: u16,
    asked_size: bool,
    /// The next block expected, wrapping past 65535 to 0.
    next_block: u16,
    /// Bytes stored so far.
    received: u64,
    /// The file's size from `tsize`, when the server gave it.
    size: Option<u64>,
    started: bool,
}

impl Download {
    /// A read that asked for `block_size` and, when `asked_size`, `tsize`.
    pub fn new(block_size: u16, asked_size: bool) -> Self {
        Download {
            block_size: DEFAULT_BLOCK_SIZE,
            requested_block_size: block_size,
            asked_size,
            next_block: 1,
            received: 0,
            size: None,
            started: false,
        }
    }

    /// The size the server announced with `tsize`.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    pub fn block_size(&self) -> u16 {
        self.block_size
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// Handles one packet from the server.
    pub fn on_packet<'p>(&mut self, packet: &'p [u8]) -> Result<Step<'p>, TftpError> {
        let (op, body) = split_u16(packet).ok_or(TftpError::Malformed("shorter than an opcode"))?;
        match op {
            opcode::DATA => self.on_data(body),
            opcode::OPTION_ACK if !self.started => {
                self.on_option_ack(body)?;
                self.started = true;
                Ok(Step::OptionsAccepted)
            }
            opcode::OPTION_ACK => Err(TftpError::Malformed("option acknowledgement after data")),
            opcode::ERROR => {
                let (code, text) =
                    split_u16(body).ok_or(TftpError::Malformed("error without a code"))?;
                let text = text.split(|&b| b == 0).next().unwrap_or_default();
                Err(TftpError::Server {
                    code,
                    message: String::from_utf8_lossy(text).into_owned(),
                })
            }
            _ => Err(TftpError::Malformed("unexpected opcode")),
        }
    }

    fn on_data<'p>(&mut self, body: &'p [u8]) -> Result<Step<'p>, TftpError> {
        let (block, data) = split_u16(body).ok_or(TftpError::Malformed("data without a block"))?;
        // A server that ignores our options answers the request with block
        // 1 at the default size (RFC 2347: options are optional).
        self.started = true;
        if block != self.next_block {
            // The previous block again: acknowledge it again (its ACK was
            // lost). Anything else is out of order for a lock-step read.
            return if block == self.next_block.wrapping_sub(1) {
                Ok(Step::Duplicate { ack: block })
            } else {
                Err(TftpError::Malformed("block out of sequence"))
            };
        }
        if data.len() > usize::from(self.block_size) {
            return Err(TftpError::Malformed("block larger than negotiated"));
        }
        let offset = self.received;
        self.received += data.len() as u64;
        self.next_block = self.next_block.wrapping_add(1);
        Ok(Step::Data {
            offset,
            data,
            ack: block,
            last: data.len() < usize::from(self.block_size),
        })
    }

    /// RFC 2347: the acknowledgement lists the options the server accepted,
    /// each no larger than asked; anything else ends the transfer.
    fn on_option_ack(&mut self, body: &[u8]) -> Result<(), TftpError> {
        let mut fields = body.split(|&b| b == 0);
        while let Some(name) = fields.next() {
            if name.is_empty() {
                break;
            }
            let value = fields
                .next()
                .and_then(|v| core::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(TftpError::Malformed("option without a numeric value"))?;
            if name.eq_ignore_ascii_case(b"blksize") {
                // RFC 2348: 8..=65464, and no more than requested.
                match u16::try_from(value) {
                    Ok(size) if (8..=self.requested_block_size).contains(&size) => {
                        self.block_size = size;
                    }
                    _ => return Err(TftpError::Malformed("block size out of range")),
                }
            } else if name.eq_ignore_ascii_case(b"tsize") && self.asked_size {
                self.size = Some(value);
            } else {
                return Err(TftpError::Malformed("option not requested"));
            }
        }
        Ok(())
    }
}

fn split_u16(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(block: u16, bytes: &[u8]) -> Vec<u8> {
        let mut packet = vec![0, 3];
        packet.extend_from_slice(&block.to_be_bytes());
        packet.extend_from_slice(bytes);
        packet
    }

    #[test]
    fn a_request_names_the_file_mode_and_options() {
        assert_eq!(
            read_request("a/b.efi", 1468, true),
            b"\x00\x01a/b.efi\0octet\0blksize\x001468\0tsize\x000\0"
        );
        assert_eq!(read_request("x", 512, false), b"\x00\x01x\0octet\0");
    }

    #[test]
    fn options_then_blocks_then_a_short_last_block() {
        let mut download = Download::new(1468, true);
        let oack = b"\x00\x06blksize\x008\0tsize\x0018\0";
        assert_eq!(download.on_packet(oack), Ok(Step::OptionsAccepted));
        assert_eq!(download.size(), Some(18));
        let first = data(1, b"abcdefgh");
        assert_eq!(
            download.on_packet(&first),
            Ok(Step::Data {
                offset: 0,
                data: b"abcdefgh",
                ack: 1,
                last: false
            })
        );
        assert_eq!(
            download.on_packet(&first),
            Ok(Step::Duplicate { ack: 1 }),
            "a repeated block is acknowledged, not stored"
        );
        let _ = download.on_packet(&data(2, b"ijklmnop")).unwrap();
        assert_eq!(
            download.on_packet(&data(3, b"qr")),
            Ok(Step::Data {
                offset: 16,
                data: b"qr",
                ack: 3,
                last: true
            })
        );
        assert_eq!(download.received(), 18);
    }

    #[test]
    fn a_server_ignoring_options_sends_default_blocks() {
        let mut download = Download::new(1468, true);
        let block = data(1, &[7; 512]);
        let step = download.on_packet(&block).unwrap();
        assert!(matches!(step, Step::Data { last: false, .. }));
        assert_eq!(download.size(), None);
        assert!(matches!(
            download.on_packet(&data(2, &[])).unwrap(),
            Step::Data { last: true, .. }
        ));
    }

    #[test]
    fn block_numbers_roll_over() {
        let mut download = Download::new(512, false);
        download.next_block = u16::MAX;
        assert!(download.on_packet(&data(u16::MAX, &[0; 512])).is_ok());
        assert!(matches!(
            download.on_packet(&data(0, &[1; 3])).unwrap(),
            Step::Data {
                ack: 0,
                last: true,
                ..
            }
        ));
    }

    #[test]
    fn errors_and_bad_packets_end_the_transfer() {
        let mut download = Download::new(1468, true);
        assert_eq!(
            download.on_packet(b"\x00\x05\x00\x01File not found\0"),
            Err(TftpError::Server {
                code: 1,
                message: "File not found".into()
            })
        );
        for bad in [
            &b"\x00"[..],
            b"\x00\x06blksize\x0099999\0",
            b"\x00\x06windowsize\x004\0",
            b"\x00\x06blksize\0",
            b"\x00\x02x",
        ] {
            assert!(Download::new(1468, true).on_packet(bad).is_err(), "{bad:?}");
        }
        let mut small = Download::new(512, false);
        assert!(small.on_packet(&data(1, &[0; 600])).is_err());
        assert!(small.on_packet(&data(5, &[0; 10])).is_err());
    }
}
