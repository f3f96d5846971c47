//! The language layer: the small languages requests are written in — the
//! resource query (`query`), the aggregates operations (`aggregates_parse`),
//! InfluxDB line protocol, Prometheus remote write, and shell-style globs.

pub(crate) mod aggregates_eval;
pub(crate) mod aggregates_output;
pub(crate) mod aggregates_parse;
pub(crate) mod line_protocol;
pub(crate) mod query;
pub(crate) mod remote_write;
