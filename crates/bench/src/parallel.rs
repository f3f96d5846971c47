//! Run many independent HTTP requests over a few keep-alive connections and
//! time them: the shared engine of the resource and aggregates workloads.

use super::http::{Conn, Target, connect_many};
use crate::BoxError;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One request of a phase: what to send and the status that means success.
pub struct Call {
    pub method: Method,
    pub uri: String,
    pub body: Option<Bytes>,
    pub expected: StatusCode,
}

/// Send every call once, `connections` at a time; returns the wall time and
/// each call's latency (in the order the calls were given).
pub async fn run(
    target: &Target,
    connections: usize,
    calls: Vec<Call>,
) -> Result<(Duration, Vec<Duration>), BoxError> {
    let n = calls.len();
    let calls = Arc::new(calls);
    let conns = connect_many(target, connections.clamp(1, n.max(1))).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for conn in conns {
        let (calls, next) = (calls.clone(), next.clone());
        tasks.spawn(worker(conn, calls, next));
    }
    let mut latencies = vec![Duration::ZERO; n];
    while let Some(done) = tasks.join_next().await {
        for (i, d) in done?? {
            latencies[i] = d;
        }
    }
    Ok((start.elapsed(), latencies))
}

async fn worker(
    mut conn: Conn,
    calls: Arc<Vec<Call>>,
    next: Arc<AtomicUsize>,
) -> Result<Vec<(usize, Duration)>, BoxError> {
    let mut out = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(call) = calls.get(i) else {
            return Ok(out);
        };
        let t = Instant::now();
        conn.expect(
            call.method.clone(),
            &call.uri,
            call.body.clone(),
            call.expected,
        )
        .await?;
        out.push((i, t.elapsed()));
    }
}

/// Median and 99th percentile, in milliseconds.
pub fn percentiles_ms(latencies: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return (0.0, 0.0);
    }
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// A stable UUID for the `i`-th object of a bench run (unique per run).
pub fn uuid_for(run: u32, kind: u16, i: usize) -> String {
    format!("{run:08x}-{kind:04x}-4000-8000-{i:012x}")
}

/// A number that differs between runs, so a `--target` server can be reused.
pub fn run_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}
