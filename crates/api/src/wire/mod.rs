//! The wire layer: what goes over HTTP — upstream's JSON, request bodies and
//! parameters, rendering, pagination, validation messages, and errors. It
//! knows nothing of who asks (`access`) or what a query means (`language`).

pub(crate) mod accept;
pub(crate) mod attributes;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod json;
pub(crate) mod measures_body;
pub(crate) mod pagination;
pub(crate) mod params;
pub(crate) mod points;
pub(crate) mod render;
pub(crate) mod validate;
