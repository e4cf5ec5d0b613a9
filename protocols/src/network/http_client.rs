//! An HTTP/1.1 GET over smoltcp's TCP: connect, send the request, read the
//! head, follow redirects, and hand the body (by Content-Length, chunked,
//! or up to the close) to a sink.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, Ipv4Address};

use super::error::NetBootError;
use super::http::{self, Chunked, Head, Host, HttpError, Url};
use super::stack::{Stack, now};

/// Where a body goes.
pub trait Sink {
    /// The body's length, when the head gives it, before any data.
    fn length(&mut self, length: Option<u64>) -> Result<(), NetBootError>;
    /// The next bytes of the body.
    fn data(&mut self, bytes: &[u8]) -> Result<(), NetBootError>;
}

/// Redirects followed before giving up (RFC 9110 §15.4 leaves the limit to
/// the client; browsers stop at about 20, five is plenty for boot files).
const MAX_REDIRECTS: u32 = 5;
/// How long a connection may take to open, and the longest silence while
/// a response is due.
const CONNECT_MS: u64 = 5000;
const IDLE_MS: u64 = 10_000;
/// The receive window: at TCG speeds the poll loop drains it between the
/// server's bursts; more buys nothing measurable.
const RECEIVE_BUFFER: usize = 256 * 1024;
const SEND_BUFFER: usize = 4096;
/// Largest response head we wait for.
const MAX_HEAD: usize = 64 * 1024;

/// GETs `url`, following redirects, host names resolved through
/// `dns_servers`; returns the URL that answered and the body's length.
pub fn get(
    stack: &mut Stack,
    url: &Url,
    dns_servers: &[Ipv4Address],
    sink: &mut dyn Sink,
) -> Result<(Url, u64), NetBootError> {
    let mut url = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let address = match &url.host {
            Host::Ipv4(octets) => Ipv4Address::from_octets(*octets),
            Host::Name(name) => {
                let address = super::dns::resolve(stack, dns_servers, name)?;
                log::info!("http: {name} is {address}");
                address
            }
        };
        match fetch(stack, &url, address, sink)? {
            Fetched::Body(length) => return Ok((url, length)),
            Fetched::Redirect(location) => {
                let next = http::resolve_location(&url, &location)?;
                log::info!("http: {url} redirects to {next}");
                url = next;
            }
        }
    }
    Err(HttpError::TooManyRedirects.into())
}

enum Fetched {
    Body(u64),
    Redirect(alloc::string::String),
}

/// How the body ends.
enum Body {
    Length { remaining: u64 },
    Chunked(Chunked),
    UntilClose,
}

