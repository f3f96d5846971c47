//! metricd: turning the measures waiting in sacks into stored aggregates.

use crate::coordination::{CoordResult, SackLock, lock_sack_until};
use crate::hashring::HashRing;
use crate::{Engine, EngineError, InternalError, Result};
use carbonara::Measure;
use gnocchi_storage::{SackMeasures, sack_of};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{MutexGuard, watch};
use uuid::Uuid;

/// What processing one sack did, for logs and the benchmark.
#[derive(Debug, Default, Clone, Copy)]
pub struct SackReport {
    pub metrics: usize,
    pub measures: usize,
    /// Sacks not processed because another process holds their lock.
    pub skipped: usize,
}

/// Sacks the metricd loop processes as one batch: one index lookup, one read
/// and one aggregate write (one durable commit) for all of them, instead of
/// one commit per sack (each commit costs an fsync).
const SACKS_PER_BATCH: usize = 16;

/// A sack skipped because another process held its lock is tried again after
/// this long, without waiting for a notification or the next full scan: after a
/// worker dies, its sacks may stay locked until the lock's TTL, and nothing
/// else would bring the new owner back to them before `processing_delay`.
const RETRY_SKIPPED_AFTER: Duration = Duration::from_secs(1);

/// How long the janitor waits for a sack's lock before leaving the sack's
/// deleted metrics to its next pass.
const JANITOR_LOCK_WAIT: Duration = Duration::from_secs(5);

impl Engine {
    /// Process everything pending in several sacks as one batch. Waits for
    /// their in-process locks, taken in ascending order so that concurrent
    /// callers never wait on each other in a cycle; then takes their
    /// distributed locks without waiting and skips the sacks another process
    /// holds (as upstream does: that process is on them already).
    pub async fn process_sacks(&self, sacks: &[u32]) -> Result<SackReport> {
        self.process_sacks_or_skip(sacks).await.map(|(r, _)| r)
    }

