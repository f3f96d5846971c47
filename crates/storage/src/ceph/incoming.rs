//! `[incoming] driver = ceph`: sacks as RADOS objects whose omap holds the
//! pending measures, as upstream lays them out (see the `ceph` module doc).
//!
//! # Operations
//!
//! - `add_measures`: **one compound write per touched sack** (an `omap_set`
//!   of one entry per metric), all issued at once and waited for together;
//!   when it returns the OSDs have acknowledged the entries (replicated as
//!   the pool's size says), so they survive any crash of ours.
//! - `take`: one omap read of the sack (entries with prefix `measure_`, 1000
//!   per read as upstream pages them); the keys read are the lease.
//! - `commit`: one compound write removing exactly the keys read (measures
//!   added meanwhile stay); `release`: nothing to do in RADOS.
//! - `backlog`: one omap read per sack, all at once; a sack's oldest pending
//!   measure arrived when its oldest key says (to the second).
//! - `wait_for_new`: measures added by this process wake its waiters at once;
//!   others are found by probing every sack (one omap read of at most one
//!   entry each, all at once) every [`POLL`]. Upstream's metricd has no
//!   notification either and scans every sack each `metric_processing_delay`.
//!
//! # Keys and order
//!
//! Upstream's key is `measure_<metric>_<uuid4>_<YYYYmmdd_HH:MM:SS>`, and its
//! reader uses only the metric id. We put a *time-ordered* UUID in the third
//! field (a per-process monotonic nanosecond clock, then random bits), so that
//! reading a sack in key order returns a metric's batches in arrival order, as
//! the [`Incoming`] contract promises; upstream reads our keys unchanged.
//!
//! # Leases
//!
//! Within one process a sack is leased to one `take` at a time (a second one
//! gets an empty [`SackMeasures`] with token 0) until its commit or release,
//! or until the future of a `take`/`commit` is dropped; across processes
//! metricd's sack locks make sure one worker processes a sack at a time.

use super::names::{
    CONFIG_OBJECT, MEASURE_PREFIX, arrival_of_key, decode_measures, encode_measures, measure_key,
    metric_of_key, sack_object,
};
use super::rados_ffi::{BALANCE_READS, Omap, Pool, ReadOp, SKIPRWLOCKS, WriteOp};
use super::{CephOptions, blocking, ceph_error, open_pool};
use crate::lease::{Leases, empty};
use crate::{Backlog, Incoming, MeasureBatch, Result, SackMeasures, StorageError, sack_of};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

/// How often `wait_for_new` probes the sacks for measures of other processes.
pub(super) const POLL: Duration = Duration::from_secs(1);
const OMAP_PAGE: u64 = 1000;
/// Upstream's flags: reads may go to any replica, omap writes skip the rw locks.
const READ_FLAGS: i32 = BALANCE_READS | SKIPRWLOCKS;
const WRITE_FLAGS: i32 = SKIPRWLOCKS;

