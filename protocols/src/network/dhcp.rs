//! DHCPv4 for network boot: smoltcp's client (RFC 2131 DISCOVER, OFFER,
//! REQUEST, ACK) with the options a PXE or HTTP boot client sends (RFC 4578;
//! UEFI 2.10 §24.3 and §24.7.2), and what the ACK says to boot.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use platform::net::MacAddress;
use platform::sync::Global;
use smoltcp::iface::SocketSet;
use smoltcp::socket::dhcpv4;
use smoltcp::time::Duration;
use smoltcp::wire::{DhcpOption, DhcpPacket, Ipv4Address, Ipv4Cidr};

use super::error::NetBootError;
use super::stack::{Stack, now};

/// Which kind of boot client asks (RFC 4578 option 93, the vendor class).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootClient {
    /// PXE: "x64 UEFI" (architecture 0x0007).
    Pxe,
    /// UEFI HTTP boot: "x64 UEFI HTTP" (architecture 0x0010).
    Http,
}

impl BootClient {
    /// Option 60: the PXE spec's vendor class, with the architecture and
    /// UNDI version 3.0 (UEFI 2.10 §24.3.x; §24.7.2 for "HTTPClient").
    fn vendor_class(self) -> &'static [u8] {
        match self {
            BootClient::Pxe => b"PXEClient:Arch:00007:UNDI:003000",
            BootClient::Http => b"HTTPClient:Arch:00016:UNDI:003000",
        }
    }

    /// Option 93: the client system architecture (IANA "Processor
    /// Architecture Types").
    fn architecture(self) -> &'static [u8] {
        match self {
            BootClient::Pxe => &[0x00, 0x07],
            BootClient::Http => &[0x00, 0x10],
        }
    }
}

/// Option 94: client network interface identifier, UNDI 3.0 (RFC 4578 §2.2).
const NETWORK_INTERFACE_ID: &[u8] = &[1, 3, 0];
/// The options asked for (option 55): subnet mask, router, DNS servers, host
/// and domain name, vendor options, vendor class, TFTP server and boot file.
const PARAMETER_REQUEST_LIST: &[u8] = &[1, 3, 6, 12, 15, 43, 60, 66, 67];
const OPTION_VENDOR_CLASS: u8 = 60;
const OPTION_ARCHITECTURE: u8 = 93;
const OPTION_INTERFACE_ID: u8 = 94;
const OPTION_TFTP_SERVER: u8 = 66;
const OPTION_BOOT_FILE: u8 = 67;
/// How long a DISCOVER waits for an OFFER before the next: short, since a
/// VMM's DHCP server answers at once and the whole attempt has a deadline.
const DISCOVER_RETRY: Duration = Duration::from_millis(1500);
/// The largest DHCP message kept (UEFI 2.10 §24.3: EFI_PXE_BASE_CODE_PACKET).
pub const MAX_PACKET: usize = 1472;

/// An address lease and the ACK that granted it.
#[derive(Clone, Debug)]
pub struct Lease {
    pub address: Ipv4Cidr,
    pub router: Option<Ipv4Address>,
    pub server: Ipv4Address,
    /// The DNS servers (option 6), for names in HTTP boot URLs.
    pub dns: Vec<Ipv4Address>,
    /// The DHCP ACK as received (BOOTP header onwards), for the PXE Base
    /// Code's Mode.DhcpAck.
    pub ack: Vec<u8>,
}

/// The NICs on which DHCP went unanswered in this boot: the PXE and HTTP
/// options of one NIC then wait once, not each (the 10 s bound).
static UNANSWERED: Global<Vec<MacAddress>> = Global::new(Vec::new());

/// Runs DHCP on `stack` as `client` until an ACK, or gives up after
/// `deadline_ms` (at once when the NIC's DHCP already went unanswered).
pub fn acquire(
    stack: &mut Stack,
    client: BootClient,
    deadline_ms: u64,
) -> Result<Lease, NetBootError> {
    let mac = stack.mac();
    if UNANSWERED.with(|silent| silent.contains(&mac)) {
        return Err(NetBootError::NoLease { waited_ms: 0 });
    }
    let options = [
        DhcpOption {
            kind: OPTION_VENDOR_CLASS,
            data: client.vendor_class(),
        },
        DhcpOption {
            kind: OPTION_ARCHITECTURE,
            data: client.architecture(),
        },
        DhcpOption {
            kind: OPTION_INTERFACE_ID,
            data: NETWORK_INTERFACE_ID,
        },
    ];
    let mut packet = vec![0u8; MAX_PACKET];
    let mut socket = dhcpv4::Socket::new();
    socket.set_outgoing_options(&options);
    socket.set_parameter_request_list(PARAMETER_REQUEST_LIST);
    socket.set_receive_packet_buffer(&mut packet);
    let mut retry = dhcpv4::RetryConfig::default();
    retry.discover_timeout = DISCOVER_RETRY;
    retry.initial_request_timeout = DISCOVER_RETRY;
    socket.set_retry_config(retry);
    let mut storage = [smoltcp::iface::SocketStorage::EMPTY];
    let mut sockets = SocketSet::new(&mut storage[..]);
    let handle = sockets.add(socket);
    let start = now();
    loop {
        stack.poll(&mut sockets)?;
        let socket = sockets.get_mut::<dhcpv4::Socket>(handle);
        if let Some(dhcpv4::Event::Configured(config)) = socket.poll() {
            let ack = config
                .packet
                .map(|p| p.into_inner().to_vec())
                .unwrap_or_default();
            return Ok(Lease {
                address: config.address,
                router: config.router,
                server: config.server.identifier,
                dns: config.dns_servers.iter().copied().collect(),
                ack,
            });
        }
        let waited_ms = (now() - start).total_millis();
        if waited_ms >= deadline_ms {
            UNANSWERED.with(|silent| silent.push(mac));
            return Err(NetBootError::NoLease { waited_ms });
        }
        core::hint::spin_loop();
    }
}

