//! The deprecated cross-metric aggregation API: `/v1/aggregation/metric`
//! (metrics by id) and `/v1/aggregation/resource/TYPE/metric/NAME` (the named
//! metric of the resources a search selects).
//!
//! With one metric, its measures are returned as they are stored. With
//! several, this is the aggregates operation
//! `(aggregate REAGGREGATION ([resample AGGREGATION RESAMPLE] (metric (ID AGGREGATION)...)))`
//! run by the processor of [`crate::aggregates`], answering its `aggregated`
//! series as a plain list.

use crate::AppState;
use crate::aggregates::{self, AggQuery, Fill, Output, ProcError, Reference};
use crate::aggregates_parse::{Node, RefKey, parse_py_float};
use crate::auth::Creds;
use crate::error::{ApiError, ApiResult};
use crate::http::{Ctx, json_body};
use crate::measures::{resample_param, timespan_param};
use crate::metric::policy_target;
use crate::query::{parse_filter_string, parse_json_query};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use carbonara::calendar::Sampling;
use carbonara::ops::Reduction;
use carbonara::{Method, Timestamp, time};
use gnocchi_engine::{MeasuresQuery, ReadError};
use gnocchi_index::{IndexError, Metric, ResourceQuery};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/aggregation/metric",
            get(get_by_metric_ids).post(post_by_metric_ids),
        )
        .route(
            "/aggregation/resource/{resource_type}/metric/{metric_name}",
            post(by_resources),
        )
        // Upstream answers 405 for a resource path that lacks the metric name.
        .route(
            "/aggregation/resource/{resource_type}/metric",
            any(method_not_allowed),
        )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "")
}

/// The parameters of the deprecated API, validated as upstream does (and in
/// its order: overlap, start, stop, resample, granularity, fill).
pub(crate) struct LegacyQuery {
    pub(crate) aggregation: String,
    pub(crate) reaggregation: Option<String>,
    pub(crate) start: Option<Timestamp>,
    pub(crate) stop: Option<Timestamp>,
    pub(crate) granularity: Option<i64>,
    pub(crate) needed_overlap: f64,
    pub(crate) fill: Fill,
    pub(crate) refresh: bool,
    pub(crate) resample: Option<Sampling>,
}

pub(crate) fn parse_legacy_query(ctx: &Ctx) -> ApiResult<LegacyQuery> {
    let needed_overlap = match ctx.param("needed_overlap") {
        None => 100.0,
        Some(v) => parse_py_float(v)
            .ok_or_else(|| ApiError::bad_request("needed_overlap must be a number"))?,
    };
    let time = |name: &str| -> ApiResult<Option<Timestamp>> {
        match ctx.param(name) {
            None => Ok(None),
            Some(v) => time::parse_timestamp(v, crate::measures::now())
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("Invalid value for {name}"))),
        }
    };
    let start = time("start")?;
    let stop = time("stop")?;
    if needed_overlap != 100.0 && start.is_none() && stop.is_none() {
        return Err(ApiError::bad_request(
            "start and/or stop must be provided if specifying needed_overlap",
        ));
    }
    let granularity = timespan_param(ctx, "granularity")?;
    let resample = if ctx.param("resample").is_some() {
        if granularity.is_none() {
            return Err(ApiError::bad_request(
                "A granularity must be specified to resample",
            ));
        }
        resample_param(ctx)?
    } else {
        None
    };
    let fill = match ctx.param("fill") {
        None => Fill::None,
        Some("null") => Fill::Null,
        Some(v) => Fill::Value(parse_py_float(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "fill must be a float or 'null': could not convert string to float: '{v}'"
            ))
        })?),
    };
    Ok(LegacyQuery {
        aggregation: ctx.param("aggregation").unwrap_or("mean").to_string(),
        reaggregation: ctx.param("reaggregation").map(str::to_string),
        start,
        stop,
        granularity,
        needed_overlap,
        fill,
        refresh: ctx.bool_param("refresh")?.unwrap_or(false),
        resample,
    })
}

fn invalid_uuid(index: usize) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid input: not a valid value for dictionary value @ data[{index}]"
    ))
}

async fn get_by_metric_ids(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
) -> ApiResult<Response> {
    let mut ids = Vec::new();
    for (i, m) in ctx.params_all("metric").into_iter().enumerate() {
        ids.push(Uuid::parse_str(m).map_err(|_| invalid_uuid(i))?);
    }
    by_metric_ids(&state, &creds, &ctx, ids).await
}

async fn post_by_metric_ids(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&headers, &body)?;
    let list = body
        .as_array()
        .ok_or_else(|| ApiError::bad_request("Invalid input: expected a list"))?;
    let mut ids = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let id = v.as_str().and_then(|s| Uuid::parse_str(s).ok());
        ids.push(id.ok_or_else(|| invalid_uuid(i))?);
    }
    by_metric_ids(&state, &creds, &ctx, ids).await
}

