//! The network boot clients' parsers, over bytes a DHCP, TFTP or HTTP
//! server controls (`protocols::network`): the mode byte picks
//! 0: a TFTP read fed a sequence of packets (the offsets it hands out must
//!    stay consecutive and within what it counted),
//! 1: an HTTP response head, then the body through the chunked decoder in
//!    pieces of varying size (the bytes out never exceed the bytes in),
//! 2: a URL, and a redirect's Location against it (anything parsed prints
//!    back as a URL that parses to the same),
//! 3: a DHCP ACK's boot file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocols::network::{dhcp, http, tftp};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => tftp_read(rest),
        1 => http_response(rest),
        2 => urls(rest),
        _ => {
            let server = smoltcp::wire::Ipv4Address::new(10, 0, 2, 2);
            let _ = dhcp::boot_file(rest, server);
        }
    }
});

/// Packets as (2-byte length, bytes) records.
fn tftp_read(mut rest: &[u8]) {
    let Some((&options, tail)) = rest.split_first() else {
        return;
    };
    rest = tail;
    let block_size = [512, 1468, 8][usize::from(options % 3)];
    let mut download = tftp::Download::new(block_size, options & 4 != 0);
    let mut expected = 0u64;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_le_bytes(*len)).min(tail.len());
        let (packet, tail) = tail.split_at(len);
        rest = tail;
        match download.on_packet(packet) {
            Ok(tftp::Step::Data { offset, data, .. }) => {
                assert_eq!(offset, expected);
                expected += data.len() as u64;
                assert_eq!(download.received(), expected);
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn http_response(rest: &[u8]) {
    let Ok(Some(head)) = http::parse_head(rest) else {
        return;
    };
    assert!(head.len <= rest.len());
    let body = &rest[head.len..];
    let mut decoder = http::Chunked::default();
    let mut out = 0usize;
    let mut fed = 0usize;
    let step = 1 + body.first().copied().unwrap_or(0) as usize % 17;
    for piece in body.chunks(step) {
        fed += piece.len();
        let result = decoder.feed(piece, &mut |bytes| {
            out += bytes.len();
            Ok(())
        });
        assert!(out <= fed);
        if result.is_err() || decoder.is_done() {
            break;
        }
    }
}

fn urls(rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    let (url, location) = text.split_once('\n').unwrap_or((&text, "/"));
    let Ok(base) = http::parse_url(url) else {
        return;
    };
    assert_eq!(http::parse_url(&base.to_string()), Ok(base.clone()));
    let _ = http::request(&base);
    if let Ok(next) = http::resolve_location(&base, location) {
        assert_eq!(http::parse_url(&next.to_string()), Ok(next));
    }
}
