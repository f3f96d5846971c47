//! collectd's JSON format, as its `amqp1` plugin sends it (`Format JSON`):
//! each message body is a JSON list of *value lists*,
//!
//! ```json
//! [{"values":[2,5],"dstypes":["derive","derive"],"dsnames":["rx","tx"],
//!   "time":1506712460.824,"interval":10.0,"host":"www.example.com",
//!   "plugin":"interface","plugin_instance":"ens2f1",
//!   "type":"if_errors","type_instance":""}]
//! ```
//!
//! and each value of a value list becomes one measure of the metric named as
//! upstream's gnocchi-amqpd names it (collectd's identifier without the
//! host, `@` between plugin and type): `<plugin>[-<plugin_instance>]@<type>
//! [-<type_instance>]`, then `-<dsname>` when the value list has more than
//! one value (`interface-ens2f1@if_errors-rx`, `memory@memory-free`).
//!
//! A measure is timestamped with the value list's `time` (when collectd
//! sampled it), not with its arrival as upstream does, so messages that
//! waited in the broker while gnocchid was away keep their own times and a
//! message delivered twice writes the same measures twice
//! (docs/amqpd.md). A value list without a usable `time` takes the arrival
//! time.
//!
//! Invariant: no input makes decoding fail as a whole beyond its own
//! message; a bad value list is reported and the rest of the message kept.

use carbonara::{Measure, Timestamp};
use serde::Deserialize;

/// The longest host name the resource type's `host` attribute holds
/// (upstream's type: a string of 0 to 255 characters).
pub const MAX_HOST_LENGTH: usize = 255;

/// One value list, with the fields this daemon uses (others, `meta` say,
/// are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct ValueList {
    /// `null` where collectd had no value (a NaN gauge).
    pub values: Vec<Option<f64>>,
    pub dsnames: Vec<String>,
    /// Seconds since the epoch, with a fraction.
    #[serde(default)]
    pub time: Option<f64>,
    pub host: String,
    pub plugin: String,
    #[serde(default)]
    pub plugin_instance: String,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default)]
    pub type_instance: String,
}

/// One measure for one metric of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub host: String,
    pub metric: String,
    pub measure: Measure,
}

/// Why (part of) a message was skipped.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the message is not a JSON list of collectd value lists: {0}")]
    NotAList(#[source] serde_json::Error),
    #[error("value list {index} is not a collectd value list: {source}")]
    BadValueList {
        index: usize,
        source: serde_json::Error,
    },
    #[error("value list {index} has {values} values but {dsnames} dsnames")]
    DsnamesMismatch {
        index: usize,
        values: usize,
        dsnames: usize,
    },
    #[error("value list {index}: host name of {len} characters (at most {max})", max = MAX_HOST_LENGTH)]
    HostTooLong { index: usize, len: usize },
}

/// The measures of one message body, and what was skipped in it.
#[derive(Debug, Default)]
pub struct Decoded {
    pub samples: Vec<Sample>,
    pub skipped: Vec<DecodeError>,
}

/// Decodes a message body; `received` stamps value lists without a `time`.
/// Each value list is decoded on its own, so one bad list costs only itself.
pub fn decode(body: &[u8], received: Timestamp) -> Decoded {
    let mut out = Decoded::default();
    let lists: Vec<serde_json::Value> = match serde_json::from_slice(body) {
        Ok(l) => l,
        Err(e) => {
            out.skipped.push(DecodeError::NotAList(e));
            return out;
        }
    };
    for (index, list) in lists.into_iter().enumerate() {
        match serde_json::from_value::<ValueList>(list) {
            Err(source) => out
                .skipped
                .push(DecodeError::BadValueList { index, source }),
            Ok(vl) => {
                if let Err(e) = samples_of(&vl, index, received, &mut out.samples) {
                    out.skipped.push(e);
                }
            }
        }
    }
    out
}

fn samples_of(
    vl: &ValueList,
    index: usize,
    received: Timestamp,
    out: &mut Vec<Sample>,
) -> Result<(), DecodeError> {
    if vl.values.len() != vl.dsnames.len() {
        return Err(DecodeError::DsnamesMismatch {
            index,
            values: vl.values.len(),
            dsnames: vl.dsnames.len(),
        });
    }
    let len = vl.host.chars().count();
    if len > MAX_HOST_LENGTH {
        return Err(DecodeError::HostTooLong { index, len });
    }
    let timestamp = vl.time.and_then(seconds_to_ns).unwrap_or(received);
    for (i, value) in vl.values.iter().enumerate() {
        // NaN gauges arrive as null: nothing to record.
        let Some(value) = value else { continue };
        out.push(Sample {
            host: vl.host.clone(),
            metric: metric_name(vl, i),
            measure: Measure::new(timestamp, *value),
        });
    }
    Ok(())
}

/// collectd's identifier of value `index`, in upstream's gnocchi-amqpd form.
pub fn metric_name(vl: &ValueList, index: usize) -> String {
    let mut name = vl.plugin.clone();
    if !vl.plugin_instance.is_empty() {
        name.push('-');
        name.push_str(&vl.plugin_instance);
    }
    name.push('@');
    name.push_str(&vl.type_name);
    if !vl.type_instance.is_empty() {
        name.push('-');
        name.push_str(&vl.type_instance);
    }
    if vl.dsnames.len() > 1
        && let Some(ds) = vl.dsnames.get(index)
    {
        name.push('-');
        name.push_str(ds);
    }
    name
}

