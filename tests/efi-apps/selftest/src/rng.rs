//! EFI_RNG_PROTOCOL (UEFI 2.10 §37.5): GetInfo and GetRNG, including the argument rules
//! the UEFI SCT's RandomNumber conformance and function tests check (edk2-test,
//! `Protocol/RandomNumber/BlackBoxTest`): a too-small list is EFI_BUFFER_TOO_SMALL with
//! the size set to whole GUIDs, a zero length or NULL buffer is EFI_INVALID_PARAMETER
//! (also with a NULL algorithm), an unknown algorithm is EFI_UNSUPPORTED, and every
//! listed algorithm and the default (NULL) one deliver bytes.
//!
//! A firmware without any entropy source rightly has no protocol; the VM test gives
//! both firmwares a virtio-rng device, and the checks then run on both. Where the
//! protocol is absent the group says so as a `# ... skipped` line (not a PASS), and the
//! VM test asserts the checks ran.

use core::ffi::c_void;
use core::ptr;

use r_efi::efi;
use r_efi::protocols::rng;

use crate::ctx::{Ctx, St};

/// An algorithm GUID no firmware offers (the SCT uses a made-up one the same way).
const UNKNOWN_ALGORITHM: efi::Guid = efi::Guid::from_fields(
    0x1b0c_8f5e,
    0x7d21,
    0x4a8e,
    0x9c,
    0x43,
    &[0x6e, 0x15, 0xd2, 0x08, 0xa7, 0x3f],
);

/// The algorithms §37.5.1 defines.
const SPEC_ALGORITHMS: [efi::Guid; 6] = [
    rng::ALGORITHM_SP800_90_HASH_256_GUID,
    rng::ALGORITHM_SP800_90_HMAC_256_GUID,
    rng::ALGORITHM_SP800_90_CTR_256_GUID,
    rng::ALGORITHM_X9_31_3DES_GUID,
    rng::ALGORITHM_X9_31_AES_GUID,
    rng::ALGORITHM_RAW,
];

const MAX_ALGORITHMS: usize = 8;
const GUID_BYTES: usize = core::mem::size_of::<efi::Guid>();

