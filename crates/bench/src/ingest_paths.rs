//! The other ways metrics arrive, next to the single-metric path of
//! [`super::ingest`]: measures acknowledged per second through
//!
//! - `POST /v1/batch/metrics/measures`, 1,000 metrics × 5 measures per request;
//! - `POST /v1/influxdb/write`, 5,000 lines (one field each) per request,
//!   over 10 hosts (resources) × 50 series;
//! - `POST /v1/prometheus/write`, snappy + protobuf, 500 series × 10 samples
//!   per request, over 10 instances (resources) × 50 metric names;
//! - statsd: UDP datagrams of 20 counter messages, received and aggregated by
//!   the daemon (in-process, on its own embedded backends, after the HTTP
//!   server is done), reported as datagrams/s actually counted by the daemon,
//!   with the loss if the sender outran it.
//!
//! The HTTP phases use the same connections and duration as the single-metric
//! ingest. Bodies are serialized before the clock starts, in a ring of 16 per
//! path whose timestamps move forward; past 16 requests they repeat (the API
//! accepts them all the same; metricd then drops what is older than its back
//! window, which does not change what this measures: acknowledged measures).

use super::http::{Conn, CpuMeter, Tally, Target};
use super::ingest::{EPOCH_2024, Settings, gauge};
use super::report::{Figure, Report};
use crate::BoxError;
use bytes::Bytes;
use carbonara::NS_PER_SEC;
use hyper::{Method, StatusCode, Uri};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const RING: usize = 16;
const BATCH_METRICS: usize = 1000;
const BATCH_MEASURES: usize = 5;
const HOSTS: usize = 10;
const SERIES_PER_HOST: usize = 50;
const LINES: usize = 5000;
const SAMPLES: usize = 10;

/// One ingest path: where to post its ring of bodies, and its figure.
struct IngestPath {
    key: &'static str,
    label: &'static str,
    uri: &'static str,
    expected: StatusCode,
    bodies: Vec<Bytes>,
    measures_per_request: u64,
}

pub async fn run(
    target: &Target,
    server_pid: Option<u32>,
    s: &Settings,
    policy: &str,
    report: &mut Report,
) -> Result<(), BoxError> {
    let mut control = Conn::connect(target).await?;
    eprintln!("ingest paths: creating {BATCH_METRICS} metrics for the batch endpoint...");
    let ids =
        super::crud::create_metrics(target, s.connections.max(1), BATCH_METRICS, policy).await?;
    let batch = IngestPath {
        key: "ingest_batch_metrics",
        label: "ingest, batch endpoint, 1000 metrics x 5",
        uri: "/v1/batch/metrics/measures",
        expected: StatusCode::ACCEPTED,
        bodies: (0..RING).map(|j| batch_body(&ids, j)).collect(),
        measures_per_request: (BATCH_METRICS * BATCH_MEASURES) as u64,
    };
    measure(target, server_pid, s, &mut control, batch, report).await?;

    control
        .expect(
            Method::POST,
            "/v1/influxdb/query?q=CREATE%20DATABASE%20bench",
            None,
            StatusCode::NO_CONTENT,
        )
        .await?;
    let influxdb = IngestPath {
        key: "ingest_influxdb_lines",
        label: "ingest, influxdb line protocol, 5000 lines",
        uri: "/v1/influxdb/write?db=bench",
        expected: StatusCode::NO_CONTENT,
        bodies: (0..RING).map(lines_body).collect(),
        measures_per_request: LINES as u64,
    };
    measure(target, server_pid, s, &mut control, influxdb, report).await?;

    let prometheus = IngestPath {
        key: "ingest_prometheus_remote_write",
        label: "ingest, prometheus remote write, 500x10",
        uri: "/v1/prometheus/write",
        expected: StatusCode::ACCEPTED,
        bodies: (0..RING).map(remote_write_body).collect::<Result<_, _>>()?,
        measures_per_request: (HOSTS * SERIES_PER_HOST * SAMPLES) as u64,
    };
    measure(target, server_pid, s, &mut control, prometheus, report).await?;

    run_statsd(s.seconds, report).await
}

/// Post `path`'s first body alone (it creates the resources and metrics the
/// path creates on first sight), then hammer it with the others for the
/// ingest's duration, report its figure and wait for the backlog to drain.
async fn measure(
    target: &Target,
    server_pid: Option<u32>,
    s: &Settings,
    control: &mut Conn,
    path: IngestPath,
    report: &mut Report,
) -> Result<(), BoxError> {
    control
        .expect(
            Method::POST,
            path.uri,
            Some(path.bodies[0].clone()),
            path.expected,
        )
        .await?;
    let phase = hammer(
        target,
        server_pid,
        s.connections.max(1),
        s.seconds,
        &Uri::from_static(path.uri),
        &path.bodies,
        path.expected,
    )
    .await?;
    report.push(phase.figure(path.key, path.label, path.measures_per_request));
    drain(control, s).await
}

