//! Ceph (RADOS) drivers, through librados: [`CephAggregates`] (`[storage]
//! driver = ceph`) and [`CephIncoming`] (`[incoming] driver = ceph`), laying
//! data out exactly as upstream Gnocchi 4.7.1 does, so that a deployment's
//! pool can be read and written by either.
//!
//! # Objects (all in the pool `ceph_pool`)
//!
//! - `gnocchi-config`: JSON `{"sacks": N}`, the number of sacks.
//! - `incoming<N>-<s>`: sack `s`; each pending batch of measures of a metric
//!   is one **omap entry** `measure_<metric uuid>_<random uuid>_<YYYYmmdd_HH:MM:SS>`
//!   whose value is numpy's `[('timestamps', '<datetime64[ns]'), ('values',
//!   '<d')]` array: 16-byte records, little-endian i64 nanoseconds then f64.
//! - `gnocchi_<metric uuid>_none_v3`: the metric's raw (unaggregated) buffer
//!   as its data, and, as its omap, the names of its splits (values empty).
//! - `gnocchi_<metric uuid>_<split start>_<method>_<granularity>_v3`: a split,
//!   start and granularity in seconds as Python prints a float
//!   (`gnocchi_…_1425600000.0_mean_60.0_v3`).
//!
//! # Options
//!
//! [`CephOptions`] holds upstream's `ceph_pool`, `ceph_username`,
//! `ceph_secret`, `ceph_keyring`, `ceph_timeout` and `ceph_conffile`; they are
//! applied as upstream applies them (`keyring`, `key`, and the three librados
//! timeouts set from `ceph_timeout`).
//!
//! # The parts
//!
//! `rados_ffi` (the only `unsafe` code of the project: librados' C calls,
//! wrapped once), `names` (object and omap key names), `aggregates`,
//! `incoming`. Every librados call blocks, so each runs on tokio's blocking
//! pool, and a batch is issued as asynchronous librados operations waited for
//! together.
//!
//! The drivers link librados, so they are built only with the `ceph` cargo
//! feature; [`CephOptions`] always is (gnocchi.conf is parsed the same way,
//! and a build without the feature says so when the driver is chosen).

#[cfg(feature = "ceph")]
mod aggregates;
#[cfg(feature = "ceph")]
mod incoming;
// Always built: the Swift driver names splits the same way.
#[cfg_attr(not(feature = "ceph"), allow(dead_code))]
pub(crate) mod names;
#[cfg(feature = "ceph")]
mod rados_ffi;

#[cfg(feature = "ceph")]
pub use aggregates::CephAggregates;
#[cfg(feature = "ceph")]
pub use incoming::CephIncoming;

#[cfg(feature = "ceph")]
use crate::{Result, StorageError};
#[cfg(feature = "ceph")]
use rados_ffi::{Cluster, Pool, RadosError};
#[cfg(feature = "ceph")]
use std::sync::Arc;

/// Whether this build has the Ceph drivers (the `ceph` cargo feature).
pub const AVAILABLE: bool = cfg!(feature = "ceph");

/// Upstream's `ceph_*` options (`[storage]`, and `[incoming]` defaulting to them).
#[derive(Clone)]
pub struct CephOptions {
    /// `ceph_pool` (default `gnocchi`).
    pub pool: String,
    /// `ceph_username`: without the `client.` prefix (librados' default, `admin`, if unset).
    pub username: Option<String>,
    /// `ceph_secret`: the cephx key itself.
    pub secret: Option<String>,
    /// `ceph_keyring`: path of a keyring file.
    pub keyring: Option<String>,
    /// `ceph_timeout` (default `30`, seconds): librados' OSD and monitor
    /// operation timeouts and its mount timeout.
    pub timeout: Option<String>,
    /// `ceph_conffile` (default `/etc/ceph/ceph.conf`).
    pub conffile: String,
}

impl Default for CephOptions {
    fn default() -> Self {
        CephOptions {
            pool: "gnocchi".into(),
            username: None,
            secret: None,
            keyring: None,
            timeout: Some("30".into()),
            conffile: "/etc/ceph/ceph.conf".into(),
        }
    }
}

impl std::fmt::Debug for CephOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CephOptions")
            .field("pool", &self.pool)
            .field("username", &self.username)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("keyring", &self.keyring)
            .field("timeout", &self.timeout)
            .field("conffile", &self.conffile)
            .finish()
    }
}

#[cfg(feature = "ceph")]
pub(crate) fn ceph_error(what: impl Into<String>, e: RadosError) -> StorageError {
    StorageError::Ceph {
        what: what.into(),
        source: e.into_io(),
    }
}

#[cfg(feature = "ceph")]
/// Run a blocking librados call on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(StorageError::TaskFailed)?
}

/// Connect and open the pool, in RADOS namespace `namespace` if not empty
/// (upstream uses the default namespace; tests use one each). Blocking: run
/// it through [`blocking`].
#[cfg(feature = "ceph")]
fn open_pool(options: &CephOptions, namespace: &str) -> Result<Pool> {
    let mut conf: Vec<(&str, String)> = Vec::new();
    if let Some(k) = options.keyring.as_ref().filter(|k| !k.is_empty()) {
        conf.push(("keyring", k.clone()));
    }
    if let Some(k) = options.secret.as_ref().filter(|k| !k.is_empty()) {
        conf.push(("key", k.clone()));
    }
    if let Some(t) = options.timeout.as_ref().filter(|t| !t.is_empty()) {
        for name in [
            "rados_osd_op_timeout",
            "rados_mon_op_timeout",
            "client_mount_timeout",
        ] {
            conf.push((name, t.clone()));
        }
    }
    let cluster = Cluster::connect(
        options.username.as_deref().filter(|u| !u.is_empty()),
        &options.conffile,
        &conf,
    )
    .map_err(|e| {
        ceph_error(
            format!(
                "connecting with {} (check ceph_conffile, ceph_username, ceph_keyring/ceph_secret)",
                options.conffile
            ),
            e,
        )
    })?;
    let mut pool = Arc::new(cluster)
        .pool(&options.pool)
        .map_err(|e| ceph_error(format!("opening pool {}", options.pool), e))?;
    if !namespace.is_empty() {
        pool.set_namespace(namespace)
            .map_err(|e| ceph_error("setting the namespace", e))?;
    }
    Ok(pool)
}
