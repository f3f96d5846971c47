//! Renderings: Python's `timedelta`, `datetime` and `float` spellings.

use super::civil::civil_from_days;
use super::{NS_PER_MICRO, NS_PER_SEC, SECS_PER_DAY, Timestamp};
use std::fmt::Write as _;

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
pub(super) fn round_half_even_div(n: i64, d: i64) -> i128 {
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
pub(super) fn python_float_repr(x: f64) -> String {
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
