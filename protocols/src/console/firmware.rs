//! The `extern "efiapi"` side of the console: protocol instances in statics
//! of the firmware image, pointer validation, and the serial I/O. All
//! decisions are made by the host-tested modules next to this one.

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};

use efi::ids::KeyNotifyHandle;
use log::debug;
use platform::sync::Global;
use uefi_raw::protocol::console::serial as serial_io;
use uefi_raw::protocol::console::{
    InputKey, KeyData, KeyNotifyFn, KeyToggleState, SimpleTextInputExProtocol,
    SimpleTextInputProtocol, SimpleTextOutputMode, SimpleTextOutputProtocol,
};
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::{Boolean, Char16, Event, Handle, Status};

use super::device_path::CONSOLE_DEVICE_PATH;
use super::input::Keyboard;
use super::serial_io::{CONTROL_MASK, DATA_BITS, FIFO_DEPTH, LoopbackFifo, Settings};
use super::text::{DEFAULT_ATTRIBUTE, MODES, Screen};

/// A static handed to EFI applications by pointer.
struct Shared<T>(UnsafeCell<T>);

// SAFETY: the firmware runs on one CPU with interrupts off and boot services
// are not re-entered concurrently; the only writers are `install` (before
// the pointers are published) and `publish_mode`, each a single plain write.
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    const fn new(value: T) -> Self {
        Shared(UnsafeCell::new(value))
    }

    const fn get(&self) -> *mut T {
        self.0.get()
    }
}

// --- EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL (§12.4) --------------------------------

static OUTPUT_MODE: Shared<SimpleTextOutputMode> = Shared::new(SimpleTextOutputMode {
    max_mode: MODES.len() as i32,
    mode: 0,
    attribute: DEFAULT_ATTRIBUTE as i32,
    cursor_column: 0,
    cursor_row: 0,
    cursor_visible: Boolean::TRUE,
});

static CON_OUT: Shared<SimpleTextOutputProtocol> = Shared::new(SimpleTextOutputProtocol {
    reset: out_reset,
    output_string,
    test_string,
    query_mode,
    set_mode,
    set_attribute,
    clear_screen,
    set_cursor_position,
    enable_cursor,
    mode: OUTPUT_MODE.get().cast_const(),
});

static SCREEN: Global<Screen> = Global::new(Screen::new());

/// Longest string OutputString/TestString accept; a missing NUL ends there.
const MAX_STRING: usize = 1 << 20;

/// Sends bytes exactly as built: no LF to CR LF translation, which would
/// put the terminal's cursor where `Screen` does not think it is.
fn send(bytes: &[u8]) {
    platform::serial::write_raw(bytes);
}

/// Mirrors the screen state into SIMPLE_TEXT_OUTPUT_MODE.
fn publish_mode(screen: &Screen) {
    let mode = SimpleTextOutputMode {
        max_mode: MODES.len() as i32,
        mode: screen.mode as i32,
        attribute: screen.attribute as i32,
        cursor_column: screen.column as i32,
        cursor_row: screen.row as i32,
        cursor_visible: screen.cursor_visible.into(),
    };
    // SAFETY: OUTPUT_MODE is our static; applications only read it, and no
    // reference to it is held across this write (see `Shared`).
    unsafe { OUTPUT_MODE.get().write(mode) };
}

