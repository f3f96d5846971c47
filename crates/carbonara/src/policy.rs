//! Archive policies: how long to keep what, at which granularities, with which methods.
//!
//! INTERFACE (implementation to be filled in): keep these signatures.

use crate::method::Method;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Messages are upstream's, returned to clients as 400 reasons.
    #[error("{0}")]
    Invalid(String),
}

/// One line of a definition. Granularity and timespan in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePolicyItem {
    pub granularity: i64,
    /// `None`: unlimited retention.
    pub points: Option<u64>,
    /// `None`: unlimited retention; else always `granularity * points`.
    pub timespan: Option<i64>,
}

impl ArchivePolicyItem {
    /// Any two of the three give the third (upstream's rules and messages, SPEC §1.3).
    pub fn new(
        granularity: Option<i64>,
        points: Option<u64>,
        timespan: Option<i64>,
    ) -> Result<Self, PolicyError> {
        let _ = (granularity, points, timespan);
        unimplemented!()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArchivePolicy {
    pub name: String,
    pub back_window: u64,
    pub definition: Vec<ArchivePolicyItem>,
    /// Resolved, sorted, without duplicates.
    pub aggregation_methods: Vec<Method>,
}

impl ArchivePolicy {
    /// Validates the definition (non-empty, no duplicate granularity).
    pub fn new(
        name: String,
        back_window: u64,
        definition: Vec<ArchivePolicyItem>,
        aggregation_methods: Vec<Method>,
    ) -> Result<Self, PolicyError> {
        let _ = (name, back_window, definition, aggregation_methods);
        unimplemented!()
    }

    /// The largest granularity: the block the raw buffer and back window count in.
    pub fn max_block_size(&self) -> i64 {
        self.definition.iter().map(|d| d.granularity).max().unwrap_or(0)
    }

    /// Resolve a requested method list against the defaults: `*`, `+m`, `-m` as upstream.
    /// Errors name the first unknown method (upstream answers 400 Invalid input).
    pub fn resolve_aggregation_methods(
        requested: Option<&[String]>,
        defaults: &[Method],
    ) -> Result<Vec<Method>, PolicyError> {
        let _ = (requested, defaults);
        unimplemented!()
    }
}
