//! `/`, `/v1`, `/healthcheck`, `/v1/capabilities`, `/v1/status`.

use crate::AppState;
use crate::access::auth::Creds;
use crate::wire::error::ApiResult;
use crate::wire::http::{Ctx, ok_json};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use carbonara::Method;
use gnocchi_engine::MemberStats;
use gnocchi_storage::Backlog;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
    let stats = member_stats(&state, processors.as_deref()).await;
    let metricd = metricd_report(processors);
    let mut report = json!({
        "storage": storage,
        "metricd": metricd,
    });
    // Beside upstream's `metricd`, never inside it: clients (and upstream's
    // own tests) expect `metricd` to hold exactly `processors` and `statistics`.
    if let (Value::Object(r), Some(stats)) = (&mut report, stats) {
        let now = SystemTime::now();
        let members: Vec<Value> = stats
            .iter()
            .map(|(id, s)| member_report(id, s.as_ref(), &backlog, now))
            .collect();
        r.insert("processing".into(), json!({"members": members}));
    }
    Ok(ok_json(&report))
}

/// Each processor with the statistics it published (`None`: none yet), in
/// the processors' order; `None` when there are no processors to report.
async fn member_stats(
    state: &AppState,
    processors: Option<&[String]>,
) -> Option<Vec<(String, Option<MemberStats>)>> {
    let processors = processors?;
    let coordinator = state.engine.coordinator();
    if !coordinator.is_distributed() {
        // The embedded metricd: this process's own engine.
        let stats = state.engine.stats();
        return Some(
            processors
                .iter()
                .map(|p| (p.clone(), Some(stats.clone())))
                .collect(),
        );
    }
    let mut published = match tokio::time::timeout(MEMBERS_TIMEOUT, coordinator.member_stats())
        .await
    {
        Ok(Ok(Some(published))) => published,
        Ok(Ok(None)) => Default::default(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "status: cannot read the processing statistics");
            Default::default()
        }
        Err(_) => {
            tracing::warn!(timeout = ?MEMBERS_TIMEOUT, "status: the processing statistics did not arrive in time");
            Default::default()
        }
    };
    Some(
        processors
            .iter()
            .map(|p| (p.clone(), published.remove(p)))
            .collect(),
    )
}

/// One entry of `processing.members` (an extension of upstream's report):
/// the member's sacks, its processing rate over the last minute, and the
/// age of the oldest measure pending in its sacks (0 when none is pending,
/// `null` when the incoming driver cannot tell or the member published
/// nothing yet).
fn member_report(
    id: &str,
    stats: Option<&MemberStats>,
    backlog: &Backlog,
    now: SystemTime,
) -> Value {
    let Some(stats) = stats else {
        return json!({
            "id": id,
            "sacks": null,
            "measures_processed_last_minute": null,
            "measures_per_second_last_minute": null,
            "oldest_pending_measure_age_seconds": null,
        });
    };
    let age = backlog
        .oldest_in(stats.sacks.iter().copied())
        .map(|oldest| {
            oldest.map_or(0.0, |t| {
                let age = now.duration_since(t).unwrap_or_default().as_secs_f64();
                (age * 1000.0).round() / 1000.0
            })
        });
    let rate = (stats.measures_per_second() * 1000.0).round() / 1000.0;
    json!({
        "id": id,
        "sacks": stats.sacks,
        "measures_processed_last_minute": stats.measures_processed_last_minute,
        "measures_per_second_last_minute": rate,
        "oldest_pending_measure_age_seconds": age,
    })
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
    fn a_member_reports_its_sacks_rate_and_the_age_of_its_oldest_pending_measure() {
        let now = SystemTime::now();
        let backlog = Backlog {
            oldest_pending: Some(
                [
                    (1, now - Duration::from_millis(2500)),
                    (3, now - Duration::from_secs(9)),
                ]
                .into_iter()
                .collect(),
            ),
            ..Backlog::default()
        };
        let stats = MemberStats {
            sacks: vec![0, 1],
            measures_processed_last_minute: 90,
            window_seconds: 60.0,
        };
        assert_eq!(
            member_report("a", Some(&stats), &backlog, now),
            json!({"id": "a", "sacks": [0, 1], "measures_processed_last_minute": 90,
                   "measures_per_second_last_minute": 1.5,
                   "oldest_pending_measure_age_seconds": 2.5})
        );
        // Nothing pending in its sacks: 0; a driver that cannot tell: null.
        let idle = MemberStats {
            sacks: vec![2],
            ..stats.clone()
        };
        assert_eq!(
            member_report("a", Some(&idle), &backlog, now)["oldest_pending_measure_age_seconds"],
            json!(0.0)
        );
        assert_eq!(
            member_report("a", Some(&stats), &Backlog::default(), now)["oldest_pending_measure_age_seconds"],
            Value::Null
        );
        // A member that published nothing yet.
        assert_eq!(
            member_report("b", None, &backlog, now)["sacks"],
            Value::Null
        );
    }

    /// The embedded metricd: measures posted and not yet processed show as an
    /// age that grows; once processed they count in the last minute's rate
    /// and nothing is pending any more.
    #[tokio::test]
    async fn embedded_status_shows_the_backlog_age_then_the_processing_rate() {
        let api = TestApi::start_with(crate::ApiConfig {
            processors: vec!["me.1".into()],
            ..Default::default()
        })
        .await;
        api.policy_60s("p", &["mean"]).await;
        let m = api
            .expect(
                StatusCode::CREATED,
                "POST",
                "/v1/metric",
                Some(json!({"archive_policy_name": "p"})),
            )
            .await;
        let id = m["id"].as_str().expect("id").to_string();
        let points: Vec<Value> = (0..5)
            .map(|i| json!({"timestamp": format!("2026-01-01T00:0{i}:00"), "value": i}))
            .collect();
        api.expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/metric/{id}/measures"),
            Some(json!(points)),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let member = |doc: &Value| doc["processing"]["members"][0].clone();
        let first = member(&api.get(StatusCode::OK, "/v1/status").await);
        assert_eq!(first["id"], json!("me.1"));
        assert_eq!(first["sacks"], json!((0..8).collect::<Vec<u32>>()));
        assert_eq!(first["measures_processed_last_minute"], json!(0));
        let age1 = first["oldest_pending_measure_age_seconds"]
            .as_f64()
            .expect("age");
        assert!(age1 > 0.0, "{first}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = member(&api.get(StatusCode::OK, "/v1/status").await);
        let age2 = second["oldest_pending_measure_age_seconds"]
            .as_f64()
            .expect("age");
        assert!(age2 >= age1 + 0.25, "{first} then {second}");

        api.get(
            StatusCode::OK,
            &format!("/v1/metric/{id}/measures?refresh=true"),
        )
        .await;
        let doc = api.get(StatusCode::OK, "/v1/status").await;
        let after = member(&doc);
        assert_eq!(after["measures_processed_last_minute"], json!(5), "{doc}");
        assert!(
            after["measures_per_second_last_minute"]
                .as_f64()
                .expect("rate")
                > 0.0
        );
        assert_eq!(after["oldest_pending_measure_age_seconds"], json!(0.0));
        // Upstream's fields are untouched.
        assert_eq!(doc["metricd"]["processors"], json!(["me.1"]));
        assert_eq!(doc["metricd"]["statistics"], json!({"me.1": {}}));
        assert_eq!(
            doc["storage"]["summary"],
            json!({"metrics": 0, "measures": 0})
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
