//! Incoming store on Swift (`[incoming] driver = swift`), laid out as
//! upstream's Swift incoming driver lays it out, so that gnocchid and
//! upstream's `gnocchi-metricd` read each other's pending measures.
//!
//! # Containers
//!
//! - `gnocchi-config` holds the object `gnocchi-config`, `{"sacks": N}`:
//!   written by the first [`SwiftIncoming::connect`] when absent (with
//!   `If-None-Match: *`, so two processes starting together agree), along
//!   with the `N` sack containers; the stored value wins over the one passed
//!   later. Only [`SwiftIncoming::change_sacks`] changes it.
//! - `incoming<N>-<s>`: sack `s`, one object per request per metric,
//!   `<metric uuid>/<uuid>_<YYYYmmdd_HH:MM:SS>`, the measures as 16-byte
//!   records. A metric goes to sack `uuid mod N` ([`crate::sack_of`]).
//!
//! # Requests per call
//!
//! - `add_measures`: one `PUT` per metric of the request, in parallel;
//!   it returns once Swift acknowledged every one.
//! - `take`: one listing of the sack (a `GET` per 10000 objects), then a
//!   `GET` per object, in parallel; the names read are kept in the lease.
//! - `commit`: a bulk delete of exactly the names read: objects written
//!   meanwhile stay.
//! - `release`: no request.
//! - `backlog`: one listing per sack, as upstream's report.
//! - `wait_for_new`: see `wake`.
//!
//! # Leases and several processes
//!
//! As the S3 and Ceph drivers, through [`crate::lease`]: within a process a
//! sack is leased to one `take` until its commit's delete is done or its
//! release. Across processes Swift has no lock: metricd's sack locks
//! (`[DEFAULT] coordination_url`) give each sack to one worker.

use super::SwiftOptions;
use super::client::{Put, SwiftClient};
use super::names::{CONFIG, Containers, MeasureNames, parse_measure, read_order};
use super::wake::Wake;
use crate::lease::{Leases, empty};
use crate::records::{RECORD, decode, encode};
use crate::{Backlog, Incoming, MeasureBatch, Result, SackMeasures, StorageError, sack_of};
use async_trait::async_trait;
use bytes::Bytes;
use carbonara::Measure;
use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How often a process reads `gnocchi-config` again to notice a
/// `change-sack-size` it was not restarted after.
const CONFIG_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// The incoming store of scale-out deployments on OpenStack Swift.
pub struct SwiftIncoming {
    client: SwiftClient,
    containers: Containers,
    nsacks: u32,
    names: MeasureNames,
    /// Per sack leased: the objects its take read, what the commit deletes.
    leases: Leases<Vec<String>>,
    wake: Wake,
    /// `gnocchi-config` was changed by `change-sack-size`: writes are refused
    /// rather than put in sacks nobody reads.
    stale: AtomicBool,
    config_checked: Mutex<Instant>,
}

fn containers(options: &SwiftOptions) -> Containers {
    Containers {
        prefix: options.container_prefix.clone(),
        prefix_all: options.container_prefix_all,
    }
}

/// The stored number of sacks, `None` if none is stored yet.
async fn stored(client: &SwiftClient, containers: &Containers) -> Result<Option<u32>> {
    let Some(bytes) = client.get_object(&containers.config(), CONFIG).await? else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| StorageError::CorruptFile {
            path: format!("{}/{CONFIG}", containers.config()),
            source,
        })?;
    crate::stored_sack_count(&value).map(Some).ok_or_else(|| {
        StorageError::Corrupt(format!(
            "{CONFIG}: expected {{\"sacks\": N}}, found {:?}",
            String::from_utf8_lossy(&bytes)
        ))
    })
}

/// `json.dumps({"sacks": N})`, byte for byte.
fn encode_config(sacks: u32) -> Bytes {
    Bytes::from(format!("{{\"sacks\": {sacks}}}"))
}

