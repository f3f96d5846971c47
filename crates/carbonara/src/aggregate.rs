//! Grouping raw points into granularity buckets and reducing each bucket.
//!
//! INTERFACE (implementation to be filled in): keep these signatures.

use crate::aggregated::AggregatedTimeSerie;
use crate::method::BaseMethod;
use crate::time::Timestamp;

/// Aggregate sorted raw points into buckets of `granularity` (bucket = floored
/// timestamp) with upstream's per-bucket semantics (sample std with no point for
/// single-point buckets, numpy-linear percentiles, count as float...).
pub fn aggregate(
    timestamps: &[Timestamp],
    values: &[f64],
    granularity: i64,
    method: BaseMethod,
) -> AggregatedTimeSerie {
    let _ = (timestamps, values, granularity, method);
    unimplemented!()
}

/// The differences between consecutive points, stamped at the later point
/// (the first point yields nothing): the input of `rate:` methods.
pub fn derive(timestamps: &[Timestamp], values: &[f64]) -> (Vec<Timestamp>, Vec<f64>) {
    let _ = (timestamps, values);
    unimplemented!()
}
