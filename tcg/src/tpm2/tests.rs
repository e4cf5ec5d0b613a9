//! Byte-exact commands and hand-built responses (layouts from TPM 2.0
//! Part 3's command and response tables).

use alloc::vec::Vec;

use super::*;
use crate::alg::hash;

/// A response with `tag` and `code` around `body`, its size filled in.
fn response(tag: u16, code: u32, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&tag.to_be_bytes());
    r.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_be_bytes());
    r.extend_from_slice(&code.to_be_bytes());
    r.extend_from_slice(body);
    r
}

#[test]
fn startup_and_self_test_are_byte_exact() {
    assert_eq!(
        startup_clear().as_bytes(),
        [0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0]
    );
    assert_eq!(
        self_test(true).as_bytes(),
        [0x80, 0x01, 0, 0, 0, 0x0b, 0, 0, 0x01, 0x43, 0x01]
    );
    assert_eq!(
        self_test(false).as_bytes(),
        [0x80, 0x01, 0, 0, 0, 0x0b, 0, 0, 0x01, 0x43, 0x00]
    );
    assert_eq!(startup_clear().code(), cc::STARTUP);
}

#[test]
fn get_capability_pcrs_is_byte_exact() {
    assert_eq!(
        get_capability_pcrs().as_bytes(),
        [
            0x80, 0x01, 0, 0, 0, 0x16, 0, 0, 0x01, 0x7a, // header
            0, 0, 0, 0x05, // TPM_CAP_PCRS
            0, 0, 0, 0, // property
            0, 0, 0, 0x01, // propertyCount
        ]
    );
}

#[test]
fn pcr_extend_is_byte_exact() {
    let digest = hash(AlgorithmId::SHA256, b"abc").unwrap();
    let command = pcr_extend(7, &[digest]).unwrap();
    let mut expected = alloc::vec![
        0x80, 0x02, 0, 0, 0, 0x41, 0, 0, 0x01, 0x82, // header, 65 bytes
        0, 0, 0, 7, // pcrHandle
        0, 0, 0, 9, // authorizationSize
        0x40, 0, 0, 0x09, 0, 0, 0x01, 0, 0, // TPM_RS_PW, no nonce, continueSession, no hmac
        0, 0, 0, 1, 0, 0x0b, // one TPMT_HA of SHA-256
    ];
    expected.extend_from_slice(digest.as_bytes());
    assert_eq!(command.as_bytes(), expected.as_slice());
}

#[test]
fn pcr_extend_carries_every_bank() {
    let sha1 = hash(AlgorithmId::SHA1, b"x").unwrap();
    let sha384 = hash(AlgorithmId::SHA384, b"x").unwrap();
    let command = pcr_extend(0, &[sha1, sha384]).unwrap();
    let bytes = command.as_bytes();
    assert_eq!(bytes.len(), 10 + 4 + 4 + 9 + 4 + (2 + 20) + (2 + 48));
    assert_eq!(&bytes[27..31], [0, 0, 0, 2]);
    assert_eq!(&bytes[31..33], [0, 0x04]);
    assert_eq!(&bytes[53..55], [0, 0x0c]);
}

#[test]
fn pcr_extend_refuses_bad_arguments() {
    let d = hash(AlgorithmId::SHA256, b"").unwrap();
    assert_eq!(
        pcr_extend(24, &[d]).unwrap_err(),
        Error::BadArgument("PCR index above 23")
    );
    assert!(pcr_extend(0, &[]).is_err());
    assert!(pcr_extend(0, &[d; MAX_EXTEND_DIGESTS + 1]).is_err());
    // The largest allowed command fits.
    let big = hash(AlgorithmId::SHA512, b"").unwrap();
    let c = pcr_extend(23, &[big; MAX_EXTEND_DIGESTS]).unwrap();
    assert_eq!(c.as_bytes().len(), 559);
    assert_eq!(&c.as_bytes()[2..6], 559u32.to_be_bytes());
}

#[test]
fn pcr_read_is_byte_exact() {
    assert_eq!(
        pcr_read(17, AlgorithmId::SHA256).unwrap().as_bytes(),
        [
            0x80, 0x01, 0, 0, 0, 0x14, 0, 0, 0x01, 0x7e, // header
            0, 0, 0, 1, 0, 0x0b, 3, 0, 0, 0x02, // one selection: PCR 17
        ]
    );
    assert!(pcr_read(24, AlgorithmId::SHA256).is_err());
}

#[test]
fn headers_are_checked() {
    let ok = response(ST_NO_SESSIONS, 0, &[]);
    assert_eq!(check(&ok), Ok(&[][..]));
    let mut bad_tag = ok.clone();
    bad_tag[0] = 0x00;
    bad_tag[1] = 0xc4; // TPM 1.2's TPM_TAG_RSP_COMMAND
    assert_eq!(check(&bad_tag), Err(Error::BadTag(0x00c4)));
    let mut long = ok.clone();
    long.push(0);
    assert!(matches!(check(&long), Err(Error::BadSize { .. })));
    assert!(matches!(check(&ok[..9]), Err(Error::Truncated { .. })));
    let mut tiny = ok.clone();
    tiny[5] = 4;
    assert!(matches!(
        ResponseHeader::parse(&tiny),
        Err(Error::BadSize { .. })
    ));
    let failure = response(ST_NO_SESSIONS, 0x101, &[]);
    assert_eq!(check(&failure), Err(Error::Rc(ResponseCode::FAILURE)));
}

#[test]
fn startup_accepts_an_already_started_tpm() {
    assert_eq!(parse_startup(&response(ST_NO_SESSIONS, 0, &[])), Ok(true));
    assert_eq!(
        parse_startup(&response(ST_NO_SESSIONS, 0x100, &[])),
        Ok(false)
    );
    assert_eq!(
        parse_startup(&response(ST_NO_SESSIONS, 0x101, &[])),
        Err(Error::Rc(ResponseCode::FAILURE))
    );
}