/// The incoming store on a Ceph pool.
pub struct CephIncoming {
    pool: Arc<Pool>,
    nsacks: u32,
    /// Per sack leased: the omap keys its take read, what the commit removes.
    leases: Leases<Vec<String>>,
    /// Last nanosecond clock value used in a measure key (monotonic per process).
    clock: AtomicI64,
    dirty: Mutex<Vec<bool>>,
    notify: Notify,
    last_poll: Mutex<Instant>,
    /// Per sack, its first key and mtime at the last probe.
    seen: Mutex<Vec<Option<(String, i64)>>>,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The number of sacks stored in `gnocchi-config` (`None`: not stored yet).
fn stored_sacks(pool: &Pool) -> Result<Option<u32>> {
    let op = ReadOp {
        read: Some(4096),
        ..Default::default()
    };
    match pool.read(vec![(CONFIG_OBJECT.into(), op)]).pop() {
        Some(Ok(r)) => {
            let v: serde_json::Value =
                serde_json::from_slice(&r.data).map_err(|source| StorageError::CorruptFile {
                    path: CONFIG_OBJECT.into(),
                    source,
                })?;
            crate::stored_sack_count(&v)
                .map(Some)
                .ok_or_else(|| StorageError::Corrupt(format!("{CONFIG_OBJECT}: {v}")))
        }
        Some(Err(e)) if e.is_not_found() => Ok(None),
        Some(Err(e)) => Err(ceph_error(format!("reading {CONFIG_OBJECT}"), e)),
        None => Ok(None),
    }
}

/// Store the number of sacks as upstream does (`{"sacks": N}`); `exclusive`:
/// only if none is stored yet (then `false` if another process was first).
fn store_sacks(pool: &Pool, sacks: u32, exclusive: bool) -> Result<bool> {
    let op = WriteOp {
        create: exclusive.then_some(true),
        write_full: Some(format!("{{\"sacks\": {sacks}}}").into_bytes()),
        ..Default::default()
    };
    match pool.write(vec![(CONFIG_OBJECT.into(), op)]).pop() {
        Some(Ok(())) | None => Ok(true),
        Some(Err(e)) if exclusive && e.is_exists() => Ok(false),
        Some(Err(e)) => Err(ceph_error(format!("writing {CONFIG_OBJECT}"), e)),
    }
}

/// Every pending entry of each sack (key and value), reading pages at once
/// across sacks; `limit` caps the entries read per sack (`None`: all).
fn read_sacks(pool: &Pool, objects: &[String], limit: Option<u64>) -> Result<Vec<Omap>> {
    let page = limit.unwrap_or(OMAP_PAGE).min(OMAP_PAGE);
    let mut entries: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new(); objects.len()];
    let mut todo: Vec<(usize, String)> = (0..objects.len()).map(|i| (i, String::new())).collect();
    while !todo.is_empty() {
        let ops = todo
            .iter()
            .map(|(i, after)| {
                let op = ReadOp {
                    omap: Some((after.clone(), MEASURE_PREFIX.into(), page)),
                    flags: READ_FLAGS,
                    ..Default::default()
                };
                (objects[*i].clone(), op)
            })
            .collect();
        let mut next = Vec::new();
        for ((i, _), r) in todo.iter().zip(pool.read(ops)) {
            match r {
                Ok(r) => {
                    let full = r.omap.len() as u64 >= page;
                    let last = r.omap.last().map(|(k, _)| k.clone());
                    entries[*i].extend(r.omap);
                    if let (true, None, Some(last)) = (full, limit, last) {
                        next.push((*i, last));
                    }
                }
                // Nothing was ever written to this sack.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(ceph_error(format!("reading {}", objects[*i]), e)),
            }
        }
        todo = next;
    }
    Ok(entries)
}

impl CephIncoming {
    /// Connect with upstream's `ceph_*` options, with `sacks` sacks unless the
    /// pool already stores a sack count (which wins, as upstream's).
    pub async fn connect(options: CephOptions, sacks: u32) -> Result<Self> {
        Self::connect_in_namespace(options, sacks, String::new()).await
    }

    /// As [`CephIncoming::connect`], in a RADOS namespace of the pool (tests).
    pub async fn connect_in_namespace(
        options: CephOptions,
        sacks: u32,
        namespace: String,
    ) -> Result<Self> {
        crate::check_sack_count(sacks)?;
        let (pool, nsacks) = blocking(move || {
            let pool = open_pool(&options, &namespace)?;
            let nsacks = match stored_sacks(&pool)? {
                Some(n) => n,
                None if store_sacks(&pool, sacks, true)? => sacks,
                None => stored_sacks(&pool)?.ok_or_else(|| {
                    StorageError::Corrupt(format!("{CONFIG_OBJECT} exists but is unreadable"))
                })?,
            };
            Ok((pool, nsacks))
        })
        .await?;
        if nsacks != sacks {
            tracing::info!(
                stored = nsacks,
                asked = sacks,
                "using the sack count stored in Ceph"
            );
        }
        Ok(CephIncoming {
            pool: Arc::new(pool),
            nsacks,
            leases: Leases::new(),
            clock: AtomicI64::new(0),
            dirty: Mutex::new(vec![false; nsacks as usize]),
            notify: Notify::new(),
            last_poll: Mutex::new(Instant::now()),
            seen: Mutex::new(vec![None; nsacks as usize]),
        })
    }

    /// `gnocchid change-sack-size` on Ceph, as upstream's: refused while any
    /// measure is pending; stores the new count in `gnocchi-config` and removes
    /// the old (empty) sack objects. Returns the count stored before. Every
    /// process using the pool must be restarted afterwards.
    pub async fn change_sacks(options: CephOptions, sacks: u32) -> Result<u32> {
        Self::change_sacks_in_namespace(options, sacks, String::new()).await
    }

