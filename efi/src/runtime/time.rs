//! Time Services (UEFI 2.10 §8.3): GetTime/SetTime over the CMOS clock.
//! The time zone and daylight flags, which the clock cannot hold, are kept
//! in a non-volatile variable ([`super::persisted`]) so they survive a
//! reset. The wakeup alarm is in [`super::wakeup`].

use core::fmt;
use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use log::error;
use platform::rtc::{DateTime, Rtc, RtcError};
use uefi_raw::table::runtime::TimeCapabilities;
use uefi_raw::time::{Daylight, Time};
use uefi_raw::{Boolean, Status};

/// Why an EFI_TIME was rejected; carries the offending value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeError {
    Date(RtcError),
    Nanosecond(u32),
    TimeZone(i16),
    Daylight(u8),
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Date(e) => write!(f, "{e}"),
            TimeError::Nanosecond(v) => write!(f, "nanosecond {v} out of range"),
            TimeError::TimeZone(v) => write!(f, "time zone {v} out of range"),
            TimeError::Daylight(v) => write!(f, "daylight flags {v:#x} invalid"),
        }
    }
}

/// Checks every EFI_TIME field against its range (§8.3.1): year 1900-9999,
/// a day that exists in the month, nanosecond below 10^9, a time zone of
/// ±1440 minutes or EFI_UNSPECIFIED_TIMEZONE, and only the two defined
/// daylight flags.
pub fn validate_time(time: &Time) -> Result<DateTime, TimeError> {
    let date = DateTime {
        year: time.year,
        month: time.month,
        day: time.day,
        hour: time.hour,
        minute: time.minute,
        second: time.second,
    };
    date.validate().map_err(TimeError::Date)?;
    if time.nanosecond > 999_999_999 {
        return Err(TimeError::Nanosecond(time.nanosecond));
    }
    if !(-1440..=1440).contains(&time.time_zone) && time.time_zone != Time::UNSPECIFIED_TIMEZONE {
        return Err(TimeError::TimeZone(time.time_zone));
    }
    // On raw bits: the caller's byte may hold bits no flag names.
    let daylight = time.daylight.bits();
    if daylight & !(Daylight::ADJUST_DAYLIGHT | Daylight::IN_DAYLIGHT).bits() != 0 {
        return Err(TimeError::Daylight(daylight));
    }
    Ok(date)
}

/// An EFI_TIME for a clock reading. The CMOS clock keeps neither time zone
/// nor daylight state: they are what SetTime last stored.
pub fn time_from_rtc(date: DateTime, time_zone: i16, daylight: Daylight) -> Time {
    Time {
        year: date.year,
        month: date.month,
        day: date.day,
        hour: date.hour,
        minute: date.minute,
        second: date.second,
        pad1: 0,
        nanosecond: 0,
        time_zone,
        daylight,
        pad2: 0,
    }
}

/// The clock ticks once a second; a typical crystal is accurate to about
/// 50 ppm, expressed in units of 1e-6 ppm (§8.3.1 EFI_TIME_CAPABILITIES).
pub const TIME_CAPABILITIES: TimeCapabilities = TimeCapabilities {
    resolution: 1,
    accuracy: 50_000_000,
    sets_to_zero: Boolean::FALSE,
};

/// CMOS index of the century byte (0: the RTC default).
pub(super) static CENTURY_REGISTER: AtomicU8 = AtomicU8::new(0);
/// Time zone (low 16 bits) and daylight flags (bits 16-23) from SetTime.
static TIME_ZONE: AtomicU32 = AtomicU32::new(pack_zone(Time::UNSPECIFIED_TIMEZONE, 0));

const fn pack_zone(time_zone: i16, daylight: u8) -> u32 {
    (time_zone as u16 as u32) | ((daylight as u32) << 16)
}

/// The time zone and daylight flags GetTime reports.
pub(super) fn time_zone() -> (i16, u8) {
    let zone = TIME_ZONE.load(Ordering::Relaxed);
    (zone as u16 as i16, (zone >> 16) as u8)
}

/// At boot: the time zone and daylight flags SetTime stored before the
/// reset (§8.3.2: they are kept with the time).
pub(super) fn restore_time_zone() {
    if let Some((time_zone, daylight)) = super::persisted::load_time_zone() {
        TIME_ZONE.store(pack_zone(time_zone, daylight), Ordering::Relaxed);
    }
}

