//! Coordination on PostgreSQL: session-level advisory locks on one dedicated
//! connection per process.
//!
//! - **Membership**: a process joins by taking the advisory lock
//!   `(GROUP_CLASS, member_key)` for its whole session, `member_key` a random
//!   positive `int4` (another one is drawn if taken). The live members are the
//!   granted advisory locks of that class in the current database, read from
//!   `pg_locks` (`locktype = 'advisory'`, `classid = GROUP_CLASS`, `objsubid = 2`
//!   for the two-key form, `objid = member_key`); a member's name is its key.
//! - **Sack locks**: `pg_try_advisory_lock(SACK_CLASS, sack)`, released by
//!   `pg_advisory_unlock`.
//! - **Statistics** (`/v1/status`): each metricd upserts its [`MemberStats`]
//!   as JSON every second into the unlogged table `gnocchi_processing_stats`
//!   (`member int8` = its key, `stats text`, `updated_at`), created by the
//!   first publication; rows older than a minute are deleted then. Only the
//!   rows of live members (per `pg_locks`) are read.
//!
//! Session-level locks belong to the connection: when a process dies its
//! connection closes and PostgreSQL drops its membership and its sack locks at
//! once, without any TTL. The flip side is that one session is shared by every
//! task of the process, so calls are serialised on it (each is one short query),
//! and that losing the connection loses every lock: the background task pings
//! the session every second, and on any connection error drops it, bumps an
//! epoch that invalidates every [`crate::coordination::SackLock`] taken on it
//! (their holders then release instead of commit), and reconnects with
//! exponential backoff (100 ms up to 10 s), joining the group again.
//!
//! The class constants are ASCII tags (`GnGp`, `GnSk`), unlikely to collide with
//! another application's advisory locks in the same database; both are
//! configurable ([`PgCoordinatorOptions`]).

use crate::coordination::{CoordResult, Coordinator, LockHandle, SackLock};
use crate::error::CoordinationError;
use crate::stats::MemberStats;
use async_trait::async_trait;
use parking_lot::Mutex;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Advisory lock class (first key) of group membership: ASCII `GnGp`.
pub const GROUP_CLASS: i32 = 0x476E_4770;
/// Advisory lock class (first key) of sack locks: ASCII `GnSk`.
pub const SACK_CLASS: i32 = 0x476E_536B;

const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Server-side limit on a silent session (see `Inner::open`): well above the
/// ping interval (at most a few seconds in any sane configuration).
const IDLE_SESSION_TIMEOUT: &str = "SET idle_session_timeout = '15s'";

/// The members' statistics (see the module documentation).
const CREATE_STATS: &str = "CREATE UNLOGGED TABLE IF NOT EXISTS gnocchi_processing_stats (\
     member int8 PRIMARY KEY, stats text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())";
const PUBLISH_STATS: &str = "INSERT INTO gnocchi_processing_stats (member, stats) VALUES ($1, $2) \
     ON CONFLICT (member) DO UPDATE SET stats = EXCLUDED.stats, updated_at = now()";
const FORGET_STATS: &str =
    "DELETE FROM gnocchi_processing_stats WHERE updated_at < now() - interval '1 minute'";
const READ_STATS: &str =
    "SELECT member, stats FROM gnocchi_processing_stats WHERE member = ANY($1)";
/// PostgreSQL's `undefined_table`: nobody published statistics yet.
const UNDEFINED_TABLE: &str = "42P01";

/// Tunables; the defaults suit production.
#[derive(Debug, Clone)]
pub struct PgCoordinatorOptions {
    pub group_class: i32,
    pub sack_class: i32,
    /// How often the background task checks the session.
    pub ping_interval: Duration,
    /// Longest a coordination query may take before the session is considered lost.
    pub query_timeout: Duration,
}

impl Default for PgCoordinatorOptions {
    fn default() -> Self {
        PgCoordinatorOptions {
            group_class: GROUP_CLASS,
            sack_class: SACK_CLASS,
            ping_interval: Duration::from_secs(1),
            query_timeout: Duration::from_secs(5),
        }
    }
}

/// Membership and sack locks on PostgreSQL advisory locks.
pub struct PgCoordinator {
    inner: Arc<Inner>,
    keeper: tokio::task::JoinHandle<()>,
}

struct Inner {
    connect: PgConnectOptions,
    opts: PgCoordinatorOptions,
    /// The dedicated session; `None` while lost (the keeper reconnects).
    conn: tokio::sync::Mutex<Option<PgConnection>>,
    /// Bumped whenever the session (and with it every lock) is lost.
    epoch: AtomicU64,
    /// Milliseconds since `origin` of the last successful query on the session.
    last_ok_ms: AtomicU64,
    origin: Instant,
    member_key: AtomicI32,
    joined: AtomicBool,
    /// Sacks locked on the current session (released by `leave`).
    held: Mutex<HashSet<u32>>,
    /// Whether the statistics table is known to exist.
    stats_table: AtomicBool,
}

