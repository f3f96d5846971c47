//! The access layer: who asks (`auth`, `keystone`), what they may do
//! (`policy`), what they may see (`visibility`), and CORS.

pub mod auth;
pub(crate) mod cors;
pub mod keystone;
pub mod policy;
pub(crate) mod visibility;
