//! The firmware's own IPv4 client stack: smoltcp's interface (ARP, IPv4,
//! UDP, TCP, the DHCP client) over a `NetDevice`, polled with the TSC as
//! its clock. The PXE and HTTP boot clients each build one for the length
//! of a call and drop it before returning, so the device is free for SNP's
//! users (GRUB, iPXE) in between.

use alloc::vec;
use alloc::vec::Vec;

use platform::net::{ETHERNET_HEADER_BYTES, NetDevice, NetError};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};

/// smoltcp's clock: microseconds of TSC time.
pub fn now() -> Instant {
    Instant::from_micros((platform::tsc::now_ns() / 1000) as i64)
}

/// A `NetDevice` as smoltcp's `Device`: one frame buffer each way.
pub struct Port<'n> {
    nic: &'n dyn NetDevice,
    receive_buffer: Vec<u8>,
    transmit_buffer: Vec<u8>,
    /// The first device error seen, for the client to report.
    error: Option<NetError>,
}

impl<'n> Port<'n> {
    fn new(nic: &'n dyn NetDevice) -> Self {
        let frame = ETHERNET_HEADER_BYTES + nic.mtu();
        Port {
            nic,
            receive_buffer: vec![0; frame],
            transmit_buffer: vec![0; frame],
            error: None,
        }
    }
}

pub struct ReceivedFrame<'b>(&'b [u8]);

pub struct TransmitSlot<'b> {
    nic: &'b dyn NetDevice,
    buffer: &'b mut [u8],
    error: &'b mut Option<NetError>,
}

impl phy::RxToken for ReceivedFrame<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for TransmitSlot<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // smoltcp never asks for more than the MTU it was given; a frame
        // that would not fit is cut to the buffer and then refused by the
        // device as malformed rather than overrunning anything.
        let len = len.min(self.buffer.len());
        let result = f(&mut self.buffer[..len]);
        if let Err(error) = self.nic.transmit(&self.buffer[..len]) {
            self.error.get_or_insert(error);
        }
        result
    }
}

impl Device for Port<'_> {
    type RxToken<'b>
        = ReceivedFrame<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = TransmitSlot<'b>
    where
        Self: 'b;

    fn receive(&mut self, _: Instant) -> Option<(ReceivedFrame<'_>, TransmitSlot<'_>)> {
        let len = match self.nic.receive(&mut self.receive_buffer) {
            Ok(Some(len)) => len,
            Ok(None) => return None,
            Err(NetError::BufferTooSmall { needed }) => {
                // A frame above the MTU (a misconfigured peer): take it into
                // a buffer big enough and drop it, so it cannot block the
                // queue.
                let mut scratch = vec![0; needed];
                let _ = self.nic.receive(&mut scratch);
                return None;
            }
            Err(error) => {
                self.error.get_or_insert(error);
                return None;
            }
        };
        Some((
            ReceivedFrame(&self.receive_buffer[..len]),
            TransmitSlot {
                nic: self.nic,
                buffer: &mut self.transmit_buffer,
                error: &mut self.error,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<TransmitSlot<'_>> {
        Some(TransmitSlot {
            nic: self.nic,
            buffer: &mut self.transmit_buffer,
            error: &mut self.error,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = ETHERNET_HEADER_BYTES + self.nic.mtu();
        capabilities
    }
}

/// An interface over a started device. The sockets are the caller's: each
/// client keeps its socket buffers on its own stack frame.
pub struct Stack<'n> {
    port: Port<'n>,
    pub iface: Interface,
}

impl<'n> Stack<'n> {
    /// A stack on `nic`, which must be started, with no address yet.
    pub fn new(nic: &'n dyn NetDevice) -> Self {
        let mut port = Port::new(nic);
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(nic.mac())));
        // smoltcp draws DHCP transaction IDs, TCP initial sequence numbers,
        // ephemeral ports and DNS IDs from this seed (0 by default): make
        // them differ per boot and per machine. Not secret, only varied.
        let [a, b, c, d, e, f] = nic.mac();
        config.random_seed = platform::tsc::ticks() ^ u64::from_le_bytes([a, b, c, d, e, f, 0, 0]);
        let iface = Interface::new(config, &mut port, now());
        Stack { port, iface }
    }

    /// The device's MAC address.
    pub fn mac(&self) -> platform::net::MacAddress {
        self.port.nic.mac()
    }

    /// Moves frames between the device and `sockets`.
    pub fn poll(&mut self, sockets: &mut SocketSet<'_>) -> Result<(), NetError> {
        self.iface.poll(now(), &mut self.port, sockets);
        match self.port.error.take() {
            // A full transmit ring is transient: smoltcp resends.
            Some(NetError::Busy) | None => Ok(()),
            Some(error) => Err(error),
        }
    }

    /// Gives the interface `address` and, when there is one, a default route.
    pub fn configure(&mut self, address: Ipv4Cidr, router: Option<Ipv4Address>) {
        self.iface.update_ip_addrs(|addresses| {
            addresses.clear();
            let _ = addresses.push(IpCidr::Ipv4(address));
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(router) = router {
            let _ = self.iface.routes_mut().add_default_ipv4_route(router);
        }
    }
}
