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

use std::fmt::Write as _;

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

// ---------------------------------------------------------------------------
// Numbers, the way Python's float() reads them
// ---------------------------------------------------------------------------

/// Python's `str.isspace()`, which `float()` and pytimeparse's `\s` use: Rust's
/// notion plus the ASCII information separators.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// C's `isspace()` in the C locale, which numpy's date parser uses.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Python's `float(s)` for a `str`: surrounding whitespace, a sign, `inf`,
/// `infinity`, `nan` (any case), exponents and `_` between digits. Upstream
/// tries this first for both timestamps and timespans, which is why `"2015"`
/// is 2015 seconds after the epoch.
fn python_float(s: &str) -> Option<f64> {
    let t = s.trim_matches(is_py_space);
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let special = if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        Some(f64::INFINITY)
    } else if body.eq_ignore_ascii_case("nan") {
        Some(f64::NAN)
    } else {
        None
    };
    if let Some(v) = special {
        return Some(if negative { -v } else { v });
    }
    if !is_python_decimal_literal(body) {
        return None;
    }
    let v: f64 = if body.contains('_') {
        body.replace('_', "").parse().ok()?
    } else {
        body.parse().ok()?
    };
    Some(if negative { -v } else { v })
}

/// `digits [. digits] [e [sign] digits]` (either digit run may be empty but not
/// both), where each digit run may have single `_` between digits.
fn is_python_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_digits = digit_part(b, &mut i);
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = digit_part(b, &mut i);
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digit_part(b, &mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Consume a run of digits with optional single underscores between digits;
/// returns how many digits it saw (0: nothing consumed).
fn digit_part(b: &[u8], i: &mut usize) -> usize {
    let mut count = 0;
    while *i < b.len() {
        if b[*i].is_ascii_digit() {
            count += 1;
            *i += 1;
        } else if b[*i] == b'_' && count > 0 && b.get(*i + 1).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        } else {
            break;
        }
    }
    count
}

/// Upstream turns seconds into nanoseconds as `int(seconds * 1e9)` (then numpy
/// refuses what does not fit an int64): the product is rounded to a double
/// and then truncated toward zero. Doing the same keeps us bit-identical with
/// upstream for every input; for realistic epoch timestamps the double product
/// is already an integer, so the truncation never drops anything there.
fn seconds_to_ns(secs: f64) -> Option<i64> {
    // 2^63 exactly: the first double that no longer fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let p = (secs * 1e9).trunc();
    // NaN is in no range.
    if (-LIMIT..LIMIT).contains(&p) {
        Some(p as i64)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Timespans
// ---------------------------------------------------------------------------

/// Parse a timespan the way upstream does (a number of seconds, or pytimeparse
/// syntax such as `1 hour`, `5min`, `1:00:00`, `2 days, 0:00:00`). Returns nanoseconds,
/// possibly zero or negative: callers decide whether that is allowed.
pub fn parse_timespan(s: &str) -> Result<i64, TimeError> {
    match python_float(s) {
        Some(secs) => timespan_from_seconds(secs),
        None => parse_duration_words(s).ok_or(TimeError::InvalidTimespan),
    }
}

/// [`parse_timespan`], refusing zero and negative spans as upstream does for
/// granularities, timespans and resample periods.
pub fn parse_positive_timespan(s: &str) -> Result<i64, TimeError> {
    parse_timespan(s).and_then(check_positive_timespan)
}

/// `Timespan must be positive` unless `ns > 0`.
pub fn check_positive_timespan(ns: i64) -> Result<i64, TimeError> {
    if ns > 0 {
        Ok(ns)
    } else {
        Err(TimeError::NonPositiveTimespan)
    }
}

/// Seconds (JSON number) to nanoseconds, as a timespan.
pub fn timespan_from_seconds(secs: f64) -> Result<i64, TimeError> {
    seconds_to_ns(secs).ok_or(TimeError::InvalidTimespan)
}

/// pytimeparse's units, in the order its patterns require them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Weeks = 0,
    Days = 1,
    Hours = 2,
    Mins = 3,
    Secs = 4,
}

const MULTIPLIERS: [u64; 5] = [7 * 86_400, 86_400, 3_600, 60, 1];

impl Unit {
    /// pytimeparse's unit words, matched without regard to case.
    fn from_word(word: &str) -> Option<Unit> {
        const WORDS: [(&str, Unit); 25] = [
            ("w", Unit::Weeks),
            ("wk", Unit::Weeks),
            ("wks", Unit::Weeks),
            ("week", Unit::Weeks),
            ("weeks", Unit::Weeks),
            ("d", Unit::Days),
            ("dy", Unit::Days),
            ("dys", Unit::Days),
            ("day", Unit::Days),
            ("days", Unit::Days),
            ("h", Unit::Hours),
            ("hr", Unit::Hours),
            ("hrs", Unit::Hours),
            ("hour", Unit::Hours),
            ("hours", Unit::Hours),
            ("m", Unit::Mins),
            ("min", Unit::Mins),
            ("mins", Unit::Mins),
            ("minute", Unit::Mins),
            ("minutes", Unit::Mins),
            ("s", Unit::Secs),
            ("sec", Unit::Secs),
            ("secs", Unit::Secs),
            ("second", Unit::Secs),
            ("seconds", Unit::Secs),
        ];
        WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|(_, u)| *u)
    }
}

