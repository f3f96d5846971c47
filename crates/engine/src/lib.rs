//! The engine: metricd and the read path.
//!
//! [`Engine`] owns the three backends (index, incoming, aggregates) and does the
//! work between them: it takes the measures waiting in a sack, merges them into
//! each metric's raw buffer and aggregates with `carbonara`, writes the changed
//! splits in one batch, and only then deletes the measures from the sack
//! ([`Engine::process_sack`]). [`Engine::run`] is the metricd loop,
//! [`Engine::refresh_metric`] the synchronous path behind `refresh=true`,
//! [`Engine::read_measures`] the read path, [`Engine::run_janitor`] the
//! asynchronous deletion of metrics.
//!
//! Several metricd processes share the sacks through a [`Coordinator`]
//! ([`coordination`]): each processes the sacks a consistent hash ring of the
//! live members gives it ([`hashring`]) and holds a sack's distributed lock from
//! reading the sack to deleting what it read. The embedded default uses the
//! [`InProcessCoordinator`], which costs nothing.
//!
//! Invariants: measures leave a sack only after their aggregates are durably
//! written (a crash in between reprocesses them, which is idempotent); a sack is
//! processed by one task at a time (per-sack mutex within the process, plus the
//! sack's distributed lock across processes); CPU-bound carbonara work runs on
//! the blocking pool, never on the async executor.

mod batch;
pub mod coordination;
pub mod coordination_pg;
pub mod coordination_redis;
mod error;
pub mod hashring;
mod metricd;
mod read;
mod split_cache;
pub mod stats;

pub use coordination::{Coordinator, InProcessCoordinator};
pub use error::{CoordinationError, EngineError, InternalError};
pub use read::{MeasuresQuery, ReadError, SeriesRef};
pub use stats::MemberStats;

use gnocchi_index::Indexer;
use gnocchi_storage::{Aggregates, Incoming};
use std::sync::Arc;
use std::time::Duration;

pub type Result<T> = std::result::Result<T, EngineError>;

/// Tunables of metricd, from `[metricd]` in gnocchi.conf.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Sacks processed concurrently.
    pub workers: usize,
    /// Parts of one batch (groups of its metrics) read, computed and written
    /// at once (`[metricd] concurrency`). On a network store every phase of a
    /// batch waits on round trips; processing a batch as several parts lets
    /// one part's requests overlap another's computation and requests. Each
    /// part is one `write` to the aggregate store, so the embedded store
    /// (one durable commit per write) keeps 1.
    pub concurrency: usize,
    /// Bytes of split payloads metricd keeps from its last writes
    /// (`[metricd] split_cache_size`, 0: none), so that the next pass merges
    /// into them without reading them back (see `split_cache`).
    pub split_cache_size: usize,
    /// Full scan of every sack at least this often, even without notification.
    pub processing_delay: Duration,
    /// How long metricd waits, once notified of new measures, before it
    /// processes them: measures posted close together are then processed as
    /// one batch (fewer, larger writes), and get the aggregates upstream gives
    /// them, since upstream's metricd processes everything pending at once
    /// (back window and duplicate timestamps depend on it).
    pub notification_delay: Duration,
    /// How often the janitor purges deleted metrics.
    pub cleanup_delay: Duration,
    /// Metrics purged per janitor pass.
    pub cleanup_batch_size: usize,
    /// How many workers the hash ring gives each sack (`[metricd]
    /// processing_replicas`): more replicas mean faster take-over and more lock
    /// contention.
    pub processing_replicas: usize,
    /// How often the metricd loop refreshes the group's membership and
    /// recomputes its sacks.
    pub membership_refresh: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            concurrency: 1,
            split_cache_size: 64 << 20,
            processing_delay: Duration::from_secs(60),
            notification_delay: Duration::from_secs(1),
            cleanup_delay: Duration::from_secs(300),
            cleanup_batch_size: 10_000,
            processing_replicas: 3,
            membership_refresh: Duration::from_secs(2),
        }
    }
}

pub struct Engine {
    pub indexer: Arc<dyn Indexer>,
    pub incoming: Arc<dyn Incoming>,
    pub aggregates: Arc<dyn Aggregates>,
    pub config: EngineConfig,
    /// One lock per sack: the background loop and `refresh=true` never process
    /// the same sack at once within this process. Taken before the
    /// coordinator's lock, so a process never contends with itself there (and
    /// PostgreSQL's re-entrant advisory locks are never taken twice).
    sack_locks: Vec<tokio::sync::Mutex<()>>,
    /// Membership and distributed sack locks shared with other processes.
    coordinator: Arc<dyn Coordinator>,
    /// The splits written last, per metric (see `split_cache`).
    split_cache: split_cache::SplitCache,
    /// What `/v1/status` shows of this process's processing.
    stats: stats::ProcessingStats,
}

impl Engine {
    /// An engine that is the only worker on its sacks (in-process coordination).
    pub fn new(
        indexer: Arc<dyn Indexer>,
        incoming: Arc<dyn Incoming>,
        aggregates: Arc<dyn Aggregates>,
        config: EngineConfig,
    ) -> Arc<Self> {
        Self::with_coordinator(
            indexer,
            incoming,
            aggregates,
            config,
            Arc::new(InProcessCoordinator::new()),
        )
    }

    /// An engine sharing its sacks with other processes through `coordinator`.
    pub fn with_coordinator(
        indexer: Arc<dyn Indexer>,
        incoming: Arc<dyn Incoming>,
        aggregates: Arc<dyn Aggregates>,
        config: EngineConfig,
        coordinator: Arc<dyn Coordinator>,
    ) -> Arc<Self> {
        let sack_locks = (0..incoming.sacks())
            .map(|_| tokio::sync::Mutex::new(()))
            .collect();
        Arc::new(Engine {
            split_cache: split_cache::SplitCache::new(config.split_cache_size),
            indexer,
            incoming,
            aggregates,
            config,
            sack_locks,
            coordinator,
            stats: stats::ProcessingStats::default(),
        })
    }

    pub fn coordinator(&self) -> &Arc<dyn Coordinator> {
        &self.coordinator
    }
}
