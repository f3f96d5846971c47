//! Wiring of the statsd daemon (crate `gnocchi-statsd`; its `[statsd]`
//! settings are read by [`crate::config`]): `gnocchid statsd`, and the
//! optional statsd listener of the all-in-one server.
//!
//! The local incoming store is owned by one process at a time, so with the
//! embedded backends statsd runs either alone (`gnocchid statsd`) or inside
//! the all-in-one server, enabled with `[statsd] enabled = true` (our option;
//! upstream always runs gnocchi-statsd as its own service).

use crate::backends::{self, Backends, BoxError};
use crate::config::Config;
use gnocchi_statsd::Statsd;
use tokio::sync::watch;

/// What the daemon writes through: the ingest service over the opened backends.
pub fn daemon_backends(b: &Backends) -> gnocchi_ingest::Ingest {
    gnocchi_ingest::Ingest::new(b.indexer.clone(), b.incoming.clone())
}

/// `gnocchid statsd`: only the statsd daemon. `--host`/`--port`, when given,
/// set its address (the API is not started).
pub async fn run(
    cfg: Config,
    host: Option<String>,
    port: Option<u16>,
    create_policies: bool,
) -> Result<(), BoxError> {
    let mut daemon = cfg.statsd.daemon.clone();
    if let Some(h) = host {
        daemon.host = h;
    }
    if let Some(p) = port {
        daemon.port = p;
    }
    let b = backends::upgrade(&cfg, create_policies).await?;
    let statsd = Statsd::bind(daemon, daemon_backends(&b)).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(statsd.run(stop_rx));
    crate::shutdown_signal().await;
    let _ = stop_tx.send(true);
    task.await??;
    Ok(())
}

/// The all-in-one server's statsd listener, when `[statsd] enabled`.
pub async fn spawn_in_server(
    cfg: &Config,
    b: &Backends,
    stop: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, BoxError> {
    if !cfg.statsd.enabled {
        return Ok(None);
    }
    let statsd = Statsd::bind(cfg.statsd.daemon.clone(), daemon_backends(b)).await?;
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = statsd.run(stop).await {
            tracing::error!(error = %e, "statsd stopped");
        }
    })))
}
