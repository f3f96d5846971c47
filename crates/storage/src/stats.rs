//! Counting what the stores are asked: [`Counted`] wraps any [`Incoming`] or
//! [`Aggregates`] (every driver, including ones added later) and adds up, per
//! operation, the calls, the objects they carry, the bytes moved and the wall
//! time spent waiting on them, in [`StoreStats`].
//!
//! Why a wrapper rather than counters inside each driver: the drivers stay
//! untouched, and a new driver is counted the day it exists. What a wrapper
//! cannot see is how a driver turns a call into requests, so both are given:
//! on S3 and Ceph every object is one request (`objects` is the request
//! count); on Redis one call is one pipelined round trip (`calls` is). The
//! benchmark reads a [`StatsSnapshot`] before and after each phase and prints
//! the difference.
//!
//! Counting costs a few relaxed atomic additions per call (not per object).

use crate::{
    Aggregates, Backlog, Incoming, MeasureBatch, Result, SackMeasures, SplitRef, WriteBatch,
};
use async_trait::async_trait;
use carbonara::{Measure, Method, SplitKey};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The operations counted, in the order they are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    AddMeasures,
    Take,
    Commit,
    Release,
    Backlog,
    GetRaw,
    ListSplitKeys,
    GetSplits,
    Write,
    DeleteMetrics,
}

impl Op {
    pub const ALL: [Op; 10] = [
        Op::AddMeasures,
        Op::Take,
        Op::Commit,
        Op::Release,
        Op::Backlog,
        Op::GetRaw,
        Op::ListSplitKeys,
        Op::GetSplits,
        Op::Write,
        Op::DeleteMetrics,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::AddMeasures => "add_measures",
            Op::Take => "take",
            Op::Commit => "commit",
            Op::Release => "release",
            Op::Backlog => "backlog",
            Op::GetRaw => "get_raw",
            Op::ListSplitKeys => "list_split_keys",
            Op::GetSplits => "get_splits",
            Op::Write => "write",
            Op::DeleteMetrics => "delete_metrics",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    objects: AtomicU64,
    bytes: AtomicU64,
    wait_ns: AtomicU64,
}

/// Counters of one store (or of several sharing one [`StoreStats`]).
#[derive(Default)]
pub struct StoreStats {
    ops: [Counters; Op::ALL.len()],
}

/// What one operation cost so far (or between two snapshots).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpStats {
    /// Calls to the store.
    pub calls: u64,
    /// Objects the calls carried: metrics, splits, raw buffers, measure
    /// batches, deleted splits; a sack for `take`/`commit`.
    pub objects: u64,
    /// Payload bytes read or written (measures count 16 bytes each).
    pub bytes: u64,
    /// Wall time spent in the calls, added up over concurrent callers.
    pub wait: Duration,
}

/// Every operation's [`OpStats`], indexed as [`Op::ALL`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub ops: [OpStats; Op::ALL.len()],
}

impl StatsSnapshot {
    pub fn get(&self, op: Op) -> OpStats {
        self.ops[op.index()]
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        let mut out = StatsSnapshot::default();
        for op in Op::ALL {
            let (a, b) = (self.get(op), earlier.get(op));
            out.ops[op.index()] = OpStats {
                calls: a.calls.saturating_sub(b.calls),
                objects: a.objects.saturating_sub(b.objects),
                bytes: a.bytes.saturating_sub(b.bytes),
                wait: a.wait.saturating_sub(b.wait),
            };
        }
        out
    }

    /// The totals over every operation.
    pub fn total(&self) -> OpStats {
        let mut t = OpStats::default();
        for s in &self.ops {
            t.calls += s.calls;
            t.objects += s.objects;
            t.bytes += s.bytes;
            t.wait += s.wait;
        }
        t
    }
}

impl StoreStats {
    pub fn new() -> Arc<StoreStats> {
        Arc::new(StoreStats::default())
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut out = StatsSnapshot::default();
        for op in Op::ALL {
            let c = &self.ops[op.index()];
            out.ops[op.index()] = OpStats {
                calls: c.calls.load(Ordering::Relaxed),
                objects: c.objects.load(Ordering::Relaxed),
                bytes: c.bytes.load(Ordering::Relaxed),
                wait: Duration::from_nanos(c.wait_ns.load(Ordering::Relaxed)),
            };
        }
        out
    }

