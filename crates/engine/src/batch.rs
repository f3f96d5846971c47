//! One batch of metricd: the measures taken from a batch of sacks become
//! aggregates. The batch is processed in parts (groups of its metrics), up to
//! `[metricd] concurrency` at once; each part reads its raw buffers and the
//! splits it merges into, computes on the blocking pool, and writes one batch
//! to the aggregate store. The caller commits the sacks only once every part
//! is written (the sacks' locks are held throughout).

use crate::metricd::SackReport;
use crate::split_cache::RawStamp;
use crate::{Engine, EngineError, InternalError, Result};
use carbonara::aggregated::{merge_split, split_is_expired};
use carbonara::codec;
use carbonara::process::{self, ComputedAggregate, MetricUpdate};
use carbonara::{AggregatedTimeSerie, BoundTimeSerie, Measure, Method, SplitKey};
use gnocchi_index::Metric;
use gnocchi_storage::{SplitRef, WriteBatch};
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// The smallest part of a batch processed on its own (see
/// [`Engine::process_measures`]): 8 metrics of a 6-method policy are ~56
/// objects per write, enough to fill one S3 call's parallel requests, so
/// smaller parts would add calls without adding requests in flight.
const MIN_METRICS_PER_PART: usize = 8;

impl Engine {
    /// Merge the given measures into their metrics' aggregates and write the result.
    /// Measures of unknown or deleted metrics are dropped, as upstream does.
    ///
    /// The metrics are processed in parts, up to `[metricd] concurrency` at
    /// once (see [`EngineConfig::concurrency`](crate::EngineConfig)): each part
    /// reads its raw buffers and splits and writes its own batch, so on a
    /// network store the round trips of one part overlap the others'. The
    /// sack is committed by the caller only after every part is written.
    pub(crate) async fn process_measures(
        &self,
        pending: &HashMap<Uuid, Vec<Measure>>,
    ) -> Result<SackReport> {
        use futures::{StreamExt, TryStreamExt};
        let ids: Vec<Uuid> = pending.keys().copied().collect();
        let metrics = self.indexer.get_metrics(&ids).await?;
        if metrics.is_empty() {
            return Ok(SackReport::default());
        }
        let concurrency = self.config.concurrency.max(1);
        let per_part = metrics
            .len()
            .div_ceil(concurrency)
            .max(MIN_METRICS_PER_PART);
        let mut parts: Vec<Vec<MetricInput>> = Vec::new();
        let mut metrics = metrics.into_iter().peekable();
        while metrics.peek().is_some() {
            parts.push(
                metrics
                    .by_ref()
                    .take(per_part)
                    .map(|metric| MetricInput {
                        measures: pending.get(&metric.id).cloned().unwrap_or_default(),
                        metric,
                        raw: None,
                    })
                    .collect(),
            );
        }
        futures::stream::iter(parts)
            .map(|part| self.process_part(part))
            .buffer_unordered(concurrency)
            .try_fold(SackReport::default(), |mut total, r| async move {
                total.metrics += r.metrics;
                total.measures += r.measures;
                Ok(total)
            })
            .await
    }

