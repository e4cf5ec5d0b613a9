//! virtio-net, the network device (virtio 1.2 §5.1), over the modern PCI
//! transport, polled, with one receive and one transmit queue.
//!
//! No offloads are negotiated (no checksum, GSO or mergeable buffers), so
//! every frame travels whole in one buffer behind the 12-byte
//! `virtio_net_hdr` (§5.1.6: with VIRTIO_F_VERSION_1 the header always has
//! `num_buffers`). Receive and transmit buffers are fixed slots of one DMA
//! region each, so the caller's memory is never handed to the device.
//!
//! The device is probed without being started: a NIC nobody boots from
//! costs its feature negotiation only. `start` sets up the queues and fills
//! the receive queue; `stop` resets the device, which ends all DMA.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::pci::{Notifier, VirtioPciTransport};
use super::queue::{Buffer, DmaRegion, SplitQueue};
use super::{MODERN_DEVICE_ID_BASE, VIRTIO_VENDOR_ID, VirtioError};
use crate::net::{ETHERNET_HEADER_BYTES, MacAddress, NetDevice, NetError};
use crate::pci::{Bdf, ConfigAccess, PciDevice};

/// Virtio device type 1 (§5.1.1): modern ID 0x1041, transitional 0x1000.
pub const NET_MODERN_DEVICE_ID: u16 = MODERN_DEVICE_ID_BASE + 1;
pub const NET_TRANSITIONAL_DEVICE_ID: u16 = 0x1000;

/// Feature bits of §5.1.3 the driver uses.
mod feature {
    /// The device reports an MTU in its configuration.
    pub const MTU: u64 = 1 << 3;
    /// The device has a MAC address in its configuration.
    pub const MAC: u64 = 1 << 5;
    /// The configuration's `status` field holds the link state.
    pub const STATUS: u64 = 1 << 16;
}

/// Offsets in struct virtio_net_config (§5.1.4).
mod config {
    pub const MAC: usize = 0;
    pub const STATUS: usize = 6;
    pub const MTU: usize = 10;
    /// VIRTIO_NET_S_LINK_UP in `status`.
    pub const LINK_UP: u16 = 1;
}

const RECEIVE_QUEUE: u16 = 0;
const TRANSMIT_QUEUE: u16 = 1;
/// struct virtio_net_hdr with `num_buffers` (§5.1.6).
const HEADER_BYTES: usize = 12;
/// The MTU without VIRTIO_NET_F_MTU, and the most we accept with it: the
/// slots below hold a standard frame.
const STANDARD_MTU: usize = 1500;
/// A slot: header plus the largest frame, rounded up. §5.1.6.3.1 asks for
/// receive buffers of at least 1526 bytes without mergeable buffers or GSO.
const SLOT_BYTES: usize = 2048;
/// Receive slots: a TCP window's worth of full frames (64 KiB) can land
/// between two polls.
const RECEIVE_SLOTS: u16 = 64;
/// Transmit slots: the clients send far less than they receive.
const TRANSMIT_SLOTS: u16 = 16;
/// Polls without a transmit completion before the device is declared dead:
/// QEMU completes a transmit within microseconds; this ends a dead device's
/// wait within about a second (a few under emulation), never a hang.
const POLL_SPINS_WITHOUT_PROGRESS: u64 = 50_000_000;

/// The queues and slots of a started device.
struct Queues {
    receive: SplitQueue,
    receive_notifier: Notifier,
    receive_slots: DmaRegion,
    /// Which slot each in-flight receive descriptor head fills.
    receive_slot_of_head: Vec<u16>,
    /// Frames the device has returned and nobody has taken yet:
    /// (slot, frame length).
    received: VecDeque<(u16, usize)>,
    transmit: SplitQueue,
    transmit_notifier: Notifier,
    transmit_slots: DmaRegion,
    transmit_slot_of_head: Vec<u16>,
    transmit_free: Vec<u16>,
}

