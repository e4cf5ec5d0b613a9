//! Rules the UEFI SCT (edk2-test) checks in the runtime services and two console protocols
//! (issue 16): the wakeup alarm (UEFI 2.10 §8.3.3/§8.3.4), the capsule services' argument
//! checks (§8.5.3), SimpleTextInputEx's RegisterKeyNotify and ReadKeyStrokeEx (§12.2) and
//! Serial I/O's SetAttributes/SetControl (§12.8). The rules that need a reset (monotonic
//! count, time zone, wakeup alarm surviving it) are checked by tests/tests/sct_reset.rs.

use core::ffi::c_void;
use core::ptr;

use r_efi::efi;
use r_efi::protocols::simple_text_input_ex as text_in_ex;

use crate::ctx::{Ctx, St};

pub fn run(ctx: &mut Ctx) {
    wakeup_conformance(ctx);
    wakeup_function(ctx);
    capsule_arguments(ctx);
    text_input_ex(ctx);
    serial_io(ctx);
}

fn time_now(ctx: &Ctx) -> Option<efi::Time> {
    // SAFETY: an all-zero EFI_TIME is a valid value of this plain C struct.
    let mut time: efi::Time = unsafe { core::mem::zeroed() };
    let status = (ctx.rt.get_time)(&mut time, ptr::null_mut());
    (status == efi::Status::SUCCESS).then_some(time)
}

/// Makes one field of a valid EFI_TIME invalid.
type SpoilTime = fn(&mut efi::Time);

/// GetWakeupTime/SetWakeupTime argument rules (§8.3.3, §8.3.4), as the SCT's
/// TimeServicesBBTestConformance.c checks them.
fn wakeup_conformance(ctx: &mut Ctx) {
    let rt = ctx.rt;
    let mut enabled = efi::Boolean::FALSE;
    let mut pending = efi::Boolean::FALSE;
    let Some(mut now) = time_now(ctx) else {
        ctx.fail(
            "sct_runtime.wakeup.get_time",
            format_args!("GetTime failed"),
        );
        return;
    };
    ctx.expect(
        "sct_runtime.get_wakeup_time.null_enabled",
        (rt.get_wakeup_time)(ptr::null_mut(), &mut pending, &mut now),
        &[efi::Status::INVALID_PARAMETER],
    );
    ctx.expect(
        "sct_runtime.get_wakeup_time.null_pending",
        (rt.get_wakeup_time)(&mut enabled, ptr::null_mut(), &mut now),
        &[efi::Status::INVALID_PARAMETER],
    );
    ctx.expect(
        "sct_runtime.get_wakeup_time.null_time",
        (rt.get_wakeup_time)(&mut enabled, &mut pending, ptr::null_mut()),
        &[efi::Status::INVALID_PARAMETER],
    );
    ctx.expect(
        "sct_runtime.set_wakeup_time.enable_null_time",
        (rt.set_wakeup_time)(efi::Boolean::TRUE, ptr::null_mut()),
        &[efi::Status::INVALID_PARAMETER],
    );
    let cases: [(&str, SpoilTime); 12] = [
        ("year_1899", |t| t.year = 1899),
        ("year_10000", |t| t.year = 10000),
        ("month_0", |t| t.month = 0),
        ("month_13", |t| t.month = 13),
        ("day_0", |t| t.day = 0),
        ("april_31", |t| {
            t.month = 4;
            t.day = 31
        }),
        ("hour_24", |t| t.hour = 24),
        ("minute_60", |t| t.minute = 60),
        ("second_60", |t| t.second = 60),
        ("nanosecond_1e9", |t| t.nanosecond = 1_000_000_000),
        ("time_zone_-1441", |t| t.timezone = -1441),
        ("february_29_2001", |t| {
            t.year = 2001;
            t.month = 2;
            t.day = 29
        }),
    ];
    for (name, spoil) in cases {
        let mut bad = now;
        spoil(&mut bad);
        let status = (rt.set_wakeup_time)(efi::Boolean::TRUE, &mut bad);
        ctx.check(
            "sct_runtime.set_wakeup_time.invalid",
            status == efi::Status::INVALID_PARAMETER,
            format_args!("{name}: got {}", St(status)),
        );
    }
}

