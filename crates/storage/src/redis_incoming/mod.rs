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
//! future is dropped half-way ends its lease.
//! Across processes, metricd's sack locks make sure that one worker at a time
//! processes a sack: two processes committing the same read would trim twice.
//! A crashed worker's measures simply stay in Redis and are read again.

use crate::redis_url::{backend, client, manager};
use crate::{Backlog, Incoming, MeasureBatch, Result, SackMeasures, StorageError, sack_of};
use async_trait::async_trait;
use carbonara::Measure;
use futures::StreamExt;
use parking_lot::Mutex;
use redis::Value;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

const MAX_SACKS: u32 = 65535;
const RECORD: usize = 16;

/// KEYS[1] = `gnocchi-config`; ARGV[1] = the writer's sack count, ARGV[2] = the
/// number of metrics `m`; then `m` times (sack name, metric uuid, packed records,
/// measure count); then the sack names to notify.
/// Returns 0, or the stored sack count when it is not the writer's (nothing written).
const ADD_LUA: &str = r"
local stored = redis.call('HGET', KEYS[1], 'sacks')
if not stored then
  redis.call('HSET', KEYS[1], 'sacks', ARGV[1])
elseif tonumber(stored) ~= tonumber(ARGV[1]) then
  return stored
end
local last = 2 + 4 * tonumber(ARGV[2])
for i = 3, last, 4 do
  redis.call('RPUSH', ARGV[i] .. ':' .. ARGV[i + 1], ARGV[i + 2])
  redis.call('HINCRBY', ARGV[i], ARGV[i + 1], ARGV[i + 3])
end
for i = last + 1, #ARGV do
  redis.call('PUBLISH', ARGV[i], '')
end
return 0
";

/// KEYS[1] = `gnocchi-config`; ARGV[1] = key prefix, ARGV[2] = the new sack count.
/// Returns `{code, old, a, b}`: code 0 = changed (`a` = stale sack keys of the
/// old layout deleted), 1 = refused, measures pending (`a` measures in `b`
/// metrics), 2 = no count was stored (now set), 3 = unchanged, 4 = the stored
/// count is not a valid number (`old` = the stored string).
/// Atomic: no `add_measures` (a script or transaction too) runs in between.
const CHANGE_LUA: &str = r"
local stored = redis.call('HGET', KEYS[1], 'sacks')
local new = tonumber(ARGV[2])
if not stored then
  redis.call('HSET', KEYS[1], 'sacks', ARGV[2])
  return {2, new, 0, 0}
end
local old = tonumber(stored)
if not old or old < 1 or old > 65535 or old ~= math.floor(old) then
  return {4, stored, 0, 0}
end
if old == new then
  return {3, old, 0, 0}
