//! Coordination on Redis: membership in a sorted set, sack locks as expiring keys.
//!
//! # Keys (all under an optional namespace `P`, empty by default)
//!
//! - `P gnocchi-processing:members`: sorted set, member = process name, score =
//!   the time (Redis's own clock, in ms) at which the membership expires. A
//!   heartbeat every `member_ttl / 5` pushes the score to `now + member_ttl`;
//!   every read first drops the expired entries. Scoring by Redis's `TIME`
//!   inside the script, not by each process's clock, keeps members on machines
//!   with skewed clocks comparable. Listing is one `ZRANGE`, without scanning the
//!   keyspace (which holds one list per metric).
//! - `P gnocchi-processing:stats:<member>`: string, the member's
//!   [`MemberStats`] as JSON, written every second by its metricd with a TTL of
//!   `member_ttl` (at least 3 s): a dead member's vanish with its membership.
//!   Read for the live members only, with one `MGET`.
//! - `P gnocchi-sack-lock:<sack>`: string, value = a random token of the holder,
//!   set with `SET … NX PX lock_ttl`. Released by a compare-and-delete script and
//!   extended by a compare-and-`PEXPIRE` script, so a holder whose lock expired
//!   and was taken by someone else can neither release nor extend the new one.
//!
//! # Timings (defaults)
//!
//! `member_ttl` = `lock_ttl` = 5 s; the background task heartbeats and extends
//! every held lock (one script call for all) each second. A killed process stops
//! both: its locks are free after at most 5 s and it leaves the member list after
//! at most 5 s, so the survivors' next membership refresh rebalances its sacks.
//!
//! A lock counts as held ([`crate::coordination::SackLock::held`]) only while its
//! last successful extension is less than `lock_ttl / 2` old: if Redis is
//! unreachable for that long the holder stops trusting the lock before Redis can
//! give it to someone else, and releases its read instead of committing it.
//! The connection manager reconnects by itself; the background task logs when
//! Redis becomes unreachable and when it is back.

use crate::coordination::{CoordResult, Coordinator, GROUP, LockHandle, SackLock};
use crate::error::CoordinationError;
use crate::stats::{MemberStats, PUBLISH_EVERY};
use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// A coordination command that takes longer than this means Redis is in
/// trouble: fail fast, well within a lock's TTL, rather than wait.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// KEYS[1] = members set; ARGV = member, ttl ms, "1" to (re)register the member.
/// Returns the live members. `replicate_commands` lets Redis < 5 accept writes
/// after the non-deterministic `TIME` (a no-op from Redis 5 on).
const HEARTBEAT_LUA: &str = r"
pcall(redis.replicate_commands)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
";

/// KEYS = lock keys; ARGV[1] = ttl ms, ARGV[1 + i] = the token of KEYS[i].
/// Returns 1 per lock still ours (now extended), 0 per lock lost.
const EXTEND_LUA: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
";

/// KEYS[1] = lock key, ARGV[1] = token: delete only our own lock.
const UNLOCK_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Tunables; the defaults suit production (see the module documentation).
#[derive(Debug, Clone)]
pub struct RedisCoordinatorOptions {
    /// Prefix of every key (independent groups in one database, e.g. tests).
    pub namespace: String,
    /// A member that stops heartbeating leaves the group after this long.
    pub member_ttl: Duration,
    /// A lock that stops being extended is free after this long.
    pub lock_ttl: Duration,
}

impl Default for RedisCoordinatorOptions {
    fn default() -> Self {
        RedisCoordinatorOptions {
            namespace: String::new(),
            member_ttl: Duration::from_secs(5),
            lock_ttl: Duration::from_secs(5),
        }
    }
}

/// Membership and sack locks on Redis.
pub struct RedisCoordinator {
    inner: Arc<Inner>,
    keeper: tokio::task::JoinHandle<()>,
}

struct Inner {
    conn: ConnectionManager,
    member: String,
    members_key: String,
    /// `P gnocchi-processing:stats:`, followed by a member's name.
    stats_prefix: String,
    lock_prefix: String,
    member_ttl: Duration,
    lock_ttl: Duration,
    joined: AtomicBool,
    /// Locks held by this process, by lock key: the background task extends them.
    held: Mutex<HashMap<String, Arc<LockState>>>,
    /// Origin of the millisecond clock of [`LockState::valid_until_ms`].
    origin: Instant,
    /// Whether the last background round trip succeeded (to log transitions once).
    healthy: AtomicBool,
    heartbeat: redis::Script,
    extend: redis::Script,
    unlock: redis::Script,
}

struct LockState {
    key: String,
    token: String,
    /// Milliseconds since `origin` until which Redis keeps the lock for sure:
    /// the send time of the last successful `SET`/`PEXPIRE` plus the TTL.
    valid_until_ms: AtomicU64,
    lost: AtomicBool,
}

