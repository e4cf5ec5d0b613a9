//! Event table, TPL bookkeeping and notification dispatch, over an
//! injected clock so it runs on the host.
// The one `unsafe` is calling an application's notify function.
#![deny(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::fmt;

use crate::ids::EventId;
use crate::spec_gaps;
use log::{error, warn};
use platform::sync::Global;
use uefi_raw::table::boot::{EventNotifyFn, EventType, TimerDelay, Tpl};
use uefi_raw::{Guid, Status};

/// An application's notify function (EFI_EVENT_NOTIFY, §7.1.1).
pub type NotifyFn = EventNotifyFn;

/// Bits CreateEvent knows; `EVT_RUNTIME_CONTEXT` (0x20000000) and the low
/// "signal" bits only occur inside the two legacy complete type values.
const GENERAL_TYPE_BITS: EventType = EventType::TIMER
    .union(EventType::RUNTIME)
    .union(EventType::NOTIFY_WAIT)
    .union(EventType::NOTIFY_SIGNAL);
const NOTIFY_BITS: EventType = EventType::NOTIFY_WAIT.union(EventType::NOTIFY_SIGNAL);
/// SetWatchdogTimer: codes 0x0000-0xFFFF are reserved for the firmware
/// (§7.5.2).
pub const FIRST_CALLER_WATCHDOG_CODE: u64 = 0x1_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventError {
    /// Not an event this table issued (or already closed).
    UnknownEvent(EventId),
    InvalidType(u32),
    /// A notify event without a notify function.
    MissingNotifyFunction,
    /// Notify TPL other than Tpl::CALLBACK or Tpl::NOTIFY.
    InvalidNotifyTpl(Tpl),
    /// CreateEventEx with a group and a legacy EVT_SIGNAL_* type.
    GroupWithSignalType(u32),
    /// CheckEvent/WaitForEvent on an EVT_NOTIFY_SIGNAL event.
    NotifySignalEvent(EventId),
    NotATimer(EventId),
    InvalidTimerType(TimerDelay),
    NoEvents,
    /// WaitForEvent above Tpl::APPLICATION.
    WaitAtTpl(Tpl),
    InvalidWatchdogCode(u64),
    IdsExhausted,
}

