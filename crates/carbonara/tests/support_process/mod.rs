//! Shared helpers of the processing property tests: policies built with struct
//! literals, a naive reference aggregator, and an in-memory split store that
//! plays the engine's role (split, merge_split, delete expired splits).
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use carbonara::aggregated::{merge_split, split_is_expired};
use carbonara::method::BaseMethod;
use carbonara::process::{ComputedAggregate, MetricUpdate};
use carbonara::{
    AggregatedTimeSerie, ArchivePolicy, ArchivePolicyItem, Method, SplitKey, Timestamp,
};

pub const NS: i64 = 1_000_000_000;
/// 2015-03-06T00:00:00Z
pub const BASE: Timestamp = 1_425_600_000 * NS;

pub fn item(granularity: i64, timespan: Option<i64>) -> ArchivePolicyItem {
    ArchivePolicyItem {
        granularity,
        points: timespan
            .and_then(|t| t.checked_div(granularity))
            .map(|p| p as u64),
        timespan,
    }
}

pub fn policy(
    items: Vec<ArchivePolicyItem>,
    back_window: u64,
    methods: Vec<Method>,
) -> ArchivePolicy {
    ArchivePolicy {
        name: "test".to_string(),
        back_window,
        definition: items,
        aggregation_methods: methods,
    }
}

pub fn base_methods() -> Vec<BaseMethod> {
    vec![
        BaseMethod::Mean,
        BaseMethod::Sum,
        BaseMethod::Last,
        BaseMethod::Max,
        BaseMethod::Min,
        BaseMethod::Std,
        BaseMethod::Median,
        BaseMethod::First,
        BaseMethod::Count,
        BaseMethod::Pct(1),
        BaseMethod::Pct(10),
        BaseMethod::Pct(33),
        BaseMethod::Pct(50),
        BaseMethod::Pct(95),
        BaseMethod::Pct(99),
    ]
}

pub fn plain(b: BaseMethod) -> Method {
    match b {
        BaseMethod::Mean => Method::Mean,
        BaseMethod::Sum => Method::Sum,
        BaseMethod::Last => Method::Last,
        BaseMethod::Max => Method::Max,
        BaseMethod::Min => Method::Min,
        BaseMethod::Std => Method::Std,
        BaseMethod::Median => Method::Median,
        BaseMethod::First => Method::First,
        BaseMethod::Count => Method::Count,
        BaseMethod::Pct(q) => Method::Pct(q),
    }
}

/// Every plain method of [`base_methods`] and their `rate:` variants.
pub fn all_methods() -> Vec<Method> {
    let mut m: Vec<Method> = base_methods().into_iter().map(plain).collect();
    m.extend(base_methods().into_iter().map(Method::Rate));
    m
}

fn sorted(vals: &[f64]) -> Vec<f64> {
    let mut s = vals.to_vec();
    // NaN last, like numpy.
    s.sort_by(|a, b| match a.partial_cmp(b) {
        Some(o) => o,
        None => a.is_nan().cmp(&b.is_nan()),
    });
    s
}

/// The obvious, slow implementation of one bucket's reduction; `offset` is
/// the index of the bucket's first point in the array grouped (upstream's
/// percentile position counts from the start of that array).
pub fn reference_reduce(vals: &[f64], offset: usize, m: BaseMethod) -> Option<f64> {
    let n = vals.len();
    assert!(n > 0);
    let sum = vals.iter().fold(0.0, |a, &b| a + b);
    Some(match m {
        BaseMethod::Mean => sum / n as f64,
        BaseMethod::Sum => sum,
        BaseMethod::Count => n as f64,
        BaseMethod::First => vals[0],
        BaseMethod::Last => vals[n - 1],
        BaseMethod::Min => {
            let s = sorted(vals);
            s[0]
        }
        BaseMethod::Max => {
            let s = sorted(vals);
            s[n - 1]
        }
        BaseMethod::Std => {
            if n == 1 {
                return None;
            }
            let mean = sum / n as f64;
            let ss = vals.iter().fold(0.0, |a, &v| a + (v - mean) * (v - mean));
            (ss / (n - 1) as f64).sqrt()
        }
        BaseMethod::Median => {
            let s = sorted(vals);
            if n % 2 == 1 {
                (s[n / 2] + s[n / 2]) / 2.0
            } else {
                (s[n / 2 - 1] + s[n / 2]) / 2.0
            }
        }
        BaseMethod::Pct(q) => {
            let s = sorted(vals);
            let pos = offset as f64 + (n - 1) as f64 * (q as f64 / 100.0);
            let (f, c) = (pos.floor(), pos.ceil());
            let at = |p: f64| s[p as usize - offset];
            if f == c {
                at(f)
            } else {
                at(f) * (c - pos) + at(c) * (pos - f)
            }
        }
    })
}

