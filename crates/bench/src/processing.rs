//! Processing by metricd: how fast a backlog of measures becomes aggregates.
//!
//! What it measures: upstream's own metricd benchmark scaled to this machine —
//! N metrics (default 5,000) × 60 points each with upstream's `low` archive
//! policy (5-minute granularity over 30 days, the 6 default methods: mean, min,
//! max, sum, std, count). Everything is ingested first without processing, then
//! we time metricd draining the backlog, in measures per second:
//!
//! 1. `process_sack` on every sack, `[metricd] workers` sacks at a time (fresh
//!    metrics: the first hour of data; upstream's case);
//! 2. the metricd loop itself (`Engine::run`, as the server runs it) on the next
//!    60 points of the same metrics (steady state: the existing splits are read
//!    back and merged).
//!
//! Both run in-process on the embedded backends (SQLite index, local incoming
//! log, redb aggregates) in a temporary directory, or on the backends of
//! `--config-file` (see [`super::deployment`]: a wiped Redis database, a fresh
//! S3 bucket), so nothing but metricd's work is timed: each sack is one index
//! lookup of its metrics, one batch read of raw buffers and splits, the
//! carbonara computation, one durable write, and the commit in the incoming
//! store.
//!
//! Where the time goes: the incoming and aggregate stores are wrapped in
//! [`Counted`], which counts each call, its objects and bytes and the wall
//! time waited on it; each phase prints its backend requests, bytes and wait
//! (a figure of its own, with every call's breakdown in the note, see
//! [`super::backend_stats`]), and the index lookup of one sack's metrics,
//! timed apart. What is left is carbonara's CPU (on the blocking pool) and
//! waiting for a worker.
//!
//! Why it is representative: a collector pushing one hour of per-minute data per
//! metric, and metricd catching up, is exactly the case upstream publishes
//! (8.9K measures/s on this machine, DESIGN §4).

use super::backend_stats::{self, StoreDelta};
use super::deployment::Deployment;
use super::http::CpuMeter;
use super::report::{Figure, Report};
use crate::BoxError;
use carbonara::{ArchivePolicy, ArchivePolicyItem, Measure, NS_PER_SEC};
use gnocchi_engine::{Engine, EngineConfig};
use gnocchi_index::{IndexError, NewMetric};
use gnocchi_storage::sack_of;
use gnocchi_storage::stats::{Counted, StatsSnapshot, StoreStats};
use gnocchid::backends::Backends;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Settings {
    pub metrics: usize,
    pub points: usize,
    /// Sacks processed at once (`[metricd] workers`).
    pub workers: usize,
    /// Parts of a batch processed at once (`[metricd] concurrency`); `None`:
    /// the configuration's (its default depends on the aggregate store).
    pub concurrency: Option<usize>,
    /// `[metricd] split_cache_size` in bytes; `None`: the configuration's.
    pub split_cache_size: Option<usize>,
}

pub const MINUTE: i64 = 60 * NS_PER_SEC;
const DAY: i64 = 24 * 60 * MINUTE;

/// Upstream's `low` policy under another name: 5 min × 8,640 points (30 days).
pub fn low_policy(name: &str) -> ArchivePolicy {
    let g = 5 * MINUTE;
    ArchivePolicy {
        name: name.into(),
        back_window: 0,
        definition: vec![ArchivePolicyItem {
            granularity: g,
            points: Some((30 * DAY / g) as u64),
            timespan: Some(30 * DAY),
        }],
        aggregation_methods: {
            let mut m = carbonara::policy::default_aggregation_methods();
            m.sort_unstable();
            m
        },
    }
}

/// The bench's `low` policy in the index, created unless there already (a
/// shared index, `[indexer] url`, has it from an earlier phase).
pub async fn ensure_low_policy(b: &Backends) -> Result<ArchivePolicy, BoxError> {
    let policy = low_policy("bench-low");
    match b.indexer.create_archive_policy(&policy).await {
        Ok(_) | Err(IndexError::ArchivePolicyAlreadyExists(_)) => Ok(policy),
        Err(e) => Err(e.into()),
    }
}

