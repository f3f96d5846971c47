//! `[storage] driver = ceph`: raw buffers and splits as RADOS objects, named
//! as upstream names them (see the `ceph` module doc).
//!
//! # Operations per call
//!
//! Each call is one blocking task that issues all of its librados operations
//! asynchronously and waits for them together, [`IN_FLIGHT`] at a time:
//!
//! - `get_raw`, `get_splits`: **one read operation per object** (a stat and a
//!   read of [`FIRST_READ`] bytes in one compound op): a split always fits
//!   (3600 points, at most 8 bytes each plus headers), so a split costs one
//!   RADOS read. A raw buffer larger than that costs a second read of its
//!   exact size. Upstream reads every object in 8 KiB chunks until an empty
//!   read, so at least two reads per object (upstream PR #1381).
//! - `list_split_keys`: one omap read of the metric's `_none_v3` object per
//!   distinct metric (more only past 1000 splits per metric), whatever the
//!   number of series asked.
//! - `write`: one `write_full` per split; then, once they are stored, one
//!   compound op per metric on its `_none_v3` object that adds the new splits
//!   to the omap index, drops the deleted ones and writes the raw buffer (a
//!   raw buffer never gets ahead of its splits); then one remove per deleted
//!   split.
//! - `delete_metrics`: the omap read, one remove per split, one remove of the
//!   `_none_v3` object.
//!
//! # Omap values
//!
//! Upstream stores empty values in the split index and reads only the names.
//! We store the split's start in nanoseconds (decimal) as the value and read it
//! when present: a start the float of its name cannot carry exactly (far from
//! any real time, e.g. `i64::MIN` ns) still lists exactly; names written by
//! upstream (empty values) are parsed.
//!
//! # Empty raw buffers
//!
//! Upstream marks a created, never processed metric with an empty `_none_v3`
//! object, and so does an omap write on a metric without raw buffer yet: an
//! empty object reads as no raw buffer (`None`), as upstream reads it.

use super::names::{raw_object, seconds_to_ns, split_object, split_start};
use super::rados_ffi::{Omap, Pool, ReadOp, ReadResult, WriteOp};
use super::{CephOptions, blocking, ceph_error, open_pool};
use crate::{Aggregates, Result, SplitRef, WriteBatch};
use async_trait::async_trait;
use carbonara::time::format_seconds;
use carbonara::{Method, SplitKey};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// Bytes asked by the first read of an object: more than any split.
pub(super) const FIRST_READ: usize = 64 * 1024;
/// Operations in flight at once per call.
pub(super) const IN_FLIGHT: usize = 128;
/// Omap entries asked per read.
const OMAP_PAGE: u64 = 1000;

/// The aggregate store on a Ceph pool.
pub struct CephAggregates {
    pool: Arc<Pool>,
}

impl CephAggregates {
    /// Connect with upstream's `ceph_*` options.
    pub async fn connect(options: CephOptions) -> Result<Self> {
        Self::connect_in_namespace(options, String::new()).await
    }

    /// As [`CephAggregates::connect`], in a RADOS namespace of the pool (tests).
    pub async fn connect_in_namespace(options: CephOptions, namespace: String) -> Result<Self> {
        let pool = blocking(move || open_pool(&options, &namespace)).await?;
        Ok(CephAggregates {
            pool: Arc::new(pool),
        })
    }

    /// Read objects whole; `None` when absent.
    async fn read_objects(&self, names: Vec<String>) -> Result<Vec<Option<Vec<u8>>>> {
        let pool = self.pool.clone();
        blocking(move || read_whole(&pool, names)).await
    }
}

fn read_whole(pool: &Pool, names: Vec<String>) -> Result<Vec<Option<Vec<u8>>>> {
    let mut out = Vec::with_capacity(names.len());
    for chunk in names.chunks(IN_FLIGHT) {
        let ops = chunk
            .iter()
            .map(|n| {
                let op = ReadOp {
                    read: Some(FIRST_READ),
                    ..Default::default()
                };
                (n.clone(), op)
            })
            .collect();
        for (name, r) in chunk.iter().zip(pool.read(ops)) {
            match r {
                Ok(ReadResult { size, mut data, .. }) => {
                    if size > data.len() as u64 {
                        data = read_rest(pool, name, size)?;
                    } else {
                        data.shrink_to_fit();
                    }
                    out.push(Some(data));
                }
                Err(e) if e.is_not_found() => out.push(None),
                Err(e) => return Err(ceph_error(format!("reading {name}"), e)),
            }
        }
    }
    Ok(out)
}

