//! The network-device abstraction: virtio-net implements it; the Simple
//! Network Protocol and the firmware's own PXE and HTTP boot clients consume
//! it; host tests back it with fakes.
//!
//! Frames are whole Ethernet frames: destination, source and EtherType
//! first, no frame check sequence. The device is polled: the firmware runs
//! with interrupts off.
#![forbid(unsafe_code)]

use core::fmt;

/// An IEEE 802 MAC address.
pub type MacAddress = [u8; 6];

/// Bytes of an Ethernet header (destination, source, EtherType).
pub const ETHERNET_HEADER_BYTES: usize = 14;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The device is stopped (never started, or reset at ExitBootServices or
    /// after a failure): it neither sends nor receives.
    Stopped,
    /// A frame to send is shorter than an Ethernet header or longer than the
    /// header plus the MTU.
    BadFrameSize(usize),
    /// Every transmit buffer is still with the device; poll and retry.
    Busy,
    /// The next received frame is `needed` bytes, more than the buffer
    /// offered; it stays queued.
    BufferTooSmall { needed: usize },
    /// The device stopped answering and was reset.
    Timeout,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Stopped => write!(f, "device is stopped"),
            NetError::BadFrameSize(len) => write!(f, "frame of {len} bytes cannot be sent"),
            NetError::Busy => write!(f, "all transmit buffers are busy"),
            NetError::BufferTooSmall { needed } => {
                write!(f, "received frame needs {needed} bytes")
            }
            NetError::Timeout => write!(f, "device timed out"),
        }
    }
}

/// A polled Ethernet device. Methods take `&self`: drivers keep their
/// mutable state behind interior mutability so SNP and the firmware's own
/// network clients can share one device (never at the same time: the
/// firmware is single-threaded and its clients poll only inside a call).
pub trait NetDevice {
    /// The permanent station address.
    fn mac(&self) -> MacAddress;
    /// Largest payload after the Ethernet header (1500 for virtio-net
    /// without VIRTIO_NET_F_MTU).
    fn mtu(&self) -> usize;
    /// Whether the link is up (true when the device cannot tell).
    fn link_up(&self) -> bool;
    /// Hands one frame, header included, to the device. The frame is copied:
    /// the caller's buffer is free again when this returns.
    fn transmit(&self, frame: &[u8]) -> Result<(), NetError>;
    /// Copies the next received frame into `buf` and returns its length, or
    /// `None` when no frame is waiting.
    fn receive(&self, buf: &mut [u8]) -> Result<Option<usize>, NetError>;
    /// Brings a stopped device back (SNP Initialize after Shutdown): empty
    /// receive queue, nothing in flight.
    fn start(&self) -> Result<(), NetError>;
    /// Resets the device so it does no more DMA (SNP Shutdown, and
    /// ExitBootServices: the OS's driver finds it in its reset state).
    fn stop(&self);
    /// Whether the device is started.
    fn is_started(&self) -> bool;
}

/// Formats a MAC address as `52:54:00:12:34:56`.
pub struct DisplayMac<'a>(pub &'a MacAddress);

impl fmt::Display for DisplayMac<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = *self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}
