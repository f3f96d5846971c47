//! Errors of the storage drivers.

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("storage data corrupt: {0}")]
    Corrupt(String),
    #[error("data directory {0} is used by another gnocchid process")]
    Locked(String),
}
