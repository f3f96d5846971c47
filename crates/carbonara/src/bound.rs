//! The raw buffer of one metric: the unaggregated points still inside the back window.
//!
//! Rules (upstream's): a batch is sorted by (timestamp, value); when the buffer
//! already holds points, batch points older than the first block timestamp
//! (computed before the merge) are dropped silently; within the batch the first
//! point of each timestamp wins (hence the smallest value); a batch point
//! replaces a stored point with the same timestamp. Truncation happens
//! separately, after aggregation.

use std::cmp::Ordering;

use crate::aggregate::{cmp_nan_last, floor_sat};
use crate::measure::Measure;
use crate::time::Timestamp;

/// Sorted, unique raw points kept so that late measures within the back window
/// can still update the aggregates. `block_size` is the policy's largest granularity;
/// `back_window` counts blocks (one more is kept when a `rate:` method needs the
/// previous point).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BoundTimeSerie {
    pub timestamps: Vec<Timestamp>,
    pub values: Vec<f64>,
    pub block_size: i64,
    pub back_window: u64,
}

#[inline]
fn cmp_point(a: &Measure, b: &Measure) -> Ordering {
    a.timestamp
        .cmp(&b.timestamp)
        .then_with(|| cmp_nan_last(&a.value, &b.value))
}

impl BoundTimeSerie {
    pub fn new(block_size: i64, back_window: u64) -> Self {
        BoundTimeSerie {
            timestamps: Vec::new(),
            values: Vec::new(),
            block_size,
            back_window,
        }
    }

    /// Points older than this are refused; `None` when empty (everything is accepted).
    /// A non-positive block size means "unbounded" and also gives `None`.
    pub fn first_block_timestamp(&self) -> Option<Timestamp> {
        let last = *self.timestamps.last()?;
        if self.block_size <= 0 {
            return None;
        }
        let blocks = i64::try_from(self.back_window).unwrap_or(i64::MAX);
        Some(
            floor_sat(last, self.block_size).saturating_sub(self.block_size.saturating_mul(blocks)),
        )
    }

    /// Merge a batch (any order, duplicates allowed) with upstream's rules: drop points
    /// older than [`Self::first_block_timestamp`] as computed before the merge; within the
    /// batch the smallest value wins on equal timestamps; a new value replaces a stored one.
    /// Returns the timestamp of the oldest accepted point, `None` if none was accepted.
    /// Does not truncate (aggregation needs the whole buffer first).
    pub fn merge(&mut self, batch: &mut [Measure]) -> Option<Timestamp> {
        // Repair a buffer whose columns disagree in length rather than panic later.
        let n = self.timestamps.len().min(self.values.len());
        self.timestamps.truncate(n);
        self.values.truncate(n);

        if !batch.is_sorted_by(|a, b| cmp_point(a, b) != Ordering::Greater) {
            batch.sort_unstable_by(cmp_point);
        }
        let skip = match self.first_block_timestamp() {
            Some(cutoff) => batch.partition_point(|p| p.timestamp < cutoff),
            None => 0,
        };
        let accepted = &batch[skip..];
        let oldest = accepted.first()?.timestamp;

        let append_from = self.timestamps.partition_point(|&t| t < oldest);
        if append_from == self.timestamps.len() {
            // Fast path: everything is newer than the buffer.
            self.timestamps.reserve(accepted.len());
            self.values.reserve(accepted.len());
            push_dedup(&mut self.timestamps, &mut self.values, accepted);
            return Some(oldest);
        }

        // Late points: merge the buffer's tail with the batch.
        let tail_ts = self.timestamps.split_off(append_from);
        let tail_vals = self.values.split_off(append_from);
        self.timestamps.reserve(tail_ts.len() + accepted.len());
        self.values.reserve(tail_ts.len() + accepted.len());
        let (mut i, mut j) = (0, 0);
        while i < tail_ts.len() && j < accepted.len() {
            let Measure {
                timestamp: bt,
                value: bv,
            } = accepted[j];
            match tail_ts[i].cmp(&bt) {
                Ordering::Less => {
                    self.timestamps.push(tail_ts[i]);
                    self.values.push(tail_vals[i]);
                    i += 1;
                }
                Ordering::Equal => {
                    // The batch value replaces the stored one.
                    i += 1;
                }
                Ordering::Greater => {
                    if self.timestamps.last() != Some(&bt) {
                        self.timestamps.push(bt);
                        self.values.push(bv);
                    }
                    j += 1;
                }
            }
        }
        self.timestamps.extend_from_slice(&tail_ts[i..]);
        self.values.extend_from_slice(&tail_vals[i..]);
        push_dedup(&mut self.timestamps, &mut self.values, &accepted[j..]);
        Some(oldest)
    }

    /// Drop points older than the first block timestamp (after aggregation).
    pub fn truncate(&mut self) {
        if let Some(cutoff) = self.first_block_timestamp() {
            let idx = self.timestamps.partition_point(|&t| t < cutoff);
            if idx > 0 {
                self.timestamps.drain(..idx);
                self.values.drain(..idx.min(self.values.len()));
            }
        }
    }
}

/// Append sorted points, keeping only the first point of each timestamp
/// (and skipping points whose timestamp equals the current last one).
fn push_dedup(ts: &mut Vec<Timestamp>, vals: &mut Vec<f64>, points: &[Measure]) {
    let mut last = ts.last().copied();
    for &Measure {
        timestamp: t,
        value: v,
    } in points
    {
        if last != Some(t) {
            ts.push(t);
            vals.push(v);
            last = Some(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::measures;

    #[test]
    fn late_merge_replaces_and_dedups() {
        let mut b = BoundTimeSerie::new(10, 10);
        assert_eq!(
            b.merge(&mut measures(&[(5, 1.0), (7, 2.0), (9, 3.0)])),
            Some(5)
        );
        assert_eq!(
            b.merge(&mut measures(&[(7, 9.0), (6, 4.0), (6, 3.0), (10, 1.0)])),
            Some(6)
        );
        assert_eq!(b.timestamps, vec![5, 6, 7, 9, 10]);
        assert_eq!(b.values, vec![1.0, 3.0, 9.0, 3.0, 1.0]);
    }
}
