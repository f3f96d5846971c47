//! The deprecated cross-metric aggregation API: `/v1/aggregation/metric`
//! (metrics by id) and `/v1/aggregation/resource/TYPE/metric/NAME` (the named
//! metric of the resources a search selects).
//!
//! With one metric, its measures are returned as they are stored. With
//! several, this is the aggregates operation
//! `(aggregate REAGGREGATION ([resample AGGREGATION RESAMPLE] (metric (ID AGGREGATION)...)))`
//! run by the processor of [`crate::language::aggregates_eval`], answering its `aggregated`
//! series as a plain list.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::targets::metric_target as policy_target;
use crate::access::visibility::restrict_resources;
use crate::language::aggregates_eval::{
    self as aggregates, AggQuery, Fill, Output, ProcError, Reference,
};
use crate::language::aggregates_output::{self, write_parts};
use crate::language::aggregates_parse::{Node, RefKey};
use crate::language::query::search_filter;
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{Ctx, json_body, ok_json_text};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{any, get, post};
use carbonara::Method;
use carbonara::calendar::Sampling;
use carbonara::ops::Reduction;
use gnocchi_engine::{MeasuresQuery, ReadError};
use gnocchi_index::{IndexError, Metric, Nulls, ResourceQuery, SortDir, SortKey};
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
    ApiError::method_not_allowed()
}

/// Upstream's voluptuous message for a metric id that is not a UUID.
fn invalid_uuid(index: usize) -> ApiError {
    ApiError::invalid_input_text(format_args!("not a valid value @ data[{index}]"))
}

async fn get_by_metric_ids(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
) -> ApiResult<Response> {
    let mut ids = Vec::new();
    for (i, m) in ctx.param_list("metric").into_iter().enumerate() {
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
    let root = crate::wire::validate::Path::root();
    let list = body
        .as_array()
        .ok_or_else(|| root.invalid("expected a list"))?;
    let mut ids = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let id = v.as_str().and_then(|s| Uuid::parse_str(s).ok());
        ids.push(id.ok_or_else(|| root.index(i).invalid("not a valid value"))?);
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
        return Err(ApiError::metric_not_found(missing));
    }
    // Each once, in UUID order, as upstream's indexer lists them: that
    // order decides which metric an error names.
    let mut metrics = found;
    metrics.sort_unstable_by_key(|m| m.id);
    metrics.dedup_by_key(|m| m.id);
    Ok(ok_json_text(
        cross_metric_measures(state, creds, ctx, &metrics).await?,
    ))
}

/// Measures of several metrics aggregated together (or of one, as stored),
/// as a JSON list: upstream's `get_cross_metric_measures_from_objs`, whose
/// order of checks this keeps (the query parameters, then the resample, the
/// granularities, `refresh`, and the aggregation method).
pub(crate) async fn cross_metric_measures(
    state: &AppState,
    creds: &Creds,
    ctx: &Ctx,
    metrics: &[Metric],
) -> ApiResult<String> {
    let q = aggregates::validate_qs(ctx, |_| Fill::None)?;
    let aggregation = ctx.param("aggregation").unwrap_or("mean");
    for m in metrics {
        state
            .policy
            .enforce("get metric", creds, &policy_target(m))?;
    }
    if metrics.is_empty() {
        return Ok(String::from("[]"));
    }
    let resample = match ctx.param("resample") {
        None | Some("") => None,
        Some(_) if q.granularity.is_none() => {
            return Err(ApiError::resample_without_granularity());
        }
        Some(v) => Some(crate::wire::params::parse_resample(v)?),
    };
    check_granularities(metrics, q.granularity, aggregation)?;
    if ctx.bool_param("refresh")?.unwrap_or(false) {
        for m in metrics {
            state
                .engine
                .refresh_metric(m.id, state.config.operation_timeout)
                .await?;
        }
    }
    if let [metric] = metrics {
        return single_metric_measures(state, metric, aggregation, &q, resample).await;
    }
    let reaggregation = ctx.param("reaggregation").unwrap_or(aggregation);
    let spec = Aggregation {
        aggregation,
        reaggregation,
        resample,
    };
    aggregated_measures(state, metrics, &spec, &q).await
}

