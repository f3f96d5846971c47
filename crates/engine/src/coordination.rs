//! Coordination of metricd processes: group membership and distributed sack locks.
//!
//! Upstream Gnocchi coordinates its workers with tooz: every metricd joins the
//! group `gnocchi-processing`, a consistent hash ring over the live members tells
//! each worker which sacks are its own ([`crate::hashring`]), and a worker takes a
//! sack's lock before it reads the sack and keeps it until the measures it read
//! are deleted. The lock is what makes processing correct (two workers committing
//! the same read of a Redis sack would trim measures that were never processed);
//! the ring only spreads the work so that workers rarely contend for a lock.
//!
//! [`Coordinator`] is that contract, object-safe so the engine holds an
//! `Arc<dyn Coordinator>`:
//!
//! - [`InProcessCoordinator`]: the embedded default. One member, no membership
//!   information (every sack is ours) and locks that always succeed without any
//!   allocation or I/O: the engine's per-sack mutex already serialises the sack
//!   within the process, and no other process shares the data directory.
//! - [`crate::coordination_redis::RedisCoordinator`]: members in a sorted set
//!   scored by expiry, locks as `SET NX PX` keys extended while held.
//! - [`crate::coordination_pg::PgCoordinator`]: session-level advisory locks on
//!   one dedicated connection; a dead process leaves the moment its connection
//!   closes.
//!
//! A lock is a [`SackLock`]. Its holder checks [`SackLock::held`] right before
//! committing what it read from the sack: a lock that might have expired (the
//! backend was unreachable for too long) means another worker may be reading the
//! same measures, so the holder releases its read instead of deleting it, and the
//! measures are processed again later (processing is idempotent).

pub use crate::error::CoordinationError;
use crate::stats::MemberStats;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub type CoordResult<T> = std::result::Result<T, CoordinationError>;

/// The group metricd processes join (upstream's name).
pub const GROUP: &str = "gnocchi-processing";

/// Membership and sack locks shared by the metricd (and API) processes.
#[async_trait]
pub trait Coordinator: Send + Sync + 'static {
    /// This process's name in the group (the name the hash ring uses).
    fn member_id(&self) -> String;
    /// Whether other processes can share the sacks. `false` for the in-process
    /// coordinator: the engine then skips the ring and membership entirely.
    fn is_distributed(&self) -> bool;
    /// Join the processing group and keep the membership alive (a background
    /// heartbeat) until [`Coordinator::leave`] or the coordinator is dropped.
    /// Only processes that process sacks join; others only take locks.
    async fn join(&self) -> CoordResult<()>;
    /// Leave the group and release every lock still held (graceful shutdown).
    async fn leave(&self);
    /// The live members of the group, sorted, or `None` when this coordinator
    /// has no membership information (then every sack is ours).
    async fn members(&self) -> CoordResult<Option<Vec<String>>>;
    /// Take the lock of `sack` without waiting: `None` if someone else holds it.
    async fn try_lock_sack(&self, sack: u32) -> CoordResult<Option<SackLock>>;
    /// Publish this member's processing statistics for the other processes
    /// (`/v1/status`); they vanish with the membership. A coordinator
    /// without membership keeps nothing (the engine's own are read instead).
    async fn publish_stats(&self, _stats: &MemberStats) -> CoordResult<()> {
        Ok(())
    }
    /// The statistics the live members published, by member (a member that
    /// published none yet is absent), or `None` when this coordinator has no
    /// membership information.
    async fn member_stats(&self) -> CoordResult<Option<BTreeMap<String, MemberStats>>> {
        Ok(None)
    }
}

/// A backend's hold on one sack lock.
#[async_trait]
pub trait LockHandle: Send + Sync {
    /// Whether the lock is still certainly ours (see [`SackLock::held`]).
    fn held(&self) -> bool;
    /// Release the lock. Dropping a handle without calling this also releases
    /// it, in the background (or at the backend's TTL at worst).
    async fn unlock(self: Box<Self>) -> CoordResult<()>;
}

/// A distributed sack lock, held until [`SackLock::unlock`] or drop.
pub struct SackLock {
    sack: u32,
    /// `None` for the in-process coordinator: nothing to release, always held.
    handle: Option<Box<dyn LockHandle>>,
}

impl SackLock {
    /// The lock of the in-process coordinator: no backend, always held.
    pub fn local(sack: u32) -> SackLock {
        SackLock { sack, handle: None }
    }

    pub fn new(sack: u32, handle: Box<dyn LockHandle>) -> SackLock {
        SackLock {
            sack,
            handle: Some(handle),
        }
    }

    pub fn sack(&self) -> u32 {
        self.sack
    }

    /// Whether this is an in-process lock (nothing to extend or release).
    pub fn is_local(&self) -> bool {
        self.handle.is_none()
    }

    /// Whether the lock is still certainly ours, with a safety margin: false as
    /// soon as the backend could have let it go (TTL not extended in time,
    /// session lost). Checked before deleting measures read under the lock.
    pub fn held(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.held())
    }

    pub async fn unlock(mut self) -> CoordResult<()> {
        match self.handle.take() {
            Some(h) => h.unlock().await,
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for SackLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SackLock")
            .field("sack", &self.sack)
            .field("distributed", &self.handle.is_some())
            .finish()
    }
}

/// Take `sack`'s lock, retrying with a growing pause while someone else holds
/// it or the backend fails, until `deadline` (`None`: no deadline).
pub async fn lock_sack_until(
    coordinator: &dyn Coordinator,
    sack: u32,
    deadline: Option<Instant>,
) -> Option<SackLock> {
    let mut pause = Duration::from_millis(10);
    loop {
        match coordinator.try_lock_sack(sack).await {
            Ok(Some(lock)) => return Some(lock),
            Ok(None) => {}
            Err(e) => tracing::warn!(sack, error = %e, "cannot take the sack lock; retrying"),
        }
        let wait = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                pause.min(d - now)
            }
            None => pause,
        };
        tokio::time::sleep(wait).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// The embedded default: this process is the only worker.
