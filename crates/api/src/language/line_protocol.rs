//! InfluxDB line protocol (1.x), as Telegraf, the `influx` CLI and the client
//! libraries write it:
//!
//! ```text
//! measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
//! ```
//!
//! The parser borrows everything from the request body: a name is unescaped
//! (into a `Cow::Owned`) only when it holds a backslash, and the tag and field
//! lists live in vectors the caller reuses from line to line, so the hot path
//! allocates nothing per line. It never panics, whatever the bytes (proptest
//! below feeds it random ones), and [`write_line`] prints lines it parses back.
//!
//! Accepted beyond upstream's pyparsing grammar, as InfluxDB itself does: blank
//! space before a line (the `influx` CLI sends one), `\r\n` line ends, `#`
//! comment lines, runs of spaces between sections, signed integers (`-3i`),
//! unsigned integers (`3u`) and booleans (`t`, `true`, ...). Booleans and strings
//! are returned as such; the InfluxDB endpoint stores only numbers and skips
//! them (upstream 400s on a boolean, which makes Telegraf's `system` input fail
//! a whole batch).

use std::borrow::Cow;

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue<'a> {
    /// Float, integer (`i`) or unsigned (`u`), as a float.
    Number(f64),
    Bool(bool),
    /// A quoted string, unescaped only when needed.
    Str(Cow<'a, str>),
}

/// Why a line did not parse (the endpoint reports only the line number, as upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineError {
    NotUtf8,
    MissingMeasurement,
    BadTag,
    MissingFields,
    BadField,
    BadFieldValue,
    BadTimestamp,
}

