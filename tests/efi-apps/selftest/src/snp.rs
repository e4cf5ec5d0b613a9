//! EFI_SIMPLE_NETWORK_PROTOCOL (UEFI 2.10 §24.1) through its function pointers, as GRUB's
//! efinet drives it: the first NIC opened EXCLUSIVE (which also disconnects a network
//! stack the firmware bound to it, OVMF's MNP), then the state machine's status codes,
//! Mode, an ARP request for QEMU's user-mode gateway (10.0.2.2) sent with a header the
//! protocol builds, the transmit buffer handed back by GetStatus, the reply received
//! (too-small buffer first) with its header fields, WaitForPacket, MCastIPtoMAC, and
//! Shutdown/Stop. Rules where the spec leaves room (a frame kept after
//! EFI_BUFFER_TOO_SMALL, a changeable station address) accept both answers.
//!
//! The VM test gives both firmwares a virtio-net NIC on QEMU's user-mode network;
//! without a NIC the group says so as a `# ... skipped` line.

use core::ffi::c_void;
use core::ptr;

use r_efi::efi;
use r_efi::protocols::simple_network as snp;

use crate::ctx::{Ctx, St};

const OURS_IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY_IP: [u8; 4] = [10, 0, 2, 2];
const ETHERTYPE_ARP: u16 = 0x0806;

fn mac32(bytes: [u8; 6]) -> efi::MacAddress {
    let mut addr = [0u8; 32];
    addr[..6].copy_from_slice(&bytes);
    efi::MacAddress { addr }
}

fn mac6(mac: &efi::MacAddress) -> [u8; 6] {
    let mut out = [0u8; 6];
    out.copy_from_slice(&mac.addr[..6]);
    out
}

/// Reads Mode (the protocol keeps it current between calls).
fn mode(proto: *mut snp::Protocol) -> snp::Mode {
    // SAFETY: `proto` is a live SNP interface whose Mode pointer stays valid (§24.1).
    unsafe { *(*proto).mode }
}

/// A 60-byte ARP request frame (header left for Transmit to fill) asking for 10.0.2.2.
fn arp_request(ours: [u8; 6]) -> [u8; 60] {
    let mut frame = [0u8; 60];
    let arp = &mut frame[14..42];
    arp[..8].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    arp[8..14].copy_from_slice(&ours);
    arp[14..18].copy_from_slice(&OURS_IP);
    arp[24..28].copy_from_slice(&GATEWAY_IP);
    frame
}

pub fn run(ctx: &mut Ctx) {
    let mut guid = snp::PROTOCOL_GUID;
    let mut count = 0usize;
    let mut handles: *mut efi::Handle = ptr::null_mut();
    let status = (ctx.bs.locate_handle_buffer)(
        efi::BY_PROTOCOL,
        &mut guid,
        ptr::null_mut(),
        &mut count,
        &mut handles,
    );
    if status != efi::Status::SUCCESS || count == 0 || handles.is_null() {
        ctx.print(format_args!(
            "# snp: skipped (no SNP handle: {})\n",
            St(status)
        ));
        return;
    }
    // SAFETY: LocateHandleBuffer returned `count` >= 1 handles at `handles` (§7.3.15).
    let handle = unsafe { *handles };
    let _ = (ctx.bs.free_pool)(handles.cast());
    let mut found: *mut c_void = ptr::null_mut();
    let status = (ctx.bs.open_protocol)(
        handle,
        &mut guid,
        &mut found,
        ctx.image,
        ptr::null_mut(),
        efi::OPEN_PROTOCOL_EXCLUSIVE,
    );
    if !ctx.ok("snp.open_exclusive", status) || found.is_null() {
        return;
    }
    let proto = found.cast::<snp::Protocol>();
    checks(ctx, proto);
    let status = (ctx.bs.close_protocol)(handle, &mut guid, ctx.image, ptr::null_mut());
    ctx.ok("snp.close", status);
}

