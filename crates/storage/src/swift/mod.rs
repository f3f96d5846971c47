//! OpenStack Swift drivers: [`SwiftAggregates`] (`[storage] driver = swift`)
//! and [`SwiftIncoming`] (`[incoming] driver = swift`), laying data out as
//! upstream Gnocchi 4.7 does, so that a deployment's account can be read and
//! written by either.
//!
//! # Containers and objects
//!
//! - `<swift_container_prefix>.<metric uuid>`: one container per metric, with
//!   `none_v3` (the raw, unaggregated buffer) and one object per split,
//!   `<start>_<method>_<granularity>_v3`, start and granularity in seconds as
//!   Python prints a float (`1425600000.0_mean_60.0_v3`), as the Ceph driver
//!   names them after the `gnocchi_<metric>_` prefix.
//! - `gnocchi-config` (container) / `gnocchi-config` (object): `{"sacks": N}`.
//! - `incoming<N>-<s>`: sack `s` of `N`, one object per request per metric,
//!   `<metric uuid>/<uuid>_<YYYYmmdd_HH:MM:SS>`, holding the measures as
//!   upstream's 16-byte records ([`crate::records`]).
//!
//! With `swift_container_prefix_all = true` (upstream's option, for several
//! deployments sharing one account) the config and sack containers are named
//! `<prefix>.gnocchi-config` and `<prefix>.incoming<N>-<s>` too.
//!
//! # Why a client of our own
//!
//! The Swift API is plain HTTP, but a long-running daemon must log in
//! (tempauth v1 or Keystone v3), notice when its token expires (a 401) and
//! log in again, and delete many objects per request with the `bulk`
//! middleware. No maintained crate does all three (opendal's Swift service
//! takes a ready token and deletes one object per request), so `auth` logs in
//! and `client` sends the requests with `reqwest`, on a pool of kept-alive
//! connections, [`PARALLEL`] at a time per call.
//!
//! # The parts
//!
//! `auth` (the three ways to get a token and storage URL), `client` (requests,
//! renewal on 401, listings, bulk delete, the request counter), `names`,
//! `aggregates`, `incoming` (and `wake`, how sacks written by other processes
//! are found).

mod aggregates;
mod auth;
mod client;
mod incoming;
mod names;
mod wake;

pub use aggregates::SwiftAggregates;
pub use client::requests_sent;
pub use incoming::SwiftIncoming;

/// Log in as the drivers do and return the storage URL they would use (the
/// login's, or `swift_url`): for checking a configuration.
pub async fn storage_url(options: &SwiftOptions) -> crate::Result<String> {
    client::SwiftClient::connect(options.clone())
        .await?
        .storage_url()
        .await
}

/// Requests one call runs at once (and connections kept per host).
pub const PARALLEL: usize = 32;

/// Upstream's 18 `swift_*` options (`[storage]`, and `[incoming]` where each
/// defaults to the `[storage]` one).
#[derive(Clone)]
pub struct SwiftOptions {
    /// `swift_auth_version` (default `1`): `1` (tempauth and compatible) or
    /// `3` (Keystone v3, password). `2` (Keystone v2) is refused: Keystone
    /// removed that API in 2017.
    pub auth_version: String,
    /// `swift_auth_insecure` (default false): do not verify TLS certificates.
    pub auth_insecure: bool,
    /// `swift_url`: the storage URL (`https://host/v1/AUTH_x`), instead of the
    /// one the login returns. Older releases named it `swift_preauthurl`,
    /// which is read too.
    pub url: Option<String>,
    /// `swift_authurl` (default `http://localhost:8080/auth/v1.0`).
    pub authurl: String,
    /// `swift_preauthtoken`: a token used as is until Swift refuses it.
    pub preauthtoken: Option<String>,
    /// `swift_cacert`: a PEM file of CA certificates to trust.
    pub cacert: Option<String>,
    /// `swift_region`: the catalog region (Keystone).
    pub region: Option<String>,
    /// `swift_user` (default `admin:admin`).
    pub user: String,
    /// `swift_user_domain_name` (default `Default`).
    pub user_domain_name: String,
    /// `swift_key` (default `admin`).
    pub key: String,
    /// `swift_project_name` (Keystone).
    pub project_name: Option<String>,
    /// `swift_project_domain_name` (default `Default`).
    pub project_domain_name: String,
    /// `swift_container_prefix` (default `gnocchi`).
    pub container_prefix: String,
    /// `swift_container_prefix_all` (default false): prefix the config and
    /// sack containers too.
    pub container_prefix_all: bool,
    /// `swift_storage_policy`: `X-Storage-Policy` of the containers created.
    pub storage_policy: Option<String>,
    /// `swift_endpoint_type` (default `publicURL`; `internalURL`, `adminURL`).
    pub endpoint_type: String,
    /// `swift_service_type` (default `object-store`).
    pub service_type: String,
    /// `swift_timeout` (default 300 seconds; 0: none).
    pub timeout: u64,
}

impl Default for SwiftOptions {
    fn default() -> Self {
        SwiftOptions {
            auth_version: "1".into(),
            auth_insecure: false,
            url: None,
            authurl: "http://localhost:8080/auth/v1.0".into(),
            preauthtoken: None,
            cacert: None,
            region: None,
            user: "admin:admin".into(),
            user_domain_name: "Default".into(),
            key: "admin".into(),
            project_name: None,
            project_domain_name: "Default".into(),
            container_prefix: "gnocchi".into(),
            container_prefix_all: false,
            storage_policy: None,
            endpoint_type: "publicURL".into(),
            service_type: "object-store".into(),
            timeout: 300,
        }
    }
}

impl std::fmt::Debug for SwiftOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("SwiftOptions")
            .field("auth_version", &self.auth_version)
            .field("auth_insecure", &self.auth_insecure)
            .field("url", &self.url)
            .field("authurl", &self.authurl)
            .field("preauthtoken", &hide(&self.preauthtoken))
            .field("cacert", &self.cacert)
            .field("region", &self.region)
            .field("user", &self.user)
            .field("user_domain_name", &self.user_domain_name)
            .field("key", &"***")
            .field("project_name", &self.project_name)
            .field("project_domain_name", &self.project_domain_name)
            .field("container_prefix", &self.container_prefix)
            .field("container_prefix_all", &self.container_prefix_all)
            .field("storage_policy", &self.storage_policy)
            .field("endpoint_type", &self.endpoint_type)
            .field("service_type", &self.service_type)
            .field("timeout", &self.timeout)
            .finish()
    }
}