    /// One part of [`Engine::process_measures`]: read the raw buffers and the
    /// touched splits, compute, write. Every read is one batch call; a split
    /// is read only if the split index says it exists and the new points fall
    /// into it, and once.
    async fn process_part(&self, mut inputs: Vec<MetricInput>) -> Result<SackReport> {
        let metric_ids: Vec<Uuid> = inputs.iter().map(|i| i.metric.id).collect();
        // In the order asked: each buffer is paired with its metric at once.
        let raws = self.aggregates.get_raw(&metric_ids).await?;
        // What this process wrote last for metrics whose raw buffer is unchanged.
        let mut cached: HashMap<Uuid, HashMap<SplitRef, Vec<u8>>> = HashMap::new();
        for (input, raw) in inputs.iter_mut().zip(raws) {
            if let Some(bytes) = &raw
                && let Some(splits) = self
                    .split_cache
                    .splits_for(input.metric.id, RawStamp::of(bytes))
            {
                cached.insert(input.metric.id, splits);
            }
            input.raw = raw;
        }
        let measures_count: usize = inputs.iter().map(|i| i.measures.len()).sum();
        // Pure computation off the executor: decode raw buffers, apply measures.
        let works = tokio::task::spawn_blocking(move || compute_updates(inputs))
            .await
            .map_err(|e| EngineError::Internal(InternalError::Blocking(e)))?;
        let metrics_count = works.len();

        // Which splits already exist, per series touched: from the split
        // index stored in the raw buffer; none for new metrics; a listing
        // only for buffers written without an index (or lacking the series).
        let mut existing: HashMap<SeriesId, Vec<SplitKey>> = HashMap::new();
        let mut unlisted: Vec<SeriesId> = Vec::new();
        for work in &works {
            for agg in &work.update.aggregates {
                let series = SeriesId::of(work.id, agg);
                match work.known_split_keys(agg) {
                    Some(keys) => {
                        existing.insert(series, keys);
                    }
                    None => unlisted.push(series),
                }
            }
        }
        if !unlisted.is_empty() {
            let asked: Vec<(Uuid, Method, i64)> =
                unlisted.iter().map(SeriesId::storage_key).collect();
            // In the order asked: each answer is paired with its series at once.
            let listed = self.aggregates.list_split_keys(&asked).await?;
            existing.extend(unlisted.into_iter().zip(listed));
        }

        // Read only the stored splits that the new points fall into, each
        // once, and none that this process wrote last (the cache has them).
        let mut to_read: Vec<SplitRef> = Vec::new();
        let mut asked: HashSet<SplitRef> = HashSet::new();
        let mut stored: HashMap<SplitRef, Vec<u8>> = HashMap::new();
        for work in &works {
            for agg in &work.update.aggregates {
                let keys = existing_keys(&existing, SeriesId::of(work.id, agg));
                for (key, _) in agg.serie.split() {
                    let r = SplitRef {
                        metric: work.id,
                        method: agg.method,
                        key,
                    };
                    if keys.binary_search(&key).is_ok() && asked.insert(r) {
                        match cached.get_mut(&r.metric).and_then(|c| c.remove(&r)) {
                            Some(bytes) => {
                                stored.insert(r, bytes);
                            }
                            None => to_read.push(r),
                        }
                    }
                }
            }
        }
        if !to_read.is_empty() {
            let read = self.aggregates.get_splits(&to_read).await?;
            stored.extend(
                to_read
                    .into_iter()
                    .zip(read)
                    .filter_map(|(r, b)| b.map(|b| (r, b))),
            );
        }

        let batch =
            tokio::task::spawn_blocking(move || build_write_batch(works, &existing, stored))
                .await
                .map_err(|e| EngineError::Internal(InternalError::Blocking(e)))?;
        let written = self.split_cache.enabled().then(|| cache_entries(&batch));
        self.split_cache.forget(batch.raw.iter().map(|(m, _)| *m));
        self.aggregates.write(batch).await?;
        for (metric, (raw, splits)) in written.into_iter().flatten() {
            self.split_cache.insert(metric, raw, splits);
        }
        Ok(SackReport {
            metrics: metrics_count,
            measures: measures_count,
            skipped: 0,
        })
    }
}

/// A metric to process: its definition, its stored raw buffer (`None`: never
/// processed) and the measures to merge into it.
struct MetricInput {
    metric: Metric,
    raw: Option<Vec<u8>>,
    measures: Vec<Measure>,
}

/// One metric's computed update, and what its previous raw buffer says of the
/// splits it has.
struct MetricWork {
    id: Uuid,
    update: MetricUpdate,
    /// The split index of the previous raw buffer (`None`: no buffer, one
    /// written without an index, or a corrupt one).
    index: Option<codec::SplitIndex>,
    /// Whether the metric had a raw buffer. One without was never processed,
    /// so it has no splits either (every write batch stores the raw buffer of
    /// each metric it touches): listing its series would only cost round
    /// trips (six LISTs per new metric on S3).
    processed_before: bool,
}

impl MetricWork {
    /// The keys of the splits stored for `agg`'s series, when known without a
    /// listing: none for a new metric, the split index's otherwise (`None`
    /// when the index is missing or lacks the series).
    fn known_split_keys(&self, agg: &ComputedAggregate) -> Option<Vec<SplitKey>> {
        if !self.processed_before {
            return Some(Vec::new());
        }
        let starts = self.index.as_ref()?.get(&(agg.method, agg.granularity))?;
        Some(
            starts
                .iter()
                .map(|&start| SplitKey {
                    start,
                    granularity: agg.granularity,
                })
                .collect(),
        )
    }
}

/// One series: a metric's aggregates with one method at one granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesId {
    metric: Uuid,
    method: Method,
    granularity: i64,
}

impl SeriesId {
    fn of(metric: Uuid, agg: &ComputedAggregate) -> Self {
        SeriesId {
            metric,
            method: agg.method,
            granularity: agg.granularity,
        }
    }

    /// The series as the storage API names it.
    fn storage_key(&self) -> (Uuid, Method, i64) {
        (self.metric, self.method, self.granularity)
    }
}

/// The keys of the splits `series` has before this batch, sorted (none when
/// unknown: a listing that did not answer for it).
fn existing_keys(existing: &HashMap<SeriesId, Vec<SplitKey>>, series: SeriesId) -> &[SplitKey] {
    existing.get(&series).map_or(&[], Vec::as_slice)
}