/// The alarm reads back as set, armed and not pending, and disarms with a NULL time
/// (§8.3.3, §8.3.4; the SCT's TimeServicesBBTestFunction.c, without its reset).
fn wakeup_function(ctx: &mut Ctx) {
    let rt = ctx.rt;
    let Some(mut alarm) = time_now(ctx) else {
        return;
    };
    // An hour ahead: far enough not to fire during the test, near enough
    // for edk2's RTC driver, which refuses alarms more than a day away (in
    // the last hour of a day the alarm is on the next date).
    efi_con::time::one_hour_later(&mut alarm);
    alarm.nanosecond = 0;
    let status = (rt.set_wakeup_time)(efi::Boolean::TRUE, &mut alarm);
    if !ctx.ok("sct_runtime.set_wakeup_time.enable", status) {
        return;
    }
    let mut enabled = efi::Boolean::FALSE;
    let mut pending = efi::Boolean::TRUE;
    // SAFETY: an all-zero EFI_TIME is a valid value of this plain C struct.
    let mut read: efi::Time = unsafe { core::mem::zeroed() };
    let status = (rt.get_wakeup_time)(&mut enabled, &mut pending, &mut read);
    if ctx.ok("sct_runtime.get_wakeup_time", status) {
        ctx.check(
            "sct_runtime.get_wakeup_time.enabled",
            bool::from(enabled) && !bool::from(pending),
            format_args!(
                "enabled {} pending {}",
                bool::from(enabled),
                bool::from(pending)
            ),
        );
        ctx.check(
            "sct_runtime.get_wakeup_time.same_time",
            same_time(&read, &alarm),
            format_args!(
                "set {}-{}-{} {}:{}:{} tz {} dl {}, read {}-{}-{} {}:{}:{} tz {} dl {}",
                alarm.year,
                alarm.month,
                alarm.day,
                alarm.hour,
                alarm.minute,
                alarm.second,
                alarm.timezone,
                alarm.daylight,
                read.year,
                read.month,
                read.day,
                read.hour,
                read.minute,
                read.second,
                read.timezone,
                read.daylight
            ),
        );
    }
    let status = (rt.set_wakeup_time)(efi::Boolean::FALSE, ptr::null_mut());
    ctx.ok("sct_runtime.set_wakeup_time.disable_null", status);
    let status = (rt.get_wakeup_time)(&mut enabled, &mut pending, &mut read);
    ctx.check(
        "sct_runtime.get_wakeup_time.disabled",
        status == efi::Status::SUCCESS && !bool::from(enabled),
        format_args!("{} enabled {}", St(status), bool::from(enabled)),
    );
}

/// The fields the SCT compares after SetWakeupTime.
fn same_time(a: &efi::Time, b: &efi::Time) -> bool {
    (
        a.year, a.month, a.day, a.hour, a.minute, a.second, a.timezone, a.daylight,
    ) == (
        b.year, b.month, b.day, b.hour, b.minute, b.second, b.timezone, b.daylight,
    )
}

/// A capsule GUID no firmware knows.
const CAPSULE_GUID: efi::Guid = efi::Guid::from_fields(
    0x5e1f7e57,
    0x0cab,
    0x4d1c,
    0x9a,
    0x61,
    &[0, 0, 0, 0, 0xc, 0xb],
);