fn redis_err(e: redis::RedisError) -> CoordinationError {
    CoordinationError::Redis(e)
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn lock_key(&self, sack: u32) -> String {
        format!("{}{sack}", self.lock_prefix)
    }

    async fn heartbeat(&self, register: bool) -> CoordResult<Vec<String>> {
        let mut members: Vec<String> = self
            .heartbeat
            .key(&self.members_key)
            .arg(&self.member)
            .arg(self.member_ttl.as_millis() as u64)
            .arg(if register { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_err)?;
        members.sort_unstable();
        Ok(members)
    }

    /// Extend every held lock in one round trip; forget those found lost.
    async fn extend_all(&self) -> CoordResult<()> {
        let locks: Vec<Arc<LockState>> = self.held.lock().values().cloned().collect();
        if locks.is_empty() {
            return Ok(());
        }
        let sent = self.now_ms();
        let ttl = self.lock_ttl.as_millis() as u64;
        let mut inv = self.extend.prepare_invoke();
        inv.arg(ttl);
        for l in &locks {
            inv.key(&l.key).arg(&l.token);
        }
        let ok: Vec<i64> = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_err)?;
        for (l, ok) in locks.iter().zip(ok) {
            if ok == 1 {
                l.valid_until_ms.fetch_max(sent + ttl, Ordering::AcqRel);
            } else {
                l.lost.store(true, Ordering::Release);
                self.forget(l);
                tracing::warn!(lock = %l.key, "sack lock lost (expired and possibly taken by another worker)");
            }
        }
        Ok(())
    }

    /// Stop extending `lock` (if it is still the one registered under its key).
    fn forget(&self, lock: &Arc<LockState>) {
        let mut held = self.held.lock();
        if held.get(&lock.key).is_some_and(|l| Arc::ptr_eq(l, lock)) {
            held.remove(&lock.key);
        }
    }

    async fn release(&self, lock: &Arc<LockState>) -> CoordResult<()> {
        lock.lost.store(true, Ordering::Release);
        self.forget(lock);
        let _: i64 = self
            .unlock
            .key(&lock.key)
            .arg(&lock.token)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    /// One round of the background task: heartbeat, then extend the locks.
    async fn tick(&self) {
        let mut result = Ok(());
        if self.joined.load(Ordering::Acquire) {
            result = self.heartbeat(true).await.map(|_| ());
        }
        if result.is_ok() {
            result = self.extend_all().await;
        }
        match result {
            Ok(()) => {
                if !self.healthy.swap(true, Ordering::AcqRel) {
                    tracing::info!(member = %self.member, "coordination: Redis reachable again");
                }
            }
            Err(e) => {
                if self.healthy.swap(false, Ordering::AcqRel) {
                    tracing::error!(member = %self.member, error = %e,
                        "coordination: Redis unreachable; locks not extended in time are treated as lost, retrying");
                }
            }
        }
    }
}

impl RedisCoordinator {
    /// Connect to `url` (upstream or `redis` crate syntax) as `member`.
    pub async fn connect(
        url: &str,
        member: &str,
        options: RedisCoordinatorOptions,
    ) -> CoordResult<RedisCoordinator> {
        let client = gnocchi_storage::redis_url::client(url)
            .map_err(|e| crate::coordination::invalid_url_because(url, e))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(redis_err)?;
        let ns = &options.namespace;
        let inner = Arc::new(Inner {
            conn,
            member: member.to_string(),
            members_key: format!("{ns}{GROUP}:members"),
            stats_prefix: format!("{ns}{GROUP}:stats:"),
            lock_prefix: format!("{ns}gnocchi-sack-lock:"),
            member_ttl: options.member_ttl.max(Duration::from_millis(100)),
            lock_ttl: options.lock_ttl.max(Duration::from_millis(100)),
            joined: AtomicBool::new(false),
            held: Mutex::new(HashMap::new()),
            origin: Instant::now(),
            healthy: AtomicBool::new(true),
            heartbeat: redis::Script::new(HEARTBEAT_LUA),
            extend: redis::Script::new(EXTEND_LUA),
            unlock: redis::Script::new(UNLOCK_LUA),
        });
        let period = inner.member_ttl.min(inner.lock_ttl) / 5;
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        let keeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.tick().await;
            }
        });
        Ok(RedisCoordinator { inner, keeper })
    }
}

impl Drop for RedisCoordinator {
    /// Stop heartbeating and extending: like a killed process, the membership
    /// and the locks expire at their TTL (call [`Coordinator::leave`] first to
    /// free them at once).
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

#[async_trait]
impl Coordinator for RedisCoordinator {
    fn member_id(&self) -> String {
        self.inner.member.clone()
    }