fn checks(ctx: &mut Ctx, proto: *mut snp::Protocol) {
    // SAFETY: `proto` is the live interface OpenProtocol returned (§24.1).
    let p = unsafe { &*proto };
    let m = mode(proto);
    ctx.check(
        "snp.mode.ethernet",
        m.hw_address_size == 6 && m.media_header_size == 14 && m.if_type == 1,
        format_args!(
            "HwAddressSize {} MediaHeaderSize {} IfType {}",
            m.hw_address_size, m.media_header_size, m.if_type
        ),
    );
    ctx.check(
        "snp.mode.sizes",
        m.max_packet_size >= 1500 && m.max_mcast_filter_count <= 16,
        format_args!(
            "MaxPacketSize {} MaxMCastFilterCount {}",
            m.max_packet_size, m.max_mcast_filter_count
        ),
    );
    ctx.check(
        "snp.mode.broadcast",
        mac6(&m.broadcast_address) == [0xff; 6],
        format_args!("{:02x?}", mac6(&m.broadcast_address)),
    );

    // Bring it to Stopped whatever the firmware left it in.
    if mode(proto).state == snp::INITIALIZED {
        ctx.ok("snp.shutdown.initial", (p.shutdown)(proto));
    }
    if mode(proto).state == snp::STARTED {
        ctx.ok("snp.stop.initial", (p.stop)(proto));
    }
    let mut irq = 0u32;
    let mut txbuf: *mut c_void = ptr::null_mut();
    let not_started = [efi::Status::NOT_STARTED];
    let status = (p.initialize)(proto, 0, 0);
    ctx.expect("snp.stopped.initialize", status, &not_started);
    let status = (p.get_status)(proto, &mut irq, &mut txbuf);
    ctx.expect("snp.stopped.get_status", status, &not_started);
    let status = (p.stop)(proto);
    ctx.expect("snp.stopped.stop", status, &not_started);

    ctx.ok("snp.start", (p.start)(proto));
    let status = (p.start)(proto);
    ctx.expect("snp.start.again", status, &[efi::Status::ALREADY_STARTED]);
    ctx.check(
        "snp.start.state",
        mode(proto).state == snp::STARTED,
        format_args!("state {}", mode(proto).state),
    );
    let mut frame = arp_request(mac6(&m.current_address));
    let status = (p.transmit)(
        proto,
        0,
        frame.len(),
        frame.as_mut_ptr().cast(),
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
    );
    ctx.expect("snp.started.transmit", status, &[efi::Status::DEVICE_ERROR]);

    if !ctx.ok("snp.initialize", (p.initialize)(proto, 0, 0)) {
        return;
    }
    ctx.check(
        "snp.initialize.state",
        mode(proto).state == snp::INITIALIZED,
        format_args!("state {}", mode(proto).state),
    );
    let m = mode(proto);
    let ours = mac6(&m.current_address);
    let wanted = (snp::RECEIVE_UNICAST | snp::RECEIVE_BROADCAST) & m.receive_filter_mask;
    let status = (p.receive_filters)(proto, wanted, 0, efi::Boolean::FALSE, 0, ptr::null_mut());
    ctx.ok("snp.receive_filters", status);
    // 0x20 is no filter bit of §24.1, so outside every ReceiveFilterMask.
    let status = (p.receive_filters)(proto, 0x20, 0, efi::Boolean::FALSE, 0, ptr::null_mut());
    ctx.expect(
        "snp.receive_filters.outside_mask",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );

    arp_exchange(ctx, proto, ours);
    mcast_ip_to_mac(ctx, proto);
    station_address(ctx, proto);

    let mut size = 0usize;
    let status = (p.statistics)(proto, efi::Boolean::FALSE, &mut size, ptr::null_mut());
    ctx.expect(
        "snp.statistics",
        status,
        &[efi::Status::UNSUPPORTED, efi::Status::BUFFER_TOO_SMALL],
    );

    ctx.ok("snp.shutdown", (p.shutdown)(proto));
    ctx.check(
        "snp.shutdown.state",
        mode(proto).state == snp::STARTED,
        format_args!("state {}", mode(proto).state),
    );
    let status = (p.receive_filters)(proto, 0, 0, efi::Boolean::TRUE, 0, ptr::null_mut());
    ctx.expect(
        "snp.started.receive_filters",
        status,
        &[efi::Status::DEVICE_ERROR],
    );
    ctx.ok("snp.stop", (p.stop)(proto));
    ctx.check(
        "snp.stop.state",
        mode(proto).state == snp::STOPPED,
        format_args!("state {}", mode(proto).state),
    );
}

