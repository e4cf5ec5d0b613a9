//! Event, Timer and Task Priority Services (UEFI 2.10 §7.1). The
//! miscellaneous boot services of §7.5 that use the event table's clock
//! and watchdog (Stall, SetWatchdogTimer) live in [`crate::misc_services`].
//!
//! Timers are polled, not interrupt-driven: time is read from
//! `platform::tsc` whenever the services are entered ([`poll`], RestoreTPL,
//! CheckEvent, WaitForEvent, Stall), and expired timers are signalled then.
//! From the first StartImage on, interrupts are enabled below
//! TPL_HIGH_LEVEL as §7.1 (Table 7-2) has them, and a local-APIC tick
//! (`platform::apic`) whose handler only acknowledges ends an application's
//! `hlt`; it touches no firmware state, so nothing here is reentered.
//! Pending notify functions run whenever the TPL drops below their notify
//! TPL, highest TPL first (§7.1, "Event, Timer, and Task Priority Services"
//! and Table 7-2).
//!
//! The logic lives in [`table`] (host-tested with a fake clock; its one
//! `unsafe` calls an application's notify function);
//! the `extern "efiapi"` functions below only validate caller pointers and
//! translate results to `Status`.
//!
//! Entry points for the rest of the firmware:
//! - [`poll`]: fire expired timers and run the notifications the TPL allows.
//! - [`create_internal_wait_event`]: an event (e.g. ConIn's WaitForKey) that
//!   reads as signalled whenever a firmware-side condition holds.
//! - [`signal_group`], [`ready_to_boot_notify`],
//!   [`before_exit_boot_services_notify`], [`exit_boot_services_notify`],
//!   [`virtual_address_change_notify`]: signal the spec's event groups from
//!   the core services; each returns after the notify functions ran.
//! - [`signal_group_event`]: SignalEvent on a whole group, for the groups
//!   core services signal for their callers (configuration tables, memory
//!   map changes).
//! - [`signal_deferred`]: signal without dispatching, for callers that hold
//!   their own global state borrow (e.g. RegisterProtocolNotify).
//! - [`arm_boot_watchdog`] and [`set_watchdog_reset_hook`].

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};

use log::{debug, error};
use platform::sync::Global;
use uefi_raw::table::boot::{EventType, TimerDelay, Tpl};
use uefi_raw::{Event, Guid, Status};

use crate::ids::EventId;
use crate::spec_gaps;
use table::{EventError, EventTable, Events, NotifyFn};

pub mod table;

// ---------------------------------------------------------------------------
// Firmware instance and the EFI boundary.

static EVENTS: Global<EventTable> = Global::new(EventTable::new());
/// Set once ExitBootServices' notifications ran: the table lives on the boot
/// services heap, which then belongs to the OS.
static BOOT_SERVICES_EXITED: AtomicBool = AtomicBool::new(false);

fn now_ns() -> u64 {
    platform::tsc::now_ns()
}

/// The firmware's event table with the real clock, or `None` (logged)
/// after ExitBootServices.
pub(crate) fn services() -> Option<Events<'static>> {
    if BOOT_SERVICES_EXITED.load(Ordering::Acquire) {
        error!("event services called after ExitBootServices");
        return None;
    }
    Some(Events {
        table: &EVENTS,
        clock: now_ns,
        on_watchdog: watchdog_expired,
    })
}

/// Translates an event-table result to the `Status` the caller sees.
pub(crate) fn status_of(result: Result<(), EventError>) -> Status {
    match result {
        Ok(()) => Status::SUCCESS,
        Err(e) => {
            debug!("events: {e}");
            e.status()
        }
    }
}

/// Fires expired timers and runs the notifications the current TPL allows.
/// Firmware code that busy-waits (console input, disk polling) calls this.
pub fn poll() {
    if let Some(events) = services() {
        events.poll();
    }
}

/// The current TPL.
pub fn current_tpl() -> Tpl {
    services().map_or(Tpl::APPLICATION, |events| events.tpl())
}

/// Whether `event` is an open event issued by this firmware.
pub fn is_valid_event(event: Event) -> bool {
    services().is_some_and(|_| EVENTS.with(|t| t.contains(EventId::from_raw(event))))
}

/// An event without notify function that reads as signalled whenever
/// `check` returns true at CheckEvent/WaitForEvent time (e.g. ConIn's
/// WaitForKey: "a key is available"). `check` runs with no events state
/// borrowed. Returns null only if the event ids ran out.
pub fn create_internal_wait_event(check: fn() -> bool) -> Event {
    match services().map(|events| events.create_condition(check)) {
        Some(Ok(id)) => id.as_raw(),
        Some(Err(e)) => {
            error!("events: {e}");
            core::ptr::null_mut()
        }
        None => core::ptr::null_mut(),
    }
}

