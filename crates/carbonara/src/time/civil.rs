//! Proleptic Gregorian calendar: days since the epoch to dates and back.

pub(super) fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(super) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Proleptic Gregorian calendar arithmetic, counted in 400-year cycles
// (146097 days, the calendar's exact period) of years starting on March 1st,
// so that the leap day is the last day of its year and month lengths follow
// a fixed pattern from March.
const DAYS_PER_CYCLE: i64 = 146_097;
/// Days from 0000-03-01 to 1970-01-01.
const EPOCH_SHIFT: i64 = 719_468;

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12, valid day).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let cycle = y.div_euclid(400);
    let year_of_cycle = y.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    cycle * DAYS_PER_CYCLE + day_of_cycle - EPOCH_SHIFT
}

/// Inverse of [`days_from_civil`]: (year, month 1..=12, day 1..=31).
///
/// On the measures read path: after the one signed split into 400-year
/// cycles, everything is small unsigned arithmetic, which the compiler turns
/// into multiplications.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + EPOCH_SHIFT;
    let cycle = z.div_euclid(DAYS_PER_CYCLE);
    // In 0..146097 by construction.
    let day_of_cycle = z.rem_euclid(DAYS_PER_CYCLE) as u32;
    // Years are 365 days, minus the leap days not yet reached in the cycle.
    let year_of_cycle = (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36524
        - day_of_cycle / (DAYS_PER_CYCLE as u32 - 1))
        / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = i64::from(year_of_cycle) + cycle * 400 + i64::from(month <= 2);
    (year, month, day)
}
