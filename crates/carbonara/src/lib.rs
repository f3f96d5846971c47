//! Carbonara: the pure time-series engine of gnocchi-rs.
//!
//! Everything that turns raw measures into pre-aggregated series lives here,
//! with no I/O, no async and no knowledge of HTTP, SQL or files:
//!
//! - [`time`]: nanosecond timestamps, upstream's timestamp and timespan
//!   input formats, and Python-compatible renderings;
//! - [`method`]: the aggregation methods (`mean`, `95pct`, `rate:max`, ...);
//! - [`policy`]: archive policy definitions and their validation;
//! - [`bound`]: the per-metric raw buffer and its back-window rules;
//! - [`aggregate`]: grouping raw points into granularity buckets;
//! - [`aggregated`]: regular aggregated series, split keys, truncation, resampling;
//! - [`codec`]: the compact, lossless on-disk format of splits and raw buffers;
//! - [`measure`]: one incoming measure (timestamp, value);
//! - [`process`]: applying one batch of measures to one metric;
//! - [`calendar`]: calendar groupings (`Y H Q M W`) for resampling;
//! - [`ops`]: query-time operations across series (`/v1/aggregates`).
//!
//! Invariants: no function here performs I/O or blocks; data is columnar
//! (timestamps and values in separate vectors) and nothing allocates per point.

pub mod aggregate;
pub mod aggregated;
pub mod bound;
pub mod calendar;
pub mod codec;
pub mod measure;
pub mod method;
pub mod ops;
pub mod policy;
pub mod process;
pub mod time;

pub use aggregated::{AggregatedTimeSerie, POINTS_PER_SPLIT, SplitKey};
pub use bound::BoundTimeSerie;
pub use measure::Measure;
pub use method::Method;
pub use policy::{ArchivePolicy, ArchivePolicyItem, PolicyError};
pub use time::{NS_PER_SEC, Timestamp};
