//! CORS, as upstream's oslo.middleware does it, so that Grafana in a browser can
//! query the API directly. Preflight requests (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) are answered here with 200; other requests
//! from an allowed origin get `Access-Control-Allow-Origin` added. A request from
//! an origin that is not allowed gets no CORS header at all.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `[cors]` options, with upstream's defaults.
#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// `allowed_origin`; `*` allows any origin.
    pub allowed_origins: Vec<String>,
    pub allow_credentials: bool,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
}

impl Default for CorsConfig {
    fn default() -> Self {
        let list = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        CorsConfig {
            allowed_origins: Vec::new(),
            allow_credentials: true,
            expose_headers: Vec::new(),
            max_age: Some(3600),
            allow_methods: list(&[
                "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
            ]),
            // Gnocchi's own override of oslo's default list.
            allow_headers: list(&[
                "Authorization",
                "X-Auth-Token",
                "X-Subject-Token",
                "X-User-Id",
                "X-Domain-Id",
                "X-Project-Id",
                "X-Roles",
            ]),
        }
    }
}

impl CorsConfig {
    fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == "*" || o == origin)
    }
}

fn set(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

pub(crate) async fn cors(State(cfg): State<Arc<CorsConfig>>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(origin) = origin.filter(|_| !cfg.allowed_origins.is_empty()) else {
        return next.run(req).await;
    };
    let requested_method = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if req.method() == Method::OPTIONS
        && let Some(method) = requested_method
    {
        return preflight(&cfg, &origin, &method, req.headers());
    }
    let mut resp = next.run(req).await;
    if cfg.origin_allowed(&origin) {
        set(&mut resp, "access-control-allow-origin", &origin);
        if cfg.allow_credentials {
            set(&mut resp, "access-control-allow-credentials", "true");
        }
        if !cfg.expose_headers.is_empty() {
            set(
                &mut resp,
                "access-control-expose-headers",
                &cfg.expose_headers.join(","),
            );
        }
        resp.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

fn preflight(
    cfg: &CorsConfig,
    origin: &str,
    method: &str,
    headers: &axum::http::HeaderMap,
) -> Response {
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Origin"));
    if !cfg.origin_allowed(origin)
        || !cfg
            .allow_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
    {
        return resp;
    }
    let requested_headers: Vec<String> = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let permitted = |h: &String| cfg.allow_headers.iter().any(|a| a.eq_ignore_ascii_case(h));
    if !requested_headers.iter().all(permitted) {
        return resp;
    }
    set(&mut resp, "access-control-allow-origin", origin);
    set(&mut resp, "access-control-allow-methods", method);
    if cfg.allow_credentials {
        set(&mut resp, "access-control-allow-credentials", "true");
    }
    if let Some(age) = cfg.max_age {
        set(&mut resp, "access-control-max-age", &age.to_string());
    }
    if !requested_headers.is_empty() {
        set(
            &mut resp,
            "access-control-allow-headers",
            &requested_headers.join(","),
        );
    }
    resp
}