pub(super) fn rtc() -> Rtc {
    Rtc::new(Some(CENTURY_REGISTER.load(Ordering::Relaxed)))
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn get_time(
    time: *mut Time,
    capabilities: *mut TimeCapabilities,
) -> Status {
    if time.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let date = match rtc().read() {
        Ok(date) => date,
        Err(err) => {
            error!("GetTime: {err}");
            return Status::DEVICE_ERROR;
        }
    };
    let (time_zone, daylight) = time_zone();
    let value = time_from_rtc(date, time_zone, Daylight::from_bits_retain(daylight));
    // SAFETY: `time` is non-null and the caller provides an EFI_TIME there
    // (§8.3.1); the write tolerates any alignment.
    unsafe { time.write_unaligned(value) };
    if !capabilities.is_null() {
        // SAFETY: non-null optional EFI_TIME_CAPABILITIES output (§8.3.1).
        unsafe { capabilities.write_unaligned(TIME_CAPABILITIES) };
    }
    Status::SUCCESS
}

/// # Safety
/// Pointer arguments as UEFI 2.10 §8 requires of the caller.
pub unsafe extern "efiapi" fn set_time(time: *const Time) -> Status {
    if time.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: `time` is non-null and points to the caller's EFI_TIME.
    let value = unsafe { time.read_unaligned() };
    let date = match validate_time(&value) {
        Ok(date) => date,
        Err(_) => return Status::INVALID_PARAMETER,
    };
    if let Err(err) = rtc().write(&date) {
        error!("SetTime: {err}");
        return Status::DEVICE_ERROR;
    }
    let zone = pack_zone(value.time_zone, value.daylight.bits());
    if TIME_ZONE.swap(zone, Ordering::Relaxed) != zone {
        // Written only when changed: every write of a non-volatile
        // variable is a disk write at boot time.
        let status = super::persisted::store_time_zone(value.time_zone, value.daylight.bits());
        if status != Status::SUCCESS {
            error!("SetTime: time zone not saved ({status:?})");
            return Status::DEVICE_ERROR;
        }
    }
    Status::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Time {
        Time {
            year,
            month,
            day,
            hour,
            minute,
            second,
            time_zone: Time::UNSPECIFIED_TIMEZONE,
            ..Time::default()
        }
    }

    #[test]
    fn time_validation() {
        let ok = time(2024, 2, 29, 23, 59, 59);
        assert_eq!(
            validate_time(&ok),
            Ok(DateTime {
                year: 2024,
                month: 2,
                day: 29,
                hour: 23,
                minute: 59,
                second: 59
            })
        );
        let date = |e| Err(TimeError::Date(e));
        assert_eq!(
            validate_time(&time(2023, 2, 29, 0, 0, 0)),
            date(RtcError::Day(29))
        );
        assert_eq!(
            validate_time(&time(1899, 12, 31, 0, 0, 0)),
            date(RtcError::Year(1899))
        );
        assert_eq!(
            validate_time(&time(10000, 1, 1, 0, 0, 0)),
            date(RtcError::Year(10000))
        );
        assert_eq!(
            validate_time(&time(2024, 0, 1, 0, 0, 0)),
            date(RtcError::Month(0))
        );
        assert_eq!(
            validate_time(&time(2024, 4, 31, 0, 0, 0)),
            date(RtcError::Day(31))
        );
        assert_eq!(
            validate_time(&time(2024, 1, 0, 0, 0, 0)),
            date(RtcError::Day(0))
        );
        assert_eq!(
            validate_time(&time(2024, 1, 1, 24, 0, 0)),
            date(RtcError::Hour(24))
        );
        assert_eq!(
            validate_time(&time(2024, 1, 1, 0, 60, 0)),
            date(RtcError::Minute(60))
        );
        assert_eq!(
            validate_time(&time(2024, 1, 1, 0, 0, 60)),
            date(RtcError::Second(60))
        );

        let mut t = ok;
        t.nanosecond = 999_999_999;
        assert!(validate_time(&t).is_ok());
        t.nanosecond = 1_000_000_000;
        assert_eq!(validate_time(&t), Err(TimeError::Nanosecond(1_000_000_000)));

        let mut t = ok;
        for zone in [-1440, 0, 60, 1440, Time::UNSPECIFIED_TIMEZONE] {
            t.time_zone = zone;
            assert!(validate_time(&t).is_ok(), "zone {zone}");
        }
        for zone in [-1441, 1441, 2046, i16::MIN] {
            t.time_zone = zone;
            assert_eq!(validate_time(&t), Err(TimeError::TimeZone(zone)));
        }

        let mut t = ok;
        t.daylight = Daylight::ADJUST_DAYLIGHT | Daylight::IN_DAYLIGHT;
        assert!(validate_time(&t).is_ok());
        t.daylight = Daylight::from_bits_retain(0x04);
        assert_eq!(validate_time(&t), Err(TimeError::Daylight(0x04)));
    }

    #[test]
    fn zone_packing() {
        for (zone, daylight) in [
            (0, 0),
            (-1440, 3),
            (1440, 1),
            (Time::UNSPECIFIED_TIMEZONE, 2),
        ] {
            let packed = pack_zone(zone, daylight);
            assert_eq!(
                (packed as u16 as i16, (packed >> 16) as u8),
                (zone, daylight)
            );
        }
    }

    #[test]
    fn rtc_reading_becomes_efi_time() {
        let date = DateTime {
            year: 2026,
            month: 5,
            day: 17,
            hour: 8,
            minute: 30,
            second: 5,
        };
        let t = time_from_rtc(date, 60, Daylight::IN_DAYLIGHT);
        assert_eq!((t.year, t.month, t.day), (2026, 5, 17));
        assert_eq!((t.hour, t.minute, t.second, t.nanosecond), (8, 30, 5, 0));
        assert_eq!((t.time_zone, t.daylight), (60, Daylight::IN_DAYLIGHT));
        assert_eq!(validate_time(&t), Ok(date));
        assert_eq!(TIME_CAPABILITIES.resolution, 1);
        assert_eq!(TIME_CAPABILITIES.accuracy, 50_000_000);
        assert_eq!(TIME_CAPABILITIES.sets_to_zero, Boolean::FALSE);
    }

    #[test]
    fn bad_times_refused() {
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { get_time(core::ptr::null_mut(), core::ptr::null_mut()) },
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            // SAFETY: pointers are null or live locals of the sizes passed.
            unsafe { set_time(core::ptr::null_mut()) },
            Status::INVALID_PARAMETER
        );
        // Invalid times are refused before the clock is touched.
        let bad = time(2023, 2, 29, 0, 0, 0);
        // SAFETY: pointers are null or live locals of the sizes passed.
        assert_eq!(unsafe { set_time(&bad) }, Status::INVALID_PARAMETER);
    }
}
