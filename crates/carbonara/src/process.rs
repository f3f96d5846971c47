//! Applying one batch of measures to one metric: the pure heart of metricd.
//!
//! Deliberate deviations from upstream, where its behaviour depends on how
//! measures happen to be batched:
//!
//! - upstream derives `rate:` series only from points at or after
//!   `start − granularity`, so with sparse points (e.g. 1 s buckets, one point
//!   every 10 s) the first point of a batch loses its difference; we diff against
//!   the previous point of the raw buffer, whatever its age;
//! - upstream starts recomputing at `max(buffer first, batch first)` where the
//!   batch first may be a point the back window refused; we start at the oldest
//!   *accepted* point (upstream only recomputes more, identical buckets);
//! - percentile positions are computed per bucket (`(n − 1)·q/100`), not offset by
//!   the bucket's index in the recomputed range as upstream does, which only moves
//!   the last bits of interpolated values.

use crate::aggregate::{bucket_bounds, decompose, derive, floor_sat, reduce_buckets};
use crate::aggregated::{AggregatedTimeSerie, SplitKey};
use crate::bound::BoundTimeSerie;
use crate::measure::Measure;
use crate::method::{BaseMethod, Method};
use crate::policy::{ArchivePolicy, ArchivePolicyItem};
use crate::time::Timestamp;

/// One recomputed (method, granularity) series: every bucket from the first
/// changed one to the newest. The caller merges it into the stored splits.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedAggregate {
    pub method: Method,
    pub granularity: i64,
    /// Retention of this granularity (`None`: unlimited).
    pub timespan: Option<i64>,
    pub serie: AggregatedTimeSerie,
}

