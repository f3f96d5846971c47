//! The index: everything gnocchi-rs knows *about* its data (archive policies,
//! archive policy rules, metrics, resource types and resources with their
//! history), as opposed to the data itself.
//!
//! [`Indexer`] is the one trait the rest of the system talks to, implemented once
//! in [`sql`] over three engines: [`sqlite`] (embedded, the default), PostgreSQL
//! and MySQL/MariaDB ([`server`]). SQL is built with one query builder (sea-query)
//! so the same statements serve every engine; the little SQL that must differ is
//! in [`value_list`]. Schema changes are versioned migrations
//! ([`Indexer::upgrade`]).
//!
//! Invariants: the index never touches measures or splits; every write is one
//! transaction; errors are [`IndexError`] variants named in the caller's terms.

mod bind;
mod codec;
mod error;
pub mod filter;
pub mod fnmatch;
mod model;
mod model_resource;
mod query;
mod resource_query;
mod schema;
mod schema_resource;
pub mod server;
pub mod sql;
pub mod sqlite;
pub mod value_list;

pub use error::IndexError;
pub use filter::{CmpOp, Filter, FilterValue};
pub use model::*;
pub use model_resource::*;
pub use value_list::Dialect;

use async_trait::async_trait;
use carbonara::{ArchivePolicy, ArchivePolicyItem};
use uuid::Uuid;

pub type Result<T> = std::result::Result<T, IndexError>;

/// The indexer. Implementations are cheap to share (`Arc<dyn Indexer>`).
/// Resource and resource type methods live in the supertrait [`ResourceIndexer`]
/// (bring it into scope to call them on a `dyn Indexer`).
#[async_trait]
pub trait Indexer: ResourceIndexer + Send + Sync + 'static {
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

/// Resources, their history and their types. Every write is one transaction
/// (including a type's DDL); every read sees one snapshot.
#[async_trait]
pub trait ResourceIndexer: Send + Sync + 'static {
    // -- resource types --
    /// `ResourceTypeAlreadyExists`. Creates the type's tables; returns it `active`.
    async fn create_resource_type(&self, rt: &ResourceType) -> Result<ResourceType>;
    /// Sorted by name (`generic` included).
    async fn list_resource_types(&self) -> Result<Vec<ResourceType>>;
    async fn get_resource_type(&self, name: &str) -> Result<Option<ResourceType>>;
    /// Add, update and drop attributes (ALTER TABLE on the current and history
    /// tables, fills written into existing rows). `ResourceTypeNotFound`.
    async fn update_resource_type(
        &self,
        name: &str,
        update: &ResourceTypeUpdate,
    ) -> Result<ResourceType>;
    /// `ResourceTypeNotFound`; `ResourceTypeInUse` for `generic` or while resources use it.
    async fn delete_resource_type(&self, name: &str) -> Result<()>;

    // -- resources --
    /// `ResourceTypeNotFound`, `ResourceAlreadyExists`, `InvalidResourceValue`
    /// (start after end), and for `metrics`: `MetricNotFound`, `ArchivePolicyNotFound`,
    /// `NamedMetricAlreadyExists`.
    async fn create_resource(&self, resource: &NewResource) -> Result<Resource>;
    /// The current revision with its metrics. For `generic`, any resource (base
    /// fields only); for another type, only that type's (with its attributes).
    async fn get_resource(&self, resource_type: &str, id: Uuid) -> Result<Option<Resource>>;
    /// Apply a partial update. A revision is recorded only when a non-metric field
    /// actually changes. `ResourceNotFound` plus `create_resource`'s errors.
    async fn update_resource(
        &self,
        resource_type: &str,
        id: Uuid,
        update: &ResourceUpdate,
    ) -> Result<Resource>;
    /// Delete a resource and its history; its metrics are marked deleted (the
    /// janitor purges them). `ResourceNotFound`.
    async fn delete_resource(&self, id: Uuid) -> Result<()>;
    /// Delete the resources of a type matching `filter` (as `delete_resource`);
    /// how many. `QueryValueError`, `QueryAttributeError`.
    async fn delete_resources(&self, resource_type: &str, filter: &Filter) -> Result<u64>;
    /// Filtered, sorted, keyset-paginated listing, with each resource's metrics.
    /// `ResourceTypeNotFound`, `InvalidSortKey`, `InvalidMarker`, `QueryValueError`,
    /// `QueryAttributeError`.
    async fn list_resources(&self, query: &ResourceQuery) -> Result<Vec<Resource>>;
}

/// The backend an index URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexUrl {
    /// A file path, or `:memory:`.
    Sqlite(String),
    /// A `postgres://` URL as sqlx takes it.
    Postgres(String),
    /// A `mysql://` URL as sqlx takes it.
    Mysql(String),
}

impl IndexUrl {
    /// Parse upstream's `[indexer] url`: `sqlite:///path`, `postgresql://…`,
    /// `mysql://…`, with or without a SQLAlchemy driver suffix
    /// (`postgresql+psycopg2://`, `mysql+pymysql://`); a bare path is SQLite.
    pub fn parse(url: &str) -> Result<Self> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(IndexUrl::Sqlite(url.to_owned()));
        };
        let base = scheme.split('+').next().unwrap_or(scheme);
        match base {
            "sqlite" => Ok(IndexUrl::Sqlite(
                rest.strip_prefix('/')
                    .filter(|p| p.starts_with('/') || p.starts_with(":memory:"))
                    .unwrap_or(rest)
                    .to_owned(),
            )),
            "postgresql" | "postgres" => Ok(IndexUrl::Postgres(format!("postgres://{rest}"))),
            "mysql" | "mariadb" => Ok(IndexUrl::Mysql(format!("mysql://{rest}"))),
            other => Err(IndexError::Backend(format!(
                "unsupported indexer URL scheme `{other}' (expected sqlite, postgresql or mysql)"
            ))),
        }
    }
}

/// Open the index `url` names (see [`IndexUrl::parse`]). Does not touch the schema:
/// call [`Indexer::upgrade`] first.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Indexer>> {
    Ok(match IndexUrl::parse(url)? {
        IndexUrl::Sqlite(path) => std::sync::Arc::new(sqlite::SqliteIndexer::open(&path).await?),
        IndexUrl::Postgres(url) => {
            std::sync::Arc::new(server::PostgresIndexer::connect(&url).await?)
        }
        IndexUrl::Mysql(url) => std::sync::Arc::new(server::MysqlIndexer::connect(&url).await?),
    })
}
