//! Cross-metric aggregation: `POST /v1/aggregates` latency.
//!
//! What it measures: (1) the mean across M metrics (1,000 by default) of one day
//! of 1-minute points each, `(aggregate mean (metric (ID mean) ...))` by metric
//! ids; (2) a `groupby` over G resources (10,000 by default) of a custom type,
//! each with a `cpu` metric holding an hour of 1-minute points,
//! `(aggregate mean (metric cpu mean))` grouped by an attribute with 10 values.
//! Both after metricd has processed everything; medians of a few runs.
//!
//! Why it is representative: dashboards (Grafana) and alarms (Aodh) ask exactly
//! these: the mean CPU of a project's instances, the sum per host.

use super::http::{Conn, Target};
use super::parallel::{self, Call, run_id, uuid_for};
use super::report::{Figure, Report};
use crate::BoxError;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Settings {
    pub connections: usize,
    pub metrics: usize,
    pub resources: usize,
    pub repeats: usize,
}

pub const POLICY: &str = "bench-minute";
const TYPE: &str = "bench_group";
/// 2024-01-01T00:00:00Z, in seconds.
const DAY0: i64 = 1_704_067_200;

fn bytes(v: &Value) -> Option<Bytes> {
    Some(Bytes::from(v.to_string()))
}

fn minute_points(n: usize, seed: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|m| json!({"timestamp": DAY0 + 60 * m as i64, "value": ((m * 7 + seed * 13) % 100) as f64 / 2.0}))
            .collect(),
    )
}

async fn median_latency(
    conn: &mut Conn,
    uri: &str,
    body: &Value,
    repeats: usize,
) -> Result<(f64, usize), BoxError> {
    let payload = bytes(body);
    let mut ms = Vec::new();
    let mut size = 0;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let resp = conn
            .expect(Method::POST, uri, payload.clone(), StatusCode::OK)
            .await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        size = resp.len();
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], size))
}

pub async fn run(target: &Target, s: &Settings, report: &mut Report) -> Result<(), BoxError> {
    let mut conn = Conn::connect(target).await?;
    conn.ensure_archive_policy(json!({
        "name": POLICY,
        "back_window": 0,
        "aggregation_methods": ["mean"],
        "definition": [{"granularity": "1min", "points": 1440}],
    }))
    .await?;

    // (1) mean across metrics, by id.
    let m = s.metrics.max(2);
    eprintln!("aggregates: {m} metrics x 1440 points...");
    let ids = super::crud::create_metrics(target, s.connections, m, POLICY).await?;
    let pushes: Vec<Call> = ids
        .chunks(50)
        .enumerate()
        .map(|(c, chunk)| {
            let body: serde_json::Map<String, Value> = chunk
                .iter()
                .enumerate()
                .map(|(k, id)| (id.clone(), minute_points(1440, c * 50 + k)))
                .collect();
            Call {
                method: Method::POST,
                uri: "/v1/batch/metrics/measures".into(),
                body: bytes(&Value::Object(body)),
                expected: StatusCode::ACCEPTED,
            }
        })
        .collect();
    parallel::run(target, s.connections, pushes).await?;
    conn.wait_backlog_drained(Duration::from_secs(600)).await?;
    let refs: Vec<Value> = ids.iter().map(|id| json!([id, "mean"])).collect();
    let mut metric_node = vec![json!("metric")];
    metric_node.extend(refs);
    let query = json!({"operations": ["aggregate", "mean", metric_node]});
    let (ms, size) = median_latency(&mut conn, "/v1/aggregates", &query, s.repeats).await?;
    report.push(
        Figure::new(
            "aggregates_mean_metrics",
            "aggregates: mean of metrics x 1 day of 1-min points",
            ms,
            "ms",
        )
        .note(format!(
            "{m} metrics, {} points read; median of {}; {size} bytes out",
            m * 1440,
            s.repeats
        )),
    );

    // (2) groupby over resources.
    let g = s.resources.max(10);
    let (status, resp) = conn
        .request(
            Method::POST,
            "/v1/resource_type".parse()?,
            bytes(&json!({"name": TYPE, "attributes": {"group": {"type": "string", "required": true}}})),
        )
        .await?;
    if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
        return Err(format!(
            "creating {TYPE}: {status} {}",
            String::from_utf8_lossy(&resp)
        )
        .into());
    }
    let run = run_id();
    eprintln!("aggregates: {g} resources with a metric each...");
    let creates: Vec<Call> = (0..g)
        .map(|i| Call {
            method: Method::POST,
            uri: format!("/v1/resource/{TYPE}"),
            body: bytes(&json!({
                "id": uuid_for(run, 2, i),
                "group": format!("g{}", i % 10),
                "metrics": {"cpu": {"archive_policy_name": POLICY}},
            })),
            expected: StatusCode::CREATED,
        })
        .collect();
    parallel::run(target, s.connections, creates).await?;
    let pushes: Vec<Call> = (0..g)
        .collect::<Vec<_>>()
        .chunks(500)
        .map(|chunk| {
            let body: serde_json::Map<String, Value> = chunk
                .iter()
                .map(|i| (uuid_for(run, 2, *i), json!({"cpu": minute_points(60, *i)})))
                .collect();
            Call {
                method: Method::POST,
                uri: "/v1/batch/resources/metrics/measures".into(),
                body: bytes(&Value::Object(body)),
                expected: StatusCode::ACCEPTED,
            }
        })
        .collect();
    parallel::run(target, s.connections, pushes).await?;
    conn.wait_backlog_drained(Duration::from_secs(600)).await?;
    let query = json!({
        "operations": "(aggregate mean (metric cpu mean))",
        "resource_type": TYPE,
        "search": {"like": {"group": "g%"}},
    });
    let (ms, size) =
        median_latency(&mut conn, "/v1/aggregates?groupby=group", &query, s.repeats).await?;
    report.push(
        Figure::new(
            "aggregates_groupby",
            "aggregates: groupby over resources",
            ms,
            "ms",
        )
        .note(format!(
            "{g} resources in 10 groups x 60 points; median of {}; {size} bytes out",
            s.repeats
        )),
    );
    Ok(())
}
