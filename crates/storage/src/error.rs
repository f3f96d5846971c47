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

impl StorageError {
    /// The backend could not be reached, or answered that it cannot serve now
    /// (connection refused or dropped, timeout, HTTP 502/503/504): the same
    /// request may succeed once it is back. The API answers such errors with
    /// 503 rather than 500, and metricd retries them on its next pass.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StorageError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_refusal()
                    || e.is_connection_dropped()
                    || e.is_timeout()
            }
            StorageError::SwiftStatus { status, .. } => matches!(status, 502..=504),
            StorageError::Io(_) | StorageError::IncomingLog { .. } => false,
            other => transport_failure(other),
        }
    }
}

/// Whether `err`, or an error it was caused by, is a failure to reach a
/// server: a refused, reset or dropped connection, or a timeout (at the
/// socket, or in the HTTP clients of the S3 and Swift drivers).
fn transport_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::*;
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | BrokenPipe
                    | TimedOut
                    | UnexpectedEof
                    | HostUnreachable
                    | NetworkUnreachable
            )
        {
            return true;
        }
        if let Some(r) = e.downcast_ref::<reqwest::Error>()
            && (r.is_connect() || r.is_timeout())
        {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_backends_are_unavailable_not_internal() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let ceph = StorageError::Ceph {
            what: "reading".into(),
            source: std::io::Error::from_raw_os_error(110), // ETIMEDOUT
        };
        assert!(ceph.is_unavailable());
        assert!(
            StorageError::Redis(redis::RedisError::from(refused)).is_unavailable(),
            "a refused Redis connection"
        );
        let swift = |status| StorageError::SwiftStatus {
            request: "PUT".into(),
            target: "c/o".into(),
            status,
            detail: String::new(),
        };
        assert!(swift(503).is_unavailable());
        assert!(!swift(404).is_unavailable());
        assert!(!StorageError::Corrupt("bad split".into()).is_unavailable());
        // A local disk failure is not a backend that comes back.
        let disk = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert!(!StorageError::Io(disk).is_unavailable());
    }
}
