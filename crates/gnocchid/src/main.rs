//! `gnocchid`: every role of gnocchi-rs in one binary.
//!
//! With no subcommand it is the all-in-one server: the API on 127.0.0.1:8041,
//! an embedded SQLite index, local incoming and aggregate stores under the data
//! directory, and metricd plus the janitor in-process. Subcommands run one role
//! (`api`, `metricd`, `statsd`, `amqpd`) or prepare storage (`upgrade`,
//! `change-sack-size`); with network backends in gnocchi.conf, any number of
//! them share the work. This file is the command line only: configuration and
//! wiring are the crate's library (`lib.rs`); the benchmark is its own binary,
//! `gnocchi-bench` (crates/bench).

use clap::{Parser, Subcommand};
use gnocchid::{amqpd, backends, config, server, statsd};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "gnocchid",
    version = gnocchi_api::VERSION_LINE,
    about = "gnocchi-rs: a Gnocchi-compatible time series database",
    long_about = None,
    after_help = "Configuration, as oslo.config upstream: these flags, then the environment \
(OS_<SECTION>__<OPTION> for any gnocchi.conf option, e.g. OS_API__PORT=8042, \
OS_INDEXER__URL=postgresql://...), then the --config-file, then GNOCCHI_INDEXER_URL \
(the default of [indexer] url), then the built-in defaults. GNOCCHI_LOG sets the log \
level (info). The benchmark is its own binary, gnocchi-bench."
)]
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
    /// Only the AMQP 1.0 daemon (`[amqp1d]`): collectd's amqp1 plugin messages
    /// from a broker, one resource per host.
    Amqpd,
    /// Change the number of sacks of the incoming store (refused while measures
    /// are pending, as upstream's gnocchi-change-sack-size). With the embedded
    /// store the server must be stopped; on Redis, S3 or Ceph, restart every
    /// process afterwards.
    ChangeSackSize {
        /// The new number of sacks.
        #[arg(long)]
        sacks_number: u32,
    },
}

fn main() -> ExitCode {
    gnocchid::init_logging();
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
            Command::Upgrade => backends::upgrade(&cfg, create_policies).await.map(|_| ()),
            Command::Statsd => statsd::run(cfg, cli.host, cli.port, create_policies).await,
            Command::Amqpd => amqpd::run(cfg, create_policies).await,
            Command::ChangeSackSize { sacks_number } => {
                backends::change_sack_size(&cfg, sacks_number).await
            }
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
