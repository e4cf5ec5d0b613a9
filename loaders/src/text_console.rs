//! The console and a timer as a UEFI application sees them, for the
//! firmware's own screens (the boot menu): keys from the system table's
//! ConIn (EFI_SIMPLE_TEXT_INPUT_PROTOCOL, UEFI 2.10 §12.3), text to ConOut
//! (EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL, §12.4), and time from a periodic timer
//! event (§7.1 CreateEvent, SetTimer, WaitForEvent, CloseEvent). Going
//! through the published interfaces keeps the screens independent of which
//! console driver or clock sits behind them.

use alloc::vec::Vec;
use protocols::console::input::{Key, ScanCode};
use uefi_raw::protocol::console::{InputKey, SimpleTextInputProtocol, SimpleTextOutputProtocol};
use uefi_raw::table::boot::{BootServices, EventType, TimerDelay, Tpl};
use uefi_raw::table::system::SystemTable;
use uefi_raw::{Event, Status};

/// Timer periods are given in 100 ns units (§7.1.7 SetTimer).
const TICKS_PER_SECOND: u64 = 10_000_000;

/// ConIn and ConOut of the system table.
pub struct TextConsole {
    input: *mut SimpleTextInputProtocol,
    output: *mut SimpleTextOutputProtocol,
}

impl TextConsole {
    /// The system table's console; `None` until the console is installed
    /// (§4.3: ConIn and ConOut are set before the boot manager runs).
    pub fn from_system_table() -> Option<TextConsole> {
        let (output, input) = crate::services::current().ok()?.consoles();
        (!input.is_null() && !output.is_null()).then_some(TextConsole { input, output })
    }

    /// ClearScreen (§12.4.8).
    pub fn clear(&self) -> Status {
        // SAFETY: `output` is the installed ConOut interface, valid while
        // boot services run, and ClearScreen takes only `This`.
        unsafe { ((*self.output).clear_screen)(self.output) }
    }

    /// OutputString (§12.4.3) of `text` as NUL-terminated UCS-2; lines end
    /// in `\r\n`.
    pub fn write(&self, text: &str) -> Status {
        let units: Vec<u16> = text.encode_utf16().chain(core::iter::once(0)).collect();
        // SAFETY: `output` is the installed ConOut interface; `units` is
        // NUL-terminated and outlives the call, which only reads it.
        unsafe { ((*self.output).output_string)(self.output, units.as_ptr()) }
    }

    /// ReadKeyStroke (§12.3.3): the next key, or `None` when none is waiting.
    pub fn read_key(&self) -> Option<Key> {
        let mut key = InputKey {
            scan_code: 0,
            unicode_char: 0,
        };
        // SAFETY: `input` is the installed ConIn interface; `key` is a
        // writable EFI_INPUT_KEY.
        let status = unsafe { ((*self.input).read_key_stroke)(self.input, &mut key) };
        (status == Status::SUCCESS).then_some(Key {
            scan: ScanCode(key.scan_code),
            unicode: key.unicode_char,
            shift_state: 0,
            ex_unicode: key.unicode_char,
        })
    }

    /// ConIn's WaitForKey event, signalled while a key is waiting.
    pub fn key_event(&self) -> Event {
        // SAFETY: `input` is the installed ConIn interface; a plain read.
        unsafe { (*self.input).wait_for_key }
    }
}

/// The boot services table of the image running (`crate::services`
/// validated its system table).
fn boot_services() -> Option<*mut BootServices> {
    let table: *mut SystemTable = crate::services::current().ok()?.system_table();
    // SAFETY: a system table `Services::new` validated, valid while the
    // image runs.
    let services = unsafe { (*table).boot_services };
    (!services.is_null()).then_some(services)
}

/// A periodic timer event firing once a second, closed on drop.
pub struct SecondTimer {
    services: *mut BootServices,
    event: Event,
}

impl SecondTimer {
    /// CreateEvent(EVT_TIMER) and SetTimer(TimerPeriodic, 1 s).
    pub fn start() -> Result<SecondTimer, Status> {
        let services = boot_services().ok_or(Status::NOT_READY)?;
        let mut event: Event = core::ptr::null_mut();
        // SAFETY: `services` is the live boot services table; a plain timer
        // event has no notify function or context; `event` is writable.
        let status = unsafe {
            ((*services).create_event)(
                EventType::TIMER,
                Tpl::APPLICATION,
                None,
                core::ptr::null_mut(),
                &mut event,
            )
        };
        if status.is_error() {
            return Err(status);
        }
        let timer = SecondTimer { services, event };
        // SAFETY: `event` was just created by CreateEvent and is open.
        let status =
            unsafe { ((*services).set_timer)(event, TimerDelay::PERIODIC, TICKS_PER_SECOND) };
        if status.is_error() {
            return Err(status); // `timer` closes the event
        }
        Ok(timer)
    }

    pub fn event(&self) -> Event {
        self.event
    }
}

impl Drop for SecondTimer {
    fn drop(&mut self) {
        // SAFETY: `event` is open and closed only here; CloseEvent also
        // cancels the timer (§7.1.3).
        let _ = unsafe { ((*self.services).close_event)(self.event) };
    }
}

/// WaitForEvent (§7.1.5) on `events`: the index of the one that was
/// signalled (its signal is cleared), or the error.
pub fn wait_for_any(events: &mut [Event]) -> Result<usize, Status> {
    let services = boot_services().ok_or(Status::NOT_READY)?;
    let mut index = 0usize;
    // SAFETY: `services` is the live boot services table; `events` holds
    // `events.len()` open events and `index` is writable.
    let status = unsafe { ((*services).wait_for_event)(events.len(), events.as_ptr(), &mut index) };
    if status.is_error() {
        Err(status)
    } else {
        Ok(index)
    }
}
