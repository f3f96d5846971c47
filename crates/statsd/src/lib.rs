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
//! Invariants: this crate writes only through the ingest service (no HTTP,
//! no index or store of its own); a bad message is logged and skipped, never
//! fatal; one task owns the accumulated state, so receiving takes no lock.

pub mod parse;
pub mod stats;

use carbonara::{Measure, Timestamp};
use gnocchi_index::{GENERIC, ResourceType, ResourceTypeState};
use gnocchi_ingest::{
    AutoResource, Ingest, IngestError, Missing, NamedWrite, Plan, Request, ResourceWrite,
};
use std::net::SocketAddr;
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
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("receiving: {0}")]
    Io(#[from] std::io::Error),
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
    ingest: Ingest,
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
    pub async fn bind(config: StatsdConfig, ingest: Ingest) -> Result<Statsd, StatsdError> {
        let resource = resource_uuid(&config.resource_id, config.creator.as_deref())?;
        // A request without measures: creates the resource if it is missing.
        ingest
            .write(request(resource, &config, Vec::new()), log_problems)
            .await?;
        let addr = format!("{}:{}", config.host, config.port);
        let socket = UdpSocket::bind(&addr)
            .await
            .map_err(|source| StatsdError::Bind { addr, source })?;
        Ok(Statsd {
            socket,
            config,
            ingest,
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

/// A write of `metrics` to the daemon's resource, created (`generic`, as
/// upstream) with the metrics it lacks, whose archive policy is the
/// configured one or, failing that, the rules'.
fn request(resource: Uuid, config: &StatsdConfig, metrics: Vec<NamedWrite>) -> Request {
    let generic = ResourceType {
        name: GENERIC.to_string(),
        state: ResourceTypeState::Active,
        attributes: Vec::new(),
        tablename: None,
    };
    Request {
        creator: config.creator.clone(),
        metrics: Vec::new(),
        resources: vec![ResourceWrite {
            id: resource,
            original_id: config.resource_id.clone(),
            missing: Missing::CreateResource(AutoResource {
                resource_type: generic,
                attributes: Vec::new(),
                any_type: true,
            }),
            metrics,
        }],
    }
}

/// Statsd has no policy: what cannot be written (a metric without archive
/// policy, say) is logged and the rest is written.
fn log_problems(plan: &Plan) -> Result<(), StatsdError> {
    for p in &plan.problems {
        tracing::error!(problem = ?p, "unable to add measure");
    }
    Ok(())
}

/// Turns a flush interval's values into measures of the resource's metrics.
struct Flusher {
    ingest: Ingest,
    resource: Uuid,
    config: StatsdConfig,
}

impl Flusher {
    fn new(s: &Statsd) -> Flusher {
        Flusher {
            ingest: s.ingest.clone(),
            resource: s.resource,
            config: s.config.clone(),
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

    /// One request per flush: the resource's metrics are looked up every few
    /// seconds, so one deleted through the API is simply created again.
    async fn write(&mut self, values: Vec<(String, Timestamp, f64)>) -> Result<(), StatsdError> {
        let metrics = values
            .into_iter()
            .map(|(name, ts, value)| NamedWrite {
                name,
                archive_policy_name: self.config.archive_policy_name.clone(),
                unit: None,
                measures: vec![Measure::new(ts, value)],
            })
            .collect();
        self.ingest
            .write(request(self.resource, &self.config, metrics), log_problems)
            .await?;
        Ok(())
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
