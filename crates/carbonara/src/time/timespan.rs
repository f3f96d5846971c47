//! Timespans: Python's `float()` seconds, or pytimeparse's syntax.

use super::TimeError;
use super::number::{is_py_space, parse_u128, python_float, seconds_to_ns};

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
pub(super) struct Cursor<'a> {
    s: &'a str,
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    pub(super) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    pub(super) fn eat(&mut self, b: u8) -> bool {
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
    pub(super) fn digits(&mut self) -> &'a str {
        self.take_while(|b| b.is_ascii_digit())
    }
    /// Exactly `n` ASCII digits.
    pub(super) fn fixed_digits(&mut self, n: usize) -> Option<&'a str> {
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
pub(super) fn parse_duration_words(s: &str) -> Option<i64> {
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
