//! Ingest over HTTP: `POST /v1/metric/ID/measures` as fast as the server takes it.
//!
//! What it measures: measures (and requests) acknowledged per second by the
//! running server, for batches of 1, 100 and 5000 measures per request, over
//! many concurrent keep-alive connections spread over many metrics. A 202 means
//! the measures are durable in the incoming log (group-committed fsync), so this
//! is the full write path users see: HTTP parsing, auth, JSON decoding and
//! validation of every measure, the metric lookup, and the WAL append + fsync.
//! The server's own metricd runs meanwhile, as in production; after each phase
//! we also report how long the backlog took to drain (DESIGN §4: "a backlog never
//! builds up under any load the API accepts").
//!
//! Why it is representative: this is how collectors (Ceilometer, collectd,
//! Telegraf through the API) push: per-metric batches, many clients, timestamps
//! moving forward. It mirrors DESIGN §4's wrk setup (64 connections).
//!
//! The client must not be the bottleneck: bodies are serialized once before the
//! clock starts and shared (`Bytes` clones are reference counts); each connection
//! is a bare hyper HTTP/1.1 connection with one request in flight.

use super::crud;
use super::http::{Conn, CpuMeter, Rss, Tally, Target};
use super::report::{Figure, Report};
use crate::BoxError;
use bytes::Bytes;
use carbonara::NS_PER_SEC;
use hyper::{Method, StatusCode, Uri};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Archive policy of the ingested metrics (created by the caller): upstream's `low`.
pub const POLICY: &str = "bench-low";

#[derive(Debug, Clone)]
pub struct Settings {
    pub connections: usize,
    pub metrics: usize,
    /// How long each batch size is hammered.
    pub seconds: f64,
    pub batch_sizes: Vec<usize>,
    /// How long to wait for metricd to drain the backlog after each phase.
    pub drain_timeout: Duration,
}

/// 2024-01-01T00:00:00Z: where the bench's timestamps start.
pub const EPOCH_2024: i64 = 1_704_067_200;

/// Pre-serialized request bodies for one batch size. Body `j` holds the
/// measures at seconds `t0 + j*batch .. t0 + (j+1)*batch` (one per second), so a
/// metric sent bodies 0, 1, 2... sees its timestamps always increase.
struct Bodies {
    batch: usize,
    t0: i64,
    ready: Vec<Bytes>,
}

impl Bodies {
    fn new(batch: usize, t0: i64, count: usize) -> Bodies {
        let ready = (0..count).map(|j| body(batch, t0, j)).collect();
        Bodies { batch, t0, ready }
    }

    /// Body `j`: pre-serialized, or (past the expected count) serialized now.
    fn get(&self, j: usize) -> Bytes {
        match self.ready.get(j) {
            Some(b) => b.clone(),
            None => body(self.batch, self.t0, j),
        }
    }
}

/// A JSON measures list: ISO 8601 timestamps (as Ceilometer and gnocchiclient
/// send them) and gauge-like values with two decimals.
pub fn measures_json(timestamps_s: impl Iterator<Item = i64>, value: impl Fn(i64) -> f64) -> Bytes {
    let mut out = String::with_capacity(64);
    out.push('[');
    for (i, t) in timestamps_s.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"timestamp":""#);
        out.push_str(&carbonara::time::format_iso(t * NS_PER_SEC));
        out.push_str(r#"","value":"#);
        out.push_str(&format!("{:.2}", value(t)));
        out.push('}');
    }
    out.push(']');
    Bytes::from(out)
}

/// A value that wanders between 0 and 100 with two decimals, like a CPU percentage.
pub fn gauge(t: i64) -> f64 {
    (t.rem_euclid(10_007) * 7_919).rem_euclid(10_000) as f64 / 100.0
}

fn body(batch: usize, t0: i64, j: usize) -> Bytes {
    let start = t0 + (j * batch) as i64;
    measures_json(start..start + batch as i64, gauge)
}

/// What one phase (one batch size) measured.
#[derive(Default)]
struct Phase {
    requests: Tally,
    elapsed: Duration,
    /// Highest body index any metric reached (the next phase starts after it).
    max_body: usize,
    /// Largest backlog seen during the phase, in pending batches.
    max_backlog: u64,
}

