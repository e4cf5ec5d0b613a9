use super::*;
use crate::tpm::fake::{CRB_BASE, FakeClock, FakeCrb, FakeTpm};
use tcg::tpm2;

fn transport(fake: &FakeCrb) -> Crb<FakeCrb, FakeClock> {
    Crb::new(fake.clone(), FakeClock::new(), CRB_BASE).unwrap()
}

#[test]
fn buffers_come_from_the_control_area() {
    let fake = FakeCrb::new(FakeTpm::default());
    let crb = transport(&fake);
    assert_eq!(crb.max_command_size(), 0xf80);
    assert_eq!(crb.max_response_size(), 0xf80);
    assert_eq!(crb.interface(), Interface::Crb);
    assert_eq!(crb.base(), CRB_BASE);
}

#[test]
fn a_command_runs_and_leaves_the_tpm_idle_and_released() {
    let fake = FakeCrb::new(FakeTpm::default());
    let mut crb = transport(&fake);
    let mut response = [0u8; 64];
    let len = crb
        .execute(tpm2::startup_clear().as_bytes(), &mut response, 1_000_000)
        .unwrap();
    assert_eq!(tpm2::parse_startup(&response[..len]), Ok(true));
    let state = fake.state();
    assert_eq!(state.tpm.commands, [tpm2::startup_clear().as_bytes()]);
    assert_eq!(
        state.reg(reg::LOC_STATE) & LOC_STATE_ASSIGNED,
        0,
        "released"
    );
    assert_ne!(state.reg(reg::CTRL_STS) & CTRL_STS_IDLE, 0, "idle");
}

#[test]
fn odd_length_commands_reach_the_device_whole() {
    // SelfTest is 11 bytes: two words and three single bytes.
    let fake = FakeCrb::new(FakeTpm::default());
    let mut crb = transport(&fake);
    let mut response = [0u8; 64];
    crb.execute(tpm2::self_test(true).as_bytes(), &mut response, 1_000_000)
        .unwrap();
    assert_eq!(
        fake.state().tpm.commands,
        [tpm2::self_test(true).as_bytes()]
    );
}

#[test]
fn buffers_outside_the_register_page_are_refused() {
    let fake = FakeCrb::new(FakeTpm::default());
    fake.state()
        .regs
        .splice(0x5c..0x60, 0x1000_0000u32.to_le_bytes());
    assert!(matches!(
        Crb::new(fake.clone(), FakeClock::new(), CRB_BASE),
        Err(TpmError::Device(_))
    ));
    let fake = FakeCrb::new(FakeTpm::default());
    // A response buffer running past the page.
    fake.state()
        .regs
        .splice(0x64..0x68, 0x1000u32.to_le_bytes());
    assert!(Crb::new(fake, FakeClock::new(), CRB_BASE).is_err());
    // A command buffer not on a 32-bit boundary.
    let fake = FakeCrb::new(FakeTpm::default());
    let unaligned = (CRB_BASE + 0x81) as u32;
    fake.state()
        .regs
        .splice(0x5c..0x60, unaligned.to_le_bytes());
    assert!(Crb::new(fake, FakeClock::new(), CRB_BASE).is_err());
}

#[test]
fn a_hung_tpm_times_out_and_is_cancelled() {
    let fake = FakeCrb::new(FakeTpm::default());
    fake.state().hang = true;
    let mut crb = transport(&fake);
    let mut response = [0u8; 64];
    let err = crb
        .execute(tpm2::startup_clear().as_bytes(), &mut response, 1_000_000)
        .unwrap_err();
    assert_eq!(err, TpmError::Timeout("CRB command completion"));
    let state = fake.state();
    assert!(state.cancelled);
    assert_eq!(
        state.reg(reg::LOC_STATE) & LOC_STATE_ASSIGNED,
        0,
        "released"
    );
}

#[test]
fn sizes_are_bounded() {
    let fake = FakeCrb::new(FakeTpm::default());
    let mut crb = transport(&fake);
    let mut response = [0u8; 64];
    let huge = [0u8; 0x1000];
    assert!(matches!(
        crb.execute(&huge, &mut response, 1_000),
        Err(TpmError::CommandTooLarge { .. })
    ));
    // GetCapability's response does not fit 16 bytes.
    let mut small = [0u8; 16];
    crb.execute(tpm2::startup_clear().as_bytes(), &mut response, 1_000_000)
        .unwrap();
    assert!(matches!(
        crb.execute(
            tpm2::get_capability_pcrs().as_bytes(),
            &mut small,
            1_000_000
        ),
        Err(TpmError::ResponseTooLarge { .. })
    ));
}