impl ComputedAggregate {
    /// Points at or before this are out of retention (`last - timespan`), if limited.
    pub fn oldest_point_to_keep(&self) -> Option<Timestamp> {
        match (self.timespan, self.serie.last()) {
            (Some(span), Some(last)) => Some(last.saturating_sub(span)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricUpdate {
    /// The new raw buffer, already truncated.
    pub raw: BoundTimeSerie,
    pub aggregates: Vec<ComputedAggregate>,
    /// The raw buffer's first block timestamp before the merge (`None`: a
    /// new buffer) and after it, before truncation: upstream's "oldest
    /// mutable timestamp", previous and current.
    pub first_block_before: Option<Timestamp>,
    pub first_block_after: Option<Timestamp>,
}

impl MetricUpdate {
    /// Whether this update deletes the splits of `granularity` that are out
    /// of retention. As upstream, only an update that moves the raw buffer's
    /// first block into another split does; until then expired splits stay,
    /// and a read whose range selects only them still returns their points.
    pub fn expires_splits(&self, granularity: i64) -> bool {
        match (self.first_block_before, self.first_block_after) {
            (Some(before), Some(after)) if granularity > 0 => {
                SplitKey::of(before, granularity) != SplitKey::of(after, granularity)
            }
            _ => false,
        }
    }
}

/// Merge `measures` into the metric's raw buffer (`None`: never processed) and
/// recompute every (method, granularity) of `policy` from the first changed bucket.
/// Returns `None` only when there is nothing to do (no measures).
///
/// The buffer's `block_size` and `back_window` are always taken from the policy
/// (as upstream, which rebuilds the buffer with the current policy's values).
/// As upstream, the recomputation starts at `t = max(first point of the merged
/// buffer, oldest measure of the batch)`, the oldest measure counting even when
/// the back window refused it: a batch refused whole still recomputes the
/// buckets from the buffer's first point. For each granularity `g`, the buckets
/// from `floor(t, g)` on are recomputed from the buffer. `rate:` methods diff
/// each point against its predecessor in the buffer, but only a predecessor no
/// older than `floor(t, g) - g`: across a longer gap the first diff is lost, as
/// upstream loses it.
pub fn apply_measures(
    raw: Option<BoundTimeSerie>,
    policy: &ArchivePolicy,
    measures: &mut [Measure],
) -> Option<MetricUpdate> {
    let block_size = policy.max_block_size();
    let back_window = raw_back_window(policy);
    let mut raw = match raw {
        Some(mut r) => {
            r.block_size = block_size;
            r.back_window = back_window;
            r
        }
        None => BoundTimeSerie::new(block_size, back_window),
    };
    let first_block_before = raw.first_block_timestamp();
    raw.merge(measures);
    let first_block_after = raw.first_block_timestamp();
    // `merge` sorted the batch.
    let oldest_measure = measures.first()?.timestamp;
    let first_changed = raw
        .timestamps
        .first()
        .map_or(oldest_measure, |&f| f.max(oldest_measure));

    let aggregates = compute_aggregates(&raw, policy, first_changed);
    raw.truncate();
    Some(MetricUpdate {
        raw,
        aggregates,
        first_block_before,
        first_block_after,
    })
}

fn compute_aggregates(
    raw: &BoundTimeSerie,
    policy: &ArchivePolicy,
    first_changed: Timestamp,
) -> Vec<ComputedAggregate> {
    let n = raw.timestamps.len().min(raw.values.len());
    let (ts, vals) = (&raw.timestamps[..n], &raw.values[..n]);
    let methods: Vec<(Method, bool, BaseMethod)> = policy
        .aggregation_methods
        .iter()
        .map(|&m| {
            let (rate, base) = decompose(m);
            (m, rate, base)
        })
        .collect();
    let any_plain = methods.iter().any(|m| !m.1);
    let any_rate = methods.iter().any(|m| m.1);
    let items: Vec<&ArchivePolicyItem> = policy
        .definition
        .iter()
        .filter(|d| d.granularity > 0)
        .collect();

    // The derived series, computed once for every granularity from the
    // earliest point any of them may diff against: one granularity before its
    // first recomputed bucket. `dts[k]` diffs `ts[base + k + 1]` against
    // `ts[base + k]`.
    let derive_from = |g: i64| floor_sat(first_changed, g).saturating_sub(g);
    let base = if any_rate {
        let earliest = items
            .iter()
            .map(|d| derive_from(d.granularity))
            .min()
            .unwrap_or(first_changed);
        ts.partition_point(|&t| t < earliest)
    } else {
        n
    };
    let (dts, dvals) = derive(&ts[base..], &vals[base..]);

    let mut out = Vec::with_capacity(items.len() * methods.len());
    let mut plain_buckets = Vec::new();
    let mut rate_buckets = Vec::new();
    let mut scratch = Vec::new();
    for item in items {
        let g = item.granularity;
        let start = floor_sat(first_changed, g);
        let plain_from = ts.partition_point(|&t| t < start);
        let mut rate_from = dts.partition_point(|&t| t < start);
        // The first diff of this granularity needs a predecessor within one
        // granularity of its first bucket (only the first can lack one).
        if rate_from < dts.len() && ts[base + rate_from] < derive_from(g) {
            rate_from += 1;
        }
        if any_plain {
            bucket_bounds(&ts[plain_from..], g, &mut plain_buckets);
        }
        if any_rate {
            bucket_bounds(&dts[rate_from..], g, &mut rate_buckets);
        }
        for &(method, rate, base) in &methods {
            let (buckets, pvals) = if rate {
                (&rate_buckets, &dvals[rate_from..])
            } else {
                (&plain_buckets, &vals[plain_from..])
            };
            let mut serie = AggregatedTimeSerie::empty(g);
            reduce_buckets(buckets, pvals, base, &mut scratch, &mut serie);
            if !serie.is_empty() {
                out.push(ComputedAggregate {
                    method,
                    granularity: g,
                    timespan: item.timespan,
                    serie,
                });
            }
        }
    }
    out
}

/// The back window in blocks the raw buffer keeps for this policy
/// (one more when a `rate:` method needs the previous point).
pub fn raw_back_window(policy: &ArchivePolicy) -> u64 {
    policy.back_window.saturating_add(u64::from(
        policy.aggregation_methods.iter().any(|m| m.is_rate()),
    ))
}
