//! Local aggregate store: splits and raw buffers in one embedded redb file.
//!
//! Two tables, both `bytes → bytes`:
//!
//! - `raw`: metric uuid (16 bytes) → raw buffer;
//! - `splits`: 34-byte key → split, the key being
//!   `metric uuid [16] | method [2] | granularity [8] | split start [8]`, the two
//!   integers big-endian with the sign bit flipped so that byte order is numeric
//!   order. All splits of one (metric, method, granularity) are thus one key range
//!   (`list_split_keys` is a range scan, ascending), and all splits of a metric
//!   one prefix (`delete_metrics` is a range delete).
//!
//! The method is encoded structurally, not by name (stable on disk whatever the
//! spelling): first byte the method (`mean` 1, `sum` 2, `last` 3, `max` 4,
//! `min` 5, `std` 6, `median` 7, `first` 8, `count` 9, `Npct` 10), plus `0x80`
//! for `rate:`; second byte the percentile of `Npct`, else 0.
//!
//! Every call is one redb transaction run on tokio's blocking pool; `write` is one
//! durable write transaction for the whole batch.

use crate::{Aggregates, Result, SplitRef, StorageError, WriteBatch};
use async_trait::async_trait;
use carbonara::method::BaseMethod;
use carbonara::{Method, SplitKey};
use redb::{Database, TableDefinition};
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

const RAW: TableDefinition<&[u8], &[u8]> = TableDefinition::new("raw");
const SPLITS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("splits");

const SERIES_KEY: usize = 16 + 2 + 8;
const SPLIT_KEY: usize = SERIES_KEY + 8;

/// The aggregate store of the embedded (single machine) deployment.
pub struct LocalAggregates {
    db: Arc<Database>,
}

fn backend<E: Into<redb::Error>>(e: E) -> StorageError {
    StorageError::Redb(Box::new(e.into()))
}

fn base_code(m: BaseMethod) -> [u8; 2] {
    match m {
        BaseMethod::Mean => [1, 0],
        BaseMethod::Sum => [2, 0],
        BaseMethod::Last => [3, 0],
        BaseMethod::Max => [4, 0],
        BaseMethod::Min => [5, 0],
        BaseMethod::Std => [6, 0],
        BaseMethod::Median => [7, 0],
        BaseMethod::First => [8, 0],
        BaseMethod::Count => [9, 0],
        BaseMethod::Pct(p) => [10, p],
    }
}

fn method_code(m: Method) -> [u8; 2] {
    match m {
        Method::Mean => base_code(BaseMethod::Mean),
        Method::Sum => base_code(BaseMethod::Sum),
        Method::Last => base_code(BaseMethod::Last),
        Method::Max => base_code(BaseMethod::Max),
        Method::Min => base_code(BaseMethod::Min),
        Method::Std => base_code(BaseMethod::Std),
        Method::Median => base_code(BaseMethod::Median),
        Method::First => base_code(BaseMethod::First),
        Method::Count => base_code(BaseMethod::Count),
        Method::Pct(p) => base_code(BaseMethod::Pct(p)),
        Method::Rate(b) => {
            let [c, p] = base_code(b);
            [c | 0x80, p]
        }
    }
}

/// Big-endian with the sign bit flipped: byte order = numeric order.
fn ordered(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn unordered(b: &[u8]) -> i64 {
    (u64::from_be_bytes(b.try_into().expect("8 bytes")) ^ (1 << 63)) as i64
}

fn series_key(metric: Uuid, method: Method, granularity: i64) -> [u8; SERIES_KEY] {
    let mut k = [0u8; SERIES_KEY];
    k[..16].copy_from_slice(metric.as_bytes());
    k[16..18].copy_from_slice(&method_code(method));
    k[18..26].copy_from_slice(&ordered(granularity));
    k
}

fn split_key(s: &SplitRef) -> [u8; SPLIT_KEY] {
    let mut k = [0u8; SPLIT_KEY];
    k[..SERIES_KEY].copy_from_slice(&series_key(s.metric, s.method, s.key.granularity));
    k[SERIES_KEY..].copy_from_slice(&ordered(s.key.start));
    k
}

impl LocalAggregates {
    /// Open (or create) the store file at `path`, with redb's default cache.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, None)
    }

    /// Open with a page cache of `cache_bytes` (redb's default, 1 GiB, if `None`).
    pub fn open_with_cache(path: &Path, cache_bytes: Option<usize>) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut builder = Database::builder();
        if let Some(bytes) = cache_bytes {
            builder.set_cache_size(bytes);
        }
        let db = builder.create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StorageError::Locked(path.display().to_string())
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(e)) => StorageError::Io(e),
            e => backend(e),
        })?;
        // Create the tables once so that read transactions always find them.
        let tx = db.begin_write().map_err(backend)?;
        tx.open_table(RAW).map_err(backend)?;
        tx.open_table(SPLITS).map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(LocalAggregates { db: Arc::new(db) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(StorageError::TaskFailed)?
    }
}

