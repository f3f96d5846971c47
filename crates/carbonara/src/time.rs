//! Time: nanosecond timestamps and upstream's input/output formats.
//!
//! INTERFACE (implementation to be filled in): keep these signatures.

/// Nanoseconds since the Unix epoch, UTC. Measures before the epoch are rejected.
pub type Timestamp = i64;
pub const NS_PER_SEC: i64 = 1_000_000_000;

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

/// Parse a timespan the way upstream does (a number of seconds, or pytimeparse
/// syntax such as `1 hour`, `5min`, `1:00:00`, `2 days, 0:00:00`). Returns nanoseconds,
/// possibly zero or negative: callers decide whether that is allowed.
pub fn parse_timespan(s: &str) -> Result<i64, TimeError> {
    let _ = s;
    unimplemented!()
}

/// Seconds (JSON number) to nanoseconds, as a timespan.
pub fn timespan_from_seconds(secs: f64) -> Result<i64, TimeError> {
    let _ = secs;
    unimplemented!()
}

/// Classify a timestamp string (see [`TimestampKind`]); `None` if it is none of them.
pub fn classify_timestamp(s: &str) -> Option<TimestampKind> {
    let _ = s;
    unimplemented!()
}

/// Parse a timestamp string of any kind; `now` is the current time (used by
/// relative times and `now`/`today`). Epoch results are not checked here.
pub fn parse_timestamp(s: &str, now: Timestamp) -> Result<Timestamp, TimeError> {
    let _ = (s, now);
    unimplemented!()
}

/// Seconds since the epoch (JSON number) to a timestamp.
pub fn timestamp_from_epoch_seconds(secs: f64) -> Result<Timestamp, TimeError> {
    let _ = secs;
    unimplemented!()
}

/// Python `str(timedelta)`: `0:00:01`, `1:00:00`, `0:00:03.600000`, `1 day, 0:00:00`, `365 days, 0:00:00`.
pub fn format_timedelta(ns: i64) -> String {
    let _ = ns;
    unimplemented!()
}

/// `YYYY-MM-DDTHH:MM:SS+00:00`, truncated to the second (measure timestamps).
pub fn format_measure_timestamp(ts: Timestamp, out: &mut String) {
    let _ = (ts, out);
    unimplemented!()
}

/// ISO 8601 with `+00:00`, microseconds only when non-zero (indexer datetimes).
pub fn format_iso(ts: Timestamp) -> String {
    let _ = ts;
    unimplemented!()
}

/// Floor `ts` to a multiple of `granularity` since the epoch.
#[inline]
pub fn floor(ts: Timestamp, granularity: i64) -> Timestamp {
    ts - ts.rem_euclid(granularity)
}
