//! Numbers, the way Python's `float()` reads them (timestamps and timespans both try it first).

// ---------------------------------------------------------------------------
// Numbers, the way Python's float() reads them
// ---------------------------------------------------------------------------

/// Python's `str.isspace()`, which `float()` and pytimeparse's `\s` use: Rust's
/// notion plus the ASCII information separators.
pub(super) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// C's `isspace()` in the C locale, which numpy's date parser uses.
pub(super) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Python's `float(s)` for a `str`: surrounding whitespace, a sign, `inf`,
/// `infinity`, `nan` (any case), exponents and `_` between digits. Upstream
/// tries this first for both timestamps and timespans, which is why `"2015"`
/// is 2015 seconds after the epoch.
pub(super) fn python_float(s: &str) -> Option<f64> {
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
pub(super) fn seconds_to_ns(secs: f64) -> Option<i64> {
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

pub(super) fn parse_u128(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, b| {
        let d = char::from(b).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u128::from(d))
    })
}