    fn add(&self, op: Op, objects: usize, bytes: usize, wait: Duration) {
        let c = &self.ops[op.index()];
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.objects.fetch_add(objects as u64, Ordering::Relaxed);
        c.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        c.wait_ns.fetch_add(
            u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// A store whose calls are counted into [`StoreStats`].
pub struct Counted<T: ?Sized> {
    inner: Arc<T>,
    stats: Arc<StoreStats>,
}

impl<T: ?Sized> Counted<T> {
    pub fn new(inner: Arc<T>, stats: Arc<StoreStats>) -> Self {
        Counted { inner, stats }
    }

    /// Time `fut`, then count it with the objects and bytes `size` finds in
    /// its outcome (plus what was known before the call).
    async fn count<R>(
        &self,
        op: Op,
        objects: usize,
        bytes: usize,
        fut: impl Future<Output = Result<R>>,
        size: impl FnOnce(&R) -> (usize, usize),
    ) -> Result<R> {
        let start = Instant::now();
        let r = fut.await;
        let (o, b) = r.as_ref().map(size).unwrap_or((0, 0));
        self.stats.add(op, objects + o, bytes + b, start.elapsed());
        r
    }
}

fn measures_bytes<'a>(lists: impl Iterator<Item = &'a Vec<Measure>>) -> usize {
    lists.map(|m| m.len() * 16).sum()
}

fn blobs(found: &[Option<Vec<u8>>]) -> (usize, usize) {
    (0, found.iter().flatten().map(Vec::len).sum())
}

#[async_trait]
impl Incoming for Counted<dyn Incoming> {
    fn sacks(&self) -> u32 {
        self.inner.sacks()
    }
    async fn add_measures(&self, batch: MeasureBatch) -> Result<()> {
        let (n, b) = (batch.len(), measures_bytes(batch.iter().map(|(_, m)| m)));
        self.count(
            Op::AddMeasures,
            n,
            b,
            self.inner.add_measures(batch),
            |_| (0, 0),
        )
        .await
    }
    async fn take(&self, sack: u32) -> Result<SackMeasures> {
        self.count(Op::Take, 1, 0, self.inner.take(sack), |t| {
            (0, measures_bytes(t.measures.values()))
        })
        .await
    }
    async fn commit(&self, taken: SackMeasures) -> Result<()> {
        self.count(Op::Commit, 1, 0, self.inner.commit(taken), |_| (0, 0))
            .await
    }
    async fn release(&self, taken: SackMeasures) -> Result<()> {
        self.count(Op::Release, 1, 0, self.inner.release(taken), |_| (0, 0))
            .await
    }
    async fn backlog(&self) -> Result<Backlog> {
        self.count(Op::Backlog, 0, 0, self.inner.backlog(), |_| (0, 0))
            .await
    }
    async fn wait_for_new(&self, timeout: Duration) -> Vec<u32> {
        self.inner.wait_for_new(timeout).await
    }
}

#[async_trait]
impl Aggregates for Counted<dyn Aggregates> {
    async fn get_raw(&self, metrics: &[Uuid]) -> Result<Vec<Option<Vec<u8>>>> {
        self.count(
            Op::GetRaw,
            metrics.len(),
            0,
            self.inner.get_raw(metrics),
            |r| blobs(r),
        )
        .await
    }
    async fn list_split_keys(&self, series: &[(Uuid, Method, i64)]) -> Result<Vec<Vec<SplitKey>>> {
        self.count(
            Op::ListSplitKeys,
            series.len(),
            0,
            self.inner.list_split_keys(series),
            |_| (0, 0),
        )
        .await
    }
    async fn get_splits(&self, splits: &[SplitRef]) -> Result<Vec<Option<Vec<u8>>>> {
        self.count(
            Op::GetSplits,
            splits.len(),
            0,
            self.inner.get_splits(splits),
            |r| blobs(r),
        )
        .await
    }
    async fn write(&self, batch: WriteBatch) -> Result<()> {
        let objects = batch.raw.len() + batch.splits.len() + batch.delete_splits.len();
        let bytes = batch.raw.iter().map(|(_, b)| b.len()).sum::<usize>()
            + batch.splits.iter().map(|(_, b)| b.len()).sum::<usize>();
        self.count(Op::Write, objects, bytes, self.inner.write(batch), |_| {
            (0, 0)
        })
        .await
    }
    async fn delete_metrics(&self, metrics: &[Uuid]) -> Result<()> {
        self.count(
            Op::DeleteMetrics,
            metrics.len(),
            0,
            self.inner.delete_metrics(metrics),
            |_| (0, 0),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_aggregates::LocalAggregates;

    #[tokio::test]
    async fn counts_calls_objects_and_bytes() {
        let dir = std::env::temp_dir().join(format!("stats-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let inner: Arc<dyn Aggregates> =
            Arc::new(LocalAggregates::open(&dir.join("a.redb")).unwrap());
        let stats = StoreStats::new();
        let store = Counted::new(inner, stats.clone());
        let before = stats.snapshot();
        let m = Uuid::new_v4();
        store
            .write(WriteBatch {
                raw: vec![(m, vec![1, 2, 3])],
                ..WriteBatch::default()
            })
            .await
            .unwrap();
        let got = store.get_raw(&[m, Uuid::new_v4()]).await.unwrap();
        assert_eq!(got[0].as_deref(), Some(&[1u8, 2, 3][..]));
        let d = stats.snapshot().since(&before);
        assert_eq!((d.get(Op::Write).calls, d.get(Op::Write).objects), (1, 1));
        assert_eq!(d.get(Op::Write).bytes, 3);
        let raw = d.get(Op::GetRaw);
        assert_eq!((raw.calls, raw.objects, raw.bytes), (1, 2, 3));
        assert_eq!(d.total().calls, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
