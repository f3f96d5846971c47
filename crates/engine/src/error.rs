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
