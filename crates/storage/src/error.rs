//! Errors of the storage drivers.

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage backend error: {0}")]
    Backend(String),
    /// Redis failed (connection, timeout, command); the driver's error is the source.
    #[error("storage backend error: redis: {0}")]
    Redis(#[source] redis::RedisError),
    /// The S3 object store failed; the driver's error is the source.
    #[error("storage backend error: s3: {0}")]
    S3(#[source] object_store::Error),
    /// The embedded aggregates database (redb) failed; its error is the source.
    #[error("storage backend error: redb: {0}")]
    Redb(#[source] Box<redb::Error>),
    #[error("storage data corrupt: {0}")]
    Corrupt(String),
    #[error("data directory {0} is used by another gnocchid process")]
    Locked(String),
}
