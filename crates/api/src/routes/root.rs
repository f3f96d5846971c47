//! `/`, `/v1`, `/healthcheck`, `/v1/capabilities`, `/v1/status`.

use crate::AppState;
use crate::access::auth::Creds;
use crate::wire::error::ApiResult;
use crate::wire::http::{Ctx, ok_json};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use carbonara::Method;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The upstream release as a literal, for `concat!`.
macro_rules! upstream_api_version {
    () => {
        "4.7.1"
    };
}

/// The upstream Gnocchi release whose API this one implements, reported as
/// `build` by `GET /` and in InfluxDB's ping: clients read it to decide what
/// the server can do (Ceilometer refuses a Gnocchi older than 4.2), so it must
/// name the API, not this implementation.
pub const UPSTREAM_API_VERSION: &str = upstream_api_version!();

/// `gnocchid --version`: this implementation's version and the API it serves.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (Gnocchi API ",
    upstream_api_version!(),
    ")"
);

/// This implementation and its own version, in the `Server` header of every
/// response (which no Gnocchi client parses) and in `gnocchid --version`.
pub const SERVER: &str = concat!("gnocchi-rs/", env!("CARGO_PKG_VERSION"));

/// The version document (no authentication).
pub(crate) async fn versions(ctx: Ctx) -> Response {
    ok_json(&json!({
        "build": UPSTREAM_API_VERSION,
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
    state.policy.enforce_untargeted("get status", &creds)?;
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
    let processors = processors(&state).await;
    Ok(ok_json(&json!({
        "storage": storage,
        "metricd": metricd_report(processors),
    })))
}

/// How long `/v1/status` waits for the processing group's membership.
const MEMBERS_TIMEOUT: Duration = Duration::from_secs(5);

/// The members of the processing group, as upstream lists them: with a
/// distributed coordinator, the live members it reports (every `gnocchid
/// metricd` sharing the backends, whichever process answers); otherwise this
/// process itself when it runs metricd. `None` when there is none, or when the
/// membership cannot be read (upstream then reports `null` too).
async fn processors(state: &AppState) -> Option<Vec<String>> {
    let coordinator = state.engine.coordinator();
    let local = || Some(state.config.processors.clone()).filter(|p| !p.is_empty());
    if !coordinator.is_distributed() {
        return local();
    }
    match tokio::time::timeout(MEMBERS_TIMEOUT, coordinator.members()).await {
        Ok(Ok(Some(members))) => Some(members),
        Ok(Ok(None)) => local(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "status: cannot read the processing group's members");
            None
        }
        Err(_) => {
            tracing::warn!(
                timeout = ?MEMBERS_TIMEOUT,
                "status: the processing group's members did not arrive in time"
            );
            None
        }
    }
}

/// The `metricd` part of `/v1/status`: the processors and their statistics
/// (none kept yet: an empty object per member).
fn metricd_report(processors: Option<Vec<String>>) -> Value {
    match processors {
        Some(members) => {
            let statistics: Map<String, Value> =
                members.iter().map(|p| (p.clone(), json!({}))).collect();
            json!({"processors": members, "statistics": statistics})
        }
        None => json!({"processors": null, "statistics": {}}),
    }
}

/// Names this implementation in every response (see [`SERVER`]).
pub(crate) async fn server_header(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        axum::http::header::SERVER,
        axum::http::HeaderValue::from_static(SERVER),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestApi;
    use axum::http::StatusCode;

    /// Ceilometer reads `build` and refuses a Gnocchi older than 4.2: it must
    /// be the upstream API's version, ours goes in the `Server` header.
    #[tokio::test]
    async fn versions_report_the_upstream_api_as_build_and_ours_as_server() {
        let api = TestApi::start().await;
        let doc = api.get(StatusCode::OK, "/").await;
        assert_eq!(doc["build"], json!("4.7.1"));
        for path in ["/", "/v1/archive_policy", "/v1/nowhere"] {
            let resp = api.get_response(path).await;
            let server = resp.headers().get(axum::http::header::SERVER);
            assert_eq!(
                server.and_then(|v| v.to_str().ok()),
                Some(concat!("gnocchi-rs/", env!("CARGO_PKG_VERSION"))),
                "{path}"
            );
        }
        assert_eq!(
            VERSION_LINE,
            concat!(env!("CARGO_PKG_VERSION"), " (Gnocchi API 4.7.1)")
        );
    }

    #[test]
    fn metricd_report_lists_every_member_with_its_statistics() {
        let members = vec!["1234".to_string(), "host.42".to_string()];
        assert_eq!(
            metricd_report(Some(members)),
            json!({"processors": ["1234", "host.42"],
                   "statistics": {"1234": {}, "host.42": {}}})
        );
    }

    #[test]
    fn metricd_report_without_members_is_null() {
        assert_eq!(
            metricd_report(None),
            json!({"processors": null, "statistics": {}})
        );
        // A distributed group with nobody in it is an empty list, as upstream.
        assert_eq!(
            metricd_report(Some(Vec::new())),
            json!({"processors": [], "statistics": {}})
        );
    }
}