    /// [`Engine::process_sacks`], also returning the sacks skipped.
    async fn process_sacks_or_skip(&self, sacks: &[u32]) -> Result<(SackReport, Vec<u32>)> {
        let mut sorted = sacks.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut guarded = Vec::with_capacity(sorted.len());
        for sack in sorted {
            let guard = self.sack_locks[sack as usize].lock().await;
            guarded.push((sack, guard));
        }
        // One concurrent attempt per sack: over a multiplexed Redis connection
        // they share round trips. In-process, no call at all: the embedded
        // default pays nothing for coordination.
        let attempts: Vec<SackAttempt<'_>> = if self.coordinator.is_distributed() {
            futures::future::join_all(guarded.into_iter().map(|(sack, guard)| async move {
                let lock = self.coordinator.try_lock_sack(sack).await;
                SackAttempt { sack, guard, lock }
            }))
            .await
        } else {
            guarded
                .into_iter()
                .map(|(sack, guard)| SackAttempt {
                    sack,
                    guard,
                    lock: Ok(Some(SackLock::local(sack))),
                })
                .collect()
        };
        let mut locks = Vec::with_capacity(attempts.len());
        let mut skipped = Vec::new();
        let mut kept_guards = Vec::with_capacity(attempts.len());
        for SackAttempt { sack, guard, lock } in attempts {
            match lock {
                Ok(Some(lock)) => {
                    locks.push(lock);
                    kept_guards.push(guard);
                }
                Ok(None) => skipped.push(sack),
                Err(e) => {
                    tracing::warn!(sack, error = %e, "cannot take the sack lock; sack skipped");
                    skipped.push(sack);
                }
            }
        }
        let result = self.process_locked_sacks(&locks).await;
        unlock_all(locks).await;
        drop(kept_guards);
        result.map(|mut report| {
            report.skipped = skipped.len();
            (report, skipped)
        })
    }

    /// Take, process and commit the sacks whose locks are all held.
    async fn process_locked_sacks(&self, locks: &[SackLock]) -> Result<SackReport> {
        // Every sack at once: one shared round trip on a multiplexed
        // connection instead of one per sack.
        let results =
            futures::future::join_all(locks.iter().map(|lock| self.incoming.take(lock.sack())))
                .await;
        let mut taken: Vec<(&SackLock, SackMeasures)> = Vec::with_capacity(locks.len());
        let mut failed = None;
        for (lock, r) in locks.iter().zip(results) {
            match r {
                Ok(t) => taken.push((lock, t)),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failed {
            for (_, t) in taken {
                let _ = self.incoming.release(t).await;
            }
            return Err(e.into());
        }
        // A metric lives in exactly one sack, so the union has no collisions.
        let mut pending: HashMap<Uuid, Vec<Measure>> = HashMap::new();
        for (_, t) in &taken {
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
                let finished = futures::future::join_all(
                    taken.into_iter().map(|(lock, t)| self.finish(t, lock)),
                )
                .await;
                match finished.into_iter().find_map(|r| r.err()) {
                    None => Ok(report),
                    Some(e) => Err(e),
                }
            }
            Err(e) => {
                for (_, t) in taken {
                    self.incoming.release(t).await?;
                }
                Err(e)
            }
        }
    }

    /// Delete the processed measures of a sack, if its lock is still ours. A
    /// lock that may have expired (the coordination backend was unreachable)
    /// means another worker may have read the same measures: deleting them now
    /// could delete measures that worker has not processed, so they are left
    /// in the sack and processed again (idempotently) instead.
    async fn finish(&self, taken: SackMeasures, lock: &SackLock) -> Result<()> {
        if lock.held() {
            let measures = taken.measures.values().map(|m| m.len() as u64).sum();
            self.incoming.commit(taken).await?;
            self.stats.record(measures);
        } else {
            tracing::warn!(
                sack = lock.sack(),
                "sack lock lost while processing; measures kept to be processed again"
            );
            self.incoming.release(taken).await?;
        }
        Ok(())
    }

    /// Process everything pending in one sack. Waits for the sack's locks
    /// (in-process, then distributed).
    pub async fn process_sack(&self, sack: u32) -> Result<SackReport> {
        let _guard = self.sack_locks[sack as usize].lock().await;
        let lock = lock_sack_until(self.coordinator.as_ref(), sack, None)
            .await
            .ok_or_else(|| EngineError::Internal(InternalError::SackLock(sack)))?;
        let r = self.process_sack_locked(&lock).await;
        unlock_all(vec![lock]).await;
        r
    }

    /// `refresh=true`: process the metric's sack now, waiting at most `timeout` for
    /// a concurrent processing of the same sack (here or in another process) to
    /// finish.
    pub async fn refresh_metric(&self, metric: Uuid, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let sack = sack_of(metric, self.incoming.sacks());
        let guard = tokio::time::timeout(timeout, self.sack_locks[sack as usize].lock())
            .await
            .map_err(|_| EngineError::MetricLocked(metric))?;
        let lock = lock_sack_until(self.coordinator.as_ref(), sack, Some(deadline))
            .await
            .ok_or(EngineError::MetricLocked(metric))?;
        let r = self.process_sack_locked(&lock).await.map(|_| ());
        unlock_all(vec![lock]).await;
        drop(guard);
        r
    }

    async fn process_sack_locked(&self, lock: &SackLock) -> Result<SackReport> {
        let taken = self.incoming.take(lock.sack()).await?;
        if taken.measures.is_empty() {
            self.incoming.commit(taken).await?;
            return Ok(SackReport::default());
        }
        match self.process_measures(&taken.measures).await {
            Ok(report) => {
                self.finish(taken, lock).await?;
                Ok(report)
            }
            Err(e) => {
                self.incoming.release(taken).await?;
                Err(e)
            }
        }
    }

    /// The metricd loop: process this worker's sacks as soon as they are
    /// notified, and all of them at least every `processing_delay`, until
    /// `shutdown` flips to true. With a distributed coordinator the worker joins
    /// the processing group, refreshes the membership every
    /// `membership_refresh` and processes the sacks the hash ring gives it;
    /// when the ring changes it scans its (new) sacks at once, which is how a
    /// dead worker's backlog is taken over.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let sacks = self.incoming.sacks();
        let workers = self.config.workers.max(1);
        let distributed = self.coordinator.is_distributed();
        if distributed {
            match self.coordinator.join().await {
                Ok(()) => tracing::info!(
                    member = %self.coordinator.member_id(),
                    "joined the processing group"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "cannot join the processing group yet; processing every sack until the membership is known"
                ),
            }
        }
        // Which sacks are ours (`None`: all of them, no membership known).
        let mut mine: Option<Vec<bool>> = None;
        let mut members: Vec<String> = Vec::new();
        let mut last_membership: Option<Instant> = None;
        let mut last_full_scan = Instant::now();
        let mut skipped: Vec<u32> = Vec::new();
        let mut skipped_since = Instant::now();
        let publisher =
            distributed.then(|| tokio::spawn(self.clone().publish_stats(shutdown.clone())));
        loop {
            if *shutdown.borrow() {
                break;
            }
            let mut rebalanced = false;
            if distributed
                && last_membership.is_none_or(|t| t.elapsed() >= self.config.membership_refresh)
            {
                last_membership = Some(Instant::now());
                if let Some(now) = self.my_sacks(sacks).await
                    && (now.members != members || mine.as_ref() != Some(&now.mine))
                {
                    let count = now.mine.iter().filter(|m| **m).count();
                    tracing::info!(
                        members = ?now.members,
                        sacks = count,
                        total = sacks,
                        "processing group rebalanced: {} members, processing {count} of {sacks} sacks",
                        now.members.len()
                    );
                    members = now.members;
                    self.stats.set_mine(&now.mine);
                    mine = Some(now.mine);
                    rebalanced = true;
                }
            }
            let wait = Duration::from_millis(200);
            let mut todo = tokio::select! {
                s = self.incoming.wait_for_new(wait) => s,
                _ = shutdown.changed() => break,
            };
            // Let measures posted close together gather in their sacks.
            if !todo.is_empty() && !self.config.notification_delay.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.notification_delay) => {}
                    _ = shutdown.changed() => break,
                }
                todo.extend(self.incoming.wait_for_new(Duration::ZERO).await);
            }
            if rebalanced || last_full_scan.elapsed() >= self.config.processing_delay {
                todo = (0..sacks).collect();
                last_full_scan = Instant::now();
            }
            if !skipped.is_empty() && skipped_since.elapsed() >= RETRY_SKIPPED_AFTER {
                todo.append(&mut skipped);
            }
            if let Some(mine) = &mine {
                todo.retain(|s| mine.get(*s as usize).copied().unwrap_or(false));
            }
            todo.sort_unstable();
            todo.dedup();
            // Workers that share sacks (`processing_replicas` > 1) start at
            // different points of the list: in lockstep they would all try
            // the same sacks first, and all but one skip them.
            if distributed && !todo.is_empty() {
                let offset = start_offset(&self.coordinator.member_id(), todo.len());
                todo.rotate_left(offset);
            }
            // Process the sacks in batches, with bounded concurrency.
            let mut set = tokio::task::JoinSet::new();
            let mut skipped_now = Vec::new();
            let per_batch = todo.len().div_ceil(workers).clamp(1, SACKS_PER_BATCH);
            for group in todo.chunks(per_batch) {
                while set.len() >= workers {
                    if let Some(Ok(s)) = set.join_next().await {
                        skipped_now.extend(s);
                    }
                }
                let engine = self.clone();
                let group = group.to_vec();
                set.spawn(async move {
                    match engine.process_sacks_or_skip(&group).await {
                        Ok((_, skipped)) => skipped,
                        Err(e) => {
                            tracing::error!(sacks = ?group, error = %e, "processing sacks failed; measures kept for retry");
                            Vec::new()
                        }
                    }
                });
            }
            while let Some(r) = set.join_next().await {
                if let Ok(s) = r {
                    skipped_now.extend(s);
                }
            }
            if !skipped_now.is_empty() {
                if skipped.is_empty() {
                    skipped_since = Instant::now();
                }
                skipped.append(&mut skipped_now);
                skipped.sort_unstable();
                skipped.dedup();
            }
        }
        if let Some(p) = publisher {
            p.abort();
        }
        if distributed {
            self.coordinator.leave().await;
            tracing::info!("left the processing group");
        }
    }

    /// The live members and which sacks the ring gives this worker, or `None`
    /// when the membership is unknown (coordinator without membership, or
    /// unreachable: the previous assignment is kept, and the sack locks still
    /// keep processing exclusive).
    async fn my_sacks(&self, sacks: u32) -> Option<Assignment> {
        let mut members = match self.coordinator.members().await {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the processing group's membership");
                return None;
            }
        };
        let me = self.coordinator.member_id();
        // Our own heartbeat may lag behind our processing: we are alive.
        if !members.contains(&me) {
            members.push(me.clone());
            members.sort_unstable();
        }
        let ring = HashRing::new(&members);
        let mut mine = vec![false; sacks as usize];
        for s in ring.sacks_for(&me, sacks, self.config.processing_replicas.max(1)) {
            mine[s as usize] = true;
        }
        Some(Assignment { members, mine })
    }

    /// Purge the data of deleted metrics, then their index rows. Returns how many.
    ///
    /// Each metric's data is deleted under its sack's locks (in-process, then
    /// distributed), as upstream's janitor does: a processing that looked the
    /// metric up just before it was deleted cannot then write splits after
    /// the purge and leave them behind the expunged index row. A sack whose
    /// lock cannot be had within a few seconds waits for the next pass.
    pub async fn janitor_pass(&self) -> Result<usize> {
        let ids = self
            .indexer
            .list_deleted_metrics(self.config.cleanup_batch_size)
            .await?;
        let sacks = self.incoming.sacks();
        let mut by_sack: BTreeMap<u32, Vec<Uuid>> = BTreeMap::new();
        for id in ids {
            by_sack.entry(sack_of(id, sacks)).or_default().push(id);
        }
        let mut purged = 0;
        for (sack, ids) in by_sack {
            let _guard = self.sack_locks[sack as usize].lock().await;
            let deadline = Instant::now() + JANITOR_LOCK_WAIT;
            let Some(lock) = lock_sack_until(self.coordinator.as_ref(), sack, Some(deadline)).await
            else {
                tracing::info!(sack, "sack busy; its deleted metrics are purged next pass");
                continue;
            };
            let result = async {
                self.aggregates.delete_metrics(&ids).await?;
                self.indexer.expunge_metrics(&ids).await?;
                Ok::<_, EngineError>(())
            }
            .await;
            unlock_all(vec![lock]).await;
            result?;
            purged += ids.len();
        }
        Ok(purged)
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

/// Release distributed sack locks (concurrently: one shared round trip on a
/// multiplexed connection). A failed release is only logged: the lock then
/// expires at its TTL (Redis) or was already gone with its session (PostgreSQL).
async fn unlock_all(locks: Vec<SackLock>) {
    if locks.iter().all(SackLock::is_local) {
        return;
    }
    let results = futures::future::join_all(locks.into_iter().map(|l| {
        let sack = l.sack();
        async move { (sack, l.unlock().await) }
    }))
    .await;
    for (sack, r) in results {
        if let Err(e) = r {
            tracing::warn!(sack, error = %e, "cannot release the sack lock; it expires on its own");
        }
    }
}

/// Where in a list of `len` sacks the worker `member` starts its pass: a
/// stable spread of the members over the list.
fn start_offset(member: &str, len: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    member.hash(&mut h);
    (h.finish() % len.max(1) as u64) as usize
}

/// One sack of a batch: its in-process lock, held, and the outcome of the
/// attempt at its distributed lock.
struct SackAttempt<'a> {
    sack: u32,
    guard: MutexGuard<'a, ()>,
    lock: CoordResult<Option<SackLock>>,
}

/// The processing group as this worker last saw it.
struct Assignment {
    /// The live members, sorted.
    members: Vec<String>,
    /// Per sack, whether the hash ring gives it to this worker.
    mine: Vec<bool>,
}

#[cfg(test)]
mod tests {
    use super::start_offset;
    use std::collections::HashSet;

    #[test]
    fn members_start_their_passes_at_different_sacks() {
        let offsets: HashSet<usize> = (0..4)
            .map(|k| start_offset(&format!("metricd-{k}-host"), 128))
            .collect();
        assert!(offsets.len() >= 3, "4 members, offsets {offsets:?}");
        assert!(offsets.iter().all(|o| *o < 128));
        assert_eq!(start_offset("a", 128), start_offset("a", 128), "stable");
        assert_eq!(start_offset("a", 1), 0);
    }
}
