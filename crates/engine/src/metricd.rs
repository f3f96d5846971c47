//! metricd: turning the measures waiting in sacks into stored aggregates.

use crate::{Engine, EngineError, Result};
use carbonara::aggregated::{merge_split, split_is_expired};
use carbonara::codec;
use carbonara::process::{self, ComputedAggregate, MetricUpdate};
use carbonara::{AggregatedTimeSerie, BoundTimeSerie, Method, SplitKey};
use gnocchi_index::Metric;
use gnocchi_storage::{SplitRef, WriteBatch, sack_of};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// What processing one sack did, for logs and the benchmark.
#[derive(Debug, Default, Clone, Copy)]
pub struct SackReport {
    pub metrics: usize,
    pub measures: usize,
}

/// Sacks the metricd loop processes as one batch: one index lookup, one read
/// and one aggregate write (one durable commit) for all of them, instead of
/// one commit per sack (each commit costs an fsync).
const SACKS_PER_BATCH: usize = 16;

impl Engine {
    /// Process everything pending in several sacks as one batch. Waits for
    /// their locks, taken in ascending order so that concurrent callers never
    /// wait on each other in a cycle.
    pub async fn process_sacks(&self, sacks: &[u32]) -> Result<SackReport> {
        let mut sorted = sacks.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut guards = Vec::with_capacity(sorted.len());
        for sack in &sorted {
            guards.push(self.sack_locks[*sack as usize].lock().await);
        }
        let mut taken = Vec::with_capacity(sorted.len());
        for sack in &sorted {
            match self.incoming.take(*sack).await {
                Ok(t) => taken.push(t),
                Err(e) => {
                    for t in taken {
                        let _ = self.incoming.release(t).await;
                    }
                    return Err(e.into());
                }
            }
        }
        // A metric lives in exactly one sack, so the union has no collisions.
        let mut pending: HashMap<Uuid, Vec<(i64, f64)>> = HashMap::new();
        for t in &taken {
            for (id, measures) in &t.measures {
                pending.entry(*id).or_default().extend_from_slice(measures);
            }
        }
        let result = if pending.is_empty() {
            Ok(SackReport::default())
        } else {
            self.process_measures(&pending).await
        };
        match result {
            Ok(report) => {
                for t in taken {
                    self.incoming.commit(t).await?;
                }
                Ok(report)
            }
            Err(e) => {
                for t in taken {
                    self.incoming.release(t).await?;
                }
                Err(e)
            }
        }
    }

    /// Process everything pending in one sack. Waits for the sack's lock.
    pub async fn process_sack(&self, sack: u32) -> Result<SackReport> {
        let _guard = self.sack_locks[sack as usize].lock().await;
        self.process_sack_locked(sack).await
    }

    /// `refresh=true`: process the metric's sack now, waiting at most `timeout` for
    /// a concurrent processing of the same sack to finish.
    pub async fn refresh_metric(&self, metric: Uuid, timeout: Duration) -> Result<()> {
        let sack = sack_of(metric, self.incoming.sacks());
        let guard = tokio::time::timeout(timeout, self.sack_locks[sack as usize].lock())
            .await
            .map_err(|_| EngineError::MetricLocked(metric))?;
        let r = self.process_sack_locked(sack).await.map(|_| ());
        drop(guard);
        r
    }

    async fn process_sack_locked(&self, sack: u32) -> Result<SackReport> {
        let taken = self.incoming.take(sack).await?;
        if taken.measures.is_empty() {
            self.incoming.commit(taken).await?;
            return Ok(SackReport::default());
        }
        match self.process_measures(&taken.measures).await {
            Ok(report) => {
                self.incoming.commit(taken).await?;
                Ok(report)
            }
            Err(e) => {
                self.incoming.release(taken).await?;
                Err(e)
            }
        }
    }

