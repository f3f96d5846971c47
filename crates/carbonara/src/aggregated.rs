//! Regular aggregated series at one granularity, and the splits they are stored in.
//!
//! INTERFACE (implementation to be filled in): keep these signatures.

use crate::method::Method;
use crate::time::Timestamp;

/// Points per stored split, as upstream: a split of a 60 s series covers 2.5 days.
pub const POINTS_PER_SPLIT: i64 = 3600;

/// Identifies one split: the start of its span and the series granularity (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SplitKey {
    pub start: Timestamp,
    pub granularity: i64,
}

impl SplitKey {
    /// The split holding `ts`.
    pub fn of(ts: Timestamp, granularity: i64) -> SplitKey {
        let span = granularity * POINTS_PER_SPLIT;
        SplitKey { start: crate::time::floor(ts, span), granularity }
    }
    pub fn span(&self) -> i64 {
        self.granularity * POINTS_PER_SPLIT
    }
    pub fn next(&self) -> SplitKey {
        SplitKey { start: self.start + self.span(), granularity: self.granularity }
    }
}

/// Timestamps are bucket starts, sorted and unique; `values[i]` belongs to `timestamps[i]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AggregatedTimeSerie {
    pub granularity: i64,
    pub timestamps: Vec<Timestamp>,
    pub values: Vec<f64>,
}

impl AggregatedTimeSerie {
    pub fn empty(granularity: i64) -> Self {
        AggregatedTimeSerie { granularity, timestamps: Vec::new(), values: Vec::new() }
    }
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }
    pub fn last(&self) -> Option<Timestamp> {
        self.timestamps.last().copied()
    }

    /// Cut into splits, in key order.
    pub fn split(&self) -> Vec<(SplitKey, AggregatedTimeSerie)> {
        unimplemented!()
    }

    /// Merge `newer` into self; on equal timestamps the newer value wins.
    pub fn merge(&mut self, newer: &AggregatedTimeSerie) {
        let _ = newer;
        unimplemented!()
    }

    /// Keep only points strictly after `oldest` (timespan retention).
    pub fn truncate_before(&mut self, oldest: Timestamp) {
        let _ = oldest;
        unimplemented!()
    }

    /// Points in `[floor(start, g), stop)`.
    pub fn slice(&self, start: Option<Timestamp>, stop: Option<Timestamp>) -> AggregatedTimeSerie {
        let _ = (start, stop);
        unimplemented!()
    }

    /// Regroup at a coarser granularity with `method` (upstream's resample: mean of means...).
    pub fn resample(&self, granularity: i64, method: Method) -> AggregatedTimeSerie {
        let _ = (granularity, method);
        unimplemented!()
    }
}
