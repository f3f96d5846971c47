//! `gnocchid statsd`: upstream's gnocchi-statsd.
//!
//! Datagrams of `name:value|type[|@rate]` lines arrive on UDP ([`parse`]); one
//! flush interval accumulates them ([`stats`]): counters (`c`) are summed,
//! each value divided by its sampling rate, gauges (`g`) and timers (`ms`)
//! keep their last value. Every `flush_delay` each touched series becomes one
//! measure, timestamped with its last update, on the metric `<name>|<type>` of
//! the configured resource; missing metrics are created with the configured
//! archive policy or, failing that, the archive policy rules. All the measures
//! of a flush go to the incoming store in one batch.
//!
//! Invariants: this crate talks only to the index and the incoming store (no
//! HTTP); a bad message is logged and skipped, never fatal; one task owns the
//! accumulated state, so receiving takes no lock.

pub mod parse;
pub mod stats;

use carbonara::{Measure, Timestamp};
use gnocchi_index::{GENERIC, IndexError, Indexer, MetricQuery, NewMetric, NewResource};
use gnocchi_storage::{Incoming, StorageError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use uuid::Uuid;

/// The `[statsd]` section.
#[derive(Debug, Clone)]
pub struct StatsdConfig {
    /// Address to listen on (upstream's default is 0.0.0.0; ours 127.0.0.1).
    pub host: String,
    pub port: u16,
    /// The resource the metrics belong to (a UUID; other strings are mapped
    /// to one as resource ids are, with the creator).
    pub resource_id: String,
    /// Recorded as the creator of the resource and metrics.
    pub creator: Option<String>,
    /// Archive policy of new metrics; the archive policy rules decide when unset.
    pub archive_policy_name: Option<String>,
    pub flush_delay: Duration,
}

impl Default for StatsdConfig {
    fn default() -> Self {
        StatsdConfig {
            host: "127.0.0.1".into(),
            port: 8125,
            resource_id: String::new(),
            creator: None,
            archive_policy_name: None,
            flush_delay: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatsdError {
    #[error("[statsd] resource_id is required")]
    MissingResourceId,
    #[error("[statsd] resource_id `{0}' is invalid: {1}")]
    InvalidResourceId(String, String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "no archive policy name specified and no archive policy rule found matching the metric name {0}"
    )]
    NoArchivePolicy(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("receiving: {0}")]
    Io(#[from] std::io::Error),
}

/// Matches a metric name against an archive policy rule's pattern (fnmatch).
pub type GlobMatch = fn(name: &str, pattern: &str) -> bool;

/// Everything the daemon writes to.
#[derive(Clone)]
pub struct Backends {
    pub indexer: Arc<dyn Indexer>,
    pub incoming: Arc<dyn Incoming>,
    /// How archive policy rules match names (the API's fnmatch).
    pub glob: GlobMatch,
}

/// The resource id the configuration names: a UUID as is, anything else
/// through the same name-based UUID as resource ids of the API.
pub fn resource_uuid(id: &str, creator: Option<&str>) -> Result<Uuid, StatsdError> {
    if id.is_empty() {
        return Err(StatsdError::MissingResourceId);
    }
    gnocchi_index::resource_uuid(id, creator.unwrap_or(""))
        .map_err(|reason| StatsdError::InvalidResourceId(id.into(), reason))
}

/// A bound daemon, not yet running (tests bind port 0 and read the address).
pub struct Statsd {
    socket: UdpSocket,
    config: StatsdConfig,
    backends: Backends,
    resource: Uuid,
}

fn now_ns() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Statsd {
    /// Check the configuration, make sure the resource exists, and bind the socket.
    pub async fn bind(config: StatsdConfig, backends: Backends) -> Result<Statsd, StatsdError> {
        let resource = resource_uuid(&config.resource_id, config.creator.as_deref())?;
        ensure_resource(backends.indexer.as_ref(), resource, &config).await?;
        let addr = format!("{}:{}", config.host, config.port);
        let socket = UdpSocket::bind(&addr)
            .await
            .map_err(|source| StatsdError::Bind { addr, source })?;
        Ok(Statsd {
            socket,
            config,
            backends,
            resource,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Receive and flush until `stop` turns true; what is pending then is flushed too.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), StatsdError> {
        tracing::info!(
            addr = %self.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            flush_delay = ?self.config.flush_delay,
            resource = %self.resource,
            "statsd listening"
        );
        let mut stats = stats::Stats::default();
        let mut buf = vec![0u8; 65_536];
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.flush_delay,
            self.config.flush_delay.max(Duration::from_millis(1)),
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flusher = Flusher::new(&self);
        loop {
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let (n, from) = match r {
                        Ok(x) => x,
                        Err(e) => {
                            // ICMP errors and the like: not fatal for a UDP server.
                            tracing::warn!(error = %e, "statsd receive failed");
                            continue;
                        }
                    };
                    receive(&mut stats, &buf[..n], from, now_ns());
                }
                _ = ticker.tick() => {
                    flusher.flush(&mut stats).await;
                }
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        flusher.flush(&mut stats).await;
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Account every message of one datagram; bad ones are logged and skipped.
pub fn receive(stats: &mut stats::Stats, datagram: &[u8], from: SocketAddr, now: Timestamp) {
    match parse::messages(datagram) {
        Err(e) => tracing::warn!(%from, error = %e, "unable to decode statsd datagram"),
        Ok(messages) => {
            for m in messages {
                match m {
                    Ok(m) => stats.add(&m, now),
                    Err(e) => tracing::warn!(%from, error = %e, "unable to treat statsd metric"),
                }
            }
        }
    }
}

/// Create the configured resource unless it exists (a `generic` one, as upstream).
async fn ensure_resource(
    indexer: &dyn Indexer,
    id: Uuid,
    config: &StatsdConfig,
) -> Result<(), StatsdError> {
    if indexer.get_resource(GENERIC, id).await?.is_some() {
        return Ok(());
    }
    let new = NewResource {
        id,
        resource_type: GENERIC.to_string(),
        original_resource_id: config.resource_id.clone(),
        creator: config.creator.clone(),
        user_id: None,
        project_id: None,
        started_at: None,
        ended_at: None,
        attributes: Vec::new(),
        metrics: Vec::new(),
    };
    match indexer.create_resource(&new).await {
        Ok(_) => {
            tracing::info!(resource = %id, "created the statsd resource");
            Ok(())
        }
        Err(IndexError::ResourceAlreadyExists(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Turns a flush interval's values into measures of the resource's metrics.
struct Flusher {
    backends: Backends,
    resource: Uuid,
    creator: Option<String>,
    archive_policy_name: Option<String>,
}

impl Flusher {
    fn new(s: &Statsd) -> Flusher {
        Flusher {
            backends: s.backends.clone(),
            resource: s.resource,
            creator: s.config.creator.clone(),
            archive_policy_name: s.config.archive_policy_name.clone(),
        }
    }

    async fn flush(&mut self, stats: &mut stats::Stats) {
        if stats.is_empty() {
            return;
        }
        let values = stats.drain();
        let n = values.len();
        if let Err(e) = self.write(values).await {
            tracing::error!(error = %e, measures = n, "statsd flush failed; these measures are lost");
        }
    }

    async fn write(&mut self, values: Vec<(String, Timestamp, f64)>) -> Result<(), StatsdError> {
        // The resource's metrics are listed at every flush (every few seconds):
        // one that was deleted through the API is then simply created again.
        let existing = self
            .backends
            .indexer
            .list_metrics(&MetricQuery {
                resource_id: Some(self.resource),
                ..Default::default()
            })
            .await?;
        let mut ids: HashMap<String, Uuid> = existing
            .into_iter()
            .filter_map(|m| m.name.map(|n| (n, m.id)))
            .collect();
        let mut rules = None;
        let mut batch = Vec::with_capacity(values.len());
        for (name, ts, value) in values {
            let id = match ids.get(&name) {
                Some(id) => *id,
                None => match self.create_metric(&name, &mut rules).await {
                    Ok(id) => {
                        ids.insert(name, id);
                        id
                    }
                    Err(e) => {
                        tracing::error!(metric = %name, error = %e, "unable to add measure");
                        continue;
                    }
                },
            };
            batch.push((id, vec![Measure::new(ts, value)]));
        }
        if !batch.is_empty() {
            self.backends.incoming.add_measures(batch).await?;
        }
        Ok(())
    }

    async fn create_metric(
        &self,
        name: &str,
        rules: &mut Option<Vec<gnocchi_index::ArchivePolicyRule>>,
    ) -> Result<Uuid, StatsdError> {
        let policy = match &self.archive_policy_name {
            Some(p) => p.clone(),
            None => {
                if rules.is_none() {
                    *rules = Some(self.backends.indexer.list_archive_policy_rules().await?);
                }
                let glob = self.backends.glob;
                rules
                    .iter()
                    .flatten()
                    .find(|r| glob(name, &r.metric_pattern))
                    .map(|r| r.archive_policy_name.clone())
                    .ok_or_else(|| StatsdError::NoArchivePolicy(name.to_string()))?
            }
        };
        let new = NewMetric {
            id: Uuid::new_v4(),
            name: Some(name.to_string()),
            unit: None,
            resource_id: Some(self.resource),
            creator: self.creator.clone(),
            archive_policy_name: policy,
        };
        match self.backends.indexer.create_metric(&new).await {
            Ok(m) => Ok(m.id),
            // Created meanwhile (another statsd, the API): use that one.
            Err(IndexError::NamedMetricAlreadyExists(_)) => {
                let found = self
                    .backends
                    .indexer
                    .list_metrics(&MetricQuery {
                        resource_id: Some(self.resource),
                        name: Some(name.to_string()),
                        ..Default::default()
                    })
                    .await?;
                found.first().map(|m| m.id).ok_or_else(|| {
                    StatsdError::Index(IndexError::NamedMetricAlreadyExists(name.to_string()))
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_as_the_api_maps_them() {
        let u = "b4d568e4-7af1-5aec-ac3f-9c09fa3685a9";
        assert_eq!(resource_uuid(u, None).unwrap().to_string(), u);
        assert_eq!(
            resource_uuid("foobar", Some("admin")).unwrap().to_string(),
            "b4d568e4-7af1-5aec-ac3f-9c09fa3685a9"
        );
        assert!(resource_uuid("", None).is_err());
        assert!(resource_uuid("a/b", None).is_err());
    }
}
