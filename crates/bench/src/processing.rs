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
//! [`Timed`], which adds up the wall time of each call; the note of each figure
//! gives every call's mean latency and its share of the workers' time
//! (`workers` × elapsed), and the index lookup of one sack's metrics, timed
//! apart. What is left is carbonara's CPU (on the blocking pool) and waiting
//! for a worker.
//!
//! Why it is representative: a collector pushing one hour of per-minute data per
//! metric, and metricd catching up, is exactly the case upstream publishes
//! (8.9K measures/s on this machine, DESIGN §4).

use super::deployment::Deployment;
use super::http::CpuMeter;
use super::report::{Figure, Report};
use crate::BoxError;
use carbonara::{ArchivePolicy, ArchivePolicyItem, Measure, Method, NS_PER_SEC, SplitKey};
use gnocchi_engine::{Engine, EngineConfig};
use gnocchi_index::{IndexError, NewMetric};
use gnocchi_storage::{
    Aggregates, Backlog, Incoming, MeasureBatch, SackMeasures, SplitRef, WriteBatch, sack_of,
};
use gnocchid::backends::Backends;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
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
    let timings = Arc::new(Timings::default());
    let b = Backends {
        indexer: b.indexer,
        incoming: Arc::new(Timed {
            inner: b.incoming,
            timings: timings.clone(),
        }),
        aggregates: Arc::new(Timed {
            inner: b.aggregates,
            timings: timings.clone(),
        }),
    };
    let policy = low_policy("bench-low");
    match b.indexer.create_archive_policy(&policy).await {
        // A shared index (`[indexer] url`) has it from the server's phase.
        Ok(_) | Err(IndexError::ArchivePolicyAlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let n = s.metrics.max(1);
    let points = s.points.max(1);
    eprintln!(
        "processing ({}): creating {n} metrics, queueing {points} measures each...",
        deployment.name
    );
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
            // The loop figure is throughput: no wait before each wake-up.
            notification_delay: Duration::ZERO,
            ..EngineConfig::default()
        },
    );
    let sacks = engine.incoming.sacks();
    let index_lookup = time_index_lookup(&b, &ids, sacks).await?;

    // 1. process_sack on every sack.
    timings.reset();
    let cpu = CpuMeter::start(None);
    let start = Instant::now();
    let done = process_all_sacks(&engine, workers).await?;
    let took = start.elapsed();
    let cpu = cpu.note_in_process();
    if done != total {
        return Err(format!("processing: {done} measures processed, {total} queued").into());
    }
    let spent = timings.note(workers, took, sacks as usize, index_lookup);
    report.push(
        Figure::new(
            "processing_process_sack",
            format!("processing, {n} metrics x {points} points"),
            total as f64 / took.as_secs_f64(),
            "measures/s",
        )
        .aim(">= 3M/s")
        .note(format!(
            "process_sack, {workers} workers, {sacks} sacks: {total} measures in {:.2} s; {cpu}; {spent}",
            took.as_secs_f64()
        )),
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
    timings.reset();
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
    // The loop batches 16 sacks per index lookup.
    let spent = timings.note(workers, took, (sacks as usize).div_ceil(16), None);
    report.push(
        Figure::new(
            "processing_metricd_loop",
            format!("processing, next {points} points (metricd loop)"),
            total as f64 / took.as_secs_f64(),
            "measures/s",
        )
        .aim(">= 3M/s")
        .note(format!(
            "Engine::run, {workers} workers, merging into existing splits: {total} measures in {:.2} s; {cpu}; {spent}",
            took.as_secs_f64()
        )),
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

/// Wall time spent in each storage call, added up over all workers.
#[derive(Default)]
pub struct Timings {
    calls: Mutex<Vec<(&'static str, u64, Duration)>>,
}

impl Timings {
    fn record(&self, op: &'static str, took: Duration) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        match calls.iter_mut().find(|(name, _, _)| *name == op) {
            Some((_, n, d)) => {
                *n += 1;
                *d += took;
            }
            None => calls.push((op, 1, took)),
        }
    }

    fn reset(&self) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// `storage (share of 2 workers x 1.20 s): take 0.41 ms x 128 = 2%, ...;
    /// index lookup ~0.80 ms x 128 sacks = 4%; the rest (carbonara, waits) 61%`.
    fn note(
        &self,
        workers: usize,
        wall: Duration,
        lookups: usize,
        index_lookup: Option<Duration>,
    ) -> String {
        let budget = (wall.as_secs_f64() * workers as f64).max(1e-9);
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut parts = Vec::new();
        let mut accounted = 0.0;
        for op in [
            "take",
            "get_raw",
            "list_split_keys",
            "get_splits",
            "write",
            "commit",
        ] {
            if let Some((_, n, d)) = calls.iter().find(|(name, _, _)| *name == op) {
                let secs = d.as_secs_f64();
                accounted += secs;
                parts.push(format!(
                    "{op} {:.2} ms x {n} = {:.0}%",
                    secs * 1e3 / *n as f64,
                    secs * 100.0 / budget
                ));
            }
        }
        let mut out = format!(
            "time per call and share of {workers} workers x {:.2} s: {}",
            wall.as_secs_f64(),
            parts.join(", ")
        );
        if let Some(lookup) = index_lookup {
            let secs = lookup.as_secs_f64() * lookups as f64;
            accounted += secs;
            out.push_str(&format!(
                ", index lookup ~{:.2} ms x {lookups} = {:.0}%",
                lookup.as_secs_f64() * 1e3,
                secs * 100.0 / budget
            ));
        }
        out.push_str(&format!(
            ", the rest (carbonara on the blocking pool, idle workers{}) {:.0}%",
            if index_lookup.is_some() {
                ""
            } else {
                ", index lookups"
            },
            (100.0 - accounted * 100.0 / budget).max(0.0)
        ));
        out
    }
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type StorageResult<T> = gnocchi_storage::Result<T>;

/// An incoming or aggregate store whose calls are timed into [`Timings`].
/// (The traits are `#[async_trait]`; these are the signatures it generates.)
pub struct Timed<T: ?Sized> {
    inner: Arc<T>,
    timings: Arc<Timings>,
}

impl<T: ?Sized + Send + Sync> Timed<T> {
    fn time<'a, R: Send + 'a>(
        &'a self,
        op: &'static str,
        fut: impl Future<Output = R> + Send + 'a,
    ) -> Fut<'a, R> {
        Box::pin(async move {
            let start = Instant::now();
            let r = fut.await;
            self.timings.record(op, start.elapsed());
            r
        })
    }
}

impl Incoming for Timed<dyn Incoming> {
    fn sacks(&self) -> u32 {
        self.inner.sacks()
    }
    fn add_measures<'s, 'a>(&'s self, batch: MeasureBatch) -> Fut<'a, StorageResult<()>>
    where
        's: 'a,
        Self: 'a,
    {
        self.inner.add_measures(batch)
    }
    fn take<'s, 'a>(&'s self, sack: u32) -> Fut<'a, StorageResult<SackMeasures>>
    where
        's: 'a,
        Self: 'a,
    {
        self.time("take", self.inner.take(sack))
    }
    fn commit<'s, 'a>(&'s self, taken: SackMeasures) -> Fut<'a, StorageResult<()>>
    where
        's: 'a,
        Self: 'a,
    {
        self.time("commit", self.inner.commit(taken))
    }
    fn release<'s, 'a>(&'s self, taken: SackMeasures) -> Fut<'a, StorageResult<()>>
    where
        's: 'a,
        Self: 'a,
    {
        self.inner.release(taken)
    }
    fn backlog<'s, 'a>(&'s self) -> Fut<'a, StorageResult<Backlog>>
    where
        's: 'a,
        Self: 'a,
    {
        self.inner.backlog()
    }
    fn wait_for_new<'s, 'a>(&'s self, timeout: Duration) -> Fut<'a, Vec<u32>>
    where
        's: 'a,
        Self: 'a,
    {
        self.inner.wait_for_new(timeout)
    }
}

impl Aggregates for Timed<dyn Aggregates> {
    fn get_raw<'s, 'm, 'a>(
        &'s self,
        metrics: &'m [Uuid],
    ) -> Fut<'a, StorageResult<Vec<Option<Vec<u8>>>>>
    where
        's: 'a,
        'm: 'a,
        Self: 'a,
    {
        self.time("get_raw", self.inner.get_raw(metrics))
    }
    fn list_split_keys<'s, 'm, 'a>(
        &'s self,
        series: &'m [(Uuid, Method, i64)],
    ) -> Fut<'a, StorageResult<Vec<Vec<SplitKey>>>>
    where
        's: 'a,
        'm: 'a,
        Self: 'a,
    {
        self.time("list_split_keys", self.inner.list_split_keys(series))
    }
    fn get_splits<'s, 'm, 'a>(
        &'s self,
        splits: &'m [SplitRef],
    ) -> Fut<'a, StorageResult<Vec<Option<Vec<u8>>>>>
    where
        's: 'a,
        'm: 'a,
        Self: 'a,
    {
        self.time("get_splits", self.inner.get_splits(splits))
    }
    fn write<'s, 'a>(&'s self, batch: WriteBatch) -> Fut<'a, StorageResult<()>>
    where
        's: 'a,
        Self: 'a,
    {
        self.time("write", self.inner.write(batch))
    }
    fn delete_metrics<'s, 'm, 'a>(&'s self, metrics: &'m [Uuid]) -> Fut<'a, StorageResult<()>>
    where
        's: 'a,
        'm: 'a,
        Self: 'a,
    {
        self.inner.delete_metrics(metrics)
    }
}
