//! The HTTP API: upstream Gnocchi's v1 REST API, on axum.
//!
//! In layers that only point down (ARCHITECTURE.md): `routes` (one module
//! per endpoint family, never importing each other) → `ingest` (how the
//! write routes use the ingest service: the authorizer of a whole plan) →
//! `access` (auth, policy, lookups) → `language` (resource queries,
//! aggregates, line protocol, remote write) → `wire` (errors, JSON, params,
//! rendering; `wire::error` is the one place errors become HTTP).
//!
//! Invariants: this is the only crate that knows HTTP and JSON; every request
//! body is fully validated, and every write plan authorized, before anything
//! is written; a 202 on measures is sent only after the incoming store made
//! them durable.

mod access;
mod ingest;
mod language;
mod routes;
#[cfg(test)]
mod test_support;
mod wire;

pub use access::{auth, keystone, policy};

use axum::Router;
use axum::extract::Request;
use axum::routing::get;
use carbonara::Method;
use gnocchi_engine::Engine;
use gnocchi_index::Indexer;
use gnocchi_storage::Incoming;
use std::sync::Arc;
use std::time::Duration;

pub use access::auth::AuthMode;
pub use access::cors::CorsConfig;
pub use routes::root::{SERVER, UPSTREAM_API_VERSION, VERSION_LINE};

/// The `[api]`, `[cors]` and `[archive_policy]` settings the API uses.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub auth_mode: AuthMode,
    /// Page size cap and default (`[api] max_limit`).
    pub max_limit: usize,
    /// Honour `Forwarded` / `X-Forwarded-*` for the URLs we return.
    pub enable_proxy_headers_parsing: bool,
    pub cors: CorsConfig,
    /// Methods of archive policies created without `aggregation_methods`.
    pub default_aggregation_methods: Vec<Method>,
    /// How long `refresh=true` waits for a sack being processed.
    pub operation_timeout: Duration,
    /// Largest accepted request body, in bytes.
    pub max_body_size: usize,
    /// This process's identifier when it runs metricd, listed by /v1/status
    /// when there is no distributed coordinator (which lists the group's live
    /// members instead).
    pub processors: Vec<String>,
    /// `[keystone_authtoken]`, required when `auth_mode` is keystone.
    pub keystone: Option<keystone::KeystoneConfig>,
    /// Rules of the operator's `[oslo_policy] policy_file`, over the defaults.
    pub policy_overrides: Vec<(String, String)>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            auth_mode: AuthMode::Basic,
            max_limit: 1000,
            enable_proxy_headers_parsing: false,
            cors: CorsConfig::default(),
            default_aggregation_methods: carbonara::policy::default_aggregation_methods(),
            operation_timeout: Duration::from_secs(10),
            max_body_size: 128 * 1024 * 1024,
            processors: Vec::new(),
            keystone: None,
            policy_overrides: Vec::new(),
        }
    }
}

/// What every handler can reach.
pub struct AppState {
    pub indexer: Arc<dyn Indexer>,
    pub incoming: Arc<dyn Incoming>,
    pub engine: Arc<Engine>,
    /// Every write of measures goes through it.
    pub ingest: gnocchi_ingest::Ingest,
    pub config: ApiConfig,
    pub policy: policy::Policy,
    /// The token validator, in keystone mode.
    pub keystone: Option<keystone::Keystone>,
}

impl AppState {
    /// The state for `config`: its policy rules and, in keystone mode, the
    /// Keystone client. Errors are configuration errors, fit for the operator.
    pub fn new(
        indexer: Arc<dyn Indexer>,
        incoming: Arc<dyn Incoming>,
        engine: Arc<Engine>,
        config: ApiConfig,
    ) -> Result<AppState, String> {
        let keystone = match config.auth_mode {
            AuthMode::Keystone => Some(keystone::Keystone::new(
                config.keystone.clone().unwrap_or_default(),
            )?),
            _ => None,
        };
        Ok(AppState {
            ingest: gnocchi_ingest::Ingest::new(indexer.clone(), incoming.clone()),
            indexer,
            incoming,
            engine,
            policy: policy::Policy::with_overrides(&config.policy_overrides),
            config,
            keystone,
        })
    }
}

/// The whole API as a router.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_body_size;
    let v1 = Router::new()
        .route("/", get(routes::root::v1_links))
        .route("/capabilities", get(routes::root::capabilities))
        .route("/status", get(routes::root::status))
        .merge(routes::archive_policy::routes())
        .merge(routes::archive_policy_rule::routes())
        .merge(routes::metric::routes())
        .merge(routes::measures::routes())
        .merge(routes::aggregates::routes())
        .merge(routes::aggregation::routes())
        .merge(routes::search_metric::routes())
        .merge(routes::resource::routes())
        .merge(routes::resource_type::routes())
        .merge(routes::batch::routes());
    Router::new()
        .route("/", get(routes::root::versions))
        .route(
            "/healthcheck",
            get(routes::root::healthcheck).head(routes::root::healthcheck),
        )
        .nest("/v1", v1)
        .layer(axum::middleware::from_fn(wire::http::require_json_accept))
        // Write protocols whose clients send their own `Accept` (and get no body).
        .merge(routes::influxdb::routes())
        .merge(routes::prometheus::routes())
        .layer(axum::middleware::from_fn(wire::error::render_errors))
        .layer(axum::middleware::map_response(routes::root::server_header))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(state.config.cors.clone()),
            access::cors::cors,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Upstream's router (pecan) splits the path on `/` and skips empty segments:
/// `/v1/archive_policy//low` (which python-gnocchiclient 7.2.0 sends for
/// `archive-policy update`) and `/v1/metric/` route as `/v1/archive_policy/low`
/// and `/v1/metric`. Do the same before routing, for every route at once. A
/// `/` inside a segment arrives percent-encoded and is left alone.
pub fn normalize_path(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1 && (path.ends_with('/') || path.contains("//")) {
        let mut collapsed = String::with_capacity(path.len());
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            collapsed.push('/');
            collapsed.push_str(segment);
        }
        if collapsed.is_empty() {
            collapsed.push('/');
        }
        let new = match req.uri().query() {
            Some(q) => format!("{collapsed}?{q}"),
            None => collapsed,
        };
        if let Ok(uri) = new.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

#[cfg(test)]
mod normalize_path_tests {
    use super::normalize_path;
    use axum::extract::Request;

    fn normalized(uri: &str) -> String {
        let req = Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .expect("request");
        normalize_path(req).uri().to_string()
    }

    #[test]
    fn empty_segments_are_skipped_as_upstream_does() {
        assert_eq!(
            normalized("/v1/archive_policy//low"),
            "/v1/archive_policy/low"
        );
        assert_eq!(
            normalized("//v1///archive_policy_rule//r1/?x=a//b"),
            "/v1/archive_policy_rule/r1?x=a//b"
        );
        assert_eq!(normalized("/v1/metric/"), "/v1/metric");
        assert_eq!(normalized("///"), "/");
        assert_eq!(normalized("/"), "/");
        // An encoded slash belongs to its segment.
        assert_eq!(
            normalized("/v1/resource/generic/a%2F%2Fb"),
            "/v1/resource/generic/a%2F%2Fb"
        );
    }
}
