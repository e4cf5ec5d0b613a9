//! The Simple Network Protocol's logic (UEFI 2.10 §24.1) over a
//! [`NetDevice`], free of caller pointers so the host tests drive it with a
//! fake device: the Stopped/Started/Initialized state machine, the receive
//! filters (applied in software: virtio-net without a control queue delivers
//! every frame, so filtering here is what makes Mode.ReceiveFilterSetting
//! true), media header build and parse, the recycled transmit buffers and
//! MCastIpToMac.
#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;

use platform::net::{ETHERNET_HEADER_BYTES, MacAddress, NetDevice, NetError};
use uefi_raw::protocol::network::snp::{InterruptStatus, NetworkMode, NetworkState, ReceiveFlags};
use uefi_raw::{Boolean, Status};

pub const BROADCAST: MacAddress = [0xff; 6];
/// Mode.IfType: Ethernet, from RFC 3232's ARP hardware types (§24.1).
pub const IF_TYPE_ETHERNET: u8 = 1;
/// Mode.MaxMCastFilterCount; the mode's MCastFilter array holds 16.
pub const MAX_MCAST_FILTERS: usize = 16;
/// Every filter bit is honoured in software (Mode.ReceiveFilterMask).
pub const SUPPORTED_FILTERS: ReceiveFlags = ReceiveFlags::all();
/// What Initialize enables: the station's own frames and broadcasts, so a
/// client that never calls ReceiveFilters (older GRUBs) still gets ARP and
/// DHCP replies.
const DEFAULT_FILTERS: ReceiveFlags = ReceiveFlags::UNICAST.union(ReceiveFlags::BROADCAST);
/// Transmitted buffers not yet taken back through GetStatus. §24.1 GetStatus(): "the
/// network interface will not transmit if its internal recycled transmit
/// buffer array is full"; Transmit then answers EFI_NOT_READY.
pub const MAX_RECYCLED: usize = 1024;
/// Frames a single poll drops for the filters before it gives up until the
/// next call, so a flood of foreign traffic cannot hold the caller.
const MAX_DROPPED_PER_POLL: usize = 64;
/// Largest frame the receive buffer grows to (a 64 KiB MTU and a header).
const MAX_FRAME: usize = 65_535 + ETHERNET_HEADER_BYTES;

/// Mode.State (§24.1, EFI_SIMPLE_NETWORK_STATE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Stopped,
    Started,
    Initialized,
}

/// What Receive hands back besides the frame itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub src: MacAddress,
    pub dest: MacAddress,
    /// The EtherType in host order (edk2 swaps the header's big-endian field).
    pub protocol: u16,
}

/// Receive's failures: a status, or EFI_BUFFER_TOO_SMALL with the size the
/// caller must offer (the frame stays queued).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveError {
    Status(Status),
    TooSmall(usize),
}

pub struct Nic {
    device: Rc<dyn NetDevice>,
    state: State,
    permanent: MacAddress,
    station: MacAddress,
    filters: ReceiveFlags,
    mcast: Vec<MacAddress>,
    /// Caller buffer addresses Transmit handed to the device, oldest first.
    recycled: VecDeque<usize>,
    /// A transmit completed since GetStatus last read the interrupt status.
    tx_interrupt: bool,
    /// Receive buffer; `pending` bytes of it hold a frame that passed the
    /// filters and waits for Receive.
    rx: Vec<u8>,
    pending: Option<usize>,
}

/// Maps a device failure to the status SNP reports: a busy ring is
/// EFI_NOT_READY ("too busy to accept this transmit request", §24.1 Transmit()),
/// a frame the device refuses EFI_INVALID_PARAMETER, the rest
/// EFI_DEVICE_ERROR.
fn status_of(error: NetError) -> Status {
    match error {
        NetError::Busy => Status::NOT_READY,
        NetError::BadFrameSize(_) => Status::INVALID_PARAMETER,
        NetError::Stopped | NetError::Timeout | NetError::BufferTooSmall { .. } => {
            Status::DEVICE_ERROR
        }
    }
}

