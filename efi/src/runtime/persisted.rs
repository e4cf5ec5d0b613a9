//! The runtime services' own state that UEFI 2.10 requires to outlive a
//! reset, kept as NON_VOLATILE|BOOTSERVICE_ACCESS|RUNTIME_ACCESS variables
//! under [`VMFW_STATE_GUID`] (so they reach the disk through the same
//! persist hook as every other non-volatile variable, `\EFI\vmfw\vars.bin`):
//!
//! | name            | data                                  | rule                 |
//! |-----------------|---------------------------------------|----------------------|
//! | `MonotonicHigh` | u32 LE: the monotonic count's high half | §7.5.3, §8.5.2     |
//! | `TimeZone`      | i16 LE TimeZone, u8 Daylight          | §8.3.1/§8.3.2        |
//! | `WakeupTime`    | EFI_TIME (16 bytes), u8 enabled       | §8.3.3/§8.3.4        |
//!
//! The CMOS clock keeps neither the time zone nor the daylight flags nor a
//! wakeup date, and nothing keeps a counter across resets, hence these.
//! After ExitBootServices a change updates the RAM copy and the journal
//! ([`super::journal`]; the disk belongs to the OS), like any SetVariable
//! at runtime, and reaches the disk at the next start after a warm reset.
//!
//! Decoding is pure and total: a malformed value reads as absent.

use uefi_raw::time::{Daylight, Time};
use uefi_raw::{Guid, Status, guid};

use super::time::validate_time;
use super::variable_services::{set_variable_persisting, with_variables};
use crate::variables::Attributes;

/// Vendor GUID of the firmware's own state variables.
pub const VMFW_STATE_GUID: Guid = guid!("c0884b71-b08e-4595-8693-7855edfb1b37");

const ATTRIBUTES: Attributes = Attributes::NON_VOLATILE
    .union(Attributes::BOOTSERVICE_ACCESS)
    .union(Attributes::RUNTIME_ACCESS);

/// An ASCII name as the UCS-2 units the store takes (no NUL).
const fn ucs2<const N: usize>(ascii: &str) -> [u16; N] {
    let bytes = ascii.as_bytes();
    let mut units = [0u16; N];
    let mut index = 0;
    while index < N {
        units[index] = bytes[index] as u16;
        index += 1;
    }
    units
}

pub const MONOTONIC_HIGH_NAME: [u16; 13] = ucs2("MonotonicHigh");
pub const TIME_ZONE_NAME: [u16; 8] = ucs2("TimeZone");
pub const WAKEUP_NAME: [u16; 10] = ucs2("WakeupTime");

/// Size of an EFI_TIME (§8.3.1).
const TIME_SIZE: usize = 16;

pub fn encode_monotonic_high(high: u32) -> [u8; 4] {
    high.to_le_bytes()
}

pub fn decode_monotonic_high(data: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(data.try_into().ok()?))
}

pub fn encode_time_zone(time_zone: i16, daylight: u8) -> [u8; 3] {
    let zone = time_zone.to_le_bytes();
    [zone[0], zone[1], daylight]
}

/// The stored zone and daylight flags, when they are values SetTime
/// accepts (§8.3.1 ranges).
pub fn decode_time_zone(data: &[u8]) -> Option<(i16, u8)> {
    let [low, high, daylight] = *<&[u8; 3]>::try_from(data).ok()?;
    let zone = i16::from_le_bytes([low, high]);
    let valid_zone = (-1440..=1440).contains(&zone) || zone == Time::UNSPECIFIED_TIMEZONE;
    let flags = (Daylight::ADJUST_DAYLIGHT | Daylight::IN_DAYLIGHT).bits();
    (valid_zone && daylight & !flags == 0).then_some((zone, daylight))
}

/// The wakeup alarm as last set: the caller's EFI_TIME and whether it is
/// armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeupRecord {
    pub time: Time,
    pub enabled: bool,
}

pub fn encode_wakeup(record: &WakeupRecord) -> [u8; TIME_SIZE + 1] {
    let t = &record.time;
    let mut out = [0u8; TIME_SIZE + 1];
    out[0..2].copy_from_slice(&t.year.to_le_bytes());
    out[2] = t.month;
    out[3] = t.day;
    out[4] = t.hour;
    out[5] = t.minute;
    out[6] = t.second;
    out[8..12].copy_from_slice(&t.nanosecond.to_le_bytes());
    out[12..14].copy_from_slice(&t.time_zone.to_le_bytes());
    out[14] = t.daylight.bits();
    out[TIME_SIZE] = u8::from(record.enabled);
    out
}