/// UpdateCapsule/QueryCapsuleCapabilities refuse bad arguments with EFI_INVALID_PARAMETER
/// before anything else (§8.5.3.1, §8.5.3.3; the SCT's
/// MiscRuntimeServicesBBTestConformance.c). None of these calls names a valid capsule.
fn capsule_arguments(ctx: &mut Ctx) {
    let rt = ctx.rt;
    let mut header = efi::CapsuleHeader {
        capsule_guid: CAPSULE_GUID,
        header_size: size_of::<efi::CapsuleHeader>() as u32,
        flags: efi::CAPSULE_FLAGS_PERSIST_ACROSS_RESET,
        capsule_image_size: size_of::<efi::CapsuleHeader>() as u32,
    };
    let mut list = [ptr::from_mut(&mut header), ptr::null_mut()];
    let invalid = &[efi::Status::INVALID_PARAMETER];
    ctx.expect(
        "sct_runtime.update_capsule.count_0",
        (rt.update_capsule)(list.as_mut_ptr(), 0, 0),
        invalid,
    );
    let cases = [
        (
            "sct_runtime.update_capsule.persist_without_list",
            efi::CAPSULE_FLAGS_PERSIST_ACROSS_RESET,
        ),
        (
            "sct_runtime.update_capsule.populate_without_list",
            efi::CAPSULE_FLAGS_PERSIST_ACROSS_RESET | efi::CAPSULE_FLAGS_POPULATE_SYSTEM_TABLE,
        ),
        (
            "sct_runtime.update_capsule.populate_without_persist",
            efi::CAPSULE_FLAGS_POPULATE_SYSTEM_TABLE,
        ),
        (
            "sct_runtime.update_capsule.reset_without_persist",
            efi::CAPSULE_FLAGS_INITIATE_RESET,
        ),
    ];
    for (name, flags) in cases {
        // SAFETY: list[0] points to `header`, a live local.
        unsafe { (*list[0]).flags = flags };
        // A persisting capsule of an unknown type without a list has two faults; §8.5.3.1
        // does not rank them, and OVMF reports the type (EFI_UNSUPPORTED). The SCT checks
        // the list with POPULATE_SYSTEM_TABLE set, which both firmwares refuse as invalid.
        let allowed: &[efi::Status] = if flags == efi::CAPSULE_FLAGS_PERSIST_ACROSS_RESET {
            &[efi::Status::INVALID_PARAMETER, efi::Status::UNSUPPORTED]
        } else {
            invalid
        };
        ctx.expect(name, (rt.update_capsule)(list.as_mut_ptr(), 1, 0), allowed);
    }

    let mut max_size = 0u64;
    let mut reset = 0;
    // SAFETY: list[0] points to `header`, a live local.
    unsafe {
        (*list[0]).flags =
            efi::CAPSULE_FLAGS_PERSIST_ACROSS_RESET | efi::CAPSULE_FLAGS_POPULATE_SYSTEM_TABLE
    };
    ctx.expect(
        "sct_runtime.query_capsule_capabilities.null_maximum_size",
        (rt.query_capsule_capabilities)(list.as_mut_ptr(), 1, ptr::null_mut(), &mut reset),
        invalid,
    );
    ctx.expect(
        "sct_runtime.query_capsule_capabilities.null_reset_type",
        (rt.query_capsule_capabilities)(list.as_mut_ptr(), 1, &mut max_size, ptr::null_mut()),
        invalid,
    );
    ctx.expect(
        "sct_runtime.query_capsule_capabilities.count_0",
        (rt.query_capsule_capabilities)(list.as_mut_ptr(), 0, &mut max_size, &mut reset),
        invalid,
    );
    // SAFETY: list[0] points to `header`, a live local.
    unsafe { (*list[0]).flags = efi::CAPSULE_FLAGS_POPULATE_SYSTEM_TABLE };
    ctx.expect(
        "sct_runtime.query_capsule_capabilities.populate_without_persist",
        (rt.query_capsule_capabilities)(list.as_mut_ptr(), 1, &mut max_size, &mut reset),
        invalid,
    );
}

