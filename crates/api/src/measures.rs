//! `/v1/metric/ID/measures`: push measures (202 once durable) and read aggregates.

use crate::AppState;
use crate::auth::Creds;
use crate::error::{ApiError, ApiResult};
use crate::http::{Ctx, json_body_typed_check};
use crate::metric::{find, policy_target};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carbonara::calendar::Sampling;
use carbonara::time::{self, TimestampKind};
use carbonara::{Method, Timestamp};
use gnocchi_engine::{MeasuresQuery, ReadError};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::json;
use std::borrow::Cow;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/metric/{id}/measures", get(read).post(push))
}

/// A JSON scalar as a measure field may hold it (numbers and numeric strings alike).
#[derive(Debug)]
pub(crate) enum Scalar<'a> {
    Num(f64),
    Str(Cow<'a, str>),
    Null,
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
        }
        d.deserialize_any(V)
    }
}

/// One element of a measures list; other keys are ignored, as upstream does.
#[derive(Debug)]
pub(crate) struct RawMeasure<'a> {
    timestamp: Scalar<'a>,
    value: Scalar<'a>,
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
                Ok(RawMeasure {
                    timestamp: timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?,
                    value: value.ok_or_else(|| de::Error::missing_field("value"))?,
                })
            }
        }
        d.deserialize_map(V)
    }
}

fn invalid(reason: impl Into<String>) -> ApiError {
    ApiError::invalid_input(reason, Vec::new())
}

/// Parse a `[{"timestamp", "value"}, ...]` body (already known to be JSON-typed).
pub(crate) fn parse_measures_body(body: &[u8], now: Timestamp) -> ApiResult<Vec<(Timestamp, f64)>> {
    let raw: Vec<RawMeasure> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            invalid("unexpected measures format")
        } else {
            ApiError::bad_request(
                json!({"cause": "Unable to decode body", "reason": e.to_string(), "detail": []}),
            )
        }
    })?;
    convert_measures(&raw, now)
}

/// Upstream detects the timestamp format from the first measure and applies it to all.
pub(crate) fn convert_measures(
    raw: &[RawMeasure],
    now: Timestamp,
) -> ApiResult<Vec<(Timestamp, f64)>> {
    let Some(first) = raw.first() else {
        return Ok(Vec::new());
    };
    let kind = match &first.timestamp {
        Scalar::Num(_) => TimestampKind::Epoch,
        Scalar::Str(s) => time::classify_timestamp(s).ok_or_else(|| {
            invalid(format!(
                "unexpected timestamp 'Unable to parse timestamp `{s}'"
            ))
        })?,
        Scalar::Null => return Err(invalid("unexpected measures format")),
    };
    let mut out = Vec::with_capacity(raw.len());
    for m in raw {
        let ts = match (&m.timestamp, kind) {
            (Scalar::Num(f), TimestampKind::Epoch) => time::timestamp_from_epoch_seconds(*f),
            (Scalar::Str(s), TimestampKind::Epoch) => match s.trim().parse::<f64>() {
                Ok(f) => time::timestamp_from_epoch_seconds(f),
                Err(_) => Err(time::TimeError::InvalidTimestamp(format!(
                    "could not convert string to float: '{s}'"
                ))),
            },
            (Scalar::Str(s), k) if time::classify_timestamp(s) == Some(k) => {
                time::parse_timestamp(s, now)
            }
            (Scalar::Null, _) => return Err(invalid("unexpected measures format")),
            (other, _) => Err(time::TimeError::InvalidTimestamp(format!(
                "Unable to parse timestamp {other:?}"
            ))),
        };
        let ts = ts
            .and_then(time::check_after_epoch)
            .map_err(|e| invalid(format!("unexpected timestamp '{e}'")))?;
        let value = match &m.value {
            Scalar::Num(f) => *f,
            Scalar::Str(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| invalid("unexpected measures value"))?,
            Scalar::Null => return Err(invalid("unexpected measures value")),
        };
        out.push((ts, value));
    }
    Ok(out)
}

