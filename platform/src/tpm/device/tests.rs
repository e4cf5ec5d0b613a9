use alloc::boxed::Box;

use super::*;
use crate::tpm::crb::Crb;
use crate::tpm::fake::{CRB_BASE, FakeClock, FakeCrb, FakeFifo, FakeTpm};
use crate::tpm::fifo::Fifo;
use tcg::alg::{extend, hash};

fn crb_tpm(fake: &FakeCrb) -> Tpm {
    let crb = Crb::new(fake.clone(), FakeClock::new(), CRB_BASE).unwrap();
    Tpm::new(Box::new(crb), None)
}

#[test]
fn start_finds_the_active_banks() {
    let fake = FakeCrb::new(FakeTpm::default());
    let mut tpm = crb_tpm(&fake);
    assert_eq!(tpm.started(), None);
    assert_eq!(tpm.start(), Ok(Started { by_us: true }));
    assert_eq!(tpm.started(), Some(Started { by_us: true }));
    assert_eq!(
        tpm.active_banks().collect::<Vec<_>>(),
        [AlgorithmId::SHA256]
    );
    assert_eq!(tpm.banks().all().len(), 3);
    // Started again (as after SeaBIOS): TPM_RC_INITIALIZE is fine, and the
    // self-test covers only what is untested.
    assert_eq!(tpm.start(), Ok(Started { by_us: false }));
    let commands = &fake.state().tpm.commands;
    assert_eq!(commands[1], tpm2::self_test(true).as_bytes());
    assert_eq!(commands[4], tpm2::self_test(false).as_bytes());
}

#[test]
fn extend_changes_the_pcr_as_the_spec_says() {
    let fake = FakeCrb::new(FakeTpm::with_banks(&[(0x04, 0xff_ffff), (0x0b, 0xff_ffff)]));
    let mut tpm = crb_tpm(&fake);
    tpm.start().unwrap();
    let digests = [
        hash(AlgorithmId::SHA1, b"event").unwrap(),
        hash(AlgorithmId::SHA256, b"event").unwrap(),
    ];
    tpm.extend(4, &digests).unwrap();
    let zero = Digest::zero(AlgorithmId::SHA256).unwrap();
    let expected = extend(&zero, &digests[1]).unwrap();
    assert_eq!(fake.state().tpm.pcr(0x0b, 4), expected);
    assert_eq!(tpm.pcr_read(4, AlgorithmId::SHA256), Ok(Some(expected)));
    assert_eq!(tpm.pcr_read(4, AlgorithmId::SHA384), Ok(None));
    assert!(tpm.extend(24, &digests).is_err());
}

#[test]
fn a_failed_self_test_fails_start() {
    let mut device = FakeTpm::default();
    device.self_test_rc = 0x101;
    let fake = FakeCrb::new(device);
    let mut tpm = crb_tpm(&fake);
    assert_eq!(
        tpm.start(),
        Err(TpmError::Tpm(tpm2::Error::Rc(tpm2::ResponseCode::FAILURE)))
    );
}

#[test]
fn retry_warnings_are_retried_a_few_times() {
    let mut device = FakeTpm::default();
    device.retries = 2;
    let fake = FakeCrb::new(device);
    let mut tpm = crb_tpm(&fake);
    assert!(tpm.start().is_ok());
    let mut device = FakeTpm::default();
    device.retries = 100;
    let fake = FakeCrb::new(device);
    let mut tpm = crb_tpm(&fake);
    assert_eq!(
        tpm.start(),
        Err(TpmError::Tpm(tpm2::Error::Rc(tpm2::ResponseCode::RETRY)))
    );
    assert_eq!(fake.state().tpm.commands.len(), TRIES as usize);
}

#[test]
fn submit_passes_commands_and_error_responses_through() {
    let fake = FakeFifo::new(FakeTpm::default());
    let fifo = Fifo::new(fake.clone(), FakeClock::new(), 0xfed4_0000);
    let mut tpm = Tpm::new(Box::new(fifo), None);
    tpm.start().unwrap();
    // An unknown command code: the TPM's error response comes back as is.
    let command = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x99];
    let mut response = [0u8; 64];
    let len = tpm.submit(&command, &mut response).unwrap();
    assert_eq!(response[..len], [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x43]);
    assert_eq!(tpm.interface(), Interface::Fifo);
    assert_eq!(tpm.max_command_size(), 4096);
}
