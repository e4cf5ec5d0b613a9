//! Host tests of the SNP logic against a fake device.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use platform::net::{MacAddress, NetDevice, NetError};
use uefi_raw::Status;
use uefi_raw::protocol::network::snp::{InterruptStatus, NetworkMode, NetworkState, ReceiveFlags};

use super::nic::{
    BROADCAST, Nic, ReceiveError, Received, State, accepts, mcast_ip_to_mac, parse_header,
    write_header,
};

const OURS: MacAddress = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const OTHER: MacAddress = [0x52, 0x54, 0x00, 0x99, 0x99, 0x99];
const GROUP: MacAddress = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
const GROUP2: MacAddress = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];

#[derive(Default)]
struct FakeState {
    started: bool,
    starts: usize,
    stops: usize,
    busy: bool,
    fail_start: bool,
    rx: VecDeque<Vec<u8>>,
    sent: Vec<Vec<u8>>,
}

#[derive(Default)]
struct FakeNet(RefCell<FakeState>);

impl FakeNet {
    fn deliver(&self, frame: Vec<u8>) {
        self.0.borrow_mut().rx.push_back(frame);
    }
}

impl NetDevice for FakeNet {
    fn mac(&self) -> MacAddress {
        OURS
    }
    fn mtu(&self) -> usize {
        1500
    }
    fn link_up(&self) -> bool {
        true
    }
    fn transmit(&self, frame: &[u8]) -> Result<(), NetError> {
        let mut s = self.0.borrow_mut();
        if !s.started {
            return Err(NetError::Stopped);
        }
        if s.busy {
            return Err(NetError::Busy);
        }
        s.sent.push(frame.to_vec());
        Ok(())
    }
    fn receive(&self, buf: &mut [u8]) -> Result<Option<usize>, NetError> {
        let mut s = self.0.borrow_mut();
        if !s.started {
            return Err(NetError::Stopped);
        }
        let Some(frame) = s.rx.front() else {
            return Ok(None);
        };
        let len = frame.len();
        if len > buf.len() {
            return Err(NetError::BufferTooSmall { needed: len });
        }
        buf[..len].copy_from_slice(frame);
        s.rx.pop_front();
        Ok(Some(len))
    }
    fn start(&self) -> Result<(), NetError> {
        let mut s = self.0.borrow_mut();
        if s.fail_start {
            return Err(NetError::Timeout);
        }
        s.started = true;
        s.starts += 1;
        s.rx.clear();
        Ok(())
    }
    fn stop(&self) {
        let mut s = self.0.borrow_mut();
        s.started = false;
        s.stops += 1;
    }
    fn is_started(&self) -> bool {
        self.0.borrow().started
    }
}

fn frame(dest: MacAddress, src: MacAddress, ether_type: u16, payload_len: usize) -> Vec<u8> {
    let mut f = vec![0xab; 14 + payload_len];
    write_header(&mut f, &dest, &src, ether_type);
    f
}

fn initialized() -> (Rc<FakeNet>, Nic) {
    let device = Rc::new(FakeNet::default());
    let mut nic = Nic::new(device.clone());
    nic.start().unwrap();
    nic.initialize().unwrap();
    (device, nic)
}

fn mode(nic: &Nic) -> NetworkMode {
    let mut mode = blank_mode();
    nic.write_mode(&mut mode);
    mode
}

fn blank_mode() -> NetworkMode {
    NetworkMode {
        state: NetworkState::MAX_STATE,
        hw_address_size: 0,
        media_header_size: 0,
        max_packet_size: 0,
        nv_ram_size: 9,
        nv_ram_access_size: 9,
        receive_filter_mask: 0,
        receive_filter_setting: 0,
        max_mcast_filter_count: 0,
        mcast_filter_count: 0,
        mcast_filter: [Default::default(); 16],
        current_address: Default::default(),
        broadcast_address: Default::default(),
        permanent_address: Default::default(),
        if_type: 0,
        mac_address_changeable: Default::default(),
        multiple_tx_supported: Default::default(),
        media_present_supported: Default::default(),
        media_present: Default::default(),
    }
}

