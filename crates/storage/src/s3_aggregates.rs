//! Aggregate store on S3-compatible object storage (AWS S3, Ceph RGW, MinIO…),
//! through the `object_store` crate.
//!
//! # Configuration
//!
//! [`S3Config`] (in [`crate::s3_client`], shared with the incoming driver)
//! mirrors upstream's `[storage] s3_*` options. Objects live in the bucket
//! `<s3_bucket_prefix>-aggregates` (upstream's name), created when missing.
//!
//! # Object names
//!
//! - `<metric uuid>/none`: the raw buffer;
//! - `<metric uuid>/<method>/<granularity>/<split start>`: a split, granularity
//!   and start as decimal integer nanoseconds
//!   (`…/rate:mean/60000000000/1425600000000000000`).
//!
//! All of a metric's objects share the prefix `<metric uuid>/`, and all splits of
//! one series the prefix `<metric uuid>/<method>/<granularity>/`.
//!
//! # Requests per call
//!
//! S3 has no batch read or write, so every object is one request; they run
//! `s3_max_pool_connections` at a time:
//!
//! - `get_raw`, `get_splits`: one `GET` per object (a 404 is `None`);
//! - `list_split_keys`: one `LIST` per series (more only past 1000 splits),
//!   with `/` as delimiter (splits are the leaves under the series prefix);
//! - `write`: the deleted splits in bulk `DeleteObjects` requests (1000 keys
//!   each) alongside one `PUT` per split, then one `PUT` per raw buffer, once
//!   every split is stored (a raw buffer never gets ahead of its splits; a
//!   failed batch is simply processed again);
//! - `delete_metrics`: per metric one (recursive) `LIST` of its prefix and bulk
//!   deletes.
//!
//! Test server note: `s3s-fs` answers a recursive `LIST` by walking the whole
//! bucket directory, so its `delete_metrics` slows down with the bucket size;
//! real S3, RGW and MinIO list a prefix from an index or its directory.

use crate::s3_client::{S3Bucket, backend};
use crate::{Aggregates, Result, SplitRef, WriteBatch};
use async_trait::async_trait;
use carbonara::{Method, SplitKey};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;
use std::collections::HashSet;
use uuid::Uuid;

pub use crate::s3_client::S3Config;

/// The aggregate store of scale-out deployments on object storage.
pub struct S3Aggregates {
    bucket: S3Bucket,
}

fn raw_path(metric: Uuid) -> Path {
    Path::from_iter([metric.hyphenated().to_string(), "none".to_string()])
}

fn series_path(metric: Uuid, method: Method, granularity: i64) -> Path {
    Path::from_iter([
        metric.hyphenated().to_string(),
        method.to_string(),
        granularity.to_string(),
    ])
}

fn split_path(s: &SplitRef) -> Path {
    series_path(s.metric, s.method, s.key.granularity).join(s.key.start.to_string())
}

fn metric_path(metric: Uuid) -> Path {
    Path::from(metric.hyphenated().to_string())
}

impl S3Aggregates {
    /// Connect, and create the bucket if it does not exist.
    pub async fn connect(config: S3Config) -> Result<Self> {
        let bucket = S3Bucket::connect(&config, &config.bucket_name()).await?;
        Ok(S3Aggregates { bucket })
    }
}

#[async_trait]
impl Aggregates for S3Aggregates {
    async fn get_raw(&self, metrics: &[Uuid]) -> Result<Vec<Option<Vec<u8>>>> {
        self.bucket
            .get_all(metrics.iter().map(|&m| raw_path(m)).collect())
            .await
    }

    async fn list_split_keys(&self, series: &[(Uuid, Method, i64)]) -> Result<Vec<Vec<SplitKey>>> {
        futures::stream::iter(series.to_vec())
            .map(|(metric, method, granularity)| {
                let store = self.bucket.store.clone();
                async move {
                    let prefix = series_path(metric, method, granularity);
                    // Splits are the leaves under the series prefix: a delimited
                    // listing costs the same requests on S3 and lets file-backed
                    // servers read one directory instead of walking the bucket.
                    let listed = store
                        .list_with_delimiter(Some(&prefix))
                        .await
                        .map_err(backend)?;
                    let mut starts: Vec<i64> = listed
                        .objects
                        .iter()
                        .filter_map(|meta| {
                            let start = meta.location.filename()?.parse().ok();
                            if start.is_none() {
                                tracing::warn!(object = %meta.location, "unexpected object among splits, ignored");
                            }
                            start
                        })
                        .collect();
                    starts.sort_unstable();
                    starts.dedup();
                    Ok(starts
                        .into_iter()
                        .map(|start| SplitKey { start, granularity })
                        .collect())
                }
            })
            .buffered(self.bucket.parallel)
            .try_collect()
            .await
    }

    async fn get_splits(&self, splits: &[SplitRef]) -> Result<Vec<Option<Vec<u8>>>> {
        self.bucket
            .get_all(splits.iter().map(split_path).collect())
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
        let deletes: Vec<Path> = delete_splits
            .iter()
            .filter(|s| !written.contains(s))
            .map(split_path)
            .collect();
        let puts: Vec<(Path, Vec<u8>)> = splits
            .into_iter()
            .map(|(s, data)| (split_path(&s), data))
            .collect();
        let (deleted, put) =
            tokio::join!(self.bucket.delete_all(deletes), self.bucket.put_all(puts));
        deleted?;
        put?;
        self.bucket
            .put_all(
                raw.into_iter()
                    .map(|(m, data)| (raw_path(m), data))
                    .collect(),
            )
            .await
    }

    async fn delete_metrics(&self, metrics: &[Uuid]) -> Result<()> {
        futures::stream::iter(metrics.to_vec())
            .map(|metric| async move {
                let prefix = metric_path(metric);
                let paths: Vec<Path> = self
                    .bucket
                    .store
                    .list(Some(&prefix))
                    .map_ok(|meta| meta.location)
                    .try_collect()
                    .await
                    .map_err(backend)?;
                self.bucket.delete_all(paths).await
            })
            .buffer_unordered(self.bucket.parallel)
            .try_collect::<()>()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonara::method::BaseMethod;

    #[test]
    fn object_names() {
        let m = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(
            raw_path(m).as_ref(),
            "01234567-89ab-cdef-0123-456789abcdef/none"
        );
        let s = SplitRef {
            metric: m,
            method: Method::Rate(BaseMethod::Pct(95)),
            key: SplitKey {
                start: -3_600_000_000_000,
                granularity: 1_000_000_000,
            },
        };
        assert_eq!(
            split_path(&s).as_ref(),
            "01234567-89ab-cdef-0123-456789abcdef/rate:95pct/1000000000/-3600000000000"
        );
        assert!(split_path(&s).prefix_matches(&series_path(m, s.method, s.key.granularity)));
        assert!(!split_path(&s).prefix_matches(&series_path(m, s.method, 1)));
        assert_eq!(S3Config::default().bucket_name(), "gnocchi-aggregates");
        let c = S3Config {
            secret_access_key: Some("topsecret".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