fn fetch(
    stack: &mut Stack,
    url: &Url,
    address: Ipv4Address,
    sink: &mut dyn Sink,
) -> Result<Fetched, NetBootError> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; RECEIVE_BUFFER]),
        tcp::SocketBuffer::new(vec![0; SEND_BUFFER]),
    );
    // Acknowledge at once: smoltcp's 10 ms delayed ACK held the sender
    // back (a 100 MB GET at 30-37 MB/s; 41 MB/s without it, TCG).
    socket.set_ack_delay(None);
    let local_port = 49152 + (platform::tsc::ticks() % 16384) as u16;
    let remote = (IpAddress::Ipv4(address), url.port);
    socket
        .connect(stack.iface.context(), remote, local_port)
        .map_err(|_| HttpError::BadUrl("cannot connect there"))?;
    let mut storage = [SocketStorage::EMPTY];
    let mut sockets = SocketSet::new(&mut storage[..]);
    let handle = sockets.add(socket);
    let request = http::request(url);
    let mut sent = 0;
    let mut head_bytes: Vec<u8> = Vec::new();
    let mut body: Option<Body> = None;
    let mut received: u64 = 0;
    let mut chunk = vec![0u8; 16 * 1024];
    let mut last_progress = now();
    let mut connected = false;
    loop {
        stack.poll(&mut sockets)?;
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if socket.state() == tcp::State::Established {
            connected = true;
        }
        if !connected && !socket.is_open() {
            return Err(NetBootError::Refused {
                what: "HTTP connect",
            });
        }
        if sent < request.len() && socket.can_send() {
            sent += socket.send_slice(&request[sent..]).unwrap_or(0);
        }
        let mut finished = false;
        while socket.can_recv() {
            let len = socket.recv_slice(&mut chunk).unwrap_or(0);
            if len == 0 {
                break;
            }
            last_progress = now();
            let mut bytes = &chunk[..len];
            if body.is_none() {
                if head_bytes.len() + bytes.len() > MAX_HEAD {
                    return Err(HttpError::Malformed("response head too long").into());
                }
                head_bytes.extend_from_slice(bytes);
                let Some(head) = http::parse_head(&head_bytes)? else {
                    continue;
                };
                if let Some(outcome) = on_head(&head, url)? {
                    socket.abort();
                    let _ = stack.poll(&mut sockets);
                    return Ok(outcome);
                }
                sink.length(head.content_length)?;
                body = Some(match (head.chunked, head.content_length) {
                    (true, _) => Body::Chunked(Chunked::default()),
                    (false, Some(length)) => Body::Length { remaining: length },
                    (false, None) => Body::UntilClose,
                });
                let rest = head_bytes.split_off(head.len);
                bytes = &[];
                finished = deliver(body.as_mut(), &rest, sink, &mut received)?;
            }
            if !bytes.is_empty() {
                finished = deliver(body.as_mut(), bytes, sink, &mut received)?;
            }
            if finished {
                break;
            }
        }
        let closed = !socket.may_recv() && connected;
        if finished || (closed && matches!(body, Some(Body::UntilClose))) {
            socket.abort();
            let _ = stack.poll(&mut sockets);
            return Ok(Fetched::Body(received));
        }
        if closed {
            return Err(HttpError::Malformed("connection closed before the body ended").into());
        }
        let waited_ms = (now() - last_progress).total_millis();
        let limit = if connected { IDLE_MS } else { CONNECT_MS };
        if waited_ms >= limit {
            return Err(NetBootError::Timeout {
                what: if connected {
                    "HTTP server"
                } else {
                    "HTTP connect"
                },
                waited_ms,
            });
        }
    }
}

/// A redirect to follow, an error status, or `None` to read the body.
fn on_head(head: &Head, url: &Url) -> Result<Option<Fetched>, NetBootError> {
    if head.is_redirect() {
        let location = head
            .location
            .clone()
            .ok_or(HttpError::Malformed("redirect without Location"))?;
        return Ok(Some(Fetched::Redirect(location)));
    }
    if !(200..300).contains(&head.status) {
        log::info!("http: {url}: status {}", head.status);
        return Err(HttpError::Status(head.status).into());
    }
    Ok(None)
}

/// Hands body bytes to the sink; true when the body is complete.
fn deliver(
    body: Option<&mut Body>,
    bytes: &[u8],
    sink: &mut dyn Sink,
    received: &mut u64,
) -> Result<bool, NetBootError> {
    let Some(body) = body else {
        return Ok(false);
    };
    match body {
        Body::Length { remaining } => {
            let take = usize::try_from(*remaining)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            sink.data(&bytes[..take])?;
            *remaining -= take as u64;
            *received += take as u64;
            Ok(*remaining == 0)
        }
        Body::UntilClose => {
            sink.data(bytes)?;
            *received += bytes.len() as u64;
            Ok(false)
        }
        Body::Chunked(decoder) => {
            let mut failure = None;
            decoder
                .feed(bytes, &mut |data| {
                    *received += data.len() as u64;
                    sink.data(data).map_err(|error| {
                        failure = Some(error);
                        HttpError::Malformed("sink refused")
                    })
                })
                .map_err(|error| failure.take().unwrap_or(error.into()))?;
            Ok(decoder.is_done())
        }
    }
}
