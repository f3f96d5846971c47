//! `/v1/metric/ID/measures`: push measures (202 once durable) and read aggregates.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::lookup::{find_metric as find, find_named_metric};
use crate::ingest::{self, Authorizer};
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::accepted;
use crate::wire::http::{Ctx, json_body_typed_check};
use crate::wire::measures_body::parse_measures_body;
use crate::wire::params::{now, resample_param, time_param, timespan_param};
use crate::wire::points::{granularity_token, write_points};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carbonara::Method;
use carbonara::calendar::Sampling;
use gnocchi_engine::{MeasuresQuery, ReadError};
use gnocchi_ingest::{MetricRef, MetricWrite, Request};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/metric/{id}/measures", get(read).post(push))
        // The measures of a metric named on its resource.
        .route(
            "/resource/{rtype}/{id}/metric/{name}/measures",
            get(read_measures).post(push_measures),
        )
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
    // Upstream checks the policy before it reads the body.
    let mut auth = Authorizer::new(state, creds);
    auth.post_measures(metric)?;
    json_body_typed_check(headers, "application/json")?;
    let measures = parse_measures_body(body, now())?;
    let request = Request {
        creator: Some(creds.creator()),
        metrics: vec![MetricWrite {
            metric: MetricRef::Found(metric.clone()),
            measures,
        }],
        resources: Vec::new(),
    };
    ingest::write(state, &mut auth, request).await?;
    Ok(accepted())
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
    let target = crate::access::targets::metric_target_with_resource(state, creds, metric).await?;
    state.policy.enforce("get measures", creds, &target)?;
    // Upstream's order: resample, start, stop, granularity, then the method.
    let resample = resample_param(ctx)?;
    let start = time_param(ctx, "start")?;
    let stop = time_param(ctx, "stop")?;
    let granularity = timespan_param(ctx, "granularity")?;
    let aggregation = ctx.param("aggregation").unwrap_or("mean");
    let method_missing = || ApiError::aggregation_method_not_found(metric.id, aggregation);
    let method = Method::parse(aggregation).ok_or_else(method_missing)?;
    // Upstream checks the method and the granularity against the archive
    // policy before it reads `refresh`: a request answered 404 processes
    // nothing (the pending measures stay pending), and a bad `refresh` value
    // is only reported for a method and granularity the policy has.
    let policy = &metric.archive_policy;
    if !policy.aggregation_methods.contains(&method) {
        return Err(method_missing());
    }
    if let Some(g) = granularity
        && !policy.definition.iter().any(|d| d.granularity == g)
    {
        return Err(ApiError::aggregation_not_found(aggregation, g, metric.id));
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
            return Err(ApiError::aggregation_not_found(aggregation, g, metric.id));
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
        _ => crate::wire::json::write_measures(series.iter(), &mut out),
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

async fn read_measures(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    UrlPath((rtype, id, name)): UrlPath<(String, String, String)>,
) -> ApiResult<Response> {
    let m = find_named_metric(&state, &rtype, &id, &name, &creds).await?;
    read_from(&state, &creds, &ctx, &m).await
}

async fn push_measures(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath((rtype, id, name)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let m = find_named_metric(&state, &rtype, &id, &name, &creds).await?;
    push_to(&state, &creds, &m, &headers, &body).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// Upstream 4.7.1 answers 404 for a method or granularity missing from
    /// the policy before it looks at `refresh`: such a request leaves the
    /// pending measures pending (what upstream answered: `[]` until a
    /// refresh with a method of the policy).
    #[tokio::test]
    async fn a_refresh_answered_404_processes_nothing() {
        use crate::test_support::TestApi;
        use axum::http::StatusCode;
        let api = TestApi::start().await;
        api.policy_60s("p", &["std"]).await;
        let m = api
            .expect(
                StatusCode::CREATED,
                "POST",
                "/v1/metric",
                Some(json!({"archive_policy_name": "p"})),
            )
            .await;
        let id = m["id"].as_str().expect("id").to_string();
        api.expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/metric/{id}/measures"),
            Some(json!([
                {"timestamp": "2024-01-01T00:00:00", "value": 1},
                {"timestamp": "2024-01-01T00:00:30", "value": 3},
            ])),
        )
        .await;
        let url = format!("/v1/metric/{id}/measures");
        api.get(StatusCode::NOT_FOUND, &format!("{url}?refresh=true"))
            .await;
        api.get(
            StatusCode::NOT_FOUND,
            &format!("{url}?refresh=true&aggregation=std&granularity=1"),
        )
        .await;
        // The policy is checked before a bad refresh value too.
        api.get(StatusCode::NOT_FOUND, &format!("{url}?refresh=maybe"))
            .await;
        assert_eq!(
            api.get(StatusCode::OK, &format!("{url}?aggregation=std"))
                .await,
            json!([])
        );
        assert_eq!(
            api.get(
                StatusCode::OK,
                &format!("{url}?aggregation=std&refresh=true")
            )
            .await,
            json!([["2024-01-01T00:00:00+00:00", 60.0, std::f64::consts::SQRT_2]])
        );
    }
}