fn is_multicast(address: &MacAddress) -> bool {
    address[0] & 1 != 0
}

/// Whether a frame to `dest` passes `filters` (§24.1 ReceiveFilters()): promiscuous takes
/// everything; broadcast needs BROADCAST; other group addresses need
/// PROMISCUOUS_MULTICAST, or MULTICAST and a place in the list; individual
/// addresses need UNICAST and to be the station address.
pub fn accepts(
    dest: &MacAddress,
    filters: ReceiveFlags,
    station: &MacAddress,
    mcast: &[MacAddress],
) -> bool {
    if filters.contains(ReceiveFlags::PROMISCUOUS) {
        return true;
    }
    if *dest == BROADCAST {
        return filters.contains(ReceiveFlags::BROADCAST);
    }
    if is_multicast(dest) {
        return filters.contains(ReceiveFlags::PROMISCUOUS_MULTICAST)
            || (filters.contains(ReceiveFlags::MULTICAST) && mcast.contains(dest));
    }
    filters.contains(ReceiveFlags::UNICAST) && dest == station
}

/// Writes the media header Transmit builds when HeaderSize is not 0
/// (§24.1, Transmit()): destination, source, then the EtherType, given in host order
/// and sent big-endian.
pub fn write_header(frame: &mut [u8], dest: &MacAddress, src: &MacAddress, protocol: u16) {
    if let Some(header) = frame.get_mut(..ETHERNET_HEADER_BYTES) {
        header[..6].copy_from_slice(dest);
        header[6..12].copy_from_slice(src);
        header[12..].copy_from_slice(&protocol.to_be_bytes());
    }
}

/// Splits a received frame's media header; `None` for a runt.
pub fn parse_header(frame: &[u8]) -> Option<(MacAddress, MacAddress, u16)> {
    let header = frame.get(..ETHERNET_HEADER_BYTES)?;
    let mut dest = [0; 6];
    let mut src = [0; 6];
    dest.copy_from_slice(&header[..6]);
    src.copy_from_slice(&header[6..12]);
    Some((dest, src, u16::from_be_bytes([header[12], header[13]])))
}

/// MCastIpToMac (§24.1, MCastIPtoMAC()): IPv4 group 224.0.0.0/4 to 01:00:5e and its low
/// 23 bits (RFC 1112 §6.4); IPv6 ff00::/8 to 33:33 and its low 32 bits
/// (RFC 2464 §7). Anything else is not a multicast IP:
/// EFI_INVALID_PARAMETER.
pub fn mcast_ip_to_mac(ipv6: bool, ip: &[u8; 16]) -> Result<MacAddress, Status> {
    if ipv6 {
        if ip[0] != 0xff {
            return Err(Status::INVALID_PARAMETER);
        }
        Ok([0x33, 0x33, ip[12], ip[13], ip[14], ip[15]])
    } else {
        if ip[0] & 0xf0 != 0xe0 {
            return Err(Status::INVALID_PARAMETER);
        }
        Ok([0x01, 0x00, 0x5e, ip[1] & 0x7f, ip[2], ip[3]])
    }
}