#[test]
fn state_machine_follows_the_spec() {
    let device = Rc::new(FakeNet::default());
    let mut nic = Nic::new(device.clone());
    assert_eq!(nic.state(), State::Stopped);
    assert_eq!(nic.initialize(), Err(Status::NOT_STARTED));
    assert_eq!(nic.stop(), Err(Status::NOT_STARTED));
    assert_eq!(nic.shutdown(), Err(Status::NOT_STARTED));
    assert_eq!(nic.reset(), Err(Status::NOT_STARTED));
    assert_eq!(nic.get_status(true, true), Err(Status::NOT_STARTED));

    assert_eq!(nic.start(), Ok(()));
    assert_eq!(nic.start(), Err(Status::ALREADY_STARTED));
    assert!(!device.is_started(), "the device starts in Initialize");
    // Started but not initialized: EFI_DEVICE_ERROR.
    assert_eq!(nic.shutdown(), Err(Status::DEVICE_ERROR));
    assert_eq!(nic.reset(), Err(Status::DEVICE_ERROR));
    assert_eq!(
        nic.transmit(0, &frame(OTHER, OURS, 0x800, 50), 0x1000, None, None, None),
        Err(Status::DEVICE_ERROR)
    );

    assert_eq!(nic.initialize(), Ok(()));
    assert!(device.is_started());
    assert_eq!(nic.state(), State::Initialized);
    assert_eq!(nic.initialize(), Err(Status::DEVICE_ERROR));
    assert_eq!(nic.start(), Err(Status::ALREADY_STARTED));
    assert_eq!(nic.stop(), Err(Status::DEVICE_ERROR), "Shutdown first");

    assert_eq!(nic.reset(), Ok(()));
    assert!(device.is_started());
    assert_eq!(device.0.borrow().starts, 2);

    assert_eq!(nic.shutdown(), Ok(()));
    assert!(!device.is_started());
    assert_eq!(nic.state(), State::Started);
    assert_eq!(nic.stop(), Ok(()));
    assert_eq!(nic.state(), State::Stopped);
}

#[test]
fn a_device_that_will_not_start_fails_initialize() {
    let device = Rc::new(FakeNet::default());
    device.0.borrow_mut().fail_start = true;
    let mut nic = Nic::new(device);
    nic.start().unwrap();
    assert_eq!(nic.initialize(), Err(Status::DEVICE_ERROR));
    assert_eq!(nic.state(), State::Started);
}

#[test]
fn mode_describes_an_ethernet_interface() {
    let (_, mut nic) = initialized();
    let m = mode(&nic);
    assert_eq!(m.state, NetworkState::INITIALIZED);
    assert_eq!(m.hw_address_size, 6);
    assert_eq!(m.media_header_size, 14);
    assert_eq!(m.max_packet_size, 1500);
    assert_eq!((m.nv_ram_size, m.nv_ram_access_size), (0, 0));
    assert_eq!(m.if_type, 1);
    assert_eq!(m.receive_filter_mask, 0x1f);
    assert_eq!(m.max_mcast_filter_count, 16);
    assert_eq!(m.current_address.0[..6], OURS);
    assert_eq!(m.current_address.0[6..], [0; 26]);
    assert_eq!(m.permanent_address.0[..6], OURS);
    assert_eq!(m.broadcast_address.0[..6], BROADCAST);
    assert!(bool::from(m.media_present_supported));
    assert!(bool::from(m.media_present));
    assert!(bool::from(m.mac_address_changeable));
    // Initialize enables the station's own frames and broadcasts.
    assert_eq!(
        m.receive_filter_setting,
        (ReceiveFlags::UNICAST | ReceiveFlags::BROADCAST).bits()
    );
    nic.shutdown().unwrap();
    assert_eq!(mode(&nic).state, NetworkState::STARTED);
    assert_eq!(mode(&nic).receive_filter_setting, 0);
}

