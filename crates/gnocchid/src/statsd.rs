//! Wiring of the statsd daemon (crate `gnocchi-statsd`): its `[statsd]`
//! settings, `gnocchid statsd`, and the optional statsd listener of the
//! all-in-one server.
//!
//! The local incoming store is owned by one process at a time, so with the
//! embedded backends statsd runs either alone (`gnocchid statsd`) or inside
//! the all-in-one server, enabled with `[statsd] enabled = true` (our option;
//! upstream always runs gnocchi-statsd as its own service).

use crate::config::{Config, ConfigError};
use crate::server::{self, Backends, BoxError};
use gnocchi_statsd::{Statsd, StatsdConfig};
use std::time::Duration;
use tokio::sync::watch;

/// `[statsd]`: upstream's options plus `enabled`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Run the listener inside the all-in-one server.
    pub enabled: bool,
    pub daemon: StatsdConfig,
}

impl Settings {
    /// Read `[statsd]` through `get` (section lookup of the config file).
    pub fn load(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            section: "statsd".into(),
            key: key.into(),
            message,
        };
        let d = StatsdConfig::default();
        let enabled = match get("enabled").map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) => match v.as_str() {
                "true" | "yes" | "on" | "1" => true,
                "false" | "no" | "off" | "0" => false,
                _ => return Err(invalid("enabled", format!("`{v}' is not a boolean"))),
            },
        };
        let port = match get("port") {
            None => d.port,
            Some(p) => p.parse().map_err(|e| invalid("port", format!("{e}")))?,
        };
        let flush_delay = match get("flush_delay") {
            None => d.flush_delay,
            Some(s) => s
                .parse::<f64>()
                .ok()
                .filter(|f| *f > 0.0)
                .and_then(|f| Duration::try_from_secs_f64(f).ok())
                .ok_or_else(|| {
                    invalid(
                        "flush_delay",
                        format!("`{s}' is not a positive number of seconds"),
                    )
                })?,
        };
        Ok(Settings {
            enabled,
            daemon: StatsdConfig {
                host: get("host").unwrap_or(d.host),
                port,
                resource_id: get("resource_id").unwrap_or_default(),
                creator: get("creator"),
                archive_policy_name: get("archive_policy_name"),
                flush_delay,
            },
        })
    }
}

fn backends(b: &Backends) -> gnocchi_statsd::Backends {
    gnocchi_statsd::Backends {
        indexer: b.indexer.clone(),
        incoming: b.incoming.clone(),
        glob: gnocchi_api::fnmatch::fnmatch,
    }
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
    let b = server::upgrade(&cfg, create_policies).await?;
    let statsd = Statsd::bind(daemon, backends(&b)).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(statsd.run(stop_rx));
    server::shutdown_signal().await;
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
    let statsd = Statsd::bind(cfg.statsd.daemon.clone(), backends(b)).await?;
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = statsd.run(stop).await {
            tracing::error!(error = %e, "statsd stopped");
        }
    })))
}
