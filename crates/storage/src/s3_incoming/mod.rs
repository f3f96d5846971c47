//! Incoming store on S3-compatible object storage (`[incoming] driver = s3`),
//! laid out exactly as upstream's S3 incoming driver lays it out, so that
//! gnocchid and upstream's `gnocchi-metricd` read each other's pending
//! measures.
//!
//! # The bucket `<s3_bucket_prefix>-measure`
//!
//! - `gnocchi-config`: `{"sacks": N}`, the number of sacks. Written by the
//!   first [`S3Incoming::connect`] when absent; the stored value wins over the
//!   one passed later. Only [`S3Incoming::change_sacks`] (`gnocchid
//!   change-sack-size`) changes it.
//! - `<s>-<N>/<metric uuid>/<uuid>_<YYYYmmdd_HH:MM:SS>`: one object per
//!   request per metric, the measures as packed 16-byte records
//!   ([`crate::records`], upstream's numpy dtype). Sack `s` of `N` is named
//!   `<s>-<N>` (upstream's `SACK_NAME_FORMAT`), and a metric goes to sack
//!   `uuid mod N` ([`crate::sack_of`]), as upstream's `sack_for_metric`.
//!   Our object uuids are time-ordered (see `layout`), upstream's random:
//!   any name of that form is read.
//!
//! # Requests per call
//!
//! - `add_measures`: one `PUT` per metric of the request, run in parallel;
//!   it returns once S3 acknowledged every one (as durable as the store).
//! - `take`: one `LIST` of `<s>-<N>/` (one more per 1000 objects), then one
//!   `GET` per object, in parallel; the names read are kept in the lease.
//! - `commit`: `DeleteObjects` of exactly the names read (1000 a request):
//!   objects written meanwhile stay.
//! - `release`: no request: nothing was removed.
//! - `backlog`: a `LIST` of the whole bucket (one request per 1000 pending
//!   objects), as upstream's report; an object's size gives its measure count
//!   and its last-modified time its arrival (the age of a sack's oldest
//!   pending measure, for objects written by upstream's processes too).
//! - `wait_for_new`: see `wake` (one delimited `LIST` per second at most).
//!
//! # Leases and several processes
//!
//! Within one process a sack is leased to one `take` at a time (a second
//! `take` returns an empty [`SackMeasures`] with token 0) until its commit's
//! delete is done; a `take` or `commit` whose future is dropped half-way ends
//! its lease. Across processes S3 offers no lock: as with Redis, metricd's
//! sack locks (`[DEFAULT] coordination_url`) make sure one worker at a time
//! processes a sack. Two processes taking the same sack without them could
//! both write the sack's metrics, one from fewer measures than the other, and
//! lose measures; so S3 incoming with several metricd processes needs a
//! coordination URL (Redis or PostgreSQL), and gnocchid warns without one.
//! A crashed worker's objects simply stay in the bucket and are read again.

mod layout;
mod sacks;
mod wake;

use self::layout::{MeasureNames, MeasureObject, sack_prefix};
use self::wake::Wake;
use crate::lease::{Leases, empty};
use crate::records::{RECORD, decode, encode};
use crate::s3_client::{S3Bucket, S3Config, backend};
use crate::{Backlog, Incoming, MeasureBatch, Result, SackMeasures, StorageError, sack_of};
use async_trait::async_trait;
use carbonara::Measure;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How often a process reads `gnocchi-config` again to notice a
/// `change-sack-size` it was not restarted after.
const CONFIG_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// The incoming store of scale-out deployments on object storage.
pub struct S3Incoming {
    bucket: S3Bucket,
    nsacks: u32,
    names: MeasureNames,
    /// Per sack leased: the objects its take read, what the commit deletes.
    leases: Leases<Vec<Path>>,
    wake: Wake,
    /// Set when a poll found `gnocchi-config` changed by `change-sack-size`:
    /// writes are refused rather than put in sacks nobody reads.
    stale: AtomicBool,
    config_checked: Mutex<Instant>,
}

impl S3Incoming {
    /// Connect to the bucket `<s3_bucket_prefix>-measure` (created if
    /// missing), with `sacks` sacks unless the bucket already stores a count.
    pub async fn connect(config: &S3Config, sacks: u32) -> Result<Self> {
        crate::check_sack_count(sacks)?;
        let bucket = S3Bucket::connect(config, &config.measure_bucket_name()).await?;
        let nsacks = sacks::stored_or_set(&bucket, sacks).await?;
        if nsacks != sacks {
            tracing::info!(
                stored = nsacks,
                asked = sacks,
                "using the sack count stored in the measure bucket"
            );
        }
        Ok(S3Incoming {
            bucket,
            nsacks,
            names: MeasureNames::new(),
            leases: Leases::new(),
            wake: Wake::new(nsacks),
            stale: AtomicBool::new(false),
            config_checked: Mutex::new(Instant::now()),
        })
    }

    /// Every object under `prefix` (the whole bucket if `None`).
    async fn list(&self, prefix: Option<&Path>) -> Result<Vec<ObjectMeta>> {
        self.bucket
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(backend)
    }