    /// Merge the given measures into their metrics' aggregates and write the result.
    /// Measures of unknown or deleted metrics are dropped, as upstream does.
    async fn process_measures(
        &self,
        pending: &HashMap<Uuid, Vec<(i64, f64)>>,
    ) -> Result<SackReport> {
        let ids: Vec<Uuid> = pending.keys().copied().collect();
        let metrics = self.indexer.get_metrics(&ids).await?;
        if metrics.is_empty() {
            return Ok(SackReport::default());
        }
        let metric_ids: Vec<Uuid> = metrics.iter().map(|m| m.id).collect();
        let raws = self.aggregates.get_raw(&metric_ids).await?;

        // Pure computation off the executor: decode raw buffers, apply measures.
        let inputs: Vec<MetricInput> = metrics
            .into_iter()
            .zip(raws)
            .map(|(m, raw)| {
                let measures = pending.get(&m.id).cloned().unwrap_or_default();
                (m, raw, measures)
            })
            .collect();
        let measures_count: usize = inputs.iter().map(|(_, _, m)| m.len()).sum();
        let updates = tokio::task::spawn_blocking(move || compute_updates(inputs))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let metrics_count = updates.len();

        // Which splits already exist: one listing for every series touched.
        let series: Vec<(Uuid, Method, i64)> = updates
            .iter()
            .flat_map(|(id, u)| {
                u.aggregates
                    .iter()
                    .map(move |a| (*id, a.method, a.granularity))
            })
            .collect();
        let existing_keys = self.aggregates.list_split_keys(&series).await?;

        // Read only the stored splits that the new points fall into.
        let mut to_read: Vec<SplitRef> = Vec::new();
        let mut series_keys = existing_keys.iter();
        for (id, update) in &updates {
            for agg in &update.aggregates {
                let keys = series_keys.next().map(Vec::as_slice).unwrap_or(&[]);
                for (key, _) in agg.serie.split() {
                    if keys.binary_search(&key).is_ok() {
                        to_read.push(SplitRef {
                            metric: *id,
                            method: agg.method,
                            key,
                        });
                    }
                }
            }
        }
        let stored = self.aggregates.get_splits(&to_read).await?;
        let stored: HashMap<SplitRef, Vec<u8>> = to_read
            .into_iter()
            .zip(stored)
            .filter_map(|(r, b)| b.map(|b| (r, b)))
            .collect();

        let batch =
            tokio::task::spawn_blocking(move || build_write_batch(updates, existing_keys, stored))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))?;
        self.aggregates.write(batch).await?;
        Ok(SackReport {
            metrics: metrics_count,
            measures: measures_count,
        })
    }

    /// The metricd loop: process sacks as soon as they are notified, and every
    /// sack at least every `processing_delay`, until `shutdown` flips to true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let sacks = self.incoming.sacks();
        let workers = self.config.workers.max(1);
        let mut last_full_scan = Instant::now();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = Duration::from_millis(200);
            let mut todo = tokio::select! {
                s = self.incoming.wait_for_new(wait) => s,
                _ = shutdown.changed() => return,
            };
            if last_full_scan.elapsed() >= self.config.processing_delay {
                todo = (0..sacks).collect();
                last_full_scan = Instant::now();
            }
            todo.sort_unstable();
            todo.dedup();
            // Process the sacks in batches, with bounded concurrency.
            let mut set = tokio::task::JoinSet::new();
            let per_batch = todo.len().div_ceil(workers).clamp(1, SACKS_PER_BATCH);
            for group in todo.chunks(per_batch) {
                while set.len() >= workers {
                    set.join_next().await;
                }
                let engine = self.clone();
                let group = group.to_vec();
                set.spawn(async move {
                    if let Err(e) = engine.process_sacks(&group).await {
                        tracing::error!(sacks = ?group, error = %e, "processing sacks failed; measures kept for retry");
                    }
                });
            }
            while set.join_next().await.is_some() {}
        }
    }

    /// Purge the data of deleted metrics, then their index rows. Returns how many.
    pub async fn janitor_pass(&self) -> Result<usize> {
        let ids = self
            .indexer
            .list_deleted_metrics(self.config.cleanup_batch_size)
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        self.aggregates.delete_metrics(&ids).await?;
        self.indexer.expunge_metrics(&ids).await?;
        Ok(ids.len())
    }

    /// The janitor loop (asynchronous deletion of metrics).
    pub async fn run_janitor(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.janitor_pass().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(metrics = n, "janitor purged deleted metrics"),
                Err(e) => tracing::error!(error = %e, "janitor pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.cleanup_delay) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

type Update = (Uuid, MetricUpdate);
/// A metric, its stored raw buffer and the measures to merge into it.
type MetricInput = (Metric, Option<Vec<u8>>, Vec<(i64, f64)>);

fn compute_updates(inputs: Vec<MetricInput>) -> Vec<Update> {
    let mut out = Vec::with_capacity(inputs.len());
    for (metric, raw, mut measures) in inputs {
        let policy = &metric.archive_policy;
        let raw = raw.and_then(|bytes| {
            match codec::decode_raw(
                &bytes,
                policy.max_block_size(),
                process::raw_back_window(policy),
            ) {
                Ok(r) => Some(r),
                Err(e) => {
                    // Upstream treats a corrupt buffer as empty; so do we, loudly.
                    tracing::error!(metric = %metric.id, error = %e, "corrupt raw buffer ignored");
                    None
                }
            }
        });
        let raw: Option<BoundTimeSerie> = raw.map(|mut r| {
            // The policy may have changed since the buffer was written.
            r.block_size = policy.max_block_size();
            r.back_window = process::raw_back_window(policy);
            r
        });
        if let Some(update) = process::apply_measures(raw, policy, &mut measures) {
            out.push((metric.id, update));
        }
    }
    out
}

fn build_write_batch(
    updates: Vec<Update>,
    existing_keys: Vec<Vec<SplitKey>>,
    stored: HashMap<SplitRef, Vec<u8>>,
) -> WriteBatch {
    let mut batch = WriteBatch::default();
    let mut keys_iter = existing_keys.into_iter();
    for (id, update) in updates {
        batch.raw.push((id, codec::encode_raw(&update.raw)));
        for agg in &update.aggregates {
            let keys = keys_iter.next().unwrap_or_default();
            write_aggregate(&mut batch, id, agg, &keys, &stored);
        }
    }
    batch
}

fn write_aggregate(
    batch: &mut WriteBatch,
    id: Uuid,
    agg: &ComputedAggregate,
    existing: &[SplitKey],
    stored: &HashMap<SplitRef, Vec<u8>>,
) {
    let oldest = agg.oldest_point_to_keep();
    if let Some(oldest) = oldest {
        for key in existing {
            if split_is_expired(*key, oldest) {
                batch.delete_splits.push(SplitRef {
                    metric: id,
                    method: agg.method,
                    key: *key,
                });
            }
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
        let merged = merge_split(previous, &part, oldest);
        if merged.is_empty() {
            batch.delete_splits.push(r);
        } else {
            batch.splits.push((r, codec::encode_split(key, &merged)));
        }
    }
}