    fn is_distributed(&self) -> bool {
        true
    }

    async fn join(&self) -> CoordResult<()> {
        self.inner.joined.store(true, Ordering::Release);
        self.inner.heartbeat(true).await.map(|_| ())
    }

    async fn leave(&self) {
        self.inner.joined.store(false, Ordering::Release);
        let zrem: redis::RedisResult<i64> = redis::cmd("ZREM")
            .arg(&self.inner.members_key)
            .arg(&self.inner.member)
            .query_async(&mut self.inner.conn.clone())
            .await;
        if let Err(e) = zrem {
            tracing::warn!(error = %e, "coordination: cannot leave the group; membership expires at its TTL");
        }
        let held: Vec<Arc<LockState>> = self.inner.held.lock().values().cloned().collect();
        for l in held {
            if let Err(e) = self.inner.release(&l).await {
                tracing::warn!(lock = %l.key, error = %e, "coordination: cannot release a lock; it expires at its TTL");
            }
        }
    }

    async fn members(&self) -> CoordResult<Option<Vec<String>>> {
        let joined = self.inner.joined.load(Ordering::Acquire);
        self.inner.heartbeat(joined).await.map(Some)
    }

    async fn publish_stats(&self, stats: &MemberStats) -> CoordResult<()> {
        let inner = &self.inner;
        let json = serde_json::to_string(stats).map_err(|e| CoordinationError::Stats {
            member: inner.member.clone(),
            source: e,
        })?;
        let ttl = inner.member_ttl.max(PUBLISH_EVERY * 3).as_millis() as u64;
        let key = format!("{}{}", inner.stats_prefix, inner.member);
        let () = redis::cmd("SET")
            .arg(key)
            .arg(json)
            .arg("PX")
            .arg(ttl)
            .query_async(&mut inner.conn.clone())
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn member_stats(&self) -> CoordResult<Option<BTreeMap<String, MemberStats>>> {
        let Some(members) = self.members().await? else {
            return Ok(None);
        };
        let mut out = BTreeMap::new();
        if members.is_empty() {
            return Ok(Some(out));
        }
        let inner = &self.inner;
        let keys: Vec<String> = members
            .iter()
            .map(|m| format!("{}{m}", inner.stats_prefix))
            .collect();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut inner.conn.clone())
            .await
            .map_err(redis_err)?;
        for (member, json) in members.into_iter().zip(values) {
            let Some(json) = json else { continue };
            match serde_json::from_str(&json) {
                Ok(stats) => {
                    out.insert(member, stats);
                }
                Err(e) => {
                    tracing::warn!(%member, error = %e, "unreadable processing statistics, ignored")
                }
            }
        }
        Ok(Some(out))
    }

    async fn try_lock_sack(&self, sack: u32) -> CoordResult<Option<SackLock>> {
        let inner = &self.inner;
        let key = inner.lock_key(sack);
        let token = format!("{}:{}", inner.member, uuid::Uuid::new_v4().simple());
        let ttl = inner.lock_ttl.as_millis() as u64;
        let sent = inner.now_ms();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl)
            .query_async(&mut inner.conn.clone())
            .await
            .map_err(redis_err)?;
        if set.is_none() {
            return Ok(None);
        }
        let state = Arc::new(LockState {
            key: key.clone(),
            token,
            valid_until_ms: AtomicU64::new(sent + ttl),
            lost: AtomicBool::new(false),
        });
        inner.held.lock().insert(key, state.clone());
        Ok(Some(SackLock::new(
            sack,
            Box::new(RedisLock {
                inner: inner.clone(),
                state,
                released: false,
            }),
        )))
    }
}

struct RedisLock {
    inner: Arc<Inner>,
    state: Arc<LockState>,
    released: bool,
}

#[async_trait]
impl LockHandle for RedisLock {
    fn held(&self) -> bool {
        if self.state.lost.load(Ordering::Acquire) {
            return false;
        }
        // Trust the lock only while more than half its TTL remains.
        let margin = self.inner.lock_ttl.as_millis() as u64 / 2;
        self.inner.now_ms() + margin < self.state.valid_until_ms.load(Ordering::Acquire)
    }

    async fn unlock(mut self: Box<Self>) -> CoordResult<()> {
        self.released = true;
        self.inner.release(&self.state).await
    }
}

impl Drop for RedisLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Dropped without unlock (a cancelled task): stop extending it and
        // release it in the background; failing that, it expires at its TTL.
        self.inner.forget(&self.state);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (inner, state) = (self.inner.clone(), self.state.clone());
            rt.spawn(async move {
                let _ = inner.release(&state).await;
            });
        }
    }
}