pub(crate) fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// 202 with an empty body, as upstream.
pub(crate) fn accepted() -> Response {
    (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response()
}

async fn push(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let metric = find(&state, &id).await?;
    push_to(&state, &creds, &metric, &headers, &body).await
}

/// `POST .../measures` of a metric already found (by id, or by name on a resource).
pub(crate) async fn push_to(
    state: &AppState,
    creds: &Creds,
    metric: &gnocchi_index::Metric,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    state
        .policy
        .enforce("post measures", creds, &policy_target(metric))?;
    json_body_typed_check(headers, "application/json")?;
    let measures = parse_measures_body(body, now())?;
    if !measures.is_empty() {
        state
            .incoming
            .add_measures(vec![(metric.id, measures)])
            .await?;
    }
    Ok(accepted())
}

/// `start`/`stop`: any timestamp format; 400 naming the parameter otherwise.
pub(crate) fn time_param(ctx: &Ctx, name: &str) -> ApiResult<Option<Timestamp>> {
    let Some(v) = ctx.param(name) else {
        return Ok(None);
    };
    time::parse_timestamp(v, now())
        .map(Some)
        .map_err(|_| ApiError::argument(name, "Must be a datetime or a timestamp"))
}

/// `resample`: a timespan, or a calendar grouping `Y|H|Q|M|W`.
pub(crate) fn resample_param(ctx: &Ctx) -> ApiResult<Option<Sampling>> {
    if let Some(cal) = ctx.param("resample").and_then(Sampling::calendar) {
        return Ok(Some(cal));
    }
    Ok(timespan_param(ctx, "resample")?.map(Sampling::Fixed))
}

/// How a granularity is rendered in measures: seconds as a float (`60.0`), or
/// the letter of a calendar grouping (`"W"`, a JSON string).
pub(crate) fn granularity_token(sampling: Sampling) -> String {
    match sampling {
        Sampling::Fixed(g) => {
            let mut s = String::new();
            crate::json::py_float(crate::json::seconds(g), &mut s);
            s
        }
        Sampling::Calendar(c) => format!("\"{}\"", c.letter()),
    }
}

/// Append `[timestamp, granularity, value]` triples to a JSON array being
/// written (`first`: nothing written in it yet). `granularity` is already
/// rendered (see [`granularity_token`]).
pub(crate) fn write_points(
    out: &mut String,
    first: &mut bool,
    granularity: &str,
    timestamps: &[Timestamp],
    values: &[f64],
) {
    for (ts, v) in timestamps.iter().zip(values) {
        if !*first {
            out.push_str(", ");
        }
        *first = false;
        out.push_str("[\"");
        time::format_measure_timestamp(*ts, out);
        out.push_str("\", ");
        out.push_str(granularity);
        out.push_str(", ");
        crate::json::py_float(*v, out);
        out.push(']');
    }
}

/// A granularity-like parameter (`granularity`, `resample`).
pub(crate) fn timespan_param(ctx: &Ctx, name: &str) -> ApiResult<Option<i64>> {
    let Some(v) = ctx.param(name) else {
        return Ok(None);
    };
    match time::parse_timespan(v) {
        Ok(ns) if ns > 0 => Ok(Some(ns)),
        Ok(_) => Err(ApiError::argument(name, "Timespan must be positive")),
        Err(_) => Err(ApiError::argument(name, "Unable to parse timespan")),
    }
}

async fn read(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    let metric = find(&state, &id).await?;
    read_from(&state, &creds, &ctx, &metric).await
}

/// `GET .../measures` of a metric already found (by id, or by name on a resource).
pub(crate) async fn read_from(
    state: &AppState,
    creds: &Creds,
    ctx: &Ctx,
    metric: &gnocchi_index::Metric,
) -> ApiResult<Response> {
    let target = crate::metric::policy_target_with_resource(state, creds, metric).await?;
    state.policy.enforce("get measures", creds, &target)?;
    let aggregation = ctx.param("aggregation").unwrap_or("mean");
    let method_missing = || {
        ApiError::not_found(json!({
            "cause": "Aggregation method does not exist for this metric",
            "detail": {"metric": metric.id.to_string(), "aggregation_method": aggregation},
        }))
    };
    let method = Method::parse(aggregation).ok_or_else(method_missing)?;
    let start = time_param(ctx, "start")?;
    let stop = time_param(ctx, "stop")?;
    let granularity = timespan_param(ctx, "granularity")?;
    let resample = resample_param(ctx)?;
    if resample.is_some() && granularity.is_none() {
        return Err(ApiError::bad_request(
            "A granularity must be specified to resample",
        ));
    }
    if ctx.bool_param("refresh")?.unwrap_or(false) {
        state
            .engine
            .refresh_metric(metric.id, state.config.operation_timeout)
            .await?;
    }
    let query = MeasuresQuery {
        method,
        granularity,
        start,
        stop,
        resample,
    };
    let series = match state.engine.read_measures(metric, &query).await {
        Ok(s) => s,
        Err(ReadError::MethodNotInPolicy) => return Err(method_missing()),
        Err(ReadError::GranularityNotInPolicy(g)) => {
            return Err(ApiError::not_found(format!(
                "Aggregation method '{aggregation}' at granularity '{}' for metric {} does not exist",
                carbonara::policy::format_seconds(g),
                metric.id
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = String::with_capacity(64 * series.iter().map(|s| s.len()).sum::<usize>() + 2);
    match resample {
        Some(Sampling::Calendar(c)) => {
            let token = granularity_token(Sampling::Calendar(c));
            let mut first = true;
            out.push('[');
            for s in &series {
                write_points(&mut out, &mut first, &token, &s.timestamps, &s.values);
            }
            out.push(']');
        }
        _ => crate::json::write_measures(series.iter(), &mut out),
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}