/// RegisterKeyNotify as a C caller sees it: the notify function may be NULL.
type RegisterKeyNotifyRaw = extern "efiapi" fn(
    *mut text_in_ex::Protocol,
    *mut text_in_ex::KeyData,
    *const c_void,
    *mut *mut c_void,
) -> efi::Status;

/// RegisterKeyNotify refuses a NULL function; ReadKeyStrokeEx without a key returns
/// EFI_NOT_READY with the current key state (§12.2.3, §12.2.5, §12.2.6; the SCT's
/// SimpleTextInputExBBTestConformance.c and ...Function.c).
fn text_input_ex(ctx: &mut Ctx) {
    let Some(proto) = ctx.handle_protocol::<text_in_ex::Protocol>(
        ctx.st.console_in_handle,
        &text_in_ex::PROTOCOL_GUID,
    ) else {
        ctx.fail(
            "sct_runtime.text_input_ex.present",
            format_args!("no SimpleTextInputEx on ConsoleInHandle"),
        );
        return;
    };
    // SAFETY: the firmware's protocol instance, valid during boot services.
    let protocol = unsafe { &*proto };
    // SAFETY: the same function with the notify function's pointer type spelled as a plain
    // pointer, which has the same size and ABI; it lets us pass the NULL a C caller may.
    let register: RegisterKeyNotifyRaw = unsafe {
        core::mem::transmute::<text_in_ex::ProtocolRegisterKeyNotify, RegisterKeyNotifyRaw>(
            protocol.register_key_notify,
        )
    };
    let mut key = text_in_ex::KeyData::default();
    key.key.unicode_char = u16::from(b'R');
    let mut handle: *mut c_void = ptr::null_mut();
    ctx.expect(
        "sct_runtime.register_key_notify.null_function",
        register(proto, &mut key, ptr::null(), &mut handle),
        &[efi::Status::INVALID_PARAMETER],
    );

    // With no key waiting (nobody types during the self-test).
    let mut data = text_in_ex::KeyData::default();
    data.key.scan_code = 0xffff;
    data.key.unicode_char = 0xffff;
    data.key_state.key_shift_state = u32::MAX;
    data.key_state.key_toggle_state = u8::MAX;
    let status = (protocol.read_key_stroke_ex)(proto, &mut data);
    ctx.check(
        "sct_runtime.read_key_stroke_ex.not_ready_state",
        status == efi::Status::NOT_READY
            && (data.key.scan_code, data.key.unicode_char) == (0, 0)
            && data.key_state.key_shift_state != u32::MAX
            && data.key_state.key_toggle_state & text_in_ex::TOGGLE_STATE_VALID != 0
            && data.key_state.key_toggle_state != u8::MAX,
        format_args!(
            "{} key {:#x}/{:#x} shift {:#x} toggle {:#x}",
            St(status),
            data.key.scan_code,
            data.key.unicode_char,
            data.key_state.key_shift_state,
            data.key_state.key_toggle_state
        ),
    );

    // The toggle state SetState gave, exposed with EFI_NOT_READY.
    let mut state = text_in_ex::TOGGLE_STATE_VALID
        | text_in_ex::KEY_STATE_EXPOSED
        | text_in_ex::NUM_LOCK_ACTIVE;
    let status = (protocol.set_state)(proto, &mut state);
    if status == efi::Status::UNSUPPORTED {
        // §12.2.5 allows a device without toggle state; nothing further to check.
        return;
    }
    if ctx.ok("sct_runtime.set_state.exposed", status) {
        let status = (protocol.read_key_stroke_ex)(proto, &mut data);
        ctx.check(
            "sct_runtime.read_key_stroke_ex.exposed_state",
            status == efi::Status::NOT_READY
                && data.key_state.key_toggle_state == state
                && (data.key.scan_code, data.key.unicode_char) == (0, 0),
            format_args!(
                "{} toggle {:#x}, want {state:#x}",
                St(status),
                data.key_state.key_toggle_state
            ),
        );
    }
    let mut plain = text_in_ex::TOGGLE_STATE_VALID;
    let _ = (protocol.set_state)(proto, &mut plain);
}