/// The numeric text captured for each unit (pytimeparse's match groups).
#[derive(Debug, Default)]
struct Fields<'a>([Option<&'a str>; 5]);

/// A byte cursor over the string being parsed.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn skip_py_space(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start_matches(is_py_space);
        self.pos += rest.len() - trimmed.len();
    }
    /// Consume bytes while `pred` holds; returns the consumed text.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let bytes = self.s.as_bytes();
        while self.pos < bytes.len() && pred(bytes[self.pos]) {
            self.pos += 1;
        }
        // Only ASCII bytes are ever accepted by the predicates used here, so
        // both ends are char boundaries.
        self.s.get(start..self.pos).unwrap_or("")
    }
    fn digits(&mut self) -> &'a str {
        self.take_while(|b| b.is_ascii_digit())
    }
    /// Exactly `n` ASCII digits.
    fn fixed_digits(&mut self, n: usize) -> Option<&'a str> {
        let d = self.s.get(self.pos..self.pos + n)?;
        if d.bytes().all(|b| b.is_ascii_digit()) {
            self.pos += n;
            Some(d)
        } else {
            None
        }
    }
    /// `\d{2}(?:\.\d+)?`: clock seconds.
    fn clock_seconds(&mut self) -> Option<&'a str> {
        let start = self.pos;
        self.fixed_digits(2)?;
        if self.peek() == Some(b'.')
            && self
                .s
                .as_bytes()
                .get(self.pos + 1)
                .is_some_and(u8::is_ascii_digit)
        {
            self.pos += 1;
            self.digits();
        }
        self.s.get(start..self.pos)
    }
    /// pytimeparse's `(?P<x>[\d.]+)\s*unit`, the unit being a whole word.
    fn unit_component(&mut self) -> Option<(Unit, &'a str)> {
        let number = self.take_while(|b| b.is_ascii_digit() || b == b'.');
        if number.is_empty() {
            return None;
        }
        self.skip_py_space();
        // No pattern may follow a unit with a letter, so the unit is the whole
        // run of letters.
        let word = self.take_while(|b| b.is_ascii_alphabetic());
        Some((Unit::from_word(word)?, number))
    }
    /// `\s*(?:[,/]\s*)?` after a unit component.
    fn component_separator(&mut self) {
        self.skip_py_space();
        if self.eat(b',') || self.eat(b'/') {
            self.skip_py_space();
        }
    }
    /// Trailing `\s*$`.
    fn finish(&mut self) -> Option<()> {
        self.skip_py_space();
        self.at_end().then_some(())
    }
}

/// pytimeparse (granularity "seconds") followed by upstream's conversion to
/// nanoseconds. `None` when no pattern matches or a number is malformed.
fn parse_duration_words(s: &str) -> Option<i64> {
    let mut c = Cursor::new(s);
    c.skip_py_space();
    let negative = if c.eat(b'-') {
        true
    } else {
        c.eat(b'+');
        false
    };
    c.skip_py_space();
    let unsigned = c.rest();
    type Pattern = for<'a> fn(&'a str) -> Option<Fields<'a>>;
    let patterns: [Pattern; 5] = [
        match_units,
        match_min_clock,
        match_hour_clock,
        match_day_clock,
        match_sec_clock,
    ];
    // A pattern whose numbers turn out malformed (`1.2.3 hours`) hands over
    // to the next one, as pytimeparse does.
    patterns
        .iter()
        .filter_map(|p| p(unsigned))
        .find_map(|fields| fields_to_ns(&fields, negative))
}

