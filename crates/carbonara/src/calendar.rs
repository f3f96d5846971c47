//! Calendar groupings for resampling: years (`Y`), half-years (`H`), quarters
//! (`Q`), months (`M`) and weeks starting on Sunday (`W`), all in UTC.
//!
//! A calendar period has no fixed length, so it cannot be a granularity in
//! nanoseconds: [`Sampling`] is either a fixed span or a [`Calendar`] grouping.
//! Bucketing computes the calendar once per *bucket* (the start of the next
//! period bounds the scan), never per point.

use crate::aggregate::{Bucket, decompose, derive, reduce_buckets};
use crate::aggregated::AggregatedTimeSerie;
use crate::method::Method;
use crate::time::Timestamp;

const NS_PER_DAY: i64 = 86_400 * crate::time::NS_PER_SEC;
/// 1970-01-01 was a Thursday: the first Sunday after the epoch is day 3.
const EPOCH_SUNDAY: i64 = 3;

/// A calendar grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Calendar {
    /// January 1st.
    Year,
    /// January 1st and July 1st.
    Half,
    /// January, April, July and October 1st.
    Quarter,
    /// First day of the month.
    Month,
    /// Sunday 00:00.
    Week,
}

/// How a series is regrouped: a fixed span (ns) or calendar periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sampling {
    Fixed(i64),
    Calendar(Calendar),
}

impl Calendar {
    /// `Y`, `H`, `Q`, `M` or `W`, exactly (upstream's spellings).
    pub fn parse(s: &str) -> Option<Calendar> {
        Some(match s {
            "Y" => Calendar::Year,
            "H" => Calendar::Half,
            "Q" => Calendar::Quarter,
            "M" => Calendar::Month,
            "W" => Calendar::Week,
            _ => return None,
        })
    }

    /// The letter upstream renders in place of a granularity.
    pub fn letter(self) -> &'static str {
        match self {
            Calendar::Year => "Y",
            Calendar::Half => "H",
            Calendar::Quarter => "Q",
            Calendar::Month => "M",
            Calendar::Week => "W",
        }
    }

    /// Start of the period holding `ts`. Saturates instead of overflowing.
    pub fn floor(self, ts: Timestamp) -> Timestamp {
        let day = ts.div_euclid(NS_PER_DAY);
        let start_day = match self {
            Calendar::Week => day - (day - EPOCH_SUNDAY).rem_euclid(7),
            _ => {
                let (y, m, _) = civil_from_days(day);
                let first_month = match self {
                    Calendar::Year => 1,
                    Calendar::Half => 1 + (m - 1) / 6 * 6,
                    Calendar::Quarter => 1 + (m - 1) / 3 * 3,
                    _ => m,
                };
                days_from_civil(y, first_month, 1)
            }
        };
        start_day.saturating_mul(NS_PER_DAY)
    }

    /// Start of the period after the one starting at `period_start`.
    pub fn next(self, period_start: Timestamp) -> Timestamp {
        let day = period_start.div_euclid(NS_PER_DAY);
        let next_day = match self {
            Calendar::Week => day + 7,
            _ => {
                let months = match self {
                    Calendar::Year => 12,
                    Calendar::Half => 6,
                    Calendar::Quarter => 3,
                    _ => 1,
                };
                let (y, m, _) = civil_from_days(day);
                let total = y * 12 + (m - 1) + months;
                days_from_civil(total.div_euclid(12), total.rem_euclid(12) + 1, 1)
            }
        };
        next_day.saturating_mul(NS_PER_DAY)
    }
}

impl Sampling {
    /// `Y|H|Q|M|W` or nothing: fixed spans are parsed by the caller.
    pub fn calendar(s: &str) -> Option<Sampling> {
        Calendar::parse(s).map(Sampling::Calendar)
    }
}