/// Create `n` metrics with `policy` in the index, `tasks` at a time.
pub async fn create_metrics(
    b: &Backends,
    policy: &str,
    n: usize,
    tasks_at_once: usize,
) -> Result<Vec<Uuid>, BoxError> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in ids.chunks(n.div_ceil(tasks_at_once.max(1)).max(1)) {
        let indexer = b.indexer.clone();
        let chunk = chunk.to_vec();
        let policy = policy.to_string();
        tasks.spawn(async move {
            for id in chunk {
                indexer
                    .create_metric(&NewMetric {
                        id,
                        name: None,
                        unit: None,
                        resource_id: None,
                        creator: Some("bench".into()),
                        archive_policy_name: policy.clone(),
                    })
                    .await?;
            }
            Ok::<(), BoxError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(ids)
}

/// Process every sack once, `workers` at a time; returns the measures processed.
pub async fn process_all_sacks(engine: &Arc<Engine>, workers: usize) -> Result<usize, BoxError> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut measures = 0;
    for sack in 0..engine.incoming.sacks() {
        while tasks.len() >= workers.max(1) {
            if let Some(r) = tasks.join_next().await {
                measures += r??;
            }
        }
        let engine = engine.clone();
        tasks.spawn(async move {
            engine
                .process_sack(sack)
                .await
                .map(|r| r.measures)
                .map_err(BoxError::from)
        });
    }
    while let Some(r) = tasks.join_next().await {
        measures += r??;
    }
    Ok(measures)
}

/// Queue `points` per-minute measures for every metric, starting at `t0` (ns).
pub async fn add_measures(
    b: &Backends,
    ids: &[Uuid],
    t0: i64,
    points: usize,
) -> Result<(), BoxError> {
    // One durable append per 250 metrics, as a busy API would group them.
    for chunk in ids.chunks(250) {
        let batch = chunk
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let measures = (0..points)
                    .map(|i| {
                        let t = t0 + i as i64 * MINUTE;
                        Measure::new(t, super::ingest::gauge(t / NS_PER_SEC + k as i64))
                    })
                    .collect();
                (*id, measures)
            })
            .collect();
        b.incoming.add_measures(batch).await?;
    }
    Ok(())
}

pub async fn run(
    s: &Settings,
    deployment: &Deployment,
    report: &mut Report,
) -> Result<(), BoxError> {
    let dir = tempfile::Builder::new()
        .prefix("gnocchi-bench-processing-")
        .tempdir()?;
    let b = deployment.open("processing", dir.path()).await?;
    let incoming_stats = StoreStats::new();
    let aggregate_stats = StoreStats::new();
    let b = Backends {
        indexer: b.indexer,
        incoming: Arc::new(Counted::new(b.incoming, incoming_stats.clone())),
        aggregates: Arc::new(Counted::new(b.aggregates, aggregate_stats.clone())),
    };
    let (incoming_requests, aggregate_requests) = deployment.request_kinds();
    let snapshot = || (incoming_stats.snapshot(), aggregate_stats.snapshot());
    let delta = |before: &(StatsSnapshot, StatsSnapshot)| {
        let (i, a) = snapshot();
        [
            StoreDelta {
                name: "incoming",
                stats: i.since(&before.0),
                requests: incoming_requests,
            },
            StoreDelta {
                name: "aggregates",
                stats: a.since(&before.1),
                requests: aggregate_requests,
            },
        ]
    };
    let policy = ensure_low_policy(&b).await?;
    let n = s.metrics.max(1);
    let points = s.points.max(1);
    eprintln!(
        "processing ({}): creating {n} metrics, queueing {points} measures each...",
        deployment.name
    );
    let ids = create_metrics(&b, &policy.name, n, 8).await?;
    let t0 = super::ingest::EPOCH_2024 * NS_PER_SEC;
    add_measures(&b, &ids, t0, points).await?;
    let total = n * points;
    let workers = s.workers.max(1);
    let configured = deployment.engine_config();
    let concurrency = s.concurrency.unwrap_or(configured.concurrency).max(1);
    let split_cache_size = s.split_cache_size.unwrap_or(configured.split_cache_size);
    let engine = Engine::new(
        b.indexer.clone(),
        b.incoming.clone(),
        b.aggregates.clone(),
        EngineConfig {
            workers,
            concurrency,
            split_cache_size,
            processing_delay: Duration::from_secs(1),
            // The loop figure is throughput: no wait before each wake-up.
            notification_delay: Duration::ZERO,
            ..EngineConfig::default()
        },
    );
    let sacks = engine.incoming.sacks();
    let index_lookup = time_index_lookup(&b, &ids, sacks).await?;

    // 1. process_sack on every sack.
    let before = snapshot();
    let cpu = CpuMeter::start(None);
    let start = Instant::now();
    let done = process_all_sacks(&engine, workers).await?;
    let took = start.elapsed();
    let cpu = cpu.note_in_process();
    if done != total {
        return Err(format!("processing: {done} measures processed, {total} queued").into());
    }
    let stores = delta(&before);
    let lookups = index_note(index_lookup, sacks as usize, workers, took);
    report.push(
        Figure::new(
            "processing_process_sack",
            format!("processing, {n} metrics x {points} points"),
            total as f64 / took.as_secs_f64(),
            "measures/s",
        )
        .aim(">= 3M/s")
        .note(format!(
            "process_sack, {workers} workers, concurrency {concurrency}, split cache {} MB, {sacks} sacks: {total} measures in {:.2} s; {cpu}{lookups}",
            split_cache_size >> 20,
            took.as_secs_f64()
        )),
    );
    push_backend_figure(
        report,
        "processing_process_sack",
        "new metrics",
        &stores,
        workers,
        took,
    );

    // 2. The metricd loop on the next hour of the same metrics.
    add_measures(&b, &ids, t0 + points as i64 * MINUTE, points).await?;
    // Polling the backlog walks every sack: not too often, not to slow metricd
    // (on Redis it is one script over every sack index, blocking Redis meanwhile).
    // Network backends are slower (s3s-fs lists a prefix by walking the
    // bucket): give them more time.
    let (poll, timeout) = if deployment.is_embedded() {
        (Duration::from_millis(10), Duration::from_secs(300))
    } else {
        (Duration::from_millis(100), Duration::from_secs(1800))
    };
    let before = snapshot();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let cpu = CpuMeter::start(None);
    let start = Instant::now();
    let task = tokio::spawn(engine.clone().run(stop_rx));
    loop {
        if engine.incoming.backlog().await?.measures == 0 {
            break;
        }
        if start.elapsed() > timeout {
            let _ = stop_tx.send(true);
            return Err(
                format!("processing: metricd did not drain the backlog in {timeout:?}").into(),
            );
        }
        tokio::time::sleep(poll).await;
    }
    let took = start.elapsed();
    let cpu = cpu.note_in_process();
    let _ = stop_tx.send(true);
    let _ = task.await;
    // The backlog polls are the bench's, not metricd's.
    let mut stores = delta(&before);
    stores[0].stats.ops[gnocchi_storage::stats::Op::Backlog as usize] = Default::default();
    report.push(
        Figure::new(
            "processing_metricd_loop",
            format!("processing, next {points} points (metricd loop)"),
            total as f64 / took.as_secs_f64(),
            "measures/s",
        )
        .aim(">= 3M/s")
        .note(format!(
            "Engine::run, {workers} workers, concurrency {concurrency}, split cache {} MB, merging into existing splits: {total} measures in {:.2} s; {cpu}",
            split_cache_size >> 20,
            took.as_secs_f64()
        )),
    );
    push_backend_figure(
        report,
        "processing_metricd_loop",
        "existing splits",
        &stores,
        workers,
        took,
    );
    Ok(())
}