/// A virtio-net device.
pub struct VirtioNet {
    transport: VirtioPciTransport,
    features: u64,
    mac: MacAddress,
    mtu: usize,
    poll_spins: u64,
    /// `Some` while the device is started.
    queues: RefCell<Option<Queues>>,
}

pub fn is_virtio_net(device: &PciDevice) -> bool {
    device.vendor == VIRTIO_VENDOR_ID
        && (device.device == NET_MODERN_DEVICE_ID || device.device == NET_TRANSITIONAL_DEVICE_ID)
}

/// Probes every virtio-net function in `devices`; one that fails is logged
/// and skipped. Costs nothing without any: the PCI list is in memory.
///
/// # Safety
/// As for [`VirtioNet::new`], for every device in `devices`.
pub unsafe fn probe_all(access: &dyn ConfigAccess, devices: &[PciDevice]) -> Vec<VirtioNet> {
    devices
        .iter()
        .filter(|device| is_virtio_net(device))
        // SAFETY: the caller vouches for every device in `devices`.
        .filter_map(|device| match unsafe { VirtioNet::new(access, device) } {
            Ok(net) => Some(net),
            Err(error) => {
                log::error!("virtio-net: {error}");
                None
            }
        })
        .collect()
}

impl VirtioNet {
    /// Negotiates features and reads the MAC address and MTU; the device is
    /// left stopped (reset) until `start`.
    ///
    /// # Safety
    /// As for [`VirtioPciTransport::new`]: `device` comes from
    /// `pci::enumerate` over `access`, its BARs placed in PCI address space.
    pub unsafe fn new(access: &dyn ConfigAccess, device: &PciDevice) -> Result<Self, VirtioError> {
        // SAFETY: this function's contract is the transport's.
        let transport = unsafe { VirtioPciTransport::new(access, device) }?;
        let features = transport.negotiate(feature::MAC | feature::STATUS | feature::MTU)?;
        let bdf = transport.bdf();
        if features & feature::MAC == 0 {
            // §5.1.5: without VIRTIO_NET_F_MAC the driver would have to
            // invent an address; QEMU and Cloud Hypervisor always offer one.
            transport.fail();
            return Err(VirtioError::MissingFeature {
                bdf,
                feature: feature::MAC,
            });
        }
        let mut mac = [0u8; 6];
        for (offset, byte) in mac.iter_mut().enumerate() {
            *byte =
                transport
                    .config_read(config::MAC + offset)
                    .ok_or(VirtioError::UnusableConfig {
                        bdf,
                        what: "configuration size",
                        value: 0,
                    })?;
        }
        let mtu = if features & feature::MTU != 0 {
            let mtu: u16 = transport.config_read(config::MTU).unwrap_or(0);
            // An MTU below IPv4's minimum datagram (576) cannot carry DHCP.
            if usize::from(mtu) < 576 {
                transport.fail();
                return Err(VirtioError::UnusableConfig {
                    bdf,
                    what: "MTU",
                    value: u64::from(mtu),
                });
            }
            usize::from(mtu).min(STANDARD_MTU)
        } else {
            STANDARD_MTU
        };
        transport.reset()?;
        Ok(VirtioNet {
            transport,
            features,
            mac,
            mtu,
            poll_spins: POLL_SPINS_WITHOUT_PROGRESS,
            queues: RefCell::new(None),
        })
    }

    /// The PCI function, for the device path.
    pub fn bdf(&self) -> Bdf {
        self.transport.bdf()
    }

