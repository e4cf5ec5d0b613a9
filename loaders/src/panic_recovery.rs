//! What the boot manager does about firmware panics (README "Limits and
//! failures"): it tells the panic handler which `Boot####` option was
//! booting, and at the next start skips the option a panic was noted for,
//! once, so the following options still boot instead of the machine
//! panicking on every start.

use core::sync::atomic::{AtomicU32, Ordering};
use log::warn;

/// No option (the atomics hold a u16 option number or this).
const NONE: u32 = u32::MAX;

/// The option booting now.
static RUNNING: AtomicU32 = AtomicU32::new(NONE);
/// The option the previous start panicked in: skipped this start.
static SKIPPED: AtomicU32 = AtomicU32::new(NONE);
/// Testing aid `test-panic=XXXX`: the firmware panics as option XXXX starts.
static TEST_PANIC: AtomicU32 = AtomicU32::new(NONE);

fn option(value: u32) -> Option<u16> {
    u16::try_from(value).ok()
}

/// The option that was booting, for the panic handler.
pub fn running_option() -> Option<u16> {
    option(RUNNING.load(Ordering::Relaxed))
}

/// Skips `number` for this start: the previous one panicked booting it.
pub fn skip_this_start(number: u16) {
    SKIPPED.store(u32::from(number), Ordering::Relaxed);
}

/// Reads the testing aid `test-panic=XXXX` (four hex digits) from the
/// firmware command line.
pub fn read_test_panic(cmdline: &str) {
    let number = platform::cmdline::values(cmdline, "test-panic")
        .filter_map(|value| crate::load_option::option_number_from_hex(value.plain()?))
        .last();
    if let Some(number) = number {
        warn!("test-panic={number:04X}: the firmware will panic when Boot{number:04X} starts");
        TEST_PANIC.store(u32::from(number), Ordering::Relaxed);
    }
}

/// Called as option `number` is about to start: false when it is skipped
/// this start. Panics when the testing aid names it.
pub fn starting(number: u16, name: &str) -> bool {
    if option(SKIPPED.load(Ordering::Relaxed)) == Some(number) {
        warn!("{name}: skipped this start: the firmware panicked while booting it last time");
        return false;
    }
    RUNNING.store(u32::from(number), Ordering::Relaxed);
    if option(TEST_PANIC.load(Ordering::Relaxed)) == Some(number) {
        panic!("test-panic={number:04X}: the panic the firmware command line asked for");
    }
    true
}

/// Called when option `number` returned (it did not boot).
pub fn returned() {
    RUNNING.store(NONE, Ordering::Relaxed);
}
