//! Incoming store on Redis, for deployments with several API and metricd processes.
//!
//! # Keys (all under an optional key prefix `P`, empty by default)
//!
//! - `P gnocchi-config`: hash, field `sacks` = the number of sacks `N`. Written
//!   with `HSETNX` by the first [`RedisIncoming::connect`]; the stored value wins
//!   over the one passed later, as upstream's `gnocchi-config`. Only
//!   [`RedisIncoming::change_sacks`] (`gnocchid change-sack-size`) changes it.
//! - `P incoming<N>-<s>:<metric uuid>`: list, one element per request that
//!   brought measures for that metric (upstream's layout): packed 16-byte records
//!   `(i64 ns timestamp, f64 value)`, little-endian.
//! - `P incoming<N>-<s>`: hash, the **sack index**: field = metric uuid of every
//!   list of the sack with pending data, value = its number of pending measures.
//! - `P gnocchi-sack-arrival<N>`: hash, when (Redis's clock, ms) the oldest
//!   pending measure of each sack arrived: field `P incoming<N>-<s>` is set by
//!   the first `add_measures` into an empty sack, `take` moves it to field
//!   `P incoming<N>-<s>:taken` and `commit` deletes that one. It feeds the
//!   backlog's [`Backlog::oldest_pending`] (upstream's metricd, which does not
//!   know this hash, leaves it stale if it processes these sacks).
//!
//! Upstream finds a sack's lists with `KEYS incoming<N>-<s>:*`, which walks the
//! whole keyspace and blocks Redis meanwhile (SCAN would not block but costs a
//! round trip per page). The sack index costs one `HINCRBY` per metric per
//! request, in the same transaction as the `RPUSH`, and makes `take`
//! O(metrics in the sack) in one round trip; its counts give the backlog's
//! measure count without reading any measure.
//!
//! # Operations and round trips
//!
//! - `add_measures`: one `EVALSHA` per request of a script that checks that the
//!   stored sack count is still this process's, then per metric one `RPUSH` and
//!   one `HINCRBY`, per touched sack one `PUBLISH`, atomically. When it returns
//!   the measures are in Redis, as durable as Redis's persistence settings make
//!   them (`appendonly yes` with `appendfsync always` for the guarantee the local
//!   store gives; `everysec` loses at most a second on power loss).
//!   A process started before a [`RedisIncoming::change_sacks`] gets an error
//!   instead of writing into sacks nobody reads any more.
//! - `take`: one `EVALSHA` of a script that reads the sack index and `LRANGE`s
//!   every listed metric; the number of list elements and measures read per
//!   metric is remembered in the lease.
//! - `commit`: one `EVALSHA` that `LTRIM`s exactly the elements read (measures
//!   pushed meanwhile stay), decrements the index counts and drops the index
//!   entries of emptied lists.
//! - `release`: no round trip: nothing was removed from Redis.
//! - `backlog`: one `EVALSHA` over every sack index (`LLEN` per metric).
//! - `wait_for_new`: `add_measures` publishes an empty message on the channel
//!   named after each sack it touched (`P incoming<N>-<s>`); a background task
//!   (started by the first call) holds one subscription to the `N` channels and
//!   wakes waiters at once. After each (re)subscription it checks which sack
//!   indexes exist, so messages missed while disconnected are not lost; the
//!   timeout remains the fallback.
//!
//! The first `EVALSHA` of a script on a server that does not know it yet costs
//! two more round trips (`SCRIPT LOAD`, retry).
//!
//! # Leases
//!
//! Within one process a sack is leased to one `take` at a time (a second `take`
//! returns an empty [`SackMeasures`] with token 0), as with the local store; the
//! lease lasts until the commit's trim is done, and a `take` or `commit` whose
//! future is dropped half-way ends its lease (`crate::lease`).
//! Across processes, metricd's sack locks make sure that one worker at a time
//! processes a sack: two processes committing the same read would trim twice.
//! A crashed worker's measures simply stay in Redis and are read again.
//!
//! # The parts
//!
//! `scripts` (the Lua scripts), `codec` (measure records and script
//! replies), `wake` (the notification
//! subscription), `change_sacks` (changing the stored number of sacks); this
//! file holds the store, its connection and the [`Incoming`] calls.

mod change_sacks;
mod codec;
mod scripts;
mod wake;

use self::codec::{array_of, bytes_of, encode, int_of, parse_take, unexpected};
use self::scripts::{ADD_LUA, BACKLOG_LUA, COMMIT_LUA, TAKE_LUA};
use self::wake::{Dirty, Wake};
use crate::lease::{Leases, empty};
use crate::redis_url::{backend, client, manager};
use crate::{Backlog, Incoming, MeasureBatch, Result, SackMeasures, StorageError, sack_of};
use async_trait::async_trait;
use parking_lot::Mutex;
use redis::Value;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use uuid::Uuid;

