//! What the S3 drivers ([`crate::s3_aggregates`], [`crate::s3_incoming`])
//! share: upstream's `s3_*` options, the connection to one bucket (created
//! when missing, as upstream does) and the parallel object calls, through the
//! `object_store` crate.
//!
//! # Configuration
//!
//! [`S3Config`] mirrors upstream's `s3_endpoint_url`, `s3_region_name`,
//! `s3_access_key_id`, `s3_secret_access_key`, `s3_bucket_prefix`,
//! `s3_check_consistency_timeout` and `s3_max_pool_connections` (under
//! `[storage]`, and under `[incoming]` where each defaults to the `[storage]`
//! one). Without an access key, credentials come from the environment and
//! instance metadata (`AWS_*` variables, as boto3 would find them).
//!
//! # The bucket
//!
//! [`S3Bucket::connect`] checks that the bucket exists (one `LIST`) and
//! otherwise creates it with a `PUT` bucket request presigned by
//! `object_store`'s own SigV4 signer (`object_store` has no bucket API): no
//! hand-written signing, and the request carries a `LocationConstraint` when
//! the region is not `us-east-1`. "Already exists" answers are accepted
//! (another process may create it at the same time).

use crate::{Result, StorageError};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_REGION: &str = "us-east-1";

/// Upstream's `s3_*` options.
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
    /// `s3_bucket_prefix`: the buckets are `<prefix>-aggregates` and `<prefix>-measure`.
    pub bucket_prefix: String,
    /// `s3_check_consistency_timeout` (seconds, default 60). Upstream's
    /// aggregate driver waited after each write until S3 listed the object,
    /// for the eventual consistency S3 had before December 2020; S3, RGW and
    /// MinIO are now read-after-write consistent, so the option is accepted and
    /// has no effect (upstream's incoming driver never used it either).
    pub check_consistency_timeout: f64,
    /// `s3_max_pool_connections` (default 50): connections kept per host, and
    /// the number of requests one call runs at once.
    pub max_pool_connections: usize,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint_url: None,
            region_name: None,
            access_key_id: None,
            secret_access_key: None,
            bucket_prefix: "gnocchi".to_string(),
            check_consistency_timeout: 60.0,
            max_pool_connections: 50,
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
            .field("check_consistency_timeout", &self.check_consistency_timeout)
            .field("max_pool_connections", &self.max_pool_connections)
            .finish()
    }
}

impl S3Config {
    /// The bucket holding the aggregates, as upstream names it.
    pub fn bucket_name(&self) -> String {
        format!("{}-aggregates", self.bucket_prefix)
    }

    /// The bucket holding the incoming measures, as upstream names it.
    pub fn measure_bucket_name(&self) -> String {
        format!("{}-measure", self.bucket_prefix)
    }
}

pub(crate) fn backend(e: object_store::Error) -> StorageError {
    StorageError::S3(e)
}

/// One bucket, and the calls both drivers make on it.
pub(crate) struct S3Bucket {
    pub(crate) store: Arc<AmazonS3>,
    /// Requests in flight at once per call (`s3_max_pool_connections`).
    pub(crate) parallel: usize,
}

impl S3Bucket {
    /// Connect to `bucket`, and create it if it does not exist.
    pub(crate) async fn connect(config: &S3Config, bucket: &str) -> Result<Self> {
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
        let parallel = config.max_pool_connections.max(1);
        builder = builder
            .with_bucket_name(bucket)
            .with_region(&region)
            .with_client_options(ClientOptions::new().with_pool_max_idle_per_host(parallel));
        if let Some(endpoint) = config.endpoint_url.as_deref().filter(|e| !e.is_empty()) {
            let endpoint = endpoint.trim_end_matches('/');
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = Arc::new(builder.build().map_err(backend)?);
        let this = S3Bucket { store, parallel };
        this.ensure_bucket(bucket, &region).await?;
        Ok(this)
    }

    async fn ensure_bucket(&self, bucket: &str, region: &str) -> Result<()> {
        let probe = Path::from("gnocchi-bucket-probe");
        let listed = self.store.list_with_delimiter(Some(&probe)).await;
        let Err(list_error) = listed else {
            return Ok(());
        };
        tracing::info!(bucket, error = %list_error, "bucket not listable, creating it");
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

    /// GET one object; a missing object is `None`.
    pub(crate) async fn get(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        match self.store.get(path).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(backend)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    /// GET each path, [`S3Bucket::parallel`] at a time, in the order given; a
    /// missing object is `None`.
    pub(crate) async fn get_all(&self, paths: Vec<Path>) -> Result<Vec<Option<Vec<u8>>>> {
        futures::stream::iter(paths)
            .map(|path| async move { self.get(&path).await })
            .buffered(self.parallel)
            .try_collect()
            .await
    }

    /// PUT each object, [`S3Bucket::parallel`] at a time.
    pub(crate) async fn put_all(&self, objects: Vec<(Path, Vec<u8>)>) -> Result<()> {
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
            .buffer_unordered(self.parallel)
            .try_collect::<()>()
            .await
    }

    /// Bulk-delete these paths (`DeleteObjects`, 1000 keys a request; a
    /// missing object is not an error).
    pub(crate) async fn delete_all(&self, paths: Vec<Path>) -> Result<()> {
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
