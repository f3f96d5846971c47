//! HTTP plumbing shared by every resource: content negotiation, JSON bodies,
//! query strings with repeated keys, absolute URLs (honouring proxy headers when
//! configured), pagination links and upstream's strict booleans.

use crate::AppState;
use crate::wire::accept::accept_quality;
use crate::wire::error::{ApiError, ApiResult};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;
use std::sync::Arc;

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
    let mut scratch = Vec::new();
    from_json_slice(body, &mut scratch).map_err(|e| decode_error(body, &e))
}

/// 400 `Unable to decode body` for a body that is not JSON.
pub(crate) fn decode_error(body: &[u8], e: &serde_json::Error) -> ApiError {
    // An empty body gets the message of upstream's JSON parser (clients match it).
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        "Expected object or value".to_owned()
    } else {
        e.to_string()
    };
    ApiError::undecodable_body(reason)
}

/// Key of the one-entry object that stands, in a request body, for a number
/// JSON cannot hold: `{"gnocchi-rs:non-finite": "NaN"}` (or `"Infinity"`,
/// `"-Infinity"`). See [`from_json_slice`].
pub(crate) const NON_FINITE_KEY: &str = "gnocchi-rs:non-finite";

/// The number a [`NON_FINITE_KEY`] entry stands for.
pub(crate) fn non_finite(token: &str) -> Option<f64> {
    match token {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Whether a decoded value is a [`NON_FINITE_KEY`] object: a float to
/// upstream, so never "a dictionary" to the schemas.
pub(crate) fn is_non_finite(value: &Value) -> bool {
    value.as_object().is_some_and(|o| {
        o.len() == 1
            && o.get(NON_FINITE_KEY)
                .and_then(Value::as_str)
                .and_then(non_finite)
                .is_some()
    })
}

/// The value as a JSON object, unless it stands for a non-finite number
/// (see [`NON_FINITE_KEY`]): what upstream's schemas call a dictionary.
pub(crate) fn dict(value: &Value) -> Option<&serde_json::Map<String, Value>> {
    value.as_object().filter(|_| !is_non_finite(value))
}

/// Decode a request body as upstream's JSON parser does: strict JSON, plus
/// the `NaN`, `Infinity` and `-Infinity` literals and numbers beyond the f64
/// range (`1e400` is Infinity), which Python's parsers accept as floats.
///
/// serde_json reads the body first (the fast path, borrowing from `body`).
/// Only when it refuses it is a copy with such numbers rewritten into
/// [`NON_FINITE_KEY`] objects read instead (borrowing from `scratch`). An
/// object, not the string `"NaN"`, so that where upstream wants a string
/// (`"name": NaN`) the value is still refused, while measure values
/// ([`crate::wire::measures_body`]) read it back as the float. When the copy does not
/// read either, the error is about the body as sent, unless the copy is valid
/// JSON of the wrong shape (`NaN` where a list is expected).
pub(crate) fn from_json_slice<'a, T: serde::Deserialize<'a>>(
    body: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> serde_json::Result<T> {
    let original = match serde_json::from_slice(body) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let Some(copy) = normalise_non_finite(body) else {
        return Err(original);
    };
    *scratch = copy;
    let scratch: &'a [u8] = scratch;
    serde_json::from_slice(scratch).map_err(|e| if e.is_data() { e } else { original })
}

/// Rewrite, outside strings, the literals `NaN`, `Infinity`, `-Infinity` and
/// the numbers that overflow an f64 into [`NON_FINITE_KEY`] objects. `None`
/// when there is nothing to rewrite. Anything else is copied as is: what is
/// not JSON stays not JSON.
pub(crate) fn normalise_non_finite(body: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    let mut copied = 0;
    let mut rewritten = false;
    let mut i = 0;
    while i < body.len() {
        let rest = &body[i..];
        let (len, token) = match rest[0] {
            b'"' => {
                i += string_len(rest);
                continue;
            }
            b'N' if rest.starts_with(b"NaN") => (3, "NaN"),
            b'I' if rest.starts_with(b"Infinity") => (8, "Infinity"),
            b'-' if rest.starts_with(b"-Infinity") => (9, "-Infinity"),
            b'-' | b'0'..=b'9' => {
                let len = rest
                    .iter()
                    .take_while(|b| matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
                    .count();
                match overflowing_number(&rest[..len]) {
                    Some(token) => (len, token),
                    None => {
                        i += len;
                        continue;
                    }
                }
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&body[copied..i]);
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(NON_FINITE_KEY.as_bytes());
        out.extend_from_slice(b"\":\"");
        out.extend_from_slice(token.as_bytes());
        out.extend_from_slice(b"\"}");
        i += len;
        copied = i;
        rewritten = true;
    }
    if !rewritten {
        return None;
    }
    out.extend_from_slice(&body[copied..]);
    Some(out)
}

/// Length of the JSON string at the start of `s` (quotes included), or of
/// all of `s` when it is not terminated.
fn string_len(s: &[u8]) -> usize {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

/// `Infinity` or `-Infinity` when `token` is a JSON number with a fraction or
/// an exponent that is too large for an f64, as Python's `float()` reads it.
/// Integers are left alone: Python keeps them exact (and upstream then
/// refuses them as measure values).
fn overflowing_number(token: &[u8]) -> Option<&'static str> {
    if !is_json_number(token) || !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return None;
    }
    let f: f64 = std::str::from_utf8(token).ok()?.parse().ok()?;
    match f {
        f64::INFINITY => Some("Infinity"),
        f64::NEG_INFINITY => Some("-Infinity"),
        _ => None,
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, JSON's number grammar.
fn is_json_number(token: &[u8]) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut s = token.strip_prefix(b"-").unwrap_or(token);
    match s.first() {
        Some(b'0') => s = &s[1..],
        Some(b'1'..=b'9') => s = &s[digits(s)..],
        _ => return false,
    }
    if let Some(frac) = s.strip_prefix(b".") {
        let n = digits(frac);
        if n == 0 {
            return false;
        }
        s = &frac[n..];
    }
    if let Some(exp) = s.strip_prefix(b"e").or_else(|| s.strip_prefix(b"E")) {
        let exp = exp
            .strip_prefix(b"+")
            .or_else(|| exp.strip_prefix(b"-"))
            .unwrap_or(exp);
        let n = digits(exp);
        if n == 0 {
            return false;
        }
        s = &exp[n..];
    }
    s.is_empty()
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
    /// Every value of a repeatable parameter, as upstream's `arg_to_list`
    /// reads it: a single empty value is no value at all.
    pub(crate) fn param_list(&self, key: &str) -> Vec<&str> {
        match self.params_all(key)[..] {
            [""] => Vec::new(),
            ref values => values.to_vec(),
        }
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
        crate::wire::json::to_vec(value),
    )
        .into_response()
}

pub(crate) fn ok_json(value: &Value) -> Response {
    json_response(StatusCode::OK, value)
}

/// 200 with a JSON list of `items`, each rendered by `render`.
pub(crate) fn ok_json_list<T>(items: &[T], render: impl Fn(&T) -> Value) -> Response {
    ok_json(&Value::Array(items.iter().map(render).collect()))
}

/// 200 with a JSON document already written as text (the aggregation
/// endpoints print their numbers as upstream does, not as serde_json would).
pub(crate) fn ok_json_text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
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

/// 202 with an empty body, as upstream.
pub(crate) fn accepted() -> Response {
    (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response()
}

#[cfg(test)]
mod non_finite_tests {
    use super::*;

    fn normalised(body: &str) -> Option<String> {
        normalise_non_finite(body.as_bytes()).map(|b| String::from_utf8(b).unwrap())
    }

    fn decoded(body: &str) -> serde_json::Result<Value> {
        let mut scratch = Vec::new();
        from_json_slice(body.as_bytes(), &mut scratch)
    }

    fn marker(token: &str) -> Value {
        serde_json::json!({ NON_FINITE_KEY: token })
    }

    #[test]
    fn nan_and_infinity_literals_become_marker_objects() {
        assert_eq!(
            decoded(r#"[{"value": NaN}, Infinity, -Infinity]"#).unwrap(),
            serde_json::json!([{"value": marker("NaN")}, marker("Infinity"), marker("-Infinity")])
        );
    }

    #[test]
    fn numbers_beyond_f64_read_as_infinity_as_python_reads_them() {
        assert_eq!(
            decoded("[1e400, -1e400, 1E+400, 1.8e308, -2.5e999]").unwrap(),
            serde_json::json!([
                marker("Infinity"),
                marker("-Infinity"),
                marker("Infinity"),
                marker("Infinity"),
                marker("-Infinity")
            ])
        );
    }

    #[test]
    fn numbers_within_range_are_left_alone() {
        assert_eq!(normalised("[1e308, 1e-400, -0.0, 12, 5E-3]"), None);
        // Out-of-range integers stay exact in Python (upstream then refuses
        // them as values): not rewritten.
        assert_eq!(normalised(&format!("[1{}]", "0".repeat(400))), None);
    }

    #[test]
    fn literals_inside_strings_are_untouched() {
        let body = r#"{"NaN": "NaN", "a": "x \"Infinity\" -Infinity 1e400", "b\\": NaN}"#;
        assert_eq!(
            decoded(body).unwrap(),
            serde_json::json!({
                "NaN": "NaN",
                "a": "x \"Infinity\" -Infinity 1e400",
                "b\\": marker("NaN"),
            })
        );
    }

    #[test]
    fn nested_and_spaced_literals_are_rewritten() {
        let body = "{\"a\": [ NaN ,\n\t{\"b\": [-Infinity]},1e400 ] }";
        assert_eq!(
            normalised(body).unwrap(),
            format!(
                "{{\"a\": [ {} ,\n\t{{\"b\": [{}]}},{} ] }}",
                marker("NaN"),
                marker("-Infinity"),
                marker("Infinity")
            )
        );
    }

    #[test]
    fn what_python_refuses_stays_refused_with_the_original_error() {
        for body in [
            "[nan]",
            "[inf]",
            "[-NaN]",
            "[NaNa]",
            "[+1e400]",
            "[.5e400]",
            "[01e400]",
            "[1e400",
            r#"[NaN, "unterminated]"#,
            "[NaN,]",
        ] {
            let original = serde_json::from_slice::<Value>(body.as_bytes()).unwrap_err();
            let got = decoded(body).unwrap_err();
            assert_eq!(got.to_string(), original.to_string(), "{body}");
        }
    }

    #[test]
    fn a_marker_is_recognised_only_alone() {
        assert!(is_non_finite(&decoded("NaN").unwrap()));
        assert!(is_non_finite(&decoded("-1e400").unwrap()));
        let mut two = marker("NaN");
        two["x"] = Value::from(1);
        assert!(!is_non_finite(&two));
        assert!(!is_non_finite(&marker("nan")));
        assert!(!is_non_finite(&Value::from("NaN")));
    }

    #[test]
    fn valid_json_of_the_wrong_shape_reports_the_shape() {
        // `NaN` where a list is expected: upstream's parser reads it, and the
        // schema refuses it, so the error must be about the type.
        let mut scratch = Vec::new();
        let e = from_json_slice::<Vec<u32>>(b"NaN", &mut scratch).unwrap_err();
        assert!(e.is_data(), "{e}");
    }

    #[test]
    fn decoding_borrows_from_the_body_when_it_is_strict_json() {
        let mut scratch = Vec::new();
        let s: &str = from_json_slice(br#""plain""#, &mut scratch).unwrap();
        assert_eq!(s, "plain");
        assert!(scratch.is_empty());
    }
}

#[cfg(test)]
mod non_finite_props {
    use super::normalise_non_finite;
    use proptest::prelude::*;
    use serde_json::Value;

    /// Any JSON document with finite numbers, whose strings may well spell
    /// `NaN` or `Infinity`.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "(NaN|-?Infinity|1e400|[a-z\"\\\\ ]{0,8})".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("(NaN|Infinity|[a-z]{0,4})", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = normalise_non_finite(&body);
        }

        #[test]
        fn never_panics_on_json_like_text(body in "[\\[\\]{}\",:\\\\ NaInfty0-9eE.+-]{0,64}") {
            let _ = normalise_non_finite(body.as_bytes());
        }

        #[test]
        fn valid_json_without_the_literals_is_left_byte_identical(v in json_value()) {
            let compact = serde_json::to_vec(&v).unwrap();
            prop_assert_eq!(normalise_non_finite(&compact), None);
            let pretty = serde_json::to_vec_pretty(&v).unwrap();
            prop_assert_eq!(normalise_non_finite(&pretty), None);
        }
    }
}
