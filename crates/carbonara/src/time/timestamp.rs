//! Timestamps: epoch seconds, numpy's ISO 8601 dates, `now`/`today` and relative times.

use super::civil::{days_from_civil, days_in_month};
use super::number::{is_c_space, parse_u128, python_float, seconds_to_ns};
use super::timespan::{Cursor, parse_duration_words, parse_timespan};
use super::{
    NS_PER_DAY, NS_PER_SEC, SECS_PER_DAY, TimeError, Timestamp, TimestampKind, unconvertible,
};

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

/// Classify a timestamp string (see [`TimestampKind`]); `None` if it is none of them.
pub fn classify_timestamp(s: &str) -> Option<TimestampKind> {
    if python_float(s).is_some() {
        Some(TimestampKind::Epoch)
    } else if parse_iso_ns(s, 0).is_some() {
        Some(TimestampKind::Iso)
    } else if parse_duration_words(s).is_some() {
        Some(TimestampKind::Relative)
    } else {
        None
    }
}

/// Parse a timestamp string of any kind; `now` is the current time (used by
/// relative times and `now`/`today`). Epoch results are not checked here.
pub fn parse_timestamp(s: &str, now: Timestamp) -> Result<Timestamp, TimeError> {
    if let Some(secs) = python_float(s) {
        return timestamp_from_epoch_seconds(secs);
    }
    if let Some(ns) = parse_iso_ns(s, now) {
        return iso_to_timestamp(ns);
    }
    match parse_duration_words(s) {
        Some(span) => now.checked_add(span).ok_or_else(unconvertible),
        None => Err(unconvertible()),
    }
}

/// Parse `s` as a timestamp of the given kind, as upstream parses every
/// element of a measures list in the format of the first one:
/// - `Epoch`: only numbers;
/// - `Iso`: only dates (a bare `2015` then reads as the year 2015, as numpy
///   reads it);
/// - `Relative`: timespans, numbers included (`10` is ten seconds from now).
///
/// Anything else is an error, which is how mixed lists are refused.
pub fn parse_timestamp_kind(
    s: &str,
    kind: TimestampKind,
    now: Timestamp,
) -> Result<Timestamp, TimeError> {
    match kind {
        TimestampKind::Epoch => match python_float(s) {
            Some(secs) => timestamp_from_epoch_seconds(secs),
            None => Err(unconvertible()),
        },
        TimestampKind::Iso => match parse_iso_ns(s, now) {
            Some(ns) => iso_to_timestamp(ns),
            None => Err(unconvertible()),
        },
        TimestampKind::Relative => {
            let span = parse_timespan(s).map_err(|_| unconvertible())?;
            now.checked_add(span).ok_or_else(unconvertible)
        }
    }
}

/// Seconds since the epoch (JSON number) to a timestamp.
///
/// Same arithmetic as upstream (`seconds * 1e9` as a double, truncated), so
/// `1425652437.123456` lands on the very nanosecond upstream stores.
pub fn timestamp_from_epoch_seconds(secs: f64) -> Result<Timestamp, TimeError> {
    if !secs.is_finite() {
        return Err(unconvertible());
    }
    match seconds_to_ns(secs) {
        Some(ns) => Ok(ns),
        None if secs < 0.0 => Err(TimeError::BeforeEpoch),
        None => Err(unconvertible()),
    }
}

/// Upstream refuses any timestamp before 1970-01-01T00:00:00Z.
pub fn check_after_epoch(ts: Timestamp) -> Result<Timestamp, TimeError> {
    if ts < 0 {
        Err(TimeError::BeforeEpoch)
    } else {
        Ok(ts)
    }
}

/// A parsed date is exact but may not fit: far past dates are simply before
/// the epoch; far future ones cannot be stored.
fn iso_to_timestamp(ns: i128) -> Result<Timestamp, TimeError> {
    match i64::try_from(ns) {
        Ok(ts) => Ok(ts),
        Err(_) if ns < 0 => Err(TimeError::BeforeEpoch),
        Err(_) => Err(unconvertible()),
    }
}

