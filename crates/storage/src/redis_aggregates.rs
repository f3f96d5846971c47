//! Aggregate store on Redis: one hash per metric, as upstream.
//!
//! # Layout (under an optional key prefix `P`, empty by default)
//!
//! `P timeseries:<metric uuid>` is a hash with one field per stored object:
//!
//! - `none`: the raw buffer;
//! - `<split start>_<method>_<granularity>`: a split, the start and the
//!   granularity as decimal integer nanoseconds (e.g.
//!   `1425600000000000000_mean_60000000000`, `-3600000000000_rate:95pct_1000000000`).
//!
//! Upstream names the same fields `none_v3` and `<start>_<method>_<granularity>_v3`
//! with float seconds (`1425600000.0_mean_60.0_v3`), which cannot name every
//! nanosecond split exactly; our names never end in `_v3`, so a hash written by
//! upstream is never misread. Method names contain no `_`, so a field splits
//! unambiguously in three.
//!
//! # Round trips
//!
//! Every call is one round trip: `get_raw` and `get_splits` pipeline one `HGET`
//! per object; `list_split_keys` pipelines one `HKEYS` per distinct metric and
//! filters the fields locally (a hash holds a few hundred fields at most);
//! `write` is one `MULTI … EXEC` (per metric one `HDEL` of the deleted splits,
//! then one `HSET` of the written splits and raw buffer: the batch is applied
//! atomically); `delete_metrics` is one `UNLINK` of all the hashes.

use crate::redis_url::{backend, client, manager};
use crate::{Aggregates, Result, SplitRef, WriteBatch};
use async_trait::async_trait;
use carbonara::{Method, SplitKey};
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use uuid::Uuid;

/// Field of the raw buffer in a metric's hash.
pub const RAW_FIELD: &str = "none";

/// The aggregate store of scale-out deployments on Redis.
pub struct RedisAggregates {
    conn: ConnectionManager,
    prefix: String,
}

fn split_field(method: Method, key: SplitKey) -> String {
    format!("{}_{method}_{}", key.start, key.granularity)
}

/// `(start, method name, granularity)` of a split field; `None` for other fields.
fn parse_split_field(field: &[u8]) -> Option<(i64, &str, i64)> {
    let field = std::str::from_utf8(field).ok()?;
    let mut parts = field.splitn(3, '_');
    let start = parts.next()?.parse().ok()?;
    let method = parts.next()?;
    let granularity = parts.next()?.parse().ok()?;
    Some((start, method, granularity))
}

impl RedisAggregates {
    /// Connect to the Redis at `url` (upstream's `[storage] redis_url` syntax).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_prefix(url, "").await
    }

    /// As [`RedisAggregates::connect`], with every key prefixed by `prefix`.
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Self> {
        let client = client(url)?;
        let conn = manager(&client).await?;
        Ok(RedisAggregates {
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, metric: Uuid) -> String {
        format!("{}timeseries:{}", self.prefix, metric.hyphenated())
    }
}

#[async_trait]
impl Aggregates for RedisAggregates {
    async fn get_raw(&self, metrics: &[Uuid]) -> Result<Vec<Option<Vec<u8>>>> {
        if metrics.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for &m in metrics {
            pipe.hget(self.key(m), RAW_FIELD);
        }
        pipe.query_async(&mut self.conn.clone())
            .await
            .map_err(backend)
    }

    async fn list_split_keys(&self, series: &[(Uuid, Method, i64)]) -> Result<Vec<Vec<SplitKey>>> {
        if series.is_empty() {
            return Ok(Vec::new());
        }
        let mut metrics: Vec<Uuid> = series.iter().map(|s| s.0).collect();
        metrics.sort_unstable();
        metrics.dedup();
        let mut pipe = redis::pipe();
        for &m in &metrics {
            pipe.hkeys(self.key(m));
        }
        let fields: Vec<Vec<Vec<u8>>> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        // Per metric: (method name, granularity) -> split starts.
        let mut index: HashMap<Uuid, HashMap<(&str, i64), Vec<i64>>> = HashMap::new();
        for (m, fields) in metrics.iter().zip(&fields) {
            let per = index.entry(*m).or_default();
            for f in fields {
                if let Some((start, method, g)) = parse_split_field(f) {
                    per.entry((method, g)).or_default().push(start);
                }
            }
        }
        Ok(series
            .iter()
            .map(|&(metric, method, granularity)| {
                let name = method.to_string();
                let mut starts = index
                    .get(&metric)
                    .and_then(|per| per.get(&(name.as_str(), granularity)))
                    .cloned()
                    .unwrap_or_default();
                starts.sort_unstable();
                starts
                    .into_iter()
                    .map(|start| SplitKey { start, granularity })
                    .collect()
            })
            .collect())
    }

    async fn get_splits(&self, splits: &[SplitRef]) -> Result<Vec<Option<Vec<u8>>>> {
        if splits.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for s in splits {
            pipe.hget(self.key(s.metric), split_field(s.method, s.key));
        }
        pipe.query_async(&mut self.conn.clone())
            .await
            .map_err(backend)
    }

    async fn write(&self, batch: WriteBatch) -> Result<()> {
        if batch.raw.is_empty() && batch.splits.is_empty() && batch.delete_splits.is_empty() {
            return Ok(());
        }
        // Group per metric: one HDEL and one HSET per hash.
        let mut deletes: HashMap<Uuid, Vec<String>> = HashMap::new();
        for s in &batch.delete_splits {
            deletes
                .entry(s.metric)
                .or_default()
                .push(split_field(s.method, s.key));
        }
        let mut sets: HashMap<Uuid, Vec<(String, &[u8])>> = HashMap::new();
        for (s, data) in &batch.splits {
            sets.entry(s.metric)
                .or_default()
                .push((split_field(s.method, s.key), data.as_slice()));
        }
        for (m, data) in &batch.raw {
            sets.entry(*m)
                .or_default()
                .push((RAW_FIELD.to_string(), data.as_slice()));
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        // Deletes first: a split both deleted and written in one batch is written.
        for (m, fields) in &deletes {
            pipe.hdel(self.key(*m), fields).ignore();
        }
        for (m, pairs) in &sets {
            pipe.hset_multiple(self.key(*m), pairs).ignore();
        }
        pipe.exec_async(&mut self.conn.clone())
            .await
            .map_err(backend)
    }

    async fn delete_metrics(&self, metrics: &[Uuid]) -> Result<()> {
        if metrics.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = metrics.iter().map(|&m| self.key(m)).collect();
        redis::cmd("UNLINK")
            .arg(&keys)
            .exec_async(&mut self.conn.clone())
            .await
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonara::method::BaseMethod;

    #[test]
    fn split_fields_round_trip() {
        for method in [
            Method::Mean,
            Method::Pct(95),
            Method::Rate(BaseMethod::Pct(5)),
        ] {
            for start in [
                i64::MIN,
                -3_600_000_000_000,
                0,
                1_425_600_000_000_000_000,
                i64::MAX,
            ] {
                let key = SplitKey {
                    start,
                    granularity: 60_000_000_000,
                };
                let f = split_field(method, key);
                let name = method.to_string();
                assert_eq!(
                    parse_split_field(f.as_bytes()),
                    Some((start, name.as_str(), key.granularity)),
                    "{f}"
                );
            }
        }
        assert_eq!(parse_split_field(RAW_FIELD.as_bytes()), None);
        assert_eq!(parse_split_field(b"1425600000.0_mean_60.0_v3"), None);
    }
}
