//! `gnocchi-bench`: measure a `gnocchid` server the way users load it, and print figures.
//!
//! It never asserts on timing: it prints a table (and writes JSON with `--json`)
//! of the figures DESIGN §4 budgets, each next to its aim:
//!
//! | workload | file | how |
//! | --- | --- | --- |
//! | ingest, batches of 1 / 100 / 5000 | [`ingest`] | HTTP, 64 connections |
//! | processing, 5000 metrics × 60 points | [`processing`] | in-process metricd |
//! | the same by 1, 2, 4 metricd processes | [`metricd_processes`] | `gnocchid metricd` children, `--config-file` only |
//! | read, 43,200 points of one metric | [`read`] | HTTP |
//! | metric create / show / delete | [`crud`] | HTTP, 64 connections |
//! | bytes per stored point | [`size`] | in-process, realistic mix |
//! | resource create / PATCH / search | [`resources`] | HTTP, 100,000 resources |
//! | cross-metric mean, groupby | [`aggregates`] | HTTP, 1,000 metrics; 10,000 resources |
//! | idle and peak RSS of the server | [`http::Server`] | `/proc/PID/status` |
//!
//! The HTTP workloads run against the real `gnocchid` binary, started as a
//! child process on a free port with a temporary data directory (`--server-bin`,
//! by default the `gnocchid` next to this executable: `cargo build --release
//! -p gnocchid -p gnocchi-bench` builds both into `target/release/`), or against
//! an already running server (`--target http://host:port`, RSS skipped). The
//! in-process ones open the backends through gnocchid's own library
//! (`gnocchid::backends`), in their own temporary directory, after the server is
//! gone, so they do not compete with it for the CPU.
//!
//! Defaults take 1–3 minutes on a 2-core machine; `--quick` is a ~20 s smoke
//! run (what the tests use); the flags below scale each workload.
//!
//! `--config-file FILE` measures the backends of a gnocchi.conf instead, e.g.
//! PostgreSQL + Redis + S3: the child server reads that file (with the bench's
//! port and data directory) and the processing workload opens its backends
//! from it. The bench
//! **wipes the configured Redis database** (refusing database 0) and uses a
//! fresh S3 bucket per phase ([`deployment`]). The report names the
//! configuration (`embedded`, `postgresql+redis+s3`...), so that runs on both
//! can be put side by side (`scripts/bench-scaleout.sh` does). The statsd and
//! bytes-per-point workloads stay on the embedded backends.

// A binary has no public API: `pub` here only means "shared between modules".
#![allow(unreachable_pub)]

mod aggregates;
mod backend_stats;
mod crud;
mod deployment;
mod http;
mod ingest;
mod ingest_paths;
mod metricd_processes;
mod parallel;
mod processing;
mod read;
mod report;
mod resources;
mod size;

use clap::Parser;
use deployment::Deployment;
use http::{Conn, Server, Target};
use report::{Figure, Report};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Ingest,
    Processing,
    /// Processing by 1, 2, 4... `gnocchid metricd` processes (`--config-file` only).
    Metricd,
    Read,
    Crud,
    Size,
    Resources,
    Aggregates,
}

pub type BoxError = gnocchid::backends::BoxError;

