//! HTTP plumbing shared by every resource: content negotiation, JSON bodies,
//! query strings with repeated keys, absolute URLs (honouring proxy headers when
//! configured), pagination links and upstream's strict booleans.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;
use std::sync::Arc;

/// Quality the `Accept` header gives to `offer` (most specific matching range wins).
pub(crate) fn accept_quality(accept: &str, offer: &str) -> f32 {
    let (otype, osub) = offer.split_once('/').unwrap_or((offer, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        let (mtype, msub) = media.split_once('/').unwrap_or((media.as_str(), ""));
        let specificity = if mtype == otype && msub == osub {
            3
        } else if mtype == otype && msub == "*" {
            2
        } else if mtype == "*" && msub == "*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map(|(_, q)| q).unwrap_or(0.0)
}

/// Middleware for the JSON API: 406 unless the client accepts JSON.
pub(crate) async fn require_json_accept(req: Request, next: Next) -> Response {
    if let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        && !accept.trim().is_empty()
        && accept_quality(accept, "application/json") <= 0.0
    {
        return ApiError::not_acceptable().into_response();
    }
    next.run(req).await
}

/// Parse a JSON request body: 415 unless it is declared as JSON, 400 if it does not decode.
pub(crate) fn json_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    json_body_typed(headers, body, "application/json")
}

pub(crate) fn json_body_typed(
    headers: &HeaderMap,
    body: &[u8],
    expected: &str,
) -> ApiResult<Value> {
    json_body_typed_check(headers, expected)?;
    serde_json::from_slice(body).map_err(|e| {
        // An empty body gets the message of upstream's JSON parser (clients match it).
        let reason = if body.iter().all(u8::is_ascii_whitespace) {
            "Expected object or value".to_owned()
        } else {
            e.to_string()
        };
        ApiError::bad_request(serde_json::json!({
            "cause": "Unable to decode body",
            "reason": reason,
            "detail": [],
        }))
    })
}

/// Everything about the request URL a handler needs: query parameters (repeated
/// keys kept, in order) and the absolute base URL (`scheme://host[/prefix]`).
pub(crate) struct Ctx {
    pub(crate) params: Vec<(String, String)>,
    pub(crate) base_url: String,
    pub(crate) path: String,
}

impl Ctx {
    /// Last value of a query parameter (upstream reads single values that way).
    pub(crate) fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn params_all(&self, key: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// Upstream's strict boolean (`true/false/yes/no/on/off/1/0/y/n/t/f`).
    pub(crate) fn bool_param(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.param(key) {
            None => Ok(None),
            Some(v) => parse_bool(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Unable to parse `{key}': Unrecognized value '{v}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
                ))
            }),
        }
    }
    /// Absolute URL of an API path (`/v1/...`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" | "t" => Some(true),
        "false" | "no" | "off" | "0" | "n" | "f" => Some(false),
        _ => None,
    }
}

pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// What Python's `urllib.parse.quote_plus` leaves alone.
const QUERY_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// `urlencode` of key/value pairs as Python does it (spaces become `+`).
pub(crate) fn urlencode(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| {
        utf8_percent_encode(s, QUERY_SAFE)
            .to_string()
            .replace("%20", "+")
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One path segment, percent-encoded (`✔` → `%E2%9C%94`).
pub(crate) fn quote_segment(s: &str) -> String {
    utf8_percent_encode(s, QUERY_SAFE).to_string()
}

fn forwarded_pairs(value: &str) -> Vec<(String, String)> {
    let first = value.split(',').next().unwrap_or("");
    first
        .split(';')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ))
        })
        .collect()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub(crate) fn base_url(headers: &HeaderMap, proxy_headers: bool) -> String {
    let mut scheme = "http".to_string();
    let mut host = header_str(headers, "host")
        .unwrap_or("localhost")
        .to_string();
    let mut prefix = String::new();
    if proxy_headers {
        if let Some(fwd) = header_str(headers, "forwarded") {
            for (k, v) in forwarded_pairs(fwd) {
                match k.as_str() {
                    "proto" => scheme = v,
                    "host" => host = v,
                    _ => {}
                }
            }
        } else {
            if let Some(p) = header_str(headers, "x-forwarded-proto") {
                scheme = p.split(',').next().unwrap_or(p).trim().to_string();
            }
            if let Some(h) = header_str(headers, "x-forwarded-host") {
                host = h.split(',').next().unwrap_or(h).trim().to_string();
            }
        }
        if let Some(p) = header_str(headers, "x-forwarded-prefix") {
            prefix = p.trim_end_matches('/').to_string();
        }
    }
    format!("{scheme}://{host}{prefix}")
}

impl FromRequestParts<Arc<AppState>> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let params = parts.uri.query().map(parse_query).unwrap_or_default();
        Ok(Ctx {
            params,
            base_url: base_url(&parts.headers, state.config.enable_proxy_headers_parsing),
            // Nested routers see a path without their prefix; links need the whole one.
            path: parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| parts.uri.path().to_string(), |u| u.0.path().to_string()),
        })
    }
}

/// A JSON response with upstream's serialization.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        crate::json::to_vec(value),
    )
        .into_response()
}

pub(crate) fn ok_json(value: &Value) -> Response {
    json_response(StatusCode::OK, value)
}

/// 201 with an absolute `Location`.
pub(crate) fn created(location: String, value: &Value) -> Response {
    let mut resp = json_response(StatusCode::CREATED, value);
    if let Ok(v) = location.parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// 415 unless the request declares the expected media type.
pub(crate) fn json_body_typed_check(headers: &HeaderMap, expected: &str) -> ApiResult<()> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(content_type))
    }
}