/// Naive grouping + reduction (points sorted by timestamp, unique).
pub fn reference_aggregate(
    points: &[(Timestamp, f64)],
    g: i64,
    m: BaseMethod,
) -> Vec<(Timestamp, f64)> {
    let mut groups: BTreeMap<Timestamp, Vec<f64>> = BTreeMap::new();
    for &(t, v) in points {
        groups.entry(t.div_euclid(g) * g).or_default().push(v);
    }
    let mut offset = 0;
    groups
        .into_iter()
        .filter_map(|(k, vals)| {
            let reduced = reference_reduce(&vals, offset, m).map(|v| (k, v));
            offset += vals.len();
            reduced
        })
        .collect()
}

pub fn reference_derive(points: &[(Timestamp, f64)]) -> Vec<(Timestamp, f64)> {
    points
        .windows(2)
        .map(|w| (w[1].0, w[1].1 - w[0].1))
        .collect()
}

/// Reference result of a method over a whole raw series.
pub fn reference_method(points: &[(Timestamp, f64)], g: i64, m: Method) -> Vec<(Timestamp, f64)> {
    match m {
        Method::Rate(b) => reference_aggregate(&reference_derive(points), g, b),
        Method::Mean => reference_aggregate(points, g, BaseMethod::Mean),
        Method::Sum => reference_aggregate(points, g, BaseMethod::Sum),
        Method::Last => reference_aggregate(points, g, BaseMethod::Last),
        Method::Max => reference_aggregate(points, g, BaseMethod::Max),
        Method::Min => reference_aggregate(points, g, BaseMethod::Min),
        Method::Std => reference_aggregate(points, g, BaseMethod::Std),
        Method::Median => reference_aggregate(points, g, BaseMethod::Median),
        Method::First => reference_aggregate(points, g, BaseMethod::First),
        Method::Count => reference_aggregate(points, g, BaseMethod::Count),
        Method::Pct(q) => reference_aggregate(points, g, BaseMethod::Pct(q)),
    }
}

pub fn pairs(s: &AggregatedTimeSerie) -> Vec<(Timestamp, f64)> {
    s.timestamps
        .iter()
        .copied()
        .zip(s.values.iter().copied())
        .collect()
}

/// Exact equality, NaN equal to NaN (and, as in upstream whose sort order
/// between -0.0 and 0.0 is unspecified, -0.0 equal to 0.0).
pub fn same_bits(a: &[(Timestamp, f64)], b: &[(Timestamp, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && (x.1 == y.1 || (x.1.is_nan() && y.1.is_nan())))
}

/// What the engine keeps per (method, granularity): splits by key.
#[derive(Default, Debug)]
pub struct Store {
    pub splits: BTreeMap<(Method, i64), BTreeMap<SplitKey, AggregatedTimeSerie>>,
}

impl Store {
    pub fn apply(&mut self, update: &MetricUpdate) {
        for agg in &update.aggregates {
            self.apply_one(agg, update.expires_splits(agg.granularity));
        }
    }

    pub fn apply_one(&mut self, agg: &ComputedAggregate, expire: bool) {
        let oldest = agg.oldest_point_to_keep();
        let splits = self
            .splits
            .entry((agg.method, agg.granularity))
            .or_default();
        if let Some(o) = oldest.filter(|_| expire) {
            splits.retain(|k, _| !split_is_expired(*k, o));
        }
        for (key, part) in agg.serie.split() {
            if oldest.is_some_and(|o| split_is_expired(key, o)) {
                continue;
            }
            let stored = splits.remove(&key);
            let merged = merge_split(stored, part, oldest);
            splits.insert(key, merged);
        }
    }

    /// Concatenated points of one (method, granularity).
    pub fn serie(&self, m: Method, g: i64) -> Vec<(Timestamp, f64)> {
        self.splits
            .get(&(m, g))
            .map(|s| s.values().flat_map(pairs).collect())
            .unwrap_or_default()
    }
}