fn pg_err(e: sqlx::Error) -> CoordinationError {
    CoordinationError::Postgres(e)
}

fn random_key() -> i32 {
    // Positive, so that pg_locks' unsigned `objid` shows the same number.
    (uuid::Uuid::new_v4().as_u128() as u32 & 0x7fff_ffff).max(1) as i32
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Whether the session answered recently enough to trust its locks.
    fn fresh(&self) -> bool {
        let stale = (self.opts.ping_interval * 3).as_millis() as u64;
        self.now_ms() < self.last_ok_ms.load(Ordering::Acquire) + stale
    }

    /// The session is gone: every lock taken on it is lost.
    fn lose(&self, slot: &mut Option<PgConnection>, why: &str) {
        if slot.take().is_some() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            self.held.lock().clear();
            tracing::error!(
                error = why,
                "coordination: PostgreSQL session lost; its locks are treated as lost, reconnecting"
            );
        }
    }

    /// Run one query on the session. A connection-level failure or a timeout
    /// drops the session; a database error (bad statement) keeps it.
    /// `pg_try_advisory_lock(class, key)` on the session: whether it was taken,
    /// and the session epoch it was taken in.
    async fn try_advisory_lock(&self, class: i32, key: i32) -> CoordResult<(bool, u64)> {
        self.query(move |c| {
            Box::pin(
                sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, $2)")
                    .bind(class)
                    .bind(key)
                    .fetch_one(c),
            )
        })
        .await
    }

    async fn query<T, F>(&self, q: F) -> CoordResult<(T, u64)>
    where
        F: for<'c> FnOnce(
            &'c mut PgConnection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'c>,
        >,
    {
        let mut slot = self.conn.lock().await;
        let epoch = self.epoch.load(Ordering::Acquire);
        let Some(conn) = slot.as_mut() else {
            return Err(CoordinationError::Unavailable(
                "PostgreSQL session lost, reconnecting".into(),
            ));
        };
        match tokio::time::timeout(self.opts.query_timeout, q(conn)).await {
            Ok(Ok(v)) => {
                self.last_ok_ms.store(self.now_ms(), Ordering::Release);
                Ok((v, epoch))
            }
            Ok(Err(e @ sqlx::Error::Database(_))) => Err(pg_err(e)),
            Ok(Err(e)) => {
                let msg = e.to_string();
                self.lose(&mut slot, &msg);
                Err(pg_err(e))
            }
            Err(_) => {
                self.lose(&mut slot, "query timed out");
                Err(CoordinationError::PostgresTimeout { what: "query" })
            }
        }
    }

    async fn open(&self) -> CoordResult<PgConnection> {
        let mut conn = match tokio::time::timeout(
            self.opts.query_timeout,
            PgConnection::connect_with(&self.connect),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(pg_err(e)),
            Err(_) => return Err(CoordinationError::PostgresTimeout { what: "connection" }),
        };
        // A dead man's switch on the server side (PostgreSQL 14+; older
        // servers refuse the setting, and keepalive alone applies): the
        // session is pinged every `ping_interval`, so a session silent for
        // much longer belongs to a process that is stuck or gone, and its
        // locks must not outlive it.
        if let Err(e) = sqlx::query(IDLE_SESSION_TIMEOUT).execute(&mut conn).await {
            tracing::debug!(error = %e, "idle_session_timeout not supported by this server");
        }
        Ok(conn)
    }

    /// Take the membership lock, drawing another key if ours is taken.
    async fn register(&self) -> CoordResult<()> {
        let class = self.opts.group_class;
        for _ in 0..16 {
            let key = self.member_key.load(Ordering::Acquire);
            let (ok, _) = self.try_advisory_lock(class, key).await?;
            if ok {
                return Ok(());
            }
            self.member_key.store(random_key(), Ordering::Release);
        }
        Err(CoordinationError::NoFreeMemberKey { tries: 16 })
    }

    async fn unlock_sack(&self, sack: u32, epoch: u64) -> CoordResult<()> {
        self.held.lock().remove(&sack);
        if self.epoch.load(Ordering::Acquire) != epoch {
            return Ok(()); // the session that held it is gone, and the lock with it
        }
        let class = self.opts.sack_class;
        let key = sack as i32;
        self.query(move |c| {
            Box::pin(
                sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1, $2)")
                    .bind(class)
                    .bind(key)
                    .fetch_one(c),
            )
        })
        .await
        .map(|_| ())
    }

    /// One round of the background task: reconnect (and rejoin) if the session
    /// is lost, else ping it. Returns whether the session is up.
    async fn tick(&self) -> bool {
        let connected = self.conn.lock().await.is_some();
        if connected {
            return self
                .query(|c| Box::pin(sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(c)))
                .await
                .is_ok();
        }
        let conn = match self.open().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "coordination: cannot reconnect to PostgreSQL; retrying");
                return false;
            }
        };
        *self.conn.lock().await = Some(conn);
        self.last_ok_ms.store(self.now_ms(), Ordering::Release);
        if self.joined.load(Ordering::Acquire)
            && let Err(e) = self.register().await
        {
            tracing::warn!(error = %e, "coordination: reconnected but cannot rejoin the group; retrying");
            return false;
        }
        tracing::info!(
            member = self.member_key.load(Ordering::Acquire),
            "coordination: PostgreSQL session re-established"
        );
        true
    }
}