/// Does the metric's policy have this granularity?
fn has_granularity(m: &Metric, g: i64) -> bool {
    m.archive_policy
        .definition
        .iter()
        .any(|d| d.granularity == g)
}

/// 400 when the metrics share no granularity, 404 when one lacks the
/// requested one (or one the first metric has).
fn check_granularities(
    metrics: &[Metric],
    granularity: Option<i64>,
    aggregation: &str,
) -> ApiResult<()> {
    let granularities: Vec<i64> = match granularity {
        Some(g) => vec![g],
        // Those every metric has, in the order the first one lists them.
        None => metrics[0]
            .archive_policy
            .definition
            .iter()
            .map(|d| d.granularity)
            .filter(|&g| metrics.iter().all(|m| has_granularity(m, g)))
            .collect(),
    };
    if granularities.is_empty() {
        return Err(ApiError::unaggregable(
            "No granularity match".to_string(),
            metrics
                .iter()
                .map(|m| json!([m.id.to_string(), aggregation]))
                .collect(),
        ));
    }
    for m in metrics {
        if let Some(&g) = granularities.iter().find(|&&g| !has_granularity(m, g)) {
            return Err(ApiError::aggregation_not_found(aggregation, g, m.id));
        }
    }
    Ok(())
}

/// One metric: its measures, whatever `fill`, `needed_overlap` and
/// `reaggregation` say (as upstream).
async fn single_metric_measures(
    state: &AppState,
    metric: &Metric,
    aggregation: &str,
    q: &AggQuery,
    resample: Option<Sampling>,
) -> ApiResult<String> {
    let missing_method = || ApiError::aggregation_method_not_found(metric.id, aggregation);
    let method = Method::parse(aggregation).ok_or_else(missing_method)?;
    let query = MeasuresQuery {
        method,
        granularity: q.granularity,
        start: q.start,
        stop: q.stop,
        resample,
    };
    let series = match state.engine.read_measures(metric, &query).await {
        Ok(s) => s,
        Err(ReadError::MethodNotInPolicy) => return Err(missing_method()),
        Err(ReadError::GranularityNotInPolicy(g)) => {
            return Err(ApiError::aggregation_not_found(aggregation, g, metric.id));
        }
        Err(e) => return Err(e.into()),
    };
    let parts: Vec<aggregates::Part> = series
        .into_iter()
        .map(|s| aggregates::Part {
            sampling: resample
                .filter(is_calendar)
                .unwrap_or(Sampling::Fixed(match resample {
                    Some(Sampling::Fixed(g)) => g,
                    _ => s.granularity,
                })),
            timestamps: s.timestamps,
            values: s.values,
        })
        .collect();
    let mut out = String::with_capacity(256);
    write_parts(&mut out, &parts);
    Ok(out)
}

/// What to compute from several metrics: each one's `aggregation` (resampled
/// when asked), then their `reaggregation`.
struct Aggregation<'a> {
    aggregation: &'a str,
    reaggregation: &'a str,
    resample: Option<Sampling>,
}

/// Several metrics: the aggregates operation
/// `(aggregate REAGGREGATION ([resample AGGREGATION RESAMPLE] (metric (ID AGGREGATION)...)))`.
async fn aggregated_measures(
    state: &AppState,
    metrics: &[Metric],
    spec: &Aggregation<'_>,
    q: &AggQuery,
) -> ApiResult<String> {
    let aggregation = spec.aggregation;
    // As upstream's processor: an unknown method is a 404 before any read.
    for m in metrics {
        let policy = &m.archive_policy;
        if !Method::parse(aggregation).is_some_and(|x| policy.aggregation_methods.contains(&x)) {
            let g = policy.definition.first().map_or(0, |d| d.granularity);
            return Err(ApiError::aggregation_not_found(aggregation, g, m.id));
        }
    }
    let refs: Vec<Reference> = metrics
        .iter()
        .map(|m| Reference {
            metric: m.clone(),
            aggregation: aggregation.to_string(),
            lookup: RefKey {
                name: m.id.to_string(),
                aggregation: aggregation.to_string(),
            },
            resource_id: None,
            windows: Vec::new(),
        })
        .collect();
    // An unknown reaggregation fails upstream (a 500) only once the series
    // are read, aligned and their overlap checked: those errors come first.
    let reduction = Reduction::parse(spec.reaggregation);
    let operations = operations_of(spec, reduction, &refs, metrics[0].id)?;
    let identity = |r: &RefKey| r.clone();
    let output = aggregates::get_measures(state, &refs, &operations, q, identity)
        .await
        .map_err(|e| match e {
            ProcError::UnknownAggregation {
                metric,
                aggregation,
                granularity,
            } => ApiError::aggregation_not_found(&aggregation, granularity, metric),
            other => other.into_api(),
        })?;
    if reduction.is_none() {
        return Err(ApiError::invalid_reaggregation(spec.reaggregation));
    }
    let mut out = String::with_capacity(256);
    match output {
        Output::Aggregated(parts) => write_parts(&mut out, &parts),
        Output::PerReference(_) => out.push_str("[]"),
    }
    Ok(out)
}

