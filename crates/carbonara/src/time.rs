//! Time: nanosecond timestamps and upstream's input/output formats.
//!
//! Upstream reads times through three libraries (Python's `float()`, numpy's
//! `datetime64` parser and pytimeparse) and renders them through Python's
//! `datetime`/`timedelta`. Clients depend on the exact set of accepted
//! spellings and on the exact renderings, so this module reproduces them,
//! down to upstream's float arithmetic where that decides a nanosecond. Where
//! upstream is merely accidental (NaT for an empty string, 28-digit decimal
//! rounding in pytimeparse) it does the sane thing instead and says so.
//!
//! Every parser here takes untrusted input: no panics, no overflow, errors
//! instead.

mod civil;
mod format;
mod number;
mod timespan;
mod timestamp;

pub use format::{format_iso, format_measure_timestamp, format_seconds, format_timedelta};
pub use timespan::{
    check_positive_timespan, parse_positive_timespan, parse_timespan, timespan_from_seconds,
};
pub use timestamp::{
    check_after_epoch, classify_timestamp, parse_timestamp, parse_timestamp_kind,
    timestamp_from_epoch_seconds,
};

/// Nanoseconds since the Unix epoch, UTC. Measures before the epoch are rejected.
pub type Timestamp = i64;
pub const NS_PER_SEC: i64 = 1_000_000_000;

const NS_PER_MICRO: i64 = 1_000;
const SECS_PER_DAY: i64 = 86_400;
const NS_PER_DAY: i64 = SECS_PER_DAY * NS_PER_SEC;

/// Upstream's message for any timestamp it cannot read.
const UNCONVERTIBLE: &str = "Unable to convert timestamps";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Upstream's message for an unparsable timespan.
    #[error("Unable to parse timespan")]
    InvalidTimespan,
    #[error("Timespan must be positive")]
    NonPositiveTimespan,
    /// The string is neither a number, an ISO 8601 date nor a relative time.
    #[error("{0}")]
    InvalidTimestamp(String),
    #[error("Timestamp must be after Epoch")]
    BeforeEpoch,
}

fn unconvertible() -> TimeError {
    TimeError::InvalidTimestamp(UNCONVERTIBLE.to_owned())
}

/// How a timestamp string was written; upstream detects the format of a list of
/// measures from its first element and refuses lists that mix formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampKind {
    /// A number (JSON number or numeric string): seconds since the epoch.
    Epoch,
    /// An ISO 8601-like date (`2014-01-01 12:12:34`, `...T...Z`, `+01:00`), or `now`/`today`.
    Iso,
    /// A relative timespan added to now (`-5 minutes`, `+2h`).
    Relative,
}