/// Multiplier from the `precision` query parameter's unit to nanoseconds.
pub(crate) fn precision_multiplier(precision: &str) -> Option<i64> {
    Some(match precision {
        "" | "n" | "ns" => 1,
        "u" | "us" | "µ" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// One parsed line. Reuse it: [`Point::parse`] clears it first, so its vectors
/// keep their capacity from one line to the next.
#[derive(Debug, Default)]
pub(crate) struct Point<'a> {
    /// The measurement and tags as written (escapes and order included): equal
    /// series keys always give equal measurement and tags, which lets callers
    /// cache whatever they derive from them.
    pub(crate) series_key: &'a str,
    pub(crate) measurement: Cow<'a, str>,
    pub(crate) tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// `(key as written, key unescaped, value)`.
    pub(crate) fields: Vec<(&'a str, Cow<'a, str>, FieldValue<'a>)>,
    /// Nanoseconds since the epoch (already scaled by the precision), if given.
    pub(crate) timestamp: Option<i64>,
}

/// What a line is, before parsing it.
pub(crate) enum LineKind<'a> {
    /// Empty, blank or a `#` comment.
    Skip,
    /// Text to parse (leading blank space and a trailing `\r` removed).
    Data(&'a [u8]),
}

/// Classify one `\n`-separated line of a body.
pub(crate) fn classify(line: &[u8]) -> LineKind<'_> {
    let mut start = 0;
    while start < line.len() && matches!(line[start], b' ' | b'\t') {
        start += 1;
    }
    let mut end = line.len();
    while end > start && matches!(line[end - 1], b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    let line = &line[start..end];
    if line.is_empty() || line[0] == b'#' {
        LineKind::Skip
    } else {
        LineKind::Data(line)
    }
}

impl<'a> Point<'a> {
    /// Parse one line (as returned by [`classify`]); `precision` multiplies the timestamp.
    pub(crate) fn parse(&mut self, line: &'a [u8], precision: i64) -> Result<(), LineError> {
        self.tags.clear();
        self.fields.clear();
        self.timestamp = None;
        let line = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
        let b = line.as_bytes();

        // Series key: up to the first unescaped space.
        let series_end = find_unescaped(b, 0, |c| c == b' ');
        self.series_key = &line[..series_end];
        let m_end = find_unescaped(b, 0, |c| c == b',' || c == b' ');
        if m_end == 0 {
            return Err(LineError::MissingMeasurement);
        }
        self.measurement = unescape(&line[..m_end]);
        let mut pos = m_end;
        while pos < series_end {
            // b[pos] == b','
            let start = pos + 1;
            let eq = find_unescaped(b, start, |c| c == b'=' || c == b',' || c == b' ');
            if eq == start || eq >= series_end || b[eq] != b'=' {
                return Err(LineError::BadTag);
            }
            let vstart = eq + 1;
            let vend = find_unescaped(b, vstart, |c| c == b',' || c == b' ' || c == b'=');
            if vend == vstart || (vend < b.len() && b[vend] == b'=') {
                return Err(LineError::BadTag);
            }
            self.tags
                .push((unescape(&line[start..eq]), unescape(&line[vstart..vend])));
            pos = vend;
        }

        // Fields.
        pos = skip_spaces(b, series_end);
        if pos >= b.len() {
            return Err(LineError::MissingFields);
        }
        loop {
            let kstart = pos;
            let eq = find_unescaped(b, kstart, |c| c == b'=' || c == b',' || c == b' ');
            if eq == kstart || eq >= b.len() || b[eq] != b'=' {
                return Err(LineError::BadField);
            }
            let raw_key = &line[kstart..eq];
            let vstart = eq + 1;
            let (value, vend) = parse_field_value(line, vstart)?;
            self.fields.push((raw_key, unescape(raw_key), value));
            pos = vend;
            match b.get(pos) {
                Some(b',') => pos += 1,
                _ => break,
            }
        }

        // Timestamp.
        if pos < b.len() {
            if b[pos] != b' ' && b[pos] != b'\t' {
                return Err(LineError::BadField);
            }
            pos = skip_spaces(b, pos);
            if pos < b.len() {
                let digits = &b[pos..];
                if !digits.iter().all(u8::is_ascii_digit) {
                    return Err(LineError::BadTimestamp);
                }
                let mut ts: i64 = 0;
                for d in digits {
                    ts = ts
                        .checked_mul(10)
                        .and_then(|t| t.checked_add(i64::from(d - b'0')))
                        .ok_or(LineError::BadTimestamp)?;
                }
                self.timestamp = Some(ts.checked_mul(precision).ok_or(LineError::BadTimestamp)?);
            }
        }
        Ok(())
    }
}

fn skip_spaces(b: &[u8], mut pos: usize) -> usize {
    while pos < b.len() && (b[pos] == b' ' || b[pos] == b'\t') {
        pos += 1;
    }
    pos
}

/// Index of the first byte at or after `from` matching `stop` and not escaped
/// by a backslash (or `b.len()`).
fn find_unescaped(b: &[u8], from: usize, stop: impl Fn(u8) -> bool) -> usize {
    let mut i = from;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() {
            i += 2;
            continue;
        }
        if stop(c) {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// Names: `\,`, `\=`, `\ ` and `\\` stand for the character; any other
/// backslash is itself.
fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && matches!(n, ',' | '=' | ' ' | '\\')
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// A field value starting at `start`; returns it and the index just past it.
fn parse_field_value(line: &str, start: usize) -> Result<(FieldValue<'_>, usize), LineError> {
    let b = line.as_bytes();
    if b.get(start) == Some(&b'"') {
        let mut i = start + 1;
        let mut escaped = false;
        while i < b.len() {
            match b[i] {
                b'\\' if i + 1 < b.len() => {
                    escaped = true;
                    i += 2;
                    continue;
                }
                b'"' => {
                    let raw = &line[start + 1..i];
                    let value = if escaped {
                        Cow::Owned(unescape_string(raw))
                    } else {
                        Cow::Borrowed(raw)
                    };
                    let end = i + 1;
                    if end < b.len() && !matches!(b[end], b',' | b' ' | b'\t') {
                        return Err(LineError::BadFieldValue);
                    }
                    return Ok((FieldValue::Str(value), end));
                }
                _ => i += 1,
            }
        }
        return Err(LineError::BadFieldValue);
    }
    let mut end = start;
    while end < b.len() && !matches!(b[end], b',' | b' ' | b'\t') {
        end += 1;
    }
    let token = &line[start..end];
    let value = match token {
        "t" | "T" | "true" | "True" | "TRUE" => FieldValue::Bool(true),
        "f" | "F" | "false" | "False" | "FALSE" => FieldValue::Bool(false),
        _ => FieldValue::Number(parse_number(token).ok_or(LineError::BadFieldValue)?),
    };
    Ok((value, end))
}

/// `1`, `-1.5`, `1e3`, `.5`, `12i`, `-12i`, `12u`; never `inf` or `nan`.
fn parse_number(token: &str) -> Option<f64> {
    let b = token.as_bytes();
    let last = *b.last()?;
    if last == b'i' || last == b'u' {
        let digits = &token[..token.len() - 1];
        let unsigned = last == b'u';
        let body = match digits.as_bytes().first()? {
            b'-' if !unsigned => &digits[1..],
            b'+' => &digits[1..],
            _ => digits,
        };
        if body.is_empty() || !body.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        return digits.parse::<f64>().ok().filter(|f| f.is_finite());
    }
    let first = b[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    token.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// String field values: `\"` and `\\` stand for the character.
fn unescape_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && (n == '"' || n == '\\')
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// Print one line (without the trailing newline), escaping what must be.
/// Numbers are written as floats with a shortest round-trip representation.
/// (The tests' printer: the server never writes line protocol.)
#[cfg(test)]
pub(crate) fn write_line(
    out: &mut String,
    measurement: &str,
    tags: &[(&str, &str)],
    fields: &[(&str, FieldValue<'_>)],
    timestamp: Option<i64>,
) {
    escape_into(out, measurement, &[',', ' ']);
    for (k, v) in tags {
        out.push(',');
        escape_into(out, k, &[',', '=', ' ']);
        out.push('=');
        escape_into(out, v, &[',', '=', ' ']);
    }
    out.push(' ');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        escape_into(out, k, &[',', '=', ' ']);
        out.push('=');
        match v {
            FieldValue::Number(f) => {
                let mut buf = ryu::Buffer::new();
                out.push_str(buf.format(*f));
            }
            FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            FieldValue::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    if let Some(ts) = timestamp {
        out.push(' ');
        out.push_str(&ts.to_string());
    }
}

#[cfg(test)]
fn escape_into(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        if c == '\\' || special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(line: &str) -> Result<Point<'_>, LineError> {
        let mut p = Point::default();
        match classify(line.as_bytes()) {
            LineKind::Skip => Err(LineError::MissingMeasurement),
            LineKind::Data(d) => p.parse(d, 1).map(|()| p),
        }
    }

    #[test]
    fn upstream_examples() {
        let p = parse("mymetric,host=foobar,mytag=myvalue field=123 1510581804179554816").unwrap();
        assert_eq!(p.measurement, "mymetric");
        assert_eq!(p.series_key, "mymetric,host=foobar,mytag=myvalue");
        assert_eq!(
            p.tags,
            vec![
                (Cow::Borrowed("host"), Cow::Borrowed("foobar")),
                (Cow::Borrowed("mytag"), Cow::Borrowed("myvalue"))
            ]
        );
        assert_eq!(p.fields.len(), 1);
        assert_eq!(p.fields[0].2, FieldValue::Number(123.0));
        assert_eq!(p.timestamp, Some(1510581804179554816));
        let p = parse("cpu,path=/foobar,mytag=myvalue field=43i 1510581804179554816").unwrap();
        assert_eq!(p.fields[0].2, FieldValue::Number(43.0));
        assert_eq!(p.tags[0].1, "/foobar");
    }

    #[test]
    fn escapes_and_kinds() {
        let p = parse(r#"my\ m\,x,t\=k=v\ 1\,2 a\ b=-1.5e3,s="q\"x\\",b=t,u=7u,i=-3i"#).unwrap();
        assert_eq!(p.measurement, "my m,x");
        assert_eq!(p.tags[0].0, "t=k");
        assert_eq!(p.tags[0].1, "v 1,2");
        assert_eq!(p.fields[0].1, "a b");
        assert_eq!(p.fields[0].2, FieldValue::Number(-1500.0));
        assert_eq!(p.fields[1].2, FieldValue::Str(Cow::Borrowed("q\"x\\")));
        assert_eq!(p.fields[2].2, FieldValue::Bool(true));
        assert_eq!(p.fields[3].2, FieldValue::Number(7.0));
        assert_eq!(p.fields[4].2, FieldValue::Number(-3.0));
        assert_eq!(p.timestamp, None);
        // Unescaped names are borrowed, escaped ones owned.
        let p = parse("m,a=b f=1").unwrap();
        assert!(matches!(p.measurement, Cow::Borrowed(_)));
        assert!(matches!(p.tags[0].1, Cow::Borrowed(_)));
    }

    #[test]
    fn leading_space_crlf_and_comments() {
        assert!(parse(" cpu,host=a value=1.5 1795280000\r").is_ok());
        assert!(parse("# a comment").is_err());
        assert!(matches!(classify(b"   "), LineKind::Skip));
        assert!(matches!(classify(b"#x"), LineKind::Skip));
    }

    #[test]
    fn precision_scales() {
        let mut p = Point::default();
        p.parse(b"m f=1 1795280000", 1_000_000_000).unwrap();
        assert_eq!(p.timestamp, Some(1_795_280_000_000_000_000));
        assert_eq!(
            p.parse(b"m f=1 99999999999999999", 1_000_000_000),
            Err(LineError::BadTimestamp)
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "m",
            "m ",
            "m,t f=1",
            "m,t= f=1",
            "m,=v f=1",
            "m f",
            "m f=",
            "m f=abc",
            "m f=inf",
            "m f=nan",
            "m f=1 12x",
            "m f=1 -5",
            "m f=\"unterminated",
            "m f=\"x\"y",
            "m f=1i2",
            "m f=-3u",
            ",t=v f=1",
            "m f=1,",
            "m f=1,,g=2",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    fn name() -> impl Strategy<Value = String> {
        // Printable text with the characters that need escaping, never a leading
        // `#` or blank (those change a line's meaning) and no newline.
        "[a-zA-Z0-9_ ,=\\\\/\"é.-]{1,12}"
            .prop_filter("a leading # makes a comment", |s| !s.starts_with('#'))
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut p = Point::default();
            for line in bytes.split(|&b| b == b'\n') {
                if let LineKind::Data(d) = classify(line) {
                    let _ = p.parse(d, 1_000);
                }
            }
        }

        #[test]
        fn random_text_never_panics(s in "[a-z,= \\\\\"0-9.ie+-]{0,60}") {
            let mut p = Point::default();
            if let LineKind::Data(d) = classify(s.as_bytes()) {
                let _ = p.parse(d, 1);
            }
        }

        #[test]
        fn printed_lines_parse_back(
            measurement in name(),
            tags in proptest::collection::vec((name(), name()), 0..4),
            fields in proptest::collection::vec((name(), prop_oneof![
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(FieldValue::Number),
                any::<bool>().prop_map(FieldValue::Bool),
                "[a-z \"\\\\,=]{0,8}".prop_map(|s| FieldValue::Str(Cow::Owned(s))),
            ]), 1..4),
            timestamp in proptest::option::of(0i64..i64::MAX),
        ) {
            let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let field_refs: Vec<(&str, FieldValue)> = fields.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            let mut line = String::new();
            write_line(&mut line, &measurement, &tag_refs, &field_refs, timestamp);
            let mut p = Point::default();
            let LineKind::Data(d) = classify(line.as_bytes()) else {
                return Err(TestCaseError::fail(format!("skipped: {line:?}")));
            };
            p.parse(d, 1).map_err(|e| TestCaseError::fail(format!("{e:?}: {line:?}")))?;
            prop_assert_eq!(&p.measurement, &measurement);
            prop_assert_eq!(p.tags.len(), tags.len());
            for ((k, v), (pk, pv)) in tags.iter().zip(&p.tags) {
                prop_assert_eq!(pk, k);
                prop_assert_eq!(pv, v);
            }
            prop_assert_eq!(p.fields.len(), fields.len());
            for ((k, v), (_, pk, pv)) in fields.iter().zip(&p.fields) {
                prop_assert_eq!(pk, k);
                prop_assert_eq!(pv, v);
            }
            prop_assert_eq!(p.timestamp, timestamp);
        }
    }
}
