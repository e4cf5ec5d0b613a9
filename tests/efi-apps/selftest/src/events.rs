//! Event, timer and task priority services (UEFI 2.10 §7.1) and the miscellaneous boot
//! services (§7.5).

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use r_efi::efi;

use crate::ctx::{Ctx, St};

/// Timer periods are in 100 ns units (UEFI 2.10 §7.1.7).
const MS: u64 = 10_000;

/// Test-only event group GUID.
const GROUP: efi::Guid = efi::Guid::from_fields(
    0x5e1f7e57,
    0x0e0e,
    0x4d1c,
    0x9a,
    0x61,
    &[0, 0, 0, 0, 0xe, 0xe],
);

fn create(
    ctx: &Ctx,
    kind: u32,
    tpl: efi::Tpl,
    notify: Option<efi::EventNotify>,
    context: *mut c_void,
) -> Result<efi::Event, efi::Status> {
    let mut event: efi::Event = ptr::null_mut();
    match (ctx.bs.create_event)(kind, tpl, notify, context, &mut event) {
        efi::Status::SUCCESS => Ok(event),
        status => Err(status),
    }
}

extern "efiapi" fn nop_notify(_event: efi::Event, _context: *mut c_void) {}

/// Counts invocations in the AtomicU32 its context points at.
extern "efiapi" fn counting_notify(_event: efi::Event, context: *mut c_void) {
    // SAFETY: every event using this notify function passes a pointer to a live static
    // AtomicU32 as its context.
    let counter = unsafe { &*context.cast::<AtomicU32>() };
    counter.fetch_add(1, Ordering::SeqCst);
}

/// Records the order of notify calls: each call appends its context tag to ORDER.
static ORDER: AtomicUsize = AtomicUsize::new(0);
static ORDER_LEN: AtomicUsize = AtomicUsize::new(0);

extern "efiapi" fn ordering_notify(_event: efi::Event, context: *mut c_void) {
    let tag = context.addr();
    let position = ORDER_LEN.fetch_add(1, Ordering::SeqCst);
    // Pack up to four 8-bit tags in call order.
    ORDER.fetch_or((tag & 0xff) << (8 * position), Ordering::SeqCst);
}

pub fn run(ctx: &mut Ctx) {
    create_event_validation(ctx);
    timers(ctx);
    check_event(ctx);
    event_groups(ctx);
}