    /// Steps 1-8 of §3.1.1 again with both queues, the receive queue full.
    fn set_up(&self) -> Result<Queues, VirtioError> {
        let bdf = self.bdf();
        let accepted = self.transport.negotiate(self.features)?;
        if accepted != self.features {
            return Err(VirtioError::FeaturesRejected {
                bdf,
                features: self.features,
            });
        }
        let queue_size = |queue: u16, wanted: u16| -> Result<u16, VirtioError> {
            let max = self.transport.max_queue_size(queue);
            if max == 0 {
                return Err(VirtioError::QueueUnavailable { bdf, queue });
            }
            // The largest power of two the device accepts, up to `wanted`.
            Ok(1u16 << (15 - max.min(wanted).leading_zeros()))
        };
        let receive_size = queue_size(RECEIVE_QUEUE, RECEIVE_SLOTS)?;
        let transmit_size = queue_size(TRANSMIT_QUEUE, TRANSMIT_SLOTS)?;
        let receive = SplitQueue::new(receive_size)?;
        let transmit = SplitQueue::new(transmit_size)?;
        let receive_slots = DmaRegion::new(usize::from(receive_size) * SLOT_BYTES)?;
        let transmit_slots = DmaRegion::new(usize::from(transmit_size) * SLOT_BYTES)?;
        // SAFETY: both queues move into the `Queues` returned, which `stop`
        // (and `Drop`) only drops after resetting the device; on an error
        // the device is reset before they drop at the return.
        let receive_notifier = unsafe { self.transport.setup_queue(RECEIVE_QUEUE, &receive) }
            .inspect_err(|_| self.reset_device())?;
        // SAFETY: as above.
        let transmit_notifier = unsafe { self.transport.setup_queue(TRANSMIT_QUEUE, &transmit) }
            .inspect_err(|_| self.reset_device())?;
        let mut queues = Queues {
            receive,
            receive_notifier,
            receive_slots,
            receive_slot_of_head: vec![0; usize::from(receive_size)],
            received: VecDeque::new(),
            transmit,
            transmit_notifier,
            transmit_slots,
            transmit_slot_of_head: vec![0; usize::from(transmit_size)],
            transmit_free: (0..transmit_size).rev().collect(),
        };
        for slot in 0..receive_size {
            queues.post_receive(slot);
        }
        // §5.1.6.3.1: the receive queue is filled before DRIVER_OK.
        self.transport.driver_ok();
        queues.receive_notifier.notify();
        Ok(queues)
    }

    fn reset_device(&self) {
        if let Err(error) = self.transport.reset() {
            log::error!("virtio-net: {error}");
        }
    }
}

impl Queues {
    /// Offers receive slot `slot` to the device.
    fn post_receive(&mut self, slot: u16) {
        let buffer = Buffer {
            addr: self.receive_slots.addr() + (usize::from(slot) * SLOT_BYTES) as u64,
            len: SLOT_BYTES as u32,
            device_writable: true,
        };
        // SAFETY: the slot belongs to `receive_slots`, which lives as long as
        // the queue; it is not read again until the device returns it.
        match unsafe { self.receive.push(&[buffer]) } {
            Some(head) => self.receive_slot_of_head[usize::from(head)] = slot,
            // One descriptor per slot and no more slots than descriptors:
            // the queue cannot be full.
            None => log::error!("virtio-net: receive queue full; slot {slot} dropped"),
        }
    }

    /// Moves every frame the device has returned to `received`; a buffer
    /// too short to hold the header is offered again at once.
    fn collect_received(&mut self) {
        let mut reposted = false;
        while let Some(used) = self.receive.pop_used() {
            let slot = self.receive_slot_of_head[usize::from(used.head)];
            let written = (used.written as usize).min(SLOT_BYTES);
            if written < HEADER_BYTES + ETHERNET_HEADER_BYTES {
                self.post_receive(slot);
                reposted = true;
            } else {
                self.received.push_back((slot, written - HEADER_BYTES));
            }
        }
        if reposted && self.receive.device_wants_notification() {
            self.receive_notifier.notify();
        }
    }

    fn collect_transmitted(&mut self) {
        while let Some(used) = self.transmit.pop_used() {
            let slot = self.transmit_slot_of_head[usize::from(used.head)];
            self.transmit_free.push(slot);
        }
    }
}

