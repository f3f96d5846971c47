//! The body of `POST .../measures` and of the batch endpoints: a list of
//! `{"timestamp", "value"}`, refused with upstream's messages.

use crate::wire::error::{ApiError, ApiResult};
use carbonara::time::{self, TimestampKind};
use carbonara::{Measure, Timestamp};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::borrow::Cow;

/// A measure field as sent: numbers and numeric strings alike, and lists and
/// objects kept apart, for upstream tells them apart in its messages.
#[derive(Debug)]
pub(crate) enum Scalar<'a> {
    /// A number, a bool (1.0 or 0.0), or a non-finite number (see
    /// [`crate::wire::http::from_json_slice`]).
    Num(f64),
    Str(Cow<'a, str>),
    Null,
    List,
    Object,
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(v as f64))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                // Python's float(True) is 1.0.
                Ok(Scalar::Num(if v { 1.0 } else { 0.0 }))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::List)
            }
            fn visit_map<M: de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                // `{"gnocchi-rs:non-finite": "NaN"}` alone is the float NaN.
                let mut entries = 0;
                let mut number = None;
                while let Some(key) = map.next_key::<Cow<str>>()? {
                    entries += 1;
                    if key == crate::wire::http::NON_FINITE_KEY {
                        let token = map.next_value::<Scalar>()?;
                        if let Scalar::Str(t) = token {
                            number = crate::wire::http::non_finite(&t);
                        }
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                Ok(match number {
                    Some(f) if entries == 1 => Scalar::Num(f),
                    _ => Scalar::Object,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// One element of a measures list; other keys are ignored, as upstream does.
/// Missing fields are reported by [`convert_measures`], in upstream's order.
#[derive(Debug)]
pub(crate) struct RawMeasure<'a> {
    timestamp: Option<Scalar<'a>>,
    value: Option<Scalar<'a>>,
}

/// A key of a measure object, read without allocating.
enum Field {
    Timestamp,
    Value,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "timestamp" => Field::Timestamp,
                    "value" => Field::Value,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Only a JSON object is a measure: serde's derive would also take a
/// `[timestamp, value]` array, which upstream refuses.
impl<'de: 'a, 'a> Deserialize<'de> for RawMeasure<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMeasure<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a measure object")
            }
            fn visit_map<M: de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut timestamp = None;
                let mut value = None;
                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        Field::Timestamp => timestamp = Some(map.next_value::<Scalar<'de>>()?),
                        Field::Value => value = Some(map.next_value::<Scalar<'de>>()?),
                        Field::Other => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(RawMeasure { timestamp, value })
            }
        }
        d.deserialize_map(V)
    }
}

fn invalid(reason: impl Into<String>) -> ApiError {
    ApiError::invalid_input(reason, Vec::new())
}

/// Upstream's reasons for a measures list it refuses (`MeasuresListSchema`).
pub(crate) const BAD_FORMAT: &str = "unexpected measures format";
pub(crate) const BAD_VALUE: &str = "unexpected measures value";
pub(crate) const BAD_TIMESTAMP: &str = "unexpected timestamp 'Unable to convert timestamps'";
pub(crate) const BEFORE_EPOCH: &str = "unexpected timestamp 'Timestamp must be after Epoch'";

/// Parse a `[{"timestamp", "value"}, ...]` body (already known to be JSON-typed).
pub(crate) fn parse_measures_body(body: &[u8], now: Timestamp) -> ApiResult<Vec<Measure>> {
    let mut scratch = Vec::new();
    let raw: Vec<RawMeasure> =
        crate::wire::http::from_json_slice(body, &mut scratch).map_err(|e| {
            if e.is_data() {
                invalid(BAD_FORMAT)
            } else {
                crate::wire::http::decode_error(body, &e)
            }
        })?;
    convert_measures(&raw, now).map_err(invalid)
}

/// The timestamps and values of a measures list, or upstream's reason for
/// refusing it (one of the constants above).
///
/// As upstream (`MeasuresListSchema`, `utils.to_timestamps`): every element
/// needs a timestamp; the format of the first timestamp (seconds since Epoch,
/// ISO date or relative time) applies to all, and any that does not convert
/// refuses the list; only then is any timestamp checked against Epoch; only
/// then are the values read.
///
/// Where upstream accepts by accident, ours refuses, as `Unable to convert
/// timestamps`: a number after an ISO date (numpy reads an integer as
/// nanoseconds), a NaN timestamp, or a `null` after the first (both NaT to
/// pandas, which then loses the batch).
pub(crate) fn convert_measures(
    raw: &[RawMeasure],
    now: Timestamp,
) -> Result<Vec<Measure>, &'static str> {
    let Some(first) = raw.first() else {
        return Ok(Vec::new());
    };
    // Upstream: a KeyError, so a 500.
    if raw.iter().any(|m| m.timestamp.is_none()) {
        return Err(BAD_FORMAT);
    }
    let kind = match &first.timestamp {
        Some(Scalar::Num(_)) => TimestampKind::Epoch,
        Some(Scalar::Str(s)) => time::classify_timestamp(s).ok_or(BAD_TIMESTAMP)?,
        // `float()` of it: a TypeError.
        _ => return Err(BAD_FORMAT),
    };
    let mut out = Vec::with_capacity(raw.len());
    let mut before_epoch = false;
    for m in raw {
        let Some(ts) = &m.timestamp else {
            return Err(BAD_FORMAT);
        };
        let ts = match (ts, kind) {
            (Scalar::Num(f), TimestampKind::Epoch) => time::timestamp_from_epoch_seconds(*f),
            (Scalar::Num(f), TimestampKind::Relative) => {
                time::timespan_from_seconds(*f).and_then(|span| {
                    now.checked_add(span)
                        .ok_or(time::TimeError::InvalidTimespan)
                })
            }
            (Scalar::Str(s), kind) => time::parse_timestamp_kind(s, kind, now),
            // numpy: a ValueError, as a list in a list of numbers.
            (Scalar::Num(_) | Scalar::List | Scalar::Object, TimestampKind::Iso)
            | (Scalar::List, TimestampKind::Epoch)
            | (Scalar::Null, TimestampKind::Relative) => return Err(BAD_TIMESTAMP),
            // A TypeError (`float({})`, pytimeparse of a non-string); `null`
            // after the first is pandas' NaT, kept out (see above).
            (Scalar::List | Scalar::Object, _) | (Scalar::Null, _) => return Err(BAD_FORMAT),
        };
        match ts {
            Ok(ts) if ts >= 0 => out.push(Measure::new(ts, 0.0)),
            Ok(_) | Err(time::TimeError::BeforeEpoch) => before_epoch = true,
            Err(_) => return Err(BAD_TIMESTAMP),
        }
    }
    if before_epoch {
        return Err(BEFORE_EPOCH);
    }
    for (m, point) in raw.iter().zip(out.iter_mut()) {
        point.value = match &m.value {
            Some(Scalar::Num(f)) => *f,
            Some(Scalar::Str(s)) => s.trim().parse::<f64>().map_err(|_| BAD_VALUE)?,
            _ => return Err(BAD_VALUE),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = 1_700_000_000_000_000_000;
    const T0: Timestamp = 1_704_067_200_000_000_000; // 2024-01-01T00:00:00Z

    fn parsed(body: &str) -> Vec<(Timestamp, f64)> {
        let got = parse_measures_body(body.as_bytes(), NOW).unwrap();
        got.into_iter().map(|m| (m.timestamp, m.value)).collect()
    }

    /// The body as upstream 4.7.1 answers it: `cause`, `reason`.
    fn refused(body: &str) -> (String, String) {
        let e = parse_measures_body(body.as_bytes(), NOW).unwrap_err();
        (
            e.description["cause"].as_str().unwrap().to_string(),
            e.description["reason"].as_str().unwrap().to_string(),
        )
    }

    fn reason(body: &str) -> String {
        let (cause, reason) = refused(body);
        assert_eq!(cause, "Invalid input", "{body}");
        reason
    }

    #[test]
    fn nan_and_infinity_literals_are_stored_as_upstream_stores_them() {
        let got = parsed(
            r#"[{"timestamp": "2024-01-01T00:00:00", "value": NaN},
                {"timestamp": "2024-01-01T00:00:01", "value": Infinity},
                {"timestamp": "2024-01-01T00:00:02", "value": -Infinity},
                {"timestamp": "2024-01-01T00:00:03", "value": 1e400},
                {"timestamp": "2024-01-01T00:00:04", "value": -1e400}]"#,
        );
        assert!(got[0].1.is_nan());
        assert_eq!(
            got[1..].iter().map(|p| p.1).collect::<Vec<_>>(),
            [
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY
            ]
        );
        assert_eq!(got[4].0, T0 + 4_000_000_000);
    }

    #[test]
    fn a_literal_where_a_measure_belongs_is_a_format_error() {
        assert_eq!(reason("NaN"), BAD_FORMAT);
        assert_eq!(
            reason(r#"[{"timestamp": "2024-01-01T00:00:00", "value": 1}, NaN]"#),
            BAD_FORMAT
        );
    }

    #[test]
    fn a_nan_timestamp_is_refused_where_pandas_would_lose_the_batch() {
        assert_eq!(reason(r#"[{"timestamp": NaN, "value": 1}]"#), BAD_TIMESTAMP);
        assert_eq!(
            reason(r#"[{"timestamp": 1e400, "value": 1}]"#),
            BAD_TIMESTAMP
        );
    }

    #[test]
    fn a_missing_list_or_object_value_is_an_unexpected_value() {
        for body in [
            r#"[{"timestamp": "2024-01-01T00:00:00"}]"#,
            r#"[{"timestamp": "2024-01-01T00:00:00", "value": [1]}]"#,
            r#"[{"timestamp": "2024-01-01T00:00:00", "value": {}}]"#,
            r#"[{"timestamp": "2024-01-01T00:00:00", "value": null}]"#,
            r#"[{"timestamp": "2024-01-01T00:00:00", "value": "abc"}]"#,
        ] {
            assert_eq!(reason(body), BAD_VALUE, "{body}");
        }
    }

    #[test]
    fn an_unparsable_timestamp_is_unable_to_convert_timestamps() {
        for body in [
            r#"[{"timestamp": "foo", "value": 1}]"#,
            r#"[{"timestamp": "2024-13-45T00:00:00", "value": 1}]"#,
            r#"[{"timestamp": "foo"}]"#,
        ] {
            assert_eq!(reason(body), BAD_TIMESTAMP, "{body}");
        }
    }

    #[test]
    fn a_batch_mixing_timestamp_formats_is_unable_to_convert_timestamps() {
        for (first, second) in [
            (r#"1704067260"#, r#""2024-01-01T00:00:00""#),
            (r#""1704067260""#, r#""2024-01-01T00:00:00""#),
            (r#""2024-01-01T00:00:00""#, r#"1704067260.5"#),
            // Upstream reads this int as nanoseconds (a pandas accident).
            (r#""2024-01-01T00:00:00""#, r#"1704067260"#),
            (r#""2024-01-01T00:00:00""#, r#""foo""#),
            (r#""2024-01-01T00:00:00""#, r#"{}"#),
            (r#""2024-01-01T00:00:00""#, r#"[1]"#),
            (r#"1704067260"#, r#"[1]"#),
            (r#""-5 minutes""#, r#""2024-01-01T00:00:00""#),
            (r#""-5 minutes""#, r#"null"#),
        ] {
            let body = format!(
                r#"[{{"timestamp": {first}, "value": 1}}, {{"timestamp": {second}, "value": 2}}]"#
            );
            assert_eq!(reason(&body), BAD_TIMESTAMP, "{body}");
        }
    }

    #[test]
    fn a_timestamp_that_cannot_be_a_float_is_a_format_error() {
        for body in [
            r#"[{"timestamp": null, "value": 1}]"#,
            r#"[{"timestamp": {}, "value": 1}]"#,
            r#"[{"timestamp": [1], "value": 1}]"#,
            r#"[{"timestamp": 1704067260, "value": 1}, {"timestamp": {}, "value": 2}]"#,
            r#"[{"timestamp": "-5 minutes", "value": 1}, {"timestamp": {}, "value": 2}]"#,
            r#"[{"value": 1}]"#,
            r#"[["2024-01-01T00:00:00", 1]]"#,
        ] {
            assert_eq!(reason(body), BAD_FORMAT, "{body}");
        }
    }

    #[test]
    fn timestamps_are_checked_before_values_and_conversion_before_epoch() {
        assert_eq!(
            reason(
                r#"[{"timestamp": "2024-01-01T00:00:00", "value": "abc"},
                    {"timestamp": "foo", "value": 1}]"#
            ),
            BAD_TIMESTAMP
        );
        assert_eq!(
            reason(r#"[{"timestamp": -5, "value": 1}, {"timestamp": "foo", "value": 1}]"#),
            BAD_TIMESTAMP
        );
        assert_eq!(
            reason(r#"[{"timestamp": -5, "value": "abc"}]"#),
            BEFORE_EPOCH
        );
    }

    #[test]
    fn relative_batches_take_numbers_as_seconds_from_now() {
        let got = parsed(
            r#"[{"timestamp": "-5 minutes", "value": 1},
                {"timestamp": 10, "value": 2},
                {"timestamp": "10", "value": 3}]"#,
        );
        assert_eq!(
            got,
            [
                (NOW - 300_000_000_000, 1.0),
                (NOW + 10_000_000_000, 2.0),
                (NOW + 10_000_000_000, 3.0)
            ]
        );
    }

    #[test]
    fn an_iso_batch_reads_a_bare_year_as_numpy_does() {
        let got = parsed(
            r#"[{"timestamp": "2024-01-01T00:00:00", "value": 1},
                {"timestamp": "2015", "value": 2}]"#,
        );
        assert_eq!(got[1], (1_420_070_400_000_000_000, 2.0));
    }

    #[test]
    fn a_body_that_is_not_json_is_unable_to_decode() {
        assert_eq!(refused("not json").0, "Unable to decode body");
        assert_eq!(
            refused("  "),
            (
                "Unable to decode body".into(),
                "Expected object or value".into()
            )
        );
    }
}