#[derive(Parser, Debug)]
#[command(
    name = "gnocchi-bench",
    version,
    about = "Measure ingestion, processing and read speed of gnocchid against a fresh server"
)]
pub struct BenchArgs {
    /// Bench the backends of this gnocchi.conf (e.g. PostgreSQL + Redis + S3)
    /// instead of the embedded ones. The bench WIPES the Redis database it names
    /// (database 0 is refused) and creates a fresh S3 bucket per phase. The
    /// environment (GNOCCHI_CONFIG_FILE, GNOCCHI_INDEXER_URL, OS_*__*) is ignored.
    #[arg(long, value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// The `gnocchid` binary to start [the one next to gnocchi-bench, else on PATH].
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// A ~20 s smoke run with small workloads (used by the tests). Explicit
    /// flags below still win.
    #[arg(long)]
    quick: bool,
    /// Bench this running server (`http://host:port`) instead of starting one;
    /// the RSS figures are then skipped.
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// Basic-auth user for the HTTP workloads.
    #[arg(long, default_value = "admin")]
    user: String,
    /// Also write the figures to this file, as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run only these workloads (comma-separated); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Workload>,
    /// Concurrent keep-alive connections of the ingest and CRUD workloads [64; quick 16].
    #[arg(long)]
    connections: Option<usize>,
    /// Seconds each ingest batch size runs [15; quick 1].
    #[arg(long)]
    ingest_seconds: Option<f64>,
    /// Metrics the ingest spreads over [1000; quick 64].
    #[arg(long)]
    ingest_metrics: Option<usize>,
    /// Measures per ingest request, comma-separated [1,100,5000].
    #[arg(long, value_delimiter = ',')]
    batch_sizes: Vec<usize>,
    /// Metrics of the processing workload [5000; quick 500].
    #[arg(long)]
    processing_metrics: Option<usize>,
    /// Points per metric of the processing workload [60].
    #[arg(long)]
    processing_points: Option<usize>,
    /// Sacks processed concurrently in-process [number of CPUs].
    #[arg(long)]
    workers: Option<usize>,
    /// Parts of a batch processed at once by the in-process metricd
    /// (`[metricd] concurrency`) [the configuration's: 1 embedded, 8 on network stores].
    #[arg(long)]
    concurrency: Option<usize>,
    /// Bytes of splits the in-process metricd keeps from its last writes
    /// (`[metricd] split_cache_size`; 0: off) [the configuration's: 64 MiB].
    #[arg(long)]
    split_cache_size: Option<usize>,
    /// `gnocchid metricd` process counts of the metricd workload, comma-separated
    /// [1,2,4]; each drains the processing workload's backlog on the shared
    /// backends of --config-file.
    #[arg(long, value_delimiter = ',')]
    metricd_processes: Vec<usize>,
    /// Metrics of the metricd workload [20000; quick 500]: enough round
    /// trips that the drain, not the processes' start, is measured.
    #[arg(long)]
    metricd_metrics: Option<usize>,
    /// Points of the read metric [43200].
    #[arg(long)]
    read_points: Option<usize>,
    /// Reads per connection [50; quick 2].
    #[arg(long)]
    read_repetitions: Option<usize>,
    /// Connections of the concurrent read pass [4].
    #[arg(long)]
    read_connections: Option<usize>,
    /// Metrics created, shown and deleted [10000; quick 300].
    #[arg(long)]
    crud_metrics: Option<usize>,
    /// Metrics of the bytes-per-point mix, one day of 10 s samples each [100; quick 10].
    #[arg(long)]
    size_metrics: Option<usize>,
    /// Resources of the resource workload [100000; quick 500].
    #[arg(long)]
    resources: Option<usize>,
    /// Metrics of the cross-metric mean [1000; quick 20].
    #[arg(long)]
    aggregate_metrics: Option<usize>,
    /// Resources of the groupby [10000; quick 100].
    #[arg(long)]
    groupby_resources: Option<usize>,
}

/// Every knob, resolved from the flags and `--quick`.
#[derive(Debug)]
struct Settings {
    ingest: ingest::Settings,
    processing: processing::Settings,
    metricd: metricd_processes::Settings,
    read: read::Settings,
    crud: crud::Settings,
    size: size::Settings,
    resources: resources::Settings,
    aggregates: aggregates::Settings,
}

