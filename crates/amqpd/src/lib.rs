//! `gnocchid amqpd`: upstream's gnocchi-amqpd, the AMQP 1.0 daemon that
//! takes collectd's `amqp1` plugin output.
//!
//! The daemon connects to a broker (`[amqp1d] url`: host, port, address;
//! [`url`]) and attaches a receiving link to the address collectd sends to.
//! Each message body is collectd's JSON, a list of value lists
//! ([`collectd`]); every value becomes one measure of the metric
//! `<plugin>[-<plugin_instance>]@<type>[-<type_instance>][-<dsname>]` of
//! the host's resource. One flush interval (`flush_delay`) accumulates them
//! ([`batch`]); each flush writes them through the ingest service in one
//! request, creating what is missing as upstream's daemon does: the resource
//! type (`resource_type`, one required `host` attribute), one resource per
//! host (id `<resource_type>:<host>`), its metrics with the archive policy
//! the rules give their names.
//!
//! Deliveries are accepted only once their measures are in the incoming
//! store (or logged as lost), so a broker that keeps unaccepted messages
//! gives them again after a crash (at least once); a full batch
//! ([`MAX_PENDING`] deliveries) is flushed early rather than waiting. When
//! the broker goes away, what was received is flushed and the daemon
//! reconnects with a doubling backoff ([`Backoff`]).
//!
//! Invariants: this crate writes only through the ingest service (no HTTP,
//! no index or store of its own); a bad message is logged and skipped, never
//! fatal; one task owns the connection and the batch, so receiving takes no
//! lock; the stop signal ends every wait (connecting, backing off,
//! receiving) and what is pending is flushed before `run` returns.

pub mod batch;
pub mod collectd;
mod consume;
pub mod url;

use gnocchi_ingest::{Ingest, IngestError, Plan};
use std::time::Duration;
use tokio::sync::watch;

pub use consume::Backoff;

/// Deliveries held unaccepted before a flush is forced: the link's credit is
/// twice this, so the broker never waits on a batch that is not flushing.
pub const MAX_PENDING: u32 = 5_000;

/// The `[amqp1d]` section (upstream's options and defaults).
#[derive(Debug, Clone)]
pub struct Amqp1dConfig {
    /// `[amqp://][user:password@]host[:port]/address` ([`url`]).
    pub url: String,
    /// The message format; upstream knows only `collectd`.
    pub data_source: String,
    /// The type of the resources created, one per host.
    pub resource_type: String,
    /// Recorded as the creator of the resources and metrics (and part of
    /// their resource ids' UUIDs).
    pub creator: Option<String>,
    pub flush_delay: Duration,
}

impl Default for Amqp1dConfig {
    fn default() -> Self {
        Amqp1dConfig {
            url: "localhost:5672/u/collectd/telemetry".into(),
            data_source: "collectd".into(),
            resource_type: "collectd_amqp1d".into(),
            creator: None,
            flush_delay: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AmqpdError {
    #[error("[amqp1d] url `{url}' is invalid: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("[amqp1d] data_source `{0}' is not supported (only `collectd')")]
    UnsupportedDataSource(String),
    #[error("[amqp1d] resource_type must not be empty")]
    MissingResourceType,
    #[error("cannot connect to the AMQP broker: {0}")]
    Connect(#[from] fe2o3_amqp::connection::OpenError),
    #[error("cannot begin an AMQP session: {0}")]
    Session(#[from] fe2o3_amqp::session::BeginError),
    #[error("cannot attach to address `{address}': {source}")]
    Attach {
        address: String,
        source: fe2o3_amqp::link::ReceiverAttachError,
    },
    #[error("receiving from the broker: {0}")]
    Receive(#[from] fe2o3_amqp::link::RecvError),
    #[error("accepting deliveries: {0}")]
    Accept(#[from] fe2o3_amqp::link::DispositionError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// A checked configuration, not yet connected.
pub struct Amqpd {
    config: Amqp1dConfig,
    broker: url::BrokerUrl,
    ingest: Ingest,
}

impl Amqpd {
    /// Checks the configuration; connecting is `run`'s, which retries.
    pub fn new(config: Amqp1dConfig, ingest: Ingest) -> Result<Amqpd, AmqpdError> {
        if config.data_source != "collectd" {
            return Err(AmqpdError::UnsupportedDataSource(config.data_source));
        }
        if config.resource_type.is_empty() {
            return Err(AmqpdError::MissingResourceType);
        }
        let broker = url::parse(&config.url).map_err(|reason| AmqpdError::InvalidUrl {
            url: config.url.clone(),
            reason,
        })?;
        Ok(Amqpd {
            config,
            broker,
            ingest,
        })
    }

    /// The address the daemon listens to.
    pub fn address(&self) -> &str {
        &self.broker.address
    }

    /// Connect, receive and flush until `stop` turns true, reconnecting
    /// whenever the broker goes away; what is pending is flushed on the way
    /// out. Only a stop ends it: broker errors are logged and retried.
    pub async fn run(self, stop: watch::Receiver<bool>) -> Result<(), AmqpdError> {
        consume::run(self, stop).await;
        Ok(())
    }
}

/// The daemon has no policy: what cannot be written (a metric no rule gives
/// an archive policy, a host whose resource exists under another type) is
/// logged and the rest is written.
fn log_problems(plan: &Plan) -> Result<(), AmqpdError> {
    for p in &plan.problems {
        tracing::error!(problem = ?p, "amqpd: unable to add measures");
    }
    Ok(())
}

/// Writes and empties `batch`: one ingest request for every host in it.
async fn flush(daemon: &Amqpd, batch: &mut batch::Batch) {
    if batch.is_empty() {
        return;
    }
    let n = batch.measures();
    let (request, refused) = batch.take_request(
        &daemon.config.resource_type,
        daemon.config.creator.as_deref(),
    );
    for (id, reason) in refused {
        tracing::error!(resource_id = %id, %reason, "amqpd: measures of this host are dropped");
    }
    match daemon.ingest.write(request, log_problems).await {
        Ok(w) => tracing::debug!(measures = w.measures, metrics = w.metrics, "amqpd flushed"),
        Err(e) => {
            tracing::error!(error = %e, measures = n, "amqpd flush failed; these measures are lost")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_defaults() {
        let d = Amqp1dConfig::default();
        assert_eq!(d.url, "localhost:5672/u/collectd/telemetry");
        assert_eq!(d.data_source, "collectd");
        assert_eq!(d.resource_type, "collectd_amqp1d");
        assert_eq!(d.creator, None);
        assert_eq!(d.flush_delay, Duration::from_secs(10));
    }
}