/// Floor `ts` to a multiple of `granularity` since the epoch.
#[inline]
pub fn floor(ts: Timestamp, granularity: i64) -> Timestamp {
    ts - ts.rem_euclid(granularity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use civil::{civil_from_days, days_from_civil, days_in_month, is_leap_year};
    use format::{python_float_repr, round_half_even_div};
    use proptest::prelude::*;

    const S: i64 = NS_PER_SEC;
    /// 2017-12-10T08:10:42.123456789Z, an arbitrary "current time".
    const NOW: Timestamp = 1_512_893_442_123_456_789;

    /// Expected values computed with upstream's own code path (Python
    /// `float()`, pytimeparse, `int(seconds * 1e9)`).
    const UPSTREAM_TIMESPANS: &[(&str, i64)] = &[
        ("60", 60_000_000_000),
        ("1.5", 1_500_000_000),
        ("-3", -3_000_000_000),
        (" 42 ", 42_000_000_000),
        ("1e3", 1_000_000_000_000),
        ("1_000", 1_000_000_000_000),
        (".5", 500_000_000),
        ("5.", 5_000_000_000),
        ("1 hour", 3_600_000_000_000),
        ("1hour", 3_600_000_000_000),
        ("1h", 3_600_000_000_000),
        ("1 hr", 3_600_000_000_000),
        ("2 hrs", 7_200_000_000_000),
        ("5min", 300_000_000_000),
        ("5 mins", 300_000_000_000),
        ("5 minutes", 300_000_000_000),
        ("1 minute", 60_000_000_000),
        ("1m", 60_000_000_000),
        ("1 m", 60_000_000_000),
        ("1.2 minutes", 72_000_000_000),
        ("1.2 seconds", 1_200_000_000),
        ("1.5 hours", 5_400_000_000_000),
        ("0.5 d", 43_200_000_000_000),
        ("1 week", 604_800_000_000_000),
        ("2 weeks", 1_209_600_000_000_000),
        ("1w", 604_800_000_000_000),
        ("1 wk", 604_800_000_000_000),
        ("3 wks", 1_814_400_000_000_000),
        ("1 d", 86_400_000_000_000),
        ("1 dy", 86_400_000_000_000),
        ("2 dys", 172_800_000_000_000),
        ("1 day", 86_400_000_000_000),
        ("2 days", 172_800_000_000_000),
        ("1 s", 1_000_000_000),
        ("1 sec", 1_000_000_000),
        ("2 secs", 2_000_000_000),
        ("1 second", 1_000_000_000),
        ("10 seconds", 10_000_000_000),
        ("1m24s", 84_000_000_000),
        ("1 minute, 24 secs", 84_000_000_000),
        ("1h, 30m", 5_400_000_000_000),
        ("1h/30m", 5_400_000_000_000),
        ("1h 30m 10s", 5_410_000_000_000),
        ("1w2d3h4m5s", 788_645_000_000_000),
        ("1W 2D", 777_600_000_000_000),
        ("1 HOUR", 3_600_000_000_000),
        ("1 Minutes", 60_000_000_000),
        ("- 1 minute", -60_000_000_000),
        ("+ 1 minute", 60_000_000_000),
        ("-5 minutes", -300_000_000_000),
        ("+2h", 7_200_000_000_000),
        ("-1.5m 10s", -100_000_000_000),
        ("1.5m 10s", 100_000_000_000),
        ("1.5m 10.5s", 100_500_000_000),
        ("1.0001 minutes", 60_000_000_000),
        ("4.1m", 246_000_000_000),
        ("0.7 hours", 2_520_000_000_000),
        ("1.15 minutes", 69_000_000_000),
        ("1:24", 84_000_000_000),
        (":22", 22_000_000_000),
        ("1:30", 90_000_000_000),
        ("12:34", 754_000_000_000),
        ("1:00:00", 3_600_000_000_000),
        ("0:00:03.600000", 3_600_000_000),
        ("1 day, 0:00:00", 86_400_000_000_000),
        ("365 days, 0:00:00", 31_536_000_000_000_000),
        ("2 days, 1:02:03.5", 176_523_500_000_000),
        ("1:02:03:04", 93_784_000_000_000),
        ("1-02:03:04", 93_784_000_000_000),
        ("1:02:03:04.5", 93_784_500_000_000),
        ("1w 2d 3:04:05", 788_645_000_000_000),
        ("1.5 days, 1:00:00", 133_200_000_000_000),
        ("5m,", 300_000_000_000),
        ("5m, ", 300_000_000_000),
        ("1:30.5", 90_500_000_000),
        ("01:30", 90_000_000_000),
        (":22.5", 22_500_000_000),
        ("10 minutes", 600_000_000_000),
        ("1d1:00:00", 90_000_000_000_000),
        ("1 days2:00:00", 93_600_000_000_000),
        ("  -  5m", -300_000_000_000),
        ("5\tm", 300_000_000_000),
        ("5 m\n", 300_000_000_000),
        ("1.s", 1_000_000_000),
        ("1. m", 60_000_000_000),
        (".5 m", 30_000_000_000),
        ("0s", 0),
        ("0", 0),
        ("-0", 0),
        ("9223372036 seconds", 9_223_372_036_000_000_000),
        ("1e-10", 0),
        ("1.1", 1_100_000_000),
        ("0.1", 100_000_000),
        ("1e9", 1_000_000_000_000_000_000),
        ("1.000000001", 1_000_000_001),
        ("1.0000000015", 1_000_000_001),
        ("0.3 s", 300_000_000),
        ("0.1 s", 100_000_000),
        ("2.675 s", 2_675_000_000),
        ("1.5 hours 30 s", 5_430_000_000_000),
        ("1 h 1.5 s", 3_601_500_000_000),
    ];

    /// Strings upstream cannot read as a timespan (pytimeparse answers None,
    /// or the number does not fit numpy's int64 nanoseconds).
    const UPSTREAM_BAD_TIMESPANS: &[&str] = &[
        "inf",
        "nan",
        "-inf",
        "infinity",
        "123:45",
        "5s,",
        "5m,,2s",
        "",
        "   ",
        "1 shenanigan",
        "1ms",
        "1 mo",
        "1 year",
        "1.2.3 hours",
        ". hours",
        "5 m 5 m",
        "5s 5m",
        "1h 1w",
        "1:3",
        "1:30.",
        "0:0:00",
        ":2",
        "1 hour ago",
        "--5m",
        "+-5m",
        "1.2.3",
        "1..5s",
        "1 hour 1 hour",
        "99999999999 weeks",
        "9223372037 seconds",
        "9.3e9",
        "1/2",
        "1_",
        "_1",
        "1__0",
        "P1D",
        "PT5M",
        "1 µs",
        "５m",
        "1 h\u{0}",
        "1:00:00:00:00",
        "-",
        "+",
        ".",
        "e5",
    ];

    #[test]
    fn timespans_parse_exactly_as_upstream() {
        for &(s, ns) in UPSTREAM_TIMESPANS {
            assert_eq!(parse_timespan(s), Ok(ns), "{s:?}");
        }
    }

    #[test]
    fn unreadable_timespans_are_refused_with_upstream_message() {
        for s in UPSTREAM_BAD_TIMESPANS {
            assert_eq!(parse_timespan(s), Err(TimeError::InvalidTimespan), "{s:?}");
        }
        assert_eq!(
            TimeError::InvalidTimespan.to_string(),
            "Unable to parse timespan"
        );
    }

    #[test]
    fn non_seconds_decimals_truncate_to_whole_seconds_exactly() {
        // Exact decimal arithmetic: no float error pushes these one second short.
        assert_eq!(parse_timespan("4.1m"), Ok(246 * S));
        assert_eq!(parse_timespan("0.29 hours"), Ok(1044 * S));
        assert_eq!(parse_timespan("1.99999 minutes"), Ok(119 * S));
        assert_eq!(
            parse_timespan("0.0166666666666666666666666666667 minutes"),
            Ok(S)
        );
        // A long fraction whose exact product stays below one second.
        assert_eq!(
            parse_timespan("0.016666666666666666666666666666 minutes"),
            Ok(0)
        );
    }

    #[test]
    fn positive_timespans() {
        assert_eq!(parse_positive_timespan("1 second"), Ok(S));
        assert_eq!(
            parse_positive_timespan("0"),
            Err(TimeError::NonPositiveTimespan)
        );
        assert_eq!(
            parse_positive_timespan("-5m"),
            Err(TimeError::NonPositiveTimespan)
        );
        assert_eq!(
            parse_positive_timespan("foo"),
            Err(TimeError::InvalidTimespan)
        );
        assert_eq!(
            TimeError::NonPositiveTimespan.to_string(),
            "Timespan must be positive"
        );
    }

    #[test]
    fn timespan_from_json_numbers() {
        assert_eq!(timespan_from_seconds(60.0), Ok(60 * S));
        assert_eq!(timespan_from_seconds(0.5), Ok(S / 2));
        assert_eq!(timespan_from_seconds(-1.5), Ok(-3 * S / 2));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e19, -1e19] {
            assert_eq!(timespan_from_seconds(bad), Err(TimeError::InvalidTimespan));
        }
    }

    /// Expected values computed with upstream's own code path (float, then
    /// numpy's datetime64 parser, `datetime64[ns]`).
    const UPSTREAM_TIMESTAMPS: &[(&str, TimestampKind, i64)] = &[
        ("2015", TimestampKind::Epoch, 2_015_000_000_000),
        (
            "1425652437.0",
            TimestampKind::Epoch,
            1_425_652_437_000_000_000,
        ),
        (
            "1425652437.123456",
            TimestampKind::Epoch,
            1_425_652_437_123_456_000,
        ),
        ("0.3", TimestampKind::Epoch, 300_000_000),
        ("1e9", TimestampKind::Epoch, 1_000_000_000_000_000_000),
        ("1_000", TimestampKind::Epoch, 1_000_000_000_000),
        (" 12 ", TimestampKind::Epoch, 12_000_000_000),
        ("2014-01-01", TimestampKind::Iso, 1_388_534_400_000_000_000),
        (
            "2014-01-01 12:12:34",
            TimestampKind::Iso,
            1_388_578_354_000_000_000,
        ),
        (
            "2014-05-20T10:00:45.856219",
            TimestampKind::Iso,
            1_400_580_045_856_219_000,
        ),
        (
            "2015-03-06T14:34",
            TimestampKind::Iso,
            1_425_652_440_000_000_000,
        ),
        (
            "2017-12-10T08:10:42Z",
            TimestampKind::Iso,
            1_512_893_442_000_000_000,
        ),
        (
            "2017-12-10T08:10:42+01:00",
            TimestampKind::Iso,
            1_512_889_842_000_000_000,
        ),
        (
            "2017-12-10T08:10:42-0500",
            TimestampKind::Iso,
            1_512_911_442_000_000_000,
        ),
        (
            "2017-12-10T08:10:42+01",
            TimestampKind::Iso,
            1_512_889_842_000_000_000,
        ),
        ("2014-01", TimestampKind::Iso, 1_388_534_400_000_000_000),
        (
            "2014-01-01T12",
            TimestampKind::Iso,
            1_388_577_600_000_000_000,
        ),
        (
            "2014-01-01T12:00:00.123456789",
            TimestampKind::Iso,
            1_388_577_600_123_456_789,
        ),
        (
            "1915-03-06T14:33:57",
            TimestampKind::Iso,
            -1_730_107_563_000_000_000,
        ),
        ("1969-12-31T23:59:59.9999999999", TimestampKind::Iso, -1),
        (
            "2015-03-06T15:33:57+01:00",
            TimestampKind::Iso,
            1_425_652_437_000_000_000,
        ),
        (
            "2016-02-29T23:59:59.999999999Z",
            TimestampKind::Iso,
            1_456_790_399_999_999_999,
        ),
        ("2000-02-29", TimestampKind::Iso, 951_782_400_000_000_000),
        (
            "2262-04-11T23:47:16.854775807",
            TimestampKind::Iso,
            i64::MAX,
        ),
        (
            "1677-09-21T00:12:43.145224192",
            TimestampKind::Iso,
            i64::MIN,
        ),
        (
            "2014-01-01T12:00:00.+01:00",
            TimestampKind::Iso,
            1_388_574_000_000_000_000,
        ),
        ("+2014-01-01", TimestampKind::Iso, 1_388_534_400_000_000_000),
        (
            "  2014-01-01T00:00:00Z\t",
            TimestampKind::Iso,
            1_388_534_400_000_000_000,
        ),
        (
            "2014-01-01T12:00:00-01:30",
            TimestampKind::Iso,
            1_388_583_000_000_000_000,
        ),
        (
            "1970-01-01T00:00:00+00:01",
            TimestampKind::Iso,
            -60_000_000_000,
        ),
        ("2100-03-01", TimestampKind::Iso, 4_107_542_400_000_000_000),
        ("1900-03-01", TimestampKind::Iso, -2_203_891_200_000_000_000),
        (
            "2014-01-01T12:00:00.123Z",
            TimestampKind::Iso,
            1_388_577_600_123_000_000,
        ),
        (
            "2014-01-01T12:00:00+0100 ",
            TimestampKind::Iso,
            1_388_574_000_000_000_000,
        ),
        (
            "2014-01-01T12:00:00\t",
            TimestampKind::Iso,
            1_388_577_600_000_000_000,
        ),
        (
            "2014-01-01T12Z ",
            TimestampKind::Iso,
            1_388_577_600_000_000_000,
        ),
    ];

    #[test]
    fn timestamps_parse_exactly_as_upstream() {
        for &(s, kind, ns) in UPSTREAM_TIMESTAMPS {
            assert_eq!(classify_timestamp(s), Some(kind), "{s:?}");
            assert_eq!(parse_timestamp(s, NOW), Ok(ns), "{s:?}");
            assert_eq!(parse_timestamp_kind(s, kind, NOW), Ok(ns), "{s:?}");
        }
    }

    /// numpy refuses these; none is a timespan either.
    const UPSTREAM_BAD_TIMESTAMPS: &[&str] = &[
        "",
        "NaT",
        "nat",
        "2014-1-1",
        "2014-01-01t12:00",
        " 2014-01-01 ",
        "2014-01-01Z",
        "2014-01-01T12:00:00,5",
        "2014-02-30",
        "2014-01-01T24:00:00",
        "2014-01-01T23:59:60",
        "2014-01-01T12:00:00 Z",
        "2014-01-01T12:00:00+1",
        "2014-01-01T12:00:00+01:0",
        "2014-01-01T12:00:00+01:00:00",
        "2014-01-01+01:00",
        "2014-01-01 T12",
        "1900-02-29",
        "2014-01-01T12:00:00+01 ",
        "2014-01 ",
        "2014-01-01T12:00:00  x",
        "++1970-01-01",
        "2014-01-01T12:00:00+01:",
        "2014-01-01T12:00:00+",
        "2014-01-01T12:00:00-",
        "2014-01-01T12:00:00.1234567890123456789",
        "2014-01-01T12:00:00Zx",
        "2014-01-01T12:00:00+01:00x",
        "2014-01-01T",
        "2014-01-01T12:",
        "2014-01-01T12:00:",
        "2014-01-01T12:00:0",
        "2014-01-01T12:00:00:00",
        "2014-01-01T12:00:00.5.5",
        "2014-01-01T12:60",
        "2014-13-01",
        "2014-00-01",
        "2014-01-00",
        "2014-01-01T12:00:00+24:00",
        "2014-01-01T12:00:00+01:60",
        "2014-01-01T12:00:00\u{2212}01:00",
        "\u{a0}2014-01-01",
        "  now",
        "now ",
        "today ",
        "2014-001",
        "2014W01",
        "1915-100-06T14:33:57",
        "notadate",
        "yesterday",
        "-",
        "2014-01-01T12:00:00.Z.",
        "1 shenanigan",
    ];

    #[test]
    fn unreadable_timestamps_are_refused_with_upstream_message() {
        for s in UPSTREAM_BAD_TIMESTAMPS {
            assert_eq!(classify_timestamp(s), None, "{s:?}");
            assert_eq!(
                parse_timestamp(s, NOW),
                Err(TimeError::InvalidTimestamp(
                    "Unable to convert timestamps".into()
                )),
                "{s:?}"
            );
        }
    }

    #[test]
    fn now_is_floored_to_the_second_and_today_to_the_day() {
        let second = NOW - NOW % S;
        let midnight = 1_512_864_000 * S;
        for s in ["now", "NOW", "Now"] {
            assert_eq!(classify_timestamp(s), Some(TimestampKind::Iso));
            assert_eq!(parse_timestamp(s, NOW), Ok(second));
        }
        for s in ["today", "TODAY", "Today"] {
            assert_eq!(parse_timestamp(s, NOW), Ok(midnight));
        }
        assert_eq!(format_iso(midnight), "2017-12-10T00:00:00+00:00");
    }

    #[test]
    fn relative_timestamps_are_added_to_now() {
        let cases = [
            ("-5 minutes", -300 * S),
            ("+2h", 7200 * S),
            ("10 minutes", 600 * S),
            ("- 1 day", -86_400 * S),
            ("1:30", 90 * S),
        ];
        for (s, span) in cases {
            assert_eq!(
                classify_timestamp(s),
                Some(TimestampKind::Relative),
                "{s:?}"
            );
            assert_eq!(parse_timestamp(s, NOW), Ok(NOW + span), "{s:?}");
            assert_eq!(
                parse_timestamp_kind(s, TimestampKind::Relative, NOW),
                Ok(NOW + span)
            );
        }
        // Going past the representable range is an error, not a wrap.
        assert!(parse_timestamp("15000 weeks", NOW).is_err());
    }

    #[test]
    fn list_format_follows_the_first_element() {
        // Epoch mode refuses anything but numbers (the mixed-format gabbit).
        assert!(parse_timestamp_kind("-5 minutes", TimestampKind::Epoch, NOW).is_err());
        assert!(parse_timestamp_kind("2014-01-01", TimestampKind::Epoch, NOW).is_err());
        assert_eq!(
            parse_timestamp_kind("1478012832", TimestampKind::Epoch, NOW),
            Ok(1_478_012_832 * S)
        );
        // ISO mode reads a bare number as a year, as numpy does.
        assert_eq!(
            parse_timestamp_kind("2015", TimestampKind::Iso, NOW),
            Ok(1_420_070_400 * S)
        );
        assert!(parse_timestamp_kind("-5 minutes", TimestampKind::Iso, NOW).is_err());
        // Relative mode reads numbers as seconds from now.
        assert_eq!(
            parse_timestamp_kind("10", TimestampKind::Relative, NOW),
            Ok(NOW + 10 * S)
        );
        assert!(parse_timestamp_kind("2014-01-01", TimestampKind::Relative, NOW).is_err());
    }

    #[test]
    fn before_epoch_is_a_separate_check() {
        let ts = parse_timestamp("1915-03-06T14:33:57", NOW).unwrap();
        assert_eq!(check_after_epoch(ts), Err(TimeError::BeforeEpoch));
        assert_eq!(check_after_epoch(0), Ok(0));
        assert_eq!(
            TimeError::BeforeEpoch.to_string(),
            "Timestamp must be after Epoch"
        );
        // Dates beyond the nanosecond range: far past is before the epoch,
        // far future cannot be stored.
        assert_eq!(
            parse_timestamp("1500-01-01", NOW),
            Err(TimeError::BeforeEpoch)
        );
        assert_eq!(
            parse_timestamp("-2014-01-01", NOW),
            Err(TimeError::BeforeEpoch)
        );
        assert!(matches!(
            parse_timestamp("2262-04-12", NOW),
            Err(TimeError::InvalidTimestamp(_))
        ));
        assert!(matches!(
            parse_timestamp("999999999-01-01", NOW),
            Err(TimeError::InvalidTimestamp(_))
        ));
        assert_eq!(
            timestamp_from_epoch_seconds(-1e12),
            Err(TimeError::BeforeEpoch)
        );
    }

    #[test]
    fn epoch_seconds_use_upstreams_arithmetic() {
        assert_eq!(
            timestamp_from_epoch_seconds(1425652437.0),
            Ok(1_425_652_437 * S)
        );
        assert_eq!(
            timestamp_from_epoch_seconds(1425652437.123456),
            Ok(1_425_652_437_123_456_000)
        );
        assert_eq!(
            timestamp_from_epoch_seconds(1425652440.123457),
            Ok(1_425_652_440_123_457_024)
        );
        assert_eq!(timestamp_from_epoch_seconds(1.5e-9), Ok(1));
        assert_eq!(timestamp_from_epoch_seconds(-0.5), Ok(-S / 2));
        for bad in [f64::NAN, f64::INFINITY, 1e10] {
            assert!(matches!(
                timestamp_from_epoch_seconds(bad),
                Err(TimeError::InvalidTimestamp(_))
            ));
        }
        assert_eq!(classify_timestamp("nan"), Some(TimestampKind::Epoch));
        assert!(parse_timestamp("nan", NOW).is_err());
        assert!(parse_timestamp("-inf", NOW).is_err());
    }

    #[test]
    fn timedelta_renders_like_python() {
        let cases: &[(i64, &str)] = &[
            (S, "0:00:01"),
            (60 * S, "0:01:00"),
            (1200 * S, "0:20:00"),
            (3600 * S, "1:00:00"),
            (3_600_000_000, "0:00:03.600000"),
            (86_400 * S, "1 day, 0:00:00"),
            (31_536_000 * S, "365 days, 0:00:00"),
            (1_000, "0:00:00.000001"),
            (1_500, "0:00:00.000002"),
            (2_500, "0:00:00.000002"),
            (-S, "-1 day, 23:59:59"),
            (-1_000, "-1 day, 23:59:59.999999"),
            (90_061_500_000_000, "1 day, 1:01:01.500000"),
            (172_803_250_000_000, "2 days, 0:00:03.250000"),
            (1, "0:00:00"),
            (S / 2, "0:00:00.500000"),
            (42 * S, "0:00:42"),
            (0, "0:00:00"),
            (3_599_999_999_995, "1:00:00"),
            (514_285_714_285, "0:08:34.285714"),
        ];
        for &(ns, want) in cases {
            assert_eq!(format_timedelta(ns), want, "{ns}");
        }
        // Must not overflow at the extremes.
        assert_eq!(format_timedelta(i64::MAX), "106751 days, 23:47:16.854776");
        assert!(format_timedelta(i64::MIN).starts_with("-106752 days, "));
    }

    #[test]
    fn seconds_render_like_python_floats() {
        let cases: &[(i64, &str)] = &[
            (S, "1.0"),
            (60 * S, "60.0"),
            (1200 * S, "1200.0"),
            (3_600_000_000, "3.6"),
            (86_400 * S, "86400.0"),
            (31_536_000 * S, "31536000.0"),
            (1_000, "1e-06"),
            (1_500, "1.5e-06"),
            (-S, "-1.0"),
            (90_061_500_000_000, "90061.5"),
            (1, "1e-09"),
            (S / 2, "0.5"),
            (42 * S, "42.0"),
            (0, "0.0"),
            (100_000, "0.0001"),
            (i64::MAX, "9223372036.854776"),
        ];
        for &(ns, want) in cases {
            assert_eq!(format_seconds(ns), want, "{ns}");
        }
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(1e15), "1000000000000000.0");
        assert_eq!(python_float_repr(1.5e300), "1.5e+300");
        assert_eq!(python_float_repr(-0.0), "-0.0");
        assert_eq!(python_float_repr(f64::NAN), "nan");
    }

    #[test]
    fn measure_timestamps_and_iso_render_like_python() {
        let cases: &[(i64, &str, &str)] = &[
            (0, "1970-01-01T00:00:00+00:00", "1970-01-01T00:00:00+00:00"),
            (1, "1970-01-01T00:00:00+00:00", "1970-01-01T00:00:00+00:00"),
            (
                999_999_999,
                "1970-01-01T00:00:00+00:00",
                "1970-01-01T00:00:00.999999+00:00",
            ),
            (S, "1970-01-01T00:00:01+00:00", "1970-01-01T00:00:01+00:00"),
            (
                1_388_714_522 * S,
                "2014-01-03T02:02:02+00:00",
                "2014-01-03T02:02:02+00:00",
            ),
            (
                1_425_652_437_123_456_789,
                "2015-03-06T14:33:57+00:00",
                "2015-03-06T14:33:57.123456+00:00",
            ),
            (
                951_782_400 * S,
                "2000-02-29T00:00:00+00:00",
                "2000-02-29T00:00:00+00:00",
            ),
            (
                4_102_444_800 * S,
                "2100-01-01T00:00:00+00:00",
                "2100-01-01T00:00:00+00:00",
            ),
            (
                i64::MAX,
                "2262-04-11T23:47:16+00:00",
                "2262-04-11T23:47:16.854775+00:00",
            ),
            (
                -1,
                "1969-12-31T23:59:59+00:00",
                "1969-12-31T23:59:59.999999+00:00",
            ),
            (
                i64::MIN,
                "1677-09-21T00:12:43+00:00",
                "1677-09-21T00:12:43.145224+00:00",
            ),
            (
                1_709_164_800 * S,
                "2024-02-29T00:00:00+00:00",
                "2024-02-29T00:00:00+00:00",
            ),
            (
                68_169_600 * S,
                "1972-02-29T00:00:00+00:00",
                "1972-02-29T00:00:00+00:00",
            ),
        ];
        for &(ns, measure, iso) in cases {
            let mut out = String::from("x");
            format_measure_timestamp(ns, &mut out);
            assert_eq!(out, format!("x{measure}"), "{ns}");
            assert_eq!(format_iso(ns), iso, "{ns}");
        }
    }

    /// Slow, obviously-correct calendar: walk years then months from 1970.
    fn reference_datetime(ts: i64) -> String {
        let secs = ts.div_euclid(S);
        let mut days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let year_len = |y: i64| if is_leap_year(y) { 366 } else { 365 };
        let mut y = 1970;
        while days < 0 {
            y -= 1;
            days += year_len(y);
        }
        while days >= year_len(y) {
            days -= year_len(y);
            y += 1;
        }
        let mut m = 1;
        while days >= days_in_month(y, m) {
            days -= days_in_month(y, m);
            m += 1;
        }
        format!(
            "{y:04}-{m:02}-{:02}T{:02}:{:02}:{:02}+00:00",
            days + 1,
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }

    #[test]
    fn calendar_round_trips_day_by_day() {
        for days in -200_000..200_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
    }

    proptest! {
        #[test]
        fn measure_timestamp_matches_reference_calendar(ts in any::<i64>()) {
            let mut out = String::new();
            format_measure_timestamp(ts, &mut out);
            prop_assert_eq!(out, reference_datetime(ts));
        }

        #[test]
        fn iso_rendering_parses_back_to_the_microsecond(ts in any::<i64>()) {
            let truncated = ts - ts.rem_euclid(NS_PER_MICRO);
            prop_assert_eq!(parse_timestamp(&format_iso(ts), NOW), Ok(truncated));
        }

        #[test]
        fn timedelta_rendering_parses_back_to_the_microsecond(ns in 0i64..300_000_000_000_000_000) {
            let back = parse_timespan(&format_timedelta(ns)).unwrap();
            prop_assert_eq!(
                round_half_even_div(back, NS_PER_MICRO),
                round_half_even_div(ns, NS_PER_MICRO)
            );
        }

        #[test]
        fn unit_words_sum_exactly(
            w in 0u64..100, d in 0u64..100, h in 0u64..100, m in 0u64..100, s in 0u64..100,
            negative in any::<bool>(),
        ) {
            let text = format!("{}{w} weeks, {d}d {h} hrs/{m}min{s}s", if negative { "-" } else { "" });
            let secs = (w * 604_800 + d * 86_400 + h * 3_600 + m * 60 + s) as i64;
            let want = if negative { -secs } else { secs } * S;
            prop_assert_eq!(parse_timespan(&text), Ok(want));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_timespan(&s);
            let _ = classify_timestamp(&s);
            let _ = parse_timestamp(&s, NOW);
            for kind in [TimestampKind::Epoch, TimestampKind::Iso, TimestampKind::Relative] {
                let _ = parse_timestamp_kind(&s, kind, NOW);
            }
        }

        #[test]
        fn parsers_never_panic_on_near_miss_syntax(
            s in "[-+ 0-9.:,/TZtzdhmswk_e]{0,30}|now|today|NOW",
            now in prop_oneof![Just(i64::MIN), Just(i64::MAX), any::<i64>()],
        ) {
            let _ = parse_timespan(&s);
            let _ = classify_timestamp(&s);
            let _ = parse_timestamp(&s, now);
            for kind in [TimestampKind::Epoch, TimestampKind::Iso, TimestampKind::Relative] {
                let _ = parse_timestamp_kind(&s, kind, now);
            }
        }

        #[test]
        fn format_seconds_reads_back_as_the_same_float(ns in any::<i64>()) {
            let text = format_seconds(ns);
            let back: f64 = text.parse().unwrap();
            prop_assert_eq!(back, ns as f64 / 1e9);
        }
    }
}
