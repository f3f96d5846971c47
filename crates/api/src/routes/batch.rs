//! `/v1/batch/...`: measures for many metrics in one request.
//!
//! - `POST /v1/batch/metrics/measures`: `{"<metric id>": [measures], ...}`.
//! - `POST /v1/batch/resources/metrics/measures[?create_metrics=true]`:
//!   `{"<resource id>": {"<metric name>": [measures] | {"archive_policy_name"?,
//!   "unit"?, "measures": [measures]}}}`; with `create_metrics`, missing
//!   metrics are created on their (existing) resource.
//!
//! All or nothing, as upstream: the whole body is parsed and validated, then
//! the ingest service looks every metric and resource up, the policy is
//! checked on the whole plan, and only then are metrics created and all the
//! measures handed to the incoming store in one call. Unlike upstream,
//! unknown resources are reported before any metric is created, so a refused
//! request changes nothing.
//!
//! Bodies are read with typed serde visitors that borrow from the request (no
//! JSON tree per measure); only when that fails is the body read again as a
//! tree, to say precisely what is wrong.

use crate::AppState;
use crate::access::auth::Creds;
use crate::ingest::{self, Authorizer};
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::accepted;
use crate::wire::http::{Ctx, json_body_typed_check};
use crate::wire::measures_body::{BAD_FORMAT, RawMeasure, convert_measures};
use crate::wire::params::now;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use carbonara::{Measure, Timestamp};
use gnocchi_ingest::{MetricRef, MetricWrite, Missing, NamedWrite, Request, ResourceWrite};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/batch/metrics/measures", post(metrics_measures))
        .route(
            "/batch/resources/metrics/measures",
            post(resources_metrics_measures),
        )
}

/// A JSON object read as its entries in order, keys borrowed when unescaped.
struct Entries<'a, V>(Vec<(Cow<'a, str>, V)>);

impl<'de: 'a, 'a, V: Deserialize<'de>> Deserialize<'de> for Entries<'a, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<'a, V>(PhantomData<(&'a (), V)>);
        impl<'de: 'a, 'a, V: Deserialize<'de>> Visitor<'de> for Vis<'a, V> {
            type Value = Entries<'a, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v = map.next_value::<V>()?;
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Vis(PhantomData))
    }
}

/// `Cow<str>` only borrows with `#[serde(borrow)]`; this newtype does it for map keys.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(Vis)
    }
}

/// One metric's entry in the resources batch, either form.
struct MetricEntry<'a> {
    archive_policy_name: Option<Cow<'a, str>>,
    unit: Option<Cow<'a, str>>,
    measures: Vec<RawMeasure<'a>>,
    /// Given as `{"measures": [...]}`: errors name that key too.
    nested: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for MetricEntry<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = MetricEntry<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of measures or an object")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut measures = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(m) = seq.next_element::<RawMeasure<'de>>()? {
                    measures.push(m);
                }
                Ok(MetricEntry {
                    archive_policy_name: None,
                    unit: None,
                    measures,
                    nested: false,
                })
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entry = MetricEntry {
                    archive_policy_name: None,
                    unit: None,
                    measures: Vec::new(),
                    nested: true,
                };
                let mut has_measures = false;
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    match k.as_ref() {
                        "archive_policy_name" => {
                            entry.archive_policy_name = Some(map.next_value::<Key<'de>>()?.0)
                        }
                        "unit" => entry.unit = Some(map.next_value::<Key<'de>>()?.0),
                        "measures" => {
                            entry.measures = map.next_value()?;
                            has_measures = true;
                        }
                        _ => return Err(de::Error::custom("extra keys not allowed")),
                    }
                }
                if !has_measures {
                    return Err(de::Error::missing_field("measures"));
                }
                Ok(entry)
            }
        }
        d.deserialize_any(Vis)
    }
}

