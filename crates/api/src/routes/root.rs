//! `/`, `/v1`, `/healthcheck`, `/v1/capabilities`, `/v1/status`.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::policy::Target;
use crate::wire::error::ApiResult;
use crate::wire::http::{Ctx, ok_json};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use carbonara::Method;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