impl PgCoordinator {
    /// Open the dedicated session on `url` (`postgresql://…`, a `+driver`
    /// suffix already removed, see [`crate::coordination::CoordinationUrl`]).
    pub async fn connect(url: &str, options: PgCoordinatorOptions) -> CoordResult<PgCoordinator> {
        let connect: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| crate::coordination::invalid_url_because(url, e))?;
        // The server frees a session's locks only once it notices the session
        // is gone: at once when the process dies (the socket closes), but a
        // host that vanishes is only noticed by TCP keepalive, which the
        // operating system's defaults leave to hours. Ask for ~11 s instead.
        let connect = connect.application_name("gnocchi-coordination").options([
            ("tcp_keepalives_idle", "5"),
            ("tcp_keepalives_interval", "2"),
            ("tcp_keepalives_count", "3"),
        ]);
        let origin = Instant::now();
        let inner = Arc::new(Inner {
            connect,
            opts: options,
            conn: tokio::sync::Mutex::new(None),
            epoch: AtomicU64::new(0),
            last_ok_ms: AtomicU64::new(0),
            origin,
            member_key: AtomicI32::new(random_key()),
            joined: AtomicBool::new(false),
            held: Mutex::new(HashSet::new()),
            stats_table: AtomicBool::new(false),
        });
        let conn = inner.open().await?;
        *inner.conn.lock().await = Some(conn);
        inner.last_ok_ms.store(inner.now_ms(), Ordering::Release);
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        let ping = inner.opts.ping_interval.max(Duration::from_millis(10));
        let keeper = tokio::spawn(async move {
            let mut pause = ping;
            loop {
                tokio::time::sleep(pause).await;
                let Some(inner) = weak.upgrade() else { return };
                pause = if inner.tick().await {
                    ping
                } else {
                    // Back off while the server is unreachable, from 100 ms.
                    (pause * 2).clamp(Duration::from_millis(100), MAX_BACKOFF)
                };
            }
        });
        Ok(PgCoordinator { inner, keeper })
    }

    /// Close the session without leaving, as a crash would: PostgreSQL frees
    /// the membership and every lock at once. The background task reconnects
    /// (and rejoins) unless the coordinator is dropped.
    pub async fn close_session(&self) {
        let mut slot = self.inner.conn.lock().await;
        self.inner.lose(&mut slot, "session closed");
    }
}

impl Drop for PgCoordinator {
    /// Like a process exit: the session closes and PostgreSQL frees the
    /// membership and every lock (locks still in flight become invalid).
    fn drop(&mut self) {
        self.keeper.abort();
        if let Ok(mut slot) = self.inner.conn.try_lock() {
            if slot.take().is_some() {
                self.inner.epoch.fetch_add(1, Ordering::AcqRel);
            }
        } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let inner = self.inner.clone();
            rt.spawn(async move {
                let mut slot = inner.conn.lock().await;
                if slot.take().is_some() {
                    inner.epoch.fetch_add(1, Ordering::AcqRel);
                }
            });
        }
    }
}

#[async_trait]
impl Coordinator for PgCoordinator {
    fn member_id(&self) -> String {
        self.inner.member_key.load(Ordering::Acquire).to_string()
    }

    fn is_distributed(&self) -> bool {
        true
    }

    async fn join(&self) -> CoordResult<()> {
        self.inner.joined.store(true, Ordering::Release);
        self.inner.register().await
    }

