//! The read path: stored splits back to aggregated series.
//!
//! Fetching the splits is I/O, on the async executor; decoding, truncating,
//! resampling and slicing them is CPU work, done on the blocking pool in one
//! hand-off per read.

use crate::{Engine, EngineError, InternalError};
use carbonara::calendar::{self, Sampling};
use carbonara::{AggregatedTimeSerie, Method, SplitKey, Timestamp, codec};
use gnocchi_index::Metric;
use gnocchi_storage::SplitRef;
use uuid::Uuid;

/// What `GET /v1/metric/ID/measures` asks for.
#[derive(Debug, Clone)]
pub struct MeasuresQuery {
    pub method: Method,
    /// Only this granularity (ns); all of the policy's otherwise.
    pub granularity: Option<i64>,
    pub start: Option<Timestamp>,
    pub stop: Option<Timestamp>,
    /// Regroup each series with the same method, at a fixed granularity or
    /// into calendar periods. A calendar-resampled series keeps its source
    /// `granularity` field (a period has no fixed span): the caller, which
    /// asked for the calendar, renders its letter.
    pub resample: Option<Sampling>,
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

/// One series to read: `metric`'s aggregate with `method` at `granularity` (ns).
#[derive(Debug, Clone, Copy)]
pub struct SeriesRef<'a> {
    pub metric: &'a Metric,
    pub method: Method,
    pub granularity: i64,
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
        let mut granularities: Vec<i64> = match query.granularity {
            Some(g) => {
                if !policy.definition.iter().any(|d| d.granularity == g) {
                    return Err(ReadError::GranularityNotInPolicy(g));
                }
                vec![g]
            }
            None => policy.definition.iter().map(|d| d.granularity).collect(),
        };
        granularities.sort_unstable_by(|a, b| b.cmp(a));
        granularities.dedup();
        let refs: Vec<SeriesRef> = granularities
            .iter()
            .map(|&granularity| SeriesRef {
                metric,
                method: query.method,
                granularity,
            })
            .collect();
        let Some(resample) = query.resample else {
            return self.read_series(&refs, query.start, query.stop).await;
        };
        // As upstream: every point of the splits overlapping [start, stop] is
        // regrouped, and only then are the new buckets restricted to
        // [floor(start, period), stop). A bucket before `stop` thus holds
        // points after it, as far as the last split read.
        let fetched = self.fetch_series(&refs, query.start, query.stop).await?;
        let (method, start, stop) = (query.method, query.start, query.stop);
        on_blocking_pool(move || {
            fetched
                .into_iter()
                .map(|f| {
                    let s = f.decode();
                    match resample {
                        Sampling::Fixed(g) => s.resample(g, method).slice(start, stop),
                        Sampling::Calendar(c) => {
                            let mut r = calendar::resample(&s.timestamps, &s.values, c, method);
                            r.granularity = s.granularity;
                            r.slice(start, stop)
                        }
                    }
                })
                .collect()
        })
        .await
    }

    /// Several series, each restricted to `[floor(start, granularity), stop)`
    /// and to its policy's timespan, in the order asked. Only the splits
    /// overlapping the range are read, all in one storage batch; a series
    /// never written is empty. The caller has checked that each method and
    /// granularity exists in the metric's policy.
    pub async fn read_series(
        &self,
        refs: &[SeriesRef<'_>],
        start: Option<Timestamp>,
        stop: Option<Timestamp>,
    ) -> Result<Vec<AggregatedTimeSerie>, ReadError> {
        let fetched = self.fetch_series(refs, start, stop).await?;
        on_blocking_pool(move || {
            fetched
                .into_iter()
                .map(|f| f.decode().slice(start, stop))
                .collect()
        })
        .await
    }

    /// The stored splits overlapping `[start, stop]`, per series, still
    /// encoded: what upstream loads before it resamples and restricts to the
    /// range.
    async fn fetch_series(
        &self,
        refs: &[SeriesRef<'_>],
        start: Option<Timestamp>,
        stop: Option<Timestamp>,
    ) -> Result<Vec<FetchedSeries>, ReadError> {
        let series: Vec<_> = refs
            .iter()
            .map(|r| (r.metric.id, r.method, r.granularity))
            .collect();
        let all_keys = self.aggregates.list_split_keys(&series).await?;
        let mut wanted: Vec<SplitRef> = Vec::new();
        let mut counts = Vec::with_capacity(refs.len());
        for (r, keys) in refs.iter().zip(&all_keys) {
            let from = start.map(|s| SplitKey::of(s, r.granularity));
            let to = stop.map(|s| SplitKey::of(s, r.granularity));
            let before = wanted.len();
            wanted.extend(
                keys.iter()
                    .filter(|k| from.is_none_or(|f| **k >= f) && to.is_none_or(|t| **k <= t))
                    .map(|key| SplitRef {
                        metric: r.metric.id,
                        method: r.method,
                        key: *key,
                    }),
            );
            counts.push(wanted.len() - before);
        }
        let blobs = self.aggregates.get_splits(&wanted).await?;

        let mut out = Vec::with_capacity(refs.len());
        let mut blobs = wanted.iter().zip(blobs);
        for (r, count) in refs.iter().zip(counts) {
            let splits = blobs
                .by_ref()
                .take(count)
                .filter_map(|(split, blob)| Some((split.key, blob?)))
                .collect();
            let timespan = r
                .metric
                .archive_policy
                .definition
                .iter()
                .find(|d| d.granularity == r.granularity)
                .and_then(|d| d.timespan);
            out.push(FetchedSeries {
                metric: r.metric.id,
                granularity: r.granularity,
                timespan,
                splits,
            });
        }
        Ok(out)
    }
}

/// One series' stored splits, fetched but not decoded: what the blocking pool
/// needs, owned.
struct FetchedSeries {
    metric: Uuid,
    granularity: i64,
    /// The policy's retention at this granularity (`None`: unlimited).
    timespan: Option<i64>,
    /// The splits that exist, in key order, with their bytes.
    splits: Vec<(SplitKey, Vec<u8>)>,
}

impl FetchedSeries {
    /// Every point of the splits, within the policy's timespan. CPU work: on
    /// the blocking pool.
    fn decode(self) -> AggregatedTimeSerie {
        let mut serie = AggregatedTimeSerie::empty(self.granularity);
        for (key, blob) in &self.splits {
            match codec::decode_split(*key, blob) {
                Ok(part) => {
                    serie.timestamps.extend_from_slice(&part.timestamps);
                    serie.values.extend_from_slice(&part.values);
                }
                // Upstream logs a corrupt split and reads it as empty.
                Err(e) => {
                    tracing::error!(metric = %self.metric, error = %e, "corrupt split ignored")
                }
            }
        }
        if let (Some(span), Some(last)) = (self.timespan, serie.last()) {
            serie.truncate_before(last - span);
        }
        serie
    }
}

/// Run CPU work on the blocking pool, in the caller's tracing span (so what it
/// logs stays attached to the request).
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ReadError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|e| ReadError::Engine(EngineError::Internal(InternalError::Blocking(e))))
}
