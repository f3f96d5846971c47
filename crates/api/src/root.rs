//! `/`, `/v1`, `/healthcheck`, `/v1/capabilities`, `/v1/status`.

use crate::AppState;
use crate::auth::Creds;
use crate::error::ApiResult;
use crate::http::{Ctx, ok_json};
use crate::policy::Target;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use carbonara::Method;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version document (no authentication).
pub(crate) async fn versions(ctx: Ctx) -> Response {
    ok_json(&json!({
        "build": VERSION,
        "versions": [{
            "status": "CURRENT",
            "links": [{"rel": "self", "href": ctx.url("/v1/")}],
            "id": "v1.0",
            "updated": "2015-03-19",
        }],
    }))
}

/// The links of the v1 API, sorted by name.
pub(crate) async fn v1_links(ctx: Ctx) -> Response {
    let names = [
        "aggregates",
        "aggregation",
        "archive_policy",
        "archive_policy_rule",
        "batch",
        "capabilities",
        "influxdb",
        "metric",
        "resource",
        "resource_type",
        "search",
        "status",
    ];
    let mut links = vec![json!({"rel": "self", "href": ctx.url("/v1")})];
    links.extend(
        names
            .iter()
            .map(|n| json!({"rel": n, "href": ctx.url(&format!("/v1/{n}"))})),
    );
    ok_json(&json!({"version": "1.0", "links": links}))
}

pub(crate) async fn healthcheck() -> Response {
    "OK".into_response()
}

pub(crate) async fn capabilities() -> Response {
    let methods: Vec<String> = Method::all().iter().map(Method::to_string).collect();
    ok_json(&json!({"aggregation_methods": methods}))
}

/// The processing backlog, as upstream reports it (admin only).
pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
) -> ApiResult<Response> {
    state.policy.enforce("get status", &creds, &Target::new())?;
    let details = ctx.bool_param("details")?.unwrap_or(true);
    let backlog = state.incoming.backlog().await?;
    let batches: u64 = backlog.per_metric.values().sum();
    let mut storage = Map::new();
    storage.insert(
        "summary".into(),
        json!({"metrics": backlog.per_metric.len(), "measures": batches}),
    );
    if details {
        let per_metric: Map<String, Value> = backlog
            .per_metric
            .iter()
            .map(|(id, n)| (id.to_string(), json!(n)))
            .collect();
        storage.insert("measures_to_process".into(), Value::Object(per_metric));
    }
    let processors = &state.config.processors;
    let statistics: Map<String, Value> =
        processors.iter().map(|p| (p.clone(), json!({}))).collect();
    Ok(ok_json(&json!({
        "storage": storage,
        "metricd": {
            "processors": if processors.is_empty() { Value::Null } else { json!(processors) },
            "statistics": statistics,
        },
    })))
}
