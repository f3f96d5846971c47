//! Errors of the engine.

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Index(#[from] gnocchi_index::IndexError),
    #[error(transparent)]
    Storage(#[from] gnocchi_storage::StorageError),
    /// `refresh=true` could not get the sack lock in time.
    #[error("Unable to refresh metric: {0}. Metric is locked. Please try again.")]
    MetricLocked(uuid::Uuid),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Errors of the coordination layer (membership and distributed sack locks).
///
/// Kept apart from [`EngineError`]: the engine never surfaces them to API
/// callers (a sack whose lock cannot be taken is skipped by metricd, and
/// `refresh=true` retries until its timeout, then answers `MetricLocked`);
/// they reach the operator through logs and through start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    /// `[DEFAULT] coordination_url` cannot be used.
    #[error("invalid coordination URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The Redis coordination backend failed (connection, timeout, script).
    #[error("coordination (redis): {0}")]
    Redis(String),
    /// The PostgreSQL coordination backend failed (connection, timeout, query).
    #[error("coordination (postgresql): {0}")]
    Postgres(String),
    /// The operation needs a connection that is currently lost; the
    /// background task is reconnecting.
    #[error("coordination backend unavailable: {0}")]
    Unavailable(String),
}
