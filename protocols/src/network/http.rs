//! HTTP/1.1 for HTTP boot (RFC 9110, RFC 9112): `http://` URLs, the GET
//! request, the response head (through `httparse`), redirects and the
//! chunked transfer coding, over byte slices. The TCP exchange that drives
//! them is in `http_client`. HTTPS is not implemented.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Where an URL's server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Ipv4([u8; 4]),
    /// A DNS name (RFC 1123 letters, digits, hyphens and dots), lower-cased.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ipv4([a, b, c, d]) => write!(f, "{a}.{b}.{c}.{d}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// An `http://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub host: Host,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub target: String,
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.host)?;
        if self.port != 80 {
            write!(f, ":{}", self.port)?;
        }
        f.write_str(&self.target)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not one we can fetch (`what` says why).
    BadUrl(&'static str),
    /// The server's answer is no HTTP/1.x response we understand.
    Malformed(&'static str),
    /// The server answered with this status (not 2xx, not a redirect).
    Status(u16),
    /// More redirects than we follow.
    TooManyRedirects,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadUrl(what) => write!(f, "unusable URL: {what}"),
            HttpError::Malformed(what) => write!(f, "malformed response: {what}"),
            HttpError::Status(code) => write!(f, "server answered {code}"),
            HttpError::TooManyRedirects => write!(f, "too many redirects"),
        }
    }
}

/// Parses `http://host[:port][/path]`, the host an IPv4 address or a DNS
/// name.
pub fn parse_url(text: &str) -> Result<Url, HttpError> {
    let rest = match text.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(HttpError::BadUrl("HTTPS is not supported"));
        }
        _ => return Err(HttpError::BadUrl("not an http:// URL")),
    };
    let (authority, target) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(HttpError::BadUrl("credentials in URLs are not supported"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or(HttpError::BadUrl("bad port"))?,
        ),
        None => (authority, 80),
    };
    let host = match parse_ipv4(host) {
        Some(address) => Host::Ipv4(address),
        None if is_dns_name(host) => Host::Name(host.to_ascii_lowercase()),
        None => return Err(HttpError::BadUrl("the host is no IPv4 address or DNS name")),
    };
    let mut target = String::from(target);
    if target.starts_with('?') {
        target.insert(0, '/');
    }
    if target.bytes().any(|b| b <= b' ' || b == 0x7F) {
        return Err(HttpError::BadUrl(
            "spaces or control characters in the path",
        ));
    }
    Ok(Url { host, port, target })
}

/// Letters, digits and hyphens in dot-separated labels of 1-63 bytes, at
/// most 253 in all (RFC 1123 §2.1); all-numeric names are taken for
/// (malformed) addresses.
fn is_dns_name(text: &str) -> bool {
    let text = text.strip_suffix('.').unwrap_or(text);
    text.len() <= 253
        && !text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn parse_ipv4(text: &str) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then_some(octets)
}

/// The GET request for `url` (RFC 9112 §3: request line, Host; the
/// connection closes after the response).
pub fn request(url: &Url) -> Vec<u8> {
    let mut host = alloc::format!("{}", url.host);
    if url.port != 80 {
        host.push_str(&alloc::format!(":{}", url.port));
    }
    alloc::format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vmfw\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.target
    )
    .into_bytes()
}

/// What the response head says about the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes the head takes, the body starts after them.
    pub len: usize,
    pub content_length: Option<u64>,
    pub chunked: bool,
    pub location: Option<String>,
}

impl Head {
    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }
}

/// Headers we look at; more are allowed and ignored by httparse's count.
const MAX_HEADERS: usize = 64;

/// Parses a response head from the start of `bytes`: `None` while it is
/// incomplete.
pub fn parse_head(bytes: &[u8]) -> Result<Option<Head>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::Malformed("more than 64 headers"));
        }
        Err(_) => return Err(HttpError::Malformed("bad status line or header")),
    };
    let status = response.code.ok_or(HttpError::Malformed("no status"))?;
    let mut head = Head {
        status,
        len,
        content_length: None,
        chunked: false,
        location: None,
    };
    for header in response.headers.iter() {
        let value = core::str::from_utf8(header.value)
            .map_err(|_| HttpError::Malformed("header value is not text"))?
            .trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<u64>()
                .map_err(|_| HttpError::Malformed("bad Content-Length"))?;
            // RFC 9112 §6.3: differing lengths are an unrecoverable error.
            if head.content_length.is_some_and(|known| known != length) {
                return Err(HttpError::Malformed("conflicting Content-Length"));
            }
            head.content_length = Some(length);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // RFC 9112 §6.1: chunked, when present, is the final coding.
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err(HttpError::Malformed("a transfer coding other than chunked"));
            }
            head.chunked = true;
        } else if header.name.eq_ignore_ascii_case("location") {
            head.location = Some(String::from(value));
        }
    }
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length.
    if head.chunked {
        head.content_length = None;
    }
    Ok(Some(head))
}

/// The URL a redirect's `Location` names, absolute or relative to `base`'s
/// host (RFC 9110 §10.2.2).
pub fn resolve_location(base: &Url, location: &str) -> Result<Url, HttpError> {
    if location.contains("://") {
        return parse_url(location);
    }
    if location.starts_with("//") {
        return parse_url(&alloc::format!("http:{location}"));
    }
    let target = if location.starts_with('/') {
        String::from(location)
    } else {
        // Relative to the base path's directory.
        let directory = base.target.split('?').next().unwrap_or("/");
        let end = directory.rfind('/').map_or(0, |at| at + 1);
        alloc::format!("{}{location}", &directory[..end])
    };
    parse_url(&alloc::format!(
        "{}{target}",
        Url {
            target: String::new(),
            ..base.clone()
        }
    ))
}