/// The second read of an object larger than [`FIRST_READ`].
fn read_rest(pool: &Pool, name: &str, size: u64) -> Result<Vec<u8>> {
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    let op = ReadOp {
        read: Some(len),
        ..Default::default()
    };
    let mut r = pool.read(vec![(name.to_string(), op)]);
    match r.pop() {
        Some(Ok(r)) => Ok(r.data),
        Some(Err(e)) => Err(ceph_error(format!("reading {name}"), e)),
        None => Ok(Vec::new()),
    }
}

/// The whole omap (split index) of each metric's `_none_v3` object; an absent
/// object has an empty index.
fn split_indexes(pool: &Pool, metrics: &[Uuid]) -> Result<Vec<Omap>> {
    let mut out = Vec::with_capacity(metrics.len());
    for chunk in metrics.chunks(IN_FLIGHT) {
        let mut entries: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new(); chunk.len()];
        // Indexes into `chunk` still to read, with the key to start after.
        let mut todo: Vec<(usize, String)> = (0..chunk.len()).map(|i| (i, String::new())).collect();
        while !todo.is_empty() {
            let ops = todo
                .iter()
                .map(|(i, after)| {
                    let op = ReadOp {
                        omap: Some((after.clone(), String::new(), OMAP_PAGE)),
                        ..Default::default()
                    };
                    (raw_object(chunk[*i]), op)
                })
                .collect();
            let mut next = Vec::new();
            for ((i, _), r) in todo.iter().zip(pool.read(ops)) {
                match r {
                    Ok(r) => {
                        let full = r.omap.len() as u64 >= OMAP_PAGE;
                        let last = r.omap.last().map(|(k, _)| k.clone());
                        entries[*i].extend(r.omap);
                        if let (true, Some(last)) = (full, last) {
                            next.push((*i, last));
                        }
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => {
                        return Err(ceph_error(
                            format!("reading the split index {}", raw_object(chunk[*i])),
                            e,
                        ));
                    }
                }
            }
            todo = next;
        }
        out.extend(entries);
    }
    Ok(out)
}

/// Run write operations [`IN_FLIGHT`] at a time; ENOENT ignored when `missing_ok`.
fn write_all(pool: &Pool, ops: Vec<(String, WriteOp)>, missing_ok: bool) -> Result<()> {
    let mut ops = ops.into_iter().peekable();
    while ops.peek().is_some() {
        let chunk: Vec<(String, WriteOp)> = ops.by_ref().take(IN_FLIGHT).collect();
        let names: Vec<String> = chunk.iter().map(|(n, _)| n.clone()).collect();
        for (name, r) in names.iter().zip(pool.write(chunk)) {
            match r {
                Ok(()) => {}
                Err(e) if missing_ok && e.is_not_found() => {}
                Err(e) => return Err(ceph_error(format!("writing {name}"), e)),
            }
        }
    }
    Ok(())
}

fn remove_op() -> WriteOp {
    WriteOp {
        remove: true,
        ..Default::default()
    }
}

fn split_name(s: &SplitRef) -> String {
    split_object(s.metric, s.method, s.key.granularity, s.key.start)
}

/// What one batch changes in one metric's `_none_v3` object.
#[derive(Default)]
struct MetricChange {
    raw: Option<Vec<u8>>,
    add: Vec<(String, Vec<u8>)>,
    remove: Vec<String>,
}

