//! The raw buffer of one metric: the unaggregated points still inside the back window.
//!
//! INTERFACE (implementation to be filled in): keep these signatures.

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

impl BoundTimeSerie {
    pub fn new(block_size: i64, back_window: u64) -> Self {
        BoundTimeSerie { timestamps: Vec::new(), values: Vec::new(), block_size, back_window }
    }

    /// Points older than this are refused; `None` when empty (everything is accepted).
    pub fn first_block_timestamp(&self) -> Option<Timestamp> {
        unimplemented!()
    }

    /// Merge a batch (any order, duplicates allowed) with upstream's rules: drop points
    /// older than [`Self::first_block_timestamp`] as computed before the merge; within the
    /// batch the smallest value wins on equal timestamps; a new value replaces a stored one.
    /// Returns the timestamp of the oldest accepted point, `None` if none was accepted.
    /// Does not truncate (aggregation needs the whole buffer first).
    pub fn merge(&mut self, batch: &mut [(Timestamp, f64)]) -> Option<Timestamp> {
        let _ = batch;
        unimplemented!()
    }

    /// Drop points older than the first block timestamp (after aggregation).
    pub fn truncate(&mut self) {
        unimplemented!()
    }
}