/// The incoming store of scale-out deployments: sacks in Redis.
pub struct RedisIncoming {
    client: redis::Client,
    conn: ConnectionManager,
    nsacks: u32,
    /// `P gnocchi-config`.
    config_key: String,
    /// `P incoming<N>-`: sack `s` is named `{sack_prefix}{s}`.
    sack_prefix: String,
    /// `P gnocchi-sack-arrival<N>`: the sacks' oldest arrival times.
    arrival_key: String,
    /// Per sack leased: per metric id as stored, list elements and measures read.
    leases: Leases<Vec<(String, u64, u64)>>,
    wake: Arc<Wake>,
    subscriber: Mutex<Option<tokio::task::JoinHandle<()>>>,
    add_script: redis::Script,
    take_script: redis::Script,
    commit_script: redis::Script,
    backlog_script: redis::Script,
}

impl RedisIncoming {
    /// Connect to the Redis at `url` (upstream's `[incoming] redis_url` syntax, see
    /// [`crate::redis_url`]), with `sacks` sacks unless the server already stores
    /// a sack count.
    pub async fn connect(url: &str, sacks: u32) -> Result<Self> {
        Self::connect_with_prefix(url, sacks, "").await
    }

    /// As [`RedisIncoming::connect`], with every key and channel name prefixed by
    /// `prefix` (several independent stores in one Redis database, e.g. tests).
    pub async fn connect_with_prefix(url: &str, sacks: u32, prefix: &str) -> Result<Self> {
        crate::check_sack_count(sacks)?;
        let client = client(url)?;
        let mut conn = manager(&client).await?;
        let config = format!("{prefix}gnocchi-config");
        let (stored,): (String,) = redis::pipe()
            .hset_nx(&config, "sacks", sacks)
            .ignore()
            .hget(&config, "sacks")
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let nsacks = stored
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=crate::MAX_SACKS).contains(n))
            .ok_or_else(|| StorageError::Corrupt(format!("{config} field sacks is {stored:?}")))?;
        // Best effort (CONFIG may be disabled): say when Redis itself would
        // lose acknowledged measures on a restart.
        let aof: redis::RedisResult<HashMap<String, String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query_async(&mut conn)
            .await;
        if let Ok(aof) = aof
            && aof.get("appendonly").map(String::as_str) == Some("no")
        {
            tracing::warn!(
                "Redis runs without appendonly: measures acknowledged since its last snapshot are lost if Redis restarts"
            );
        }
        if nsacks != sacks {
            tracing::info!(
                stored = nsacks,
                asked = sacks,
                "using the sack count stored in Redis"
            );
        }
        Ok(RedisIncoming {
            client,
            conn,
            nsacks,
            config_key: config,
            sack_prefix: format!("{prefix}incoming{nsacks}-"),
            arrival_key: format!("{prefix}gnocchi-sack-arrival{nsacks}"),
            leases: Leases::new(),
            wake: Arc::new(Wake {
                dirty: Mutex::new(Dirty {
                    flags: vec![false; nsacks as usize],
                    list: Vec::new(),
                }),
                notify: Notify::new(),
            }),
            subscriber: Mutex::new(None),
            add_script: redis::Script::new(ADD_LUA),
            take_script: redis::Script::new(TAKE_LUA),
            commit_script: redis::Script::new(COMMIT_LUA),
            backlog_script: redis::Script::new(BACKLOG_LUA),
        })
    }

    /// Name of sack `s`: its index key and its notification channel.
    fn sack_name(&self, s: u32) -> String {
        format!("{}{s}", self.sack_prefix)
    }

    fn check_sack(&self, sack: u32) -> Result<()> {
        if sack < self.nsacks {
            Ok(())
        } else {
            Err(bad_sack(sack))
        }
    }
}

/// The sacks' arrival times of the backlog reply, `{sack, ms, ...}` on
/// Redis's clock (`now`), as times on this machine's clock: a clock skew
/// between Redis and this process does not change the ages.
fn arrival_times(now: &Value, flat: Vec<Value>) -> Result<HashMap<u32, SystemTime>> {
    let now = int_of(now, "backlog")?;
    let here = SystemTime::now();
    let mut out = HashMap::new();
    for pair in flat.chunks(2) {
        let [sack, at] = pair else {
            return Err(StorageError::Backend(
                "redis: truncated backlog reply".into(),
            ));
        };
        let sack =
            u32::try_from(int_of(sack, "backlog")?).map_err(|_| unexpected("backlog", sack))?;
        let age = Duration::from_millis(now.saturating_sub(int_of(at, "backlog")?).max(0) as u64);
        out.insert(sack, here.checked_sub(age).unwrap_or(here));
    }
    Ok(out)
}

fn bad_sack(sack: u32) -> StorageError {
    StorageError::Backend(format!("no sack {sack}"))
}

impl Drop for RedisIncoming {
    fn drop(&mut self) {
        if let Some(h) = self.subscriber.lock().take() {
            h.abort();
        }
    }
}