impl NetDevice for VirtioNet {
    fn mac(&self) -> MacAddress {
        self.mac
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn link_up(&self) -> bool {
        if self.features & feature::STATUS == 0 {
            return true;
        }
        self.transport
            .config_read::<u16>(config::STATUS)
            .is_none_or(|status| status & config::LINK_UP != 0)
    }

    fn transmit(&self, frame: &[u8]) -> Result<(), NetError> {
        if frame.len() < ETHERNET_HEADER_BYTES || frame.len() > ETHERNET_HEADER_BYTES + self.mtu {
            return Err(NetError::BadFrameSize(frame.len()));
        }
        let mut guard = self.queues.borrow_mut();
        let queues = guard.as_mut().ok_or(NetError::Stopped)?;
        let mut spins = 0;
        let slot = loop {
            queues.collect_transmitted();
            if let Some(slot) = queues.transmit_free.pop() {
                break slot;
            }
            spins += 1;
            if spins > self.poll_spins {
                drop(guard);
                log::error!(
                    "virtio-net at {}: transmit timed out; resetting device",
                    self.bdf()
                );
                self.stop();
                return Err(NetError::Timeout);
            }
            core::hint::spin_loop();
        };
        let at = usize::from(slot) * SLOT_BYTES;
        // A zero header: no checksum to complete, no segmentation (§5.1.6.2).
        queues.transmit_slots.write_slice(at, &[0; HEADER_BYTES]);
        queues.transmit_slots.write_slice(at + HEADER_BYTES, frame);
        let buffer = Buffer {
            addr: queues.transmit_slots.addr() + at as u64,
            len: (HEADER_BYTES + frame.len()) as u32,
            device_writable: false,
        };
        // SAFETY: the slot belongs to `transmit_slots` and is not written
        // again until the device returns it (`collect_transmitted`).
        match unsafe { queues.transmit.push(&[buffer]) } {
            Some(head) => queues.transmit_slot_of_head[usize::from(head)] = slot,
            None => {
                queues.transmit_free.push(slot);
                return Err(NetError::Busy);
            }
        }
        if queues.transmit.device_wants_notification() {
            queues.transmit_notifier.notify();
        }
        Ok(())
    }

    fn receive(&self, buf: &mut [u8]) -> Result<Option<usize>, NetError> {
        let mut guard = self.queues.borrow_mut();
        let queues = guard.as_mut().ok_or(NetError::Stopped)?;
        if queues.received.is_empty() {
            queues.collect_received();
        }
        let Some(&(slot, len)) = queues.received.front() else {
            return Ok(None);
        };
        if len > buf.len() {
            return Err(NetError::BufferTooSmall { needed: len });
        }
        let at = usize::from(slot) * SLOT_BYTES + HEADER_BYTES;
        queues.receive_slots.read_slice(at, &mut buf[..len]);
        queues.received.pop_front();
        queues.post_receive(slot);
        if queues.receive.device_wants_notification() {
            queues.receive_notifier.notify();
        }
        Ok(Some(len))
    }

    fn start(&self) -> Result<(), NetError> {
        if self.is_started() {
            return Ok(());
        }
        match self.set_up() {
            Ok(queues) => {
                *self.queues.borrow_mut() = Some(queues);
                Ok(())
            }
            Err(error) => {
                log::error!("virtio-net: {error}");
                self.reset_device();
                Err(NetError::Stopped)
            }
        }
    }

    fn stop(&self) {
        self.reset_device();
        // The device has forgotten the queues: their memory may go.
        self.queues.borrow_mut().take();
    }

    fn is_started(&self) -> bool {
        self.queues.borrow().is_some()
    }
}

impl Drop for VirtioNet {
    /// The queue memory is freed with `self`: stop the device using it first.
    fn drop(&mut self) {
        if self.is_started() {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests;
