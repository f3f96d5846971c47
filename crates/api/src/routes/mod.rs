//! The route layer: one module per endpoint family, each with its request
//! types, validation and handlers. A route module never imports another: what
//! two families share lives in a layer below (`language`, `access`, `wire`).

pub(crate) mod aggregates;
pub(crate) mod aggregation;
pub(crate) mod archive_policy;
pub(crate) mod archive_policy_rule;
pub(crate) mod batch;
pub(crate) mod influxdb;
pub(crate) mod measures;
pub(crate) mod metric;
pub(crate) mod prometheus;
pub(crate) mod resource;
pub(crate) mod resource_type;
pub(crate) mod root;
pub(crate) mod search_metric;