/// The stored record, when its time passes SetWakeupTime's checks.
pub fn decode_wakeup(data: &[u8]) -> Option<WakeupRecord> {
    let bytes: &[u8; TIME_SIZE + 1] = data.try_into().ok()?;
    let time = Time {
        year: u16::from_le_bytes([bytes[0], bytes[1]]),
        month: bytes[2],
        day: bytes[3],
        hour: bytes[4],
        minute: bytes[5],
        second: bytes[6],
        pad1: 0,
        nanosecond: u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        time_zone: i16::from_le_bytes([bytes[12], bytes[13]]),
        daylight: Daylight::from_bits_retain(bytes[14]),
        pad2: 0,
    };
    validate_time(&time).ok()?;
    let enabled = match bytes[TIME_SIZE] {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some(WakeupRecord { time, enabled })
}

/// Runs `decode` on a state variable's data; None when it is absent, the
/// store is not set up, or the data is malformed. Allocates nothing, so it
/// works at runtime.
fn load<T>(name: &[u16], decode: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
    with_variables(|store| {
        store
            .find(name, &VMFW_STATE_GUID)
            .and_then(|v| decode(v.data))
    })
    .flatten()
}

fn store(name: &[u16], data: &[u8]) -> Status {
    set_variable_persisting(name, &VMFW_STATE_GUID, ATTRIBUTES, data)
}

pub fn load_monotonic_high() -> Option<u32> {
    load(&MONOTONIC_HIGH_NAME, decode_monotonic_high)
}

pub fn store_monotonic_high(high: u32) -> Status {
    store(&MONOTONIC_HIGH_NAME, &encode_monotonic_high(high))
}

pub fn load_time_zone() -> Option<(i16, u8)> {
    load(&TIME_ZONE_NAME, decode_time_zone)
}

pub fn store_time_zone(time_zone: i16, daylight: u8) -> Status {
    store(&TIME_ZONE_NAME, &encode_time_zone(time_zone, daylight))
}

pub fn load_wakeup() -> Option<WakeupRecord> {
    load(&WAKEUP_NAME, decode_wakeup)
}

pub fn store_wakeup(record: &WakeupRecord) -> Status {
    store(&WAKEUP_NAME, &encode_wakeup(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_ucs2() {
        assert_eq!(
            String::from_utf16(&MONOTONIC_HIGH_NAME).unwrap(),
            "MonotonicHigh"
        );
        assert_eq!(String::from_utf16(&TIME_ZONE_NAME).unwrap(), "TimeZone");
        assert_eq!(String::from_utf16(&WAKEUP_NAME).unwrap(), "WakeupTime");
    }

    #[test]
    fn monotonic_high_round_trips() {
        for high in [0, 1, 0x1234_5678, u32::MAX] {
            assert_eq!(
                decode_monotonic_high(&encode_monotonic_high(high)),
                Some(high)
            );
        }
        assert_eq!(decode_monotonic_high(&[1, 2, 3]), None);
        assert_eq!(decode_monotonic_high(&[1, 2, 3, 4, 5]), None);
    }

    #[test]
    fn time_zone_round_trips_and_rejects_garbage() {
        for (zone, daylight) in [(0, 0), (-1440, 3), (1440, 1), (60, 2), (2047, 0)] {
            assert_eq!(
                decode_time_zone(&encode_time_zone(zone, daylight)),
                Some((zone, daylight))
            );
        }
        assert_eq!(decode_time_zone(&encode_time_zone(1441, 0)), None);
        assert_eq!(decode_time_zone(&encode_time_zone(0, 4)), None);
        assert_eq!(decode_time_zone(&[0, 0]), None);
        assert_eq!(decode_time_zone(&[0, 0, 0, 0]), None);
    }

    #[test]
    fn wakeup_round_trips_and_rejects_garbage() {
        let record = WakeupRecord {
            time: Time {
                year: 2026,
                month: 12,
                day: 7,
                hour: 23,
                minute: 59,
                second: 58,
                pad1: 0,
                nanosecond: 5,
                time_zone: -300,
                daylight: Daylight::ADJUST_DAYLIGHT,
                pad2: 0,
            },
            enabled: true,
        };
        let bytes = encode_wakeup(&record);
        assert_eq!(decode_wakeup(&bytes), Some(record));
        let disabled = WakeupRecord {
            enabled: false,
            ..record
        };
        assert_eq!(decode_wakeup(&encode_wakeup(&disabled)), Some(disabled));
        let mut bad = bytes;
        bad[2] = 13; // month
        assert_eq!(decode_wakeup(&bad), None);
        let mut bad = bytes;
        bad[16] = 2; // neither enabled nor disabled
        assert_eq!(decode_wakeup(&bad), None);
        assert_eq!(decode_wakeup(&bytes[..16]), None);
    }
}