#[test]
fn transmit_sends_whole_frames_and_recycles_the_callers_buffer() {
    let (device, mut nic) = initialized();
    let f = frame(OTHER, OURS, 0x0800, 100);
    assert_eq!(nic.transmit(0, &f, 0x1000, None, None, None), Ok(()));
    assert_eq!(nic.transmit(0, &f, 0x2000, None, None, None), Ok(()));
    assert_eq!(device.0.borrow().sent, [f.clone(), f.clone()]);
    // TRANSMIT once, buffers one per call, oldest first, then NULL.
    assert_eq!(
        nic.get_status(true, true),
        Ok((Some(InterruptStatus::TRANSMIT), Some(0x1000)))
    );
    assert_eq!(
        nic.get_status(true, true),
        Ok((Some(InterruptStatus::empty()), Some(0x2000)))
    );
    assert_eq!(nic.get_status(false, true), Ok((None, Some(0))));
    assert_eq!(nic.get_status(false, false), Err(Status::INVALID_PARAMETER));
}

#[test]
fn transmit_builds_the_media_header_when_asked() {
    let (device, mut nic) = initialized();
    let buffer = vec![0x11; 14 + 20];
    let protocol = Some(0x0806);
    assert_eq!(
        nic.transmit(14, &buffer, 0x1000, None, Some(BROADCAST), protocol),
        Ok(())
    );
    assert_eq!(
        nic.transmit(14, &buffer, 0x1000, Some(OTHER), Some(GROUP), protocol),
        Ok(())
    );
    let sent = device.0.borrow().sent.clone();
    assert_eq!(parse_header(&sent[0]), Some((BROADCAST, OURS, 0x0806)));
    assert_eq!(&sent[0][12..14], &[0x08, 0x06], "EtherType big-endian");
    assert_eq!(sent[0][14..], buffer[14..]);
    assert_eq!(parse_header(&sent[1]), Some((GROUP, OTHER, 0x0806)));
    // The source defaults to the current station address.
    nic.station_address(false, Some(OTHER)).unwrap();
    nic.transmit(14, &buffer, 0, None, Some(BROADCAST), protocol)
        .unwrap();
    assert_eq!(
        parse_header(&device.0.borrow().sent[2]),
        Some((BROADCAST, OTHER, 0x0806))
    );
}

#[test]
fn transmit_parameter_errors() {
    let (device, mut nic) = initialized();
    let ok = frame(OTHER, OURS, 0x800, 10);
    let cases = [
        // HeaderSize not the media header size.
        (
            13,
            ok.clone(),
            Some(OTHER),
            Some(1),
            Status::INVALID_PARAMETER,
        ),
        // A header to build without a destination or protocol.
        (14, ok.clone(), None, Some(1), Status::INVALID_PARAMETER),
        (14, ok.clone(), Some(OTHER), None, Status::INVALID_PARAMETER),
        // Shorter than the media header.
        (0, vec![0; 13], None, None, Status::BUFFER_TOO_SMALL),
        // Longer than the header and MaxPacketSize.
        (0, vec![0; 14 + 1501], None, None, Status::INVALID_PARAMETER),
    ];
    for (header_size, buffer, dest, protocol, status) in cases {
        assert_eq!(
            nic.transmit(header_size, &buffer, 0x1000, None, dest, protocol),
            Err(status),
            "header {header_size}, {} bytes",
            buffer.len()
        );
    }
    assert!(device.0.borrow().sent.is_empty());
    assert_eq!(
        nic.get_status(true, true),
        Ok((Some(InterruptStatus::empty()), Some(0)))
    );
    // The largest frame goes.
    assert_eq!(
        nic.transmit(0, &[0; 1514], 0x1000, None, None, None),
        Ok(())
    );
    // A busy device is EFI_NOT_READY and recycles nothing.
    device.0.borrow_mut().busy = true;
    assert_eq!(
        nic.transmit(0, &ok, 0x2000, None, None, None),
        Err(Status::NOT_READY)
    );
    assert_eq!(nic.get_status(false, true), Ok((None, Some(0x1000))));
    assert_eq!(nic.get_status(false, true), Ok((None, Some(0))));
}