async fn by_metric_ids(
    state: &AppState,
    creds: &Creds,
    ctx: &Ctx,
    ids: Vec<Uuid>,
) -> ApiResult<Response> {
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    let found = state.indexer.get_metrics(&unique).await?;
    if let Some(missing) = ids.iter().find(|id| !found.iter().any(|m| m.id == **id)) {
        return Err(ApiError::not_found(format!(
            "Metric {missing} does not exist"
        )));
    }
    // In the order asked, each once.
    let mut metrics: Vec<Metric> = Vec::with_capacity(found.len());
    for id in &ids {
        if metrics.iter().any(|m| m.id == *id) {
            continue;
        }
        if let Some(m) = found.iter().find(|m| m.id == *id) {
            metrics.push(m.clone());
        }
    }
    let q = parse_legacy_query(ctx)?;
    Ok(json_list(
        cross_metric_measures(state, creds, &metrics, &q).await?,
    ))
}

/// Measures of several metrics aggregated together (or of one, as stored),
/// as a JSON list.
pub(crate) async fn cross_metric_measures(
    state: &AppState,
    creds: &Creds,
    metrics: &[Metric],
    q: &LegacyQuery,
) -> ApiResult<String> {
    for m in metrics {
        state
            .policy
            .enforce("get metric", creds, &policy_target(m))?;
    }
    if metrics.is_empty() {
        return Ok(String::from("[]"));
    }
    if q.refresh {
        for m in metrics {
            state
                .engine
                .refresh_metric(m.id, state.config.operation_timeout)
                .await?;
        }
    }
    let mut out = String::with_capacity(256);
    if let [metric] = metrics {
        // One metric: its measures, whatever `fill`, `needed_overlap` and
        // `reaggregation` say (as upstream).
        let missing_method = || {
            ApiError::not_found(json!({
                "cause": "Aggregation method does not exist for this metric",
                "detail": {"metric": metric.id.to_string(), "aggregation_method": q.aggregation},
            }))
        };
        let method = Method::parse(&q.aggregation).ok_or_else(missing_method)?;
        let query = MeasuresQuery {
            method,
            granularity: q.granularity,
            start: q.start,
            stop: q.stop,
            resample: q.resample,
        };
        let series = match state.engine.read_measures(metric, &query).await {
            Ok(s) => s,
            Err(ReadError::MethodNotInPolicy) => return Err(missing_method()),
            Err(ReadError::GranularityNotInPolicy(g)) => {
                return Err(no_such_aggregation(&q.aggregation, g, metric.id));
            }
            Err(e) => return Err(e.into()),
        };
        let parts: Vec<aggregates::Part> = series
            .into_iter()
            .map(|s| aggregates::Part {
                sampling: q.resample.filter(is_calendar).unwrap_or(Sampling::Fixed(
                    match q.resample {
                        Some(Sampling::Fixed(g)) => g,
                        _ => s.granularity,
                    },
                )),
                timestamps: s.timestamps,
                values: s.values,
            })
            .collect();
        aggregates::write_parts(&mut out, &parts);
        return Ok(out);
    }

    // As upstream's processor: an unknown method is a 404 before anything else.
    for m in metrics {
        let policy = &m.archive_policy;
        if !Method::parse(&q.aggregation).is_some_and(|x| policy.aggregation_methods.contains(&x)) {
            let g = policy.definition.first().map_or(0, |d| d.granularity);
            return Err(no_such_aggregation(&q.aggregation, g, m.id));
        }
    }
    let reaggregation = q.reaggregation.as_deref().unwrap_or(&q.aggregation);
    let how = Reduction::parse(reaggregation).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid reaggregation value {reaggregation}, must be one of mean, median, std, min, max, sum, var, count"
        ))
    })?;
    let refs: Vec<Reference> = metrics
        .iter()
        .map(|m| Reference {
            metric: m.clone(),
            aggregation: q.aggregation.clone(),
            lookup: RefKey {
                name: m.id.to_string(),
                aggregation: q.aggregation.clone(),
            },
            resource_id: None,
            windows: Vec::new(),
        })
        .collect();
    let mut inner = Node::Metric {
        refs: refs.iter().map(|r| r.lookup.clone()).collect(),
        single: false,
    };
    if let Some(sampling) = q.resample {
        let method = Method::parse(&q.aggregation)
            .ok_or_else(|| no_such_aggregation(&q.aggregation, 0, metrics[0].id))?;
        inner = Node::Resample {
            name: q.aggregation.clone(),
            method,
            sampling,
            arg: Box::new(inner),
        };
    }
    let operations = Node::Aggregate {
        name: reaggregation.to_string(),
        how,
        arg: Box::new(inner),
    };
    let agg_query = AggQuery {
        start: q.start,
        stop: q.stop,
        granularity: q.granularity,
        needed_overlap: q.needed_overlap,
        fill: q.fill,
    };
    let identity = |r: &RefKey| r.clone();
    let output = aggregates::get_measures(state, &refs, &operations, &agg_query, &identity)
        .await
        .map_err(|e| match e {
            ProcError::UnknownAggregation {
                metric,
                aggregation,
                granularity,
            } => no_such_aggregation(&aggregation, granularity, metric),
            other => other.into_api(),
        })?;
    match output {
        Output::Aggregated(parts) => aggregates::write_parts(&mut out, &parts),
        Output::PerReference(_) => out.push_str("[]"),
    }
    Ok(out)
}

