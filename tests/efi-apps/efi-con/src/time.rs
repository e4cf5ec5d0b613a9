//! EFI_TIME arithmetic the test applications share.

use r_efi::efi::Time;

/// Moves `time` one hour on, into the next day, month or year as needed.
pub fn one_hour_later(time: &mut Time) {
    if time.hour < 23 {
        time.hour += 1;
        return;
    }
    time.hour = 0;
    let leap = time.year.is_multiple_of(4)
        && (!time.year.is_multiple_of(100) || time.year.is_multiple_of(400));
    let days = match time.month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if time.day < days {
        time.day += 1;
        return;
    }
    time.day = 1;
    if time.month < 12 {
        time.month += 1;
    } else {
        time.month = 1;
        time.year += 1;
    }
}
