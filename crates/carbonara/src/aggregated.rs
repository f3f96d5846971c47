//! Regular aggregated series at one granularity, and the splits they are stored in.

use crate::aggregate::{aggregate, decompose, derive, floor_sat};
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
    /// The split holding `ts`. Never panics: a non-positive granularity gives a
    /// split starting at `ts` itself.
    pub fn of(ts: Timestamp, granularity: i64) -> SplitKey {
        let span = granularity.saturating_mul(POINTS_PER_SPLIT);
        let start = if span > 0 { floor_sat(ts, span) } else { ts };
        SplitKey { start, granularity }
    }
    pub fn span(&self) -> i64 {
        self.granularity.saturating_mul(POINTS_PER_SPLIT)
    }
    pub fn next(&self) -> SplitKey {
        SplitKey {
            start: self.start.saturating_add(self.span()),
            granularity: self.granularity,
        }
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
        AggregatedTimeSerie {
            granularity,
            timestamps: Vec::new(),
            values: Vec::new(),
        }
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
        let n = self.timestamps.len().min(self.values.len());
        let mut out = Vec::new();
        let mut i = 0;
        while i < n {
            let key = SplitKey::of(self.timestamps[i], self.granularity);
            let end = key.next().start;
            let j = if end > key.start {
                i + 1 + self.timestamps[i + 1..n].partition_point(|&t| t < end)
            } else {
                n
            };
            out.push((
                key,
                AggregatedTimeSerie {
                    granularity: self.granularity,
                    timestamps: self.timestamps[i..j].to_vec(),
                    values: self.values[i..j].to_vec(),
                },
            ));
            i = j;
        }
        out
    }

    /// Merge `newer` into self; on equal timestamps the newer value wins.
    pub fn merge(&mut self, newer: &AggregatedTimeSerie) {
        let n = self.timestamps.len().min(self.values.len());
        self.timestamps.truncate(n);
        self.values.truncate(n);
        let m = newer.timestamps.len().min(newer.values.len());
        let (new_ts, new_vals) = (&newer.timestamps[..m], &newer.values[..m]);
        let Some(&first) = new_ts.first() else {
            return;
        };
        let from = self.timestamps.partition_point(|&t| t < first);
        if from == n {
            self.timestamps.extend_from_slice(new_ts);
            self.values.extend_from_slice(new_vals);
            return;
        }
        let tail_ts = self.timestamps.split_off(from);
        let tail_vals = self.values.split_off(from);
        self.timestamps.reserve(tail_ts.len() + m);
        self.values.reserve(tail_ts.len() + m);
        let (mut i, mut j) = (0, 0);
        while i < tail_ts.len() && j < m {
            match tail_ts[i].cmp(&new_ts[j]) {
                std::cmp::Ordering::Less => {
                    self.timestamps.push(tail_ts[i]);
                    self.values.push(tail_vals[i]);
                    i += 1;
                }
                std::cmp::Ordering::Equal => i += 1,
                std::cmp::Ordering::Greater => {
                    self.timestamps.push(new_ts[j]);
                    self.values.push(new_vals[j]);
                    j += 1;
                }
            }
        }
        self.timestamps.extend_from_slice(&tail_ts[i..]);
        self.values.extend_from_slice(&tail_vals[i..]);
        self.timestamps.extend_from_slice(&new_ts[j..]);
        self.values.extend_from_slice(&new_vals[j..]);
    }

    /// Keep only points strictly after `oldest` (timespan retention).
    pub fn truncate_before(&mut self, oldest: Timestamp) {
        let idx = self.timestamps.partition_point(|&t| t <= oldest);
        if idx > 0 {
            self.timestamps.drain(..idx);
            self.values.drain(..idx.min(self.values.len()));
        }
    }

    /// Points in `[floor(start, g), stop)`.
    pub fn slice(&self, start: Option<Timestamp>, stop: Option<Timestamp>) -> AggregatedTimeSerie {
        let n = self.timestamps.len().min(self.values.len());
        let ts = &self.timestamps[..n];
        let lo = match start {
            Some(s) => {
                let from = if self.granularity > 0 {
                    floor_sat(s, self.granularity)
                } else {
                    s
                };
                ts.partition_point(|&t| t < from)
            }
            None => 0,
        };
        let hi = match stop {
            Some(s) => ts.partition_point(|&t| t < s),
            None => n,
        };
        if hi <= lo {
            return AggregatedTimeSerie::empty(self.granularity);
        }
        AggregatedTimeSerie {
            granularity: self.granularity,
            timestamps: ts[lo..hi].to_vec(),
            values: self.values[lo..hi].to_vec(),
        }
    }

    /// Regroup at a coarser granularity with `method` (upstream's resample: mean of means...).
    /// For `rate:` methods the aggregated points are derived first, as upstream does.
    pub fn resample(&self, granularity: i64, method: Method) -> AggregatedTimeSerie {
        let n = self.timestamps.len().min(self.values.len());
        let (rate, base) = decompose(method);
        if rate {
            let (ts, vals) = derive(&self.timestamps[..n], &self.values[..n]);
            aggregate(&ts, &vals, granularity, base)
        } else {
            aggregate(&self.timestamps[..n], &self.values[..n], granularity, base)
        }
    }
}

/// Merge a freshly computed part of a series into the stored split (`None`: no
/// split stored yet), the new values winning. Timespan retention applies to
/// the new part only (points strictly after `oldest_point_to_keep`): as
/// upstream, the stored points stay until their whole split is deleted, and
/// reads hide them relative to the newest point they load.
pub fn merge_split(
    stored: Option<AggregatedTimeSerie>,
    mut new_part: AggregatedTimeSerie,
    oldest_point_to_keep: Option<Timestamp>,
) -> AggregatedTimeSerie {
    if let Some(oldest) = oldest_point_to_keep {
        new_part.truncate_before(oldest);
    }
    match stored {
        Some(mut serie) => {
            serie.merge(&new_part);
            serie
        }
        None => new_part,
    }
}

/// Whether a stored split can be deleted: as upstream, only splits whose key is
/// strictly before the split holding `oldest_point_to_keep` (the split holding
/// that point is kept even if all its points are out of retention).
pub fn split_is_expired(key: SplitKey, oldest_point_to_keep: Timestamp) -> bool {
    key.start < SplitKey::of(oldest_point_to_keep, key.granularity).start
}