#[test]
fn a_full_recycle_list_stops_transmit_until_get_status() {
    let (_, mut nic) = initialized();
    let f = frame(OTHER, OURS, 0x800, 10);
    for i in 0..super::nic::MAX_RECYCLED {
        nic.transmit(0, &f, 0x1000 + i, None, None, None).unwrap();
    }
    assert_eq!(
        nic.transmit(0, &f, 1, None, None, None),
        Err(Status::NOT_READY)
    );
    assert_eq!(nic.get_status(false, true), Ok((None, Some(0x1000))));
    assert_eq!(nic.transmit(0, &f, 1, None, None, None), Ok(()));
}

#[test]
fn receive_returns_frames_and_their_header_fields() {
    let (device, mut nic) = initialized();
    let mut buf = [0u8; 1514];
    assert_eq!(
        nic.receive(&mut buf),
        Err(ReceiveError::Status(Status::NOT_READY))
    );
    let f = frame(OURS, OTHER, 0x86dd, 60);
    device.deliver(f.clone());
    assert_eq!(
        nic.get_status(true, false),
        Ok((Some(InterruptStatus::RECEIVE), None))
    );
    // Reading the interrupt status does not drop the frame.
    assert_eq!(
        nic.get_status(true, false),
        Ok((Some(InterruptStatus::RECEIVE), None))
    );
    assert_eq!(
        nic.receive(&mut buf),
        Ok(Received {
            len: 74,
            src: OTHER,
            dest: OURS,
            protocol: 0x86dd
        })
    );
    assert_eq!(buf[..74], f[..]);
    assert_eq!(
        nic.get_status(true, false),
        Ok((Some(InterruptStatus::empty()), None))
    );
}

#[test]
fn a_short_buffer_reports_the_size_and_keeps_the_frame() {
    let (device, mut nic) = initialized();
    device.deliver(frame(OURS, OTHER, 0x800, 286));
    let mut small = [0u8; 100];
    assert_eq!(nic.receive(&mut small), Err(ReceiveError::TooSmall(300)));
    assert_eq!(nic.receive(&mut small), Err(ReceiveError::TooSmall(300)));
    let mut big = [0u8; 300];
    assert_eq!(nic.receive(&mut big).map(|r| r.len), Ok(300));
}

#[test]
fn frames_larger_than_the_mtu_grow_the_receive_buffer() {
    let (device, mut nic) = initialized();
    device.deliver(frame(OURS, OTHER, 0x800, 4000));
    let mut buf = vec![0u8; 5000];
    assert_eq!(nic.receive(&mut buf).map(|r| r.len), Ok(4014));
}

#[test]
fn software_filters_drop_what_was_not_asked_for() {
    let (device, mut nic) = initialized();
    let mut buf = [0u8; 1514];
    // Default after Initialize: unicast to us and broadcast.
    for dest in [OTHER, GROUP, OURS, BROADCAST] {
        device.deliver(frame(dest, OTHER, 0x800, 10));
    }
    assert_eq!(nic.receive(&mut buf).map(|r| r.dest), Ok(OURS));
    assert_eq!(nic.receive(&mut buf).map(|r| r.dest), Ok(BROADCAST));
    assert_eq!(
        nic.receive(&mut buf),
        Err(ReceiveError::Status(Status::NOT_READY))
    );
    // Runts are dropped too.
    device.deliver(vec![0xff; 10]);
    assert_eq!(
        nic.get_status(true, false),
        Ok((Some(InterruptStatus::empty()), None))
    );
}

#[test]
fn accepts_by_destination() {
    let all = ReceiveFlags::all();
    let none = ReceiveFlags::empty();
    let unicast = ReceiveFlags::UNICAST;
    let list = [GROUP];
    assert!(accepts(&OURS, unicast, &OURS, &[]));
    assert!(!accepts(&OTHER, unicast, &OURS, &[]));
    assert!(!accepts(&BROADCAST, unicast, &OURS, &[]));
    assert!(accepts(&BROADCAST, ReceiveFlags::BROADCAST, &OURS, &[]));
    assert!(accepts(&OTHER, ReceiveFlags::PROMISCUOUS, &OURS, &[]));
    assert!(accepts(&GROUP, ReceiveFlags::MULTICAST, &OURS, &list));
    assert!(!accepts(&GROUP2, ReceiveFlags::MULTICAST, &OURS, &list));
    assert!(!accepts(&GROUP, unicast, &OURS, &list));
    assert!(accepts(
        &GROUP2,
        ReceiveFlags::PROMISCUOUS_MULTICAST,
        &OURS,
        &[]
    ));
    assert!(!accepts(
        &BROADCAST,
        ReceiveFlags::PROMISCUOUS_MULTICAST,
        &OURS,
        &[]
    ));
    assert!(!accepts(
        &OTHER,
        ReceiveFlags::PROMISCUOUS_MULTICAST,
        &OURS,
        &[]
    ));
    assert!(accepts(&OTHER, all, &OURS, &[]));
    assert!(!accepts(&OURS, none, &OURS, &[]));
}

