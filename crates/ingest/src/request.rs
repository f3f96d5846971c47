//! What a write path hands the ingest service: measures for metrics named by
//! id, or by name on a resource, with what to do when some do not exist.
//!
//! A [`Request`] is already decoded and validated as a body (timestamps,
//! values, lengths): the service only resolves it against the index.

use carbonara::Measure;
use gnocchi_index::{Metric, ResourceType};
use uuid::Uuid;

/// One write request: every measure it carries goes to the incoming store in
/// one batch, or none does.
#[derive(Debug, Default)]
pub struct Request {
    /// The identity recorded as the creator of what the request creates.
    pub creator: Option<String>,
    /// Measures for metrics named by id (or already found by the caller).
    pub metrics: Vec<MetricWrite>,
    /// Measures for metrics named on resources.
    pub resources: Vec<ResourceWrite>,
}

/// Measures for one metric named by id.
#[derive(Debug)]
pub struct MetricWrite {
    pub metric: MetricRef,
    pub measures: Vec<Measure>,
}

/// How a [`MetricWrite`] names its metric.
#[derive(Debug)]
pub enum MetricRef {
    /// Looked up by the service; unknown ids are [`Problem::UnknownMetric`](crate::Problem::UnknownMetric).
    Id(Uuid),
    /// Found by the caller (the metric its URL names, already checked).
    Found(Metric),
}

/// Measures for the named metrics of one resource.
#[derive(Debug)]
pub struct ResourceWrite {
    /// The resource's UUID (see `gnocchi_index::resource_uuid`).
    pub id: Uuid,
    /// The id as the client wrote it.
    pub original_id: String,
    /// What happens when the resource or some of the metrics do not exist.
    pub missing: Missing,
    pub metrics: Vec<NamedWrite>,
}

/// Measures for one named metric of a resource, with what a metric created
/// for them gets.
#[derive(Debug)]
pub struct NamedWrite {
    pub name: String,
    /// `None`: the archive policy rules decide.
    pub archive_policy_name: Option<String>,
    pub unit: Option<String>,
    pub measures: Vec<Measure>,
}

impl NamedWrite {
    /// Measures for `name`, its archive policy (if created) from the rules.
    pub fn new(name: impl Into<String>, measures: Vec<Measure>) -> Self {
        NamedWrite {
            name: name.into(),
            archive_policy_name: None,
            unit: None,
            measures,
        }
    }
}

/// What a [`ResourceWrite`] does about what is missing.
#[derive(Debug, Clone)]
pub enum Missing {
    /// Nothing is created: a missing metric is [`Problem::UnknownNamedMetric`](crate::Problem::UnknownNamedMetric).
    Refuse,
    /// Missing metrics of an existing resource are created (upstream's
    /// `create_metrics=true` of the batch); a missing resource is
    /// [`Problem::UnknownResource`](crate::Problem::UnknownResource).
    CreateMetrics,
    /// The resource (and its type) are created when missing, missing metrics
    /// are added to it: the write protocols (InfluxDB, Prometheus, statsd).
    CreateResource(AutoResource),
}

/// The resource a write protocol creates on first use.
#[derive(Debug, Clone)]
pub struct AutoResource {
    /// Its type; created as given when it does not exist. A resource with
    /// this id under another type is [`Problem::ResourceOfAnotherType`](crate::Problem::ResourceOfAnotherType),
    /// unless `any_type`.
    pub resource_type: ResourceType,
    /// String attributes of the new resource.
    pub attributes: Vec<(String, String)>,
    /// An existing resource of any type is written to (statsd: its resource
    /// may be one the operator created with a type of their own).
    pub any_type: bool,
}
