//! Applying one batch of measures to one metric: the pure heart of metricd.
//!
//! INTERFACE (implementation to be filled in): keep these signatures.

use crate::aggregated::AggregatedTimeSerie;
use crate::bound::BoundTimeSerie;
use crate::method::Method;
use crate::policy::ArchivePolicy;
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
            (Some(span), Some(last)) => Some(last - span),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricUpdate {
    /// The new raw buffer, already truncated.
    pub raw: BoundTimeSerie,
    pub aggregates: Vec<ComputedAggregate>,
}

/// Merge `measures` into the metric's raw buffer (`None`: never processed) and
/// recompute every (method, granularity) of `policy` from the first changed bucket.
/// Returns `None` when the back window refused every measure.
pub fn apply_measures(
    raw: Option<BoundTimeSerie>,
    policy: &ArchivePolicy,
    measures: &mut [(Timestamp, f64)],
) -> Option<MetricUpdate> {
    let _ = (raw, policy, measures);
    unimplemented!()
}

/// The back window in blocks the raw buffer keeps for this policy
/// (one more when a `rate:` method needs the previous point).
pub fn raw_back_window(policy: &ArchivePolicy) -> u64 {
    policy.back_window + u64::from(policy.aggregation_methods.iter().any(|m| m.is_rate()))
}