/// The chunked transfer coding's decoder (RFC 9112 §7.1), fed whatever
/// bytes arrive.
#[derive(Clone, Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    /// A chunk-size line or trailer line still incomplete.
    line: Vec<u8>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// Longest chunk-size or trailer line kept while it is incomplete.
const MAX_LINE: usize = 4096;

impl Chunked {
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes `input`, handing each run of body bytes to `out`.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>,
    ) -> Result<(), HttpError> {
        while !input.is_empty() && self.state != ChunkState::Done {
            match self.state {
                ChunkState::Data(remaining) => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    out(&input[..take])?;
                    input = &input[take..];
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailer => {
                    let Some(end) = input.iter().position(|&b| b == b'\n') else {
                        self.keep(input)?;
                        return Ok(());
                    };
                    self.keep(&input[..=end])?;
                    input = &input[end + 1..];
                    let line = core::mem::take(&mut self.line);
                    self.on_line(&line)?;
                }
                ChunkState::Done => {}
            }
        }
        Ok(())
    }

    fn keep(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        if self.line.len() + bytes.len() > MAX_LINE {
            return Err(HttpError::Malformed("chunk line too long"));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// One whole line (with its LF) in a state that expects a line.
    fn on_line(&mut self, line: &[u8]) -> Result<(), HttpError> {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        self.state = match self.state {
            ChunkState::DataEnd if text.is_empty() => ChunkState::Size,
            ChunkState::DataEnd => return Err(HttpError::Malformed("chunk longer than its size")),
            ChunkState::Size => match httparse::parse_chunk_size(line) {
                Ok(httparse::Status::Complete((_, 0))) => ChunkState::Trailer,
                Ok(httparse::Status::Complete((_, size))) => ChunkState::Data(size),
                _ => return Err(HttpError::Malformed("bad chunk size")),
            },
            ChunkState::Trailer if text.is_empty() => ChunkState::Done,
            ChunkState::Trailer => ChunkState::Trailer,
            state => state,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_ports_paths_and_queries() {
        let url = parse_url("http://10.0.2.2:8080/boot/disk.img?x=1").unwrap();
        assert_eq!(url.host, Host::Ipv4([10, 0, 2, 2]));
        assert_eq!(url.port, 8080);
        assert_eq!(url.target, "/boot/disk.img?x=1");
        assert_eq!(url.to_string(), "http://10.0.2.2:8080/boot/disk.img?x=1");
        let named = parse_url("http://Boot.Example.org:8080/a.efi").unwrap();
        assert_eq!(named.host, Host::Name("boot.example.org".into()));
        assert_eq!(named.to_string(), "http://boot.example.org:8080/a.efi");
        let bare = parse_url("HTTP://192.168.1.1").unwrap();
        assert_eq!((bare.port, bare.target.as_str()), (80, "/"));
        for bad in [
            "https://10.0.2.2/x",
            "ftp://10.0.2.2/x",
            "http://10.0.2.2:0/x",
            "http://10.0.2.256/x",
            "http://-boot.example/x",
            "http://boot..example/x",
            "http://boot_1.example/x",
            "http://u:p@10.0.2.2/x",
            "http://10.0.2.2/a b",
            "10.0.2.2/x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_request_names_the_target_and_host() {
        let url = parse_url("http://10.0.2.2:8000/a.efi").unwrap();
        assert_eq!(
            request(&url),
            b"GET /a.efi HTTP/1.1\r\nHost: 10.0.2.2:8000\r\nUser-Agent: vmfw\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn heads_give_length_coding_and_location() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nServer: x\r\n\r\nBODY";
        let parsed = parse_head(head).unwrap().unwrap();
        assert_eq!(parsed.status, 200);
        assert_eq!(parsed.content_length, Some(1234));
        assert_eq!(&head[parsed.len..], b"BODY");
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        let chunked =
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        let parsed = parse_head(chunked).unwrap().unwrap();
        assert!(parsed.chunked);
        assert_eq!(parsed.content_length, None);
        let moved = parse_head(b"HTTP/1.0 302 Found\r\nLocation: /new\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(moved.is_redirect());
        assert_eq!(moved.location.as_deref(), Some("/new"));
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn redirects_resolve_against_the_base() {
        let base = parse_url("http://10.0.2.2:8000/images/a.img").unwrap();
        let to = |location| resolve_location(&base, location).unwrap().to_string();
        assert_eq!(to("/b.img"), "http://10.0.2.2:8000/b.img");
        assert_eq!(to("c.img"), "http://10.0.2.2:8000/images/c.img");
        assert_eq!(to("http://10.0.2.3/d.img"), "http://10.0.2.3/d.img");
        assert_eq!(to("//10.0.2.4:81/e"), "http://10.0.2.4:81/e");
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let body =
            b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n";
        for split in 1..body.len() {
            let mut decoder = Chunked::default();
            let mut out = Vec::new();
            for piece in body.chunks(split) {
                decoder
                    .feed(piece, &mut |bytes| {
                        out.extend_from_slice(bytes);
                        Ok(())
                    })
                    .unwrap();
            }
            assert!(decoder.is_done(), "split {split}");
            assert_eq!(out, b"Wikipedia in \r\n\r\nchunks.");
        }
        let mut decoder = Chunked::default();
        let mut sink = |_: &[u8]| Ok(());
        assert!(decoder.feed(b"zz\r\n", &mut sink).is_err());
        let mut decoder = Chunked::default();
        assert!(decoder.feed(b"2\r\nabc\r\n", &mut sink).is_err());
    }
}