/// EFI_SERIAL_IO_PROTOCOL (§12.8.1), which r-efi does not define.
#[repr(C)]
struct SerialIo {
    revision: u32,
    reset: extern "efiapi" fn(*mut SerialIo) -> efi::Status,
    set_attributes: extern "efiapi" fn(*mut SerialIo, u64, u32, u32, u32, u8, u32) -> efi::Status,
    set_control: extern "efiapi" fn(*mut SerialIo, u32) -> efi::Status,
    get_control: extern "efiapi" fn(*mut SerialIo, *mut u32) -> efi::Status,
    write: extern "efiapi" fn(*mut SerialIo, *mut usize, *mut c_void) -> efi::Status,
    read: extern "efiapi" fn(*mut SerialIo, *mut usize, *mut c_void) -> efi::Status,
    mode: *mut SerialIoMode,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct SerialIoMode {
    control_mask: u32,
    timeout: u32,
    baud_rate: u64,
    receive_fifo_depth: u32,
    data_bits: u32,
    parity: u32,
    stop_bits: u32,
}

const SERIAL_IO_GUID: efi::Guid = efi::Guid::from_fields(
    0xbb25cf6f,
    0xf1d4,
    0x11d2,
    0x9a,
    0x0c,
    &[0x00, 0x90, 0x27, 0x3f, 0xc1, 0xfd],
);
const NO_PARITY: u32 = 1;
const SPACE_PARITY: u32 = 5;
const ONE_STOP_BIT: u32 = 1;
const TWO_STOP_BITS: u32 = 3;
const DATA_TERMINAL_READY: u32 = 0x0001;
const REQUEST_TO_SEND: u32 = 0x0002;
const INPUT_BUFFER_EMPTY: u32 = 0x0100;
const HARDWARE_LOOPBACK_ENABLE: u32 = 0x1000;
const SOFTWARE_LOOPBACK_ENABLE: u32 = 0x2000;

/// SetAttributes takes the standard settings and Mode reflects them; SetControl's hardware
/// and software loopback work (§12.8.4-§12.8.6; the SCT's SerialIoBBTestFunction.c and
/// SerialIoBBTestConformance.c Read_Conf).
///
/// Nothing is printed between changing the line and restoring it: ConOut may share the UART.
fn serial_io(ctx: &mut Ctx) {
    let mut found: *mut c_void = ptr::null_mut();
    let mut guid = SERIAL_IO_GUID;
    let status = (ctx.bs.locate_protocol)(&mut guid, ptr::null_mut(), &mut found);
    if !ctx.ok("sct_runtime.serial_io.present", status) || found.is_null() {
        return;
    }
    let serial: *mut SerialIo = found.cast();
    // SAFETY: the firmware's protocol instance and its Mode, valid during boot services.
    let (io, mode) = unsafe { (&*serial, (*serial).mode) };
    // SAFETY: as above; Mode is read after each call, as the SCT does.
    let read_mode = || unsafe { mode.read() };
    let original = read_mode();
    let restore = |m: &SerialIoMode| {
        let _ = (io.set_attributes)(
            serial,
            m.baud_rate,
            m.receive_fifo_depth,
            m.timeout,
            m.parity,
            m.data_bits as u8,
            m.stop_bits,
        );
    };

    // Each setting alone, the others at their defaults (0), then back.
    let mut results = [(0u32, efi::Status::SUCCESS, 0u32); 9];
    let settings: [(u32, u8, u32); 9] = [
        (NO_PARITY, 0, 0),
        (2, 0, 0),
        (3, 0, 0),
        (4, 0, 0),
        (SPACE_PARITY, 0, 0),
        (0, 7, 0),
        (0, 8, 0),
        (0, 0, ONE_STOP_BIT),
        (0, 0, TWO_STOP_BITS),
    ];
    for (slot, &(parity, data_bits, stop_bits)) in results.iter_mut().zip(&settings) {
        let status = (io.set_attributes)(serial, 0, 0, 0, parity, data_bits, stop_bits);
        let m = read_mode();
        *slot = match (parity, data_bits) {
            (p, _) if p != 0 => (p, status, m.parity),
            (_, d) if d != 0 => (u32::from(d), status, m.data_bits),
            _ => (stop_bits, status, m.stop_bits),
        };
        restore(&original);
    }
    // The SCT's "default attributes", given explicitly: 115200, a 1-byte FIFO, 1 s, 8N1.
    // At TPL_NOTIFY: edk2's terminal driver, from a TPL_NOTIFY timer, sets the timeout it
    // prefers for the FIFO depth whenever Mode differs, so Mode is read before it can run.
    // SetAttributes may reinstall protocols, which TPL_NOTIFY still allows (§7.1 Table 7-3).
    let old_tpl = (ctx.bs.raise_tpl)(efi::TPL_NOTIFY);
    let status = (io.set_attributes)(serial, 115_200, 1, 1_000_000, NO_PARITY, 8, ONE_STOP_BIT);
    let explicit = read_mode();
    restore(&original);
    (ctx.bs.restore_tpl)(old_tpl);

    // Hardware loopback: a byte written comes back, and never reaches the line. Timers
    // stay off meanwhile so no console poll takes the byte; only SetControl, Write and
    // Read run at TPL_HIGH_LEVEL (SetAttributes may reinstall protocols, §12.8.4).
    let loopback = original.control_mask & HARDWARE_LOOPBACK_ENABLE != 0;
    let mut echo = (efi::Status::UNSUPPORTED, 0u32, [0u8; 1]);
    if loopback {
        let mut control = 0u32;
        let _ = (io.get_control)(serial, &mut control);
        // A 100 ms read timeout, the rest at the defaults.
        let _ = (io.set_attributes)(serial, 0, 0, 100_000, 0, 0, 0);
        let old_tpl = (ctx.bs.raise_tpl)(efi::TPL_HIGH_LEVEL);
        let set = (io.set_control)(
            serial,
            DATA_TERMINAL_READY | REQUEST_TO_SEND | HARDWARE_LOOPBACK_ENABLE,
        );
        let mut reported = 0u32;
        let _ = (io.get_control)(serial, &mut reported);
        let mut byte = *b"Z";
        let mut size = 1usize;
        let _ = (io.write)(serial, &mut size, byte.as_mut_ptr().cast());
        let mut got = [0u8];
        let mut size = 1usize;
        let _ = (io.read)(serial, &mut size, got.as_mut_ptr().cast());
        let _ = (io.set_control)(serial, control & (DATA_TERMINAL_READY | REQUEST_TO_SEND));
        (ctx.bs.restore_tpl)(old_tpl);
        restore(&original);
        echo = (set, reported, got);
    }

    // Software loopback (§12.8.5): what Write queues, Read returns, and an empty queue is a
    // short read with EFI_TIMEOUT. TPL_HIGH_LEVEL keeps a console poll (edk2's terminal
    // driver reads Serial I/O from a timer) from taking the bytes.
    let old_tpl = (ctx.bs.raise_tpl)(efi::TPL_HIGH_LEVEL);
    let mut control = 0u32;
    let _ = (io.get_control)(serial, &mut control);
    let soft_set = (io.set_control)(serial, SOFTWARE_LOOPBACK_ENABLE);
    let mut soft_reported = 0u32;
    let _ = (io.get_control)(serial, &mut soft_reported);
    let mut bytes = *b"5A";
    let mut size = bytes.len();
    let soft_write = (io.write)(serial, &mut size, bytes.as_mut_ptr().cast());
    let mut queued = 0u32;
    let _ = (io.get_control)(serial, &mut queued);
    let mut got = [0u8; 2];
    let mut got_size = got.len();
    let soft_read = (io.read)(serial, &mut got_size, got.as_mut_ptr().cast());
    let mut extra = [0u8; 1];
    let mut extra_size = 1usize;
    let empty_read = (io.read)(serial, &mut extra_size, extra.as_mut_ptr().cast());
    let _ = (io.set_control)(serial, control & (DATA_TERMINAL_READY | REQUEST_TO_SEND));
    (ctx.bs.restore_tpl)(old_tpl);

    let names = [
        "sct_runtime.serial_io.parity_none",
        "sct_runtime.serial_io.parity_even",
        "sct_runtime.serial_io.parity_odd",
        "sct_runtime.serial_io.parity_mark",
        "sct_runtime.serial_io.parity_space",
        "sct_runtime.serial_io.data_bits_7",
        "sct_runtime.serial_io.data_bits_8",
        "sct_runtime.serial_io.stop_bits_one",
        "sct_runtime.serial_io.stop_bits_two",
    ];
    for (name, (want, status, got)) in names.iter().zip(results) {
        ctx.check(
            name,
            status == efi::Status::SUCCESS && got == want,
            format_args!("{} Mode {got}, want {want}", St(status)),
        );
    }
    ctx.check(
        "sct_runtime.serial_io.explicit_defaults",
        status == efi::Status::SUCCESS
            && explicit.baud_rate == 115_200
            && explicit.receive_fifo_depth == 1
            && explicit.timeout == 1_000_000
            && explicit.parity == NO_PARITY
            && explicit.data_bits == 8
            && explicit.stop_bits == ONE_STOP_BIT,
        format_args!(
            "{} baud {} fifo {} timeout {} parity {} data {} stop {}",
            St(status),
            explicit.baud_rate,
            explicit.receive_fifo_depth,
            explicit.timeout,
            explicit.parity,
            explicit.data_bits,
            explicit.stop_bits
        ),
    );
    // Both firmwares drive a 16550, whose MCR loopback §12.8.5 lets them offer.
    ctx.check(
        "sct_runtime.serial_io.loopback_offered",
        loopback,
        format_args!("ControlMask {:#x}", original.control_mask),
    );
    if loopback {
        let (set, reported, got) = echo;
        ctx.check(
            "sct_runtime.serial_io.loopback_echo",
            set == efi::Status::SUCCESS && reported & HARDWARE_LOOPBACK_ENABLE != 0 && got == *b"Z",
            format_args!("SetControl {} control {reported:#x} read {got:?}", St(set)),
        );
    }
    ctx.check(
        "sct_runtime.serial_io.software_loopback",
        soft_set == efi::Status::SUCCESS
            && soft_reported & SOFTWARE_LOOPBACK_ENABLE != 0
            && soft_write == efi::Status::SUCCESS
            && size == 2
            && queued & INPUT_BUFFER_EMPTY == 0
            && soft_read == efi::Status::SUCCESS
            && got_size == 2
            && got == *b"5A",
        format_args!(
            "SetControl {} control {soft_reported:#x}, Write {} ({size}), control {queued:#x}, \
             Read {} ({got_size}) {got:?}",
            St(soft_set),
            St(soft_write),
            St(soft_read)
        ),
    );
    ctx.check(
        "sct_runtime.serial_io.software_loopback_empty_read",
        empty_read == efi::Status::TIMEOUT && extra_size == 0,
        format_args!("Read {} size {extra_size}", St(empty_read)),
    );
    let after = read_mode();
    ctx.check(
        "sct_runtime.serial_io.restored",
        after.parity == original.parity
            && after.data_bits == original.data_bits
            && after.stop_bits == original.stop_bits
            && after.timeout == original.timeout,
        format_args!(
            "parity {} data {} stop {} timeout {}",
            after.parity, after.data_bits, after.stop_bits, after.timeout
        ),
    );
}