fn compute_updates(inputs: Vec<MetricInput>) -> Vec<MetricWork> {
    let mut out = Vec::with_capacity(inputs.len());
    for MetricInput {
        metric,
        raw,
        mut measures,
    } in inputs
    {
        let policy = &metric.archive_policy;
        let processed_before = raw.is_some();
        let decoded = raw.and_then(|bytes| {
            match codec::decode_raw_with_index(
                &bytes,
                policy.max_block_size(),
                process::raw_back_window(policy),
            ) {
                Ok(r) => Some(r),
                Err(e) => {
                    // Upstream treats a corrupt buffer as empty; so do we, loudly.
                    // Its split index is lost with it: the splits get listed.
                    tracing::error!(metric = %metric.id, error = %e, "corrupt raw buffer ignored");
                    None
                }
            }
        });
        let (raw, index) = match decoded {
            Some((raw, index)) => (Some(raw), index),
            None => (None, None),
        };
        let raw: Option<BoundTimeSerie> = raw.map(|mut r| {
            // The policy may have changed since the buffer was written.
            r.block_size = policy.max_block_size();
            r.back_window = process::raw_back_window(policy);
            r
        });
        if let Some(update) = process::apply_measures(raw, policy, &mut measures) {
            out.push(MetricWork {
                id: metric.id,
                update,
                index,
                processed_before,
            });
        }
    }
    out
}

/// Per metric of `batch`, its raw buffer's stamp and the splits written, for
/// the split cache.
fn cache_entries(batch: &WriteBatch) -> HashMap<Uuid, (RawStamp, HashMap<SplitRef, Vec<u8>>)> {
    let mut out: HashMap<Uuid, (RawStamp, HashMap<SplitRef, Vec<u8>>)> = batch
        .raw
        .iter()
        .map(|(m, raw)| (*m, (RawStamp::of(raw), HashMap::new())))
        .collect();
    for (r, bytes) in &batch.splits {
        if let Some((_, splits)) = out.get_mut(&r.metric) {
            splits.insert(*r, bytes.clone());
        }
    }
    out
}

fn build_write_batch(
    works: Vec<MetricWork>,
    existing: &HashMap<SeriesId, Vec<SplitKey>>,
    stored: HashMap<SplitRef, Vec<u8>>,
) -> WriteBatch {
    let mut batch = WriteBatch::default();
    for MetricWork {
        id, update, index, ..
    } in works
    {
        // Series not touched this time keep their entries.
        let mut index = index.unwrap_or_default();
        for agg in &update.aggregates {
            let keys = existing_keys(existing, SeriesId::of(id, agg));
            let expire = update.expires_splits(agg.granularity);
            let kept = write_aggregate(&mut batch, id, agg, expire, keys, &stored);
            index.insert(
                (agg.method, agg.granularity),
                kept.into_iter().map(|k| k.start).collect(),
            );
        }
        batch
            .raw
            .push((id, codec::encode_raw_with_index(&update.raw, &index)));
    }
    batch
}

/// Add one series' split writes and deletions to `batch`; returns the keys
/// of the splits the series has once the batch is written, sorted. Splits out
/// of retention are deleted only when `expire` (see
/// [`MetricUpdate::expires_splits`]).
fn write_aggregate(
    batch: &mut WriteBatch,
    id: Uuid,
    agg: &ComputedAggregate,
    expire: bool,
    existing: &[SplitKey],
    stored: &HashMap<SplitRef, Vec<u8>>,
) -> Vec<SplitKey> {
    let oldest = agg.oldest_point_to_keep();
    let mut kept: BTreeSet<SplitKey> = BTreeSet::new();
    for key in existing {
        if expire && oldest.is_some_and(|o| split_is_expired(*key, o)) {
            batch.delete_splits.push(SplitRef {
                metric: id,
                method: agg.method,
                key: *key,
            });
        } else {
            kept.insert(*key);
        }
    }
    for (key, part) in agg.serie.split() {
        if oldest.is_some_and(|o| split_is_expired(key, o)) {
            continue;
        }
        let r = SplitRef {
            metric: id,
            method: agg.method,
            key,
        };
        let previous: Option<AggregatedTimeSerie> = stored.get(&r).and_then(|bytes| {
            codec::decode_split(key, bytes)
                .map_err(|e| tracing::error!(metric = %id, error = %e, "corrupt split ignored"))
                .ok()
        });
        let merged = merge_split(previous, part, oldest);
        if merged.is_empty() {
            batch.delete_splits.push(r);
            kept.remove(&key);
        } else {
            batch.splits.push((r, codec::encode_split(key, &merged)));
            kept.insert(key);
        }
    }
    kept.into_iter().collect()
}
