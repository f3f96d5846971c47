//! Aggregate store on S3-compatible object storage (AWS S3, Ceph RGW, MinIO…),
//! through the `object_store` crate.
//!
//! # Configuration
//!
//! [`S3Config`] mirrors upstream's `[storage]` options `s3_endpoint_url`,
//! `s3_region_name`, `s3_access_key_id`, `s3_secret_access_key` and
//! `s3_bucket_prefix`. Objects live in the bucket `<s3_bucket_prefix>-aggregates`
//! (upstream's name). [`S3Aggregates::connect`] checks that the bucket exists
//! (one `LIST`) and otherwise creates it, as upstream does, with a `PUT` bucket
//! request presigned by `object_store`'s own SigV4 signer (`object_store` has no
//! bucket API): no hand-written signing, and the request carries a
//! `LocationConstraint` when the region is not `us-east-1`. "Already exists"
//! answers are accepted (another process may create it at the same time).
//! Without an access key, credentials come from the environment and instance
//! metadata (`AWS_*` variables, as boto3 would find them).
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
//! [`PARALLEL_REQUESTS`] at a time:
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

use crate::{Aggregates, Result, SplitRef, StorageError, WriteBatch};
use async_trait::async_trait;
use carbonara::{Method, SplitKey};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Requests in flight at once per call.
pub const PARALLEL_REQUESTS: usize = 32;

const DEFAULT_REGION: &str = "us-east-1";

/// Upstream's `[storage] s3_*` options.
#[derive(Clone)]
pub struct S3Config {
    /// `s3_endpoint_url`: e.g. `http://127.0.0.1:9000`; `None` for AWS itself.
    pub endpoint_url: Option<String>,
    /// `s3_region_name` (`us-east-1` if `None`).
    pub region_name: Option<String>,
    /// `s3_access_key_id` (`None`: from the environment).
    pub access_key_id: Option<String>,
    /// `s3_secret_access_key`.
    pub secret_access_key: Option<String>,
    /// `s3_bucket_prefix`: the bucket is `<prefix>-aggregates`.
    pub bucket_prefix: String,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint_url: None,
            region_name: None,
            access_key_id: None,
            secret_access_key: None,
            bucket_prefix: "gnocchi".to_string(),
        }
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint_url", &self.endpoint_url)
            .field("region_name", &self.region_name)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("bucket_prefix", &self.bucket_prefix)
            .finish()
    }
}

impl S3Config {
    /// The bucket holding the aggregates, as upstream names it.
    pub fn bucket_name(&self) -> String {
        format!("{}-aggregates", self.bucket_prefix)
    }
}

/// The aggregate store of scale-out deployments on object storage.
pub struct S3Aggregates {
    store: Arc<AmazonS3>,
}

fn backend(e: object_store::Error) -> StorageError {
    StorageError::S3(e)
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
        let bucket = config.bucket_name();
        let region = config
            .region_name
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let mut builder = match (&config.access_key_id, &config.secret_access_key) {
            (Some(key), Some(secret)) => AmazonS3Builder::new()
                .with_access_key_id(key)
                .with_secret_access_key(secret),
            (Some(_), None) | (None, Some(_)) => {
                return Err(StorageError::Backend(
                    "s3: s3_access_key_id and s3_secret_access_key go together".into(),
                ));
            }
            (None, None) => AmazonS3Builder::from_env(),
        };
        builder = builder.with_bucket_name(&bucket).with_region(&region);
        if let Some(endpoint) = config.endpoint_url.as_deref().filter(|e| !e.is_empty()) {
            let endpoint = endpoint.trim_end_matches('/');
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = Arc::new(builder.build().map_err(backend)?);
        let this = S3Aggregates { store };
        this.ensure_bucket(&bucket, &region).await?;
        Ok(this)
    }

    async fn ensure_bucket(&self, bucket: &str, region: &str) -> Result<()> {
        let probe = Path::from("gnocchi-bucket-probe");
        let listed = self.store.list_with_delimiter(Some(&probe)).await;
        let Err(list_error) = listed else {
            return Ok(());
        };
        tracing::info!(bucket, error = %list_error, "aggregates bucket not listable, creating it");
        let url = self
            .store
            .signed_url(
                reqwest::Method::PUT,
                &Path::default(),
                Duration::from_secs(300),
            )
            .await
            .map_err(backend)?;
        let mut request = reqwest::Client::new().put(url);
        if region != DEFAULT_REGION {
            request = request.body(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            ));
        }
        let response = request
            .send()
            .await
            .map_err(|source| StorageError::S3CreateBucket {
                bucket: bucket.to_string(),
                source,
            })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let exists =
            body.contains("BucketAlreadyOwnedByYou") || body.contains("BucketAlreadyExists");
        if status.is_success() || exists {
            Ok(())
        } else {
            Err(StorageError::Backend(format!(
                "s3: cannot list bucket {bucket} ({list_error}) nor create it: HTTP {status}: {}",
                body.trim()
            )))
        }
    }

    /// GET each path, [`PARALLEL_REQUESTS`] at a time; a missing object is `None`.
    async fn get_all(&self, paths: Vec<Path>) -> Result<Vec<Option<Vec<u8>>>> {
        futures::stream::iter(paths)
            .map(|path| {
                let store = self.store.clone();
                async move {
                    match store.get(&path).await {
                        Ok(r) => Ok(Some(r.bytes().await.map_err(backend)?.to_vec())),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(backend(e)),
                    }
                }
            })
            .buffered(PARALLEL_REQUESTS)
            .try_collect()
            .await
    }

    /// PUT each object, [`PARALLEL_REQUESTS`] at a time.
    async fn put_all(&self, objects: Vec<(Path, Vec<u8>)>) -> Result<()> {
        futures::stream::iter(objects)
            .map(|(path, data)| {
                let store = self.store.clone();
                async move {
                    store
                        .put(&path, PutPayload::from(data))
                        .await
                        .map(|_| ())
                        .map_err(backend)
                }
            })
            .buffer_unordered(PARALLEL_REQUESTS)
            .try_collect::<()>()
            .await
    }

    /// Bulk-delete these paths (a missing object is not an error).
    async fn delete_all(&self, paths: Vec<Path>) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let input = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut results = self.store.delete_stream(input);
        while let Some(r) = results.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(backend(e)),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Aggregates for S3Aggregates {
    async fn get_raw(&self, metrics: &[Uuid]) -> Result<Vec<Option<Vec<u8>>>> {
        self.get_all(metrics.iter().map(|&m| raw_path(m)).collect())
            .await
    }

    async fn list_split_keys(&self, series: &[(Uuid, Method, i64)]) -> Result<Vec<Vec<SplitKey>>> {
        futures::stream::iter(series.to_vec())
            .map(|(metric, method, granularity)| {
                let store = self.store.clone();
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
            .buffered(PARALLEL_REQUESTS)
            .try_collect()
            .await
    }

    async fn get_splits(&self, splits: &[SplitRef]) -> Result<Vec<Option<Vec<u8>>>> {
        self.get_all(splits.iter().map(split_path).collect()).await
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
        let (deleted, put) = tokio::join!(self.delete_all(deletes), self.put_all(puts));
        deleted?;
        put?;
        self.put_all(
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
                    .store
                    .list(Some(&prefix))
                    .map_ok(|meta| meta.location)
                    .try_collect()
                    .await
                    .map_err(backend)?;
                self.delete_all(paths).await
            })
            .buffer_unordered(PARALLEL_REQUESTS)
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
