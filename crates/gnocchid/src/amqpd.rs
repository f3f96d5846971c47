//! Wiring of the AMQP 1.0 daemon (crate `gnocchi-amqpd`; its `[amqp1d]`
//! settings are read by `crate::config`): `gnocchid amqpd`, and the
//! optional daemon inside the all-in-one server.
//!
//! As for statsd, the local incoming store is owned by one process at a
//! time, so with the embedded backends the daemon runs either alone
//! (`gnocchid amqpd`) or inside the all-in-one server, enabled with
//! `[amqp1d] enabled = true` (our option; upstream runs gnocchi-amqpd as its
//! own service).

use crate::backends::{self, BoxError};
use crate::config::Config;
use crate::statsd::daemon_backends;
use gnocchi_amqpd::Amqpd;
use tokio::sync::watch;

/// `gnocchid amqpd`: only the AMQP 1.0 daemon (the API is not started).
pub async fn run(cfg: Config, create_policies: bool) -> Result<(), BoxError> {
    let b = backends::upgrade(&cfg, create_policies).await?;
    let amqpd = Amqpd::new(cfg.amqp1d.daemon.clone(), daemon_backends(&b))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(amqpd.run(stop_rx));
    crate::shutdown_signal().await;
    let _ = stop_tx.send(true);
    task.await??;
    Ok(())
}

/// The all-in-one server's AMQP 1.0 daemon, when `[amqp1d] enabled`.
pub fn spawn_in_server(
    cfg: &Config,
    b: &backends::Backends,
    stop: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, BoxError> {
    if !cfg.amqp1d.enabled {
        return Ok(None);
    }
    let amqpd = Amqpd::new(cfg.amqp1d.daemon.clone(), daemon_backends(b))?;
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = amqpd.run(stop).await {
            tracing::error!(error = %e, "amqpd stopped");
        }
    })))
}