/// The operation tree of [`aggregated_measures`]; without a known
/// `reduction`, only the (resampled) metrics, so that the errors of reading
/// them come first.
fn operations_of(
    spec: &Aggregation<'_>,
    reduction: Option<Reduction>,
    refs: &[Reference],
    first: Uuid,
) -> ApiResult<Node> {
    let aggregation = spec.aggregation;
    let mut inner = Node::Metric {
        refs: refs.iter().map(|r| r.lookup.clone()).collect(),
        single: false,
    };
    if let Some(sampling) = spec.resample {
        let method = Method::parse(aggregation)
            .ok_or_else(|| ApiError::aggregation_not_found(aggregation, 0, first))?;
        inner = Node::Resample {
            name: aggregation.to_string(),
            method,
            sampling,
            arg: Box::new(inner),
        };
    }
    Ok(match reduction {
        Some(how) => Node::Aggregate {
            name: spec.reaggregation.to_string(),
            how,
            arg: Box::new(inner),
        },
        None => inner,
    })
}

/// `resample`: a calendar grouping `Y|H|Q|M|W` or a positive timespan; a bad
/// one is refused with upstream's plain message.
fn is_calendar(s: &Sampling) -> bool {
    matches!(s, Sampling::Calendar(_))
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
        return Err(ApiError::resource_type_not_found(rtype));
    }
    let groupby = aggregates_output::groupby_param(&ctx);
    let body = Some(&body[..]).filter(|b| !b.iter().all(u8::is_ascii_whitespace));
    let filter = search_filter(&ctx, &headers, body, &creds.creator())?;
    // Keystone callers aggregate only over what their project may see.
    let filter = restrict_resources(&state.policy, "search resource", &creds, &rtype, filter)?;
    let resources = resources_of(&state, &rtype, filter, &groupby).await?;
    let metric_of = named_metrics(&state, &resources, &metric_name).await?;
    if groupby.is_empty() {
        let metrics: Vec<Metric> = metric_of.into_iter().flatten().collect();
        return Ok(ok_json_text(
            cross_metric_measures(&state, &creds, &ctx, &metrics).await?,
        ));
    }
    let keyed = resources.iter().zip(metric_of).map(|(r, m)| {
        let rendered = crate::wire::render::resource_json(r);
        (aggregates_output::group_of(&rendered, &groupby), m)
    });
    let mut bodies = Vec::new();
    for (key, metrics) in aggregates_output::group_runs(keyed) {
        let metrics: Vec<Metric> = metrics.into_iter().flatten().collect();
        let measures = cross_metric_measures(&state, &creds, &ctx, &metrics).await?;
        bodies.push((key, measures));
    }
    Ok(ok_json_text(aggregates_output::groups_json(&bodies)))
}