/// A typed parse failed: say what is wrong, as precisely as upstream.
fn body_error(body: &[u8], resources: bool) -> ApiError {
    let mut scratch = Vec::new();
    let value: Value = match crate::wire::http::from_json_slice(body, &mut scratch) {
        Ok(v) => v,
        Err(e) => return crate::wire::http::decode_error(body, &e),
    };
    let root = crate::wire::validate::Path::root();
    let Some(map) = crate::wire::http::dict(&value) else {
        return root.invalid("expected a dictionary");
    };
    let measures_error = |v: &Value, path: &crate::wire::validate::Path| -> Option<ApiError> {
        match Vec::<RawMeasure>::deserialize(v) {
            Ok(raw) => convert(&raw, now(), || path.clone()).err(),
            Err(_) => Some(path.invalid(BAD_FORMAT)),
        }
    };
    for (k, v) in map {
        let path = root.key(k);
        if !resources {
            if let Some(e) = measures_error(v, &path) {
                return e;
            }
            continue;
        }
        let Some(metrics) = crate::wire::http::dict(v) else {
            return path.invalid("expected a dictionary");
        };
        for (name, entry) in metrics {
            let path = path.key(name);
            match entry {
                Value::Object(o) if !crate::wire::http::is_non_finite(entry) => {
                    for key in o.keys() {
                        if !["archive_policy_name", "unit", "measures"].contains(&key.as_str()) {
                            return path.key(key).invalid("extra keys not allowed");
                        }
                    }
                    for key in ["archive_policy_name", "unit"] {
                        if o.get(key).is_some_and(|v| !v.is_string()) {
                            return path.key(key).invalid("expected str");
                        }
                    }
                    let Some(m) = o.get("measures") else {
                        return path.key("measures").invalid("required key not provided");
                    };
                    if let Some(e) = measures_error(m, &path.key("measures")) {
                        return e;
                    }
                }
                other => {
                    if let Some(e) = measures_error(other, &path) {
                        return e;
                    }
                }
            }
        }
    }
    // The typed reader and this one disagree: report the generic message.
    root.invalid(BAD_FORMAT)
}

/// The typed body (see [`crate::wire::http::from_json_slice`] for `scratch`).
fn parse_typed<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    scratch: &'a mut Vec<u8>,
    resources: bool,
) -> ApiResult<T> {
    crate::wire::http::from_json_slice(body, scratch).map_err(|_| body_error(body, resources))
}

/// Convert a measures list; upstream names where it is in any error
/// (`... for dictionary value @ data['<id>']`). `path` is only built then.
fn convert(
    raw: &[RawMeasure],
    now: Timestamp,
    path: impl FnOnce() -> crate::wire::validate::Path,
) -> ApiResult<Vec<Measure>> {
    convert_measures(raw, now).map_err(|reason| path().invalid(reason))
}

async fn metrics_measures(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    json_body_typed_check(&headers, "application/json")?;
    let mut scratch = Vec::new();
    let entries: Entries<Vec<RawMeasure>> = parse_typed(&body, &mut scratch, false)?;
    let now = now();
    // Validate every key and every measure first; a repeated id keeps its last list.
    let mut by_id: HashMap<Uuid, usize> = HashMap::with_capacity(entries.0.len());
    let mut request = Request {
        creator: Some(creds.creator()),
        ..Default::default()
    };
    for (key, raw) in &entries.0 {
        let path = || crate::wire::validate::Path::root().key(key);
        let id = Uuid::parse_str(key).map_err(|_| path().invalid("extra keys not allowed"))?;
        let measures = convert(raw, now, path)?;
        match by_id.get(&id) {
            Some(&i) => request.metrics[i].measures = measures,
            None => {
                by_id.insert(id, request.metrics.len());
                request.metrics.push(MetricWrite {
                    metric: MetricRef::Id(id),
                    measures,
                });
            }
        }
    }
    ingest::write(&state, &mut Authorizer::new(&state, &creds), request).await?;
    Ok(accepted())
}

async fn resources_metrics_measures(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    json_body_typed_check(&headers, "application/json")?;
    let missing = match ctx.bool_param("create_metrics")?.unwrap_or(false) {
        true => Missing::CreateMetrics,
        false => Missing::Refuse,
    };
    let creator = creds.creator();
    let mut scratch = Vec::new();
    let entries: Entries<Entries<MetricEntry>> = parse_typed(&body, &mut scratch, true)?;
    let now = now();
    let mut resources = Vec::with_capacity(entries.0.len());
    for (original_id, metrics) in entries.0 {
        resources.push(resource_write(
            original_id,
            metrics,
            &creator,
            now,
            missing.clone(),
        )?);
    }
    if resources.iter().all(|r| r.metrics.is_empty()) {
        return Ok(accepted());
    }
    let request = Request {
        creator: Some(creator),
        metrics: Vec::new(),
        resources,
    };
    ingest::write(&state, &mut Authorizer::new(&state, &creds), request).await?;
    Ok(accepted())
}