impl Nic {
    pub fn new(device: Rc<dyn NetDevice>) -> Self {
        let permanent = device.mac();
        Nic {
            device,
            state: State::Stopped,
            permanent,
            station: permanent,
            filters: ReceiveFlags::empty(),
            mcast: Vec::new(),
            recycled: VecDeque::new(),
            tx_interrupt: false,
            rx: Vec::new(),
            pending: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The rule at the top of every service but Start, Stop and Initialize:
    /// EFI_NOT_STARTED when stopped, EFI_DEVICE_ERROR when started but not
    /// initialized (§24.1's status codes; edk2's SnpDxe agrees).
    pub fn require_initialized(&self) -> Result<(), Status> {
        match self.state {
            State::Initialized => Ok(()),
            State::Stopped => Err(Status::NOT_STARTED),
            State::Started => Err(Status::DEVICE_ERROR),
        }
    }

    /// Start (§24.1, Start()): Stopped to Started; the device itself starts in
    /// Initialize.
    pub fn start(&mut self) -> Result<(), Status> {
        if self.state != State::Stopped {
            return Err(Status::ALREADY_STARTED);
        }
        self.state = State::Started;
        Ok(())
    }

    /// Stop (§24.1, Stop()): "only valid if the network interface is in the
    /// started state"; from Initialized it is EFI_DEVICE_ERROR (Shutdown
    /// first), as in edk2.
    pub fn stop(&mut self) -> Result<(), Status> {
        match self.state {
            State::Stopped => Err(Status::NOT_STARTED),
            State::Initialized => Err(Status::DEVICE_ERROR),
            State::Started => {
                self.device.stop();
                self.state = State::Stopped;
                Ok(())
            }
        }
    }

    /// Initialize (§24.1, Initialize()): starts the device; the extra buffer sizes need
    /// nothing here, the device owns its buffers.
    pub fn initialize(&mut self) -> Result<(), Status> {
        match self.state {
            State::Stopped => return Err(Status::NOT_STARTED),
            State::Initialized => return Err(Status::DEVICE_ERROR),
            State::Started => {}
        }
        self.device.start().map_err(|_| Status::DEVICE_ERROR)?;
        self.reset_queues();
        self.filters = DEFAULT_FILTERS;
        self.mcast.clear();
        self.state = State::Initialized;
        Ok(())
    }

    /// Reset (§24.1, Reset()): the device is reset and started again with the
    /// settings of Initialize; filters and station address stay.
    pub fn reset(&mut self) -> Result<(), Status> {
        self.require_initialized()?;
        self.device.stop();
        self.pending = None;
        self.device.start().map_err(|_| Status::DEVICE_ERROR)
    }

    /// Shutdown (§24.1, Shutdown()): back to Started,
    /// the device reset so it does no more DMA; filters, the multicast list
    /// and the station address return to their defaults as in edk2.
    pub fn shutdown(&mut self) -> Result<(), Status> {
        self.require_initialized()?;
        self.device.stop();
        self.reset_queues();
        self.filters = ReceiveFlags::empty();
        self.mcast.clear();
        self.station = self.permanent;
        self.state = State::Started;
        Ok(())
    }

    fn reset_queues(&mut self) {
        self.pending = None;
        self.recycled.clear();
        self.tx_interrupt = false;
    }

    /// ReceiveFilters (§24.1, ReceiveFilters()). Disable wins over Enable; ResetMCastFilter
    /// empties the list and disables MULTICAST; otherwise a non-empty `list`
    /// replaces the list. EFI_INVALID_PARAMETER for bits outside the mask,
    /// MULTICAST being enabled without a list, more than 16 addresses, or
    /// an address in the list that is not a group address.
    pub fn receive_filters(
        &mut self,
        enable: ReceiveFlags,
        disable: ReceiveFlags,
        reset_mcast: bool,
        list: &[MacAddress],
    ) -> Result<(), Status> {
        self.require_initialized()?;
        let unknown = enable.union(disable).difference(SUPPORTED_FILTERS);
        if !unknown.is_empty() {
            return Err(Status::INVALID_PARAMETER);
        }
        let mut disable = disable;
        if reset_mcast {
            disable |= ReceiveFlags::MULTICAST;
        } else {
            if list.len() > MAX_MCAST_FILTERS || list.iter().any(|a| !is_multicast(a)) {
                return Err(Status::INVALID_PARAMETER);
            }
            let enabling = enable.contains(ReceiveFlags::MULTICAST)
                && !disable.contains(ReceiveFlags::MULTICAST);
            if enabling && list.is_empty() {
                return Err(Status::INVALID_PARAMETER);
            }
        }
        if reset_mcast {
            self.mcast.clear();
        } else if !list.is_empty() {
            self.mcast.clear();
            self.mcast.extend_from_slice(list);
        }
        self.filters = self.filters.union(enable).difference(disable);
        // A frame held for Receive was accepted under the old filters.
        self.pending = None;
        Ok(())
    }

    /// StationAddress (§24.1, StationAddress()): `None` with `reset` restores the permanent
    /// address; otherwise the new address must be an individual one. The
    /// address only matters to this layer (filters, built headers), so it
    /// is changeable whatever the device.
    pub fn station_address(&mut self, reset: bool, new: Option<MacAddress>) -> Result<(), Status> {
        self.require_initialized()?;
        let address = match (reset, new) {
            (true, _) => self.permanent,
            (false, Some(address)) if !is_multicast(&address) => address,
            (false, _) => return Err(Status::INVALID_PARAMETER),
        };
        self.station = address;
        Ok(())
    }

    /// Looks for a frame that passes the filters, keeping it for Receive;
    /// frames that fail them are dropped. Ok(true) when one waits.
    pub fn poll_receive(&mut self) -> Result<bool, Status> {
        if self.pending.is_some() {
            return Ok(true);
        }
        if self.rx.len() < ETHERNET_HEADER_BYTES + self.device.mtu() {
            let want = ETHERNET_HEADER_BYTES + self.device.mtu();
            self.grow_rx(want)?;
        }
        for _ in 0..MAX_DROPPED_PER_POLL {
            let len = match self.device.receive(&mut self.rx) {
                Ok(None) => return Ok(false),
                Ok(Some(len)) => len,
                Err(NetError::BufferTooSmall { needed }) => {
                    self.grow_rx(needed)?;
                    continue;
                }
                Err(error) => return Err(status_of(error)),
            };
            let Some((dest, _, _)) = self.rx.get(..len).and_then(parse_header) else {
                continue;
            };
            if accepts(&dest, self.filters, &self.station, &self.mcast) {
                self.pending = Some(len);
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn grow_rx(&mut self, len: usize) -> Result<(), Status> {
        if len > MAX_FRAME {
            return Err(Status::DEVICE_ERROR);
        }
        let more = len.saturating_sub(self.rx.len());
        self.rx
            .try_reserve_exact(more)
            .map_err(|_| Status::DEVICE_ERROR)?;
        self.rx.resize(len.max(self.rx.len()), 0);
        Ok(())
    }

    /// Receive (§24.1, Receive()): the next frame that passes the filters into
    /// `buf`. EFI_NOT_READY without one; EFI_BUFFER_TOO_SMALL with the
    /// frame's size when `buf` is shorter, the frame kept for the next call.
    pub fn receive(&mut self, buf: &mut [u8]) -> Result<Received, ReceiveError> {
        self.require_initialized().map_err(ReceiveError::Status)?;
        if !self.poll_receive().map_err(ReceiveError::Status)? {
            return Err(ReceiveError::Status(Status::NOT_READY));
        }
        let len = self.pending.unwrap_or(0);
        let frame = self.rx.get(..len).unwrap_or_default();
        let Some(out) = buf.get_mut(..len) else {
            return Err(ReceiveError::TooSmall(len));
        };
        out.copy_from_slice(frame);
        let (dest, src, protocol) = parse_header(frame).unwrap_or_default();
        self.pending = None;
        Ok(Received {
            len,
            src,
            dest,
            protocol,
        })
    }

    /// Transmit (§24.1, Transmit()). `frame` is the caller's whole buffer, `address`
    /// its address, kept for GetStatus to hand back: the device copies the
    /// frame, so the transmit is complete when this returns. With a
    /// `header_size` the header is built in a copy from `dest`, `src`
    /// (default: the station address) and `protocol`; the caller's buffer is
    /// only read.
    pub fn transmit(
        &mut self,
        header_size: usize,
        frame: &[u8],
        address: usize,
        src: Option<MacAddress>,
        dest: Option<MacAddress>,
        protocol: Option<u16>,
    ) -> Result<(), Status> {
        self.require_initialized()?;
        if frame.len() < ETHERNET_HEADER_BYTES {
            return Err(Status::BUFFER_TOO_SMALL);
        }
        if frame.len() > ETHERNET_HEADER_BYTES + self.device.mtu() {
            return Err(Status::INVALID_PARAMETER);
        }
        if self.recycled.len() >= MAX_RECYCLED {
            return Err(Status::NOT_READY);
        }
        let sent = if header_size == 0 {
            self.device.transmit(frame)
        } else {
            let (Some(dest), Some(protocol)) = (dest, protocol) else {
                return Err(Status::INVALID_PARAMETER);
            };
            if header_size != ETHERNET_HEADER_BYTES {
                return Err(Status::INVALID_PARAMETER);
            }
            let mut copy = Vec::new();
            copy.try_reserve_exact(frame.len())
                .map_err(|_| Status::OUT_OF_RESOURCES)?;
            copy.extend_from_slice(frame);
            write_header(&mut copy, &dest, &src.unwrap_or(self.station), protocol);
            self.device.transmit(&copy)
        };
        sent.map_err(status_of)?;
        self.recycled.push_back(address);
        self.tx_interrupt = true;
        Ok(())
    }

    /// GetStatus (§24.1, GetStatus()): the interrupt status when asked for (RECEIVE
    /// while a frame that passes the filters waits, TRANSMIT once per
    /// completed transmit, then cleared) and the oldest recycled transmit
    /// buffer when asked for (0: none). Both unwanted is
    /// EFI_INVALID_PARAMETER, as in edk2.
    pub fn get_status(
        &mut self,
        want_interrupts: bool,
        want_tx_buf: bool,
    ) -> Result<(Option<InterruptStatus>, Option<usize>), Status> {
        if !want_interrupts && !want_tx_buf {
            return Err(Status::INVALID_PARAMETER);
        }
        self.require_initialized()?;
        let interrupts = if want_interrupts {
            let mut status = InterruptStatus::empty();
            if self.poll_receive()? {
                status |= InterruptStatus::RECEIVE;
            }
            if core::mem::take(&mut self.tx_interrupt) {
                status |= InterruptStatus::TRANSMIT;
            }
            Some(status)
        } else {
            None
        };
        let tx_buf = want_tx_buf.then(|| self.recycled.pop_front().unwrap_or(0));
        Ok((interrupts, tx_buf))
    }

    /// WaitForPacket's condition: initialized and a frame waiting.
    pub fn frame_waiting(&mut self) -> bool {
        self.state == State::Initialized && self.poll_receive().unwrap_or(false)
    }

    /// Mode as the caller reads it (§24.1, EFI_SIMPLE_NETWORK_MODE).
    pub fn write_mode(&self, mode: &mut NetworkMode) {
        let mut mcast_filter = [uefi_raw::MacAddress::default(); MAX_MCAST_FILTERS];
        for (slot, address) in mcast_filter.iter_mut().zip(&self.mcast) {
            *slot = (*address).into();
        }
        *mode = NetworkMode {
            state: match self.state {
                State::Stopped => NetworkState::STOPPED,
                State::Started => NetworkState::STARTED,
                State::Initialized => NetworkState::INITIALIZED,
            },
            hw_address_size: 6,
            media_header_size: ETHERNET_HEADER_BYTES as u32,
            max_packet_size: u32::try_from(self.device.mtu()).unwrap_or(u32::MAX),
            nv_ram_size: 0,
            nv_ram_access_size: 0,
            receive_filter_mask: SUPPORTED_FILTERS.bits(),
            receive_filter_setting: self.filters.bits(),
            max_mcast_filter_count: MAX_MCAST_FILTERS as u32,
            mcast_filter_count: self.mcast.len() as u32,
            mcast_filter,
            current_address: self.station.into(),
            broadcast_address: BROADCAST.into(),
            permanent_address: self.permanent.into(),
            if_type: IF_TYPE_ETHERNET,
            mac_address_changeable: Boolean::TRUE,
            // One frame at a time is copied into the device's ring; the
            // caller's buffers are free at once, so more can follow.
            multiple_tx_supported: Boolean::TRUE,
            media_present_supported: Boolean::TRUE,
            media_present: self.device.link_up().into(),
        };
    }
}
