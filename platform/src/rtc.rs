//! The CMOS real-time clock (MC146818-compatible, ports 0x70/0x71), backing
//! EFI GetTime/SetTime (UEFI 2.10 §8.3).
//!
//! The register formats (BCD or binary, 12- or 24-hour) are converted by pure
//! functions in [`convert`]; [`Rtc`] does the port access.

use core::fmt;

use x86_64::instructions::port::{PortReadOnly, PortWriteOnly};

pub use convert::{DateTime, RawAlarm, RawTime};

/// Why a date/time was rejected. Carries the offending value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcError {
    Year(u16),
    Month(u8),
    Day(u8),
    Hour(u8),
    Minute(u8),
    Second(u8),
    /// The clock kept updating while read, or never left update mode.
    Unstable,
}

impl fmt::Display for RtcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtcError::Year(v) => write!(f, "year {v} out of range"),
            RtcError::Month(v) => write!(f, "month {v} out of range"),
            RtcError::Day(v) => write!(f, "day {v} out of range"),
            RtcError::Hour(v) => write!(f, "hour {v} out of range"),
            RtcError::Minute(v) => write!(f, "minute {v} out of range"),
            RtcError::Second(v) => write!(f, "second {v} out of range"),
            RtcError::Unstable => f.write_str("RTC did not settle"),
        }
    }
}

pub mod convert {
    #![forbid(unsafe_code)]

    use super::RtcError;

    /// Register B bit 2: values are binary rather than BCD.
    pub const STATUS_B_BINARY: u8 = 1 << 2;
    /// Register B bit 1: hours are 0-23 rather than 1-12 plus a PM flag.
    pub const STATUS_B_24_HOUR: u8 = 1 << 1;
    /// In 12-hour mode, bit 7 of the hour register marks PM.
    pub const HOUR_PM: u8 = 1 << 7;

