//! `gnocchid`: every role of gnocchi-rs in one binary.
//!
//! With no subcommand it is the all-in-one server: the API on 127.0.0.1:8041,
//! an embedded SQLite index, local incoming and aggregate stores under the data
//! directory, and metricd plus the janitor in-process. Subcommands run one role
//! (`api`, `metricd`), prepare storage (`upgrade`), or measure (`bench`); with
//! network backends in gnocchi.conf, any number of them share the work.
//! This crate only parses configuration and wires the other crates together.

// A binary has no public API: `pub` here only means "shared between modules".
#![allow(unreachable_pub)]

mod bench;
mod config;
mod server;
mod statsd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "gnocchid", version = gnocchi_api::VERSION_LINE, about = "gnocchi-rs: a Gnocchi-compatible time series database", long_about = None)]
struct Cli {
    /// Upstream-style gnocchi.conf (INI) to read.
    #[arg(long, global = true, env = "GNOCCHI_CONFIG_FILE")]
    config_file: Option<PathBuf>,
    /// Address to listen on (overrides [api] host; default 127.0.0.1).
    #[arg(long, global = true)]
    host: Option<String>,
    /// Port to listen on (overrides [api] port; default 8041).
    #[arg(long, global = true)]
    port: Option<u16>,
    /// Directory holding the embedded stores: the SQLite index, the incoming log
    /// and the aggregates (overrides [storage] file_basepath; default ./gnocchi-data).
    #[arg(long, global = true, env = "GNOCCHI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Do not create the default archive policies (low, medium, high, bool) and the
    /// `default` rule on first start, as upstream's gnocchi-upgrade flag.
    #[arg(long, global = true)]
    skip_archive_policies_creation: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The all-in-one server (the default): API + metricd + janitor.
    Serve,
    /// Only the API (metrics are processed by `gnocchid metricd` or on refresh=true).
    Api,
    /// Only metricd: process incoming measures and purge deleted metrics. Several
    /// metricd processes share the sacks through `[DEFAULT] coordination_url`.
    Metricd,
    /// Create or migrate the index and storage, then create the default archive policies.
    Upgrade,
    /// Only the statsd daemon (UDP, `[statsd]`); `--host`/`--port` set its address.
    Statsd,
    /// Change the number of sacks of the incoming store (refused while measures
    /// are pending, as upstream's gnocchi-change-sack-size). With the embedded
    /// store the server must be stopped; on Redis, restart every process afterwards.
    ChangeSackSize {
        /// The new number of sacks.
        #[arg(long)]
        sacks_number: u32,
    },
    /// Measure ingestion, processing and read speed against a fresh server.
    Bench(Box<bench::BenchArgs>),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GNOCCHI_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let overrides = config::Overrides {
        host: cli.host.clone(),
        port: cli.port,
        data_dir: cli.data_dir.clone(),
    };
    let cfg = match config::Config::load(cli.config_file.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gnocchid: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gnocchid: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let create_policies = !cli.skip_archive_policies_creation;
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => server::run(cfg, server::Roles::ALL, create_policies).await,
            Command::Api => server::run(cfg, server::Roles::API, create_policies).await,
            Command::Metricd => server::run(cfg, server::Roles::METRICD, create_policies).await,
            Command::Upgrade => server::upgrade(&cfg, create_policies).await.map(|_| ()),
            Command::Statsd => statsd::run(cfg, cli.host, cli.port, create_policies).await,
            Command::ChangeSackSize { sacks_number } => {
                server::change_sack_size(&cfg, sacks_number).await
            }
            Command::Bench(args) => bench::run(*args, cli.config_file).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gnocchid: {e}");
            ExitCode::FAILURE
        }
    }
}