    /// As [`CephIncoming::change_sacks`], in a RADOS namespace (tests).
    pub async fn change_sacks_in_namespace(
        options: CephOptions,
        sacks: u32,
        namespace: String,
    ) -> Result<u32> {
        crate::check_sack_count(sacks)?;
        blocking(move || {
            let pool = open_pool(&options, &namespace)?;
            let Some(old) = stored_sacks(&pool)? else {
                store_sacks(&pool, sacks, false)?;
                return Ok(sacks);
            };
            if old == sacks {
                return Ok(old);
            }
            let objects: Vec<String> = (0..old).map(|s| sack_object(old, s)).collect();
            let pending: Vec<Vec<(String, Vec<u8>)>> = read_sacks(&pool, &objects, None)?;
            let measures: usize = pending.iter().flatten().map(|(_, v)| v.len() / 16).sum();
            let batches: usize = pending.iter().map(Vec::len).sum();
            if batches > 0 {
                return Err(StorageError::Backend(format!(
                    "Cannot change sack when non-empty backlog. Process remaining {measures} measures and try again"
                )));
            }
            store_sacks(&pool, sacks, false)?;
            let removes = objects
                .into_iter()
                .map(|o| {
                    let op = WriteOp {
                        remove: true,
                        ..Default::default()
                    };
                    (o, op)
                })
                .collect();
            for r in pool.write(removes) {
                if let Err(e) = r
                    && !e.is_not_found()
                {
                    return Err(ceph_error("removing an old sack", e));
                }
            }
            Ok(old)
        })
        .await
    }

    /// A time-ordered UUID: a monotonic nanosecond clock, then random bits.
    fn ordered_uuid(&self) -> Uuid {
        let now = now_ns();
        let mut prev = self.clock.load(Ordering::Relaxed);
        let t = loop {
            let t = now.max(prev.saturating_add(1));
            match self
                .clock
                .compare_exchange_weak(prev, t, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break t,
                Err(p) => prev = p,
            }
        };
        let random = Uuid::new_v4().as_u128() as u64;
        Uuid::from_u128((u128::from(t as u64) << 64) | u128::from(random))
    }

    fn check_sack(&self, sack: u32) -> Result<()> {
        if sack < self.nsacks {
            Ok(())
        } else {
            Err(StorageError::Backend(format!("no sack {sack}")))
        }
    }

    fn drain(&self) -> Vec<u32> {
        let mut dirty = self.dirty.lock();
        let ready: Vec<u32> = (0..self.nsacks).filter(|s| dirty[*s as usize]).collect();
        dirty.iter_mut().for_each(|d| *d = false);
        ready
    }

    /// The sacks that changed since the last probe: one compound read per
    /// sack (its first entry and its modification time, in seconds), all at
    /// once. A sack is reported when it holds entries and its first key or
    /// its mtime differ from the last probe's (a sack still holding the
    /// same unprocessed first entry, written again within the same second, is
    /// left to metricd's periodic full scan).
    async fn probe(&self) -> Vec<u32> {
        let pool = self.pool.clone();
        let objects: Vec<String> = (0..self.nsacks)
            .map(|s| sack_object(self.nsacks, s))
            .collect();
        let read = blocking(move || {
            let ops = objects
                .into_iter()
                .map(|o| {
                    let op = ReadOp {
                        omap: Some((String::new(), MEASURE_PREFIX.into(), 1)),
                        read: Some(0),
                        flags: READ_FLAGS,
                    };
                    (o, op)
                })
                .collect();
            Ok(pool.read(ops))
        })
        .await;
        let results = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "probing the sacks failed");
                return Vec::new();
            }
        };
        let mut seen = self.seen.lock();
        let mut found = Vec::new();
        for (s, r) in results.into_iter().enumerate() {
            let now = match r {
                Ok(r) => r.omap.into_iter().next().map(|(k, _)| (k, r.mtime)),
                Err(e) if e.is_not_found() => None,
                Err(e) => {
                    tracing::warn!(error = %e.into_io(), sack = s, "probing a sack failed");
                    continue;
                }
            };
            if now.is_some() && now != seen[s] {
                found.push(s as u32);
            }
            seen[s] = now;
        }
        found
    }
}

#[async_trait]
impl Incoming for CephIncoming {
    fn sacks(&self) -> u32 {
        self.nsacks
    }