#[async_trait]
impl Aggregates for LocalAggregates {
    async fn get_raw(&self, metrics: &[Uuid]) -> Result<Vec<Option<Vec<u8>>>> {
        let metrics = metrics.to_vec();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(backend)?;
            let table = tx.open_table(RAW).map_err(backend)?;
            metrics
                .iter()
                .map(|m| {
                    Ok(table
                        .get(m.as_bytes().as_slice())
                        .map_err(backend)?
                        .map(|v| v.value().to_vec()))
                })
                .collect()
        })
        .await
    }

    async fn list_split_keys(&self, series: &[(Uuid, Method, i64)]) -> Result<Vec<Vec<SplitKey>>> {
        let series = series.to_vec();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(backend)?;
            let table = tx.open_table(SPLITS).map_err(backend)?;
            let mut out = Vec::with_capacity(series.len());
            for &(metric, method, granularity) in &series {
                let mut lo = [0u8; SPLIT_KEY];
                lo[..SERIES_KEY].copy_from_slice(&series_key(metric, method, granularity));
                let mut hi = lo;
                hi[SERIES_KEY..].fill(0xff);
                let mut keys = Vec::new();
                for entry in table
                    .range::<&[u8]>(lo.as_slice()..=hi.as_slice())
                    .map_err(backend)?
                {
                    let (k, _) = entry.map_err(backend)?;
                    let k = k.value();
                    keys.push(SplitKey {
                        start: unordered(&k[SERIES_KEY..]),
                        granularity,
                    });
                }
                out.push(keys);
            }
            Ok(out)
        })
        .await
    }

    async fn get_splits(&self, splits: &[SplitRef]) -> Result<Vec<Option<Vec<u8>>>> {
        let splits = splits.to_vec();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(backend)?;
            let table = tx.open_table(SPLITS).map_err(backend)?;
            splits
                .iter()
                .map(|s| {
                    Ok(table
                        .get(split_key(s).as_slice())
                        .map_err(backend)?
                        .map(|v| v.value().to_vec()))
                })
                .collect()
        })
        .await
    }

    async fn write(&self, batch: WriteBatch) -> Result<()> {
        if batch.raw.is_empty() && batch.splits.is_empty() && batch.delete_splits.is_empty() {
            return Ok(());
        }
        self.blocking(move |db| {
            // Sorted keys make the B-tree inserts sequential.
            let mut raw: Vec<(&[u8; 16], &[u8])> = batch
                .raw
                .iter()
                .map(|(m, v)| (m.as_bytes(), v.as_slice()))
                .collect();
            raw.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let mut splits: Vec<([u8; SPLIT_KEY], &[u8])> = batch
                .splits
                .iter()
                .map(|(s, v)| (split_key(s), v.as_slice()))
                .collect();
            splits.sort_unstable_by_key(|a| a.0);
            let tx = db.begin_write().map_err(backend)?;
            {
                let mut table = tx.open_table(RAW).map_err(backend)?;
                for (k, v) in raw {
                    table.insert(k.as_slice(), v).map_err(backend)?;
                }
                let mut table = tx.open_table(SPLITS).map_err(backend)?;
                for s in &batch.delete_splits {
                    table.remove(split_key(s).as_slice()).map_err(backend)?;
                }
                for (k, v) in &splits {
                    table.insert(k.as_slice(), *v).map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn delete_metrics(&self, metrics: &[Uuid]) -> Result<()> {
        if metrics.is_empty() {
            return Ok(());
        }
        let metrics = metrics.to_vec();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(backend)?;
            {
                let mut raw = tx.open_table(RAW).map_err(backend)?;
                let mut splits = tx.open_table(SPLITS).map_err(backend)?;
                for m in &metrics {
                    raw.remove(m.as_bytes().as_slice()).map_err(backend)?;
                    let mut lo = [0u8; SPLIT_KEY];
                    lo[..16].copy_from_slice(m.as_bytes());
                    let mut hi = lo;
                    hi[16..].fill(0xff);
                    splits
                        .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)
                        .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_integers_sort_numerically() {
        let vals = [i64::MIN, -5, -1, 0, 1, 7, 1 << 40, i64::MAX];
        for w in vals.windows(2) {
            assert!(ordered(w[0]) < ordered(w[1]));
        }
        for v in vals {
            assert_eq!(unordered(&ordered(v)), v);
        }
    }

    #[test]
    fn method_codes_are_distinct() {
        let mut methods = vec![
            Method::Mean,
            Method::Sum,
            Method::Last,
            Method::Max,
            Method::Min,
            Method::Std,
            Method::Median,
            Method::First,
            Method::Count,
        ];
        methods.extend((1..=99).map(Method::Pct));
        let bases: Vec<BaseMethod> = [
            BaseMethod::Mean,
            BaseMethod::Sum,
            BaseMethod::Last,
            BaseMethod::Max,
            BaseMethod::Min,
            BaseMethod::Std,
            BaseMethod::Median,
            BaseMethod::First,
            BaseMethod::Count,
        ]
        .into_iter()
        .chain((1..=99).map(BaseMethod::Pct))
        .collect();
        methods.extend(bases.into_iter().map(Method::Rate));
        let codes: std::collections::HashSet<[u8; 2]> =
            methods.iter().map(|m| method_code(*m)).collect();
        assert_eq!(codes.len(), methods.len());
    }
}
