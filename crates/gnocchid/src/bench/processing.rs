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
//! log, redb aggregates) in a temporary directory, so nothing but metricd's work
//! is timed: each sack is one index lookup of its metrics, one batch read of raw
//! buffers and splits, the carbonara computation, one durable write transaction,
//! and the commit in the incoming log.
//!
//! Why it is representative: a collector pushing one hour of per-minute data per
//! metric, and metricd catching up, is exactly the case upstream publishes
//! (8.9K measures/s on this machine, DESIGN §4).

use super::http::CpuMeter;
use super::report::{Figure, Report};
use crate::config::{Config, Overrides};
use crate::server::{self, Backends, BoxError};
use carbonara::{ArchivePolicy, ArchivePolicyItem, NS_PER_SEC};
use gnocchi_engine::{Engine, EngineConfig};
use gnocchi_index::NewMetric;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Settings {
    pub metrics: usize,
    pub points: usize,
    /// Sacks processed at once (`[metricd] workers`).
    pub workers: usize,
}

const MINUTE: i64 = 60 * NS_PER_SEC;
const DAY: i64 = 24 * 60 * MINUTE;

/// Open the embedded backends in `dir`, as the all-in-one server does.
pub async fn open_backends(dir: &Path) -> Result<Backends, BoxError> {
    let cfg = Config::load(
        None,
        &Overrides {
            data_dir: Some(dir.to_path_buf()),
            ..Overrides::default()
        },
    )?;
    server::upgrade(&cfg, false).await
}

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

/// Create `n` metrics with `policy` in the index, a few at a time.
pub async fn create_metrics(b: &Backends, policy: &str, n: usize) -> Result<Vec<Uuid>, BoxError> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in ids.chunks(n.div_ceil(8).max(1)) {
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
async fn add_measures(b: &Backends, ids: &[Uuid], t0: i64, points: usize) -> Result<(), BoxError> {
    // One durable append per 250 metrics, as a busy API would group them.
    for chunk in ids.chunks(250) {
        let batch = chunk
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let measures = (0..points)
                    .map(|i| {
                        let t = t0 + i as i64 * MINUTE;
                        (t, super::ingest::gauge(t / NS_PER_SEC + k as i64))
                    })
                    .collect();
                (*id, measures)
            })
            .collect();
        b.incoming.add_measures(batch).await?;
    }
    Ok(())
}

pub async fn run(s: &Settings, report: &mut Report) -> Result<(), BoxError> {
    let dir = tempfile::Builder::new()
        .prefix("gnocchid-bench-processing-")
        .tempdir()?;
    let b = open_backends(dir.path()).await?;
    let policy = low_policy("bench-low");
    b.indexer.create_archive_policy(&policy).await?;
    let n = s.metrics.max(1);
    let points = s.points.max(1);
    eprintln!("processing: creating {n} metrics, queueing {points} measures each...");
    let ids = create_metrics(&b, &policy.name, n).await?;
    let t0 = super::ingest::EPOCH_2024 * NS_PER_SEC;
    add_measures(&b, &ids, t0, points).await?;
    let total = n * points;
    let workers = s.workers.max(1);
    let engine = Engine::new(
        b.indexer.clone(),
        b.incoming.clone(),
        b.aggregates.clone(),
        EngineConfig {
            workers,
            processing_delay: Duration::from_secs(1),
            ..EngineConfig::default()
        },
    );

    // 1. process_sack on every sack.
    let cpu = CpuMeter::start(None);
    let start = Instant::now();
    let done = process_all_sacks(&engine, workers).await?;
    let took = start.elapsed();
    let cpu = cpu.note_in_process();
    if done != total {
        return Err(format!("processing: {done} measures processed, {total} queued").into());
    }
    report.push(
        Figure::new(
            "processing_process_sack",
            format!("processing, {n} metrics x {points} points"),
            total as f64 / took.as_secs_f64(),
            "measures/s",
        )
        .aim(">= 3M/s")
        .note(format!(
            "process_sack, {workers} workers, {} sacks: {total} measures in {:.2} s; {cpu}",
            engine.incoming.sacks(),
            took.as_secs_f64()
        )),
    );

    // 2. The metricd loop on the next hour of the same metrics.
    add_measures(&b, &ids, t0 + points as i64 * MINUTE, points).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let cpu = CpuMeter::start(None);
    let start = Instant::now();
    let task = tokio::spawn(engine.clone().run(stop_rx));
    let timeout = Duration::from_secs(300);
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
        // Polling the backlog walks every sack: not too often, not to slow metricd.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = start.elapsed();
    let cpu = cpu.note_in_process();
    let _ = stop_tx.send(true);
    let _ = task.await;
    report.push(
        Figure::new(
            "processing_metricd_loop",
            format!("processing, next {points} points (metricd loop)"),
            total as f64 / took.as_secs_f64(),
            "measures/s",
        )
        .aim(">= 3M/s")
        .note(format!(
            "Engine::run, {workers} workers, merging into existing splits: {total} measures in {:.2} s; {cpu}",
            took.as_secs_f64()
        )),
    );
    Ok(())
}