    /// Whether `gnocchi-config` still says this process's count, read again
    /// at most every [`CONFIG_CHECK_INTERVAL`] by writes and by
    /// `wait_for_new` (one `GET`).
    async fn check_stale(&self) -> Result<()> {
        let due = {
            let mut last = self.config_checked.lock();
            let due = last.elapsed() >= CONFIG_CHECK_INTERVAL;
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            match sacks::stored(&self.bucket).await {
                Ok(Some(n)) if n != self.nsacks => self.stale.store(true, Ordering::Relaxed),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the stored sack count"),
            }
        }
        if self.stale.load(Ordering::Relaxed) {
            return Err(self.stale_error());
        }
        Ok(())
    }

    fn stale_error(&self) -> StorageError {
        StorageError::Backend(format!(
            "the number of sacks stored in the measure bucket is no longer {}: restart this process (gnocchid change-sack-size was run)",
            self.nsacks
        ))
    }
}

#[async_trait]
impl Incoming for S3Incoming {
    fn sacks(&self) -> u32 {
        self.nsacks
    }

    async fn add_measures(&self, batch: MeasureBatch) -> Result<()> {
        self.check_stale().await?;
        let mut touched = Vec::new();
        let mut objects = Vec::with_capacity(batch.len());
        for (metric, points) in &batch {
            if points.is_empty() {
                continue;
            }
            let s = sack_of(*metric, self.nsacks);
            touched.push(s);
            let mut data = Vec::new();
            encode(points, &mut data);
            let sack = layout::sack_name(s, self.nsacks);
            objects.push((self.names.name(&sack, *metric), data));
        }
        if objects.is_empty() {
            return Ok(());
        }
        self.bucket.put_all(objects).await?;
        touched.sort_unstable();
        touched.dedup();
        self.wake.written(&touched);
        Ok(())
    }

    async fn take(&self, sack: u32) -> Result<SackMeasures> {
        if sack >= self.nsacks {
            return Err(StorageError::Backend(format!("no sack {sack}")));
        }
        let Some(guard) = self.leases.begin(sack) else {
            return Ok(empty(sack));
        };
        let listed = self.list(Some(&sack_prefix(sack, self.nsacks))).await?;
        let mut objects: Vec<MeasureObject> = listed
            .into_iter()
            .filter_map(|meta| {
                let location = meta.location.clone();
                let o = MeasureObject::parse(meta.location, meta.size);
                if o.is_none() {
                    tracing::warn!(object = %location, "unable to parse measure object name, ignored");
                }
                o
            })
            .collect();
        if objects.is_empty() {
            return Ok(empty(sack));
        }
        objects.sort_by(|a, b| (a.metric, a.read_order()).cmp(&(b.metric, b.read_order())));
        let paths: Vec<Path> = objects.iter().map(|o| o.path.clone()).collect();
        let contents = self.bucket.get_all(paths).await?;
        let mut measures: HashMap<Uuid, Vec<Measure>> = HashMap::new();
        let mut read = Vec::with_capacity(objects.len());
        for (object, data) in objects.into_iter().zip(contents) {
            // Gone since the listing: taken and committed by a process
            // working without sack locks. Nothing to read, nothing to delete.
            let Some(data) = data else { continue };
            if data.len() % RECORD != 0 {
                return Err(StorageError::Corrupt(format!(
                    "measure object {} is {} bytes, not a multiple of {RECORD}",
                    object.path,
                    data.len()
                )));
            }
            decode(&data, measures.entry(object.metric).or_default());
            read.push(object.path);
        }
        if read.is_empty() {
            return Ok(empty(sack));
        }
        Ok(guard.finish(read, measures))
    }

    async fn commit(&self, taken: SackMeasures) -> Result<()> {
        // The sack stays leased until the delete is done, so that no `take`
        // of this process reads what is being deleted; the guard ends the
        // lease however the commit ends. On failure the objects not deleted
        // are read again by the next take.
        let Some((read, _lease)) = self.leases.start_commit(&taken)? else {
            return Ok(());
        };
        let deleted = self.bucket.delete_all(read).await;
        self.wake.processed(taken.sack);
        deleted
    }

    async fn release(&self, taken: SackMeasures) -> Result<()> {
        if self.leases.release(&taken)? {
            self.wake.processed(taken.sack);
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog> {
        let mut backlog = Backlog::default();
        let mut oldest: HashMap<u32, std::time::SystemTime> = HashMap::new();
        for meta in self.list(None).await? {
            let written = std::time::SystemTime::from(meta.last_modified);
            if let Some(o) = MeasureObject::parse(meta.location, meta.size) {
                *backlog.per_metric.entry(o.metric).or_insert(0) += 1;
                backlog.measures += o.size / RECORD as u64;
                let sack = sack_of(o.metric, self.nsacks);
                oldest
                    .entry(sack)
                    .and_modify(|t| *t = (*t).min(written))
                    .or_insert(written);
            }
        }
        backlog.oldest_pending = Some(oldest);
        Ok(backlog)
    }

    async fn wait_for_new(&self, timeout: Duration) -> Vec<u32> {
        // A stale count is reported by the poll (it finds sacks of the other count).
        let _ = self.check_stale().await;
        self.wake
            .wait_for_new(&self.bucket, self.nsacks, timeout)
            .await
    }
}
