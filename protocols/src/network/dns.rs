//! Names in HTTP boot URLs: smoltcp's DNS client (RFC 1035 A queries over
//! UDP) asking the servers the DHCP lease named.

use smoltcp::iface::{SocketSet, SocketStorage};
use smoltcp::socket::dns::{self, GetQueryResultError};
use smoltcp::wire::{DnsQueryType, IpAddress, Ipv4Address};

use super::error::NetBootError;
use super::stack::{Stack, now};

/// How long a name may take to resolve (smoltcp retransmits inside it).
const RESOLVE_MS: u64 = 5000;

/// The first IPv4 address of `name`, from `servers`.
pub fn resolve(
    stack: &mut Stack,
    servers: &[Ipv4Address],
    name: &str,
) -> Result<Ipv4Address, NetBootError> {
    if servers.is_empty() {
        return Err(NetBootError::NoDnsServer);
    }
    let servers: alloc::vec::Vec<IpAddress> = servers.iter().map(|&s| IpAddress::Ipv4(s)).collect();
    let mut queries = [None];
    let socket = dns::Socket::new(&servers, &mut queries[..]);
    let mut storage = [SocketStorage::EMPTY];
    let mut sockets = SocketSet::new(&mut storage[..]);
    let handle = sockets.add(socket);
    let query = {
        let socket = sockets.get_mut::<dns::Socket>(handle);
        socket
            .start_query(stack.iface.context(), name, DnsQueryType::A)
            .map_err(|_| NetBootError::NameNotFound)?
    };
    let started = now();
    loop {
        stack.poll(&mut sockets)?;
        match sockets
            .get_mut::<dns::Socket>(handle)
            .get_query_result(query)
        {
            Ok(addresses) => {
                return addresses
                    .iter()
                    .find_map(|address| match address {
                        IpAddress::Ipv4(v4) => Some(*v4),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    })
                    .ok_or(NetBootError::NameNotFound);
            }
            Err(GetQueryResultError::Failed) => return Err(NetBootError::NameNotFound),
            Err(GetQueryResultError::Pending) => {}
        }
        let waited_ms = (now() - started).total_millis();
        if waited_ms >= RESOLVE_MS {
            return Err(NetBootError::Timeout {
                what: "DNS server",
                waited_ms,
            });
        }
    }
}