impl Settings {
    fn from_args(a: &BenchArgs) -> Settings {
        let q = a.quick;
        let pick =
            |v: Option<usize>, full: usize, quick: usize| v.unwrap_or(if q { quick } else { full });
        let workers = a.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        let connections = pick(a.connections, 64, 16).max(1);
        Settings {
            ingest: ingest::Settings {
                connections,
                metrics: pick(a.ingest_metrics, 1000, 64),
                seconds: a.ingest_seconds.unwrap_or(if q { 1.0 } else { 15.0 }),
                batch_sizes: if a.batch_sizes.is_empty() {
                    vec![1, 100, 5000]
                } else {
                    a.batch_sizes.clone()
                },
                drain_timeout: Duration::from_secs(if q { 30 } else { 120 }),
            },
            processing: processing::Settings {
                metrics: pick(a.processing_metrics, 5000, 500),
                points: pick(a.processing_points, 60, 60),
                workers,
                concurrency: a.concurrency,
                split_cache_size: a.split_cache_size,
            },
            metricd: metricd_processes::Settings {
                processes: if a.metricd_processes.is_empty() {
                    vec![1, 2, 4]
                } else {
                    a.metricd_processes.clone()
                },
                metrics: pick(a.metricd_metrics, 20_000, 500),
                points: pick(a.processing_points, 60, 60),
                workers: a.workers,
                concurrency: a.concurrency,
                split_cache_size: a.split_cache_size,
            },
            read: read::Settings {
                points: pick(a.read_points, 43_200, 43_200),
                repetitions: pick(a.read_repetitions, 50, 2),
                connections: pick(a.read_connections, 4, 4),
            },
            crud: crud::Settings {
                connections,
                metrics: pick(a.crud_metrics, 10_000, 300),
            },
            size: size::Settings {
                metrics: pick(a.size_metrics, 100, 10),
                workers,
            },
            resources: resources::Settings {
                connections,
                resources: pick(a.resources, 100_000, 500),
                patches: pick(a.resources, 100_000, 500).min(10_000),
                searches: if q { 20 } else { 200 },
            },
            aggregates: aggregates::Settings {
                connections,
                metrics: pick(a.aggregate_metrics, 1000, 20),
                resources: pick(a.groupby_resources, 10_000, 100),
                repeats: if q { 1 } else { 5 },
            },
        }
    }
}

