//! Processing by several `gnocchid metricd` processes: does throughput add up?
//!
//! What it measures: the processing workload of [`super::processing`] (N
//! metrics × 60 points, upstream's `low` policy; N is 20,000 by default so
//! that the drain takes seconds, not the processes' start), drained not by an
//! in-process engine but by 1, 2, 4... real `gnocchid metricd` processes on
//! the configuration's shared backends, as a scaled-out deployment runs them.
//! The metrics are created once in the shared index; each process count gets
//! fresh incoming and aggregate stores (a wiped Redis database, a fresh
//! bucket), where they are new metrics again:
//!
//! the processes are started and given 3 s to form their group, then
//!
//! 1. the first hour is queued (from 8 tasks at once) while they run, timed
//!    from the first queued batch until the backlog is empty (new metrics);
//! 2. the same with the next hour (existing splits merged).
//!
//! Each process is the configuration's metricd (its `workers`, `concurrency`,
//! `processing_replicas`, the coordination it derives), with two changes for
//! throughput: `notification_delay = 0` (as the in-process loop figure), and
//! the bench's `--workers`, `--concurrency` and `--split-cache-size` when
//! given. The figure's note gives the speed-up over one process.
//!
//! Why real processes: the question is whether metricd scales out — sack
//! ownership through the coordinator, locks, every process with its own
//! connections and split cache — which an in-process engine does not show.
//! On one 2-core machine, processes only add up while metricd waits on the
//! network more than it computes: with backends behind an emulated round trip
//! (`scripts/bench-scaleout.sh --rtt 5`), not on loopback.
//!
//! Needs `--config-file` with a shared index (`[indexer] url`) and network
//! incoming and aggregate stores (the embedded ones lock their directory to
//! one process); skipped otherwise, saying why.

use super::deployment::Deployment;
use super::http::{self, ProcessCpu};
use super::processing::{self, MINUTE};
use super::report::{Figure, Report};
use crate::BoxError;
use carbonara::NS_PER_SEC;
use gnocchid::backends::Backends;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Settings {
    /// Process counts, one run each, e.g. `[1, 2, 4]`.
    pub processes: Vec<usize>,
    pub metrics: usize,
    pub points: usize,
    /// `[metricd]` options written into the processes' configuration.
    pub workers: Option<usize>,
    pub concurrency: Option<usize>,
    pub split_cache_size: Option<usize>,
}

/// Longest a drain may take before the run is declared stuck.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1800);
/// How often the backlog is polled (each poll walks every sack).
const POLL: Duration = Duration::from_millis(100);