#[derive(Debug, Default)]
pub struct InProcessCoordinator;

impl InProcessCoordinator {
    pub fn new() -> InProcessCoordinator {
        InProcessCoordinator
    }
}

#[async_trait]
impl Coordinator for InProcessCoordinator {
    fn member_id(&self) -> String {
        "local".to_string()
    }

    fn is_distributed(&self) -> bool {
        false
    }

    async fn join(&self) -> CoordResult<()> {
        Ok(())
    }

    async fn leave(&self) {}

    async fn members(&self) -> CoordResult<Option<Vec<String>>> {
        Ok(None)
    }

    async fn try_lock_sack(&self, sack: u32) -> CoordResult<Option<SackLock>> {
        Ok(Some(SackLock::local(sack)))
    }
}

/// A parsed `[DEFAULT] coordination_url` (tooz's URL forms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinationUrl {
    /// `redis://…` in upstream's or the `redis` crate's syntax.
    Redis(String),
    /// `postgresql://…`, the `+driver` suffix (`+psycopg2`) removed.
    Postgres(String),
}

impl CoordinationUrl {
    /// Parse a tooz URL. tooz picks its driver from the scheme and ignores a
    /// `+driver` suffix meant for SQLAlchemy-style URLs, so we strip it too.
    pub fn parse(url: &str) -> CoordResult<CoordinationUrl> {
        let invalid = |reason: String| CoordinationError::InvalidUrl {
            url: redact(url),
            reason,
            source: None,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid("expected scheme://…".into()));
        };
        let scheme = scheme.to_ascii_lowercase();
        // `redis+unix` is the redis crate's Unix socket scheme, not a driver suffix.
        if scheme == "redis+unix" || scheme == "unix" {
            return Self::redis(url).map_err(|e| invalid_url_because(url, e));
        }
        let base = scheme.split('+').next().unwrap_or_default();
        match base {
            "redis" => {
                Self::redis(&format!("redis://{rest}")).map_err(|e| invalid_url_because(url, e))
            }
            "postgresql" | "postgres" => {
                let pg_url = format!("postgresql://{rest}");
                pg_url
                    .parse::<sqlx::postgres::PgConnectOptions>()
                    .map_err(|e| invalid_url_because(url, e))?;
                Ok(CoordinationUrl::Postgres(pg_url))
            }
            "mysql" => Err(invalid(
                "MySQL coordination is not supported; use redis:// or postgresql://".into(),
            )),
            other => Err(invalid(format!(
                "unsupported coordination backend `{other}' (supported: redis, postgresql)"
            ))),
        }
    }

    fn redis(url: &str) -> gnocchi_storage::Result<CoordinationUrl> {
        gnocchi_storage::redis_url::normalize(url)?;
        Ok(CoordinationUrl::Redis(url.to_string()))
    }
}

impl std::fmt::Display for CoordinationUrl {
    /// The URL with any password hidden, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoordinationUrl::Redis(u) | CoordinationUrl::Postgres(u) => f.write_str(&redact(u)),
        }
    }
}

/// `url` cannot be used, as `e` (a parser's or a driver's error) says; `e`
/// is kept as the source.
pub(crate) fn invalid_url_because(
    url: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> CoordinationError {
    CoordinationError::InvalidUrl {
        url: redact(url),
        reason: e.to_string(),
        source: Some(Box::new(e)),
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`, and
/// `password=`/`pass=` query values hidden: URLs end up in logs and errors.
pub(crate) fn redact(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
                    None => head.to_string(),
                },
                None => head.to_string(),
            }
        }
        None => head.to_string(),
    };
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k == "password" || k == "pass" => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tooz_urls_are_parsed() {
        assert_eq!(
            CoordinationUrl::parse("redis://127.0.0.1:6379/?db=3").unwrap(),
            CoordinationUrl::Redis("redis://127.0.0.1:6379/?db=3".into())
        );
        assert_eq!(
            CoordinationUrl::parse("postgresql+psycopg2://u:p@h:5432/gnocchi").unwrap(),
            CoordinationUrl::Postgres("postgresql://u:p@h:5432/gnocchi".into())
        );
        assert_eq!(
            CoordinationUrl::parse("postgres://h/db").unwrap(),
            CoordinationUrl::Postgres("postgresql://h/db".into())
        );
        assert!(matches!(
            CoordinationUrl::parse("redis:///var/run/redis.sock?db=1"),
            Ok(CoordinationUrl::Redis(_))
        ));
        for bad in [
            "zookeeper://h:2181",
            "mysql://root@h/gnocchi",
            "nonsense",
            "redis://h:1/x",
        ] {
            assert!(CoordinationUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_reach_messages() {
        let e = CoordinationUrl::parse("zookeeper://u:topsecret@h/x").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
        let u = CoordinationUrl::parse("postgresql://u:topsecret@h/x?password=again").unwrap();
        let shown = u.to_string();
        assert!(
            !shown.contains("topsecret") && !shown.contains("again"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn in_process_locks_always_succeed() {
        let c = InProcessCoordinator::new();
        assert_eq!(c.members().await.unwrap(), None);
        let a = c.try_lock_sack(3).await.unwrap().unwrap();
        let b = c.try_lock_sack(3).await.unwrap().unwrap();
        assert!(a.held() && b.held());
        a.unlock().await.unwrap();
        b.unlock().await.unwrap();
    }
}