async fn drain(control: &mut Conn, s: &Settings) -> Result<(), BoxError> {
    if control
        .wait_backlog_drained(s.drain_timeout)
        .await?
        .is_none()
    {
        eprintln!(
            "ingest paths: backlog not drained after {:?}",
            s.drain_timeout
        );
    }
    Ok(())
}

/// `{"<id>": [5 measures], ...}` for every metric, at seconds `5j..5j+5`.
fn batch_body(ids: &[String], j: usize) -> Bytes {
    let t0 = EPOCH_2024 + (j * BATCH_MEASURES) as i64;
    let mut out = String::with_capacity(ids.len() * 330);
    out.push('{');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{id}\":[");
        for k in 0..BATCH_MEASURES as i64 {
            if k > 0 {
                out.push(',');
            }
            let t = t0 + k;
            let _ = write!(
                out,
                r#"{{"timestamp":"{}","value":{:.2}}}"#,
                carbonara::time::format_iso(t * NS_PER_SEC),
                gauge(t + i as i64)
            );
        }
        out.push(']');
    }
    out.push('}');
    Bytes::from(out)
}

/// 5,000 lines: 10 hosts × 50 series × 10 timestamps, nanosecond precision.
fn lines_body(j: usize) -> Bytes {
    let per_series = LINES / (HOSTS * SERIES_PER_HOST);
    let t0 = EPOCH_2024 + (j * per_series) as i64;
    let mut out = String::with_capacity(LINES * 64);
    for k in 0..per_series as i64 {
        let t = t0 + k;
        for h in 0..HOSTS {
            for c in 0..SERIES_PER_HOST {
                let _ = writeln!(
                    out,
                    "cpu,host=host{h},cpu=cpu{c} usage_user={:.2} {}",
                    gauge(t + c as i64),
                    t * NS_PER_SEC
                );
            }
        }
    }
    Bytes::from(out)
}

/// A snappy-compressed `WriteRequest`: 10 instances × 50 names, 10 samples each.
fn remote_write_body(j: usize) -> Result<Bytes, BoxError> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn len_field(out: &mut Vec<u8>, field: u64, body: &[u8]) {
        varint(out, (field << 3) | 2);
        varint(out, body.len() as u64);
        out.extend_from_slice(body);
    }
    let t0 = EPOCH_2024 + (j * SAMPLES) as i64;
    let mut req = Vec::with_capacity(HOSTS * SERIES_PER_HOST * 300);
    let (mut series, mut tmp) = (Vec::new(), Vec::new());
    for h in 0..HOSTS {
        for m in 0..SERIES_PER_HOST {
            series.clear();
            let name = format!("bench_metric_{m}");
            let instance = format!("host{h}:9100");
            for (k, v) in [
                ("__name__", name.as_str()),
                ("job", "bench"),
                ("instance", instance.as_str()),
            ] {
                tmp.clear();
                len_field(&mut tmp, 1, k.as_bytes());
                len_field(&mut tmp, 2, v.as_bytes());
                len_field(&mut series, 1, &tmp);
            }
            for k in 0..SAMPLES as i64 {
                let t = t0 + k;
                tmp.clear();
                varint(&mut tmp, (1 << 3) | 1);
                tmp.extend_from_slice(&gauge(t + m as i64).to_le_bytes());
                varint(&mut tmp, 2 << 3);
                varint(&mut tmp, (t * 1000) as u64);
                len_field(&mut series, 2, &tmp);
            }
            len_field(&mut req, 1, &series);
        }
    }
    Ok(Bytes::from(snap::raw::Encoder::new().compress_vec(&req)?))
}

struct Phase {
    requests: Tally,
    elapsed: Duration,
    cpu: String,
}

impl Phase {
    fn figure(&self, key: &str, label: &str, measures_per_request: u64) -> Figure {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let measures = self.requests.ok * measures_per_request;
        let note = format!(
            "{measures} measures in {} requests over {secs:.1} s ({:.0} req/s); {}{}",
            self.requests.ok,
            self.requests.ok as f64 / secs,
            self.cpu,
            self.requests.errors_note()
        );
        Figure::new(key, label, measures as f64 / secs, "measures/s").note(note)
    }
}

