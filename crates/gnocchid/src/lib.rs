//! `gnocchid`'s configuration and wiring, as a library: the `gnocchid` binary
//! (`main.rs`, the command line) and the benchmark (`gnocchi-bench`, which opens
//! the same backends in-process) both use it.
//!
//! The modules form a ladder, each using only those above it:
//! [`config`] (gnocchi.conf and the environment) ← [`backends`] (open and
//! migrate the stores) ← [`statsd`] (the statsd daemon's wiring) ← [`amqpd`]
//! (the AMQP 1.0 daemon's) ← [`server`] (the roles: API, metricd, janitor,
//! the embedded statsd listener and AMQP 1.0 daemon).

pub mod amqpd;
pub mod backends;
pub mod config;
pub mod server;
pub mod statsd;

/// Logs to stderr, at the level of `GNOCCHI_LOG` (`info` by default; any
/// `tracing` filter, e.g. `debug` or `gnocchi_engine=debug`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GNOCCHI_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Resolves on SIGTERM or SIGINT: every long-running role stops on it.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