fn create_event_validation(ctx: &mut Ctx) {
    let cases: [(&str, u32, efi::Tpl, Option<efi::EventNotify>); 5] = [
        (
            "events.create.signal_and_wait",
            efi::EVT_NOTIFY_SIGNAL | efi::EVT_NOTIFY_WAIT,
            efi::TPL_CALLBACK,
            Some(nop_notify),
        ),
        (
            "events.create.signal_without_function",
            efi::EVT_NOTIFY_SIGNAL,
            efi::TPL_CALLBACK,
            None,
        ),
        (
            "events.create.notify_tpl_application",
            efi::EVT_NOTIFY_SIGNAL,
            efi::TPL_APPLICATION,
            Some(nop_notify),
        ),
        (
            "events.create.notify_tpl_high_level",
            efi::EVT_NOTIFY_WAIT,
            efi::TPL_HIGH_LEVEL,
            Some(nop_notify),
        ),
        (
            "events.create.unknown_type",
            0x0000_0001,
            efi::TPL_CALLBACK,
            None,
        ),
    ];
    for (name, kind, tpl, notify) in cases {
        match create(ctx, kind, tpl, notify, ptr::null_mut()) {
            Ok(event) => {
                let _ = (ctx.bs.close_event)(event);
                ctx.fail(name, format_args!("got SUCCESS, want INVALID_PARAMETER"));
            }
            Err(status) => {
                ctx.expect(name, status, &[efi::Status::INVALID_PARAMETER]);
            }
        }
    }
    let status = (ctx.bs.create_event)(
        efi::EVT_TIMER,
        efi::TPL_CALLBACK,
        None,
        ptr::null_mut(),
        ptr::null_mut(),
    );
    ctx.expect(
        "events.create.null_event",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
}

fn wait_one(ctx: &Ctx, event: efi::Event) -> (efi::Status, usize) {
    let mut events = [event];
    let mut index = usize::MAX;
    let status = (ctx.bs.wait_for_event)(1, events.as_mut_ptr(), &mut index);
    (status, index)
}

fn timers(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let timer = match create(
        ctx,
        efi::EVT_TIMER,
        efi::TPL_CALLBACK,
        None,
        ptr::null_mut(),
    ) {
        Ok(event) => event,
        Err(status) => {
            ctx.fail("events.timer.create", format_args!("{}", St(status)));
            return;
        }
    };
    ctx.pass("events.timer.create");

    if ctx.ok(
        "events.timer.relative",
        (bs.set_timer)(timer, efi::TIMER_RELATIVE, 10 * MS),
    ) {
        let (status, index) = wait_one(ctx, timer);
        ctx.check(
            "events.timer.relative.wait",
            status == efi::Status::SUCCESS && index == 0,
            format_args!("{} index {index}", St(status)),
        );
    }

    if ctx.ok(
        "events.timer.periodic",
        (bs.set_timer)(timer, efi::TIMER_PERIODIC, 5 * MS),
    ) {
        let mut ticks = 0;
        for _ in 0..3 {
            if wait_one(ctx, timer) == (efi::Status::SUCCESS, 0) {
                ticks += 1;
            }
        }
        ctx.check(
            "events.timer.periodic.fires",
            ticks == 3,
            format_args!("{ticks} of 3 waits returned"),
        );
    }

    // Cancel, then wait past the old period: the event must stay unsignalled.
    ctx.ok(
        "events.timer.cancel",
        (bs.set_timer)(timer, efi::TIMER_CANCEL, 0),
    );
    let _ = (bs.check_event)(timer);
    let _ = (bs.stall)(30_000);
    ctx.expect(
        "events.timer.cancel.quiet",
        (bs.check_event)(timer),
        &[efi::Status::NOT_READY],
    );

    // Stall() against the timer: 2 ms of stall must not outrun a 1 s timer, and 200 ms of
    // stall must outlast a 20 ms timer. Both bounds are loose for emulated machines.
    let _ = (bs.set_timer)(timer, efi::TIMER_RELATIVE, 1000 * MS);
    let _ = (bs.stall)(2_000);
    ctx.expect(
        "events.stall.short",
        (bs.check_event)(timer),
        &[efi::Status::NOT_READY],
    );
    let _ = (bs.set_timer)(timer, efi::TIMER_RELATIVE, 20 * MS);
    ctx.ok("events.stall", (bs.stall)(200_000));
    ctx.expect(
        "events.stall.long",
        (bs.check_event)(timer),
        &[efi::Status::SUCCESS],
    );

    ctx.expect(
        "events.set_timer.bad_type",
        (bs.set_timer)(timer, 7, 0),
        &[efi::Status::INVALID_PARAMETER],
    );
    ctx.ok("events.close_event", (bs.close_event)(timer));

    // WaitForEvent rejects an empty list and events of type EVT_NOTIFY_SIGNAL (§7.1.5).
    let mut index = 0usize;
    let status = (bs.wait_for_event)(0, ptr::null_mut(), &mut index);
    ctx.expect(
        "events.wait.empty",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
    if let Ok(signal) = create(
        ctx,
        efi::EVT_NOTIFY_SIGNAL,
        efi::TPL_CALLBACK,
        Some(nop_notify),
        ptr::null_mut(),
    ) {
        let (status, _) = wait_one(ctx, signal);
        ctx.expect(
            "events.wait.notify_signal",
            status,
            &[efi::Status::INVALID_PARAMETER],
        );
        ctx.expect(
            "events.check.notify_signal",
            (bs.check_event)(signal),
            &[efi::Status::INVALID_PARAMETER],
        );
        let _ = (bs.close_event)(signal);
    }
}

/// CheckEvent: NOT_READY, then SUCCESS once signalled, which also clears the state (§7.1.6).
fn check_event(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let Ok(event) = create(ctx, 0, efi::TPL_CALLBACK, None, ptr::null_mut()) else {
        ctx.fail("events.check", format_args!("CreateEvent(0) failed"));
        return;
    };
    ctx.expect(
        "events.check.not_ready",
        (bs.check_event)(event),
        &[efi::Status::NOT_READY],
    );
    ctx.ok("events.signal", (bs.signal_event)(event));
    ctx.ok("events.check.signalled", (bs.check_event)(event));
    ctx.expect(
        "events.check.cleared",
        (bs.check_event)(event),
        &[efi::Status::NOT_READY],
    );
    let _ = (bs.close_event)(event);

    // An EVT_NOTIFY_WAIT event's notify function runs on each CheckEvent while unsignalled.
    static WAIT_CALLS: AtomicU32 = AtomicU32::new(0);
    let counter = ptr::from_ref(&WAIT_CALLS).cast_mut().cast();
    if let Ok(event) = create(
        ctx,
        efi::EVT_NOTIFY_WAIT,
        efi::TPL_CALLBACK,
        Some(counting_notify),
        counter,
    ) {
        let _ = (bs.check_event)(event);
        ctx.check(
            "events.check.notify_wait",
            WAIT_CALLS.load(Ordering::SeqCst) >= 1,
            format_args!("notify function not run"),
        );
        let _ = (bs.close_event)(event);
    }
}

/// CreateEventEx groups: signalling one member signals all of them (§7.1.2).
fn event_groups(ctx: &mut Ctx) {
    let bs = ctx.bs;
    static FIRST: AtomicU32 = AtomicU32::new(0);
    static SECOND: AtomicU32 = AtomicU32::new(0);
    static OUTSIDER: AtomicU32 = AtomicU32::new(0);
    let ex = |counter: &'static AtomicU32, group: *const efi::Guid| {
        let mut event: efi::Event = ptr::null_mut();
        let status = (bs.create_event_ex)(
            efi::EVT_NOTIFY_SIGNAL,
            efi::TPL_CALLBACK,
            Some(counting_notify),
            ptr::from_ref(counter).cast(),
            group,
            &mut event,
        );
        (status, event)
    };
    let (s1, first) = ex(&FIRST, &GROUP);
    let (s2, second) = ex(&SECOND, &GROUP);
    let (s3, outsider) = ex(&OUTSIDER, ptr::null());
    let mut open = [first, second, outsider];
    if ctx.check(
        "events.create_event_ex",
        [s1, s2, s3].iter().all(|s| *s == efi::Status::SUCCESS),
        format_args!("{} {} {}", St(s1), St(s2), St(s3)),
    ) {
        ctx.ok("events.group.signal", (bs.signal_event)(first));
        ctx.check(
            "events.group.all_signalled",
            FIRST.load(Ordering::SeqCst) == 1 && SECOND.load(Ordering::SeqCst) == 1,
            format_args!(
                "notify counts {} and {}",
                FIRST.load(Ordering::SeqCst),
                SECOND.load(Ordering::SeqCst)
            ),
        );
        ctx.check(
            "events.group.others_untouched",
            OUTSIDER.load(Ordering::SeqCst) == 0,
            format_args!("ungrouped event signalled"),
        );
        // A closed event leaves its group (§7.1.3).
        ctx.ok("events.group.close", (bs.close_event)(second));
        open[1] = ptr::null_mut();
        let _ = (bs.signal_event)(first);
        ctx.check(
            "events.group.closed_member",
            FIRST.load(Ordering::SeqCst) == 2 && SECOND.load(Ordering::SeqCst) == 1,
            format_args!(
                "notify counts {} and {}",
                FIRST.load(Ordering::SeqCst),
                SECOND.load(Ordering::SeqCst)
            ),
        );
    }
    for event in open {
        if !event.is_null() {
            let _ = (bs.close_event)(event);
        }
    }

    // Exit-boot-services and virtual-address-change types take no group (§7.1.2).
    let mut event: efi::Event = ptr::null_mut();
    let status = (bs.create_event_ex)(
        efi::EVT_SIGNAL_EXIT_BOOT_SERVICES,
        efi::TPL_CALLBACK,
        Some(nop_notify),
        ptr::null(),
        &GROUP,
        &mut event,
    );
    if status == efi::Status::SUCCESS {
        let _ = (bs.close_event)(event);
    }
    ctx.expect(
        "events.create_event_ex.exit_boot_services_group",
        status,
        &[efi::Status::INVALID_PARAMETER],
    );
}

/// RFLAGS.IF (bit 9, Intel SDM vol. 1 §3.4.3.3).
fn interrupts_enabled() -> bool {
    let rflags: u64;
    // SAFETY: `pushfq; pop` only reads RFLAGS through the stack.
    unsafe {
        core::arch::asm!("pushfq", "pop {}", out(reg) rflags, options(nomem, preserves_flags))
    };
    rflags & (1 << 9) != 0
}

pub fn run_tpl(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let old = (bs.raise_tpl)(efi::TPL_NOTIFY);
    let nested = (bs.raise_tpl)(efi::TPL_HIGH_LEVEL);
    (bs.restore_tpl)(nested);
    (bs.restore_tpl)(old);
    ctx.check(
        "tpl.raise_restore",
        old == efi::TPL_APPLICATION && nested == efi::TPL_NOTIFY,
        format_args!("RaiseTPL returned {old} then {nested}"),
    );

    // Interrupts are enabled below TPL_HIGH_LEVEL and disabled at it (§7.1,
    // TPL table), and the firmware's timer interrupt ends a `hlt` at
    // TPL_APPLICATION: iPXE's idle loop (`cpu_nap`) is a bare `hlt`.
    let at_application = interrupts_enabled();
    let old = (bs.raise_tpl)(efi::TPL_HIGH_LEVEL);
    let at_high = interrupts_enabled();
    (bs.restore_tpl)(old);
    let restored = interrupts_enabled();
    ctx.check(
        "tpl.interrupt_flag",
        at_application && !at_high && restored,
        format_args!(
            "IF {at_application} at TPL_APPLICATION, {at_high} at TPL_HIGH_LEVEL, \
             {restored} after RestoreTPL"
        ),
    );
    if restored {
        // Without a timer interrupt the app hangs here: the VM test times
        // out after this line.
        ctx.print(format_args!("tpl.hlt_wakes: hlt with interrupts on\n"));
        // SAFETY: `hlt` with IF=1 only waits for the next interrupt.
        unsafe { core::arch::asm!("hlt", options(nomem, nostack, preserves_flags)) };
        ctx.pass("tpl.hlt_wakes");
    }

    // WaitForEvent must be called at TPL_APPLICATION (§7.1.5).
    if let Ok(event) = create(ctx, 0, efi::TPL_CALLBACK, None, ptr::null_mut()) {
        let _ = (bs.signal_event)(event);
        let old = (bs.raise_tpl)(efi::TPL_CALLBACK);
        let (status, _) = wait_one(ctx, event);
        (bs.restore_tpl)(old);
        ctx.expect(
            "tpl.wait_above_application",
            status,
            &[efi::Status::UNSUPPORTED],
        );
        let _ = (bs.close_event)(event);
    }

    // Signalled notifications are held while the TPL is at or above theirs and then run
    // highest TPL first when it drops (§7.1.1).
    let low = create(
        ctx,
        efi::EVT_NOTIFY_SIGNAL,
        efi::TPL_CALLBACK,
        Some(ordering_notify),
        ptr::without_provenance_mut(1),
    );
    let high = create(
        ctx,
        efi::EVT_NOTIFY_SIGNAL,
        efi::TPL_NOTIFY,
        Some(ordering_notify),
        ptr::without_provenance_mut(2),
    );
    let (Ok(low), Ok(high)) = (low, high) else {
        ctx.fail("tpl.notify_order", format_args!("CreateEvent failed"));
        return;
    };
    ORDER.store(0, Ordering::SeqCst);
    ORDER_LEN.store(0, Ordering::SeqCst);
    let old = (bs.raise_tpl)(efi::TPL_NOTIFY);
    let _ = (bs.signal_event)(low);
    let _ = (bs.signal_event)(high);
    let ran_early = ORDER_LEN.load(Ordering::SeqCst);
    (bs.restore_tpl)(old);
    ctx.check(
        "tpl.notify_deferred",
        ran_early == 0,
        format_args!("{ran_early} notify functions ran at TPL_NOTIFY"),
    );
    let order = ORDER.load(Ordering::SeqCst);
    ctx.check(
        "tpl.notify_order",
        ORDER_LEN.load(Ordering::SeqCst) == 2 && order == 0x0102,
        format_args!("call order {order:#x} (want high=2 then low=1: 0x102)"),
    );
    let _ = (bs.close_event)(low);
    let _ = (bs.close_event)(high);
}

pub fn run_misc(ctx: &mut Ctx) {
    let bs = ctx.bs;
    let mut first = 0u64;
    let mut second = 0u64;
    let s1 = (bs.get_next_monotonic_count)(&mut first);
    let s2 = (bs.get_next_monotonic_count)(&mut second);
    ctx.check(
        "misc.monotonic_count",
        s1 == efi::Status::SUCCESS && s2 == efi::Status::SUCCESS && second > first,
        format_args!("{} {} {first:#x} -> {second:#x}", St(s1), St(s2)),
    );
    ctx.expect(
        "misc.monotonic_count.null",
        (bs.get_next_monotonic_count)(ptr::null_mut()),
        &[efi::Status::INVALID_PARAMETER],
    );

    // The CRC-32 check value of "123456789" (ISO 3309 / ITU-T V.42 polynomial).
    let mut data = *b"123456789";
    let mut crc = 0u32;
    let status = (bs.calculate_crc32)(data.as_mut_ptr().cast(), data.len(), &mut crc);
    ctx.check(
        "misc.calculate_crc32",
        status == efi::Status::SUCCESS && crc == 0xCBF4_3926,
        format_args!("{} {crc:#x}", St(status)),
    );
    ctx.expect(
        "misc.calculate_crc32.zero_size",
        (bs.calculate_crc32)(data.as_mut_ptr().cast(), 0, &mut crc),
        &[efi::Status::INVALID_PARAMETER],
    );
    ctx.expect(
        "misc.calculate_crc32.null_crc",
        (bs.calculate_crc32)(data.as_mut_ptr().cast(), data.len(), ptr::null_mut()),
        &[efi::Status::INVALID_PARAMETER],
    );

    // CopyMem handles overlap in both directions (§7.5.8).
    let mut buf: [u8; 16] = core::array::from_fn(|i| i as u8);
    let base = buf.as_mut_ptr();
    // SAFETY: both ranges [base+4, base+14) and [base, base+10) lie inside `buf`.
    (bs.copy_mem)(unsafe { base.add(4) }.cast(), base.cast(), 10);
    let forward_ok = buf[4..14].iter().enumerate().all(|(i, &b)| b == i as u8);
    let mut buf2: [u8; 16] = core::array::from_fn(|i| i as u8);
    let base = buf2.as_mut_ptr();
    // SAFETY: both ranges [base, base+10) and [base+4, base+14) lie inside `buf2`.
    (bs.copy_mem)(base.cast(), unsafe { base.add(4) }.cast(), 10);
    let backward_ok = buf2[..10]
        .iter()
        .enumerate()
        .all(|(i, &b)| b == i as u8 + 4);
    ctx.check(
        "misc.copy_mem.overlap",
        forward_ok && backward_ok,
        format_args!("forward {forward_ok}, backward {backward_ok}"),
    );

    let mut fill = [0u8; 32];
    // SAFETY: the range [fill+3, fill+3+20) lies inside `fill`.
    (bs.set_mem)(unsafe { fill.as_mut_ptr().add(3) }.cast(), 20, 0xC3);
    let set_ok = fill
        .iter()
        .enumerate()
        .all(|(i, &b)| b == if (3..23).contains(&i) { 0xC3 } else { 0 });
    ctx.check("misc.set_mem", set_ok, format_args!("{fill:x?}"));

    ctx.ok(
        "misc.set_watchdog_timer.zero",
        (bs.set_watchdog_timer)(0, 0x1_0000, 0, ptr::null_mut()),
    );
}