/// Every resource of the type the filter selects, sorted as upstream sorts
/// them: by the groupby attributes, or by nothing but the id (not by the
/// resource listing's default): that order decides which metric an error
/// names.
async fn resources_of(
    state: &AppState,
    rtype: &str,
    filter: Option<gnocchi_index::Filter>,
    groupby: &[String],
) -> ApiResult<Vec<gnocchi_index::Resource>> {
    let query = ResourceQuery {
        resource_type: rtype.to_string(),
        filter,
        details: false,
        history: false,
        sort: if groupby.is_empty() {
            vec![SortKey {
                key: "id".to_string(),
                dir: SortDir::Asc,
                nulls: Nulls::Default,
            }]
        } else {
            aggregates_output::resource_sort(groupby)
        },
        limit: None,
        marker: None,
    };
    state
        .indexer
        .list_resources(&query)
        .await
        .map_err(|e| match e {
            IndexError::InvalidSortKey(_) => ApiError::invalid_groupby(),
            e if e.is_backend_failure() => e.into(),
            other => ApiError::bad_request(other.to_string()),
        })
}

/// Each resource's metric named `name`, if it has one, in the resources' order.
async fn named_metrics(
    state: &AppState,
    resources: &[gnocchi_index::Resource],
    name: &str,
) -> ApiResult<Vec<Option<Metric>>> {
    let id_of =
        |r: &gnocchi_index::Resource| r.metrics.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
    let mut ids: Vec<Uuid> = resources.iter().filter_map(id_of).collect();
    ids.sort_unstable();
    ids.dedup();
    let found = state.indexer.get_metrics(&ids).await?;
    Ok(resources
        .iter()
        .map(|r| {
            let id = id_of(r)?;
            found.iter().find(|m| m.id == id).cloned()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::test_support::TestApi;
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    /// Two metrics of a 60 s policy: A has 00:00=1, 00:01=2 and 00:01:30=4
    /// (buckets 00:00=1, 00:01=3); B has 00:01:10=10 and 00:02=20.
    async fn two_metrics(api: &TestApi) -> (String, String) {
        api.policy_60s("p", &["mean", "95pct", "count"]).await;
        let a = api
            .metric_with(
                "p",
                &[
                    ("2024-01-01T00:00:00", 1.0),
                    ("2024-01-01T00:01:00", 2.0),
                    ("2024-01-01T00:01:30", 4.0),
                ],
            )
            .await;
        let b = api
            .metric_with(
                "p",
                &[("2024-01-01T00:01:10", 10.0), ("2024-01-01T00:02:00", 20.0)],
            )
            .await;
        (a, b)
    }

    fn points(values: &[(&str, f64)]) -> Value {
        Value::Array(
            values
                .iter()
                .map(|(t, v)| json!([format!("2024-01-01T{t}+00:00"), 60.0, v]))
                .collect(),
        )
    }

    fn description(v: &Value) -> &Value {
        &v["description"]
    }

    #[tokio::test]
    async fn fill_accepts_every_mode_of_the_aggregates_api() {
        let api = TestApi::start().await;
        let (a, b) = two_metrics(&api).await;
        let cases = [
            ("dropna", [1.0, 6.5, 20.0]),
            ("null", [1.0, 6.5, 20.0]),
            ("ffill", [1.0, 6.5, 11.5]),
            ("bfill", [5.5, 6.5, 20.0]),
            ("full_ffill", [5.5, 6.5, 11.5]),
            ("full_bfill", [5.5, 6.5, 11.5]),
            ("0", [0.5, 6.5, 10.0]),
        ];
        for (fill, [v0, v1, v2]) in cases {
            let got = api
                .get(
                    StatusCode::OK,
                    &format!("/v1/aggregation/metric?metric={a}&metric={b}&fill={fill}"),
                )
                .await;
            let want = points(&[("00:00:00", v0), ("00:01:00", v1), ("00:02:00", v2)]);
            assert_eq!(got, want, "fill={fill}");
        }
    }

    #[tokio::test]
    async fn needed_overlap_needs_no_start_nor_stop() {
        let api = TestApi::start().await;
        let (a, b) = two_metrics(&api).await;
        let got = api
            .get(
                StatusCode::OK,
                &format!("/v1/aggregation/metric?metric={a}&metric={b}&needed_overlap=0"),
            )
            .await;
        assert_eq!(got, points(&[("00:01:00", 6.5)]));
    }

    #[tokio::test]
    async fn a_bad_fill_or_needed_overlap_is_an_argument_value_error() {
        let api = TestApi::start().await;
        let (a, b) = two_metrics(&api).await;
        let url = format!("/v1/aggregation/metric?metric={a}&metric={b}");
        let got = api
            .get(StatusCode::BAD_REQUEST, &format!("{url}&fill=bogus"))
            .await;
        assert_eq!(
            description(&got),
            &json!({
                "cause": "Argument value error",
                "detail": "fill",
                "reason": "Must be a float, 'dropna', 'null', 'ffill', 'bfill', 'full_ffill' or 'full_bfill'",
            })
        );
        // needed_overlap is checked first, as upstream's validate_qs does.
        let got = api
            .get(
                StatusCode::BAD_REQUEST,
                &format!("{url}&needed_overlap=x&fill=bogus"),
            )
            .await;
        assert_eq!(
            description(&got),
            &json!({"cause": "Argument value error", "detail": "needed_overlap", "reason": "Must be a number"})
        );
        // Even without any metric.
        let got = api
            .get(StatusCode::BAD_REQUEST, "/v1/aggregation/metric?fill=bogus")
            .await;
        assert_eq!(description(&got)["detail"], "fill");
    }

    #[tokio::test]
    async fn a_metric_id_that_is_not_a_uuid_is_named_by_its_position() {
        let api = TestApi::start().await;
        let (a, _) = two_metrics(&api).await;
        let got = api
            .get(StatusCode::BAD_REQUEST, "/v1/aggregation/metric?metric=foo")
            .await;
        assert_eq!(
            description(&got),
            "Invalid input: not a valid value @ data[0]"
        );
        let got = api
            .get(
                StatusCode::BAD_REQUEST,
                &format!("/v1/aggregation/metric?metric={a}&metric=foo"),
            )
            .await;
        assert_eq!(
            description(&got),
            "Invalid input: not a valid value @ data[1]"
        );
        // A lone empty value is no metric at all (upstream's arg_to_list).
        let got = api
            .get(StatusCode::OK, "/v1/aggregation/metric?metric=")
            .await;
        assert_eq!(got, json!([]));
        let got = api
            .expect(
                StatusCode::BAD_REQUEST,
                "POST",
                "/v1/aggregation/metric",
                Some(json!([a, "foo"])),
            )
            .await;
        assert_eq!(
            description(&got),
            &json!({"cause": "Invalid input", "reason": "not a valid value @ data[1]", "detail": ["1"]})
        );
    }

    #[tokio::test]
    async fn a_granularity_missing_from_the_policy_names_the_first_metric_in_uuid_order() {
        let api = TestApi::start().await;
        let (a, b) = two_metrics(&api).await;
        let first = a.clone().min(b.clone());
        for (x, y) in [(&a, &b), (&b, &a)] {
            let got = api
                .get(
                    StatusCode::NOT_FOUND,
                    &format!("/v1/aggregation/metric?metric={x}&metric={y}&granularity=300"),
                )
                .await;
            assert_eq!(
                description(&got),
                &json!(format!(
                    "Aggregation method 'mean' at granularity '300.0' for metric {first} does not exist"
                ))
            );
        }
    }

    #[tokio::test]
    async fn a_bad_resample_is_refused_with_a_plain_message_after_the_query_checks() {
        let api = TestApi::start().await;
        let (a, b) = two_metrics(&api).await;
        let url = format!("/v1/aggregation/metric?metric={a}&metric={b}");
        let got = api
            .get(
                StatusCode::BAD_REQUEST,
                &format!("{url}&granularity=60&resample=abc"),
            )
            .await;
        assert_eq!(description(&got), "Unable to parse timespan");
        let got = api
            .get(
                StatusCode::BAD_REQUEST,
                &format!("{url}&granularity=60&resample=-60"),
            )
            .await;
        assert_eq!(description(&got), "Timespan must be positive");
        let got = api
            .get(
                StatusCode::BAD_REQUEST,
                &format!("{url}&resample=abc&fill=bogus"),
            )
            .await;
        assert_eq!(description(&got)["detail"], "fill");
        let got = api
            .get(
                StatusCode::OK,
                &format!("{url}&granularity=60&resample=120"),
            )
            .await;
        assert_eq!(got, json!([["2024-01-01T00:00:00+00:00", 120.0, 6.5]]));
    }

    /// `granularity=nan` is a float to upstream's `to_timespan`, which then
    /// fails at `int(nan * 10e8)`: Python's message, as an argument error, on
    /// each endpoint that reads a granularity (upstream's answer).
    #[tokio::test]
    async fn a_nan_granularity_gets_pythons_integer_conversion_message() {
        let api = TestApi::start().await;
        let (a, b) = two_metrics(&api).await;
        let want = json!({
            "cause": "Argument value error",
            "detail": "granularity",
            "reason": "cannot convert float NaN to integer",
        });
        for nan in ["nan", "NaN", "-nan", "%20nan"] {
            for url in [
                format!("/v1/aggregation/metric?metric={a}&metric={b}&granularity={nan}"),
                format!("/v1/metric/{a}/measures?granularity={nan}"),
            ] {
                let got = api.get(StatusCode::BAD_REQUEST, &url).await;
                assert_eq!(description(&got), &want, "{url}");
            }
            let got = api
                .expect(
                    StatusCode::BAD_REQUEST,
                    "POST",
                    &format!("/v1/aggregates?granularity={nan}"),
                    Some(json!({"operations": ["metric", a, "mean"]})),
                )
                .await;
            assert_eq!(description(&got), &want, "{nan}");
        }
        // Not a number at all: pytimeparse's failure.
        let got = api
            .get(
                StatusCode::BAD_REQUEST,
                &format!("/v1/metric/{a}/measures?granularity=nano"),
            )
            .await;
        assert_eq!(description(&got)["reason"], "Unable to parse timespan");
    }

    #[tokio::test]
    async fn an_unknown_reaggregation_is_refused_only_once_the_overlap_is_checked() {
        let api = TestApi::start().await;
        let (a, b) = two_metrics(&api).await;
        let url = format!(
            "/v1/aggregation/metric?metric={a}&metric={b}&aggregation=95pct&start=2024-01-01T00:00:00"
        );
        // From 00:00 to the last overlap (00:01), one bucket in two overlaps:
        // upstream's overlap error comes first.
        let got = api.expect(StatusCode::BAD_REQUEST, "GET", &url, None).await;
        assert_eq!(description(&got)["cause"], "Metrics cannot be aggregated");
        // Then 95pct is no reaggregation (upstream: a 500).
        let got = api
            .get(StatusCode::BAD_REQUEST, &format!("{url}&needed_overlap=0"))
            .await;
        assert!(
            description(&got)
                .as_str()
                .is_some_and(|d| d.starts_with("Invalid reaggregation value 95pct")),
            "{got}"
        );
    }

    #[tokio::test]
    async fn resources_are_taken_in_id_order_and_an_empty_grouping_checks_nothing() {
        let api = TestApi::start().await;
        api.policy_60s("p", &["mean"]).await;
        // Created in the opposite order of their ids.
        let ids = [
            "ffffffff-0000-4000-8000-000000000001",
            "00000000-0000-4000-8000-000000000002",
        ];
        let mut metric_of = Vec::new();
        for id in ids {
            api.expect(
                StatusCode::CREATED,
                "POST",
                "/v1/resource/generic",
                Some(json!({"id": id, "metrics": {"cpu": {"archive_policy_name": "p"}}})),
            )
            .await;
            let r = api
                .get(StatusCode::OK, &format!("/v1/resource/generic/{id}"))
                .await;
            metric_of.push(r["metrics"]["cpu"].as_str().expect("cpu").to_string());
        }
        let url = "/v1/aggregation/resource/generic/metric/cpu";
        let got = api
            .expect(
                StatusCode::NOT_FOUND,
                "POST",
                &format!("{url}?granularity=300"),
                Some(json!({"in": {"id": ids}})),
            )
            .await;
        assert_eq!(
            description(&got),
            &json!(format!(
                "Aggregation method 'mean' at granularity '300.0' for metric {} does not exist",
                metric_of[1]
            ))
        );
        // No group, so the parameters are never looked at.
        let got = api
            .expect(
                StatusCode::OK,
                "POST",
                &format!("{url}?groupby=project_id&fill=bogus"),
                Some(json!({"=": {"id": "11111111-0000-4000-8000-000000000000"}})),
            )
            .await;
        assert_eq!(got, json!([]));
    }
}