end
local prefix = ARGV[1] .. 'incoming' .. old .. '-'
local measures, metrics = 0, 0
local stale = {}
for s = 0, old - 1 do
  local sack = prefix .. s
  local t = redis.call('TYPE', sack)['ok']
  if t == 'hash' then
    local kv = redis.call('HGETALL', sack)
    local live = false
    for i = 1, #kv, 2 do
      if redis.call('LLEN', sack .. ':' .. kv[i]) > 0 then
        live = true
        metrics = metrics + 1
        measures = measures + math.max(tonumber(kv[i + 1]) or 0, 0)
      end
    end
    if not live then
      stale[#stale + 1] = sack
    end
  elseif t ~= 'none' then
    stale[#stale + 1] = sack
  end
end
if metrics > 0 then
  return {1, old, measures, metrics}
end
for _, k in ipairs(stale) do
  redis.call('DEL', k)
end
redis.call('HSET', KEYS[1], 'sacks', ARGV[2])
return {0, old, #stale, 0}
";

/// KEYS[1] = sack index; ARGV[1] = list key prefix (`<sack>:`).
/// Returns `{{uuid, {element, ...}}, ...}`.
const TAKE_LUA: &str = r"
local ids = redis.call('HKEYS', KEYS[1])
local out = {}
for i, id in ipairs(ids) do
  out[i] = {id, redis.call('LRANGE', ARGV[1] .. id, 0, -1)}
end
return out
";

/// KEYS[1] = sack index; ARGV[1] = list key prefix; then per metric
/// (uuid, elements read, measures read).
const COMMIT_LUA: &str = r"
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  redis.call('LTRIM', key, tonumber(ARGV[i + 1]), -1)
  if redis.call('LLEN', key) == 0 then
    redis.call('HDEL', KEYS[1], id)
  else
    redis.call('HINCRBY', KEYS[1], id, -tonumber(ARGV[i + 2]))
  end
end
return 1
";

/// ARGV[1] = sack name prefix (`P incoming<N>-`), ARGV[2] = N.
/// Returns a flat `{uuid, batches, measures, ...}`.
const BACKLOG_LUA: &str = r"
local out = {}
for s = 0, tonumber(ARGV[2]) - 1 do
  local sack = ARGV[1] .. s
  local kv = redis.call('HGETALL', sack)
  for i = 1, #kv, 2 do
    out[#out + 1] = kv[i]
    out[#out + 1] = redis.call('LLEN', sack .. ':' .. kv[i])
    out[#out + 1] = tonumber(kv[i + 1])
  end
end
return out
";

/// The incoming store of scale-out deployments: sacks in Redis.
pub struct RedisIncoming {
    client: redis::Client,
    conn: ConnectionManager,
    nsacks: u32,
    /// `P gnocchi-config`.
    config_key: String,
    /// `P incoming<N>-`: sack `s` is named `{sack_prefix}{s}`.
    sack_prefix: String,
    leases: Mutex<HashMap<u32, Lease>>,
    next_token: AtomicU64,
    wake: Arc<Wake>,
    subscriber: Mutex<Option<tokio::task::JoinHandle<()>>>,
    add_script: redis::Script,
    take_script: redis::Script,
    commit_script: redis::Script,
    backlog_script: redis::Script,
}

struct Lease {
    token: u64,
    /// Per metric id as stored (normally a uuid): list elements and measures read.
    read: Vec<(String, u64, u64)>,
    /// A commit is under way: the sack stays leased until it is done.
    committing: bool,
}

/// Ends a lease when dropped, unless disarmed: a `take` or `commit` whose
/// future is dropped half-way does not leave its sack leased forever.
struct LeaseGuard<'a> {
    leases: &'a Mutex<HashMap<u32, Lease>>,
    sack: u32,
    token: u64,
    armed: bool,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut leases = self.leases.lock();
            if leases
                .get(&self.sack)
                .is_some_and(|l| l.token == self.token)
            {
                leases.remove(&self.sack);
            }
        }
    }
}

/// Sacks notified since the last `wait_for_new`, and the waiters to wake.
struct Wake {
    dirty: Mutex<Dirty>,
    notify: Notify,
}

struct Dirty {
    flags: Vec<bool>,
    list: Vec<u32>,
}

impl Wake {
    fn mark(&self, sacks: impl IntoIterator<Item = u32>) {
        let mut new = false;
        {
            let mut d = self.dirty.lock();
            for s in sacks {
                if let Some(f) = d.flags.get_mut(s as usize)
                    && !*f
                {
                    *f = true;
                    d.list.push(s);
                    new = true;
                }
            }
        }
        if new {
            self.notify.notify_waiters();
        }
    }

    fn drain(&self) -> Vec<u32> {
        let mut d = self.dirty.lock();
        let list = std::mem::take(&mut d.list);
        for &s in &list {
            d.flags[s as usize] = false;
        }
        list
    }
}

fn check_count(sacks: u32) -> Result<()> {
    if (1..=MAX_SACKS).contains(&sacks) {
        Ok(())
    } else {
        Err(StorageError::Backend(format!(
            "the number of sacks must be between 1 and {MAX_SACKS}, not {sacks}"
        )))
    }
}

fn bad_sack(sack: u32) -> StorageError {
    StorageError::Backend(format!("no sack {sack}"))
}

fn bad_token(taken: &SackMeasures) -> StorageError {
    StorageError::Backend(format!(
        "sack {} is not leased with token {}",
        taken.sack, taken.token
    ))
}

fn unexpected(what: &str, v: &Value) -> StorageError {
    StorageError::Backend(format!("redis: unexpected reply to {what}: {v:?}"))
}

fn bytes_of(v: Value, what: &str) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        v => Err(unexpected(what, &v)),
    }
}

fn int_of(v: &Value, what: &str) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| unexpected(what, v)),
        v => Err(unexpected(what, v)),
    }
}