#[async_trait]
impl Incoming for RedisIncoming {
    fn sacks(&self) -> u32 {
        self.nsacks
    }

    async fn add_measures(&self, batch: MeasureBatch) -> Result<()> {
        let metrics = batch.iter().filter(|(_, p)| !p.is_empty()).count();
        if metrics == 0 {
            return Ok(());
        }
        let mut inv = self.add_script.key(&self.config_key);
        inv.key(&self.arrival_key);
        inv.arg(self.nsacks).arg(metrics);
        let mut touched = vec![false; self.nsacks as usize];
        let mut buf = Vec::new();
        for (metric, points) in &batch {
            if points.is_empty() {
                continue;
            }
            let s = sack_of(*metric, self.nsacks);
            touched[s as usize] = true;
            buf.clear();
            encode(points, &mut buf);
            inv.arg(self.sack_name(s))
                .arg(metric.hyphenated().to_string())
                .arg(buf.as_slice())
                .arg(points.len() as u64);
        }
        for (s, _) in touched.iter().enumerate().filter(|(_, t)| **t) {
            inv.arg(self.sack_name(s as u32));
        }
        let reply: Value = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        match reply {
            Value::Int(0) => Ok(()),
            Value::BulkString(stored) => Err(StorageError::Backend(format!(
                "the number of sacks stored in Redis is now {}, this process uses {}: restart it (gnocchid change-sack-size was run)",
                String::from_utf8_lossy(&stored),
                self.nsacks
            ))),
            v => Err(unexpected("add measures", &v)),
        }
    }

    async fn take(&self, sack: u32) -> Result<SackMeasures> {
        self.check_sack(sack)?;
        let Some(guard) = self.leases.begin(sack) else {
            return Ok(empty(sack));
        };
        let name = self.sack_name(sack);
        let reply: Result<Value> = self
            .take_script
            .key(&name)
            .key(&self.arrival_key)
            .arg(format!("{name}:"))
            .arg(&name)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend);
        let (measures, read) = reply.and_then(|v| parse_take(v, &name))?;
        if read.is_empty() {
            // Nothing pending: no lease (the guard ends it).
            return Ok(empty(sack));
        }
        Ok(guard.finish(read, measures))
    }

    async fn commit(&self, taken: SackMeasures) -> Result<()> {
        // The sack stays leased until the trim is done, so that no `take` of
        // this process reads what is being trimmed; the guard ends the lease
        // however the commit ends. On failure the measures are still in Redis
        // (or trimmed, if only the reply was lost): the next take reads what remains.
        let Some((read, _lease)) = self.leases.start_commit(&taken)? else {
            return Ok(());
        };
        let name = self.sack_name(taken.sack);
        let mut inv = self.commit_script.key(&name);
        inv.key(&self.arrival_key).arg(format!("{name}:"));
        for (id, elements, measures) in &read {
            inv.arg(id).arg(*elements).arg(*measures);
        }
        inv.invoke_async::<Value>(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn release(&self, taken: SackMeasures) -> Result<()> {
        self.leases.release(&taken).map(drop)
    }

    async fn backlog(&self) -> Result<Backlog> {
        let v: Value = self
            .backlog_script
            .key(&self.arrival_key)
            .arg(&self.sack_prefix)
            .arg(self.nsacks)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        let mut parts = array_of(v, "backlog")?.into_iter();
        let (Some(now), Some(flat), Some(arrivals)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(StorageError::Backend(
                "redis: malformed backlog reply".into(),
            ));
        };
        let flat = array_of(flat, "backlog")?;
        let mut backlog = Backlog {
            oldest_pending: Some(arrival_times(&now, array_of(arrivals, "backlog")?)?),
            ..Backlog::default()
        };
        for triple in flat.chunks(3) {
            let [id, batches, measures] = triple else {
                return Err(StorageError::Backend(
                    "redis: truncated backlog reply".into(),
                ));
            };
            let id = bytes_of(id.clone(), "backlog")?;
            let batches = int_of(batches, "backlog")?.max(0) as u64;
            let measures = int_of(measures, "backlog")?.max(0) as u64;
            backlog.measures += measures;
            match std::str::from_utf8(&id)
                .ok()
                .and_then(|s| Uuid::parse_str(s).ok())
            {
                Some(m) if batches > 0 => *backlog.per_metric.entry(m).or_insert(0) += batches,
                Some(_) => {}
                None => {
                    tracing::warn!(id = %String::from_utf8_lossy(&id), "sack index entry is not a metric id")
                }
            }
        }
        Ok(backlog)
    }

    async fn wait_for_new(&self, timeout: Duration) -> Vec<u32> {
        self.ensure_subscriber();
        let notified = self.wake.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let ready = self.wake.drain();
        if !ready.is_empty() {
            return ready;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
        self.wake.drain()
    }
}
