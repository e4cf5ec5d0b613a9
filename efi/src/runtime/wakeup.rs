//! The wakeup alarm (UEFI 2.10 §8.3.3 GetWakeupTime, §8.3.4
//! SetWakeupTime) over the CMOS RTC alarm: registers 1/3/5 hold the time
//! of day, register B's AIE bit arms it and register C's AF bit records a
//! match. The alarm has no date, and a reset (or a new QEMU process) may
//! clear AIE, so the full EFI_TIME and the armed state are also kept in the
//! `WakeupTime` variable ([`super::persisted`]) and re-armed at boot.
//!
//! The time is programmed as given: the alarm registers count in the
//! clock's local time, and no conversion between the wakeup time's zone and
//! the one SetTime gave the clock is attempted.

use core::sync::atomic::{AtomicBool, Ordering};

use log::{error, warn};
use uefi_raw::time::{Daylight, Time};
use uefi_raw::{Boolean, Status};

use super::persisted::{WakeupRecord, load_wakeup, store_wakeup};
use super::time::{rtc, time_from_rtc, time_zone, validate_time};

/// The armed alarm matched and no SetWakeupTime has acknowledged it since
/// (§8.3.3 "Pending"). Register C clears when read, so the match is
/// remembered here.
static PENDING: AtomicBool = AtomicBool::new(false);