fn is_calendar(s: &Sampling) -> bool {
    matches!(s, Sampling::Calendar(_))
}

/// Upstream's `AggregationDoesNotExist` message.
pub(crate) fn no_such_aggregation(aggregation: &str, granularity: i64, metric: Uuid) -> ApiError {
    ApiError::not_found(format!(
        "Aggregation method '{aggregation}' at granularity '{}' for metric {metric} does not exist",
        carbonara::policy::format_seconds(granularity)
    ))
}

fn json_list(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `POST /v1/aggregation/resource/TYPE/metric/NAME`: the metric `NAME` of the
/// resources the body (or `?filter=`) selects, optionally per group of
/// resources sharing the `groupby` attributes. Unlike upstream, which only
/// looks at the first page of resources, every matching resource counts.
async fn by_resources(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    UrlPath((rtype, metric_name)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    if state.indexer.get_resource_type(&rtype).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "Resource type {rtype} does not exist"
        )));
    }
    let groupby = aggregates::groupby_param(&ctx);
    let filter = if !body.iter().all(u8::is_ascii_whitespace) {
        let v = json_body(&headers, &body)?;
        parse_json_query(&v, &creds.creator())?
    } else {
        match ctx.param("filter") {
            Some(f) if !f.is_empty() => parse_filter_string(f, &creds.creator())?,
            _ => None,
        }
    };
    // Keystone callers aggregate only over what their project may see.
    let restriction =
        crate::visibility::resource_filter(&state.policy, "search resource", &creds, &rtype)?;
    let filter = crate::visibility::restrict(filter, restriction);
    let query = ResourceQuery {
        resource_type: rtype.clone(),
        filter,
        details: false,
        history: false,
        sort: aggregates::resource_sort(&groupby),
        limit: None,
        marker: None,
    };
    let resources = state
        .indexer
        .list_resources(&query)
        .await
        .map_err(|e| match e {
            IndexError::InvalidSortKey(_) => ApiError::bad_request("Invalid groupby attribute"),
            IndexError::Backend(_) => e.into(),
            other => ApiError::bad_request(other.to_string()),
        })?;
    let mut ids: Vec<Uuid> = resources
        .iter()
        .filter_map(|r| {
            r.metrics
                .iter()
                .find(|(n, _)| *n == metric_name)
                .map(|(_, id)| *id)
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let found = state.indexer.get_metrics(&ids).await?;
    let metric_of = |r: &gnocchi_index::Resource| -> Option<Metric> {
        let (_, id) = r.metrics.iter().find(|(n, _)| *n == metric_name)?;
        found.iter().find(|m| m.id == *id).cloned()
    };
    let q = parse_legacy_query(&ctx)?;
    if groupby.is_empty() {
        let metrics: Vec<Metric> = resources.iter().filter_map(metric_of).collect();
        return Ok(json_list(
            cross_metric_measures(&state, &creds, &metrics, &q).await?,
        ));
    }
    let mut groups: Vec<(aggregates::GroupKey, Vec<Metric>)> = Vec::new();
    for r in &resources {
        let key = aggregates::group_of(&crate::resource::to_json(r), &groupby);
        let m = metric_of(r);
        match groups.last_mut() {
            Some((k, ms)) if *k == key => ms.extend(m),
            _ => groups.push((key, m.into_iter().collect())),
        }
    }
    let mut out = String::from("[");
    for (n, (key, metrics)) in groups.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"group\": ");
        out.push_str(&String::from_utf8_lossy(&crate::json::to_vec(
            &aggregates::group_json(key),
        )));
        out.push_str(", \"measures\": ");
        out.push_str(&cross_metric_measures(&state, &creds, metrics, &q).await?);
        out.push('}');
    }
    out.push(']');
    Ok(json_list(out))
}