pub async fn run(
    target: &Target,
    server_pid: Option<u32>,
    s: &Settings,
    report: &mut Report,
) -> Result<(), BoxError> {
    let connections = s.connections.max(1);
    let metrics = s.metrics.max(connections);
    eprintln!("ingest: creating {metrics} metrics...");
    let ids = crud::create_metrics(target, connections, metrics, POLICY).await?;
    let uris: Vec<Uri> = ids
        .iter()
        .map(|id| format!("/v1/metric/{id}/measures").parse())
        .collect::<Result<_, _>>()?;
    let mut control = Conn::connect(target).await?;
    let mut t0 = EPOCH_2024;
    for &batch in &s.batch_sizes {
        let batch = batch.max(1);
        // Enough bodies for a server 2.5x faster than DESIGN's aims; past that
        // the workers serialize bodies themselves (slower, but still correct).
        let max_requests_per_s = (10_000_000 / batch).min(200_000) as f64;
        let per_metric = (s.seconds * max_requests_per_s / metrics as f64).ceil() as usize + 2;
        eprintln!(
            "ingest: batch {batch}: {per_metric} bodies per metric, {connections} connections, {:.0} s",
            s.seconds
        );
        let bodies = Arc::new(Bodies::new(batch, t0, per_metric));
        let cpu = CpuMeter::start(server_pid);
        let phase = phase(target, connections, &uris, bodies, s.seconds).await?;
        let cpu = cpu.note(phase.requests.ok, "request");
        t0 += ((phase.max_body + 1) * batch) as i64;
        let secs = phase.elapsed.as_secs_f64();
        let measures = phase.requests.ok * batch as u64;
        let drain = control.wait_backlog_drained(s.drain_timeout).await?;
        let drain = match drain {
            Some(d) => format!("backlog drained {:.1} s after", d.as_secs_f64()),
            None => format!(
                "backlog NOT drained {:.0} s after",
                s.drain_timeout.as_secs_f64()
            ),
        };
        let mut note = format!(
            "{measures} measures in {} requests over {secs:.1} s; {cpu}; \
             backlog up to {} batches ({} measures), {drain}",
            phase.requests.ok,
            phase.max_backlog,
            phase.max_backlog * batch as u64
        );
        if let Some(rss) = server_pid.and_then(Rss::of) {
            note.push_str(&format!(
                "; server peak RSS so far {:.0} MB",
                rss.peak as f64 / (1024.0 * 1024.0)
            ));
        }
        note.push_str(&phase.requests.errors_note());
        let aim = match batch {
            5000 => Some(">= 4M/s"),
            _ => None,
        };
        let mut f = Figure::new(
            format!("ingest_batch_{batch}"),
            format!("ingest, batch of {batch}"),
            measures as f64 / secs,
            "measures/s",
        )
        .note(note);
        if let Some(aim) = aim {
            f = f.aim(aim);
        }
        report.push(f);
        if batch == 1 {
            report.push(
                Figure::new(
                    "ingest_batch_1_requests",
                    "ingest, batch of 1 (requests)",
                    phase.requests.ok as f64 / secs,
                    "req/s",
                )
                .aim(">= 50K req/s"),
            );
        }
    }
    Ok(())
}

/// Hammer the server for `seconds`: every connection posts to its own metrics
/// in turn, each metric getting the next body (later timestamps) each time.
async fn phase(
    target: &Target,
    connections: usize,
    uris: &[Uri],
    bodies: Arc<Bodies>,
    seconds: f64,
) -> Result<Phase, BoxError> {
    let conns = super::http::connect_many(target, connections).await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (w, conn) in conns.into_iter().enumerate() {
        let mine: Vec<Uri> = uris.iter().skip(w).step_by(connections).cloned().collect();
        tasks.spawn(worker(conn, mine, bodies.clone(), deadline));
    }
    // Watch the backlog meanwhile (4 polls a second: negligible load).
    let mut monitor = Conn::connect(target).await?;
    let watch = tokio::spawn(async move {
        let mut max = 0;
        while Instant::now() < deadline {
            max = max.max(monitor.backlog_batches().await?);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok::<u64, BoxError>(max)
    });
    let mut total = Phase::default();
    while let Some(r) = tasks.join_next().await {
        let p = r??;
        total.requests.add(p.requests);
        total.max_body = total.max_body.max(p.max_body);
    }
    total.elapsed = start.elapsed();
    total.max_backlog = watch.await??;
    Ok(total)
}

async fn worker(
    mut conn: Conn,
    uris: Vec<Uri>,
    bodies: Arc<Bodies>,
    deadline: Instant,
) -> Result<Phase, BoxError> {
    let mut next_body = vec![0usize; uris.len()];
    let mut p = Phase::default();
    let mut m = 0;
    while Instant::now() < deadline {
        let j = next_body[m];
        next_body[m] += 1;
        p.max_body = p.max_body.max(j);
        let (status, resp) = conn
            .request(Method::POST, uris[m].clone(), Some(bodies.get(j)))
            .await?;
        p.requests.record(status, StatusCode::ACCEPTED, &resp);
        m = (m + 1) % uris.len();
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_move_forward_in_time() {
        let b = Bodies::new(2, EPOCH_2024, 1);
        let first = String::from_utf8(b.get(0).to_vec()).unwrap();
        let second = String::from_utf8(b.get(1).to_vec()).unwrap();
        assert!(first.starts_with(r#"[{"timestamp":"2024-01-01T00:00:00+00:00","value":"#));
        assert!(second.contains("2024-01-01T00:00:03+00:00"));
        let v: serde_json::Value = serde_json::from_str(&second).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
    }
}