/// numpy's `datetime64` string parser, to nanoseconds (as i128: the date may
/// be outside the i64 range). `None` where numpy raises or yields NaT.
///
/// Grammar: `now` or `today` (any case, nothing around them); else optional
/// leading whitespace, `[+-]YYYY[-MM[-DD[(T| )hh[:mm[:ss[.f{0,18}]]][tz]]]]`
/// with `tz` = `Z` | `±hh[[:]mm]`, and trailing whitespace only after a time.
/// Offsets are converted to UTC. Unlike numpy, the empty string and `NaT`
/// are refused rather than turned into a not-a-time.
fn parse_iso_ns(s: &str, now: Timestamp) -> Option<i128> {
    // In i128: flooring a `now` near i64::MIN must not overflow.
    let floored = |unit: i64| i128::from(now) - i128::from(now.rem_euclid(unit));
    if s.eq_ignore_ascii_case("now") {
        // numpy resolves `now` to the second.
        return Some(floored(NS_PER_SEC));
    }
    if s.eq_ignore_ascii_case("today") {
        return Some(floored(NS_PER_DAY));
    }
    let mut c = Cursor::new(s);
    while c.peek().is_some_and(is_c_space) {
        c.pos += 1;
    }
    let negative_year = if c.eat(b'-') {
        true
    } else {
        c.eat(b'+');
        false
    };
    let year_digits = c.digits();
    // numpy takes any number of digits; beyond 9 nothing could be stored.
    if year_digits.is_empty() || year_digits.len() > 9 {
        return None;
    }
    let year = i64::try_from(parse_u128(year_digits)?).ok()?;
    let year = if negative_year { -year } else { year };

    let (mut month, mut day) = (1, 1);
    let mut secs_of_day: i64 = 0;
    let mut frac_ns: i64 = 0;
    let mut offset_secs: i64 = 0;

    if !c.at_end() {
        if !c.eat(b'-') {
            return None;
        }
        month = two_digits(&mut c)?;
        if !(1..=12).contains(&month) {
            return None;
        }
        if !c.at_end() {
            if !c.eat(b'-') {
                return None;
            }
            day = two_digits(&mut c)?;
            if day < 1 || day > days_in_month(year, month) {
                return None;
            }
            if !c.at_end() {
                if !(c.eat(b'T') || c.eat(b' ')) {
                    return None;
                }
                let (sod, frac) = parse_iso_time(&mut c)?;
                secs_of_day = sod;
                frac_ns = frac;
                offset_secs = parse_iso_offset(&mut c)?;
                while c.peek().is_some_and(is_c_space) {
                    c.pos += 1;
                }
                if !c.at_end() {
                    return None;
                }
            }
        }
    }

    let days = i128::from(days_from_civil(year, month, day));
    let secs = days * i128::from(SECS_PER_DAY) + i128::from(secs_of_day - offset_secs);
    Some(secs * i128::from(NS_PER_SEC) + i128::from(frac_ns))
}

fn two_digits(c: &mut Cursor<'_>) -> Option<i64> {
    let d = c.fixed_digits(2)?.as_bytes();
    Some(i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
}

/// `hh[:mm[:ss[.f]]]` → (seconds of day, nanoseconds of fraction, truncated).
fn parse_iso_time(c: &mut Cursor<'_>) -> Option<(i64, i64)> {
    let hour = two_digits(c)?;
    if hour > 23 {
        return None;
    }
    let (mut minute, mut second, mut frac_ns) = (0, 0, 0);
    if c.eat(b':') {
        minute = two_digits(c)?;
        if minute > 59 {
            return None;
        }
        if c.eat(b':') {
            second = two_digits(c)?;
            // numpy knows no leap seconds.
            if second > 59 {
                return None;
            }
            if c.eat(b'.') {
                let frac = c.digits();
                // numpy's finest unit is the attosecond.
                if frac.len() > 18 {
                    return None;
                }
                frac_ns = frac
                    .bytes()
                    .chain(std::iter::repeat(b'0'))
                    .take(9)
                    .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
            }
        }
    }
    Some((hour * 3600 + minute * 60 + second, frac_ns))
}

/// Optional `Z` or `±hh[[:]mm]`; returns the offset east of UTC in seconds.
fn parse_iso_offset(c: &mut Cursor<'_>) -> Option<i64> {
    let sign = match c.peek() {
        Some(b'Z') => {
            c.pos += 1;
            return Some(0);
        }
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Some(0),
    };
    c.pos += 1;
    let hours = two_digits(c)?;
    if hours > 23 {
        return None;
    }
    let mut minutes = 0;
    if !c.at_end() {
        c.eat(b':');
        minutes = two_digits(c)?;
        if minutes > 59 {
            return None;
        }
    }
    Some(sign * (hours * 3600 + minutes * 60))
}
