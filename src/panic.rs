//! What a firmware panic does (README "Limits and failures"): one report
//! naming the last boot phase and the boot option that was booting, then a
//! warm reset after a short delay (a hung VM costs its owner money), with a
//! note in RAM the reset keeps so the next start skips that option once.
//! `panic=halt` on the firmware command line keeps the machine halted
//! instead, for debugging. An allocation failure that still panics reports
//! its size through the same path ("memory allocation of N bytes failed").

use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};
use log::{error, warn};
use platform::memory::{self, MemoryType, PAGE_SIZE, Placement};
use platform::panic_note::{NOTE_SIZE, PanicNote};
use platform::{boot_timing, serial, tsc};

/// The page after the variable journal: like it, below the firmware's
/// allocations and kept by a warm reset.
const NOTE_BASE: u64 = crate::JOURNAL_BASE + crate::JOURNAL_PAGES * PAGE_SIZE;
/// How long the report stays on screen before the reset.
const RESET_DELAY_US: u64 = 5_000_000;

/// The note page is reserved for us (reading and writing it is ours).
static NOTE_RESERVED: AtomicBool = AtomicBool::new(false);
/// ExitBootServices ran: RAM is the OS's, the note page included.
static OS_OWNS_RAM: AtomicBool = AtomicBool::new(false);
/// `panic=halt`.
static HALT_ON_PANIC: AtomicBool = AtomicBool::new(false);
/// A panic is being reported: a second one halts at once.
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Reserves the note page before anything allocates and reads what the
/// previous start left there: the option it panicked in is skipped once.
pub fn take_previous_note() {
    let reserved = memory::with_map(|m| {
        m.allocate(
            Placement::Address(NOTE_BASE),
            MemoryType::BOOT_SERVICES_DATA,
            1,
        )
    });
    if let Err(e) = reserved {
        warn!("panic note off: {e}");
        return;
    }
    NOTE_RESERVED.store(true, Ordering::Relaxed);
    let mut bytes = [0u8; NOTE_SIZE];
    // SAFETY: the page was just reserved for the note alone, in RAM the boot
    // page tables identity-map.
    unsafe {
        core::ptr::copy_nonoverlapping(NOTE_BASE as *const u8, bytes.as_mut_ptr(), NOTE_SIZE)
    };
    write_note(&[0; NOTE_SIZE]);
    match PanicNote::decode(&bytes) {
        Some(PanicNote {
            option: Some(number),
        }) => {
            error!(
                "the previous start panicked while booting Boot{number:04X}; skipping it this start"
            );
            loaders::panic_recovery::skip_this_start(number);
        }
        Some(PanicNote { option: None }) => {
            error!("the previous start panicked before any boot option ran");
        }
        None => {}
    }
}

fn write_note(bytes: &[u8; NOTE_SIZE]) {
    if !NOTE_RESERVED.load(Ordering::Relaxed) || OS_OWNS_RAM.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: the page is reserved for the note and the OS does not own RAM
    // yet (both checked above); RAM is identity mapped.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), NOTE_BASE as *mut u8, NOTE_SIZE) };
}

/// `panic=halt` on the firmware command line.
pub fn read_cmdline(cmdline: &str) {
    if platform::cmdline::has(cmdline, "panic", "halt") {
        HALT_ON_PANIC.store(true, Ordering::Relaxed);
    }
}

/// ExitBootServices hook: the note page is the OS's from now on.
pub fn os_owns_ram() {
    OS_OWNS_RAM.store(true, Ordering::Relaxed);
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    if PANICKING.swap(true, Ordering::Relaxed) {
        let _ = writeln!(
            serial::Serial,
            "\n*** firmware panic while reporting a panic: {info}"
        );
        crate::halt();
    }
    let _ = writeln!(
        serial::Serial,
        "\n*** firmware panic (last phase: {}): {info}",
        boot_timing::last_phase_name()
    );
    let option = loaders::panic_recovery::running_option();
    if let Some(number) = option {
        let _ = writeln!(serial::Serial, "*** while booting Boot{number:04X}");
    }
    if HALT_ON_PANIC.load(Ordering::Relaxed) {
        let _ = writeln!(serial::Serial, "*** halted (panic=halt)");
        crate::halt();
    }
    write_note(&PanicNote { option }.encode());
    let _ = writeln!(
        serial::Serial,
        "*** resetting in {} s; the next start skips this boot option (panic=halt keeps the machine halted)",
        RESET_DELAY_US / 1_000_000
    );
    tsc::stall_us(RESET_DELAY_US);
    efi::runtime::reset_after_panic()
}