#[test]
fn receive_filters_rules() {
    let (device, mut nic) = initialized();
    let m = ReceiveFlags::MULTICAST;
    // Bits outside the mask.
    assert_eq!(
        nic.receive_filters(
            ReceiveFlags::from_bits_retain(0x20),
            ReceiveFlags::empty(),
            false,
            &[]
        ),
        Err(Status::INVALID_PARAMETER)
    );
    assert_eq!(
        nic.receive_filters(
            ReceiveFlags::empty(),
            ReceiveFlags::from_bits_retain(0x40),
            false,
            &[]
        ),
        Err(Status::INVALID_PARAMETER)
    );
    // MULTICAST enabled without a list, with too many, with an individual
    // address in it.
    assert_eq!(
        nic.receive_filters(m, ReceiveFlags::empty(), false, &[]),
        Err(Status::INVALID_PARAMETER)
    );
    assert_eq!(
        nic.receive_filters(m, ReceiveFlags::empty(), false, &[GROUP; 17]),
        Err(Status::INVALID_PARAMETER)
    );
    assert_eq!(
        nic.receive_filters(m, ReceiveFlags::empty(), false, &[GROUP, OURS]),
        Err(Status::INVALID_PARAMETER)
    );
    // Enable and disable in one call: Disable wins.
    assert_eq!(nic.receive_filters(m, m, false, &[]), Ok(()));
    assert_eq!(mode(&nic).receive_filter_setting & m.bits(), 0);

    assert_eq!(
        nic.receive_filters(m, ReceiveFlags::empty(), false, &[GROUP, GROUP2]),
        Ok(())
    );
    let md = mode(&nic);
    assert_eq!(md.mcast_filter_count, 2);
    assert_eq!(md.mcast_filter[0].0[..6], GROUP);
    assert_eq!(md.mcast_filter[1].0[..6], GROUP2);
    assert_ne!(md.receive_filter_setting & m.bits(), 0);
    device.deliver(frame(GROUP2, OTHER, 0x86dd, 10));
    device.deliver(frame([0x01, 0, 0x5e, 1, 2, 3], OTHER, 0x800, 10));
    let mut buf = [0u8; 1514];
    assert_eq!(nic.receive(&mut buf).map(|r| r.dest), Ok(GROUP2));
    assert_eq!(
        nic.receive(&mut buf),
        Err(ReceiveError::Status(Status::NOT_READY))
    );

    // ResetMCastFilter empties the list and turns MULTICAST off; iPXE asks
    // for the whole mask that way.
    assert_eq!(
        nic.receive_filters(ReceiveFlags::all(), ReceiveFlags::empty(), true, &[]),
        Ok(())
    );
    let md = mode(&nic);
    assert_eq!(md.mcast_filter_count, 0);
    assert_eq!(md.receive_filter_setting, 0x1d);

    // Disable everything: nothing is received.
    nic.receive_filters(ReceiveFlags::empty(), ReceiveFlags::all(), false, &[])
        .unwrap();
    device.deliver(frame(OURS, OTHER, 0x800, 10));
    assert_eq!(
        nic.receive(&mut buf),
        Err(ReceiveError::Status(Status::NOT_READY))
    );
}