/// `[N w] [N d] [N h] [N m] [N s]`, each optional but at least one, in this
/// order, each of the first four optionally followed by `,` or `/`.
fn match_units(s: &str) -> Option<Fields<'_>> {
    let mut c = Cursor::new(s);
    let mut fields = Fields::default();
    let mut next_allowed = Unit::Weeks as usize;
    let mut any = false;
    c.skip_py_space();
    while !c.at_end() {
        let (unit, number) = c.unit_component()?;
        if (unit as usize) < next_allowed {
            return None;
        }
        fields.0[unit as usize] = Some(number);
        next_allowed = unit as usize + 1;
        any = true;
        if unit == Unit::Secs {
            c.skip_py_space();
        } else {
            c.component_separator();
        }
    }
    any.then_some(fields)
}

/// `MM:SS[.f]`, 1 or 2 digits of minutes.
fn match_min_clock(s: &str) -> Option<Fields<'_>> {
    let mut c = Cursor::new(s);
    c.skip_py_space();
    let mins = c.digits();
    if mins.is_empty() || mins.len() > 2 || !c.eat(b':') {
        return None;
    }
    let secs = c.clock_seconds()?;
    c.finish()?;
    let mut f = Fields::default();
    f.0[Unit::Mins as usize] = Some(mins);
    f.0[Unit::Secs as usize] = Some(secs);
    Some(f)
}

/// `[N w] [N d] H:MM:SS[.f]` (so also `1 day, 0:00:00`).
fn match_hour_clock(s: &str) -> Option<Fields<'_>> {
    let mut c = Cursor::new(s);
    let mut f = Fields::default();
    c.skip_py_space();
    let mut next_allowed = Unit::Weeks as usize;
    loop {
        let save = c.pos;
        match c.unit_component() {
            Some((unit, number)) if unit <= Unit::Days && unit as usize >= next_allowed => {
                f.0[unit as usize] = Some(number);
                next_allowed = unit as usize + 1;
                c.component_separator();
            }
            _ => {
                c.pos = save;
                break;
            }
        }
    }
    let hours = c.digits();
    if hours.is_empty() || !c.eat(b':') {
        return None;
    }
    let mins = c.fixed_digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let secs = c.clock_seconds()?;
    c.finish()?;
    f.0[Unit::Hours as usize] = Some(hours);
    f.0[Unit::Mins as usize] = Some(mins);
    f.0[Unit::Secs as usize] = Some(secs);
    Some(f)
}

/// `D:HH:MM:SS[.f]` (or `D-HH:MM:SS[.f]`).
fn match_day_clock(s: &str) -> Option<Fields<'_>> {
    let mut c = Cursor::new(s);
    c.skip_py_space();
    let days = c.digits();
    if days.is_empty() || !(c.eat(b':') || c.eat(b'-')) {
        return None;
    }
    let hours = c.fixed_digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let mins = c.fixed_digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let secs = c.clock_seconds()?;
    c.finish()?;
    let mut f = Fields::default();
    f.0[Unit::Days as usize] = Some(days);
    f.0[Unit::Hours as usize] = Some(hours);
    f.0[Unit::Mins as usize] = Some(mins);
    f.0[Unit::Secs as usize] = Some(secs);
    Some(f)
}