/// Create the sack containers of a count.
async fn create_sacks(client: &SwiftClient, containers: &Containers, nsacks: u32) -> Result<()> {
    futures::stream::iter(0..nsacks)
        .map(|s| async move { client.put_container(&containers.sack(nsacks, s)).await })
        .buffer_unordered(client.parallel)
        .try_collect::<()>()
        .await
}

impl SwiftIncoming {
    /// Log in, and use the stored number of sacks, storing `sacks` (and
    /// creating the sack containers) if none is stored yet.
    pub async fn connect(options: SwiftOptions, sacks: u32) -> Result<Self> {
        crate::check_sack_count(sacks)?;
        let containers = containers(&options);
        let client = SwiftClient::connect(options).await?;
        let nsacks = match stored(&client, &containers).await? {
            Some(n) => n,
            None => {
                client.put_container(&containers.config()).await?;
                let put = client
                    .put_object(&containers.config(), CONFIG, encode_config(sacks), true)
                    .await?;
                if put == Put::NoContainer {
                    return Err(StorageError::Backend(format!(
                        "swift: container {} vanished",
                        containers.config()
                    )));
                }
                let n = stored(&client, &containers).await?.ok_or_else(|| {
                    StorageError::Backend(format!("swift: {CONFIG} written but not found"))
                })?;
                create_sacks(&client, &containers, n).await?;
                n
            }
        };
        if nsacks != sacks {
            tracing::info!(
                stored = nsacks,
                asked = sacks,
                "using the sack count stored in Swift"
            );
        }
        Ok(SwiftIncoming {
            client,
            containers,
            nsacks,
            names: MeasureNames::new(),
            leases: Leases::new(),
            wake: Wake::new(nsacks),
            stale: AtomicBool::new(false),
            config_checked: Mutex::new(Instant::now()),
        })
    }

    fn sack(&self, s: u32) -> String {
        self.containers.sack(self.nsacks, s)
    }

    /// Whether `gnocchi-config` still says this process's count (one `GET`
    /// at most every [`CONFIG_CHECK_INTERVAL`]).
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
            match stored(&self.client, &self.containers).await {
                Ok(Some(n)) if n != self.nsacks => self.stale.store(true, Ordering::Relaxed),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the stored sack count"),
            }
        }
        if self.stale.load(Ordering::Relaxed) {
            return Err(StorageError::Backend(format!(
                "the number of sacks stored in Swift is no longer {}: restart this process (gnocchid change-sack-size was run)",
                self.nsacks
            )));
        }
        Ok(())
    }

    /// `gnocchid change-sack-size`, as upstream's: store `sacks` as the
    /// number of sacks, create their containers and delete the old ones;
    /// returns the number stored before (`sacks` if none was). Refused while
    /// any measure is pending (measures are routed by `metric mod sacks`).
    /// Stop the API processes first; restart every process afterwards (one
    /// that is not notices within seconds and refuses writes).
    pub async fn change_sacks(options: SwiftOptions, sacks: u32) -> Result<u32> {
        crate::check_sack_count(sacks)?;
        let containers = containers(&options);
        let client = SwiftClient::connect(options).await?;
        let old = stored(&client, &containers).await?;
        if old == Some(sacks) {
            return Ok(sacks);
        }
        if let Some(old) = old {
            let backlog = backlog(&client, &containers, old).await?;
            if !backlog.per_metric.is_empty() {
                return Err(StorageError::Backend(format!(
                    "Cannot change sack when non-empty backlog. Process remaining {} measures (of {} metrics) and try again",
                    backlog.measures,
                    backlog.per_metric.len()
                )));
            }
        }
        client.put_container(&containers.config()).await?;
        client
            .put_object(&containers.config(), CONFIG, encode_config(sacks), false)
            .await?;
        create_sacks(&client, &containers, sacks).await?;
        if let Some(old) = old {
            futures::stream::iter(0..old)
                .map(|s| {
                    let (client, name) = (&client, containers.sack(old, s));
                    async move { client.delete_container(&name).await.map(|_| ()) }
                })
                .buffer_unordered(client.parallel)
                .try_collect::<()>()
                .await?;
        }
        Ok(old.unwrap_or(sacks))
    }
}