/// Signals `event` without running notify functions now (they run at the
/// next poll/RestoreTPL); for firmware code that holds a global borrow, such
/// as the handle database signalling RegisterProtocolNotify events.
pub fn signal_deferred(event: Event) -> Status {
    services().map_or(Status::UNSUPPORTED, |events| {
        status_of(events.signal_deferred(EventId::from_raw(event)))
    })
}

/// Signals every event of `group`, returning after all their notify
/// functions ran. Must not be called with a global borrow held.
pub fn signal_group(group: &Guid) {
    if let Some(events) = services() {
        let members = events.signal_group(group);
        debug!("events: signalled group {group:?} ({members} members)");
    }
}

/// Signals the event group `group` as SignalEvent would signal one of its
/// members (§7.1.2): notify functions above the current TPL run before this
/// returns, the rest once the TPL drops. For the groups core services signal
/// on a caller's behalf: a configuration table's GUID (§7.3.15) and
/// EFI_EVENT_GROUP_MEMORY_MAP_CHANGE. Must not be called with a global
/// borrow held; after ExitBootServices it does nothing.
pub fn signal_group_event(group: &Guid) {
    if BOOT_SERVICES_EXITED.load(Ordering::Acquire) {
        return;
    }
    if let Some(events) = services() {
        events.signal_group_event(group);
    }
}

/// ReadyToBoot (§7.1.2, EFI_EVENT_GROUP_READY_TO_BOOT then
/// EFI_EVENT_GROUP_AFTER_READY_TO_BOOT): the boot manager calls this before
/// it starts a boot option.
pub fn ready_to_boot_notify() {
    signal_group(&spec_gaps::EVENT_GROUP_READY_TO_BOOT);
    signal_group(&spec_gaps::EVENT_GROUP_AFTER_READY_TO_BOOT);
}

/// ExitBootServices, first step (§7.4.6): signals
/// EFI_EVENT_GROUP_BEFORE_EXIT_BOOT_SERVICES before the memory map key is
/// checked. Boot services stay usable.
pub fn before_exit_boot_services_notify() {
    signal_group(&spec_gaps::EVENT_GROUP_BEFORE_EXIT_BOOT_SERVICES);
}

/// ExitBootServices, after the map key matched (§7.4.6): signals
/// EFI_EVENT_GROUP_EXIT_BOOT_SERVICES (which includes the legacy
/// EVT_SIGNAL_EXIT_BOOT_SERVICES events), disarms the watchdog (§7.5.2),
/// copies the VirtualAddressChange notifications to static memory for
/// [`virtual_address_change_notify`], and then refuses further event
/// services (their state lived on the boot services heap).
pub fn exit_boot_services_notify() {
    let Some(events) = services() else { return };
    events.signal_group(&spec_gaps::EVENT_GROUP_EXIT_BOOT_SERVICES);
    events.disarm_watchdog();
    let members = EVENTS.with(|t| t.group_notifies(&spec_gaps::EVENT_GROUP_VIRTUAL_ADDRESS_CHANGE));
    VIRTUAL_ADDRESS_CHANGE.with(|list| {
        *list = [None; MAX_VIRTUAL_ADDRESS_CHANGE_EVENTS];
        if members.len() > list.len() {
            error!(
                "events: {} VirtualAddressChange events, keeping {}",
                members.len(),
                list.len()
            );
        }
        for (slot, &(id, notify)) in list.iter_mut().zip(&members) {
            *slot = Some((id, notify));
        }
    });
    BOOT_SERVICES_EXITED.store(true, Ordering::Release);
}

const MAX_VIRTUAL_ADDRESS_CHANGE_EVENTS: usize = 32;
/// In the firmware image (RuntimeServicesData), not on the heap: used after
/// ExitBootServices.
static VIRTUAL_ADDRESS_CHANGE: Global<
    [Option<(EventId, table::Notify)>; MAX_VIRTUAL_ADDRESS_CHANGE_EVENTS],
> = Global::new([None; MAX_VIRTUAL_ADDRESS_CHANGE_EVENTS]);

/// SetVirtualAddressMap (§8.4.1) calls this before it returns: runs the
/// EFI_EVENT_GROUP_VIRTUAL_ADDRESS_CHANGE notify functions (snapshotted by
/// [`exit_boot_services_notify`]) highest TPL first, each once.
pub fn virtual_address_change_notify() {
    let list = VIRTUAL_ADDRESS_CHANGE
        .with(|list| core::mem::replace(list, [None; MAX_VIRTUAL_ADDRESS_CHANGE_EVENTS]));
    for (id, notify) in list.into_iter().flatten() {
        notify.call(id);
    }
}