#[test]
fn station_address_changes_and_resets() {
    let (device, mut nic) = initialized();
    assert_eq!(
        nic.station_address(false, None),
        Err(Status::INVALID_PARAMETER)
    );
    assert_eq!(
        nic.station_address(false, Some(GROUP)),
        Err(Status::INVALID_PARAMETER)
    );
    assert_eq!(nic.station_address(false, Some(OTHER)), Ok(()));
    assert_eq!(mode(&nic).current_address.0[..6], OTHER);
    assert_eq!(mode(&nic).permanent_address.0[..6], OURS);
    // Unicast filtering follows the station address.
    device.deliver(frame(OURS, OTHER, 0x800, 10));
    device.deliver(frame(OTHER, OURS, 0x800, 10));
    let mut buf = [0u8; 1514];
    assert_eq!(nic.receive(&mut buf).map(|r| r.dest), Ok(OTHER));
    assert_eq!(nic.station_address(true, None), Ok(()));
    assert_eq!(mode(&nic).current_address.0[..6], OURS);
    // Shutdown restores the permanent address too.
    nic.station_address(false, Some(OTHER)).unwrap();
    nic.shutdown().unwrap();
    assert_eq!(mode(&nic).current_address.0[..6], OURS);
    assert_eq!(nic.station_address(true, None), Err(Status::DEVICE_ERROR));
}

#[test]
fn mcast_ip_to_mac_maps_ipv4_and_ipv6_groups() {
    let mut v4 = [0u8; 16];
    v4[..4].copy_from_slice(&[239, 255, 255, 250]);
    assert_eq!(
        mcast_ip_to_mac(false, &v4),
        Ok([0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa])
    );
    v4[..4].copy_from_slice(&[224, 0, 0, 251]);
    assert_eq!(
        mcast_ip_to_mac(false, &v4),
        Ok([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb])
    );
    v4[..4].copy_from_slice(&[10, 0, 2, 2]);
    assert_eq!(mcast_ip_to_mac(false, &v4), Err(Status::INVALID_PARAMETER));
    let mut v6 = [0u8; 16];
    v6[0] = 0xff;
    v6[1] = 0x02;
    v6[12..].copy_from_slice(&[0xff, 0x12, 0x34, 0x56]);
    assert_eq!(
        mcast_ip_to_mac(true, &v6),
        Ok([0x33, 0x33, 0xff, 0x12, 0x34, 0x56])
    );
    v6[0] = 0xfe;
    assert_eq!(mcast_ip_to_mac(true, &v6), Err(Status::INVALID_PARAMETER));
}

#[test]
fn frame_waiting_needs_an_initialized_interface() {
    let device = Rc::new(FakeNet::default());
    let mut nic = Nic::new(device.clone());
    assert!(!nic.frame_waiting());
    nic.start().unwrap();
    nic.initialize().unwrap();
    assert!(!nic.frame_waiting());
    device.deliver(frame(BROADCAST, OTHER, 0x806, 28));
    assert!(nic.frame_waiting());
    assert!(nic.frame_waiting(), "still waiting until received");
    let mut buf = [0u8; 64];
    nic.receive(&mut buf).unwrap();
    assert!(!nic.frame_waiting());
}

#[test]
fn shutdown_stops_the_device_and_forgets_queued_buffers() {
    let (device, mut nic) = initialized();
    nic.transmit(0, &frame(OTHER, OURS, 0x800, 10), 0x1000, None, None, None)
        .unwrap();
    nic.shutdown().unwrap();
    assert_eq!(device.0.borrow().stops, 1);
    nic.initialize().unwrap();
    assert_eq!(
        nic.get_status(true, true),
        Ok((Some(InterruptStatus::empty()), Some(0)))
    );
}

#[test]
fn mac_device_path_node_reads_as_edk2_writes_it() {
    use crate::device_path::{DevicePathBuf, mac, pci, pci_root};
    let node = mac(&OURS, 1);
    assert_eq!(node.len(), 37);
    let path = DevicePathBuf::from_nodes(&[pci_root(0), pci(3, 0), node]).unwrap();
    assert_eq!(
        crate::device_path_text::path_to_text(path.as_bytes()).as_deref(),
        Some("PciRoot(0x0)/Pci(0x3,0x0)/MAC(525400123456,0x1)")
    );
}