/// Which time GetWakeupTime reports: the recorded EFI_TIME while it still
/// names the time of day in the alarm registers (nobody reprogrammed them
/// behind our back), else the registers' time on `today`.
pub fn reported_wakeup_time(
    record: Option<WakeupRecord>,
    alarm: Option<(u8, u8, u8)>,
    today: Option<Time>,
) -> Option<Time> {
    match (record, alarm) {
        (Some(record), Some((hour, minute, second)))
            if (record.time.hour, record.time.minute, record.time.second)
                == (hour, minute, second) =>
        {
            Some(record.time)
        }
        (_, Some((hour, minute, second))) => today.map(|today| Time {
            hour,
            minute,
            second,
            nanosecond: 0,
            ..today
        }),
        (record, None) => record.map(|r| r.time),
    }
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8.3.3 requires of the caller.
pub unsafe extern "efiapi" fn get_wakeup_time(
    enabled: *mut Boolean,
    pending: *mut Boolean,
    time: *mut Time,
) -> Status {
    if enabled.is_null() || pending.is_null() || time.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let clock = rtc();
    let (armed, matched) = clock.alarm_state();
    if armed && matched {
        PENDING.store(true, Ordering::Relaxed);
    }
    let today = clock.read().ok().map(|date| {
        let (zone, daylight) = time_zone();
        time_from_rtc(date, zone, Daylight::from_bits_retain(daylight))
    });
    let Some(value) = reported_wakeup_time(load_wakeup(), clock.read_alarm().ok(), today) else {
        error!("GetWakeupTime: neither the alarm registers nor the clock read");
        return Status::DEVICE_ERROR;
    };
    // SAFETY: the three outputs are non-null, as checked; the caller
    // provides a BOOLEAN, a BOOLEAN and an EFI_TIME there (§8.3.3).
    unsafe {
        enabled.write_unaligned(Boolean::from(armed));
        pending.write_unaligned(Boolean::from(PENDING.load(Ordering::Relaxed)));
        time.write_unaligned(value);
    }
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8.3.4 requires of the caller.
pub unsafe extern "efiapi" fn set_wakeup_time(enable: Boolean, time: *const Time) -> Status {
    let enable = bool::from(enable);
    let record = if enable {
        // SAFETY: `time` is null (refused) or the caller's EFI_TIME.
        let Ok(value) = (unsafe { crate::boundary::read(time) }) else {
            return Status::INVALID_PARAMETER;
        };
        if validate_time(&value).is_err() {
            return Status::INVALID_PARAMETER;
        }
        if let Err(err) = rtc().write_alarm(value.hour, value.minute, value.second, true) {
            error!("SetWakeupTime: {err}");
            return Status::DEVICE_ERROR;
        }
        Some(WakeupRecord {
            time: value,
            enabled: true,
        })
    } else {
        // §8.3.4: with Enable FALSE, Time is optional and ignored.
        rtc().disable_alarm();
        load_wakeup().map(|record| WakeupRecord {
            enabled: false,
            ..record
        })
    };
    // A new setting acknowledges a pending alarm.
    PENDING.store(false, Ordering::Relaxed);
    match record.map(|record| store_wakeup(&record)) {
        None | Some(Status::SUCCESS) => Status::SUCCESS,
        Some(status) => {
            error!("SetWakeupTime: not saved ({status:?})");
            Status::DEVICE_ERROR
        }
    }
}

/// At boot: re-arms an alarm that was armed before the reset, if the
/// reset disarmed it (QEMU clears AIE on reset; a new process starts with
/// a fresh clock).
pub(super) fn restore_alarm() {
    let Some(record) = load_wakeup().filter(|r| r.enabled) else {
        return;
    };
    let clock = rtc();
    if clock.alarm_state().0 {
        return;
    }
    let t = record.time;
    if let Err(err) = clock.write_alarm(t.hour, t.minute, t.second, true) {
        warn!("wakeup alarm not re-armed: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(hour: u8, minute: u8, second: u8) -> Time {
        Time {
            year: 2026,
            month: 12,
            day: 7,
            hour,
            minute,
            second,
            time_zone: 60,
            daylight: Daylight::IN_DAYLIGHT,
            ..Time::default()
        }
    }

    #[test]
    fn reported_time_prefers_a_matching_record() {
        let record = WakeupRecord {
            time: Time {
                day: 31,
                ..time(10, 20, 30)
            },
            enabled: true,
        };
        let today = time(1, 2, 3);
        // The record's date is kept while the registers agree.
        assert_eq!(
            reported_wakeup_time(Some(record), Some((10, 20, 30)), Some(today)),
            Some(record.time)
        );
        // Registers changed elsewhere: their time of day, today's date.
        assert_eq!(
            reported_wakeup_time(Some(record), Some((5, 6, 7)), Some(today)),
            Some(time(5, 6, 7))
        );
        assert_eq!(
            reported_wakeup_time(None, Some((5, 6, 7)), Some(today)),
            Some(time(5, 6, 7))
        );
        // Unreadable registers: the record, else nothing.
        assert_eq!(
            reported_wakeup_time(Some(record), None, None),
            Some(record.time)
        );
        assert_eq!(reported_wakeup_time(None, None, Some(today)), None);
        assert_eq!(reported_wakeup_time(None, Some((5, 6, 7)), None), None);
    }

    #[test]
    fn arguments_checked_before_the_hardware() {
        let (mut enabled, mut pending, mut t) = (Boolean::FALSE, Boolean::FALSE, Time::default());
        let null = core::ptr::null_mut();
        // SAFETY: pointers are null or live locals; every call
        // is refused before any port is touched.
        unsafe {
            assert_eq!(
                get_wakeup_time(null, &mut pending, &mut t),
                Status::INVALID_PARAMETER
            );
            assert_eq!(
                get_wakeup_time(&mut enabled, null, &mut t),
                Status::INVALID_PARAMETER
            );
            assert_eq!(
                get_wakeup_time(&mut enabled, &mut pending, core::ptr::null_mut()),
                Status::INVALID_PARAMETER
            );
            assert_eq!(
                set_wakeup_time(Boolean::TRUE, core::ptr::null()),
                Status::INVALID_PARAMETER
            );
            for bad in [
                Time {
                    month: 13,
                    ..time(0, 0, 0)
                },
                Time {
                    hour: 24,
                    ..time(0, 0, 0)
                },
                Time {
                    day: 31,
                    month: 4,
                    ..time(0, 0, 0)
                },
                Time {
                    nanosecond: 1_000_000_000,
                    ..time(0, 0, 0)
                },
                Time {
                    time_zone: -1441,
                    ..time(0, 0, 0)
                },
                Time {
                    daylight: Daylight::from_bits_retain(4),
                    ..time(0, 0, 0)
                },
            ] {
                assert_eq!(
                    set_wakeup_time(Boolean::TRUE, &bad),
                    Status::INVALID_PARAMETER
                );
            }
        }
    }
}
