//! Grouping raw points into granularity buckets and reducing each bucket.
//!
//! Per-bucket semantics follow upstream's numpy-based carbonara, including
//! its NaN behaviour:
//!
//! - `sum`/`mean`: left-to-right summation, NaN propagates; mean = sum / count;
//! - `min`: the smallest non-NaN value (NaN only if every value is NaN);
//! - `max`: NaN as soon as the bucket holds a NaN (NaN sorts last);
//! - `median`/`Npct`: values sorted with NaN last, then
//!   `(a + b) / 2` for the median (also for odd counts, where `a == b`), and
//!   `v[f]·(c − pos) + v[c]·(pos − f)` with `pos = lo + (n − 1)·(N / 100)` for
//!   percentiles (`v[pos]` when `pos` is integral), where `lo` is the index of
//!   the bucket's first point in the whole array being grouped: upstream
//!   computes every bucket's position in that array, and the rounding of
//!   `pos` (hence the last digits of the result) depends on `lo`;
//! - `std`: two-pass sample standard deviation (ddof = 1); a bucket with a
//!   single point yields no point at all;
//! - `count`: number of points as a float; `first`/`last`: by timestamp.
//!
//! Nothing here allocates per point: bucket boundaries are found by scanning
//! the sorted timestamps (no division per point), and order statistics use one
//! scratch buffer reused across buckets.

use std::cmp::Ordering;

use crate::aggregated::AggregatedTimeSerie;
use crate::method::{BaseMethod, Method};
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
    let mut buckets = Vec::new();
    bucket_bounds(timestamps, granularity, &mut buckets);
    let mut out = AggregatedTimeSerie::empty(granularity);
    let mut scratch = Vec::new();
    reduce_buckets(&buckets, values, method, &mut scratch, &mut out);
    out
}

/// The differences between consecutive points, stamped at the later point
/// (the first point yields nothing): the input of `rate:` methods.
pub fn derive(timestamps: &[Timestamp], values: &[f64]) -> (Vec<Timestamp>, Vec<f64>) {
    let n = timestamps.len().min(values.len());
    if n < 2 {
        return (Vec::new(), Vec::new());
    }
    let ts = timestamps[1..n].to_vec();
    let vals = values[..n].windows(2).map(|w| w[1] - w[0]).collect();
    (ts, vals)
}

/// Floor that never overflows (saturates at `i64::MIN`); `granularity` must be > 0.
#[inline]
pub(crate) fn floor_sat(ts: Timestamp, granularity: i64) -> Timestamp {
    ts.saturating_sub(ts.rem_euclid(granularity))
}

/// Split a method into (is it `rate:`, the per-bucket reduction).
pub(crate) fn decompose(method: Method) -> (bool, BaseMethod) {
    let base = match method {
        Method::Mean => BaseMethod::Mean,
        Method::Sum => BaseMethod::Sum,
        Method::Last => BaseMethod::Last,
        Method::Max => BaseMethod::Max,
        Method::Min => BaseMethod::Min,
        Method::Std => BaseMethod::Std,
        Method::Median => BaseMethod::Median,
        Method::First => BaseMethod::First,
        Method::Count => BaseMethod::Count,
        Method::Pct(q) => BaseMethod::Pct(q),
        Method::Rate(b) => return (true, b),
    };
    (false, base)
}

/// One bucket: its start and the index range `[lo, hi)` of its points.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub(crate) start: Timestamp,
    pub(crate) lo: usize,
    pub(crate) hi: usize,
}

/// Find the buckets of sorted `timestamps` (cleared and refilled into `out`).
/// A non-positive granularity yields no bucket. Unsorted input never panics
/// (each bucket still holds at least one point), it just groups runs.
pub(crate) fn bucket_bounds(timestamps: &[Timestamp], granularity: i64, out: &mut Vec<Bucket>) {
    out.clear();
    if granularity <= 0 {
        return;
    }
    let n = timestamps.len();
    let mut i = 0;
    while i < n {
        let start = floor_sat(timestamps[i], granularity);
        let end = start.saturating_add(granularity);
        let mut j = i + 1;
        // Short buckets are the norm: scan linearly, but gallop on long runs.
        while j < n && timestamps[j] < end {
            j += 1;
            if j - i == 16 {
                j = i + 16 + timestamps[i + 16..].partition_point(|&t| t < end);
                break;
            }
        }
        out.push(Bucket {
            start,
            lo: i,
            hi: j,
        });
        i = j;
    }
}

/// Total order on floats with NaN last (numpy's sort order).
#[inline]
pub(crate) fn cmp_nan_last(a: &f64, b: &f64) -> Ordering {
    match a.partial_cmp(b) {
        Some(o) => o,
        None => a.is_nan().cmp(&b.is_nan()),
    }
}

/// Reduce every bucket with `method`, appending to `out` (which is not cleared).
/// `values` must cover every bucket range; out-of-range buckets are skipped.
pub(crate) fn reduce_buckets(
    buckets: &[Bucket],
    values: &[f64],
    method: BaseMethod,
    scratch: &mut Vec<f64>,
    out: &mut AggregatedTimeSerie,
) {
    out.timestamps.reserve(buckets.len());
    out.values.reserve(buckets.len());
    for b in buckets {
        let Some(vals) = values.get(b.lo..b.hi) else {
            continue;
        };
        if let Some(v) = reduce(vals, b.lo, method, scratch) {
            out.timestamps.push(b.start);
            out.values.push(v);
        }
    }
}