/// collectd's `time` (seconds, with a fraction) in nanoseconds; `None` for
/// what is no time (negative, zero, not finite, past year 2262).
fn seconds_to_ns(seconds: f64) -> Option<Timestamp> {
    let ns = (seconds * 1e9).round();
    (ns.is_finite() && ns > 0.0 && ns < i64::MAX as f64).then_some(ns as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED: Timestamp = 1_700_000_000_000_000_000;

    /// The two value lists of upstream's own test of gnocchi-amqpd.
    const UPSTREAM_EXAMPLE: &str = r#"[
      {"dstypes": ["gauge"], "plugin": "memory", "dsnames": ["value"], "interval": 10.0,
       "host": "www.gnocchi.test.com", "values": [9], "time": 1506712460.824,
       "plugin_instance": "", "type_instance": "free", "type": "memory"},
      {"dstypes": ["derive", "derive"], "plugin": "interface", "dsnames": ["rx", "tx"],
       "interval": 10.0, "host": "www.gnocchi.test.com", "values": [2, 5],
       "time": 1506712460.824, "plugin_instance": "ens2f1", "type_instance": "",
       "type": "if_errors"}
    ]"#;

    fn names(d: &Decoded) -> Vec<&str> {
        d.samples.iter().map(|s| s.metric.as_str()).collect()
    }

    #[test]
    fn metrics_are_named_as_upstream_names_them() {
        let d = decode(UPSTREAM_EXAMPLE.as_bytes(), RECEIVED);
        assert!(d.skipped.is_empty(), "{:?}", d.skipped);
        assert_eq!(
            names(&d),
            [
                "memory@memory-free",
                "interface-ens2f1@if_errors-rx",
                "interface-ens2f1@if_errors-tx"
            ]
        );
        let values: Vec<f64> = d.samples.iter().map(|s| s.measure.value).collect();
        assert_eq!(values, [9.0, 2.0, 5.0]);
        assert!(d.samples.iter().all(|s| s.host == "www.gnocchi.test.com"));
    }

    #[test]
    fn measures_keep_collectds_time() {
        let d = decode(UPSTREAM_EXAMPLE.as_bytes(), RECEIVED);
        assert_eq!(d.samples[0].measure.timestamp, 1_506_712_460_824_000_000);
    }

    #[test]
    fn value_lists_without_time_take_the_arrival_time() {
        let body = br#"[{"values":[1],"dsnames":["value"],"host":"h","plugin":"load",
            "plugin_instance":"","type":"load","type_instance":""},
            {"values":[2],"dsnames":["value"],"host":"h","plugin":"cpu","type":"x","time":-3}]"#;
        let d = decode(body, RECEIVED);
        assert!(d.skipped.is_empty(), "{:?}", d.skipped);
        assert!(d.samples.iter().all(|s| s.measure.timestamp == RECEIVED));
        assert_eq!(names(&d), ["load@load", "cpu@x"]);
    }

    #[test]
    fn a_single_value_keeps_its_dsname_out_of_the_name() {
        let body = br#"[{"values":[0.5],"dsnames":["value"],"host":"h","plugin":"cpu",
            "plugin_instance":"0","type":"percent","type_instance":"idle","time":1}]"#;
        assert_eq!(names(&decode(body, RECEIVED)), ["cpu-0@percent-idle"]);
    }

    #[test]
    fn null_values_are_skipped_and_the_others_kept() {
        let body = br#"[{"values":[null,3],"dsnames":["a","b"],"host":"h","plugin":"p",
            "type":"t","time":1}]"#;
        let d = decode(body, RECEIVED);
        assert!(d.skipped.is_empty());
        assert_eq!(names(&d), ["p@t-b"]);
    }

    #[test]
    fn a_bad_value_list_costs_only_itself() {
        let body = br#"[{"values":"x"},
            {"values":[1,2],"dsnames":["only-one"],"host":"h","plugin":"p","type":"t"},
            {"values":[7],"dsnames":["value"],"host":"h","plugin":"ok","type":"t","time":1}]"#;
        let d = decode(body, RECEIVED);
        assert_eq!(names(&d), ["ok@t"]);
        assert_eq!(d.skipped.len(), 2);
        assert!(matches!(
            d.skipped[0],
            DecodeError::BadValueList { index: 0, .. }
        ));
        assert!(matches!(
            d.skipped[1],
            DecodeError::DsnamesMismatch { index: 1, .. }
        ));
    }

    #[test]
    fn bodies_that_are_no_list_are_reported_not_fatal() {
        for body in [&b""[..], b"{}", b"not json", b"[1", b"\xff\xfe"] {
            let d = decode(body, RECEIVED);
            assert!(d.samples.is_empty());
            assert!(matches!(d.skipped[..], [DecodeError::NotAList(_)]));
        }
        assert!(decode(b"[]", RECEIVED).skipped.is_empty());
    }

    #[test]
    fn hosts_longer_than_the_attribute_allows_are_skipped() {
        let host = "h".repeat(MAX_HOST_LENGTH + 1);
        let body = format!(
            r#"[{{"values":[1],"dsnames":["value"],"host":"{host}","plugin":"p","type":"t"}}]"#
        );
        let d = decode(body.as_bytes(), RECEIVED);
        assert!(d.samples.is_empty());
        assert!(matches!(d.skipped[..], [DecodeError::HostTooLong { .. }]));
    }

    #[test]
    fn counters_beyond_f64_precision_still_decode() {
        let body = br#"[{"values":[18446744073709551615],"dsnames":["value"],"host":"h",
            "plugin":"p","type":"t","time":1}]"#;
        let d = decode(body, RECEIVED);
        assert_eq!(d.samples.len(), 1);
    }
}