fn array_of(v: Value, what: &str) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        v => Err(unexpected(what, &v)),
    }
}

/// Append the packed records of `points` to `buf`.
fn encode(points: &[Measure], buf: &mut Vec<u8>) {
    buf.reserve(points.len() * RECORD);
    for m in points {
        buf.extend_from_slice(&m.timestamp.to_le_bytes());
        buf.extend_from_slice(&m.value.to_le_bytes());
    }
}

/// Decode packed records into `out`; returns the number decoded.
fn decode(bytes: &[u8], out: &mut Vec<Measure>) -> u64 {
    let chunks = bytes.chunks_exact(RECORD);
    let n = chunks.len();
    out.reserve(n);
    for c in chunks {
        let ts = i64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
        let v = f64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
        out.push(Measure::new(ts, v));
    }
    n as u64
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
        check_count(sacks)?;
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
            .filter(|n| (1..=MAX_SACKS).contains(n))
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
            leases: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
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

    /// `gnocchid change-sack-size`, as upstream's `gnocchi-change-sack-size`:
    /// store `sacks` as the number of sacks of the Redis at `url`, and return
    /// the number stored before (`sacks` itself if none was stored yet, or if it
    /// is unchanged).
    ///
    /// Refused (a [`StorageError::Backend`] saying "Cannot change sack when
    /// non-empty backlog", with the number of pending measures) while any
    /// measure waits in any sack: measures are routed by `metric id mod sacks`,
    /// so those already in a sack would never be read again. `sacks` must be
    /// 1..=65535.
    ///
    /// The check and the change are one Lua script, so no `add_measures` can
    /// slip in between. Keys of the old layout left without data (an index
    /// whose lists are all empty, upstream's notification key) are deleted in
    /// the same script. Nothing else moves: an empty sack has no keys.
    ///
    /// Every gnocchid `api`, `metricd` and `statsd` process using this Redis
    /// must be restarted afterwards, as upstream requires: a running process
    /// keeps the count it read at start. Its `add_measures` then fail (the
    /// script sees the new count) rather than write into sacks that nobody
    /// processes, and its metricd sees only the old, empty sacks.
    pub async fn change_sacks(url: &str, sacks: u32) -> Result<u32> {
        Self::change_sacks_with_prefix(url, sacks, "").await
    }

    /// As [`RedisIncoming::change_sacks`], for a store opened with
    /// [`RedisIncoming::connect_with_prefix`].
    pub async fn change_sacks_with_prefix(url: &str, sacks: u32, prefix: &str) -> Result<u32> {
        check_count(sacks)?;
        let client = client(url)?;
        let mut conn = manager(&client).await?;
        let config = format!("{prefix}gnocchi-config");
        let reply: Value = redis::Script::new(CHANGE_LUA)
            .key(&config)
            .arg(prefix)
            .arg(sacks)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        let reply = array_of(reply, "change sacks")?;
        let [code, old, a, b] = reply.as_slice() else {
            return Err(unexpected("change sacks", &Value::Array(reply)));
        };
        let code = int_of(code, "change sacks")?;
        if code == 4 {
            let stored = bytes_of(old.clone(), "change sacks")?;
            return Err(StorageError::Corrupt(format!(
                "{config} field sacks is {:?}",
                String::from_utf8_lossy(&stored)
            )));
        }
        let old = u32::try_from(int_of(old, "change sacks")?)
            .map_err(|_| unexpected("change sacks", old))?;
        let (a, b) = (int_of(a, "change sacks")?, int_of(b, "change sacks")?);
        match code {
            0 => {
                tracing::debug!(
                    from = old,
                    to = sacks,
                    stale_keys_deleted = a,
                    "changed the number of sacks"
                );
                Ok(old)
            }
            1 => Err(StorageError::Backend(format!(
                "Cannot change sack when non-empty backlog. Process remaining {a} measures (of {b} metrics) and try again"
            ))),
            2 => {
                tracing::info!(sacks, "no sack count was stored yet, stored this one");
                Ok(old)
            }
            3 => Ok(old),
            _ => Err(unexpected("change sacks", &Value::Int(code))),
        }
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

    /// Drop the lease of `taken` if it is the current one.
    fn end_lease(&self, taken: &SackMeasures) -> Result<Lease> {
        let mut leases = self.leases.lock();
        match leases.get(&taken.sack) {
            Some(l) if l.token == taken.token && !l.committing => {
                Ok(leases.remove(&taken.sack).expect("checked"))
            }
            _ => Err(bad_token(taken)),
        }
    }

    fn guard(&self, sack: u32, token: u64) -> LeaseGuard<'_> {
        LeaseGuard {
            leases: &self.leases,
            sack,
            token,
            armed: true,
        }
    }

    fn ensure_subscriber(&self) {
        let mut sub = self.subscriber.lock();
        if sub.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let names: Vec<String> = (0..self.nsacks).map(|s| self.sack_name(s)).collect();
        *sub = Some(tokio::spawn(subscribe_loop(
            self.client.clone(),
            self.conn.clone(),
            self.wake.clone(),
            names,
        )));
    }
}