pub async fn run(
    s: &Settings,
    deployment: &Deployment,
    server_bin: &Path,
    report: &mut Report,
) -> Result<(), BoxError> {
    if let Some(why) = deployment.not_shareable() {
        report.context("metricd processes", format!("skipped: {why}"));
        return Ok(());
    }
    // The metrics are created once: each process count gets fresh incoming
    // and aggregate stores (a wiped Redis database, a fresh bucket), so they
    // are new metrics again; only the index is shared.
    let dir = tempfile::Builder::new()
        .prefix("gnocchi-bench-metricd-")
        .tempdir()?;
    let b = deployment.open("metricd", dir.path()).await?;
    let policy = processing::ensure_low_policy(&b).await?;
    let metrics = s.metrics.max(1);
    eprintln!(
        "metricd processes ({}): creating {metrics} metrics...",
        deployment.name
    );
    let ids = processing::create_metrics(&b, &policy.name, metrics, 32).await?;
    drop(b);
    let metricd = metricd_options(s);
    report.context(
        "metricd processes",
        format!(
            "{:?} processes, each `gnocchid metricd` with [metricd] {}",
            s.processes,
            metricd
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let mut one = None;
    for &n in s.processes.iter().filter(|n| **n > 0) {
        let (new, existing) = run_one(s, n, &ids, &metricd, deployment, server_bin).await?;
        let base = *one.get_or_insert((new.rate, existing.rate));
        for (key, what, drain, base) in [
            ("new", "new metrics", &new, base.0),
            ("existing", "existing splits", &existing, base.1),
        ] {
            report.push(
                Figure::new(
                    format!("metricd_processes_{n}_{key}"),
                    format!("processing, {n} metricd process(es), {what}"),
                    drain.rate,
                    "measures/s",
                )
                .note(format!(
                    "{} measures queued (in {:.2} s) and processed in {:.2} s, {:.2}x one process; {}",
                    drain.measures,
                    drain.queued.as_secs_f64(),
                    drain.took.as_secs_f64(),
                    drain.rate / base.max(1e-9),
                    drain.cpu
                )),
            );
        }
    }
    Ok(())
}

/// The `[metricd]` options of the processes: no wait after a notification
/// (throughput, as the in-process loop figure), and the bench's overrides.
fn metricd_options(s: &Settings) -> Vec<(&'static str, String)> {
    let mut metricd = vec![("notification_delay", "0".to_string())];
    if let Some(w) = s.workers {
        metricd.push(("workers", w.to_string()));
    }
    if let Some(c) = s.concurrency {
        metricd.push(("concurrency", c.to_string()));
    }
    if let Some(c) = s.split_cache_size {
        metricd.push(("split_cache_size", c.to_string()));
    }
    metricd
}

struct Drain {
    measures: usize,
    took: Duration,
    /// Of `took`, the time spent queueing (processing overlaps it).
    queued: Duration,
    rate: f64,
    cpu: String,
}

/// One process count: fresh namespace, both phases, processes stopped.
async fn run_one(
    s: &Settings,
    n: usize,
    ids: &[uuid::Uuid],
    metricd: &[(&str, String)],
    deployment: &Deployment,
    server_bin: &Path,
) -> Result<(Drain, Drain), BoxError> {
    let dir = tempfile::Builder::new()
        .prefix("gnocchi-bench-metricd-")
        .tempdir()?;
    let phase = format!("metricd{n}");
    let conf = deployment
        .fresh_config_with(&phase, dir.path(), "metricd", metricd)
        .await?
        .ok_or("the metricd processes need a configuration file")?;
    let b = deployment.open_path(&conf, dir.path()).await?;
    let points = s.points.max(1);
    let total = ids.len() * points;
    let t0 = super::ingest::EPOCH_2024 * NS_PER_SEC;
    let mut procs = Processes::default();
    for k in 0..n {
        procs.spawn(server_bin, &conf, dir.path(), k)?;
    }
    // Every process has joined and read the others' membership (refreshed
    // every 2 s) before anything is queued: the figure is the group's
    // processing, not its forming.
    tokio::time::sleep(SETTLE).await;
    procs.check_alive()?;
    let mut drains = Vec::new();
    for (hour, what) in [(0, "new metrics"), (1, "existing splits")] {
        eprintln!(
            "metricd x{n} ({}): {what}: queueing {points} measures for each of {} metrics...",
            deployment.name,
            ids.len()
        );
        let start = Instant::now();
        let cpu = ProcessCpu::start(&procs.pids());
        queue(&b, ids, t0 + hour * points as i64 * MINUTE, points).await?;
        let queued = start.elapsed();
        wait_drained(&b, &mut procs, start).await?;
        drains.push(Drain::of(total, start.elapsed(), queued, cpu.note()));
    }
    drop(procs);
    let existing = drains.pop().ok_or("no drain")?;
    let new = drains.pop().ok_or("no drain")?;
    Ok((new, existing))
}

/// How long the processes are given to form their group.
const SETTLE: Duration = Duration::from_secs(3);

/// Queue `points` measures per metric from 8 tasks at once, so that queueing
/// through a slow network is not what the figure measures.
async fn queue(b: &Backends, ids: &[uuid::Uuid], t0: i64, points: usize) -> Result<(), BoxError> {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in ids.chunks(ids.len().div_ceil(8).max(1)) {
        let b = b.clone();
        let chunk = chunk.to_vec();
        tasks.spawn(async move { processing::add_measures(&b, &chunk, t0, points).await });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

impl Drain {
    fn of(measures: usize, took: Duration, queued: Duration, cpu: String) -> Drain {
        Drain {
            measures,
            took,
            queued,
            rate: measures as f64 / took.as_secs_f64().max(1e-9),
            cpu,
        }
    }
}

/// Poll the backlog until it is empty; a process that exits is an error
/// naming its log.
async fn wait_drained(b: &Backends, procs: &mut Processes, start: Instant) -> Result<(), BoxError> {
    loop {
        if b.incoming.backlog().await?.measures == 0 {
            return Ok(());
        }
        procs.check_alive()?;
        if start.elapsed() > DRAIN_TIMEOUT {
            return Err(format!(
                "metricd processes did not drain the backlog in {DRAIN_TIMEOUT:?}; \
                 first process's log:\n{}",
                procs.log(0)
            )
            .into());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The `gnocchid metricd` children, killed on drop.
#[derive(Default)]
struct Processes {
    children: Vec<(Child, PathBuf)>,
}

impl Processes {
    fn spawn(&mut self, bin: &Path, conf: &Path, dir: &Path, k: usize) -> Result<(), BoxError> {
        let data_dir = dir.join(format!("metricd-{k}"));
        let log = dir.join(format!("metricd-{k}.log"));
        let mut cmd = Command::new(bin);
        http::clear_gnocchid_environment(&mut cmd);
        let child = cmd
            .arg("--config-file")
            .arg(conf)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("metricd")
            .env("GNOCCHI_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .map_err(|e| format!("cannot start {} metricd: {e}", bin.display()))?;
        self.children.push((child, log));
        Ok(())
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(c, _)| c.id()).collect()
    }

    fn log(&self, k: usize) -> String {
        self.children
            .get(k)
            .and_then(|(_, log)| std::fs::read_to_string(log).ok())
            .unwrap_or_default()
    }

    fn check_alive(&mut self) -> Result<(), BoxError> {
        for k in 0..self.children.len() {
            if let Some(status) = self.children[k].0.try_wait()? {
                return Err(format!(
                    "metricd process {k} exited ({status}); its log:\n{}",
                    self.log(k)
                )
                .into());
            }
        }
        Ok(())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