/// One listing per sack: pending batches per metric and measures.
async fn backlog(client: &SwiftClient, containers: &Containers, nsacks: u32) -> Result<Backlog> {
    let listings: Vec<_> = futures::stream::iter(0..nsacks)
        .map(|s| async move { client.list(&containers.sack(nsacks, s), None).await })
        .buffer_unordered(client.parallel)
        .try_collect()
        .await?;
    let mut backlog = Backlog::default();
    for entry in listings.into_iter().flatten().flatten() {
        if let Some(metric) = parse_measure(&entry.name) {
            *backlog.per_metric.entry(metric).or_insert(0) += 1;
            backlog.measures += entry.bytes / RECORD as u64;
        }
    }
    Ok(backlog)
}

#[async_trait]
impl Incoming for SwiftIncoming {
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
            let mut data = Vec::with_capacity(points.len() * RECORD);
            encode(points, &mut data);
            objects.push((self.sack(s), self.names.name(*metric), data));
        }
        if objects.is_empty() {
            return Ok(());
        }
        self.client.put_all(objects).await?;
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
        let container = self.sack(sack);
        let listed = self
            .client
            .list(&container, None)
            .await?
            .unwrap_or_default();
        let mut objects: Vec<(Uuid, String)> = listed
            .into_iter()
            .filter_map(|e| {
                let metric = parse_measure(&e.name);
                if metric.is_none() {
                    tracing::warn!(object = %e.name, container = %container, "unable to parse measure object name, ignored");
                }
                Some((metric?, e.name))
            })
            .collect();
        if objects.is_empty() {
            return Ok(empty(sack));
        }
        objects.sort_by(|a, b| (a.0, read_order(&a.1)).cmp(&(b.0, read_order(&b.1))));
        let contents = self
            .client
            .get_all(
                objects
                    .iter()
                    .map(|(_, o)| (container.clone(), o.clone()))
                    .collect(),
            )
            .await?;
        let mut measures: HashMap<Uuid, Vec<Measure>> = HashMap::new();
        let mut read = Vec::with_capacity(objects.len());
        for ((metric, name), data) in objects.into_iter().zip(contents) {
            // Gone since the listing: taken and committed by another process.
            let Some(data) = data else { continue };
            if data.len() % RECORD != 0 {
                return Err(StorageError::Corrupt(format!(
                    "measure object {container}/{name} is {} bytes, not a multiple of {RECORD}",
                    data.len()
                )));
            }
            decode(&data, measures.entry(metric).or_default());
            read.push(name);
        }
        if read.is_empty() {
            return Ok(empty(sack));
        }
        Ok(guard.finish(read, measures))
    }

    async fn commit(&self, taken: SackMeasures) -> Result<()> {
        // The sack stays leased until the delete is done; the guard ends the
        // lease however the commit ends. Objects not deleted are read again.
        let Some((read, _lease)) = self.leases.start_commit(&taken)? else {
            return Ok(());
        };
        let container = self.sack(taken.sack);
        self.client
            .bulk_delete(read.into_iter().map(|o| (container.clone(), o)).collect())
            .await
    }

    async fn release(&self, taken: SackMeasures) -> Result<()> {
        self.leases.release(&taken).map(drop)
    }

    async fn backlog(&self) -> Result<Backlog> {
        backlog(&self.client, &self.containers, self.nsacks).await
    }

    async fn wait_for_new(&self, timeout: Duration) -> Vec<u32> {
        let _ = self.check_stale().await;
        let leased = |s: u32| self.leases.is_leased(s);
        self.wake
            .wait_for_new(
                &self.client,
                &self.containers,
                self.nsacks,
                &leased,
                timeout,
            )
            .await
    }
}
