//! The read path: stored splits back to aggregated series.

use crate::{Engine, EngineError};
use carbonara::{AggregatedTimeSerie, Method, SplitKey, Timestamp, codec};
use gnocchi_index::Metric;
use gnocchi_storage::SplitRef;

/// What `GET /v1/metric/ID/measures` asks for.
#[derive(Debug, Clone)]
pub struct MeasuresQuery {
    pub method: Method,
    /// Only this granularity (ns); all of the policy's otherwise.
    pub granularity: Option<i64>,
    pub start: Option<Timestamp>,
    pub stop: Option<Timestamp>,
    /// Regroup each series at this granularity (ns) with the same method.
    pub resample: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("Aggregation method does not exist for this metric")]
    MethodNotInPolicy,
    #[error("granularity not in the archive policy")]
    GranularityNotInPolicy(i64),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<gnocchi_storage::StorageError> for ReadError {
    fn from(e: gnocchi_storage::StorageError) -> Self {
        ReadError::Engine(e.into())
    }
}

impl Engine {
    /// The series of `metric` for `query`, coarsest granularity first. Only the
    /// splits overlapping [start, stop] are read, in one batch.
    pub async fn read_measures(
        &self,
        metric: &Metric,
        query: &MeasuresQuery,
    ) -> Result<Vec<AggregatedTimeSerie>, ReadError> {
        let policy = &metric.archive_policy;
        if !policy.aggregation_methods.contains(&query.method) {
            return Err(ReadError::MethodNotInPolicy);
        }
        let mut items: Vec<&carbonara::ArchivePolicyItem> = match query.granularity {
            Some(g) => {
                let items: Vec<_> = policy
                    .definition
                    .iter()
                    .filter(|d| d.granularity == g)
                    .collect();
                if items.is_empty() {
                    return Err(ReadError::GranularityNotInPolicy(g));
                }
                items
            }
            None => policy.definition.iter().collect(),
        };
        items.sort_by(|a, b| b.granularity.cmp(&a.granularity));

        let series: Vec<_> = items
            .iter()
            .map(|d| (metric.id, query.method, d.granularity))
            .collect();
        let all_keys = self.aggregates.list_split_keys(&series).await?;
        let mut wanted: Vec<SplitRef> = Vec::new();
        let mut counts = Vec::with_capacity(items.len());
        for (item, keys) in items.iter().zip(&all_keys) {
            let from = query.start.map(|s| SplitKey::of(s, item.granularity));
            let to = query.stop.map(|s| SplitKey::of(s, item.granularity));
            let before = wanted.len();
            wanted.extend(
                keys.iter()
                    .filter(|k| from.is_none_or(|f| **k >= f) && to.is_none_or(|t| **k <= t))
                    .map(|key| SplitRef {
                        metric: metric.id,
                        method: query.method,
                        key: *key,
                    }),
            );
            counts.push(wanted.len() - before);
        }
        let blobs = self.aggregates.get_splits(&wanted).await?;

        let mut out = Vec::with_capacity(items.len());
        let mut blobs = wanted.iter().zip(blobs);
        for (item, count) in items.iter().zip(counts) {
            let mut serie = AggregatedTimeSerie::empty(item.granularity);
            for (r, blob) in blobs.by_ref().take(count) {
                let Some(blob) = blob else { continue };
                match codec::decode_split(r.key, &blob) {
                    Ok(part) => {
                        serie.timestamps.extend_from_slice(&part.timestamps);
                        serie.values.extend_from_slice(&part.values);
                    }
                    // Upstream logs a corrupt split and reads it as empty.
                    Err(e) => {
                        tracing::error!(metric = %metric.id, error = %e, "corrupt split ignored")
                    }
                }
            }
            if let (Some(span), Some(last)) = (item.timespan, serie.last()) {
                serie.truncate_before(last - span);
            }
            if let Some(g) = query.resample {
                serie = serie.resample(g, query.method);
            }
            out.push(serie.slice(query.start, query.stop));
        }
        Ok(out)
    }
}