/// Where the ACK says the boot file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootFile {
    /// The TFTP server: `siaddr` (next server), else option 66 when it is
    /// an address, else the DHCP server.
    pub server: Ipv4Address,
    /// Option 67 when present (RFC 2132 §9.5), else the BOOTP `file` field.
    pub name: String,
}

/// The boot file of an ACK from `dhcp_server`, if it names one.
pub fn boot_file(ack: &[u8], dhcp_server: Ipv4Address) -> Option<BootFile> {
    let packet = DhcpPacket::new_checked(ack).ok()?;
    let option = |kind: u8| {
        packet
            .options()
            .find(|option| option.kind == kind)
            .map(|option| trim_nul(option.data))
    };
    let name = match option(OPTION_BOOT_FILE) {
        Some(name) if !name.is_empty() => String::from_utf8_lossy(name).into_owned(),
        _ => String::from(packet.get_boot_file().ok()?),
    };
    let next_server = packet.server_ip();
    let server = if !next_server.is_unspecified() {
        next_server
    } else if let Some(address) = option(OPTION_TFTP_SERVER)
        .and_then(|text| core::str::from_utf8(text).ok())
        .and_then(|text| text.parse::<Ipv4Address>().ok())
    {
        address
    } else {
        dhcp_server
    };
    Some(BootFile { server, name })
}

/// A DHCP string option without the NUL some servers append.
fn trim_nul(data: &[u8]) -> &[u8] {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    &data[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BOOTP/DHCP ACK with `siaddr`, `file` and the given options.
    fn ack(siaddr: [u8; 4], file: &[u8], options: &[(u8, &[u8])]) -> Vec<u8> {
        let mut packet = vec![0u8; 240];
        packet[0] = 2; // BOOTREPLY
        packet[1] = 1;
        packet[2] = 6;
        packet[20..24].copy_from_slice(&siaddr);
        packet[108..108 + file.len()].copy_from_slice(file);
        packet[236..240].copy_from_slice(&[99, 130, 83, 99]);
        packet.extend_from_slice(&[53, 1, 5]);
        for (kind, data) in options {
            packet.push(*kind);
            packet.push(data.len() as u8);
            packet.extend_from_slice(data);
        }
        packet.push(255);
        packet
    }

    const DHCP_SERVER: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

    #[test]
    fn the_file_field_and_next_server_name_the_boot_file() {
        let found = boot_file(&ack([10, 0, 2, 4], b"d-i/bootnetx64.efi", &[]), DHCP_SERVER);
        assert_eq!(
            found,
            Some(BootFile {
                server: Ipv4Address::new(10, 0, 2, 4),
                name: "d-i/bootnetx64.efi".into()
            })
        );
    }

    #[test]
    fn options_66_and_67_override_an_empty_header() {
        let found = boot_file(
            &ack([0; 4], b"", &[(66, b"192.168.1.9\0"), (67, b"ipxe.efi\0")]),
            DHCP_SERVER,
        )
        .unwrap();
        assert_eq!(found.server, Ipv4Address::new(192, 168, 1, 9));
        assert_eq!(found.name, "ipxe.efi");
    }

    #[test]
    fn without_a_next_server_the_dhcp_server_serves() {
        let found = boot_file(&ack([0; 4], b"boot.efi", &[]), DHCP_SERVER).unwrap();
        assert_eq!(found.server, DHCP_SERVER);
    }

    #[test]
    fn no_file_or_a_short_packet_is_none() {
        assert_eq!(boot_file(&ack([1, 2, 3, 4], b"", &[]), DHCP_SERVER), None);
        assert_eq!(boot_file(&[2, 1, 6], DHCP_SERVER), None);
    }
}