/// Waits up to ~2 s for `done`, stalling 1 ms between tries.
fn wait_for(ctx: &Ctx, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..2000 {
        if done() {
            return true;
        }
        let _ = (ctx.bs.stall)(1000);
    }
    false
}

fn send_arp(ctx: &mut Ctx, proto: *mut snp::Protocol, ours: [u8; 6], name: &str) -> bool {
    // SAFETY: `proto` is the live interface OpenProtocol returned (§24.1).
    let p = unsafe { &*proto };
    let mut frame = arp_request(ours);
    let buffer: *mut c_void = frame.as_mut_ptr().cast();
    let mut dest = mac32([0xff; 6]);
    let mut protocol = ETHERTYPE_ARP;
    let status = (p.transmit)(
        proto,
        14,
        frame.len(),
        buffer,
        ptr::null_mut(),
        &mut dest,
        &mut protocol,
    );
    if !ctx.ok(name, status) {
        return false;
    }
    // §24.1 GetStatus: the transmitted buffer comes back through TxBuf.
    let mut recycled: *mut c_void = ptr::null_mut();
    let back = wait_for(ctx, || {
        let mut txbuf: *mut c_void = ptr::null_mut();
        let status = (p.get_status)(proto, ptr::null_mut(), &mut txbuf);
        if status == efi::Status::SUCCESS && !txbuf.is_null() {
            recycled = txbuf;
            return true;
        }
        false
    });
    ctx.check(
        "snp.get_status.tx_buf",
        back && recycled == buffer,
        format_args!("got {recycled:p}, sent {buffer:p}"),
    );
    true
}

