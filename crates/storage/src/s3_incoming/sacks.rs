//! The number of sacks, stored in the measure bucket's `gnocchi-config`
//! object as upstream stores it (`{"sacks": N}`), and `gnocchid
//! change-sack-size` on S3.

use super::S3Incoming;
use super::layout::{CONFIG_OBJECT, MeasureObject};
use crate::s3_client::{S3Bucket, S3Config, backend};
use crate::{Result, StorageError};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};

fn config_path() -> Path {
    Path::from(CONFIG_OBJECT)
}

/// The stored number of sacks, `None` if none is stored yet.
pub(super) async fn stored(bucket: &S3Bucket) -> Result<Option<u32>> {
    let Some(bytes) = bucket.get(&config_path()).await? else {
        return Ok(None);
    };
    let corrupt = || {
        StorageError::Corrupt(format!(
            "{CONFIG_OBJECT}: expected {{\"sacks\": N}}, found {:?}",
            String::from_utf8_lossy(&bytes)
        ))
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| StorageError::CorruptFile {
            path: CONFIG_OBJECT.to_string(),
            source,
        })?;
    crate::stored_sack_count(&value)
        .map(Some)
        .ok_or_else(corrupt)
}

fn encode_config(sacks: u32) -> Vec<u8> {
    // json.dumps({"sacks": N}), byte for byte.
    format!("{{\"sacks\": {sacks}}}").into_bytes()
}

/// The stored number of sacks, storing `sacks` first if none is. Two
/// processes starting at once on an empty bucket agree: the write is
/// conditional (`If-None-Match: *`) where the server supports it, and the
/// count is read back after it.
pub(super) async fn stored_or_set(bucket: &S3Bucket, sacks: u32) -> Result<u32> {
    if let Some(n) = stored(bucket).await? {
        return Ok(n);
    }
    let payload = PutPayload::from(encode_config(sacks));
    match bucket
        .store
        .put_opts(&config_path(), payload.clone(), PutMode::Create.into())
        .await
    {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
        Err(object_store::Error::NotImplemented { .. })
        | Err(object_store::Error::NotSupported { .. }) => {
            bucket
                .store
                .put(&config_path(), payload)
                .await
                .map_err(backend)?;
        }
        Err(e) => return Err(backend(e)),
    }
    stored(bucket)
        .await?
        .ok_or_else(|| StorageError::Backend(format!("s3: {CONFIG_OBJECT} written but not found")))
}

impl S3Incoming {
    /// `gnocchid change-sack-size`, as upstream's `gnocchi-change-sack-size`:
    /// store `sacks` as the number of sacks of the measure bucket, and return
    /// the number stored before (`sacks` itself if none was stored yet).
    ///
    /// Refused ("Cannot change sack when non-empty backlog", with the number
    /// of pending measures) while any measure object is in the bucket:
    /// measures are routed by `metric id mod sacks`, and sacks are named
    /// after the count, so those already written would never be read again.
    /// S3 has no transaction, so the check and the change are two requests:
    /// stop the API processes (and statsd) first, as upstream asks. Every
    /// process must be restarted afterwards; one that is not notices within
    /// seconds and refuses writes (see [`S3Incoming::connect`]).
    pub async fn change_sacks(config: &S3Config, sacks: u32) -> Result<u32> {
        crate::check_sack_count(sacks)?;
        let bucket = S3Bucket::connect(config, &config.measure_bucket_name()).await?;
        let old = stored(&bucket).await?;
        if old == Some(sacks) {
            return Ok(sacks);
        }
        let (mut measures, mut metrics) = (0u64, std::collections::HashSet::new());
        let listed: Vec<_> = bucket
            .store
            .list(None)
            .try_collect()
            .await
            .map_err(backend)?;
        for meta in listed {
            if let Some(o) = MeasureObject::parse(meta.location, meta.size) {
                measures += o.size / crate::records::RECORD as u64;
                metrics.insert(o.metric);
            }
        }
        if !metrics.is_empty() {
            return Err(StorageError::Backend(format!(
                "Cannot change sack when non-empty backlog. Process remaining {measures} measures (of {} metrics) and try again",
                metrics.len()
            )));
        }
        bucket
            .store
            .put(&config_path(), PutPayload::from(encode_config(sacks)))
            .await
            .map_err(backend)?;
        if old.is_none() {
            tracing::info!(sacks, "no sack count was stored yet, stored this one");
        }
        Ok(old.unwrap_or(sacks))
    }
}