/// What a watchdog expiry does after logging; the core installs
/// ResetSystem(EfiResetCold)'s path, which knows the ACPI reset register.
/// Without one (before the core wired it) a cold reset through the legacy
/// mechanisms.
static WATCHDOG_RESET: Global<Option<fn(u64)>> = Global::new(None);

/// Installs the watchdog's reset action; it receives the watchdog code.
pub fn set_watchdog_reset_hook(hook: fn(u64)) {
    WATCHDOG_RESET.with(|slot| *slot = Some(hook));
}

/// Arms the watchdog with a firmware code (0x0000-0xFFFF are reserved for
/// the firmware), e.g. the boot manager's 5 minutes before StartImage (§3.1.2).
pub fn arm_boot_watchdog(timeout_s: usize, code: u16) {
    if let Some(events) = services() {
        events.arm_watchdog(timeout_s, u64::from(code));
    }
}

/// §7.5.2: on expiry the firmware logs the code and resets the system.
fn watchdog_expired(code: u64) {
    error!("watchdog timer expired (code {code:#x}), resetting");
    match WATCHDOG_RESET.with(|slot| *slot) {
        Some(hook) => hook(code),
        // SAFETY: without ACPI information only the fixed chipset reset
        // mechanisms are used.
        None => unsafe { platform::reset::reset(platform::reset::ResetKind::Cold, None) },
    }
}

// --- Interrupts (§7.1, Table 7-2: "interrupts are enabled" below
// TPL_HIGH_LEVEL) --------------------------------------------------------

/// Set by the first StartImage: the firmware's own start-up runs with
/// interrupts off, applications with them on below TPL_HIGH_LEVEL. Cleared
/// at ExitBootServices ([`stop_interrupts`]).
static INTERRUPTS_ALLOWED: AtomicBool = AtomicBool::new(false);

/// Sets the interrupt flag; not on the host, where `sti` faults.
fn set_interrupt_flag(on: bool) {
    #[cfg(not(test))]
    platform::apic::set_interrupt_flag(on);
    #[cfg(test)]
    let _ = on;
}

/// StartImage calls this before entering an image: starts the tick and
/// enables interrupts if the TPL is below TPL_HIGH_LEVEL.
pub fn allow_interrupts() {
    if services().is_none() {
        return;
    }
    if !INTERRUPTS_ALLOWED.swap(true, Ordering::AcqRel) {
        #[cfg(not(test))]
        platform::apic::start_tick();
    }
    if current_tpl() < Tpl::HIGH_LEVEL {
        set_interrupt_flag(true);
    }
}

/// ExitBootServices and ResetSystem: the tick stopped and masked,
/// interrupts off for good (the OS enables them with its own IDT).
pub fn stop_interrupts() {
    INTERRUPTS_ALLOWED.store(false, Ordering::Release);
    #[cfg(not(test))]
    platform::apic::stop_tick();
    set_interrupt_flag(false);
}

// --- §7.1 Event, Timer and Task Priority Services -------------------------

/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.1): every
/// argument is a value, and handles and events are only looked up.
pub unsafe extern "efiapi" fn raise_tpl(new_tpl: Tpl) -> Tpl {
    services().map_or(Tpl::APPLICATION, |events| {
        // Interrupts are off at TPL_HIGH_LEVEL (Table 7-2), before the
        // TPL says so.
        if new_tpl >= Tpl::HIGH_LEVEL {
            set_interrupt_flag(false);
        }
        events.raise_tpl(new_tpl)
    })
}

