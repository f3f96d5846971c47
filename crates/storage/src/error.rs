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
    /// A librados call failed (`[storage]`/`[incoming] driver = ceph`); the
    /// errno, as an I/O error, is the source.
    #[error("storage backend error: ceph: {what}: {source}")]
    Ceph {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The S3 object store failed; the driver's error is the source.
    #[error("storage backend error: s3: {0}")]
    S3(#[source] object_store::Error),
    /// The embedded aggregates database (redb) failed; its error is the source.
    #[error("storage backend error: redb: {0}")]
    Redb(#[source] Box<redb::Error>),
    /// The incoming log could not be written or synced; the I/O error (shared
    /// by every request of the group that failed) is the source.
    #[error("storage backend error: {what}: {source}")]
    IncomingLog {
        what: String,
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    /// The S3 bucket could neither be listed nor created: the HTTP request
    /// creating it failed; reqwest's error is the source.
    #[error("storage backend error: s3: creating bucket {bucket}: {source}")]
    S3CreateBucket {
        bucket: String,
        #[source]
        source: reqwest::Error,
    },
    /// A request to Swift or to its auth service could not be sent, or its
    /// answer not read (connection, timeout, TLS); reqwest's error is the source.
    #[error("storage backend error: swift: {what}: {source}")]
    Swift {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// Swift or its auth service answered with an unexpected status.
    #[error("storage backend error: swift: {request} {target}: HTTP {status}{detail}")]
    SwiftStatus {
        /// `PUT`, `GET`, `bulk-delete`, `login`...
        request: String,
        /// The container (and object) or URL.
        target: String,
        status: u16,
        /// `: <what the body says>`, or empty.
        detail: String,
    },
    /// `[incoming] redis_url` / `[storage] redis_url` cannot be used; the URL
    /// parser's or the Redis client's error, when one says why, is the source.
    #[error("storage backend error: invalid redis URL {url:?}: {reason}")]
    InvalidRedisUrl {
        /// Without its password.
        url: String,
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A storage call on the blocking pool panicked or was cancelled; the
    /// join error is the source.
    #[error("storage backend error: storage task failed: {0}")]
    TaskFailed(#[source] tokio::task::JoinError),
    #[error("storage data corrupt: {0}")]
    Corrupt(String),
    /// A JSON file of the storage (the incoming log's `config.json`) is
    /// unreadable; serde_json's error is the source.
    #[error("storage data corrupt: {path}: {source}")]
    CorruptFile {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("data directory {0} is used by another gnocchid process")]
    Locked(String),
}
