//! Errors of the index, named in the caller's terms.

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("Archive policy {0} already exists")]
    ArchivePolicyAlreadyExists(String),
    #[error("Archive policy {0} does not exist")]
    ArchivePolicyNotFound(String),
    #[error("Archive policy {0} is still in use")]
    ArchivePolicyInUse(String),
    #[error("Archive policy rule {0} already exists")]
    ArchivePolicyRuleAlreadyExists(String),
    #[error("Archive policy rule {0} does not exist")]
    ArchivePolicyRuleNotFound(String),
    #[error("Metric {0} does not exist")]
    MetricNotFound(uuid::Uuid),
    #[error("Named metric {0} already exists")]
    NamedMetricAlreadyExists(String),
    #[error("Sort key supplied is invalid: {0}")]
    InvalidSortKey(String),
    #[error("Invalid marker: `{0}'")]
    InvalidMarker(String),
    #[error("Resource type {0} already exists")]
    ResourceTypeAlreadyExists(String),
    #[error("Resource type {0} does not exist")]
    ResourceTypeNotFound(String),
    #[error("Resource type {0} is still in use")]
    ResourceTypeInUse(String),
    #[error("Resource {0} already exists")]
    ResourceAlreadyExists(uuid::Uuid),
    #[error("Resource {0} does not exist")]
    ResourceNotFound(String),
    /// A value the resource cannot take (e.g. ended before it started).
    #[error("{0}")]
    InvalidResourceValue(String),
    #[error("Invalid value: `{value}' for field `{field}'")]
    QueryValueError { value: String, field: String },
    #[error("Resource type {resource_type} has no {attribute} attribute")]
    QueryAttributeError {
        resource_type: String,
        attribute: String,
    },
    #[error("{0}")]
    InvalidQuery(String),
    /// Something wrong in the index that no request caused (an unreadable row,
    /// a schema newer than this program): a 500 for the API.
    #[error("index backend error: {0}")]
    Backend(String),
    /// The database failed a statement or a connection: a 500 for the API. The
    /// driver's error is kept as the source.
    #[error("index backend error: {0}")]
    Database(#[from] sqlx::Error),
    /// A write of the group commit failed: every writer of the batch gets the
    /// same driver error, so it is shared rather than flattened to a string.
    #[error("index backend error: {0}")]
    SharedDatabase(#[source] std::sync::Arc<sqlx::Error>),
    /// A library failed on something the index stored or built (an id that
    /// does not parse, unreadable attributes, a statement the query builder
    /// refuses, a closed connection pool): a 500 for the API, with the
    /// library's error kept as the source.
    #[error("index backend error: {what}: {source}")]
    Internal {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The index database cannot be reached at start-up.
    #[error("cannot connect to the index at {url}: {source}")]
    Connect {
        /// Without its password.
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// A file or directory of the embedded index cannot be used.
    #[error("index backend error: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl IndexError {
    /// Whether the index itself failed (a 500), as opposed to a request it
    /// refused (not found, conflict, invalid query...).
    pub fn is_backend_failure(&self) -> bool {
        matches!(
            self,
            IndexError::Backend(_)
                | IndexError::Database(_)
                | IndexError::SharedDatabase(_)
                | IndexError::Internal { .. }
                | IndexError::Connect { .. }
                | IndexError::Io { .. }
        )
    }

    /// The index database could not be reached or gave no connection in time
    /// (refused or dropped connection, timeout, pool exhausted): the same
    /// request may succeed once it is back, so the API answers 503, not 500.
    pub fn is_unavailable(&self) -> bool {
        let sql = match self {
            IndexError::Database(e) | IndexError::Connect { source: e, .. } => e,
            IndexError::SharedDatabase(e) => e.as_ref(),
            _ => return false,
        };
        matches!(
            sql,
            sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::WorkerCrashed
        )
    }

    /// An [`IndexError::Internal`] keeping `source`.
    pub(crate) fn internal(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        IndexError::Internal {
            what: what.into(),
            source: Box::new(source),
        }
    }
}