fn main() -> ExitCode {
    gnocchid::init_logging();
    let args = BenchArgs::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BoxError::from)
        .and_then(|runtime| runtime.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gnocchi-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: BenchArgs) -> Result<(), BoxError> {
    let s = Settings::from_args(&args);
    let wants = |w: Workload| args.only.is_empty() || args.only.contains(&w);
    let deployment = match &args.config_file {
        Some(path) => Deployment::from_file(path)?,
        None => Deployment::embedded(),
    };
    // Holds the per-phase copies of the config file.
    let conf_dir = tempfile::Builder::new()
        .prefix("gnocchi-bench-conf-")
        .tempdir()?;
    let mut report = Report::default();
    report.context("configuration", deployment.describe());
    report.context("version", env!("CARGO_PKG_VERSION"));
    report.context(
        "cpus",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    report.context("mode", if args.quick { "quick" } else { "full" });
    let load_before = http::load_average();
    #[cfg(debug_assertions)]
    report.context("build", "DEBUG (figures are meaningless; use --release)");

    let http = [
        Workload::Ingest,
        Workload::Read,
        Workload::Crud,
        Workload::Resources,
        Workload::Aggregates,
    ]
    .into_iter()
    .any(wants);
    if http {
        let server = match &args.target {
            Some(url) => {
                report.context("server", format!("{url} (already running)"));
                None
            }
            None => {
                eprintln!("starting the server ({})...", deployment.name);
                let conf = deployment.fresh_config("server", conf_dir.path()).await?;
                let bin = http::server_binary(args.server_bin.as_deref())?;
                let server = Server::spawn(&bin, &args.user, conf.as_deref()).await?;
                report.context(
                    "server",
                    format!(
                        "spawned {} (all-in-one, {}) on {}",
                        bin.display(),
                        deployment.name,
                        server.target.addr
                    ),
                );
                Some(server)
            }
        };
        let target = match (&server, &args.target) {
            (Some(srv), _) => srv.target.clone(),
            (None, Some(url)) => Target::new(url, &args.user)?,
            (None, None) => unreachable!("a server is spawned when no --target is given"),
        };
        if let Some(srv) = &server {
            // Let the freshly started server settle (first metricd scan, janitor pass).
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Some(rss) = srv.rss() {
                report.push(
                    Figure::new(
                        "idle_rss",
                        "server RSS, idle after start",
                        mb(rss.current),
                        "MB",
                    )
                    .aim("< 50 MB"),
                );
            }
        }
        let pid = server.as_ref().map(Server::pid);
        let mut peaks = Vec::new();
        let result = http_workloads(&target, pid, &s, &wants, &mut report, &mut peaks).await;
        if let Some(srv) = &server {
            if let Err(e) = &result {
                eprintln!("server log:\n{}", srv.log());
                return Err(format!("{e}").into());
            }
            if let Some(rss) = srv.rss() {
                report.push(
                    Figure::new("peak_rss", "server RSS, peak (VmHWM)", mb(rss.peak), "MB").note(
                        format!(
                            "{}; {:.1} MB resident at the end",
                            peaks.join(", "),
                            mb(rss.current)
                        ),
                    ),
                );
            }
        }
        result?;
        // Dropping the server kills it and removes its data directory.
        drop(server);
    }

    if wants(Workload::Processing) {
        processing::run(&s.processing, &deployment, &mut report).await?;
    }
    if wants(Workload::Metricd) {
        let bin = http::server_binary(args.server_bin.as_deref())?;
        metricd_processes::run(&s.metricd, &deployment, &bin, &mut report).await?;
    }
    if !deployment.is_embedded() {
        // These two always run in-process on their own embedded backends.
        if wants(Workload::Ingest) {
            report.context(
                "statsd datagrams",
                "measured on the embedded backends, whatever the configuration",
            );
        }
        if wants(Workload::Size) {
            report.context(
                "bytes per point",
                "measured on the embedded backends (redb), whatever the configuration",
            );
        }
    }
    if wants(Workload::Size) {
        size::run(&s.size, &mut report).await?;
    }

    if let (Some(before), Some(after)) = (load_before, http::load_average()) {
        report.context(
            "load average (1 min) before / after",
            format!(
                "{before:.2} / {after:.2} (other load on the machine skews wall-clock figures)"
            ),
        );
    }
    report.print();
    if let Some(path) = &args.json {
        report.write_json(path)?;
        eprintln!("figures written to {}", path.display());
    }
    Ok(())
}

/// Ingest, read and CRUD against `target`; `peaks` gets the server's peak RSS
/// after each (when we started it, `server_pid`).
async fn http_workloads(
    target: &Target,
    server_pid: Option<u32>,
    s: &Settings,
    wants: &impl Fn(Workload) -> bool,
    report: &mut Report,
    peaks: &mut Vec<String>,
) -> Result<(), BoxError> {
    let mut peak_after = |what: &str| {
        if let Some(rss) = server_pid.and_then(http::Rss::of) {
            peaks.push(format!("{:.0} MB after {what}", mb(rss.peak)));
        }
    };
    let mut conn = Conn::connect(target).await?;
    // The bench's own policies, so that the figures do not depend on the
    // server's defaults: upstream's `low`, and 1 s over a day for the read.
    conn.ensure_archive_policy(json!({
        "name": ingest::POLICY,
        "back_window": 0,
        "definition": [{"granularity": "5m", "timespan": "30 days"}],
    }))
    .await?;
    conn.ensure_archive_policy(json!({
        "name": read::POLICY,
        "back_window": 0,
        "definition": [{"granularity": "1s", "points": s.read.points.max(86_400)}],
    }))
    .await?;
    if wants(Workload::Ingest) {
        ingest::run(target, server_pid, &s.ingest, report).await?;
        ingest_paths::run(target, server_pid, &s.ingest, ingest::POLICY, report).await?;
        peak_after("ingest");
    }
    if wants(Workload::Read) {
        read::run(target, server_pid, &s.read, report).await?;
        peak_after("read");
    }
    if wants(Workload::Crud) {
        crud::run(target, server_pid, &s.crud, ingest::POLICY, report).await?;
        peak_after("crud");
    }
    if wants(Workload::Resources) {
        resources::run(target, &s.resources, report).await?;
        peak_after("resources");
    }
    if wants(Workload::Aggregates) {
        aggregates::run(target, &s.aggregates, report).await?;
        peak_after("aggregates");
    }
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
