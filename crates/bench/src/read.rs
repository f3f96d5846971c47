//! Reads over HTTP: one metric's 43,200 points back as JSON.
//!
//! What it measures: points per second served by
//! `GET /v1/metric/ID/measures?granularity=1` for a metric holding 12 hours of
//! one-second points (43,200): the index lookup, listing and reading the splits
//! from the aggregate store, decoding them, and rendering upstream's JSON
//! (`[["2024-01-01T00:00:00+00:00", 1.0, 42.17], ...]`). Repeated on one
//! keep-alive connection (latency-bound), then on several at once (throughput).
//!
//! Why it is representative: this is a Grafana panel or `gnocchi measures show`
//! over half a day of a 1-second metric, the read DESIGN §4 budgets (upstream
//! serves 0.29M points/s).

use super::http::{Conn, CpuMeter, Target, connect_many};
use super::ingest::{EPOCH_2024, gauge, measures_json};
use super::report::{Figure, Report};
use crate::BoxError;
use hyper::{Method, StatusCode, Uri};
use std::time::{Duration, Instant};

/// Archive policy of the read metric (created by the caller): 1 s granularity,
/// room for a day of points, the default methods.
pub const POLICY: &str = "bench-1s";

#[derive(Debug, Clone)]
pub struct Settings {
    /// Points of the metric (43,200 = 12 h at 1 s).
    pub points: usize,
    /// Requests per connection.
    pub repetitions: usize,
    /// Connections of the concurrent pass.
    pub connections: usize,
}

pub async fn run(
    target: &Target,
    server_pid: Option<u32>,
    s: &Settings,
    report: &mut Report,
) -> Result<(), BoxError> {
    let points = s.points.max(1);
    let mut conn = Conn::connect(target).await?;
    let id = conn.create_metric(POLICY).await?;
    eprintln!("read: writing {points} points to metric {id}...");
    let post = format!("/v1/metric/{id}/measures");
    let mut t = 0;
    while t < points {
        let n = (points - t).min(5000);
        let start = EPOCH_2024 + t as i64;
        let body = measures_json(start..start + n as i64, gauge);
        conn.expect(Method::POST, &post, Some(body), StatusCode::ACCEPTED)
            .await?;
        t += n;
    }
    let uri = format!("/v1/metric/{id}/measures?granularity=1");
    // `refresh=true` processes what is still pending, so every read sees all points.
    let first = conn
        .expect(
            Method::GET,
            &format!("{uri}&refresh=true"),
            None,
            StatusCode::OK,
        )
        .await?;
    let got: serde_json::Value = serde_json::from_slice(&first)?;
    let got = got.as_array().map_or(0, Vec::len);
    if got != points {
        return Err(format!("read: expected {points} points, the server returned {got}").into());
    }
    let uri: Uri = uri.parse()?;
    let bytes_per_point = first.len() as f64 / points as f64;

    // One connection, requests back to back.
    let cpu = CpuMeter::start(server_pid);
    let (took, reads) = read_pass(target, &uri, 1, s.repetitions, first.len()).await?;
    let cpu = cpu.note(reads as u64, "read");
    report.push(
        Figure::new(
            "read_1_connection",
            format!("read, {points} points, 1 connection"),
            (points * reads) as f64 / took.as_secs_f64(),
            "points/s",
        )
        .aim(">= 15M/s")
        .note(format!(
            "{reads} reads, {:.1} ms each, {:.0} bytes of JSON per point; {cpu}",
            took.as_secs_f64() * 1e3 / reads as f64,
            bytes_per_point
        )),
    );

    // Several connections at once.
    let c = s.connections.max(1);
    let cpu = CpuMeter::start(server_pid);
    let (took, total) = read_pass(target, &uri, c, s.repetitions, first.len()).await?;
    let cpu = cpu.note(total as u64, "read");
    report.push(
        Figure::new(
            "read_concurrent",
            format!("read, {points} points, {c} connections"),
            (points * total) as f64 / took.as_secs_f64(),
            "points/s",
        )
        .aim(">= 15M/s")
        .note(format!(
            "{total} reads in {:.2} s; {cpu}",
            took.as_secs_f64()
        )),
    );
    Ok(())
}

/// `connections` connections each GET `uri` `repetitions` times; every answer
/// must be a 200 of `expected_len` bytes. Returns the time and the reads done.
async fn read_pass(
    target: &Target,
    uri: &Uri,
    connections: usize,
    repetitions: usize,
    expected_len: usize,
) -> Result<(Duration, usize), BoxError> {
    let conns = connect_many(target, connections).await?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in conns {
        let uri = uri.clone();
        tasks.spawn(async move {
            for _ in 0..repetitions.max(1) {
                let (status, body) = conn.request(Method::GET, uri.clone(), None).await?;
                if status != StatusCode::OK || body.len() != expected_len {
                    return Err::<(), BoxError>(
                        format!(
                            "GET {uri}: {status}, {} bytes (expected 200, {expected_len} bytes)",
                            body.len()
                        )
                        .into(),
                    );
                }
            }
            Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok((start.elapsed(), connections * repetitions.max(1)))
}