impl EventError {
    pub fn status(&self) -> Status {
        match self {
            EventError::WaitAtTpl(_) => Status::UNSUPPORTED,
            EventError::IdsExhausted => Status::OUT_OF_RESOURCES,
            _ => Status::INVALID_PARAMETER,
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::UnknownEvent(id) => write!(f, "unknown event {id:#x}"),
            EventError::InvalidType(t) => write!(f, "invalid event type {t:#x}"),
            EventError::MissingNotifyFunction => write!(f, "notify event without function"),
            EventError::InvalidNotifyTpl(t) => write!(f, "invalid notify TPL {}", t.0),
            EventError::GroupWithSignalType(t) => {
                write!(f, "event group given with legacy type {t:#x}")
            }
            EventError::NotifySignalEvent(id) => {
                write!(
                    f,
                    "event {id:#x} is EVT_NOTIFY_SIGNAL, it cannot be waited on"
                )
            }
            EventError::NotATimer(id) => write!(f, "event {id:#x} is not a timer"),
            EventError::InvalidTimerType(t) => write!(f, "invalid timer type {}", t.0),
            EventError::NoEvents => write!(f, "no events to wait for"),
            EventError::WaitAtTpl(t) => write!(f, "WaitForEvent at TPL {}", t.0),
            EventError::InvalidWatchdogCode(c) => {
                write!(f, "watchdog code {c:#x} is reserved for the firmware")
            }
            EventError::IdsExhausted => write!(f, "event ids exhausted"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Notify {
    pub function: NotifyFn,
    pub tpl: Tpl,
    /// The caller's NotifyContext pointer, with exposed provenance.
    pub context: usize,
}

impl Notify {
    /// Calls the notify function. The caller must hold no global borrow:
    /// application code may re-enter any boot service.
    #[allow(unsafe_code)]
    pub fn call(&self, id: EventId) {
        // SAFETY: function and context were registered together by
        // CreateEvent(Ex), whose caller provides a NotifyFunction to be
        // called with the event and its NotifyContext (§7.1.1).
        unsafe {
            (self.function)(
                id.as_raw(),
                core::ptr::with_exposed_provenance_mut::<c_void>(self.context),
            )
        };
    }
}

#[derive(Clone, Copy, Debug)]
struct Timer {
    deadline_ns: u64,
    /// None for a one-shot (TimerRelative) timer.
    period_ns: Option<u64>,
}

struct Record {
    kind: EventType,
    notify: Option<Notify>,
    group: Option<Guid>,
    signalled: bool,
    /// Queue position of a pending notification (FIFO within a TPL).
    queued: Option<u64>,
    timer: Option<Timer>,
    /// Firmware condition that signals the event when checked.
    condition: Option<fn() -> bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Watchdog {
    deadline_ns: u64,
    code: u64,
}

pub struct EventTable {
    events: BTreeMap<EventId, Record>,
    next_id: usize,
    next_seq: u64,
    tpl: Tpl,
    watchdog: Option<Watchdog>,
}

impl Default for EventTable {
    fn default() -> Self {
        Self::new()
    }
}

impl EventTable {
    pub const fn new() -> Self {
        EventTable {
            events: BTreeMap::new(),
            // Ids start at a recognisable value, away from small integers
            // and from handle values, so a confused caller is caught.
            next_id: 0xE7E0_0001,
            next_seq: 0,
            tpl: Tpl::APPLICATION,
            watchdog: None,
        }
    }

    pub fn tpl(&self) -> Tpl {
        self.tpl
    }

    pub fn contains(&self, id: EventId) -> bool {
        self.events.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn get(&mut self, id: EventId) -> Result<&mut Record, EventError> {
        self.events.get_mut(&id).ok_or(EventError::UnknownEvent(id))
    }

    /// CreateEvent/CreateEventEx validation (§7.1.1, §7.1.2); returns
    /// the new event's id.
    pub fn create(
        &mut self,
        kind: EventType,
        notify_tpl: Tpl,
        function: Option<NotifyFn>,
        context: usize,
        group: Option<Guid>,
    ) -> Result<EventId, EventError> {
        let legacy_group = if kind == EventType::SIGNAL_EXIT_BOOT_SERVICES {
            Some(spec_gaps::EVENT_GROUP_EXIT_BOOT_SERVICES)
        } else if kind == EventType::SIGNAL_VIRTUAL_ADDRESS_CHANGE {
            Some(spec_gaps::EVENT_GROUP_VIRTUAL_ADDRESS_CHANGE)
        } else {
            None
        };
        if legacy_group.is_none()
            && (kind.bits() & !GENERAL_TYPE_BITS.bits() != 0 || kind.contains(NOTIFY_BITS))
        {
            return Err(EventError::InvalidType(kind.bits()));
        }
        let group = match (legacy_group, group) {
            (Some(_), Some(_)) => return Err(EventError::GroupWithSignalType(kind.bits())),
            (legacy, explicit) => legacy.or(explicit),
        };
        // NotifyTpl and NotifyFunction are ignored for events that have
        // no notify type.
        let notify = if kind.intersects(NOTIFY_BITS) {
            let function = function.ok_or(EventError::MissingNotifyFunction)?;
            if notify_tpl != Tpl::CALLBACK && notify_tpl != Tpl::NOTIFY {
                return Err(EventError::InvalidNotifyTpl(notify_tpl));
            }
            Some(Notify {
                function,
                tpl: notify_tpl,
                context,
            })
        } else {
            None
        };
        self.insert(Record {
            kind,
            notify,
            group,
            signalled: false,
            queued: None,
            timer: None,
            condition: None,
        })
    }

    /// A plain event (no notify function) that becomes signalled when
    /// `condition` holds at CheckEvent/WaitForEvent time.
    pub fn create_condition(&mut self, condition: fn() -> bool) -> Result<EventId, EventError> {
        self.insert(Record {
            kind: EventType::empty(),
            notify: None,
            group: None,
            signalled: false,
            queued: None,
            timer: None,
            condition: Some(condition),
        })
    }

    fn insert(&mut self, record: Record) -> Result<EventId, EventError> {
        let id = EventId::from_value(self.next_id);
        self.next_id = self
            .next_id
            .checked_add(1)
            .ok_or(EventError::IdsExhausted)?;
        self.events.insert(id, record);
        Ok(id)
    }

    /// CloseEvent: the event, its timer and any pending notification go.
    pub fn close(&mut self, id: EventId) -> Result<(), EventError> {
        self.events
            .remove(&id)
            .map(|_| ())
            .ok_or(EventError::UnknownEvent(id))
    }

    /// SetTimer (§7.1.7); `trigger_100ns` is in 100 ns units.
    pub fn set_timer(
        &mut self,
        id: EventId,
        kind: TimerDelay,
        trigger_100ns: u64,
        now_ns: u64,
    ) -> Result<(), EventError> {
        let record = self.get(id)?;
        if !record.kind.contains(EventType::TIMER) {
            return Err(EventError::NotATimer(id));
        }
        let delay_ns = trigger_100ns.saturating_mul(100);
        let deadline_ns = now_ns.saturating_add(delay_ns);
        record.timer = match kind {
            TimerDelay::CANCEL => None,
            // A zero period fires at every poll, the polled equivalent of
            // "every timer tick".
            TimerDelay::PERIODIC => Some(Timer {
                deadline_ns,
                period_ns: Some(delay_ns),
            }),
            // Zero: fire at the next poll.
            TimerDelay::RELATIVE => Some(Timer {
                deadline_ns,
                period_ns: None,
            }),
            other => return Err(EventError::InvalidTimerType(other)),
        };
        Ok(())
    }

    /// SignalEvent semantics: signals the event, or every member of its
    /// group, queueing EVT_NOTIFY_SIGNAL notifications.
    pub fn signal(&mut self, id: EventId) -> Result<(), EventError> {
        match self.get(id)?.group {
            Some(group) => {
                self.signal_group(&group);
            }
            None => self.signal_one(id),
        }
        Ok(())
    }

    /// Signals every member of `group`; returns how many there were.
    pub fn signal_group(&mut self, group: &Guid) -> usize {
        let members: Vec<EventId> = self
            .events
            .iter()
            .filter(|(_, r)| r.group.as_ref() == Some(group))
            .map(|(&id, _)| id)
            .collect();
        for &id in &members {
            self.signal_one(id);
        }
        members.len()
    }

    fn signal_one(&mut self, id: EventId) {
        let seq = self.next_seq;
        let Some(record) = self.events.get_mut(&id) else {
            return;
        };
        if record.signalled {
            return;
        }
        record.signalled = true;
        if record.kind.contains(EventType::NOTIFY_SIGNAL) && record.queued.is_none() {
            record.queued = Some(seq);
            self.next_seq += 1;
        }
    }

    /// CheckEvent's first step: refuses EVT_NOTIFY_SIGNAL events and
    /// returns the firmware condition to evaluate, if any.
    pub fn check_begin(&mut self, id: EventId) -> Result<Option<fn() -> bool>, EventError> {
        let record = self.get(id)?;
        if record.kind.contains(EventType::NOTIFY_SIGNAL) {
            return Err(EventError::NotifySignalEvent(id));
        }
        Ok(record.condition)
    }

    /// An unsignalled EVT_NOTIFY_WAIT event queues its notify function
    /// when checked; returns whether it did.
    pub fn queue_wait_notify(&mut self, id: EventId) -> Result<bool, EventError> {
        let seq = self.next_seq;
        let record = self.get(id)?;
        if record.signalled || !record.kind.contains(EventType::NOTIFY_WAIT) {
            return Ok(false);
        }
        if record.queued.is_none() {
            record.queued = Some(seq);
            self.next_seq += 1;
        }
        Ok(true)
    }

    /// CheckEvent's last step: consumes the signal.
    pub fn take_signal(&mut self, id: EventId) -> Result<bool, EventError> {
        let record = self.get(id)?;
        Ok(core::mem::replace(&mut record.signalled, false))
    }

    /// Signals every timer whose deadline passed; periodic timers are
    /// re-armed one period on, or one period from now when polling fell
    /// behind (no burst of catch-up signals).
    pub fn fire_timers(&mut self, now_ns: u64) {
        let mut expired = Vec::new();
        for (&id, record) in self.events.iter_mut() {
            let Some(timer) = record.timer else { continue };
            if timer.deadline_ns > now_ns {
                continue;
            }
            record.timer = timer.period_ns.map(|period| {
                let next = timer.deadline_ns.saturating_add(period);
                let deadline_ns = if next > now_ns {
                    next
                } else {
                    now_ns.saturating_add(period)
                };
                Timer {
                    deadline_ns,
                    period_ns: Some(period),
                }
            });
            expired.push(id);
        }
        for id in expired {
            // Cannot fail: the id came from the table just now.
            let _ = self.signal(id);
        }
    }

    /// RaiseTPL: returns the previous TPL. Lowering through RaiseTPL is
    /// a caller bug (§7.1.8): logged, and the TPL is left unchanged.
    pub fn raise_tpl(&mut self, new: Tpl) -> Tpl {
        let old = self.tpl;
        let new = if new > Tpl::HIGH_LEVEL {
            error!("RaiseTPL({}) above TPL_HIGH_LEVEL, clamped", new.0);
            Tpl::HIGH_LEVEL
        } else {
            new
        };
        if new < old {
            error!(
                "RaiseTPL({}) below the current TPL {}, ignored",
                new.0, old.0
            );
        } else {
            self.tpl = new;
        }
        old
    }

    /// The TPL RestoreTPL(`old`) lowers to: raising through RestoreTPL is
    /// a caller bug (§7.1.9), clamped to the current TPL.
    pub fn restore_target(&self, old: Tpl) -> Tpl {
        if old > self.tpl {
            error!(
                "RestoreTPL({}) above the current TPL {}, ignored",
                old.0, self.tpl.0
            );
            self.tpl
        } else {
            old
        }
    }

    /// Picks the next notification to run when the TPL drops to
    /// `floor`: the highest notify TPL above `floor`, oldest first. The
    /// TPL becomes that notify TPL for the call; when nothing is left it
    /// becomes `floor`. EVT_NOTIFY_SIGNAL events are unsignalled before
    /// their notify function runs.
    pub fn next_dispatch(&mut self, floor: Tpl) -> Option<(EventId, Notify)> {
        let next = self
            .best_queued(|r| r.notify.is_some_and(|n| n.tpl > floor))
            .and_then(|id| Some((id, self.dequeue(id)?)));
        if next.is_none() {
            self.tpl = floor;
        }
        next
    }

    /// Like `next_dispatch`, restricted to `group` and ignoring the TPL:
    /// the core needs group notifications (ExitBootServices) to have run
    /// even when called above their notify TPL. The TPL becomes at least
    /// the notify TPL; returns the TPL to restore afterwards.
    pub fn next_group_dispatch(&mut self, group: &Guid) -> Option<(EventId, Notify, Tpl)> {
        let id = self.best_queued(|r| r.group.as_ref() == Some(group))?;
        let previous = self.tpl;
        let notify = self.dequeue(id)?;
        self.tpl = notify.tpl.max(previous);
        Some((id, notify, previous))
    }

    fn best_queued(&self, eligible: impl Fn(&Record) -> bool) -> Option<EventId> {
        self.events
            .iter()
            .filter(|(_, r)| eligible(r))
            .filter_map(|(&id, r)| Some((r.notify?.tpl, r.queued?, id)))
            // Highest TPL, then lowest sequence number.
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, _, id)| id)
    }

    /// Takes `id`'s queued notification and raises the TPL to its notify
    /// TPL for the call.
    fn dequeue(&mut self, id: EventId) -> Option<Notify> {
        let record = self.events.get_mut(&id)?;
        let notify = record.notify?;
        record.queued = None;
        if record.kind.contains(EventType::NOTIFY_SIGNAL) {
            record.signalled = false;
        }
        self.tpl = notify.tpl;
        Some(notify)
    }

    pub fn set_tpl(&mut self, tpl: Tpl) {
        self.tpl = tpl;
    }

    /// Notify functions of `group`'s members, highest TPL first, for the
    /// VirtualAddressChange snapshot taken at ExitBootServices.
    pub fn group_notifies(&self, group: &Guid) -> Vec<(EventId, Notify)> {
        let mut members: Vec<(EventId, Notify)> = self
            .events
            .iter()
            .filter(|(_, r)| r.group.as_ref() == Some(group))
            .filter_map(|(&id, r)| Some((id, r.notify?)))
            .collect();
        // Stable sort keeps creation order within a TPL.
        members.sort_by_key(|member| core::cmp::Reverse(member.1.tpl));
        members
    }

    /// SetWatchdogTimer (§7.5.2): 0 disables; callers may not use the
    /// firmware's codes.
    pub fn set_watchdog(
        &mut self,
        timeout_s: usize,
        code: u64,
        now_ns: u64,
    ) -> Result<(), EventError> {
        if timeout_s == 0 {
            self.watchdog = None;
            return Ok(());
        }
        if code < FIRST_CALLER_WATCHDOG_CODE {
            return Err(EventError::InvalidWatchdogCode(code));
        }
        self.arm_watchdog(timeout_s, code, now_ns);
        Ok(())
    }

    /// Arms the watchdog with any code (the firmware's own use, e.g. the
    /// boot manager's 5 minutes before StartImage, §3.1.2).
    pub fn arm_watchdog(&mut self, timeout_s: usize, code: u64, now_ns: u64) {
        let timeout_ns = (timeout_s as u64).saturating_mul(1_000_000_000);
        self.watchdog = Some(Watchdog {
            deadline_ns: now_ns.saturating_add(timeout_ns),
            code,
        });
    }

    pub fn disarm_watchdog(&mut self) {
        self.watchdog = None;
    }

    /// The code of a watchdog that expired by `now_ns` (disarming it).
    pub fn watchdog_expired(&mut self, now_ns: u64) -> Option<u64> {
        let watchdog = self.watchdog.filter(|w| w.deadline_ns <= now_ns)?;
        self.watchdog = None;
        Some(watchdog.code)
    }
}

/// The services over one table, a clock and a watchdog action. Every
/// method borrows the table only briefly and never across a call into
/// notify functions, conditions or the watchdog action.
#[derive(Clone, Copy)]
pub struct Events<'a> {
    pub table: &'a Global<EventTable>,
    /// Monotonic nanoseconds.
    pub clock: fn() -> u64,
    /// Called with the watchdog code when the watchdog expires.
    pub on_watchdog: fn(u64),
}

impl Events<'_> {
    pub fn tpl(&self) -> Tpl {
        self.table.with(|t| t.tpl())
    }

    pub fn raise_tpl(&self, new: Tpl) -> Tpl {
        self.table.with(|t| t.raise_tpl(new))
    }

    /// RestoreTPL: lowers the TPL, running the notifications (and timers
    /// expired meanwhile) that the lower TPL unmasks.
    pub fn restore_tpl(&self, old: Tpl) {
        let target = self.table.with(|t| t.restore_target(old));
        self.poll_down_to(target);
    }

    /// Fires expired timers and the watchdog, then runs the pending
    /// notifications the current TPL allows.
    pub fn poll(&self) {
        let current = self.tpl();
        self.poll_down_to(current);
    }

    fn poll_down_to(&self, floor: Tpl) {
        let now = (self.clock)();
        let watchdog = self.table.with(|t| {
            t.fire_timers(now);
            t.watchdog_expired(now)
        });
        if let Some(code) = watchdog {
            (self.on_watchdog)(code);
        }
        self.dispatch_down_to(floor);
    }

    fn dispatch_down_to(&self, floor: Tpl) {
        while let Some((id, notify)) = self.table.with(|t| t.next_dispatch(floor)) {
            notify.call(id);
        }
    }

    pub fn create(
        &self,
        kind: EventType,
        notify_tpl: Tpl,
        function: Option<NotifyFn>,
        context: usize,
        group: Option<Guid>,
    ) -> Result<EventId, EventError> {
        self.table
            .with(|t| t.create(kind, notify_tpl, function, context, group))
    }

    pub fn create_condition(&self, condition: fn() -> bool) -> Result<EventId, EventError> {
        self.table.with(|t| t.create_condition(condition))
    }

    pub fn set_timer(
        &self,
        id: EventId,
        kind: TimerDelay,
        trigger_100ns: u64,
    ) -> Result<(), EventError> {
        let now = (self.clock)();
        self.table
            .with(|t| t.set_timer(id, kind, trigger_100ns, now))
    }

    /// SignalEvent: notifications above the current TPL run before this
    /// returns.
    pub fn signal(&self, id: EventId) -> Result<(), EventError> {
        self.signal_deferred(id)?;
        self.poll();
        Ok(())
    }

    /// Signals without running notify functions (they run at the next
    /// poll or RestoreTPL).
    pub fn signal_deferred(&self, id: EventId) -> Result<(), EventError> {
        self.table.with(|t| t.signal(id))
    }

    pub fn close(&self, id: EventId) -> Result<(), EventError> {
        self.table.with(|t| t.close(id))
    }

    /// CheckEvent (§7.1.6): Ok(true) for SUCCESS (signal consumed),
    /// Ok(false) for NOT_READY.
    pub fn check(&self, id: EventId) -> Result<bool, EventError> {
        self.poll();
        if let Some(condition) = self.table.with(|t| t.check_begin(id))?
            && condition()
        {
            self.table.with(|t| t.signal(id))?;
        }
        if self.table.with(|t| t.queue_wait_notify(id))? {
            let current = self.tpl();
            self.dispatch_down_to(current);
        }
        // The notify function may have closed the event.
        self.table.with(|t| t.take_signal(id))
    }

    /// WaitForEvent (§7.1.5): the index of the first signalled event;
    /// errors carry the index of the offending event.
    pub fn wait(&self, ids: &[EventId]) -> Result<usize, (usize, EventError)> {
        if ids.is_empty() {
            return Err((0, EventError::NoEvents));
        }
        let tpl = self.tpl();
        if tpl != Tpl::APPLICATION {
            return Err((0, EventError::WaitAtTpl(tpl)));
        }
        loop {
            for (index, &id) in ids.iter().enumerate() {
                match self.check(id) {
                    Ok(true) => return Ok(index),
                    Ok(false) => {}
                    Err(e) => return Err((index, e)),
                }
            }
            core::hint::spin_loop();
        }
    }

    /// Stall (§7.5.3): busy-waits, running timers meanwhile.
    pub fn stall(&self, microseconds: u64) {
        let start = (self.clock)();
        let duration = microseconds.saturating_mul(1000);
        loop {
            self.poll();
            if (self.clock)().saturating_sub(start) >= duration {
                break;
            }
            core::hint::spin_loop();
        }
    }

    /// Signals every member of `group` with SignalEvent's semantics: the
    /// notifications above the current TPL run now, highest TPL first, the
    /// others when RestoreTPL unmasks them. Returns how many members there
    /// were.
    pub fn signal_group_event(&self, group: &Guid) -> usize {
        let members = self.table.with(|t| t.signal_group(group));
        // A group nobody joined (the usual case for a memory map change)
        // costs no clock read and no dispatch.
        if members != 0 {
            self.poll();
        }
        members
    }

    /// Signals `group` and returns after its members' notify functions
    /// ran, forcing those the current TPL would still mask.
    pub fn signal_group(&self, group: &Guid) -> usize {
        let members = self.table.with(|t| t.signal_group(group));
        self.poll();
        while let Some((id, notify, previous)) = self.table.with(|t| t.next_group_dispatch(group)) {
            warn!(
                "event group notification run at TPL {}, above its TPL {}",
                previous.0, notify.tpl.0
            );
            notify.call(id);
            self.table.with(|t| t.set_tpl(previous));
        }
        members
    }

    pub fn set_watchdog(&self, timeout_s: usize, code: u64) -> Result<(), EventError> {
        let now = (self.clock)();
        self.table.with(|t| t.set_watchdog(timeout_s, code, now))
    }

    pub fn arm_watchdog(&self, timeout_s: usize, code: u64) {
        let now = (self.clock)();
        self.table.with(|t| t.arm_watchdog(timeout_s, code, now));
    }

    pub fn disarm_watchdog(&self) {
        self.table.with(|t| t.disarm_watchdog());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::cell::{Cell, RefCell};
    use std::thread_local;
    use uefi_raw::Event;
    use uefi_raw::guid;

    thread_local! {
        static TABLE: Global<EventTable> = const { Global::new(EventTable::new()) };
        static NOW: Cell<u64> = const { Cell::new(0) };
        /// Nanoseconds the fake clock advances per reading.
        static STEP: Cell<u64> = const { Cell::new(0) };
        /// (notify context label, TPL during the call)
        static LOG: RefCell<Vec<(usize, Tpl)>> = const { RefCell::new(Vec::new()) };
        static WATCHDOG_FIRED: Cell<Option<u64>> = const { Cell::new(None) };
        static KEY_READY: Cell<bool> = const { Cell::new(false) };
    }

    fn clock() -> u64 {
        let now = NOW.get();
        NOW.set(now + STEP.get());
        now
    }

    fn advance(ns: u64) {
        NOW.set(NOW.get() + ns);
    }

    fn on_watchdog(code: u64) {
        WATCHDOG_FIRED.set(Some(code));
    }

    fn events<R>(f: impl FnOnce(Events<'_>) -> R) -> R {
        TABLE.with(|table| {
            f(Events {
                table,
                clock,
                on_watchdog,
            })
        })
    }

    fn log() -> Vec<(usize, Tpl)> {
        LOG.with_borrow(|l| l.clone())
    }

    extern "efiapi" fn record(_event: Event, context: *mut c_void) {
        let tpl = events(|e| e.tpl());
        LOG.with_borrow_mut(|l| l.push((context.addr(), tpl)));
    }

    /// Records under its own event id, then signals the event whose id is
    /// the context.
    extern "efiapi" fn signal_other(event: Event, context: *mut c_void) {
        record(event, core::ptr::without_provenance_mut(event.addr()));
        events(|e| e.signal(EventId::from_value(context.addr()))).unwrap();
    }

    /// NOTIFY_WAIT notify that signals its own event.
    extern "efiapi" fn signal_self(event: Event, context: *mut c_void) {
        record(event, context);
        events(|e| e.signal(EventId::from_raw(event))).unwrap();
    }

    extern "efiapi" fn close_self(event: Event, context: *mut c_void) {
        record(event, context);
        events(|e| e.close(EventId::from_raw(event))).unwrap();
    }

    fn notify_event(tpl: Tpl, context: usize) -> EventId {
        events(|e| e.create(EventType::NOTIFY_SIGNAL, tpl, Some(record), context, None)).unwrap()
    }

    #[test]
    fn create_validates_type_tpl_and_function() {
        events(|e| {
            assert!(e.create(EventType::empty(), Tpl(0), None, 0, None).is_ok());
            assert!(e.create(EventType::TIMER, Tpl(0), None, 0, None).is_ok());
            assert!(
                e.create(
                    EventType::TIMER | EventType::NOTIFY_WAIT,
                    Tpl::CALLBACK,
                    Some(record),
                    0,
                    None
                )
                .is_ok()
            );
            assert!(
                e.create(
                    EventType::SIGNAL_EXIT_BOOT_SERVICES,
                    Tpl::NOTIFY,
                    Some(record),
                    0,
                    None
                )
                .is_ok()
            );
            assert!(
                e.create(
                    EventType::SIGNAL_VIRTUAL_ADDRESS_CHANGE,
                    Tpl::NOTIFY,
                    Some(record),
                    0,
                    None
                )
                .is_ok()
            );
            assert_eq!(
                e.create(
                    EventType::from_bits_retain(0x1),
                    Tpl::CALLBACK,
                    None,
                    0,
                    None
                ),
                Err(EventError::InvalidType(0x1))
            );
            assert_eq!(
                e.create(
                    EventType::from_bits_retain(0x20000000),
                    Tpl(0),
                    None,
                    0,
                    None
                ),
                Err(EventError::InvalidType(0x20000000))
            );
            let both = EventType::NOTIFY_WAIT | EventType::NOTIFY_SIGNAL;
            assert_eq!(
                e.create(both, Tpl::CALLBACK, Some(record), 0, None),
                Err(EventError::InvalidType(both.bits()))
            );
            assert_eq!(
                e.create(EventType::NOTIFY_SIGNAL, Tpl::CALLBACK, None, 0, None),
                Err(EventError::MissingNotifyFunction)
            );
            for tpl in [Tpl::APPLICATION, Tpl::HIGH_LEVEL, Tpl(5)] {
                assert_eq!(
                    e.create(EventType::NOTIFY_WAIT, tpl, Some(record), 0, None),
                    Err(EventError::InvalidNotifyTpl(tpl))
                );
            }
            assert_eq!(
                e.create(
                    EventType::SIGNAL_EXIT_BOOT_SERVICES,
                    Tpl::NOTIFY,
                    Some(record),
                    0,
                    Some(spec_gaps::EVENT_GROUP_READY_TO_BOOT)
                ),
                Err(EventError::GroupWithSignalType(
                    EventType::SIGNAL_EXIT_BOOT_SERVICES.bits()
                ))
            );
        });
        assert_eq!(
            EventError::MissingNotifyFunction.status(),
            Status::INVALID_PARAMETER
        );
    }

    #[test]
    fn unknown_events_are_rejected() {
        let id = notify_event(Tpl::CALLBACK, 1);
        events(|e| {
            for bogus in [0, 1, id.value() + 1, usize::MAX].map(EventId::from_value) {
                assert_eq!(e.signal(bogus), Err(EventError::UnknownEvent(bogus)));
                assert_eq!(e.close(bogus), Err(EventError::UnknownEvent(bogus)));
                assert_eq!(e.check(bogus), Err(EventError::UnknownEvent(bogus)));
                assert_eq!(
                    e.set_timer(bogus, TimerDelay::RELATIVE, 1),
                    Err(EventError::UnknownEvent(bogus))
                );
            }
            assert_eq!(e.close(id), Ok(()));
            assert_eq!(e.close(id), Err(EventError::UnknownEvent(id)));
        });
        assert_eq!(EventId::from_raw(id.as_raw()), id);
    }

    #[test]
    fn notifications_run_highest_tpl_first_when_the_tpl_drops() {
        let a = notify_event(Tpl::CALLBACK, 0xA);
        let b = notify_event(Tpl::NOTIFY, 0xB);
        let c = notify_event(Tpl::CALLBACK, 0xC);
        events(|e| {
            assert_eq!(e.raise_tpl(Tpl::HIGH_LEVEL), Tpl::APPLICATION);
            for id in [a, b, c] {
                e.signal(id).unwrap();
            }
            // Signalling twice does not queue twice.
            e.signal(a).unwrap();
            assert!(log().is_empty());
            e.restore_tpl(Tpl::APPLICATION);
            assert_eq!(e.tpl(), Tpl::APPLICATION);
        });
        assert_eq!(
            log(),
            vec![
                (0xB, Tpl::NOTIFY),
                (0xA, Tpl::CALLBACK),
                (0xC, Tpl::CALLBACK)
            ]
        );
    }

    #[test]
    fn restore_runs_only_what_the_new_tpl_unmasks() {
        let callback = notify_event(Tpl::CALLBACK, 1);
        let notify = notify_event(Tpl::NOTIFY, 2);
        events(|e| {
            assert_eq!(e.raise_tpl(Tpl::CALLBACK), Tpl::APPLICATION);
            assert_eq!(e.raise_tpl(Tpl::HIGH_LEVEL), Tpl::CALLBACK);
            e.signal(callback).unwrap();
            e.signal(notify).unwrap();
            e.restore_tpl(Tpl::CALLBACK);
            assert_eq!(log(), vec![(2, Tpl::NOTIFY)]);
            assert_eq!(e.tpl(), Tpl::CALLBACK);
            e.restore_tpl(Tpl::APPLICATION);
        });
        assert_eq!(log(), vec![(2, Tpl::NOTIFY), (1, Tpl::CALLBACK)]);
    }

    #[test]
    fn signal_from_a_notify_function_nests_by_tpl() {
        let y = notify_event(Tpl::CALLBACK, 0x100);
        let z = notify_event(Tpl::NOTIFY, 0x200);
        let (x1, x2) = events(|e| {
            let sig = EventType::NOTIFY_SIGNAL;
            let x1 = e
                .create(sig, Tpl::CALLBACK, Some(signal_other), y.value(), None)
                .unwrap();
            let x2 = e
                .create(sig, Tpl::CALLBACK, Some(signal_other), z.value(), None)
                .unwrap();
            (x1, x2)
        });
        events(|e| e.signal(x1)).unwrap();
        // y has the same TPL as the running x1: it waits for x1 to return.
        assert_eq!(
            log(),
            vec![(x1.value(), Tpl::CALLBACK), (0x100, Tpl::CALLBACK)]
        );
        LOG.with_borrow_mut(|l| l.clear());
        events(|e| e.signal(x2)).unwrap();
        // z has a higher TPL: it runs inside x2's call to SignalEvent.
        assert_eq!(
            log(),
            vec![(x2.value(), Tpl::CALLBACK), (0x200, Tpl::NOTIFY)]
        );
        assert_eq!(events(|e| e.tpl()), Tpl::APPLICATION);
    }

    #[test]
    fn tpl_misuse_is_clamped() {
        events(|e| {
            assert_eq!(e.raise_tpl(Tpl::NOTIFY), Tpl::APPLICATION);
            // Lowering through RaiseTPL: ignored.
            assert_eq!(e.raise_tpl(Tpl::CALLBACK), Tpl::NOTIFY);
            assert_eq!(e.tpl(), Tpl::NOTIFY);
            // Raising through RestoreTPL: ignored.
            e.restore_tpl(Tpl::HIGH_LEVEL);
            assert_eq!(e.tpl(), Tpl::NOTIFY);
            assert_eq!(e.raise_tpl(Tpl(100)), Tpl::NOTIFY);
            assert_eq!(e.tpl(), Tpl::HIGH_LEVEL);
            e.restore_tpl(Tpl::APPLICATION);
            assert_eq!(e.tpl(), Tpl::APPLICATION);
        });
    }

    #[test]
    fn relative_and_periodic_timers_follow_the_clock() {
        events(|e| {
            let timer = e.create(EventType::TIMER, Tpl(0), None, 0, None).unwrap();
            // 10 x 100 ns.
            e.set_timer(timer, TimerDelay::RELATIVE, 10).unwrap();
            advance(999);
            assert_eq!(e.check(timer), Ok(false));
            advance(1);
            assert_eq!(e.check(timer), Ok(true));
            advance(5000);
            assert_eq!(e.check(timer), Ok(false), "one-shot");

            e.set_timer(timer, TimerDelay::PERIODIC, 10).unwrap();
            for _ in 0..3 {
                assert_eq!(e.check(timer), Ok(false));
                advance(1000);
                assert_eq!(e.check(timer), Ok(true));
            }
            // Far behind: one signal, not a burst.
            advance(10_000);
            assert_eq!(e.check(timer), Ok(true));
            assert_eq!(e.check(timer), Ok(false));
            e.set_timer(timer, TimerDelay::CANCEL, 0).unwrap();
            advance(10_000);
            assert_eq!(e.check(timer), Ok(false));

            // Zero relative: the next poll.
            e.set_timer(timer, TimerDelay::RELATIVE, 0).unwrap();
            assert_eq!(e.check(timer), Ok(true));

            assert_eq!(
                e.set_timer(timer, TimerDelay(3), 1),
                Err(EventError::InvalidTimerType(TimerDelay(3)))
            );
            let plain = e.create(EventType::empty(), Tpl(0), None, 0, None).unwrap();
            assert_eq!(
                e.set_timer(plain, TimerDelay::RELATIVE, 1),
                Err(EventError::NotATimer(plain))
            );
        });
    }

    #[test]
    fn timer_notify_runs_at_poll() {
        events(|e| {
            let kind = EventType::TIMER | EventType::NOTIFY_SIGNAL;
            let timer = e
                .create(kind, Tpl::CALLBACK, Some(record), 7, None)
                .unwrap();
            e.set_timer(timer, TimerDelay::PERIODIC, 100).unwrap();
            e.poll();
            assert!(log().is_empty());
            advance(10_000);
            e.poll();
            advance(10_000);
            e.poll();
            assert_eq!(log(), vec![(7, Tpl::CALLBACK), (7, Tpl::CALLBACK)]);
        });
    }

    #[test]
    fn wait_for_event() {
        events(|e| {
            let never = e.create(EventType::empty(), Tpl(0), None, 0, None).unwrap();
            let timer = e.create(EventType::TIMER, Tpl(0), None, 0, None).unwrap();
            let signal = e
                .create(
                    EventType::NOTIFY_SIGNAL,
                    Tpl::CALLBACK,
                    Some(record),
                    0,
                    None,
                )
                .unwrap();
            assert_eq!(e.wait(&[]), Err((0, EventError::NoEvents)));
            assert_eq!(
                e.wait(&[never, signal]),
                Err((1, EventError::NotifySignalEvent(signal)))
            );
            assert_eq!(
                e.wait(&[never, EventId::NULL]),
                Err((1, EventError::UnknownEvent(EventId::NULL)))
            );

            e.set_timer(timer, TimerDelay::RELATIVE, 1_000_000).unwrap();
            STEP.set(1000);
            let start = NOW.get();
            assert_eq!(e.wait(&[never, timer]), Ok(1));
            assert!(NOW.get() - start >= 100_000_000);

            e.raise_tpl(Tpl::CALLBACK);
            assert_eq!(
                e.wait(&[timer]),
                Err((0, EventError::WaitAtTpl(Tpl::CALLBACK)))
            );
            assert_eq!(
                EventError::WaitAtTpl(Tpl::CALLBACK).status(),
                Status::UNSUPPORTED
            );
            e.restore_tpl(Tpl::APPLICATION);
        });
    }

    #[test]
    fn check_event_runs_wait_notify_when_unsignalled() {
        events(|e| {
            let wait = EventType::NOTIFY_WAIT;
            let signals = e
                .create(wait, Tpl::CALLBACK, Some(signal_self), 1, None)
                .unwrap();
            let idle = e.create(wait, Tpl::NOTIFY, Some(record), 2, None).unwrap();
            assert_eq!(e.check(signals), Ok(true));
            assert_eq!(e.check(idle), Ok(false));
            assert_eq!(e.check(idle), Ok(false));
            assert_eq!(
                log(),
                vec![(1, Tpl::CALLBACK), (2, Tpl::NOTIFY), (2, Tpl::NOTIFY)]
            );

            // A signalled NOTIFY_WAIT event does not call its notify function.
            e.signal(idle).unwrap();
            assert_eq!(e.check(idle), Ok(true));
            assert_eq!(log().len(), 3);

            // Masked by the TPL: queued, run on RestoreTPL.
            e.raise_tpl(Tpl::NOTIFY);
            assert_eq!(e.check(signals), Ok(false));
            assert_eq!(log().len(), 3);
            e.restore_tpl(Tpl::APPLICATION);
            assert_eq!(log()[3], (1, Tpl::CALLBACK));
            assert_eq!(
                e.check(signals),
                Ok(true),
                "signalled by the deferred notify"
            );
        });
    }

    #[test]
    fn internal_condition_event() {
        fn key_ready() -> bool {
            KEY_READY.get()
        }
        events(|e| {
            let key = e.create_condition(key_ready).unwrap();
            assert_eq!(e.check(key), Ok(false));
            KEY_READY.set(true);
            STEP.set(1);
            assert_eq!(e.wait(&[key]), Ok(0));
            assert_eq!(
                e.check(key),
                Ok(true),
                "stays signalled while the condition holds"
            );
            KEY_READY.set(false);
            assert_eq!(e.check(key), Ok(false));
        });
    }

    #[test]
    fn groups_signal_all_members() {
        let group = guid!("00000001-0002-0003-0405-060606060606");
        events(|e| {
            let sig = EventType::NOTIFY_SIGNAL;
            let first = e
                .create(sig, Tpl::CALLBACK, Some(record), 1, Some(group))
                .unwrap();
            e.create(sig, Tpl::NOTIFY, Some(record), 2, Some(group))
                .unwrap();
            e.create(sig, Tpl::NOTIFY, Some(record), 3, None).unwrap();
            let plain = e
                .create(EventType::empty(), Tpl(0), None, 0, Some(group))
                .unwrap();
            e.signal(first).unwrap();
            assert_eq!(log(), vec![(2, Tpl::NOTIFY), (1, Tpl::CALLBACK)]);
            assert_eq!(e.check(plain), Ok(true));
        });
    }

    #[test]
    fn group_signal_event_follows_the_tpl() {
        // What InstallConfigurationTable and a memory map change do to their
        // groups (§7.1.2, §7.3.15): SignalEvent semantics, so at TPL_NOTIFY
        // nothing runs until RestoreTPL, then the highest TPL first.
        let group = guid!("00000009-0002-0003-0405-060606060606");
        let sig = EventType::NOTIFY_SIGNAL;
        events(|e| {
            for (tpl, context) in [(Tpl::CALLBACK, 10), (Tpl::CALLBACK, 11), (Tpl::NOTIFY, 12)] {
                e.create(sig, tpl, Some(record), context, Some(group))
                    .unwrap();
            }
            let old = e.raise_tpl(Tpl::NOTIFY);
            assert_eq!(e.signal_group_event(&group), 3);
            assert!(log().iter().all(|&(context, _)| context < 10));
            e.restore_tpl(old);
            let ours: Vec<(usize, Tpl)> = log().into_iter().filter(|&(c, _)| c >= 10).collect();
            assert_eq!(
                ours,
                [(12, Tpl::NOTIFY), (10, Tpl::CALLBACK), (11, Tpl::CALLBACK)]
            );
            // At TPL_APPLICATION the notifications run before it returns.
            LOG.with_borrow_mut(|l| l.clear());
            e.signal_group_event(&group);
            assert_eq!(log().len(), 3);
        });
    }

    #[test]
    fn legacy_types_join_the_spec_groups() {
        events(|e| {
            let sig = EventType::NOTIFY_SIGNAL;
            e.create(
                EventType::SIGNAL_EXIT_BOOT_SERVICES,
                Tpl::CALLBACK,
                Some(record),
                1,
                None,
            )
            .unwrap();
            let ebs = Some(spec_gaps::EVENT_GROUP_EXIT_BOOT_SERVICES);
            e.create(sig, Tpl::CALLBACK, Some(record), 2, ebs).unwrap();
            let before = Some(spec_gaps::EVENT_GROUP_BEFORE_EXIT_BOOT_SERVICES);
            e.create(sig, Tpl::CALLBACK, Some(record), 3, before)
                .unwrap();
            let vac = EventType::SIGNAL_VIRTUAL_ADDRESS_CHANGE;
            e.create(vac, Tpl::CALLBACK, Some(record), 4, None).unwrap();
            let vac_group = Some(spec_gaps::EVENT_GROUP_VIRTUAL_ADDRESS_CHANGE);
            e.create(sig, Tpl::NOTIFY, Some(record), 5, vac_group)
                .unwrap();

            // Even above the members' TPL, signal_group returns after they ran.
            e.raise_tpl(Tpl::NOTIFY);
            assert_eq!(
                e.signal_group(&spec_gaps::EVENT_GROUP_EXIT_BOOT_SERVICES),
                2
            );
            assert_eq!(log(), vec![(1, Tpl::NOTIFY), (2, Tpl::NOTIFY)]);
            assert_eq!(e.tpl(), Tpl::NOTIFY);
            e.restore_tpl(Tpl::APPLICATION);
            assert_eq!(log().len(), 2, "nothing left queued");

            let order: Vec<usize> = e
                .table
                .with(|t| t.group_notifies(&spec_gaps::EVENT_GROUP_VIRTUAL_ADDRESS_CHANGE))
                .iter()
                .map(|(_, n)| n.context)
                .collect();
            assert_eq!(order, vec![5, 4]);
        });
    }

    #[test]
    fn close_removes_pending_notifications_and_timers() {
        let pending = notify_event(Tpl::CALLBACK, 1);
        events(|e| {
            let timer_kind = EventType::TIMER | EventType::NOTIFY_SIGNAL;
            let timer = e
                .create(timer_kind, Tpl::CALLBACK, Some(record), 2, None)
                .unwrap();
            e.set_timer(timer, TimerDelay::PERIODIC, 1).unwrap();
            e.raise_tpl(Tpl::HIGH_LEVEL);
            e.signal(pending).unwrap();
            advance(1000);
            e.poll();
            e.close(pending).unwrap();
            e.close(timer).unwrap();
            advance(1000);
            e.restore_tpl(Tpl::APPLICATION);
            assert!(log().is_empty());

            let closing = e
                .create(
                    EventType::NOTIFY_SIGNAL,
                    Tpl::CALLBACK,
                    Some(close_self),
                    3,
                    None,
                )
                .unwrap();
            e.signal(closing).unwrap();
            assert_eq!(log(), vec![(3, Tpl::CALLBACK)]);
            assert!(e.table.with(|t| t.is_empty()));
        });
    }

    #[test]
    fn watchdog() {
        events(|e| {
            assert_eq!(
                e.set_watchdog(10, 0xFFFF),
                Err(EventError::InvalidWatchdogCode(0xFFFF))
            );
            // Disabling is allowed with any code.
            assert_eq!(e.set_watchdog(0, 0), Ok(()));
            e.set_watchdog(2, 0x1_0000).unwrap();
            advance(1_999_999_999);
            e.poll();
            assert_eq!(WATCHDOG_FIRED.get(), None);
            advance(1);
            e.poll();
            assert_eq!(WATCHDOG_FIRED.get(), Some(0x1_0000));

            WATCHDOG_FIRED.set(None);
            e.arm_watchdog(300, 0);
            e.set_watchdog(0, 0).unwrap();
            advance(1_000_000_000_000);
            e.poll();
            assert_eq!(WATCHDOG_FIRED.get(), None);
        });
    }

    #[test]
    fn stall_waits_and_runs_timers() {
        events(|e| {
            let kind = EventType::TIMER | EventType::NOTIFY_SIGNAL;
            let timer = e
                .create(kind, Tpl::CALLBACK, Some(record), 9, None)
                .unwrap();
            e.set_timer(timer, TimerDelay::RELATIVE, 20).unwrap();
            STEP.set(100);
            let start = NOW.get();
            e.stall(5);
            assert!(NOW.get() - start >= 5000);
            assert_eq!(log(), vec![(9, Tpl::CALLBACK)]);
        });
    }
}