fn apply(pool: &Pool, batch: WriteBatch) -> Result<()> {
    let mut changes: HashMap<Uuid, MetricChange> = HashMap::new();
    let written: HashSet<SplitRef> = batch.splits.iter().map(|(s, _)| *s).collect();
    let mut split_ops = Vec::with_capacity(batch.splits.len());
    for (s, data) in batch.splits {
        let name = split_name(&s);
        changes
            .entry(s.metric)
            .or_default()
            .add
            .push((name.clone(), s.key.start.to_string().into_bytes()));
        let op = WriteOp {
            write_full: Some(data),
            ..Default::default()
        };
        split_ops.push((name, op));
    }
    let mut removed = Vec::new();
    for s in batch.delete_splits.iter().filter(|s| !written.contains(s)) {
        let name = split_name(s);
        changes
            .entry(s.metric)
            .or_default()
            .remove
            .push(name.clone());
        removed.push((name, remove_op()));
    }
    for (m, raw) in batch.raw {
        changes.entry(m).or_default().raw = Some(raw);
    }
    write_all(pool, split_ops, false)?;
    let index_ops = changes
        .into_iter()
        .map(|(m, c)| {
            let op = WriteOp {
                write_full: c.raw,
                omap_set: c.add,
                omap_rm: c.remove,
                ..Default::default()
            };
            (raw_object(m), op)
        })
        .collect();
    write_all(pool, index_ops, false)?;
    write_all(pool, removed, true)
}

fn delete(pool: &Pool, metrics: &[Uuid]) -> Result<()> {
    let indexes = split_indexes(pool, metrics)?;
    let splits = indexes
        .into_iter()
        .flatten()
        .map(|(name, _)| (name, remove_op()))
        .collect();
    write_all(pool, splits, true)?;
    let raws = metrics
        .iter()
        .map(|m| (raw_object(*m), remove_op()))
        .collect();
    write_all(pool, raws, true)
}

#[async_trait]
impl Aggregates for CephAggregates {
    async fn get_raw(&self, metrics: &[Uuid]) -> Result<Vec<Option<Vec<u8>>>> {
        let names = metrics.iter().map(|m| raw_object(*m)).collect();
        let got = self.read_objects(names).await?;
        Ok(got
            .into_iter()
            .map(|r| r.filter(|d| !d.is_empty()))
            .collect())
    }

    async fn list_split_keys(&self, series: &[(Uuid, Method, i64)]) -> Result<Vec<Vec<SplitKey>>> {
        let mut metrics: Vec<Uuid> = series.iter().map(|(m, _, _)| *m).collect();
        metrics.sort_unstable();
        metrics.dedup();
        let pool = self.pool.clone();
        let wanted = metrics.clone();
        let indexes = blocking(move || split_indexes(&pool, &wanted)).await?;
        let by_metric: HashMap<Uuid, Vec<(String, Vec<u8>)>> =
            metrics.into_iter().zip(indexes).collect();
        Ok(series
            .iter()
            .map(|(m, method, granularity)| {
                let method = method.to_string();
                let g = format_seconds(*granularity);
                let mut keys: Vec<SplitKey> = by_metric
                    .get(m)
                    .into_iter()
                    .flatten()
                    .filter_map(|(name, value)| {
                        let start = split_start(name, &method, &g)?;
                        let start = std::str::from_utf8(value)
                            .ok()
                            .and_then(|v| v.parse::<i64>().ok())
                            .or_else(|| seconds_to_ns(start))?;
                        Some(SplitKey {
                            start,
                            granularity: *granularity,
                        })
                    })
                    .collect();
                keys.sort_unstable_by_key(|k| k.start);
                keys.dedup();
                keys
            })
            .collect())
    }

    async fn get_splits(&self, splits: &[SplitRef]) -> Result<Vec<Option<Vec<u8>>>> {
        self.read_objects(splits.iter().map(split_name).collect())
            .await
    }

    async fn write(&self, batch: WriteBatch) -> Result<()> {
        if batch.raw.is_empty() && batch.splits.is_empty() && batch.delete_splits.is_empty() {
            return Ok(());
        }
        let pool = self.pool.clone();
        blocking(move || apply(&pool, batch)).await
    }

    async fn delete_metrics(&self, metrics: &[Uuid]) -> Result<()> {
        if metrics.is_empty() {
            return Ok(());
        }
        let pool = self.pool.clone();
        let metrics = metrics.to_vec();
        blocking(move || delete(&pool, &metrics)).await
    }
}
