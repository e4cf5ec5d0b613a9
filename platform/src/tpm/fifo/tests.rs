use super::*;
use crate::tpm::fake::{FakeClock, FakeFifo, FakeTpm};
use tcg::tpm2;

fn transport(fake: &FakeFifo) -> Fifo<FakeFifo, FakeClock> {
    Fifo::new(fake.clone(), FakeClock::new(), 0xfed4_0000)
}

#[test]
fn a_command_goes_through_in_bursts() {
    let fake = FakeFifo::new(FakeTpm::default());
    let mut fifo = transport(&fake);
    let mut response = [0u8; 128];
    let len = fifo
        .execute(tpm2::startup_clear().as_bytes(), &mut response, 1_000_000)
        .unwrap();
    assert_eq!(tpm2::parse_startup(&response[..len]), Ok(true));
    // 22 bytes at 7 per burst; the response (> 7 bytes) likewise.
    let len = fifo
        .execute(
            tpm2::get_capability_pcrs().as_bytes(),
            &mut response,
            1_000_000,
        )
        .unwrap();
    let banks = tpm2::parse_pcr_banks(&response[..len]).unwrap();
    assert_eq!(banks.all().len(), 3);
    let state = fake.state();
    assert_eq!(state.tpm.commands.len(), 2);
    assert_eq!(
        state.tpm.commands[1],
        tpm2::get_capability_pcrs().as_bytes()
    );
    assert!(!state.active, "locality released");
}

#[test]
fn a_response_that_does_not_add_up_is_read_again() {
    let fake = FakeFifo::new(FakeTpm::default());
    fake.state().garble_once = true;
    let mut fifo = transport(&fake);
    let mut response = [0u8; 64];
    let len = fifo
        .execute(tpm2::startup_clear().as_bytes(), &mut response, 1_000_000)
        .unwrap();
    assert_eq!(len, 10);
    assert!(fake.state().retried);
}

#[test]
fn a_hung_tpm_times_out_and_is_cancelled() {
    let fake = FakeFifo::new(FakeTpm::default());
    fake.state().hang = true;
    let mut fifo = transport(&fake);
    let mut response = [0u8; 64];
    let err = fifo
        .execute(tpm2::startup_clear().as_bytes(), &mut response, 1_000_000)
        .unwrap_err();
    assert_eq!(err, TpmError::Timeout("FIFO command completion"));
    assert!(fake.state().cancelled);
    assert!(!fake.state().active);
}

#[test]
fn a_locality_never_granted_is_a_timeout() {
    let fake = FakeFifo::new(FakeTpm::default());
    fake.state().deny_locality = true;
    let mut fifo = transport(&fake);
    let mut response = [0u8; 64];
    assert_eq!(
        fifo.execute(tpm2::startup_clear().as_bytes(), &mut response, 1_000_000),
        Err(TpmError::Timeout("FIFO locality 0"))
    );
    assert!(fake.state().tpm.commands.is_empty());
}

#[test]
fn a_response_larger_than_the_buffer_is_refused() {
    let fake = FakeFifo::new(FakeTpm::default());
    let mut fifo = transport(&fake);
    let mut response = [0u8; 64];
    fifo.execute(tpm2::startup_clear().as_bytes(), &mut response, 1_000_000)
        .unwrap();
    let mut small = [0u8; 12];
    assert!(matches!(
        fifo.execute(
            tpm2::get_capability_pcrs().as_bytes(),
            &mut small,
            1_000_000
        ),
        Err(TpmError::ResponseTooLarge { .. })
    ));
    // The next command starts clean.
    let len = fifo
        .execute(tpm2::self_test(true).as_bytes(), &mut response, 1_000_000)
        .unwrap();
    assert_eq!(tpm2::check(&response[..len]), Ok(&[][..]));
}
