//! The index: everything gnocchi-rs knows *about* its data (archive policies,
//! archive policy rules, metrics, later resources), as opposed to the data itself.
//!
//! [`Indexer`] is the one trait the rest of the system talks to; [`sqlite`] is the
//! embedded implementation. SQL is built with one query builder (sea-query) so the
//! same code serves PostgreSQL and MySQL later. Schema changes are versioned
//! migrations ([`Indexer::upgrade`]).
//!
//! Invariants: the index never touches measures or splits; every write is one
//! transaction; errors are [`IndexError`] variants named in the caller's terms.

mod bind;
mod codec;
mod error;
mod model;
mod query;
mod schema;
pub mod sqlite;

pub use error::IndexError;
pub use model::*;

use async_trait::async_trait;
use carbonara::{ArchivePolicy, ArchivePolicyItem};
use uuid::Uuid;

pub type Result<T> = std::result::Result<T, IndexError>;

/// The indexer. Implementations are cheap to share (`Arc<dyn Indexer>`).
#[async_trait]
pub trait Indexer: Send + Sync + 'static {
    /// Create or migrate the schema to the newest version; idempotent.
    async fn upgrade(&self) -> Result<()>;

    // -- archive policies --
    /// `ArchivePolicyAlreadyExists` on duplicate name.
    async fn create_archive_policy(&self, ap: &ArchivePolicy) -> Result<()>;
    async fn list_archive_policies(&self) -> Result<Vec<ArchivePolicy>>;
    async fn get_archive_policy(&self, name: &str) -> Result<Option<ArchivePolicy>>;
    /// Replace definition (and back_window when given). The caller has already
    /// checked that the granularities are unchanged. `ArchivePolicyNotFound`.
    async fn update_archive_policy(
        &self,
        name: &str,
        definition: &[ArchivePolicyItem],
        back_window: Option<u64>,
    ) -> Result<ArchivePolicy>;
    /// `ArchivePolicyNotFound`, or `ArchivePolicyInUse` when a metric or rule uses it.
    async fn delete_archive_policy(&self, name: &str) -> Result<()>;

    // -- archive policy rules --
    /// `ArchivePolicyRuleAlreadyExists`, `ArchivePolicyNotFound` (unknown policy).
    async fn create_archive_policy_rule(&self, rule: &ArchivePolicyRule) -> Result<()>;
    /// Ordered by metric_pattern descending, then name ascending (upstream's match order).
    async fn list_archive_policy_rules(&self) -> Result<Vec<ArchivePolicyRule>>;
    async fn get_archive_policy_rule(&self, name: &str) -> Result<Option<ArchivePolicyRule>>;
    /// `ArchivePolicyRuleNotFound`, `ArchivePolicyRuleAlreadyExists` (new name taken).
    async fn rename_archive_policy_rule(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<ArchivePolicyRule>;
    async fn delete_archive_policy_rule(&self, name: &str) -> Result<()>;

    // -- metrics --
    /// `ArchivePolicyNotFound`, `NamedMetricAlreadyExists`.
    async fn create_metric(&self, metric: &NewMetric) -> Result<Metric>;
    /// Active metrics among `ids` (unknown or deleted ones are simply absent), any order.
    async fn get_metrics(&self, ids: &[Uuid]) -> Result<Vec<Metric>>;
    /// Active metrics matching `query`, sorted and paginated.
    async fn list_metrics(&self, query: &MetricQuery) -> Result<Vec<Metric>>;
    /// Mark a metric deleted (the janitor purges its data). `MetricNotFound` if not active.
    async fn delete_metric(&self, id: Uuid) -> Result<()>;
    /// Up to `limit` metrics marked deleted, for the janitor.
    async fn list_deleted_metrics(&self, limit: usize) -> Result<Vec<Uuid>>;
    /// Remove deleted metrics' rows for good (their data is already gone).
    async fn expunge_metrics(&self, ids: &[Uuid]) -> Result<()>;
}
