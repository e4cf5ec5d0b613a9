//! A TFTP read over smoltcp's UDP: the request, the lock-step exchange of
//! blocks and acknowledgements, retransmits and timeouts (RFC 1350 §2: the
//! last packet sent is repeated when nothing arrives in time).

use alloc::vec;

use smoltcp::iface::{SocketSet, SocketStorage};
use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, Ipv4Address};

use super::error::NetBootError;
use super::stack::{Stack, now};
use super::tftp::{self, Download, Step};

/// How long to wait for the server before repeating the last packet. QEMU's
/// and a LAN's servers answer in well under a millisecond; a second covers
/// a loaded host under emulation.
const RETRANSMIT_MS: u64 = 1000;
/// Repeats of one packet before the transfer is given up.
const RETRANSMITS: u32 = 4;
/// Datagrams the socket buffers each way.
const QUEUED_PACKETS: usize = 8;
const PACKET_BYTES: usize = 1600;

/// Where the file's bytes go.
pub enum Target<'b> {
    /// Only the size is wanted (PXE's TFTP_GET_FILE_SIZE, LoadFile's first
    /// call): the transfer ends at the option acknowledgement when the server
    /// sends `tsize`, else the blocks are counted and dropped.
    SizeOnly,
    /// The file goes into the buffer; a file larger than it is
    /// `BufferTooSmall` with the size.
    Buffer(&'b mut [u8]),
}

/// Reads `file` from `server` with at most `block_size`-byte blocks;
/// returns the file's size.
pub fn read(
    stack: &mut Stack,
    server: Ipv4Address,
    file: &str,
    block_size: u16,
    mut target: Target,
) -> Result<u64, NetBootError> {
    let packets = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; QUEUED_PACKETS],
            vec![0; QUEUED_PACKETS * PACKET_BYTES],
        )
    };
    let mut socket = udp::Socket::new(packets(), packets());
    // A fresh ephemeral port per transfer, so a late packet of an earlier
    // transfer cannot be taken for this one's.
    let local_port = 49152 + (platform::tsc::ticks() % 16384) as u16;
    // Binding fails only for port 0 or a bound socket: neither can be.
    socket
        .bind(local_port)
        .map_err(|_| NetBootError::Internal("TFTP client port"))?;
    let mut storage = [SocketStorage::EMPTY];
    let mut sockets = SocketSet::new(&mut storage[..]);
    let handle = sockets.add(socket);

    let mut download = Download::new(block_size, true);
    let mut last_sent = tftp::read_request(file, block_size, true);
    let mut peer = IpEndpoint::new(server.into(), tftp::SERVER_PORT);
    let mut server_tid: Option<u16> = None;
    let mut needs_send = true;
    let mut sent_at = now();
    let mut retransmits = 0;
    let mut received = [0u8; PACKET_BYTES];
    let capacity = match &target {
        Target::SizeOnly => 0,
        Target::Buffer(buffer) => buffer.len() as u64,
    };
    loop {
        stack.poll(&mut sockets)?;
        let socket = sockets.get_mut::<udp::Socket>(handle);
        if needs_send && socket.can_send() {
            // The only error is a full buffer; the next round retries.
            if socket.send_slice(&last_sent, peer).is_ok() {
                needs_send = false;
                sent_at = now();
            }
        }
        let Ok((len, meta)) = socket.recv_slice(&mut received) else {
            if (now() - sent_at).total_millis() >= RETRANSMIT_MS && !needs_send {
                retransmits += 1;
                if retransmits > RETRANSMITS {
                    return Err(NetBootError::Timeout {
                        what: "TFTP server",
                        waited_ms: RETRANSMIT_MS * u64::from(RETRANSMITS + 1),
                    });
                }
                needs_send = true;
            }
            continue;
        };
        // The server answers from a port of its own (its transfer ID, RFC
        // 1350 §4); packets from anywhere else are not part of this transfer.
        if meta.endpoint.addr != server.into()
            || server_tid.is_some_and(|tid| tid != meta.endpoint.port)
        {
            continue;
        }
        server_tid = Some(meta.endpoint.port);
        peer = meta.endpoint;
        let step = match download.on_packet(&received[..len]) {
            Ok(step) => step,
            Err(error) => {
                let _ = socket.send_slice(&tftp::error(0, "transfer aborted"), peer);
                let _ = stack.poll(&mut sockets);
                return Err(error.into());
            }
        };
        retransmits = 0;
        match step {
            Step::OptionsAccepted => {
                let outcome = match (&target, download.size()) {
                    (Target::SizeOnly, Some(size)) => Some(Ok(size)),
                    (Target::Buffer(_), Some(size)) if size > capacity => {
                        Some(Err(NetBootError::BufferTooSmall { needed: size }))
                    }
                    _ => None,
                };
                if let Some(outcome) = outcome {
                    // Only the size was wanted, or the file cannot fit: end
                    // the transfer politely (RFC 2347).
                    let abort = tftp::error(tftp::ERROR_OPTION_REFUSED, "size only");
                    let socket = sockets.get_mut::<udp::Socket>(handle);
                    let _ = socket.send_slice(&abort, peer);
                    let _ = stack.poll(&mut sockets);
                    return outcome;
                }
                last_sent = tftp::ack(0).to_vec();
            }
            Step::Duplicate { ack } => last_sent = tftp::ack(ack).to_vec(),
            Step::Data {
                offset,
                data,
                ack,
                last,
            } => {
                if let Target::Buffer(buffer) = &mut target {
                    let start = usize::try_from(offset).unwrap_or(usize::MAX);
                    if let Some(slot) = start
                        .checked_add(data.len())
                        .and_then(|end| buffer.get_mut(start..end))
                    {
                        slot.copy_from_slice(data);
                    }
                }
                last_sent = tftp::ack(ack).to_vec();
                if last {
                    let socket = sockets.get_mut::<udp::Socket>(handle);
                    let _ = socket.send_slice(&last_sent, peer);
                    let _ = stack.poll(&mut sockets);
                    let size = download.received();
                    return match target {
                        Target::Buffer(_) if size > capacity => {
                            Err(NetBootError::BufferTooSmall { needed: size })
                        }
                        _ => Ok(size),
                    };
                }
            }
        }
        needs_send = true;
    }
}