/// `:SS[.f]`.
fn match_sec_clock(s: &str) -> Option<Fields<'_>> {
    let mut c = Cursor::new(s);
    c.skip_py_space();
    if !c.eat(b':') {
        return None;
    }
    let secs = c.clock_seconds()?;
    c.finish()?;
    let mut f = Fields::default();
    f.0[Unit::Secs as usize] = Some(secs);
    Some(f)
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// pytimeparse's arithmetic, then upstream's `int(seconds * 1e9)`:
/// - every number an integer: exact integer seconds;
/// - seconds an integer (or absent), some other number decimal: the other
///   units are summed exactly and truncated to whole seconds (`1.2 minutes`
///   is 72 s, `1.01 minutes` is 60 s), then the seconds are added;
/// - seconds decimal: everything is summed as doubles, in unit order.
fn fields_to_ns(fields: &Fields<'_>, negative: bool) -> Option<i64> {
    let present = || {
        fields
            .0
            .iter()
            .zip(MULTIPLIERS)
            .filter_map(|(v, m)| v.map(|v| (m, v)))
    };
    let secs_field = fields.0[Unit::Secs as usize];
    let seconds: f64 = if present().all(|(_, v)| all_digits(v)) {
        let mut total: u128 = 0;
        for (m, v) in present() {
            total = total.checked_add(u128::from(m).checked_mul(parse_u128(v)?)?)?;
        }
        total as f64
    } else if secs_field.is_none_or(all_digits) {
        let others: Vec<(u64, &str)> = present().filter(|(m, _)| *m != 1).collect();
        let whole = floor_weighted_decimal_sum(&others)?;
        let secs = match secs_field {
            Some(v) => parse_u128(v)?,
            None => 0,
        };
        whole.checked_add(secs)? as f64
    } else {
        let mut sum = 0.0f64;
        for (m, v) in present() {
            let x: f64 = v.parse().ok()?;
            sum += m as f64 * x;
        }
        sum
    };
    seconds_to_ns(if negative { -seconds } else { seconds })
}

fn parse_u128(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, b| {
        let d = char::from(b).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u128::from(d))
    })
}

/// `floor(Σ multiplier × decimal)` computed exactly, for decimals written as
/// `[\d.]+` (exactly one number per term, at most one `.`, at least one
/// digit; anything else is malformed, as Python's `Decimal` says).
///
/// The integer parts are summed directly; the fractional parts are added
/// column by column from the last digit, so only the final carry (the whole
/// seconds they contribute) survives. No rounding anywhere, whatever the
/// number of digits.
fn floor_weighted_decimal_sum(terms: &[(u64, &str)]) -> Option<u128> {
    let mut whole: u128 = 0;
    let mut fracs: Vec<(u64, &[u8])> = Vec::with_capacity(terms.len());
    for &(m, v) in terms {
        let (int_part, frac_part) = v.split_once('.').unwrap_or((v, ""));
        if !frac_part.bytes().all(|b| b.is_ascii_digit())
            || (int_part.is_empty() && frac_part.is_empty())
        {
            return None;
        }
        let int_value = if int_part.is_empty() {
            0
        } else {
            parse_u128(int_part)?
        };
        whole = whole.checked_add(u128::from(m).checked_mul(int_value)?)?;
        fracs.push((m, frac_part.as_bytes()));
    }
    let longest = fracs.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
    let mut carry: u128 = 0;
    for col in (0..longest).rev() {
        let column: u128 = fracs
            .iter()
            .filter_map(|(m, f)| f.get(col).map(|d| u128::from(*m) * u128::from(d - b'0')))
            .sum();
        carry = (carry + column) / 10;
    }
    whole.checked_add(carry)
}

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

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
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
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
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
fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

// ---------------------------------------------------------------------------
// Renderings
// ---------------------------------------------------------------------------

/// Python `str(timedelta)`: `0:00:01`, `1:00:00`, `0:00:03.600000`, `1 day, 0:00:00`, `365 days, 0:00:00`.
///
/// Upstream builds the timedelta from float seconds, which rounds to the
/// microsecond (half to even); negative spans print as Python does
/// (`-1 day, 23:59:59`).
pub fn format_timedelta(ns: i64) -> String {
    let micros = round_half_even_div(ns, NS_PER_MICRO);
    let per_day = i128::from(SECS_PER_DAY) * 1_000_000;
    let days = micros.div_euclid(per_day);
    let rem = micros.rem_euclid(per_day);
    let (secs, us) = (rem / 1_000_000, rem % 1_000_000);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::with_capacity(32);
    // Writing into a String cannot fail.
    if days != 0 {
        let plural = if days.abs() == 1 { "" } else { "s" };
        let _ = write!(out, "{days} day{plural}, ");
    }
    let _ = write!(out, "{h}:{m:02}:{s:02}");
    if us != 0 {
        let _ = write!(out, ".{us:06}");
    }
    out
}

/// `n / d` rounded to the nearest integer, ties to even (`d > 0`).
fn round_half_even_div(n: i64, d: i64) -> i128 {
    let (n, d) = (i128::from(n), i128::from(d));
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d);
    if 2 * r > d || (2 * r == d && q % 2 != 0) {
        q + 1
    } else {
        q
    }
}