    async fn leave(&self) {
        self.inner.joined.store(false, Ordering::Release);
        // The session is dedicated to coordination: release everything on it
        // (membership and sack locks) in one call.
        let r = self
            .inner
            .query(|c| Box::pin(sqlx::query("SELECT pg_advisory_unlock_all()").execute(c)))
            .await;
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.held.lock().clear();
        if let Err(e) = r {
            tracing::warn!(error = %e, "coordination: cannot leave the group cleanly");
        }
    }

    async fn members(&self) -> CoordResult<Option<Vec<String>>> {
        let class = i64::from(self.inner.opts.group_class);
        let (keys, _) = self
            .inner
            .query(move |c| {
                Box::pin(
                    sqlx::query_scalar::<_, i64>(
                        "SELECT l.objid::int8 FROM pg_locks l \
                         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
                           AND l.classid::int8 = $1 \
                           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    )
                    .bind(class)
                    .fetch_all(c),
                )
            })
            .await?;
        let mut members: Vec<String> = keys.into_iter().map(|k| k.to_string()).collect();
        members.sort_unstable();
        members.dedup();
        Ok(Some(members))
    }

    async fn publish_stats(&self, stats: &MemberStats) -> CoordResult<()> {
        let member = self.inner.member_key.load(Ordering::Acquire);
        let json = serde_json::to_string(stats).map_err(|e| CoordinationError::Stats {
            member: member.to_string(),
            source: e,
        })?;
        if !self.inner.stats_table.load(Ordering::Acquire) {
            let created = self
                .inner
                .query(|c| Box::pin(sqlx::query(CREATE_STATS).execute(c)))
                .await;
            match created {
                Ok(_) => {}
                // Two members creating it at once: one loses on the catalog.
                Err(CoordinationError::Postgres(sqlx::Error::Database(e)))
                    if matches!(e.code().as_deref(), Some("23505" | "42P07")) => {}
                Err(e) => return Err(e),
            }
            self.inner.stats_table.store(true, Ordering::Release);
        }
        self.inner
            .query(move |c| {
                Box::pin(async move {
                    sqlx::query(PUBLISH_STATS)
                        .bind(i64::from(member))
                        .bind(json)
                        .execute(&mut *c)
                        .await?;
                    sqlx::query(FORGET_STATS).execute(&mut *c).await
                })
            })
            .await
            .map(|_| ())
    }

    async fn member_stats(&self) -> CoordResult<Option<BTreeMap<String, MemberStats>>> {
        let Some(members) = self.members().await? else {
            return Ok(None);
        };
        let keys: Vec<i64> = members.iter().filter_map(|m| m.parse().ok()).collect();
        let rows = self
            .inner
            .query(move |c| {
                Box::pin(
                    sqlx::query_as::<_, (i64, String)>(READ_STATS)
                        .bind(keys)
                        .fetch_all(c),
                )
            })
            .await;
        let rows = match rows {
            Ok((rows, _)) => rows,
            Err(CoordinationError::Postgres(sqlx::Error::Database(e)))
                if e.code().as_deref() == Some(UNDEFINED_TABLE) =>
            {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let mut out = BTreeMap::new();
        for (member, json) in rows {
            match serde_json::from_str(&json) {
                Ok(stats) => {
                    out.insert(member.to_string(), stats);
                }
                Err(e) => {
                    tracing::warn!(member, error = %e, "unreadable processing statistics, ignored")
                }
            }
        }
        Ok(Some(out))
    }

    async fn try_lock_sack(&self, sack: u32) -> CoordResult<Option<SackLock>> {
        let class = self.inner.opts.sack_class;
        // Sacks are < 65536, so the key always fits an int4.
        let key = sack as i32;
        let (ok, epoch) = self.inner.try_advisory_lock(class, key).await?;
        if !ok {
            return Ok(None);
        }
        self.inner.held.lock().insert(sack);
        Ok(Some(SackLock::new(
            sack,
            Box::new(PgLock {
                inner: self.inner.clone(),
                sack,
                epoch,
                released: false,
            }),
        )))
    }
}

struct PgLock {
    inner: Arc<Inner>,
    sack: u32,
    epoch: u64,
    released: bool,
}

#[async_trait]
impl LockHandle for PgLock {
    fn held(&self) -> bool {
        self.inner.epoch.load(Ordering::Acquire) == self.epoch && self.inner.fresh()
    }

    async fn unlock(mut self: Box<Self>) -> CoordResult<()> {
        self.released = true;
        self.inner.unlock_sack(self.sack, self.epoch).await
    }
}

impl Drop for PgLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Dropped without unlock (a cancelled task): release in the background.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (inner, sack, epoch) = (self.inner.clone(), self.sack, self.epoch);
            rt.spawn(async move {
                let _ = inner.unlock_sack(sack, epoch).await;
            });
        }
    }
}
