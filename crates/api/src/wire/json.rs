//! JSON output shaped like upstream's (Python's `json` module): `", "` and `": "`
//! separators, floats in Python `repr` form (`60.0`, `1e+16`), and the bare
//! `NaN` / `Infinity` / `-Infinity` tokens that clients of upstream rely on.
//!
//! Documents are built as `serde_json::Value` and written with [`PyFormatter`];
//! measure series, which may hold non-finite floats and are the hot read path,
//! are written directly with [`write_measures`].

use carbonara::AggregatedTimeSerie;
use serde_json::Value;
use std::io;

/// serde_json formatter with Python's separators and float repr.
pub(crate) struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        let mut s = String::new();
        py_float(value, &mut s);
        w.write_all(s.as_bytes())
    }
    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }
}

/// Serialize a document the way upstream does.
pub(crate) fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
    // Writing into a Vec cannot fail, and a Value is always serializable.
    let _ = serde::Serialize::serialize(value, &mut ser);
    out
}

/// Append a document, serialized the way upstream does, to text being written.
pub(crate) fn push_json(out: &mut String, value: &Value) {
    out.push_str(&String::from_utf8_lossy(&to_vec(value)));
}

/// Python `repr(float)`, with JSON's non-finite tokens as Python's json emits them.
pub(crate) fn py_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(f);
    // Without an exponent, ryu's shortest form is already Python's repr
    // (`43.1`, `60.0`, `0.0001`): the common case, kept allocation-free.
    // Python switches to scientific notation below 1e-4, ryu later.
    if !s.contains('e') && !s.trim_start_matches('-').starts_with("0.0000") {
        out.push_str(s);
        return;
    }
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // Shortest round-trip digits and the position of the decimal point.
    let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    let mut point = int_part.len() as i32 + exp;
    while digits.len() > 1 && digits[0] == b'0' {
        digits.remove(0);
        point -= 1;
    }
    while digits.len() > 1 && digits[digits.len() - 1] == b'0' {
        digits.pop();
    }
    if neg {
        out.push('-');
    }
    if digits == b"0" {
        out.push_str("0.0");
        return;
    }
    let sci_exp = point - 1;
    let digits = std::str::from_utf8(&digits).unwrap_or("0");
    if !(-4..16).contains(&sci_exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if sci_exp < 0 { '-' } else { '+' });
        let e = sci_exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else if point <= 0 {
        out.push_str("0.");
        for _ in 0..(-point) {
            out.push('0');
        }
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        for _ in 0..(point as usize - digits.len()) {
            out.push('0');
        }
        out.push_str(".0");
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
}

/// Granularity in seconds as upstream renders it in measures (`60.0`).
pub(crate) fn seconds(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// Write `[[timestamp, granularity, value], ...]` for several series, in order.
pub(crate) fn write_measures<'a>(
    series: impl IntoIterator<Item = &'a AggregatedTimeSerie>,
    out: &mut String,
) {
    out.push('[');
    let mut first = true;
    for serie in series {
        let mut gran = String::new();
        py_float(seconds(serie.granularity), &mut gran);
        for (ts, v) in serie.timestamps.iter().zip(&serie.values) {
            if !first {
                out.push_str(", ");
            }
            first = false;
            out.push_str("[\"");
            carbonara::time::format_measure_timestamp(*ts, out);
            out.push_str("\", ");
            out.push_str(&gran);
            out.push_str(", ");
            py_float(*v, out);
            out.push(']');
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(f: f64) -> String {
        let mut s = String::new();
        py_float(f, &mut s);
        s
    }

    #[test]
    fn floats_render_like_python_repr() {
        assert_eq!(repr(60.0), "60.0");
        assert_eq!(repr(43.1), "43.1");
        assert_eq!(repr(137.70499999999998), "137.70499999999998");
        assert_eq!(repr(0.0), "0.0");
        assert_eq!(repr(-0.0), "-0.0");
        assert_eq!(repr(1e16), "1e+16");
        assert_eq!(repr(1.5e16), "1.5e+16");
        assert_eq!(repr(1e15), "1000000000000000.0");
        assert_eq!(repr(0.0001), "0.0001");
        assert_eq!(repr(0.00001), "1e-05");
        assert_eq!(repr(1.5e-7), "1.5e-07");
        assert_eq!(repr(3.6), "3.6");
        assert_eq!(repr(-2.5), "-2.5");
        assert_eq!(repr(1.2345678901234568e17), "1.2345678901234568e+17");
        assert_eq!(repr(f64::NAN), "NaN");
        assert_eq!(repr(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(repr(5e-324), "5e-324");
        assert_eq!(repr(1.7976931348623157e308), "1.7976931348623157e+308");
        // Exactly halfway between two 17-digit candidates: Python rounds
        // half to even.
        assert_eq!(
            repr(f64::from_bits(14041238275044365672)),
            "-125341189967189.62"
        );
    }

    #[test]
    fn documents_use_python_separators() {
        let v = serde_json::json!({"a": [1, 2.0], "b": "x"});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"a": [1, 2.0], "b": "x"}"#
        );
    }
}

#[cfg(test)]
mod repr_props {
    use super::py_float;
    use proptest::prelude::*;

    /// The reference: Python's repr rules applied to the shortest correctly
    /// rounded scientific form that reads back as `f`, without the fast path.
    /// Each candidate is rounded half-to-even from the exact binary value, as
    /// Python's dtoa does; Rust's `{:e}` can pick the other digit when the
    /// value lies exactly between two shortest candidates (…189.625).
    fn reference(f: f64) -> String {
        let sci = (0..17)
            .map(|precision| format!("{f:.precision$e}"))
            .find(|s| s.parse::<f64>() == Ok(f))
            .unwrap_or_else(|| format!("{f:.16e}"));
        let (mant, exp) = sci.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        let (neg, mant) = match mant.strip_prefix('-') {
            Some(m) => (true, m),
            None => (false, mant),
        };
        let digits: String = mant.chars().filter(|c| *c != '.').collect();
        let digits = match digits.trim_end_matches('0') {
            "" => "0".to_string(),
            trimmed => trimmed.to_string(),
        };
        let mut out = String::from(if neg { "-" } else { "" });
        if !(-4..16).contains(&exp) {
            out.push_str(&digits[..1]);
            if digits.len() > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            out.push_str(&format!(
                "e{}{:02}",
                if exp < 0 { '-' } else { '+' },
                exp.abs()
            ));
        } else if exp < 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        } else if (exp as usize) + 1 >= digits.len() {
            out.push_str(&digits);
            out.push_str(&"0".repeat(exp as usize + 1 - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..exp as usize + 1]);
            out.push('.');
            out.push_str(&digits[exp as usize + 1..]);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn fast_path_matches_python_repr(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            prop_assume!(f.is_finite() && f != 0.0);
            let mut got = String::new();
            py_float(f, &mut got);
            prop_assert_eq!(got, reference(f));
        }

        #[test]
        fn decimal_values_match_python_repr(n in -10_000_000i64..10_000_000, scale in 0u32..9) {
            let f = n as f64 / 10f64.powi(scale as i32);
            prop_assume!(f != 0.0);
            let mut got = String::new();
            py_float(f, &mut got);
            prop_assert_eq!(got, reference(f));
        }
    }
}
