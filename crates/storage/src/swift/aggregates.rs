//! Aggregate store on Swift (`[storage] driver = swift`): a container per
//! metric, created by its first write (upstream creates it when it first
//! reads a missing raw buffer; a container that exists without objects is
//! harmless either way).
//!
//! # Requests per call
//!
//! - `get_raw`, `get_splits`: one `GET` per object, [`super::PARALLEL`] at a
//!   time (a 404 is `None`);
//! - `list_split_keys`: one listing per metric asked about (one `GET` per
//!   10000 objects), as upstream lists the whole container;
//! - `write`: the deleted splits in bulk deletes alongside one `PUT` per
//!   split, then one `PUT` per raw buffer once every split is stored; the
//!   first write of a metric also `PUT`s its container;
//! - `delete_metrics`: per metric a listing, all objects in bulk deletes (any
//!   number of metrics per request), then a `DELETE` per container.

use super::SwiftOptions;
use super::client::SwiftClient;
use super::names::{Containers, RAW_OBJECT, parse_split, split_object};
use crate::{Aggregates, Result, SplitRef, WriteBatch};
use async_trait::async_trait;
use carbonara::{Method, SplitKey};
use futures::{StreamExt, TryStreamExt};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

/// The aggregate store of scale-out deployments on OpenStack Swift.
pub struct SwiftAggregates {
    client: SwiftClient,
    containers: Containers,
}

impl SwiftAggregates {
    /// Log in; containers are created by the first write of each metric.
    pub async fn connect(options: SwiftOptions) -> Result<Self> {
        let containers = Containers {
            prefix: options.container_prefix.clone(),
            prefix_all: options.container_prefix_all,
        };
        let client = SwiftClient::connect(options).await?;
        Ok(SwiftAggregates { client, containers })
    }

    fn split(&self, s: &SplitRef) -> (String, String) {
        (
            self.containers.metric(s.metric),
            split_object(s.method, s.key.granularity, s.key.start),
        )
    }
}

#[async_trait]
impl Aggregates for SwiftAggregates {
    async fn get_raw(&self, metrics: &[Uuid]) -> Result<Vec<Option<Vec<u8>>>> {
        self.client
            .get_all(
                metrics
                    .iter()
                    .map(|&m| (self.containers.metric(m), RAW_OBJECT.to_string()))
                    .collect(),
            )
            .await
    }

    async fn list_split_keys(&self, series: &[(Uuid, Method, i64)]) -> Result<Vec<Vec<SplitKey>>> {
        let mut metrics: Vec<Uuid> = series.iter().map(|(m, _, _)| *m).collect();
        metrics.sort_unstable();
        metrics.dedup();
        let listed: HashMap<Uuid, Vec<String>> = futures::stream::iter(metrics)
            .map(|m| async move {
                let entries = self
                    .client
                    .list(&self.containers.metric(m), None)
                    .await?
                    .unwrap_or_default();
                Ok::<_, crate::StorageError>((m, entries.into_iter().map(|e| e.name).collect()))
            })
            .buffer_unordered(self.client.parallel)
            .try_collect()
            .await?;
        Ok(series
            .iter()
            .map(|(m, method, granularity)| {
                let method = method.to_string();
                let mut starts: Vec<i64> = listed
                    .get(m)
                    .into_iter()
                    .flatten()
                    .filter_map(|name| parse_split(name))
                    .filter(|(_, me, g)| *me == method && g == granularity)
                    .map(|(start, _, _)| start)
                    .collect();
                starts.sort_unstable();
                starts.dedup();
                starts
                    .into_iter()
                    .map(|start| SplitKey {
                        start,
                        granularity: *granularity,
                    })
                    .collect()
            })
            .collect())
    }

    async fn get_splits(&self, splits: &[SplitRef]) -> Result<Vec<Option<Vec<u8>>>> {
        self.client
            .get_all(splits.iter().map(|s| self.split(s)).collect())
            .await
    }

    async fn write(&self, batch: WriteBatch) -> Result<()> {
        let WriteBatch {
            raw,
            splits,
            delete_splits,
        } = batch;
        // A split both deleted and written in one batch is written.
        let written: HashSet<SplitRef> = splits.iter().map(|(s, _)| *s).collect();
        let deletes: Vec<(String, String)> = delete_splits
            .iter()
            .filter(|s| !written.contains(s))
            .map(|s| self.split(s))
            .collect();
        let puts: Vec<(String, String, Vec<u8>)> = splits
            .into_iter()
            .map(|(s, data)| {
                let (c, o) = self.split(&s);
                (c, o, data)
            })
            .collect();
        let (deleted, put) =
            tokio::join!(self.client.bulk_delete(deletes), self.client.put_all(puts));
        deleted?;
        put?;
        self.client
            .put_all(
                raw.into_iter()
                    .map(|(m, data)| (self.containers.metric(m), RAW_OBJECT.to_string(), data))
                    .collect(),
            )
            .await
    }

    async fn delete_metrics(&self, metrics: &[Uuid]) -> Result<()> {
        let containers: Vec<String> = metrics.iter().map(|&m| self.containers.metric(m)).collect();
        let listed: Vec<(String, Vec<String>)> = futures::stream::iter(containers.clone())
            .map(|c| async move {
                let names = self.client.list(&c, None).await?;
                Ok::<_, crate::StorageError>((c, names.unwrap_or_default()))
            })
            .buffer_unordered(self.client.parallel)
            .map_ok(|(c, entries)| (c, entries.into_iter().map(|e| e.name).collect()))
            .try_collect()
            .await?;
        let objects: Vec<(String, String)> = listed
            .into_iter()
            .flat_map(|(c, names)| names.into_iter().map(move |o| (c.clone(), o)))
            .collect();
        self.client.bulk_delete(objects).await?;
        futures::stream::iter(containers)
            .map(|c| async move {
                // A container's listing can lag its deletes for a moment.
                for attempt in 0..5 {
                    if self.client.delete_container(&c).await? {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                // Objects written since the listing (a metric deleted while
                // processed): its objects are gone from our view; say so.
                tracing::warn!(container = %c, "container of a deleted metric still holds objects; left in place");
                Ok::<_, crate::StorageError>(())
            })
            .buffer_unordered(self.client.parallel)
            .try_collect::<()>()
            .await
    }
}
