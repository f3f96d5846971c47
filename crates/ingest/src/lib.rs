//! The one write path of gnocchi-rs. Every way measures come in — `POST
//! .../measures`, the two batch endpoints, InfluxDB line protocol, Prometheus
//! remote write, statsd, and the paths still to come (AMQP, migration) —
//! decodes its input into a [`Request`] and hands it to [`Ingest::write`],
//! which runs the same four steps for all of them:
//!
//! 1. **plan** ([`plan`]): resolve the request against the index in a fixed
//!    number of queries: existing metrics, resources and types, and what must
//!    be created, with the archive policy the rules give each new metric;
//! 2. **authorize**: the caller's function sees the whole [`Plan`] (every
//!    creation and every metric written to) and refuses it, or not — the API
//!    checks its policy rules there and turns [`Problem`]s into 4xx; statsd
//!    logs problems and writes the rest;
//! 3. **apply** ([`apply`]): create types, resources and metrics. A creation
//!    lost to a concurrent writer ("created meanwhile") sends the request back
//!    to step 1, a bounded number of times;
//! 4. **append**: every measure of the request to the incoming store, in one
//!    batch.
//!
//! Invariants (tests in `tests/`): nothing is written before the authorizer
//! accepted the whole plan; a request's measures are appended in one batch or
//! not at all; rule matching, the metric-name check and the creation race
//! are handled here only. This crate knows neither HTTP nor JSON.

mod apply;
mod plan;
mod request;

pub use plan::{Append, GrownResource, Plan, PlannedMetric, Problem};
pub use request::{
    AutoResource, MetricRef, MetricWrite, Missing, NamedWrite, Request, ResourceWrite,
};

use gnocchi_index::{IndexError, Indexer};
use gnocchi_storage::{Incoming, StorageError};
use std::sync::Arc;

/// How many times a request whose creations lost a race is planned again.
pub const ATTEMPTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Concurrent writers kept creating what this request wanted to create.
    #[error(
        "Unable to create the resources and metrics of this request: too much contention, please retry"
    )]
    Contention,
    /// The index created a resource without a metric it was asked to create.
    #[error("the index did not create the metric {name} of resource {resource}")]
    NotCreated { resource: uuid::Uuid, name: String },
}

/// What a request wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Metrics that received measures.
    pub metrics: usize,
    pub measures: usize,
}

/// The ingest service: cheap to clone, shared by every write path.
#[derive(Clone)]
pub struct Ingest {
    indexer: Arc<dyn Indexer>,
    incoming: Arc<dyn Incoming>,
}

impl Ingest {
    pub fn new(indexer: Arc<dyn Indexer>, incoming: Arc<dyn Incoming>) -> Self {
        Ingest { indexer, incoming }
    }

    /// Plan `request`, let `authorize` accept or refuse the plan, then create
    /// what it needs and append its measures. `authorize` runs again when a
    /// lost creation race makes the request planned again; nothing is
    /// written until it has returned `Ok` on the plan being applied.
    pub async fn write<E>(
        &self,
        request: Request,
        mut authorize: impl FnMut(&Plan) -> Result<(), E>,
    ) -> Result<Written, E>
    where
        E: From<IngestError>,
    {
        for _ in 0..ATTEMPTS {
            let plan = plan::plan(self.indexer.as_ref(), &request)
                .await
                .map_err(IngestError::from)?;
            authorize(&plan)?;
            match apply::create(self.indexer.as_ref(), &plan).await? {
                apply::Created::LostRace => continue,
                apply::Created::Ids(ids) => {
                    return Ok(apply::append(self.incoming.as_ref(), plan, ids, request).await?);
                }
            }
        }
        Err(IngestError::Contention.into())
    }
}