fn arp_exchange(ctx: &mut Ctx, proto: *mut snp::Protocol, ours: [u8; 6]) {
    // SAFETY: `proto` is the live interface OpenProtocol returned (§24.1).
    let p = unsafe { &*proto };
    let mut frame = [0u8; 60];
    let mut dest = mac32([0xff; 6]);
    let mut protocol = ETHERTYPE_ARP;
    let status = (p.transmit)(
        proto,
        13,
        frame.len(),
        frame.as_mut_ptr().cast(),
        ptr::null_mut(),
        &mut dest,
        &mut protocol,
    );
    ctx.expect(
        "snp.transmit.bad_header_size",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = (p.get_status)(proto, ptr::null_mut(), ptr::null_mut());
    ctx.expect(
        "snp.get_status.both_null",
        status,
        &[efi::Status::INVALID_PARAMETER, efi::Status::SUCCESS],
    );
    if !send_arp(ctx, proto, ours, "snp.transmit.arp") {
        return;
    }

    // The reply, first into a buffer too small for it.
    let mut small = [0u8; 8];
    let mut size = small.len();
    let mut first = efi::Status::NOT_READY;
    wait_for(ctx, || {
        size = small.len();
        first = (p.receive)(
            proto,
            ptr::null_mut(),
            &mut size,
            small.as_mut_ptr().cast(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        );
        first != efi::Status::NOT_READY
    });
    ctx.check(
        "snp.receive.too_small",
        first == efi::Status::BUFFER_TOO_SMALL && size >= 42,
        format_args!("got {} size {size}", St(first)),
    );

    // §24.1 leaves open whether that frame is kept; if it went, ask again, and
    // let WaitForPacket say when the reply is there.
    let mut buf = [0u8; 1600];
    let mut header = 0usize;
    let mut src = mac32([0; 6]);
    let mut dest = mac32([0; 6]);
    let mut protocol = 0u16;
    let mut status = efi::Status::NOT_READY;
    for attempt in 0..2 {
        if attempt == 1 && !send_arp(ctx, proto, ours, "snp.transmit.arp_again") {
            return;
        }
        let signalled = wait_for(ctx, || {
            (ctx.bs.check_event)(p.wait_for_packet) == efi::Status::SUCCESS
        });
        if signalled {
            ctx.pass("snp.wait_for_packet");
        }
        let mut size = buf.len();
        status = (p.receive)(
            proto,
            &mut header,
            &mut size,
            buf.as_mut_ptr().cast(),
            &mut src,
            &mut dest,
            &mut protocol,
        );
        if status == efi::Status::SUCCESS {
            ctx.check(
                "snp.receive.arp_reply",
                protocol == ETHERTYPE_ARP
                    && header == 14
                    && mac6(&dest) == ours
                    && buf[..6] == ours
                    && buf[6..12] == mac6(&src)
                    && size >= 42
                    && buf[20..22] == [0, 2],
                format_args!(
                    "protocol {protocol:#x} header {header} size {size} dest {:02x?}",
                    mac6(&dest)
                ),
            );
            return;
        }
    }
    ctx.fail(
        "snp.receive.arp_reply",
        format_args!("no reply: {}", St(status)),
    );
}

fn mcast_ip_to_mac(ctx: &mut Ctx, proto: *mut snp::Protocol) {
    // SAFETY: `proto` is the live interface OpenProtocol returned (§24.1).
    let p = unsafe { &*proto };
    let mut ip = efi::IpAddress { addr: [0; 4] };
    ip.v4 = efi::Ipv4Address {
        addr: [224, 0, 0, 251],
    };
    let mut mac = mac32([0; 6]);
    let status = (p.mcast_ip_to_mac)(proto, efi::Boolean::FALSE, &mut ip, &mut mac);
    ctx.check(
        "snp.mcast_ip_to_mac.ipv4",
        status == efi::Status::SUCCESS && mac6(&mac) == [0x01, 0, 0x5e, 0, 0, 0xfb],
        format_args!("got {} {:02x?}", St(status), mac6(&mac)),
    );
    let mut v6 = [0u8; 16];
    v6[..2].copy_from_slice(&[0xff, 0x02]);
    v6[11..].copy_from_slice(&[0x01, 0xff, 0x12, 0x34, 0x56]);
    ip.v6 = efi::Ipv6Address { addr: v6 };
    let status = (p.mcast_ip_to_mac)(proto, efi::Boolean::TRUE, &mut ip, &mut mac);
    ctx.check(
        "snp.mcast_ip_to_mac.ipv6",
        status == efi::Status::SUCCESS && mac6(&mac) == [0x33, 0x33, 0xff, 0x12, 0x34, 0x56],
        format_args!("got {} {:02x?}", St(status), mac6(&mac)),
    );
}

fn station_address(ctx: &mut Ctx, proto: *mut snp::Protocol) {
    // SAFETY: `proto` is the live interface OpenProtocol returned (§24.1).
    let p = unsafe { &*proto };
    let before = mode(proto);
    let mut new = mac32([0x02, 0, 0, 0, 0, 0x01]);
    let status = (p.station_address)(proto, efi::Boolean::FALSE, &mut new);
    let changeable: bool = before.mac_address_changeable.into();
    if !changeable {
        ctx.expect(
            "snp.station_address.fixed",
            status,
            &[efi::Status::UNSUPPORTED, efi::Status::INVALID_PARAMETER],
        );
        return;
    }
    ctx.check(
        "snp.station_address.set",
        status == efi::Status::SUCCESS && mac6(&mode(proto).current_address) == mac6(&new),
        format_args!("got {}", St(status)),
    );
    let status = (p.station_address)(proto, efi::Boolean::TRUE, ptr::null_mut());
    ctx.check(
        "snp.station_address.reset",
        status == efi::Status::SUCCESS
            && mac6(&mode(proto).current_address) == mac6(&before.permanent_address),
        format_args!("got {}", St(status)),
    );
}