    async fn add_measures(&self, batch: MeasureBatch) -> Result<()> {
        let now = now_ns();
        let mut by_sack: HashMap<u32, Vec<(String, Vec<u8>)>> = HashMap::new();
        for (metric, points) in &batch {
            if points.is_empty() {
                continue;
            }
            let key = measure_key(*metric, self.ordered_uuid(), now);
            by_sack
                .entry(sack_of(*metric, self.nsacks))
                .or_default()
                .push((key, encode_measures(points)));
        }
        if by_sack.is_empty() {
            return Ok(());
        }
        let sacks: Vec<u32> = by_sack.keys().copied().collect();
        let ops: Vec<(String, WriteOp)> = by_sack
            .into_iter()
            .map(|(s, entries)| {
                let op = WriteOp {
                    omap_set: entries,
                    flags: WRITE_FLAGS,
                    ..Default::default()
                };
                (sack_object(self.nsacks, s), op)
            })
            .collect();
        let pool = self.pool.clone();
        blocking(move || {
            for r in pool.write(ops) {
                r.map_err(|e| ceph_error("adding measures", e))?;
            }
            Ok(())
        })
        .await?;
        {
            let mut dirty = self.dirty.lock();
            for s in sacks {
                dirty[s as usize] = true;
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn take(&self, sack: u32) -> Result<SackMeasures> {
        self.check_sack(sack)?;
        let Some(guard) = self.leases.begin(sack) else {
            return Ok(empty(sack));
        };
        let pool = self.pool.clone();
        let object = vec![sack_object(self.nsacks, sack)];
        let mut read = blocking(move || read_sacks(&pool, &object, None)).await?;
        let entries = read.pop().unwrap_or_default();
        if entries.is_empty() {
            return Ok(empty(sack));
        }
        let mut measures: HashMap<Uuid, Vec<carbonara::Measure>> = HashMap::new();
        let mut keys = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            match metric_of_key(&key) {
                Some(m) => {
                    if value.len() % 16 != 0 {
                        tracing::warn!(
                            key,
                            bytes = value.len(),
                            "measure batch length is not a multiple of 16, tail ignored"
                        );
                    }
                    decode_measures(&value, measures.entry(m).or_default());
                }
                // Upstream skips such keys and deletes them with the rest.
                None => tracing::warn!(key, "unable to parse measure key, discarded"),
            }
            keys.push(key);
        }
        measures.retain(|_, p| !p.is_empty());
        Ok(guard.finish(keys, measures))
    }

    async fn commit(&self, taken: SackMeasures) -> Result<()> {
        // The sack stays leased until the keys are removed, so that no `take`
        // of this process reads what is being removed; the guard ends the
        // lease however the commit ends.
        let Some((keys, _lease)) = self.leases.start_commit(&taken)? else {
            return Ok(());
        };
        let op = WriteOp {
            omap_rm: keys,
            flags: WRITE_FLAGS,
            ..Default::default()
        };
        let object = sack_object(self.nsacks, taken.sack);
        let pool = self.pool.clone();
        blocking(move || {
            for r in pool.write(vec![(object, op)]) {
                r.map_err(|e| ceph_error("removing processed measures", e))?;
            }
            Ok(())
        })
        .await
    }

    async fn release(&self, taken: SackMeasures) -> Result<()> {
        self.leases.release(&taken).map(drop)
    }

    async fn backlog(&self) -> Result<Backlog> {
        let pool = self.pool.clone();
        let objects: Vec<String> = (0..self.nsacks)
            .map(|s| sack_object(self.nsacks, s))
            .collect();
        let sacks = blocking(move || read_sacks(&pool, &objects, None)).await?;
        let mut backlog = Backlog::default();
        let mut oldest = HashMap::new();
        for (sack, entries) in sacks.iter().enumerate() {
            for (key, value) in entries {
                backlog.measures += (value.len() / 16) as u64;
                if let Some(m) = metric_of_key(key) {
                    *backlog.per_metric.entry(m).or_insert(0) += 1;
                }
            }
            if let Some(first) = entries.iter().filter_map(|(k, _)| arrival_of_key(k)).min() {
                oldest.insert(sack as u32, first);
            }
        }
        backlog.oldest_pending = Some(oldest);
        Ok(backlog)
    }

    async fn wait_for_new(&self, timeout: Duration) -> Vec<u32> {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let ready = self.drain();
        if !ready.is_empty() {
            return ready;
        }
        let since = self.last_poll.lock().elapsed();
        if since < POLL {
            let wait = timeout.min(POLL - since);
            if !wait.is_zero() {
                let _ = tokio::time::timeout(wait, notified).await;
            }
            let ready = self.drain();
            if !ready.is_empty() || self.last_poll.lock().elapsed() < POLL {
                return ready;
            }
        }
        *self.last_poll.lock() = Instant::now();
        let mut found = self.probe().await;
        // Leased sacks are being processed already.
        found.retain(|s| !self.leases.is_leased(*s));
        found.extend(self.drain());
        found.sort_unstable();
        found.dedup();
        found
    }
}