/// Runs one output operation: validates `this`, builds the bytes under the
/// screen borrow, then sends them in one go and updates the mode.
fn screen_call(
    this: *const SimpleTextOutputProtocol,
    operation: impl FnOnce(&mut Screen, &mut Vec<u8>) -> Result<Status, super::text::TextError>,
) -> Status {
    if this != CON_OUT.get().cast_const() {
        return Status::INVALID_PARAMETER;
    }
    let mut bytes = Vec::new();
    let (result, screen) = SCREEN.with(|s| (operation(s, &mut bytes), *s));
    send(&bytes);
    publish_mode(&screen);
    result.unwrap_or_else(|e| {
        debug!("console: {e}");
        e.status()
    })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.4 requires of the caller.
unsafe extern "efiapi" fn out_reset(
    this: *mut SimpleTextOutputProtocol,
    _extended: Boolean,
) -> Status {
    screen_call(this, |s, out| {
        s.reset(out);
        Ok(Status::SUCCESS)
    })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.4 requires of the caller.
unsafe extern "efiapi" fn output_string(
    this: *mut SimpleTextOutputProtocol,
    string: *const Char16,
) -> Status {
    // SAFETY: the caller's string, as this function's # Safety requires.
    let text = match unsafe { efi::boundary::ucs2(string, MAX_STRING) } {
        Ok(text) => text,
        Err(status) => return status,
    };
    if this != CON_OUT.get() {
        return Status::INVALID_PARAMETER;
    }
    // A string of up to MAX_STRING characters is sent a chunk at a time,
    // so the bytes built for the terminal (up to 5 per character) stay a
    // few KiB however long the caller's string is.
    let mut status = Status::SUCCESS;
    for chunk in text.chunks(OUTPUT_CHUNK) {
        let chunk_status = screen_call(this, |s, out| Ok(s.output_string(chunk, out).status()));
        if chunk_status.is_error() {
            return chunk_status;
        }
        if chunk_status != Status::SUCCESS {
            status = chunk_status;
        }
    }
    status
}

/// Characters of an OutputString sent per terminal write.
const OUTPUT_CHUNK: usize = 4096;

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.4 requires of the caller.
unsafe extern "efiapi" fn test_string(
    this: *mut SimpleTextOutputProtocol,
    string: *const Char16,
) -> Status {
    if this != CON_OUT.get() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's string, as this function's # Safety requires.
    match unsafe { efi::boundary::ucs2(string, MAX_STRING) } {
        Ok(text) => Screen::test_string(&text).map_or_else(|e| e.status(), |()| Status::SUCCESS),
        Err(status) => status,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.4 requires of the caller.
unsafe extern "efiapi" fn query_mode(
    this: *const SimpleTextOutputProtocol,
    mode: usize,
    columns: *mut usize,
    rows: *mut usize,
) -> Status {
    if this != CON_OUT.get().cast_const() || columns.is_null() || rows.is_null() {
        return Status::INVALID_PARAMETER;
    }
    match Screen::query_mode(mode) {
        Ok((c, r)) => {
            // SAFETY: both checked non-null; the caller provides UINTN
            // storage for the results (§12.4.4).
            unsafe {
                columns.write_unaligned(c);
                rows.write_unaligned(r);
            }
            Status::SUCCESS
        }
        Err(e) => e.status(),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.4 requires of the caller.
unsafe extern "efiapi" fn set_mode(this: *mut SimpleTextOutputProtocol, mode: usize) -> Status {
    screen_call(this, |s, out| {
        s.set_mode(mode, out).map(|()| Status::SUCCESS)
    })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.4 requires of the caller.
unsafe extern "efiapi" fn set_attribute(
    this: *mut SimpleTextOutputProtocol,
    attribute: usize,
) -> Status {
    screen_call(this, |s, out| {
        s.set_attribute(attribute, out).map(|()| Status::SUCCESS)
    })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.4 requires of the caller.
unsafe extern "efiapi" fn clear_screen(this: *mut SimpleTextOutputProtocol) -> Status {
    screen_call(this, |s, out| {
        s.clear_screen(out);
        Ok(Status::SUCCESS)
    })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.4 requires of the caller.
unsafe extern "efiapi" fn set_cursor_position(
    this: *mut SimpleTextOutputProtocol,
    column: usize,
    row: usize,
) -> Status {
    screen_call(this, |s, out| {
        s.set_cursor_position(column, row, out)
            .map(|()| Status::SUCCESS)
    })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.4 requires of the caller.
unsafe extern "efiapi" fn enable_cursor(
    this: *mut SimpleTextOutputProtocol,
    visible: Boolean,
) -> Status {
    screen_call(this, |s, out| {
        s.enable_cursor(visible.into(), out);
        Ok(Status::SUCCESS)
    })
}

// --- EFI_SIMPLE_TEXT_INPUT(_EX)_PROTOCOL (§12.3, §12.2) ----------------------

static CON_IN: Shared<SimpleTextInputProtocol> = Shared::new(SimpleTextInputProtocol {
    reset: in_reset,
    read_key_stroke,
    wait_for_key: core::ptr::null_mut(),
});

static CON_IN_EX: Shared<SimpleTextInputExProtocol> = Shared::new(SimpleTextInputExProtocol {
    reset: in_ex_reset,
    read_key_stroke_ex,
    wait_for_key_ex: core::ptr::null_mut(),
    set_state,
    register_key_notify: REGISTER_KEY_NOTIFY,
    unregister_key_notify,
});

/// The type uefi_raw gives RegisterKeyNotify: its notify function is a bare
/// (non-null) fn pointer.
type RegisterKeyNotifyFn = unsafe extern "efiapi" fn(
    *mut SimpleTextInputExProtocol,
    *const KeyData,
    KeyNotifyFn,
    *mut *mut c_void,
) -> Status;

// SAFETY: `Option<KeyNotifyFn>` has the same size and ABI as `KeyNotifyFn`
// (the null niche; an `extern "efiapi"` fn pointer), so the two signatures
// are call-compatible; ours also accepts the NULL a C caller may pass.
const REGISTER_KEY_NOTIFY: RegisterKeyNotifyFn = unsafe {
    core::mem::transmute::<
        unsafe extern "efiapi" fn(
            *mut SimpleTextInputExProtocol,
            *const KeyData,
            Option<KeyNotifyFn>,
            *mut *mut c_void,
        ) -> Status,
        RegisterKeyNotifyFn,
    >(register_key_notify)
};

static KEYBOARD: Global<Keyboard<KeyNotifyFn>> = Global::new(Keyboard::new());
/// A byte GetControl took from the UART to learn whether input is waiting;
/// every reader drains it first.
static LOOKAHEAD: Global<Option<u8>> = Global::new(None);
/// Bytes taken from the UART per poll, so a flood cannot stall the caller.
const MAX_BYTES_PER_POLL: usize = 256;

fn receive_byte() -> Option<u8> {
    LOOKAHEAD
        .with(Option::take)
        .or_else(platform::serial::try_read_byte)
}

/// Moves received bytes into the key queue and runs the key notify
/// functions they trigger, after the keyboard borrow ended (they may call
/// back into ConIn).
fn poll_serial() {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BYTES_PER_POLL {
        match receive_byte() {
            Some(b) => bytes.push(b),
            None => break,
        }
    }
    let now = platform::tsc::now_ns();
    let calls = KEYBOARD.with(|k| k.receive(&bytes, now));
    for (notify, data) in calls {
        // SAFETY: the function the caller registered with RegisterKeyNotify
        // (§12.2.6), called with the key that matched.
        let _ = unsafe { notify(&data) };
    }
}

/// WaitForKey/WaitForKeyEx readiness, evaluated by CheckEvent/WaitForEvent.
fn key_available() -> bool {
    poll_serial();
    KEYBOARD.with(|k| k.key_available())
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.3 requires of the caller.
unsafe extern "efiapi" fn in_reset(
    this: *mut SimpleTextInputProtocol,
    _extended: Boolean,
) -> Status {
    if this != CON_IN.get() {
        return Status::INVALID_PARAMETER;
    }
    KEYBOARD.with(|k| k.reset());
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.2 requires of the caller.
unsafe extern "efiapi" fn in_ex_reset(
    this: *mut SimpleTextInputExProtocol,
    _extended: Boolean,
) -> Status {
    if this != CON_IN_EX.get() {
        return Status::INVALID_PARAMETER;
    }
    KEYBOARD.with(|k| k.reset());
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.3 requires of the caller.
unsafe extern "efiapi" fn read_key_stroke(
    this: *mut SimpleTextInputProtocol,
    key: *mut InputKey,
) -> Status {
    if this != CON_IN.get() || key.is_null() {
        return Status::INVALID_PARAMETER;
    }
    poll_serial();
    match KEYBOARD.with(|k| k.pop()) {
        Some(k) => {
            // SAFETY: checked non-null; the caller provides an EFI_INPUT_KEY.
            unsafe { key.write_unaligned(k.input_key()) };
            Status::SUCCESS
        }
        None => Status::NOT_READY,
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.2 requires of the caller.
unsafe extern "efiapi" fn read_key_stroke_ex(
    this: *mut SimpleTextInputExProtocol,
    data: *mut KeyData,
) -> Status {
    if this != CON_IN_EX.get() || data.is_null() {
        return Status::INVALID_PARAMETER;
    }
    poll_serial();
    let (key_data, status) = KEYBOARD.with(|k| match k.pop() {
        Some(key) => (key.key_data(k.toggle_state()), Status::SUCCESS),
        // §12.2.3: with no keystroke the current KeyState is still returned.
        None => (k.idle_key_data(), Status::NOT_READY),
    });
    // SAFETY: checked non-null; the caller provides an EFI_KEY_DATA.
    unsafe { data.write_unaligned(key_data) };
    status
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.2 requires of the caller.
unsafe extern "efiapi" fn set_state(
    this: *mut SimpleTextInputExProtocol,
    state: *const KeyToggleState,
) -> Status {
    if this != CON_IN_EX.get() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's pointer, as this function's # Safety requires.
    let state = match unsafe { efi::boundary::read(state) } {
        Ok(s) => s,
        Err(status) => return status,
    };
    KEYBOARD.with(|k| k.set_state(state.bits())).map_or_else(
        |e| {
            debug!("console: {e}");
            Status::UNSUPPORTED
        },
        |()| Status::SUCCESS,
    )
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.2 requires of the caller.
///
/// The function arrives as an `Option`: a C caller may pass NULL, which
/// §12.2.6 answers with EFI_INVALID_PARAMETER (a bare fn pointer cannot be
/// null in Rust).
unsafe extern "efiapi" fn register_key_notify(
    this: *mut SimpleTextInputExProtocol,
    key_data: *const KeyData,
    function: Option<KeyNotifyFn>,
    handle: *mut *mut c_void,
) -> Status {
    let Some(function) = function else {
        return Status::INVALID_PARAMETER;
    };
    if this != CON_IN_EX.get() || handle.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's pointer, as this function's # Safety requires.
    let key = match unsafe { efi::boundary::read(key_data) } {
        Ok(k) => k,
        Err(status) => return status,
    };
    match KEYBOARD.with(|k| k.register(key, function)) {
        Ok(id) => {
            // SAFETY: checked non-null; the caller provides storage for the
            // NotifyHandle. The handle is an id, never dereferenced.
            unsafe { handle.write_unaligned(id.as_raw()) };
            Status::SUCCESS
        }
        Err(e) => {
            debug!("console: {e}");
            Status::OUT_OF_RESOURCES
        }
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.2 requires of the caller.
unsafe extern "efiapi" fn unregister_key_notify(
    this: *mut SimpleTextInputExProtocol,
    handle: *mut c_void,
) -> Status {
    if this != CON_IN_EX.get() {
        return Status::INVALID_PARAMETER;
    }
    KEYBOARD
        .with(|k| k.unregister(KeyNotifyHandle::from_raw(handle)))
        .map_or_else(
            |e| {
                debug!("console: {e}");
                Status::INVALID_PARAMETER
            },
            |()| Status::SUCCESS,
        )
}

// --- EFI_SERIAL_IO_PROTOCOL (§12.8) ------------------------------------------

static SERIAL_MODE: Shared<serial_io::SerialIoMode> = Shared::new(serial_io::SerialIoMode {
    control_mask: serial_io::ControlBits::from_bits_retain(CONTROL_MASK),
    timeout: super::serial_io::DEFAULT_TIMEOUT_US,
    baud_rate: super::serial_io::BAUD_RATE,
    receive_fifo_depth: FIFO_DEPTH,
    data_bits: DATA_BITS as u32,
    parity: serial_io::Parity::NONE,
    stop_bits: serial_io::StopBits::ONE,
});

static SERIAL_IO: Shared<serial_io::SerialIoProtocol> = Shared::new(serial_io::SerialIoProtocol {
    revision: serial_io::SerialIoProtocolRevision::REVISION_1_0,
    reset: serial_reset,
    set_attributes: serial_set_attributes,
    set_control_bits: serial_set_control,
    get_control_bits: serial_get_control,
    write: serial_write,
    read: serial_read,
    mode: SERIAL_MODE.get().cast_const(),
});

static SERIAL_SETTINGS: Global<Settings> = Global::new(Settings::new());
/// Bytes written in software loopback mode (§12.8.5), for Read.
static SOFTWARE_LOOPBACK: Global<LoopbackFifo> = Global::new(LoopbackFifo::new());

fn software_loopback() -> bool {
    SERIAL_SETTINGS.with(|s| s.software_loopback())
}

fn is_serial_io(this: *const serial_io::SerialIoProtocol) -> bool {
    this == SERIAL_IO.get().cast_const()
}

/// Programs the UART for `settings` and mirrors them into
/// SERIAL_IO_MODE (§12.8.1: Mode reflects the current attributes).
fn apply_settings(settings: &Settings) {
    platform::serial::set_line_control(settings.line_control());
    platform::serial::set_fifo_enabled(settings.fifo_enabled());
    platform::serial::set_modem_control(settings.modem_control());
    // SAFETY: our static, read by applications; field writes while no
    // reference to it exists (see `Shared`).
    unsafe {
        let mode = SERIAL_MODE.get();
        (*mode).timeout = settings.timeout_us;
        (*mode).receive_fifo_depth = settings.receive_fifo_depth;
        (*mode).parity = serial_io::Parity(settings.parity);
        (*mode).data_bits = u32::from(settings.data_bits);
        (*mode).stop_bits = serial_io::StopBits(settings.stop_bits);
    }
}

/// Reset (§12.8.2): the device defaults, in the hardware and in Mode.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §12.8 requires of the caller.
unsafe extern "efiapi" fn serial_reset(this: *mut serial_io::SerialIoProtocol) -> Status {
    if !is_serial_io(this) {
        return Status::INVALID_PARAMETER;
    }
    let settings = SERIAL_SETTINGS.with(|s| {
        *s = Settings::new();
        *s
    });
    SOFTWARE_LOOPBACK.with(LoopbackFifo::clear);
    apply_settings(&settings);
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.8 requires of the caller.
unsafe extern "efiapi" fn serial_set_attributes(
    this: *mut serial_io::SerialIoProtocol,
    baud_rate: u64,
    receive_fifo_depth: u32,
    timeout: u32,
    parity: serial_io::Parity,
    data_bits: u8,
    stop_bits: serial_io::StopBits,
) -> Status {
    if !is_serial_io(this) {
        return Status::INVALID_PARAMETER;
    }
    let result = SERIAL_SETTINGS.with(|s| {
        s.set_attributes(
            baud_rate,
            receive_fifo_depth,
            timeout,
            parity.0,
            data_bits,
            stop_bits.0,
        )
        .map(|()| *s)
    });
    match result {
        Ok(settings) => {
            apply_settings(&settings);
            Status::SUCCESS
        }
        Err(e) => {
            debug!("serial io: {e}");
            e.status()
        }
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.8 requires of the caller.
unsafe extern "efiapi" fn serial_set_control(
    this: *mut serial_io::SerialIoProtocol,
    control: serial_io::ControlBits,
) -> Status {
    if !is_serial_io(this) {
        return Status::INVALID_PARAMETER;
    }
    match SERIAL_SETTINGS.with(|s| s.set_control(control.bits()).map(|()| *s)) {
        Ok(settings) => {
            if !settings.software_loopback() {
                SOFTWARE_LOOPBACK.with(LoopbackFifo::clear);
            }
            platform::serial::set_modem_control(settings.modem_control());
            Status::SUCCESS
        }
        Err(e) => e.status(),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.8 requires of the caller.
unsafe extern "efiapi" fn serial_get_control(
    this: *const serial_io::SerialIoProtocol,
    control: *mut serial_io::ControlBits,
) -> Status {
    if !is_serial_io(this) || control.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let input_empty = if software_loopback() {
        SOFTWARE_LOOPBACK.with(|fifo| fifo.is_empty())
    } else {
        LOOKAHEAD.with(|l| {
            if l.is_none() {
                *l = platform::serial::try_read_byte();
            }
            l.is_none()
        })
    };
    let bits = SERIAL_SETTINGS.with(|s| s.control(input_empty));
    // SAFETY: checked non-null; the caller provides a UINT32 for the bits.
    unsafe { control.write_unaligned(serial_io::ControlBits::from_bits_retain(bits)) };
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §12.8 requires of the caller.
unsafe extern "efiapi" fn serial_write(
    this: *mut serial_io::SerialIoProtocol,
    size: *mut usize,
    buffer: *const u8,
) -> Status {
    if !is_serial_io(this) {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's size and buffer, as this function's # Safety
    // requires.
    let result =
        unsafe { efi::boundary::read(size).and_then(|len| efi::boundary::bytes(buffer, len)) };
    let bytes = match result {
        Ok(bytes) => bytes,
        Err(status) => return status,
    };
    if !software_loopback() {
        // Raw bytes: Serial I/O is a byte pipe, unlike ConOut.
        send(bytes);
        return Status::SUCCESS;
    }
    // Software loopback: the bytes wait for Read; what does not fit stops
    // the write short, as a timeout would on a UART that never drains.
    let written =
        SOFTWARE_LOOPBACK.with(|fifo| bytes.iter().take_while(|&&b| fifo.push(b)).count());
    let complete = written == bytes.len();
    // SAFETY: `size` was read successfully above, so it is a valid UINTN.
    unsafe { size.write_unaligned(written) };
    if complete {
        Status::SUCCESS
    } else {
        Status::TIMEOUT
    }
}

/// Read (§12.8.8): waits up to the timeout for each byte, as a UART with a
/// character timeout does (in software loopback mode it takes what Write
/// queued, without waiting); a short read reports EFI_TIMEOUT.
///
/// # Safety
/// Pointer arguments as UEFI 2.10 §12.8 requires of the caller.
unsafe extern "efiapi" fn serial_read(
    this: *mut serial_io::SerialIoProtocol,
    size: *mut usize,
    buffer: *mut u8,
) -> Status {
    if !is_serial_io(this) {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's size and buffer, as this function's # Safety
    // requires.
    let buffer = match unsafe {
        efi::boundary::read(size).and_then(|len| efi::boundary::bytes_mut(buffer, len))
    } {
        Ok(b) => b,
        Err(status) => return status,
    };
    let count = if software_loopback() {
        // Only Write fills the loopback FIFO, so waiting cannot help.
        SOFTWARE_LOOPBACK.with(|fifo| {
            buffer
                .iter_mut()
                .map_while(|slot| fifo.pop().map(|b| *slot = b))
                .count()
        })
    } else {
        let timeout_ns = u64::from(SERIAL_SETTINGS.with(|s| s.timeout_us)) * 1000;
        read_uart(buffer, timeout_ns)
    };
    let complete = count == buffer.len();
    // SAFETY: `size` was read successfully above, so it is a valid UINTN.
    unsafe { size.write_unaligned(count) };
    if complete {
        Status::SUCCESS
    } else {
        Status::TIMEOUT
    }
}

/// Fills `buffer` from the UART, waiting up to `timeout_ns` for each byte;
/// returns how many arrived.
fn read_uart(buffer: &mut [u8], timeout_ns: u64) -> usize {
    let mut count = 0;
    'bytes: for slot in buffer.iter_mut() {
        let start = platform::tsc::now_ns();
        loop {
            if let Some(b) = receive_byte() {
                *slot = b;
                count += 1;
                continue 'bytes;
            }
            if platform::tsc::now_ns().saturating_sub(start) >= timeout_ns {
                break 'bytes;
            }
            core::hint::spin_loop();
        }
    }
    count
}

// --- Installation ------------------------------------------------------------

/// What the core puts into the system table (§4.3): ConIn/ConOut/StdErr
/// and their handle (`handle` serves all three).
#[derive(Clone, Copy, Debug)]
pub struct ConsoleHandles {
    pub handle: Handle,
    pub con_in: *mut SimpleTextInputProtocol,
    pub con_in_ex: *mut SimpleTextInputExProtocol,
    pub con_out: *mut SimpleTextOutputProtocol,
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Creates the WaitForKey events and installs SimpleTextIn, SimpleTextInEx,
/// SimpleTextOut, Serial I/O and the console device path on one new handle.
/// Call once, after the event services are up; a second call fails with
/// EFI_ALREADY_STARTED. The instances are statics of the firmware image;
/// like all boot services they are unusable after ExitBootServices.
pub fn install() -> Result<ConsoleHandles, Status> {
    if INSTALLED.swap(true, Ordering::AcqRel) {
        return Err(Status::ALREADY_STARTED);
    }
    let wait_for_key = efi::events::create_internal_wait_event(key_available);
    let wait_for_key_ex = efi::events::create_internal_wait_event(key_available);
    if wait_for_key.is_null() || wait_for_key_ex.is_null() {
        return Err(Status::OUT_OF_RESOURCES);
    }
    // SAFETY: the protocol statics are not yet published to any caller, so
    // nothing else reads or references them during these writes.
    unsafe {
        (*CON_IN.get()).wait_for_key = wait_for_key;
        (*CON_IN_EX.get()).wait_for_key_ex = wait_for_key_ex;
    }
    publish_mode(&SCREEN.with(|s| *s));

    let handle = efi::protocol_services::install(
        None,
        &[
            (
                DevicePathProtocol::GUID,
                CONSOLE_DEVICE_PATH.as_ptr().cast_mut().cast::<c_void>(),
            ),
            (
                serial_io::SerialIoProtocol::GUID,
                SERIAL_IO.get().cast::<c_void>(),
            ),
            (SimpleTextInputProtocol::GUID, CON_IN.get().cast::<c_void>()),
            (
                SimpleTextInputExProtocol::GUID,
                CON_IN_EX.get().cast::<c_void>(),
            ),
            (
                SimpleTextOutputProtocol::GUID,
                CON_OUT.get().cast::<c_void>(),
            ),
        ],
    )?;
    Ok(ConsoleHandles {
        handle: handle.as_raw(),
        con_in: CON_IN.get(),
        con_in_ex: CON_IN_EX.get(),
        con_out: CON_OUT.get(),
    })
}

/// The WaitForKey event values, for tests and diagnostics.
pub fn wait_events() -> (Event, Event) {
    // SAFETY: plain reads of pointer-sized fields of our statics.
    unsafe {
        (
            (*CON_IN.get()).wait_for_key,
            (*CON_IN_EX.get()).wait_for_key_ex,
        )
    }
}

// --- Firmware-internal use ---------------------------------------------------

/// Writes `text` to the console as OutputString would (for the firmware's
/// own screens, such as the boot menu); `\n` only moves down, so lines end
/// in `\r\n`.
pub fn write_text(text: &str) {
    let units: Vec<u16> = text.encode_utf16().collect();
    let _ = screen_call(CON_OUT.get(), |s, out| {
        Ok(s.output_string(&units, out).status())
    });
}

/// Clears the console as ClearScreen would.
pub fn clear() {
    let _ = screen_call(CON_OUT.get(), |s, out| {
        s.clear_screen(out);
        Ok(Status::SUCCESS)
    });
}

/// The next key typed on the console, if any: the same queue ConIn reads.
pub fn read_key() -> Option<super::input::Key> {
    poll_serial();
    KEYBOARD.with(|k| k.pop())
}