/// The index lookup metricd makes per sack (`get_metrics` of the sack's
/// metrics), timed apart on every sack one after the other: mean latency.
async fn time_index_lookup(
    b: &Backends,
    ids: &[Uuid],
    sacks: u32,
) -> Result<Option<Duration>, BoxError> {
    let mut per_sack: Vec<Vec<Uuid>> = vec![Vec::new(); sacks as usize];
    for id in ids {
        per_sack[sack_of(*id, sacks) as usize].push(*id);
    }
    let per_sack: Vec<Vec<Uuid>> = per_sack.into_iter().filter(|v| !v.is_empty()).collect();
    if per_sack.is_empty() {
        return Ok(None);
    }
    let start = Instant::now();
    for chunk in &per_sack {
        b.indexer.get_metrics(chunk).await?;
    }
    Ok(Some(start.elapsed() / per_sack.len() as u32))
}

/// `; index lookup ~0.80 ms x 128 sacks = 4% of 2 workers x 1.20 s`.
fn index_note(lookup: Option<Duration>, lookups: usize, workers: usize, wall: Duration) -> String {
    let Some(lookup) = lookup else {
        return String::new();
    };
    let budget = (wall.as_secs_f64() * workers as f64).max(1e-9);
    format!(
        "; index lookup ~{:.2} ms x {lookups} sacks = {:.0}% of {workers} workers x {:.2} s",
        lookup.as_secs_f64() * 1e3,
        lookup.as_secs_f64() * lookups as f64 * 100.0 / budget,
        wall.as_secs_f64()
    )
}

/// The phase's backend requests as a figure of its own, the breakdown per
/// call in its note.
fn push_backend_figure(
    report: &mut Report,
    key: &str,
    what: &str,
    stores: &[StoreDelta<'_>],
    workers: usize,
    wall: Duration,
) {
    let t = backend_stats::totals(stores);
    report.push(
        Figure::new(
            format!("{key}_backend_requests"),
            format!("  backend requests ({what})"),
            t.requests as f64,
            "requests",
        )
        .note(backend_stats::note(stores, workers, wall)),
    );
}