#[inline]
fn seq_sum(vals: &[f64]) -> f64 {
    let mut s = 0.0;
    for &v in vals {
        s += v;
    }
    s
}

/// Reduce the values of one bucket; `None` when the method yields no point.
/// `offset` is the index of the bucket's first value in the array grouped.
#[inline]
fn reduce(vals: &[f64], offset: usize, method: BaseMethod, scratch: &mut Vec<f64>) -> Option<f64> {
    let n = vals.len();
    if n == 0 {
        return None;
    }
    Some(match method {
        BaseMethod::Sum => seq_sum(vals),
        BaseMethod::Mean => seq_sum(vals) / n as f64,
        BaseMethod::Count => n as f64,
        BaseMethod::First => vals[0],
        BaseMethod::Last => vals[n - 1],
        BaseMethod::Min => {
            let mut m = f64::NAN;
            for &v in vals {
                // `v < m` is false while m is NaN: take the first non-NaN then the smallest.
                if v < m || (m.is_nan() && !v.is_nan()) {
                    m = v;
                }
            }
            m
        }
        BaseMethod::Max => {
            let mut m = vals[0];
            for &v in vals {
                if v.is_nan() {
                    return Some(v);
                }
                if v > m {
                    m = v;
                }
            }
            m
        }
        BaseMethod::Std => {
            if n < 2 {
                return None;
            }
            let mean = seq_sum(vals) / n as f64;
            let mut ss = 0.0;
            for &v in vals {
                let d = v - mean;
                ss += d * d;
            }
            (ss / (n - 1) as f64).sqrt()
        }
        BaseMethod::Median => {
            if n == 1 {
                return Some((vals[0] + vals[0]) / 2.0);
            }
            let (a, b) = if n % 2 == 1 {
                let x = select(vals, n / 2, scratch);
                (x, x)
            } else {
                select_pair(vals, n / 2 - 1, scratch)
            };
            (a + b) / 2.0
        }
        BaseMethod::Pct(q) => {
            let lo = offset as f64;
            let pos = (lo + (n - 1) as f64 * (f64::from(q) / 100.0)).clamp(lo, lo + (n - 1) as f64);
            let f = pos.floor();
            let c = pos.ceil();
            // pos is within [lo, lo + n - 1]: these casts cannot truncate.
            let fi = ((f - lo) as usize).min(n - 1);
            if f == c || fi + 1 >= n {
                select(vals, fi, scratch)
            } else {
                let (vf, vc) = select_pair(vals, fi, scratch);
                vf * (c - pos) + vc * (pos - f)
            }
        }
    })
}

/// The `k`-th smallest value (NaN last), `k < vals.len()`.
fn select(vals: &[f64], k: usize, scratch: &mut Vec<f64>) -> f64 {
    match vals.len() {
        1 => vals[0],
        2 => {
            let (a, b) = ordered2(vals[0], vals[1]);
            if k == 0 { a } else { b }
        }
        _ => {
            scratch.clear();
            scratch.extend_from_slice(vals);
            let (_, x, _) = scratch.select_nth_unstable_by(k, cmp_nan_last);
            *x
        }
    }
}

/// The `k`-th and `k+1`-th smallest values (NaN last), `k + 1 < vals.len()`.
fn select_pair(vals: &[f64], k: usize, scratch: &mut Vec<f64>) -> (f64, f64) {
    if vals.len() == 2 {
        return ordered2(vals[0], vals[1]);
    }
    scratch.clear();
    scratch.extend_from_slice(vals);
    if scratch.len() <= 24 {
        scratch.sort_unstable_by(cmp_nan_last);
        return (scratch[k], scratch[k + 1]);
    }
    let (_, x, right) = scratch.select_nth_unstable_by(k, cmp_nan_last);
    let x = *x;
    let mut next = right[0];
    for &v in &right[1..] {
        if cmp_nan_last(&v, &next) == Ordering::Less {
            next = v;
        }
    }
    (x, next)
}

#[inline]
fn ordered2(a: f64, b: f64) -> (f64, f64) {
    if cmp_nan_last(&b, &a) == Ordering::Less {
        (b, a)
    } else {
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_pair_on_large_input() {
        let vals: Vec<f64> = (0..100).rev().map(f64::from).collect();
        let mut s = Vec::new();
        assert_eq!(select_pair(&vals, 49, &mut s), (49.0, 50.0));
        assert_eq!(select(&vals, 0, &mut s), 0.0);
    }

    #[test]
    fn nan_semantics() {
        let ts = [0, 1, 2];
        let v = [1.0, f64::NAN, -1.0];
        assert_eq!(aggregate(&ts, &v, 10, BaseMethod::Min).values, vec![-1.0]);
        assert!(aggregate(&ts, &v, 10, BaseMethod::Max).values[0].is_nan());
        // sorted: -1, 1, NaN -> median 1
        assert_eq!(aggregate(&ts, &v, 10, BaseMethod::Median).values, vec![1.0]);
        assert!(aggregate(&ts, &v, 10, BaseMethod::Sum).values[0].is_nan());
        assert_eq!(aggregate(&ts, &v, 10, BaseMethod::Count).values, vec![3.0]);
    }

    #[test]
    fn galloping_buckets() {
        let ts: Vec<i64> = (0..100).collect();
        let mut b = Vec::new();
        bucket_bounds(&ts, 40, &mut b);
        let r: Vec<_> = b.iter().map(|b| (b.start, b.lo, b.hi)).collect();
        assert_eq!(r, vec![(0, 0, 40), (40, 40, 80), (80, 80, 100)]);
    }
}
