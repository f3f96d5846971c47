//! Resources: create, PATCH and search with many resources of a custom type.
//!
//! What it measures: `POST /v1/resource/bench_host` per second (each one a
//! transaction writing the resource and its typed attribute row), `PATCH` per
//! second (each real change writes a revision to the history tables), and the
//! latency of `POST /v1/search/resource/bench_host` on an attribute (indexed)
//! and on a combination with `like`, once N resources exist (100,000 by default).
//!
//! Why it is representative: Ceilometer creates a resource per instance, volume
//! or port and updates it on every state change; Grafana and Aodh find them by
//! attribute. Upstream published about 1.5K creations/s on 12 cores.

use super::http::Target;
use super::parallel::{self, Call, run_id, uuid_for};
use super::report::{Figure, Report};
use crate::BoxError;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::json;

#[derive(Debug, Clone)]
pub struct Settings {
    pub connections: usize,
    pub resources: usize,
    pub patches: usize,
    pub searches: usize,
}

const TYPE: &str = "bench_host";

fn body(v: serde_json::Value) -> Option<Bytes> {
    Some(Bytes::from(v.to_string()))
}

pub async fn run(target: &Target, s: &Settings, report: &mut Report) -> Result<(), BoxError> {
    let mut conn = super::http::Conn::connect(target).await?;
    let (status, resp) = conn
        .request(
            Method::POST,
            "/v1/resource_type".parse()?,
            body(json!({"name": TYPE, "attributes": {
                "host": {"type": "string", "required": true, "max_length": 255},
                "flavor": {"type": "number", "required": false},
                "enabled": {"type": "bool", "required": false},
            }})),
        )
        .await?;
    if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
        return Err(format!(
            "creating the bench resource type: {status} {}",
            String::from_utf8_lossy(&resp)
        )
        .into());
    }
    let run = run_id();
    let n = s.resources.max(1);
    eprintln!("resources: creating {n} resources of type {TYPE}...");
    let creates: Vec<Call> = (0..n)
        .map(|i| Call {
            method: Method::POST,
            uri: format!("/v1/resource/{TYPE}"),
            body: body(json!({
                "id": uuid_for(run, 1, i),
                "host": format!("host-{run}-{i}"),
                "flavor": (i % 16) as f64,
                "enabled": i % 2 == 0,
                "project_id": format!("project-{}", i % 100),
            })),
            expected: StatusCode::CREATED,
        })
        .collect();
    let (took, _) = parallel::run(target, s.connections, creates).await?;
    report.push(
        Figure::new(
            "resource_create",
            "resource create (custom type)",
            n as f64 / took.as_secs_f64(),
            "ops/s",
        )
        .note(format!("{n} resources in {:.1} s", took.as_secs_f64())),
    );

    let patches = s.patches.min(n).max(1);
    let calls: Vec<Call> = (0..patches)
        .map(|i| Call {
            method: Method::PATCH,
            uri: format!(
                "/v1/resource/{TYPE}/{}",
                uuid_for(run, 1, i * (n / patches).max(1))
            ),
            body: body(json!({"flavor": 100.0 + i as f64, "enabled": i % 3 == 0})),
            expected: StatusCode::OK,
        })
        .collect();
    let (took, _) = parallel::run(target, s.connections, calls).await?;
    report.push(
        Figure::new(
            "resource_patch",
            "resource PATCH (new revision)",
            patches as f64 / took.as_secs_f64(),
            "ops/s",
        )
        .note(format!("{patches} patches among {n} resources")),
    );

    let searches = s.searches.max(1);
    let step = (n / searches).max(1);
    let by_host: Vec<Call> = (0..searches)
        .map(|i| Call {
            method: Method::POST,
            uri: format!("/v1/search/resource/{TYPE}"),
            body: body(json!({"=": {"host": format!("host-{run}-{}", (i * step) % n)}})),
            expected: StatusCode::OK,
        })
        .collect();
    let (_, lat) = parallel::run(target, 1, by_host).await?;
    let (p50, p99) = parallel::percentiles_ms(&lat);
    report.push(
        Figure::new(
            "resource_search_eq",
            "resource search, attribute =",
            p50,
            "ms",
        )
        .note(format!(
            "median of {searches}; p99 {p99:.2} ms; {n} resources"
        )),
    );
    let combined: Vec<Call> = (0..searches)
        .map(|i| Call {
            method: Method::POST,
            uri: format!("/v1/search/resource/{TYPE}?limit=10"),
            body: body(json!({"and": [
                {"=": {"flavor": (i % 16) as f64}},
                {"like": {"host": format!("host-{run}-{}%", i % 1000)}},
                {"=": {"project_id": format!("project-{}", i % 100)}},
            ]})),
            expected: StatusCode::OK,
        })
        .collect();
    let (_, lat) = parallel::run(target, 1, combined).await?;
    let (p50, p99) = parallel::percentiles_ms(&lat);
    report.push(
        Figure::new(
            "resource_search_and",
            "resource search, and(=, like, =), limit 10",
            p50,
            "ms",
        )
        .note(format!(
            "median of {searches}; p99 {p99:.2} ms; {n} resources"
        )),
    );
    Ok(())
}
