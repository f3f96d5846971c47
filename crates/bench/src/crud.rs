//! Metric create / show / delete over HTTP.
//!
//! What it measures: `POST /v1/metric`, `GET /v1/metric/ID` and
//! `DELETE /v1/metric/ID` completed per second, each phase on its own, with
//! many concurrent keep-alive connections. These go through the index (SQLite in
//! the embedded default): an insert, a lookup joined with the archive policy, a
//! soft delete; each write is one durable transaction.
//!
//! Why it is representative: agents create their metrics on first sight of a
//! resource (Ceilometer creates thousands at deployment), dashboards show them,
//! and deleting resources deletes metrics in bulk; upstream manages a few hundred
//! per second of each (DESIGN §4).

use super::http::{Conn, CpuMeter, Target, connect_many, metric_body, metric_id};
use super::report::{Figure, Report};
use crate::BoxError;
use bytes::Bytes;
use hyper::{Method, StatusCode, Uri};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Settings {
    pub connections: usize,
    pub metrics: usize,
}

/// One of the three operations, with what it needs.
#[derive(Clone)]
enum Op {
    /// Create metrics with this archive policy.
    Create(Bytes),
    Show(Arc<Vec<Uri>>),
    Delete(Arc<Vec<Uri>>),
}

/// Run `n` operations over `connections` connections (each takes the next
/// index in turn). Returns the ids created (for `Create`) and the time taken,
/// connection setup excluded.
async fn run_op(
    target: &Target,
    connections: usize,
    n: usize,
    op: Op,
) -> Result<(Vec<String>, Duration), BoxError> {
    let conns = connect_many(target, connections.clamp(1, n.max(1))).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for conn in conns {
        tasks.spawn(op_worker(conn, next.clone(), n, op.clone()));
    }
    let mut ids = Vec::new();
    while let Some(r) = tasks.join_next().await {
        ids.extend(r??);
    }
    Ok((ids, start.elapsed()))
}

async fn op_worker(
    mut conn: Conn,
    next: Arc<AtomicUsize>,
    n: usize,
    op: Op,
) -> Result<Vec<String>, BoxError> {
    let mut ids = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return Ok(ids);
        }
        let (method, uri, body, expected) = match &op {
            Op::Create(body) => (
                Method::POST,
                Uri::from_static("/v1/metric"),
                Some(body.clone()),
                StatusCode::CREATED,
            ),
            Op::Show(uris) => (Method::GET, uris[i].clone(), None, StatusCode::OK),
            Op::Delete(uris) => (
                Method::DELETE,
                uris[i].clone(),
                None,
                StatusCode::NO_CONTENT,
            ),
        };
        let what = format!("{method} {uri}");
        let (status, resp) = conn.request(method, uri, body).await?;
        if status != expected {
            return Err(format!(
                "{what}: expected {expected}, got {status}: {}",
                String::from_utf8_lossy(&resp)
            )
            .into());
        }
        if let Op::Create(_) = op {
            ids.push(metric_id(&resp)?);
        }
    }
}

/// Create `n` metrics with archive policy `policy`, concurrently; their ids.
pub async fn create_metrics(
    target: &Target,
    connections: usize,
    n: usize,
    policy: &str,
) -> Result<Vec<String>, BoxError> {
    Ok(
        run_op(target, connections, n, Op::Create(metric_body(policy)))
            .await?
            .0,
    )
}

pub async fn run(
    target: &Target,
    server_pid: Option<u32>,
    s: &Settings,
    policy: &str,
    report: &mut Report,
) -> Result<(), BoxError> {
    let n = s.metrics.max(1);
    eprintln!("crud: {n} metrics, {} connections", s.connections);
    let cpu = CpuMeter::start(server_pid);
    let (ids, created) = run_op(target, s.connections, n, Op::Create(metric_body(policy))).await?;
    let created_cpu = cpu.note(n as u64, "op");
    let uris: Arc<Vec<Uri>> = Arc::new(
        ids.iter()
            .map(|id| format!("/v1/metric/{id}").parse())
            .collect::<Result<_, _>>()?,
    );
    let cpu = CpuMeter::start(server_pid);
    let (_, shown) = run_op(target, s.connections, n, Op::Show(uris.clone())).await?;
    let shown_cpu = cpu.note(n as u64, "op");
    let cpu = CpuMeter::start(server_pid);
    let (_, deleted) = run_op(target, s.connections, n, Op::Delete(uris)).await?;
    let deleted_cpu = cpu.note(n as u64, "op");
    for (key, label, took, cpu) in [
        ("metric_create", "metric create", created, created_cpu),
        ("metric_show", "metric show", shown, shown_cpu),
        ("metric_delete", "metric delete", deleted, deleted_cpu),
    ] {
        report.push(
            Figure::new(key, label, n as f64 / took.as_secs_f64(), "ops/s")
                .aim(">= 20K/s")
                .note(format!("{n} metrics in {:.2} s; {cpu}", took.as_secs_f64())),
        );
    }
    // The metrics are gone for the API; the janitor purges them later.
    let mut conn = Conn::connect(target).await?;
    conn.expect(
        Method::GET,
        &format!("/v1/metric/{}", ids[0]),
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;
    Ok(())
}