/// Post the ring of bodies to `uri` from every connection for `seconds`.
async fn hammer(
    target: &Target,
    server_pid: Option<u32>,
    connections: usize,
    seconds: f64,
    uri: &Uri,
    bodies: &[Bytes],
    expected: StatusCode,
) -> Result<Phase, BoxError> {
    let conns = super::http::connect_many(target, connections).await?;
    let bodies: Arc<Vec<Bytes>> = Arc::new(bodies.to_vec());
    let next = Arc::new(AtomicUsize::new(1));
    let cpu = CpuMeter::start(server_pid);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in conns {
        let (bodies, next, uri) = (bodies.clone(), next.clone(), uri.clone());
        tasks.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let j = next.fetch_add(1, Ordering::Relaxed) % bodies.len();
                let (status, resp) = conn
                    .request(Method::POST, uri.clone(), Some(bodies[j].clone()))
                    .await?;
                tally.record(status, expected, &resp);
            }
            Ok::<_, BoxError>(tally)
        });
    }
    let mut requests = Tally::default();
    while let Some(r) = tasks.join_next().await {
        requests.add(r??);
    }
    let elapsed = start.elapsed();
    Ok(Phase {
        cpu: cpu.note(requests.ok, "request"),
        requests,
        elapsed,
    })
}

/// statsd datagrams/s, in-process: the daemon on its own temporary embedded
/// backends, fed by one UDP sender for `seconds`.
async fn run_statsd(seconds: f64, report: &mut Report) -> Result<(), BoxError> {
    const MESSAGES: usize = 20;
    const NAMES: usize = 100;
    let dir = tempfile::Builder::new()
        .prefix("gnocchi-bench-statsd-")
        .tempdir()?;
    // Upstream's default policies: the daemon's metrics get `low`.
    let backends = super::deployment::open_embedded(dir.path(), true).await?;
    let resource = uuid::Uuid::from_u128(0x5a30_1761_f78b_46e2_8900_8b4f_6fe6_675a);
    let daemon = gnocchi_statsd::StatsdConfig {
        host: "127.0.0.1".into(),
        port: 0,
        resource_id: resource.to_string(),
        creator: Some("bench".into()),
        archive_policy_name: Some("low".into()),
        flush_delay: Duration::from_secs(1),
    };
    let statsd =
        gnocchi_statsd::Statsd::bind(daemon, gnocchid::statsd::daemon_backends(&backends)).await?;
    let addr = statsd.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(statsd.run(stop_rx));

    // Datagrams of 20 counters `bench.c<k>:1|c`, cycling over 100 names.
    let datagrams: Vec<Vec<u8>> = (0..NAMES / MESSAGES * MESSAGES)
        .step_by(MESSAGES)
        .map(|first| {
            let mut d = String::new();
            for k in first..first + MESSAGES {
                let _ = writeln!(d, "bench.c{}:1|c", k % NAMES);
            }
            d.into_bytes()
        })
        .collect();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(addr).await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut sent = 0u64;
    while Instant::now() < deadline {
        for d in &datagrams {
            if socket.send(d).await.is_ok() {
                sent += 1;
            }
        }
        // Let the receiver run on a busy single core.
        tokio::task::yield_now().await;
    }
    let elapsed = start.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop_tx.send(true);
    task.await??;

    // What the daemon counted: the sum of every counter's flushed values.
    let metrics = backends
        .indexer
        .list_metrics(&gnocchi_index::MetricQuery {
            resource_id: Some(resource),
            ..Default::default()
        })
        .await?;
    let ids: std::collections::HashSet<uuid::Uuid> = metrics.iter().map(|m| m.id).collect();
    let mut counted = 0.0;
    for sack in 0..backends.incoming.sacks() {
        let taken = backends.incoming.take(sack).await?;
        for (id, measures) in &taken.measures {
            if ids.contains(id) {
                counted += measures.iter().map(|m| m.value).sum::<f64>();
            }
        }
        backends.incoming.release(taken).await?;
    }
    let received = counted / MESSAGES as f64;
    let secs = elapsed.as_secs_f64().max(1e-9);
    report.push(
        Figure::new(
            "ingest_statsd_datagrams",
            "ingest, statsd datagrams (20 counters each)",
            received / secs,
            "datagrams/s",
        )
        .note(format!(
            "{received:.0} of {sent} datagrams counted over {secs:.1} s ({:.1}% lost: the sender outran the receiver); {:.0} messages/s",
            if sent > 0 { 100.0 * (1.0 - received / sent as f64) } else { 0.0 },
            received * MESSAGES as f64 / secs
        )),
    );
    Ok(())
}
