//! The access layer: who asks (`auth`, `keystone`), what they may do
//! (`policy`), what they may see (`visibility`), and CORS.

pub mod auth;
pub(crate) mod cors;
pub(crate) mod creds;
pub mod keystone;
pub(crate) mod lookup;
pub mod policy;
pub(crate) mod targets;
pub(crate) mod visibility;