    /// A calendar date and time of day, with the ranges of EFI_TIME
    /// (UEFI 2.10 §8.3.1): year 1900-9999.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub struct DateTime {
        pub year: u16,
        pub month: u8,
        pub day: u8,
        pub hour: u8,
        pub minute: u8,
        pub second: u8,
    }

    pub fn is_leap_year(year: u16) -> bool {
        (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
    }

    pub fn days_in_month(year: u16, month: u8) -> u8 {
        match month {
            2 if is_leap_year(year) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    impl DateTime {
        pub fn validate(&self) -> Result<(), RtcError> {
            if !(1900..=9999).contains(&self.year) {
                return Err(RtcError::Year(self.year));
            }
            if !(1..=12).contains(&self.month) {
                return Err(RtcError::Month(self.month));
            }
            if self.day == 0 || self.day > days_in_month(self.year, self.month) {
                return Err(RtcError::Day(self.day));
            }
            if self.hour > 23 {
                return Err(RtcError::Hour(self.hour));
            }
            if self.minute > 59 {
                return Err(RtcError::Minute(self.minute));
            }
            if self.second > 59 {
                return Err(RtcError::Second(self.second));
            }
            Ok(())
        }

        /// Day of the week, 1 = Sunday, as the RTC's register 6 counts.
        pub fn day_of_week(&self) -> u8 {
            // Sakamoto's method over the Gregorian calendar.
            const OFFSETS: [u16; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
            let month = usize::from(self.month.clamp(1, 12));
            let year = if month < 3 { self.year - 1 } else { self.year };
            let sunday_zero = (year + year / 4 - year / 100
                + year / 400
                + OFFSETS[month - 1]
                + u16::from(self.day))
                % 7;
            sunday_zero as u8 + 1
        }
    }

    /// The clock registers exactly as read (DS12887 datasheet register map:
    /// 0 seconds, 2 minutes, 4 hours, 7 day, 8 month, 9 year, plus the
    /// century byte the FADT names).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct RawTime {
        pub second: u8,
        pub minute: u8,
        pub hour: u8,
        pub day: u8,
        pub month: u8,
        pub year: u8,
        pub century: u8,
    }

    pub fn bcd_to_binary(value: u8) -> Option<u8> {
        let (high, low) = (value >> 4, value & 0x0f);
        (high <= 9 && low <= 9).then_some(high * 10 + low)
    }

    pub fn binary_to_bcd(value: u8) -> u8 {
        ((value / 10) << 4) | (value % 10)
    }

    /// Decodes registers given status register B. A century byte that does
    /// not decode to 19-99 means the register is not there: assume 20xx.
    pub fn decode(raw: RawTime, status_b: u8) -> Result<DateTime, RtcError> {
        let binary = status_b & STATUS_B_BINARY != 0;
        let field = |value: u8, err: fn(u8) -> RtcError| {
            if binary {
                Ok(value)
            } else {
                bcd_to_binary(value).ok_or(err(value))
            }
        };
        let pm = status_b & STATUS_B_24_HOUR == 0 && raw.hour & HOUR_PM != 0;
        let mut hour = if status_b & STATUS_B_24_HOUR == 0 {
            field(raw.hour & !HOUR_PM, RtcError::Hour)?
        } else {
            field(raw.hour, RtcError::Hour)?
        };
        if status_b & STATUS_B_24_HOUR == 0 {
            // 12 AM is midnight (hour 0) and 12 PM is noon.
            if !(1..=12).contains(&hour) {
                return Err(RtcError::Hour(raw.hour));
            }
            hour = (hour % 12) + if pm { 12 } else { 0 };
        }
        let century = field(raw.century, |_| RtcError::Year(0))
            .ok()
            .filter(|c| (19..=99).contains(c))
            .unwrap_or(20);
        let year_in_century = field(raw.year, |v| RtcError::Year(u16::from(v)))?;
        if year_in_century > 99 {
            return Err(RtcError::Year(u16::from(year_in_century)));
        }
        let time = DateTime {
            year: u16::from(century) * 100 + u16::from(year_in_century),
            month: field(raw.month, RtcError::Month)?,
            day: field(raw.day, RtcError::Day)?,
            hour,
            minute: field(raw.minute, RtcError::Minute)?,
            second: field(raw.second, RtcError::Second)?,
        };
        time.validate()?;
        Ok(time)
    }

    /// Encodes a validated time in the format status register B selects.
    pub fn encode(time: &DateTime, status_b: u8) -> Result<RawTime, RtcError> {
        time.validate()?;
        let binary = status_b & STATUS_B_BINARY != 0;
        let field = |value: u8| if binary { value } else { binary_to_bcd(value) };
        let hour = if status_b & STATUS_B_24_HOUR != 0 {
            field(time.hour)
        } else {
            let twelve = match time.hour % 12 {
                0 => 12,
                h => h,
            };
            field(twelve) | if time.hour >= 12 { HOUR_PM } else { 0 }
        };
        Ok(RawTime {
            second: field(time.second),
            minute: field(time.minute),
            hour,
            day: field(time.day),
            month: field(time.month),
            year: field((time.year % 100) as u8),
            century: field((time.year / 100) as u8),
        })
    }

    /// The alarm registers exactly as read (1 seconds, 3 minutes, 5 hours;
    /// DS12887 datasheet register map), in the format register B selects.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct RawAlarm {
        pub second: u8,
        pub minute: u8,
        pub hour: u8,
    }

    /// A date the alarm codecs borrow so the clock codecs (and their
    /// 12-hour handling) serve the time-of-day registers too.
    const ANY_DATE: DateTime = DateTime {
        year: 2000,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };

    /// Encodes a time of day for the alarm registers.
    pub fn encode_alarm(
        hour: u8,
        minute: u8,
        second: u8,
        status_b: u8,
    ) -> Result<RawAlarm, RtcError> {
        let raw = encode(
            &DateTime {
                hour,
                minute,
                second,
                ..ANY_DATE
            },
            status_b,
        )?;
        Ok(RawAlarm {
            second: raw.second,
            minute: raw.minute,
            hour: raw.hour,
        })
    }

    /// Decodes the alarm registers to (hour, minute, second). The
    /// "don't care" codes (0xC0-0xFF) are not a time of day: an error.
    pub fn decode_alarm(raw: RawAlarm, status_b: u8) -> Result<(u8, u8, u8), RtcError> {
        let date = encode(&ANY_DATE, status_b)?;
        let time = decode(
            RawTime {
                second: raw.second,
                minute: raw.minute,
                hour: raw.hour,
                ..date
            },
            status_b,
        )?;
        Ok((time.hour, time.minute, time.second))
    }
}

/// CMOS index and data ports (IBM PC/AT layout).
const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;
/// Bit 7 of the index port masks NMI while a register is selected.
const NMI_DISABLE: u8 = 0x80;

const REG_SECONDS: u8 = 0x00;
const REG_SECONDS_ALARM: u8 = 0x01;
const REG_MINUTES: u8 = 0x02;
const REG_MINUTES_ALARM: u8 = 0x03;
const REG_HOURS: u8 = 0x04;
const REG_HOURS_ALARM: u8 = 0x05;
const REG_DAY_OF_WEEK: u8 = 0x06;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_STATUS_A: u8 = 0x0a;
const REG_STATUS_B: u8 = 0x0b;
const REG_STATUS_C: u8 = 0x0c;
const REG_STATUS_D: u8 = 0x0d;
/// Register B bit 5: the alarm raises an interrupt (the wakeup event).
const STATUS_B_ALARM_INTERRUPT: u8 = 1 << 5;
/// Register C bit 5: the alarm time matched (cleared by reading C).
const STATUS_C_ALARM_FLAG: u8 = 1 << 5;
/// Register A bit 7: an update cycle is in progress (time registers unsafe).
const STATUS_A_UIP: u8 = 1 << 7;
/// Register B bit 7: halts updates while the time is being set.
const STATUS_B_SET: u8 = 1 << 7;
/// Where the century lives when the FADT does not say (the IBM PC/AT
/// layout, which QEMU and Cloud Hypervisor follow).
pub const DEFAULT_CENTURY_REGISTER: u8 = 0x32;

/// Bound on polling loops; an update cycle lasts under 2 ms, far fewer
/// port reads than this.
const MAX_POLLS: u32 = 1_000_000;

/// The CMOS RTC. Callers serialise access (EFI runs single-threaded at
/// TPL_HIGH_LEVEL around runtime services).
#[derive(Clone, Copy, Debug)]
pub struct Rtc {
    century_register: u8,
}

impl Rtc {
    /// `century_register` is the FADT CENTURY field (`AcpiInfo::century`).
    pub fn new(century_register: Option<u8>) -> Rtc {
        Rtc {
            century_register: century_register
                .filter(|&r| r != 0 && r < 0x80)
                .unwrap_or(DEFAULT_CENTURY_REGISTER),
        }
    }

    fn select(&self, index: u8) {
        // SAFETY: the CMOS index port selects a CMOS register; it has no
        // effect on memory. Indexes come from this module's constants and
        // the century register, bounded below 0x80 in `new`.
        unsafe { PortWriteOnly::<u8>::new(INDEX).write(index) }
    }

    fn read_register(&self, register: u8) -> u8 {
        self.select(register | NMI_DISABLE);
        // SAFETY: reads the selected CMOS register; no memory effect.
        unsafe { PortReadOnly::<u8>::new(DATA).read() }
    }

    fn write_register(&self, register: u8, value: u8) {
        self.select(register | NMI_DISABLE);
        // SAFETY: writes the selected CMOS register (clock or century); no
        // memory effect.
        unsafe { PortWriteOnly::<u8>::new(DATA).write(value) }
    }

    /// Leaves the index on a read-only register with NMI unmasked again.
    fn release(&self) {
        self.select(REG_STATUS_D);
    }

    fn wait_for_update(&self) -> Result<(), RtcError> {
        for _ in 0..MAX_POLLS {
            if self.read_register(REG_STATUS_A) & STATUS_A_UIP == 0 {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(RtcError::Unstable)
    }

    fn read_raw(&self) -> Result<RawTime, RtcError> {
        self.wait_for_update()?;
        Ok(RawTime {
            second: self.read_register(REG_SECONDS),
            minute: self.read_register(REG_MINUTES),
            hour: self.read_register(REG_HOURS),
            day: self.read_register(REG_DAY),
            month: self.read_register(REG_MONTH),
            year: self.read_register(REG_YEAR),
            century: self.read_register(self.century_register),
        })
    }

    /// Reads the date and time: waits for an update to finish and reads until
    /// two consecutive reads agree, so no field is torn across a rollover.
    pub fn read(&self) -> Result<DateTime, RtcError> {
        let result = (|| {
            let mut last = self.read_raw()?;
            for _ in 0..8 {
                let next = self.read_raw()?;
                if next == last {
                    let status_b = self.read_register(REG_STATUS_B);
                    return convert::decode(next, status_b);
                }
                last = next;
            }
            Err(RtcError::Unstable)
        })();
        self.release();
        result
    }

    /// The alarm time of day (hour, minute, second) from registers 1, 3, 5.
    pub fn read_alarm(&self) -> Result<(u8, u8, u8), RtcError> {
        let result = self.wait_for_update().and_then(|()| {
            let raw = RawAlarm {
                second: self.read_register(REG_SECONDS_ALARM),
                minute: self.read_register(REG_MINUTES_ALARM),
                hour: self.read_register(REG_HOURS_ALARM),
            };
            convert::decode_alarm(raw, self.read_register(REG_STATUS_B))
        });
        self.release();
        result
    }

    /// Sets the alarm time of day and turns the alarm interrupt on or off.
    /// A match the flag recorded earlier is discarded (register C read),
    /// so only a match of the new alarm counts as pending.
    pub fn write_alarm(
        &self,
        hour: u8,
        minute: u8,
        second: u8,
        enable: bool,
    ) -> Result<(), RtcError> {
        let result = self.wait_for_update().and_then(|()| {
            let status_b = self.read_register(REG_STATUS_B);
            let raw = convert::encode_alarm(hour, minute, second, status_b)?;
            self.write_register(REG_STATUS_B, status_b & !STATUS_B_ALARM_INTERRUPT);
            self.write_register(REG_SECONDS_ALARM, raw.second);
            self.write_register(REG_MINUTES_ALARM, raw.minute);
            self.write_register(REG_HOURS_ALARM, raw.hour);
            let _ = self.read_register(REG_STATUS_C);
            if enable {
                self.write_register(REG_STATUS_B, status_b | STATUS_B_ALARM_INTERRUPT);
            }
            Ok(())
        });
        self.release();
        result
    }

    /// Turns the alarm interrupt off, leaving the alarm time as it is.
    pub fn disable_alarm(&self) {
        let status_b = self.read_register(REG_STATUS_B);
        self.write_register(REG_STATUS_B, status_b & !STATUS_B_ALARM_INTERRUPT);
        self.release();
    }

    /// Whether the alarm interrupt is on, and whether the alarm matched
    /// since register C was last read (reading clears that flag).
    pub fn alarm_state(&self) -> (bool, bool) {
        let enabled = self.read_register(REG_STATUS_B) & STATUS_B_ALARM_INTERRUPT != 0;
        let matched = self.read_register(REG_STATUS_C) & STATUS_C_ALARM_FLAG != 0;
        self.release();
        (enabled, matched)
    }

    /// Sets the date and time, halting updates with the SET bit meanwhile.
    pub fn write(&self, time: &DateTime) -> Result<(), RtcError> {
        let status_b = self.read_register(REG_STATUS_B);
        let raw = match convert::encode(time, status_b) {
            Ok(raw) => raw,
            Err(err) => {
                self.release();
                return Err(err);
            }
        };
        self.write_register(REG_STATUS_B, status_b | STATUS_B_SET);
        self.write_register(REG_SECONDS, raw.second);
        self.write_register(REG_MINUTES, raw.minute);
        self.write_register(REG_HOURS, raw.hour);
        let weekday = time.day_of_week();
        let weekday = if status_b & convert::STATUS_B_BINARY != 0 {
            weekday
        } else {
            convert::binary_to_bcd(weekday)
        };
        self.write_register(REG_DAY_OF_WEEK, weekday);
        self.write_register(REG_DAY, raw.day);
        self.write_register(REG_MONTH, raw.month);
        self.write_register(REG_YEAR, raw.year);
        self.write_register(self.century_register, raw.century);
        self.write_register(REG_STATUS_B, status_b & !STATUS_B_SET);
        self.release();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::convert::*;
    use super::*;

    fn dt(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    #[test]
    fn bcd_round_trip() {
        assert_eq!(bcd_to_binary(0x59), Some(59));
        assert_eq!(bcd_to_binary(0x00), Some(0));
        assert_eq!(bcd_to_binary(0x5a), None);
        assert_eq!(bcd_to_binary(0xa0), None);
        for v in 0..100 {
            assert_eq!(bcd_to_binary(binary_to_bcd(v)), Some(v));
        }
    }

    #[test]
    fn decode_bcd_24_hour() {
        let raw = RawTime {
            second: 0x07,
            minute: 0x45,
            hour: 0x23,
            day: 0x29,
            month: 0x02,
            year: 0x24,
            century: 0x20,
        };
        assert_eq!(
            decode(raw, STATUS_B_24_HOUR),
            Ok(dt(2024, 2, 29, 23, 45, 7))
        );
    }

    #[test]
    fn decode_binary_12_hour() {
        let mut raw = RawTime {
            second: 59,
            minute: 0,
            hour: 12,
            day: 31,
            month: 12,
            year: 99,
            century: 19,
        };
        // 12 AM is midnight.
        assert_eq!(decode(raw, STATUS_B_BINARY), Ok(dt(1999, 12, 31, 0, 0, 59)));
        raw.hour = 12 | HOUR_PM;
        assert_eq!(decode(raw, STATUS_B_BINARY).unwrap().hour, 12);
        raw.hour = 11 | HOUR_PM;
        assert_eq!(decode(raw, STATUS_B_BINARY).unwrap().hour, 23);
        raw.hour = 1;
        assert_eq!(decode(raw, STATUS_B_BINARY).unwrap().hour, 1);
        raw.hour = 0;
        assert_eq!(decode(raw, STATUS_B_BINARY), Err(RtcError::Hour(0)));
    }

    #[test]
    fn decode_bcd_12_hour_pm() {
        let raw = RawTime {
            second: 0x30,
            minute: 0x15,
            hour: 0x11 | HOUR_PM,
            day: 0x01,
            month: 0x07,
            year: 0x26,
            century: 0x20,
        };
        assert_eq!(decode(raw, 0), Ok(dt(2026, 7, 1, 23, 15, 30)));
    }

    #[test]
    fn missing_century_register_means_20xx() {
        let raw = RawTime {
            second: 0,
            minute: 0,
            hour: 0,
            day: 1,
            month: 1,
            year: 0x25,
            century: 0xff,
        };
        assert_eq!(decode(raw, STATUS_B_24_HOUR).unwrap().year, 2025);
        let raw = RawTime { century: 0, ..raw };
        assert_eq!(decode(raw, STATUS_B_24_HOUR).unwrap().year, 2025);
    }

    #[test]
    fn decode_rejects_garbage() {
        let raw = RawTime {
            second: 0x61,
            minute: 0,
            hour: 0,
            day: 1,
            month: 1,
            year: 0x25,
            century: 0x20,
        };
        assert_eq!(decode(raw, STATUS_B_24_HOUR), Err(RtcError::Second(61)));
        let raw = RawTime {
            second: 0x1f,
            ..raw
        };
        assert_eq!(decode(raw, STATUS_B_24_HOUR), Err(RtcError::Second(0x1f)));
        let raw = RawTime {
            second: 0,
            day: 0x31,
            month: 0x04,
            ..raw
        };
        assert_eq!(decode(raw, STATUS_B_24_HOUR), Err(RtcError::Day(31)));
    }

    #[test]
    fn encode_round_trips_in_every_mode() {
        let times = [
            dt(2024, 2, 29, 0, 0, 0),
            dt(2024, 2, 29, 12, 30, 1),
            dt(1999, 12, 31, 23, 59, 59),
            dt(2100, 1, 1, 11, 0, 0),
        ];
        for status_b in [
            0,
            STATUS_B_BINARY,
            STATUS_B_24_HOUR,
            STATUS_B_BINARY | STATUS_B_24_HOUR,
        ] {
            for time in times {
                let raw = encode(&time, status_b).unwrap();
                assert_eq!(decode(raw, status_b), Ok(time), "mode {status_b:#x}");
            }
        }
        let raw = encode(&dt(2024, 6, 1, 13, 5, 0), 0).unwrap();
        assert_eq!(raw.hour, 0x01 | HOUR_PM);
        assert_eq!(raw.century, 0x20);
        assert_eq!(raw.year, 0x24);
    }

    #[test]
    fn validation() {
        assert_eq!(dt(2023, 2, 29, 0, 0, 0).validate(), Err(RtcError::Day(29)));
        assert_eq!(dt(2000, 2, 29, 0, 0, 0).validate(), Ok(()));
        assert_eq!(dt(1900, 2, 29, 0, 0, 0).validate(), Err(RtcError::Day(29)));
        assert_eq!(
            dt(1899, 1, 1, 0, 0, 0).validate(),
            Err(RtcError::Year(1899))
        );
        assert_eq!(
            dt(2024, 13, 1, 0, 0, 0).validate(),
            Err(RtcError::Month(13))
        );
        assert_eq!(dt(2024, 1, 1, 24, 0, 0).validate(), Err(RtcError::Hour(24)));
        assert_eq!(
            dt(2024, 1, 1, 0, 60, 0).validate(),
            Err(RtcError::Minute(60))
        );
        assert_eq!(
            dt(2024, 1, 1, 0, 0, 60).validate(),
            Err(RtcError::Second(60))
        );
        assert!(encode(&dt(2024, 4, 31, 0, 0, 0), 0).is_err());
    }

    #[test]
    fn day_of_week() {
        assert_eq!(dt(2024, 1, 1, 0, 0, 0).day_of_week(), 2); // Monday
        assert_eq!(dt(2000, 2, 29, 0, 0, 0).day_of_week(), 3); // Tuesday
        assert_eq!(dt(1970, 1, 1, 0, 0, 0).day_of_week(), 5); // Thursday
        assert_eq!(dt(2026, 5, 17, 0, 0, 0).day_of_week(), 1); // Sunday
    }

    #[test]
    fn alarm_registers_round_trip() {
        for status_b in [
            0,
            STATUS_B_BINARY,
            STATUS_B_24_HOUR,
            STATUS_B_BINARY | STATUS_B_24_HOUR,
        ] {
            for (h, m, s) in [(0, 0, 0), (12, 30, 1), (23, 59, 59), (13, 5, 7)] {
                let raw = encode_alarm(h, m, s, status_b).unwrap();
                assert_eq!(decode_alarm(raw, status_b), Ok((h, m, s)), "{status_b:#x}");
            }
        }
        // BCD 24-hour, QEMU's default format.
        assert_eq!(
            encode_alarm(23, 45, 7, STATUS_B_24_HOUR),
            Ok(RawAlarm {
                second: 0x07,
                minute: 0x45,
                hour: 0x23
            })
        );
        // 12-hour BCD: 1 PM.
        assert_eq!(encode_alarm(13, 0, 0, 0).unwrap().hour, 0x01 | HOUR_PM);
        assert_eq!(
            encode_alarm(24, 0, 0, STATUS_B_24_HOUR),
            Err(RtcError::Hour(24))
        );
        // "Don't care" codes are no time of day.
        let dont_care = RawAlarm {
            second: 0xc0,
            minute: 0,
            hour: 0,
        };
        assert!(decode_alarm(dont_care, STATUS_B_24_HOUR).is_err());
    }

    #[test]
    fn century_register_choice() {
        assert_eq!(Rtc::new(None).century_register, 0x32);
        assert_eq!(Rtc::new(Some(0)).century_register, 0x32);
        assert_eq!(Rtc::new(Some(0x48)).century_register, 0x48);
    }
}