/// Find the calendar buckets of sorted `timestamps` into `out` (cleared first).
/// Unsorted input never panics; each bucket holds at least one point.
pub(crate) fn calendar_bounds(timestamps: &[Timestamp], cal: Calendar, out: &mut Vec<Bucket>) {
    out.clear();
    let n = timestamps.len();
    let mut i = 0;
    while i < n {
        let start = cal.floor(timestamps[i]);
        let end = cal.next(start);
        let j = i + 1 + timestamps[i + 1..].partition_point(|&t| t < end && t >= start);
        out.push(Bucket {
            start,
            lo: i,
            hi: j,
        });
        i = j;
    }
}

/// Regroup a series into calendar periods with carbonara's per-bucket
/// semantics for `method` (`rate:` methods derive the points first). The
/// result's `granularity` is left at 0: a calendar period has no fixed span.
pub fn resample(
    timestamps: &[Timestamp],
    values: &[f64],
    cal: Calendar,
    method: Method,
) -> AggregatedTimeSerie {
    let n = timestamps.len().min(values.len());
    let (rate, base) = decompose(method);
    let derived;
    let (ts, vals) = if rate {
        derived = derive(&timestamps[..n], &values[..n]);
        (&derived.0[..], &derived.1[..])
    } else {
        (&timestamps[..n], &values[..n])
    };
    let mut buckets = Vec::new();
    calendar_bounds(ts, cal, &mut buckets);
    let mut out = AggregatedTimeSerie::empty(0);
    let mut scratch = Vec::new();
    reduce_buckets(&buckets, vals, base, &mut scratch, &mut out);
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i64, m: i64, d: i64) -> Timestamp {
        days_from_civil(y, m, d) * NS_PER_DAY
    }

    #[test]
    fn civil_roundtrip() {
        for d in -800_000..800_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn periods_start_where_upstream_says() {
        let t = day(2015, 4, 1) + 3600 * crate::time::NS_PER_SEC;
        assert_eq!(Calendar::Year.floor(t), day(2015, 1, 1));
        assert_eq!(Calendar::Half.floor(t), day(2015, 1, 1));
        assert_eq!(Calendar::Quarter.floor(t), day(2015, 4, 1));
        assert_eq!(Calendar::Month.floor(t), day(2015, 4, 1));
        // 2015-04-01 is a Wednesday.
        assert_eq!(Calendar::Week.floor(t), day(2015, 3, 29));
        assert_eq!(Calendar::Week.floor(day(2015, 3, 1)), day(2015, 3, 1));
        assert_eq!(Calendar::Week.floor(0), day(1969, 12, 28));
        assert_eq!(Calendar::Half.floor(day(2015, 10, 6)), day(2015, 7, 1));
        assert_eq!(Calendar::Quarter.next(day(2015, 10, 1)), day(2016, 1, 1));
        assert_eq!(Calendar::Half.next(day(2015, 7, 1)), day(2016, 1, 1));
        assert_eq!(Calendar::Month.next(day(2016, 12, 1)), day(2017, 1, 1));
        assert_eq!(Calendar::Year.next(day(1969, 1, 1)), day(1970, 1, 1));
    }

    #[test]
    fn weekly_mean() {
        let ts = [day(2015, 3, 1), day(2015, 3, 6), day(2015, 4, 1)];
        let r = resample(&ts, &[10.0, 12.0, 2.0], Calendar::Week, Method::Mean);
        assert_eq!(r.timestamps, vec![day(2015, 3, 1), day(2015, 3, 29)]);
        assert_eq!(r.values, vec![11.0, 2.0]);
    }

    #[test]
    fn extreme_timestamps_do_not_panic() {
        for cal in [
            Calendar::Year,
            Calendar::Half,
            Calendar::Quarter,
            Calendar::Month,
            Calendar::Week,
        ] {
            for t in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
                let f = cal.floor(t);
                let _ = cal.next(f);
            }
            let ts = [i64::MIN, 0, i64::MAX];
            let _ = resample(&ts, &[1.0, 2.0, 3.0], cal, Method::Mean);
        }
    }
}
