//! Storage: where measures wait ([`Incoming`], split into sacks) and where
//! aggregates live ([`Aggregates`], split objects and raw buffers).
//!
//! Both traits take batches so that a network driver (Redis, S3) makes one round
//! trip per batch rather than one per metric. The bytes stored are produced and
//! read by `carbonara::codec`; this crate never interprets them.
//!
//! Invariants: `Incoming::add_measures` returns only once the measures are durable
//! (they survive kill -9 and power loss); measures taken from a sack are removed
//! only by `Incoming::commit`, after their aggregates were written.

pub mod ceph;
mod error;
mod lease;
pub mod local_aggregates;
pub mod local_incoming;
mod records;
pub mod redis_aggregates;
pub mod redis_incoming;
pub mod redis_url;
pub mod s3_aggregates;
pub mod s3_client;
pub mod s3_incoming;
pub mod stats;
pub mod swift;

pub use error::StorageError;

use async_trait::async_trait;
use carbonara::{Measure, Method, SplitKey};
use std::collections::HashMap;
use uuid::Uuid;

pub type Result<T> = std::result::Result<T, StorageError>;

/// Measures for several metrics, as one request delivers them.
pub type MeasureBatch = Vec<(Uuid, Vec<Measure>)>;

/// The measures pending in one sack, taken for processing.
#[derive(Debug, Default)]
pub struct SackMeasures {
    pub sack: u32,
    /// Per metric, in arrival order.
    pub measures: HashMap<Uuid, Vec<Measure>>,
    /// Opaque to callers: what `commit` must delete.
    pub token: u64,
}

/// What is waiting to be processed (for /v1/status and backpressure).
#[derive(Debug, Default, Clone)]
pub struct Backlog {
    /// Pending measure batches per metric (one per request per metric, as upstream counts).
    pub per_metric: HashMap<Uuid, u64>,
    /// Total pending measures (points).
    pub measures: u64,
    /// Per sack with measures pending (taken for processing included), when
    /// the oldest of them arrived. `None` when the driver cannot tell (see
    /// each driver's `backlog`); a sack absent from the map has nothing
    /// pending.
    pub oldest_pending: Option<HashMap<u32, std::time::SystemTime>>,
}

impl Backlog {
    /// When the oldest measure pending in any of `sacks` arrived: `None` when
    /// the driver cannot tell, `Some(None)` when nothing is pending there.
    pub fn oldest_in(
        &self,
        sacks: impl IntoIterator<Item = u32>,
    ) -> Option<Option<std::time::SystemTime>> {
        let known = self.oldest_pending.as_ref()?;
        Some(
            sacks
                .into_iter()
                .filter_map(|s| known.get(&s))
                .min()
                .copied(),
        )
    }
}

/// The most sacks an incoming store may have (as upstream's drivers allow).
pub const MAX_SACKS: u32 = 65535;

/// `Ok` when `sacks` is a valid number of sacks (1..=[`MAX_SACKS`]), else an
/// error naming the range: every driver checks a requested count this way.
pub fn check_sack_count(sacks: u32) -> Result<()> {
    if (1..=MAX_SACKS).contains(&sacks) {
        Ok(())
    } else {
        Err(StorageError::Backend(format!(
            "the number of sacks must be between 1 and {MAX_SACKS}, not {sacks}"
        )))
    }
}

/// The sack count of a stored `gnocchi-config` document (`{"sacks": N}`, as
/// the object-store drivers and the local log keep it); `None` when absent or
/// out of range.
pub(crate) fn stored_sack_count(config: &serde_json::Value) -> Option<u32> {
    config
        .get("sacks")
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=MAX_SACKS).contains(n))
}

/// The sack a metric's measures go to: its id as a big-endian 128-bit integer modulo the sack count.
pub fn sack_of(metric: Uuid, sacks: u32) -> u32 {
    (metric.as_u128() % u128::from(sacks)) as u32
}

#[async_trait]
pub trait Incoming: Send + Sync + 'static {
    /// Number of sacks.
    fn sacks(&self) -> u32;
    /// Store measures durably; when this returns they survive kill -9.
    async fn add_measures(&self, batch: MeasureBatch) -> Result<()>;
    /// Take everything pending in `sack` (measures added afterwards stay pending).
    /// Until `commit` or `release`, the sack is leased to the caller.
    async fn take(&self, sack: u32) -> Result<SackMeasures>;
    /// The taken measures are processed: delete them for good.
    async fn commit(&self, taken: SackMeasures) -> Result<()>;
    /// Processing failed: put the taken measures back as pending.
    async fn release(&self, taken: SackMeasures) -> Result<()>;
    /// Pending batches and measures.
    async fn backlog(&self) -> Result<Backlog>;
    /// Sacks that received measures since the last call (may include false positives).
    async fn wait_for_new(&self, timeout: std::time::Duration) -> Vec<u32>;
}

/// Identifies one stored split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SplitRef {
    pub metric: Uuid,
    pub method: Method,
    pub key: SplitKey,
}

/// Everything one processing batch writes, applied atomically where the backend allows.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub raw: Vec<(Uuid, Vec<u8>)>,
    pub splits: Vec<(SplitRef, Vec<u8>)>,
    pub delete_splits: Vec<SplitRef>,
}

#[async_trait]
pub trait Aggregates: Send + Sync + 'static {
    /// Raw buffers of these metrics (`None`: never processed), in the order asked.
    async fn get_raw(&self, metrics: &[Uuid]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Split keys stored for each (metric, method, granularity), sorted ascending.
    async fn list_split_keys(&self, series: &[(Uuid, Method, i64)]) -> Result<Vec<Vec<SplitKey>>>;
    /// Split contents, in the order asked (`None`: absent).
    async fn get_splits(&self, splits: &[SplitRef]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Apply a batch of writes durably.
    async fn write(&self, batch: WriteBatch) -> Result<()>;
    /// Remove everything stored for these metrics.
    async fn delete_metrics(&self, metrics: &[Uuid]) -> Result<()>;
}