pub fn run(ctx: &mut Ctx) {
    let mut guid = rng::PROTOCOL_GUID;
    let mut found: *mut c_void = ptr::null_mut();
    let status = (ctx.bs.locate_protocol)(&mut guid, ptr::null_mut(), &mut found);
    if status != efi::Status::SUCCESS || found.is_null() {
        ctx.print(format_args!(
            "# rng: skipped (no EFI_RNG_PROTOCOL: {}; the VM has no entropy source)\n",
            St(status)
        ));
        return;
    }
    ctx.pass("rng.locate");
    let proto = found.cast::<rng::Protocol>();
    // SAFETY: LocateProtocol returned a live EFI_RNG_PROTOCOL interface (§37.5).
    let (get_info, get_rng) = unsafe { ((*proto).get_info, (*proto).get_rng) };

    // Size query: 0 bytes, as the SCT's function test starts.
    let mut one = efi::Guid::from_fields(0, 0, 0, 0, 0, &[0; 6]);
    let mut size = 0usize;
    let status = get_info(proto, &mut size, &mut one);
    let whole_guids = |size: usize| size != 0 && size.is_multiple_of(GUID_BYTES);
    ctx.check(
        "rng.get_info.size_query",
        status == efi::Status::BUFFER_TOO_SMALL && whole_guids(size),
        format_args!("got {} size {size}", St(status)),
    );
    // The SCT's conformance probe: 10 bytes, less than one GUID.
    let mut size = 10usize;
    let status = get_info(proto, &mut size, &mut one);
    ctx.check(
        "rng.get_info.small_buffer",
        status == efi::Status::BUFFER_TOO_SMALL && whole_guids(size),
        format_args!("got {} size {size}", St(status)),
    );
    let status = get_info(proto, ptr::null_mut(), &mut one);
    ctx.expect(
        "rng.get_info.null_size",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );

    let mut list = [efi::Guid::from_fields(0, 0, 0, 0, 0, &[0; 6]); MAX_ALGORITHMS];
    let mut size = core::mem::size_of_val(&list);
    let status = get_info(proto, &mut size, list.as_mut_ptr());
    if !ctx.check(
        "rng.get_info.list",
        status == efi::Status::SUCCESS && whole_guids(size),
        format_args!("got {} size {size}", St(status)),
    ) {
        return;
    }
    let list = &mut list[..size / GUID_BYTES];
    ctx.check(
        "rng.get_info.spec_algorithms",
        list.iter().all(|a| SPEC_ALGORITHMS.contains(a)),
        format_args!("an algorithm outside §37.5.1 listed"),
    );
    ctx.check(
        "rng.get_info.raw_listed",
        list.contains(&rng::ALGORITHM_RAW),
        format_args!(
            "EFI_RNG_ALGORITHM_RAW missing from {} algorithms",
            list.len()
        ),
    );

    // Every listed algorithm delivers 256 bytes (the SCT's function test).
    let mut all_ok = true;
    for algorithm in list.iter_mut() {
        let mut value = [0u8; 256];
        let status = get_rng(proto, algorithm, value.len(), value.as_mut_ptr());
        if status != efi::Status::SUCCESS {
            all_ok = false;
            ctx.fail(
                "rng.get_rng.each_algorithm",
                format_args!("{:?}: {}", algorithm.as_bytes(), St(status)),
            );
        }
    }
    if all_ok {
        ctx.pass("rng.get_rng.each_algorithm");
    }

    // The default algorithm: two draws differ and are not all zero.
    let mut first = [0u8; 64];
    let mut second = [0u8; 64];
    let a = get_rng(proto, ptr::null_mut(), first.len(), first.as_mut_ptr());
    let b = get_rng(proto, ptr::null_mut(), second.len(), second.as_mut_ptr());
    ctx.check(
        "rng.get_rng.default",
        a == efi::Status::SUCCESS && b == efi::Status::SUCCESS,
        format_args!("got {} and {}", St(a), St(b)),
    );
    ctx.check(
        "rng.get_rng.default.random",
        first != second && first != [0; 64],
        format_args!("two 64-byte draws were equal or zero"),
    );

    // A length that is not a multiple of any word size: only those bytes are written.
    let mut raw = rng::ALGORITHM_RAW;
    let mut value = [0xA5u8; 32];
    let status = get_rng(proto, &mut raw, 13, value.as_mut_ptr());
    ctx.check(
        "rng.get_rng.raw.odd_length",
        status == efi::Status::SUCCESS && value[13..].iter().all(|&b| b == 0xA5),
        format_args!("got {}, or bytes past the 13 asked for changed", St(status)),
    );
    // More than a page in one call.
    let mut big = [0u8; 5000];
    let status = get_rng(proto, &mut raw, big.len(), big.as_mut_ptr());
    ctx.check(
        "rng.get_rng.raw.large",
        status == efi::Status::SUCCESS && big[4096..] != [0u8; 904],
        format_args!("got {}, or the tail stayed zero", St(status)),
    );

    // §37.5.2: RNGValueLength 0 or RNGValue NULL is EFI_INVALID_PARAMETER.
    let mut value = [0u8; 10];
    let mut first_listed = list[0];
    let status = get_rng(proto, &mut first_listed, 0, value.as_mut_ptr());
    ctx.expect(
        "rng.get_rng.zero_length",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = get_rng(proto, ptr::null_mut(), 0, value.as_mut_ptr());
    ctx.expect(
        "rng.get_rng.default.zero_length",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let status = get_rng(proto, &mut first_listed, value.len(), ptr::null_mut());
    ctx.expect(
        "rng.get_rng.null_buffer",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    let mut unknown = UNKNOWN_ALGORITHM;
    let status = get_rng(proto, &mut unknown, value.len(), value.as_mut_ptr());
    ctx.expect(
        "rng.get_rng.unsupported_algorithm",
        status,
        &[efi::Status::UNSUPPORTED],
    );
}
