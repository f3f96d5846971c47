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
    /// Something no request caused; what it was is the source.
    #[error("internal error: {0}")]
    Internal(#[source] InternalError),
}

/// What went wrong inside the engine, never because of a request.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// `process_sack` could not take the sack's distributed lock.
    #[error("cannot lock sack {0}")]
    SackLock(u32),
    /// Work on the blocking pool panicked or was cancelled; the join error is
    /// the source.
    #[error("{0}")]
    Blocking(#[source] tokio::task::JoinError),
}

/// Errors of the coordination layer (membership and distributed sack locks).
///
/// Kept apart from [`EngineError`]: the engine never surfaces them to API
/// callers (a sack whose lock cannot be taken is skipped by metricd, and
/// `refresh=true` retries until its timeout, then answers `MetricLocked`);
/// they reach the operator through logs and through start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    /// `[DEFAULT] coordination_url` cannot be used. When a parser said why,
    /// its error is the source.
    #[error("invalid coordination URL {url:?}: {reason}")]
    InvalidUrl {
        /// Without its password.
        url: String,
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The Redis coordination backend failed (connection, timeout, script);
    /// the driver's error is the source.
    #[error("coordination (redis): {0}")]
    Redis(#[source] redis::RedisError),
    /// The PostgreSQL coordination backend failed (connection, query); the
    /// driver's error is the source.
    #[error("coordination (postgresql): {0}")]
    Postgres(#[source] sqlx::Error),
    /// The PostgreSQL coordination backend did not answer in time (`what`:
    /// "query" or "connection").
    #[error("coordination (postgresql): {what} timed out")]
    PostgresTimeout { what: &'static str },
    /// Every member key drawn was already held by another member.
    #[error("coordination (postgresql): no free member key after {tries} tries")]
    NoFreeMemberKey { tries: u32 },
    /// A member's processing statistics could not be encoded; the encoder's
    /// error is the source.
    #[error("coordination: cannot encode the statistics of member {member}: {source}")]
    Stats {
        member: String,
        #[source]
        source: serde_json::Error,
    },
    /// The operation needs a connection that is currently lost; the
    /// background task is reconnecting.
    #[error("coordination backend unavailable: {0}")]
    Unavailable(String),
}