/// What swtpm answers by default: sha1 and sha256 with all 24 PCRs,
/// sha384 and sha512 present but unallocated.
fn swtpm_banks() -> Vec<u8> {
    let mut body = alloc::vec![0, 0, 0, 0, 5, 0, 0, 0, 4];
    body.extend_from_slice(&[0, 0x04, 3, 0xff, 0xff, 0xff]);
    body.extend_from_slice(&[0, 0x0b, 3, 0xff, 0xff, 0xff]);
    body.extend_from_slice(&[0, 0x0c, 3, 0, 0, 0]);
    body.extend_from_slice(&[0, 0x0d, 3, 0, 0, 0]);
    response(ST_NO_SESSIONS, 0, &body)
}

#[test]
fn pcr_banks_are_parsed() {
    let banks = parse_pcr_banks(&swtpm_banks()).unwrap();
    assert_eq!(banks.all().len(), 4);
    assert_eq!(banks.all()[1].pcrs, 0x00ff_ffff);
    assert!(banks.contains(AlgorithmId::SHA512));
    let active: Vec<_> = banks.active().collect();
    assert_eq!(active, [AlgorithmId::SHA1, AlgorithmId::SHA256]);
}

#[test]
fn unsupported_banks_are_present_but_not_active() {
    let mut body = alloc::vec![0, 0, 0, 0, 5, 0, 0, 0, 2];
    body.extend_from_slice(&[0, 0x12, 3, 0xff, 0xff, 0xff]); // SM3
    body.extend_from_slice(&[0, 0x0b, 4, 0, 0, 0, 0x80]); // PCR 31 only
    let banks = parse_pcr_banks(&response(ST_NO_SESSIONS, 0, &body)).unwrap();
    assert!(banks.all()[0].allocated && !banks.all()[0].is_active());
    assert_eq!(banks.all()[1].pcrs, 0x8000_0000);
    assert_eq!(banks.active().collect::<Vec<_>>(), [AlgorithmId::SHA256]);
}

#[test]
fn malformed_pcr_banks_are_refused() {
    let wrong_cap = response(ST_NO_SESSIONS, 0, &[0, 0, 0, 0, 6, 0, 0, 0, 0]);
    assert!(matches!(
        parse_pcr_banks(&wrong_cap),
        Err(Error::Malformed(_))
    ));
    let too_many = response(ST_NO_SESSIONS, 0, &[0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        parse_pcr_banks(&too_many),
        Err(Error::Malformed(_))
    ));
    let mut cut = swtpm_banks();
    cut.truncate(cut.len() - 2);
    let size = (cut.len() as u32).to_be_bytes();
    cut[2..6].copy_from_slice(&size);
    assert!(matches!(
        parse_pcr_banks(&cut),
        Err(Error::Truncated { .. })
    ));
    let mut twice = alloc::vec![0, 0, 0, 0, 5, 0, 0, 0, 2];
    twice.extend_from_slice(&[0, 0x0b, 3, 1, 0, 0, 0, 0x0b, 3, 1, 0, 0]);
    assert!(parse_pcr_banks(&response(ST_NO_SESSIONS, 0, &twice)).is_err());
}

#[test]
fn pcr_extend_response() {
    // parameterSize 0, then TPMS_AUTH_RESPONSE: empty nonce, continueSession, empty hmac.
    let ok = response(ST_SESSIONS, 0, &[0, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(parse_pcr_extend(&ok), Ok(()));
    // TPM_RC_VALUE for parameter 2 (format 1).
    let err = response(ST_NO_SESSIONS, 0x2c4, &[]);
    let rc = parse_pcr_extend(&err).unwrap_err();
    assert_eq!(rc, Error::Rc(ResponseCode(0x2c4)));
    assert!(matches!(rc, Error::Rc(c) if c.is_format_one()));
    assert!(parse_pcr_extend(&response(ST_NO_SESSIONS, 0, &[0; 4])).is_err());
}

#[test]
fn pcr_read_response() {
    let value = hash(AlgorithmId::SHA256, b"pcr").unwrap();
    let mut body = alloc::vec![
        0, 0, 0, 9, 0, 0, 0, 1, 0, 0x0b, 3, 0, 0, 2, 0, 0, 0, 1, 0, 32
    ];
    body.extend_from_slice(value.as_bytes());
    let read = parse_pcr_read(&response(ST_NO_SESSIONS, 0, &body), AlgorithmId::SHA256);
    assert_eq!(read, Ok(Some(value)));
    // Unallocated: empty selection and no values.
    let none = response(ST_NO_SESSIONS, 0, &[0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(parse_pcr_read(&none, AlgorithmId::SHA384), Ok(None));
    // A digest of the wrong size for the bank.
    let read = parse_pcr_read(&response(ST_NO_SESSIONS, 0, &body), AlgorithmId::SHA1);
    assert!(matches!(read, Err(Error::Malformed(_))));
}

#[test]
fn response_codes_print_their_class() {
    use alloc::format;
    assert_eq!(
        format!("{}", ResponseCode::INITIALIZE),
        "TPM_RC 0x100 (INITIALIZE)"
    );
    assert_eq!(
        format!("{}", ResponseCode(0x2c4)),
        "TPM_RC 0x2c4 (format 1)"
    );
    assert!(ResponseCode::RETRY.is_retryable());
    assert!(!ResponseCode::FAILURE.is_retryable());
    assert_eq!(format!("{}", AlgName(AlgorithmId::SHA384)), "sha384");
    assert_eq!(format!("{}", AlgName(AlgorithmId(0x27))), "alg0x0027");
}