/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.1): every
/// argument is a value, and handles and events are only looked up.
pub unsafe extern "efiapi" fn restore_tpl(old_tpl: Tpl) {
    if let Some(events) = services() {
        // The TPL ends below TPL_HIGH_LEVEL exactly when `old_tpl` is (a
        // RestoreTPL upwards is clamped to the current TPL); interrupts
        // come on before the notifications it unmasks run, as in edk2.
        if old_tpl < Tpl::HIGH_LEVEL && INTERRUPTS_ALLOWED.load(Ordering::Acquire) {
            set_interrupt_flag(true);
        }
        events.restore_tpl(old_tpl);
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.1 requires of the caller.
pub unsafe extern "efiapi" fn create_event(
    kind: EventType,
    notify_tpl: Tpl,
    notify_function: Option<NotifyFn>,
    notify_context: *mut c_void,
    event: *mut Event,
) -> Status {
    // SAFETY: `event` as this function's contract states.
    unsafe {
        create(
            kind,
            notify_tpl,
            notify_function,
            notify_context,
            None,
            event,
        )
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.1 requires of the caller.
pub unsafe extern "efiapi" fn create_event_ex(
    kind: EventType,
    notify_tpl: Tpl,
    notify_function: Option<NotifyFn>,
    notify_context: *const c_void,
    event_group: *const Guid,
    event: *mut Event,
) -> Status {
    let group = if event_group.is_null() {
        None
    } else {
        // SAFETY: non-null EventGroup points to an EFI_GUID per §7.1.2;
        // read_unaligned because callers sometimes pass byte-aligned GUIDs.
        Some(unsafe { event_group.read_unaligned() })
    };
    // SAFETY: `event` as this function's contract states.
    unsafe {
        create(
            kind,
            notify_tpl,
            notify_function,
            notify_context.cast_mut(),
            group,
            event,
        )
    }
}

/// CreateEvent and CreateEventEx after the group was read.
///
/// # Safety
/// `event` is null or valid for writing an EFI_EVENT (§7.1.1).
unsafe fn create(
    kind: EventType,
    notify_tpl: Tpl,
    notify_function: Option<NotifyFn>,
    notify_context: *mut c_void,
    group: Option<Guid>,
    event: *mut Event,
) -> Status {
    if event.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let Some(events) = services() else {
        return Status::UNSUPPORTED;
    };
    let context = notify_context.expose_provenance();
    match events.create(kind, notify_tpl, notify_function, context, group) {
        Ok(id) => {
            // SAFETY: `event` is non-null and, per §7.1.1, points to writable
            // storage for an EFI_EVENT; unaligned-tolerant write.
            unsafe { event.write_unaligned(id.as_raw()) };
            Status::SUCCESS
        }
        Err(e) => status_of(Err(e)),
    }
}

/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.1): every
/// argument is a value, and handles and events are only looked up.
pub unsafe extern "efiapi" fn set_timer(
    event: Event,
    kind: TimerDelay,
    trigger_time: u64,
) -> Status {
    services().map_or(Status::UNSUPPORTED, |events| {
        status_of(events.set_timer(EventId::from_raw(event), kind, trigger_time))
    })
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §7.1 requires of the caller.
pub unsafe extern "efiapi" fn wait_for_event(
    number_of_events: usize,
    event: *const Event,
    index: *mut usize,
) -> Status {
    if number_of_events == 0 || event.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let Some(events) = services() else {
        return Status::UNSUPPORTED;
    };
    if number_of_events > isize::MAX as usize / size_of::<Event>() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller passes an array of `number_of_events` EFI_EVENTs
    // (§7.1.5), no larger than a slice may be (checked); it is only read,
    // before any notify function runs.
    let handles = unsafe { core::slice::from_raw_parts(event, number_of_events) };
    // The count is the caller's: the copy is fallible.
    let ids = match platform::fallible::collect(
        handles.len(),
        handles.iter().map(|&e| EventId::from_raw(e)),
    ) {
        Ok(ids) => ids,
        Err(_) => return Status::OUT_OF_RESOURCES,
    };
    let (at, status) = match events.wait(&ids) {
        Ok(at) => (at, Status::SUCCESS),
        Err((at, e)) => (at, status_of(Err(e))),
    };
    if !index.is_null() {
        // SAFETY: non-null Index points to a UINTN the caller owns (§7.1.5).
        unsafe { index.write_unaligned(at) };
    }
    status
}

/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.1): every
/// argument is a value, and handles and events are only looked up.
pub unsafe extern "efiapi" fn signal_event(event: Event) -> Status {
    services().map_or(Status::UNSUPPORTED, |events| {
        status_of(events.signal(EventId::from_raw(event)))
    })
}

/// The event table's part of CloseEvent (§7.1.3); the boot services table
/// points at [`crate::protocol_services::close_event`], which also drops the
/// event's RegisterProtocolNotify registrations.
///
/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.1): every
/// argument is a value, and handles and events are only looked up.
pub unsafe extern "efiapi" fn close_event(event: Event) -> Status {
    services().map_or(Status::UNSUPPORTED, |events| {
        status_of(events.close(EventId::from_raw(event)))
    })
}

/// # Safety
/// None beyond the EFI calling convention (UEFI 2.10 §7.1): every
/// argument is a value, and handles and events are only looked up.
pub unsafe extern "efiapi" fn check_event(event: Event) -> Status {
    match services().map(|events| events.check(EventId::from_raw(event))) {
        Some(Ok(true)) => Status::SUCCESS,
        Some(Ok(false)) => Status::NOT_READY,
        Some(Err(e)) => status_of(Err(e)),
        None => Status::UNSUPPORTED,
    }
}