/// `"00" "01" ... "99"`, so each two-digit field is one table lookup.
const TWO_DIGITS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

fn put2(buf: &mut [u8], at: usize, v: u32) {
    let i = (v as usize % 100) * 2;
    buf[at] = TWO_DIGITS[i];
    buf[at + 1] = TWO_DIGITS[i + 1];
}

/// `YYYY-MM-DDTHH:MM:SS` of a timestamp floored to the second, into `buf`.
fn write_datetime(ts: Timestamp, buf: &mut [u8; 19]) {
    let secs = ts.div_euclid(NS_PER_SEC);
    // i64 nanoseconds span less than 110,000 days either side of the epoch:
    // shifting by 200,000 days makes the day split unsigned.
    const SHIFT_DAYS: i64 = 200_000;
    let shifted = (secs + SHIFT_DAYS * SECS_PER_DAY) as u64;
    let sod = (shifted % SECS_PER_DAY as u64) as u32;
    let days = (shifted / SECS_PER_DAY as u64) as i64 - SHIFT_DAYS;
    let (y, mo, d) = civil_from_days(days);
    // i64 nanoseconds only reach years 1677..=2262: always four digits.
    let y = y.clamp(0, 9999) as u32;
    put2(buf, 0, y / 100);
    put2(buf, 2, y % 100);
    buf[4] = b'-';
    put2(buf, 5, mo);
    buf[7] = b'-';
    put2(buf, 8, d);
    buf[10] = b'T';
    put2(buf, 11, sod / 3600);
    buf[13] = b':';
    put2(buf, 14, sod / 60 % 60);
    buf[16] = b':';
    put2(buf, 17, sod % 60);
}

/// Append `bytes` (ASCII by construction) to `out`.
fn push_ascii(out: &mut String, bytes: &[u8]) {
    // Validating a couple dozen ASCII bytes costs next to nothing and keeps
    // this module free of unsafe code.
    if let Ok(s) = std::str::from_utf8(bytes) {
        out.push_str(s);
    }
}

/// `YYYY-MM-DDTHH:MM:SS+00:00`, truncated to the second (measure timestamps).
///
/// On the measures read path: appends without allocating (beyond growing
/// `out`) and without any calendar library.
pub fn format_measure_timestamp(ts: Timestamp, out: &mut String) {
    let mut buf = [0u8; 25];
    let mut date = [0u8; 19];
    write_datetime(ts, &mut date);
    buf[..19].copy_from_slice(&date);
    buf[19..].copy_from_slice(b"+00:00");
    push_ascii(out, &buf);
}

/// ISO 8601 with `+00:00`, microseconds only when non-zero (indexer datetimes).
pub fn format_iso(ts: Timestamp) -> String {
    let mut out = String::with_capacity(32);
    let mut date = [0u8; 19];
    write_datetime(ts, &mut date);
    push_ascii(&mut out, &date);
    let micros = ts.rem_euclid(NS_PER_SEC) / NS_PER_MICRO;
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    out.push_str("+00:00");
    out
}

/// Python `str(float(seconds))` of a span in nanoseconds: `1.0`, `42.0`,
/// `0.5`, `3.6`, `1e-09` (as in ``More than one archive policy uses
/// granularity `1.0'`` and ``1.0 granularity interval was changed``).
pub fn format_seconds(ns: i64) -> String {
    python_float_repr(ns as f64 / 1e9)
}

/// Python's `repr(float)`: the shortest digits that read back to the same
/// double, positional between 1e-4 and 1e16, else scientific with a signed,
/// at least two-digit exponent.
fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `{:e}` also prints the shortest round-tripping digits:
    // `-3.6e0`, `1e-9`, `4.2e1`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let point = exp + 1; // position of the decimal point after the first digit
    let n = digits.len() as i32;
    let mut out = String::from(sign);
    if -4 < point && point <= 16 {
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point < n {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        } else {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (point - n) as usize));
            out.push_str(".0");
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = point - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    out
}

/// Floor `ts` to a multiple of `granularity` since the epoch.
#[inline]
pub fn floor(ts: Timestamp, granularity: i64) -> Timestamp {
    ts - ts.rem_euclid(granularity)
}

#[cfg(test)]
mod tests {
    use super::*;
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
