//! The wire layer: what goes over HTTP — upstream's JSON, request bodies and
//! parameters, rendering, pagination, validation messages, and errors. It
//! knows nothing of who asks (`access`) or what a query means (`language`).

pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod json;
pub(crate) mod pagination;
pub(crate) mod validate;