impl Drop for RedisIncoming {
    fn drop(&mut self) {
        if let Some(h) = self.subscriber.lock().take() {
            h.abort();
        }
    }
}

/// Keep a subscription to every sack's channel, reconnecting with backoff.
async fn subscribe_loop(
    client: redis::Client,
    conn: ConnectionManager,
    wake: Arc<Wake>,
    names: Vec<String>,
) {
    let index: HashMap<String, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i as u32))
        .collect();
    let mut delay = Duration::from_millis(100);
    loop {
        match subscribe_once(&client, conn.clone(), &wake, &names, &index).await {
            Ok(()) => {
                tracing::warn!("redis notification subscription closed, reconnecting");
                delay = Duration::from_millis(100);
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis notification subscription failed, retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe_once(
    client: &redis::Client,
    mut conn: ConnectionManager,
    wake: &Wake,
    names: &[String],
    index: &HashMap<String, u32>,
) -> Result<()> {
    let pubsub = client.get_async_pubsub().await.map_err(backend)?;
    let (mut sink, mut stream) = pubsub.split();
    sink.subscribe(names).await.map_err(backend)?;
    // Measures added while we were not subscribed sent messages nobody heard:
    // every sack whose index exists has pending data.
    let mut pipe = redis::pipe();
    for n in names {
        pipe.exists(n);
    }
    let exists: Vec<bool> = pipe.query_async(&mut conn).await.map_err(backend)?;
    wake.mark(
        exists
            .iter()
            .enumerate()
            .filter(|(_, e)| **e)
            .map(|(s, _)| s as u32),
    );
    // A ping every 30 s detects a connection that died silently.
    let mut ping = tokio::time::interval(Duration::from_secs(30));
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => {
                    if let Some(&s) = index.get(msg.get_channel_name()) {
                        wake.mark([s]);
                    }
                }
                None => return Ok(()),
            },
            _ = ping.tick() => {
                match tokio::time::timeout(Duration::from_secs(10), sink.ping::<Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(backend(e)),
                    Err(_) => return Err(StorageError::Backend("redis: subscription ping timed out".into())),
                }
            }
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
        let token = {
            let mut leases = self.leases.lock();
            if leases.contains_key(&sack) {
                return Ok(SackMeasures {
                    sack,
                    measures: HashMap::new(),
                    token: 0,
                });
            }
            let token = self.next_token.fetch_add(1, Ordering::Relaxed);
            leases.insert(
                sack,
                Lease {
                    token,
                    read: Vec::new(),
                    committing: false,
                },
            );
            token
        };
        let mut guard = self.guard(sack, token);
        let name = self.sack_name(sack);
        let reply: Result<Value> = self
            .take_script
            .key(&name)
            .arg(format!("{name}:"))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend);
        let (measures, read) = reply.and_then(|v| parse_take(v, &name))?;
        if read.is_empty() {
            // Nothing pending: no lease (the guard ends it).
            return Ok(SackMeasures {
                sack,
                measures: HashMap::new(),
                token: 0,
            });
        }
        if let Some(l) = self.leases.lock().get_mut(&sack) {
            l.read = read;
        }
        guard.armed = false;
        Ok(SackMeasures {
            sack,
            measures,
            token,
        })
    }

    async fn commit(&self, taken: SackMeasures) -> Result<()> {
        if taken.token == 0 {
            return Ok(());
        }
        // The sack stays leased until the trim is done, so that no `take` of
        // this process reads what is being trimmed; the guard ends the lease
        // however the commit ends. On failure the measures are still in Redis
        // (or trimmed, if only the reply was lost): the next take reads what remains.
        let read = {
            let mut leases = self.leases.lock();
            match leases.get_mut(&taken.sack) {
                Some(l) if l.token == taken.token && !l.committing => {
                    l.committing = true;
                    std::mem::take(&mut l.read)
                }
                _ => return Err(bad_token(&taken)),
            }
        };
        let _guard = self.guard(taken.sack, taken.token);
        let name = self.sack_name(taken.sack);
        let mut inv = self.commit_script.key(&name);
        inv.arg(format!("{name}:"));
        for (id, elements, measures) in &read {
            inv.arg(id).arg(*elements).arg(*measures);
        }
        inv.invoke_async::<Value>(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn release(&self, taken: SackMeasures) -> Result<()> {
        if taken.token == 0 {
            return Ok(());
        }
        self.end_lease(&taken)?;
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog> {
        let v: Value = self
            .backlog_script
            .arg(&self.sack_prefix)
            .arg(self.nsacks)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        let flat = array_of(v, "backlog")?;
        let mut backlog = Backlog::default();
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

type Taken = (HashMap<Uuid, Vec<Measure>>, Vec<(String, u64, u64)>);

fn parse_take(v: Value, sack: &str) -> Result<Taken> {
    let mut measures = HashMap::new();
    let mut read = Vec::new();
    for entry in array_of(v, "take")? {
        let mut pair = array_of(entry, "take")?.into_iter();
        let (Some(id), Some(elements)) = (pair.next(), pair.next()) else {
            return Err(StorageError::Backend("redis: malformed take reply".into()));
        };
        let id = String::from_utf8(bytes_of(id, "take")?)
            .map_err(|_| StorageError::Backend("redis: metric id is not UTF-8".into()))?;
        let elements = array_of(elements, "take")?;
        let nelements = elements.len() as u64;
        let mut points = Vec::new();
        let mut n = 0u64;
        for e in elements {
            let bytes = bytes_of(e, "take")?;
            if bytes.len() % RECORD != 0 {
                tracing::warn!(sack, metric = %id, bytes = bytes.len(), "measure batch length is not a multiple of 16, tail ignored");
            }
            n += decode(&bytes, &mut points);
        }
        match Uuid::parse_str(&id) {
            Ok(m) => {
                if !points.is_empty() {
                    measures
                        .entry(m)
                        .or_insert_with(Vec::new)
                        .extend_from_slice(&points);
                }
            }
            // Not ours: trimmed away by the commit like the rest.
            Err(_) => {
                tracing::warn!(sack, id = %id, "sack index entry is not a metric id, discarded")
            }
        }
        read.push((id, nelements, n));
    }
    Ok((measures, read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let points = carbonara::measure::measures(&[
            (i64::MIN, f64::NAN),
            (0, -0.0),
            (1_425_600_000_000_000_000, 1.5),
        ]);
        let mut buf = Vec::new();
        encode(&points, &mut buf);
        assert_eq!(buf.len(), 48);
        assert_eq!(&buf[16..24], &0i64.to_le_bytes());
        let mut out = Vec::new();
        buf.push(7); // a torn tail is ignored
        assert_eq!(decode(&buf, &mut out), 3);
        assert_eq!(out[0].timestamp, i64::MIN);
        assert!(out[0].value.is_nan());
        assert_eq!(out[1..], points[1..]);
    }
}