/// One resource of the resources batch, validated: its id, metric
/// definitions and measures.
fn resource_write(
    original_id: Cow<'_, str>,
    metrics: Entries<MetricEntry>,
    creator: &str,
    now: Timestamp,
    missing: Missing,
) -> ApiResult<ResourceWrite> {
    let root = || crate::wire::validate::Path::root().key(&original_id);
    let id = ingest::resource_uuid(&original_id, Some(creator)).map_err(|r| root().invalid(&r))?;
    let mut list: Vec<NamedWrite> = Vec::with_capacity(metrics.0.len());
    for (name, entry) in metrics.0 {
        let measures = convert(&entry.measures, now, || {
            let path = root().key(&name);
            if entry.nested {
                path.key("measures")
            } else {
                path
            }
        })?;
        if let Some(unit) = &entry.unit
            && unit.chars().count() > 31
        {
            return Err(root()
                .key(&name)
                .key("unit")
                .invalid("length of value must be at most 31"));
        }
        // A repeated name keeps its last definition, as a JSON object in Python.
        list.retain(|n| n.name != name);
        list.push(NamedWrite {
            name: name.into_owned(),
            archive_policy_name: entry.archive_policy_name.map(Cow::into_owned),
            unit: entry.unit.map(Cow::into_owned),
            measures,
        });
    }
    Ok(ResourceWrite {
        id,
        original_id: original_id.into_owned(),
        missing,
        metrics: list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_borrowed() {
        let body = br#"{"r1": {"a": [{"timestamp": 1, "value": 2}], "b": {"unit": "ks", "measures": []}}}"#;
        let e: Entries<Entries<MetricEntry>> = serde_json::from_slice(body).unwrap();
        assert_eq!(e.0.len(), 1);
        assert!(matches!(e.0[0].0, Cow::Borrowed("r1")));
        let m = &e.0[0].1.0;
        assert_eq!(m[0].1.measures.len(), 1);
        assert_eq!(m[1].1.unit.as_deref(), Some("ks"));
        assert!(
            serde_json::from_slice::<Entries<Entries<MetricEntry>>>(
                br#"{"r": {"a": {"x": 1, "measures": []}}}"#
            )
            .is_err()
        );
        assert!(
            serde_json::from_slice::<Entries<Entries<MetricEntry>>>(
                br#"{"r": {"a": {"unit": "u"}}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let e = body_error(br#"{"r": {"a": [["2015-03-06T14:33:57", 43.1]]}}"#, true);
        assert_eq!(
            e.description["reason"],
            "unexpected measures format for dictionary value @ data['r']['a']"
        );
        let e = body_error(b"[1]", false);
        assert_eq!(e.description["reason"], "expected a dictionary");
        let e = body_error(b"{", false);
        assert_eq!(e.description["cause"], "Unable to decode body");
    }

    #[test]
    fn measures_errors_name_the_metric_as_upstream() {
        let e = body_error(br#"{"m": [{"timestamp": "foo", "value": NaN}]}"#, false);
        assert_eq!(
            e.description["reason"],
            "unexpected timestamp 'Unable to convert timestamps' for dictionary value @ data['m']"
        );
        assert_eq!(e.description["detail"], serde_json::json!(["m"]));
        let e = body_error(
            br#"{"r": {"a": {"measures": [{"timestamp": "2024-01-01T00:00:00"}]}}}"#,
            true,
        );
        assert_eq!(
            e.description["reason"],
            "unexpected measures value for dictionary value @ data['r']['a']['measures']"
        );
        let e = body_error(br#"{"m": NaN}"#, false);
        assert_eq!(
            e.description["reason"],
            "unexpected measures format for dictionary value @ data['m']"
        );
        let e = body_error(br#"{"r": {"a": Infinity}}"#, true);
        assert_eq!(
            e.description["reason"],
            "unexpected measures format for dictionary value @ data['r']['a']"
        );
        let e = body_error(br#"{"r": -Infinity}"#, true);
        assert_eq!(
            e.description["reason"],
            "expected a dictionary for dictionary value @ data['r']"
        );
        let e = body_error(b"NaN", true);
        assert_eq!(e.description["reason"], "expected a dictionary");
    }

    #[test]
    fn nan_values_parse_in_both_batches() {
        let mut scratch = Vec::new();
        let e: Entries<Vec<RawMeasure>> = parse_typed(
            br#"{"m": [{"timestamp": 1, "value": NaN}]}"#,
            &mut scratch,
            false,
        )
        .unwrap();
        let got = convert_measures(&e.0[0].1, 0).unwrap();
        assert!(got[0].value.is_nan());
        let mut scratch = Vec::new();
        let e: Entries<Entries<MetricEntry>> = parse_typed(
            br#"{"r": {"a": {"measures": [{"timestamp": 1, "value": -1e400}]}}}"#,
            &mut scratch,
            true,
        )
        .unwrap();
        let got = convert_measures(&e.0[0].1.0[0].1.measures, 0).unwrap();
        assert_eq!(got[0].value, f64::NEG_INFINITY);
    }
}
