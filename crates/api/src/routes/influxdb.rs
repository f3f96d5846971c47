//! `/v1/influxdb`: enough of InfluxDB 1.x's HTTP API for writers (Telegraf's
//! `influxdb` output, the `influx` CLI, client libraries) to store into gnocchi.
//!
//! - `GET /ping` → 204 with `X-Influxdb-Version`. `HEAD /ping` is refused
//!   (405) as upstream refuses it: its test suite pins that (an `xfail` test
//!   that our conformance gate counts as failed if it passes). InfluxDB
//!   clients ping with GET.
//! - `POST /query?q=CREATE DATABASE <name>` creates the resource type `<name>`
//!   (no attributes); any other query → 501.
//! - `POST /write?db=<type>[&precision=...]`: line protocol. Each line's tag
//!   named by the `X-Gnocchi-InfluxDB-Tag-Resource-ID` header (default `host`)
//!   names the resource (of type `db`); every numeric field becomes measures of
//!   the metric `<measurement>.<field>[@<tag>=<value>,...]` (other tags sorted
//!   by key, `/` replaced by `_`). Resources and metrics are created on the fly.
//!
//! The body is parsed line by line without allocating per line: a series
//! (measurement and tags as written) is resolved to its resource and metric
//! names once, then every later line of it costs two hash lookups.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::policy::Target;
use crate::ingest::{self, Authorizer, resource_uuid};
use crate::language::line_protocol::{FieldValue, LineKind, Point, classify, precision_multiplier};
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{Ctx, no_content};
use crate::wire::params::now;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carbonara::{Measure, Timestamp};
use gnocchi_index::{IndexError, ResourceType, ResourceTypeState};
use gnocchi_ingest::{AutoResource, Missing, NamedWrite, Request, ResourceWrite};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Full paths: these routes are merged outside the JSON-only `Accept` check,
/// since InfluxDB clients send `Accept: text/plain` and get no body back.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/influxdb/ping", get(ping).head(head_ping))
        .route("/v1/influxdb/query", post(query))
        .route("/v1/influxdb/write", post(write))
}

const TAG_HEADER: &str = "x-gnocchi-influxdb-tag-resource-id";
const DEFAULT_TAG: &str = "host";

async fn ping() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    // Upstream's: the API's version, as `GET /` reports it.
    let version = format!("Gnocchi {}", crate::UPSTREAM_API_VERSION);
    if let Ok(v) = HeaderValue::from_str(&version) {
        resp.headers_mut().insert("x-influxdb-version", v);
    }
    resp
}

/// Upstream (pecan) does not route HEAD to the ping action.
async fn head_ping() -> Response {
    let mut resp = StatusCode::METHOD_NOT_ALLOWED.into_response();
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    resp
}

/// `CREATE DATABASE name` (case-insensitive keywords; the name an identifier or
/// a double-quoted string with backslash escapes; an optional `;`).
pub(crate) fn parse_create_database(q: &str) -> Option<String> {
    let q = q.trim();
    let rest = strip_keyword(q, "create")?;
    let rest = rest.trim_start();
    let rest = strip_keyword(rest, "database")?;
    if !rest.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let rest = rest.trim_start();
    let (name, tail) = if let Some(quoted) = rest.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => name.push(chars.next()?.1),
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => name.push(c),
            }
        }
        (name, &quoted[end?..])
    } else {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        (name.to_string(), &rest[end..])
    };
    let tail = tail.trim();
    let tail = tail.strip_prefix(';').unwrap_or(tail).trim();
    (tail.is_empty() && !name.is_empty()).then_some(name)
}

fn strip_keyword<'a>(s: &'a str, kw: &str) -> Option<&'a str> {
    let head = s.get(..kw.len())?;
    head.eq_ignore_ascii_case(kw).then(|| &s[kw.len()..])
}

async fn query(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    // `q` in the URL, or in a form body as the InfluxDB HTTP API also allows.
    let mut q = ctx.param("q").map(str::to_string);
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if q.is_none()
        && form
        && let Ok(text) = std::str::from_utf8(&body)
    {
        q = crate::wire::http::parse_query(text)
            .into_iter()
            .rev()
            .find(|(k, _)| k == "q")
            .map(|(_, v)| v);
    }
    let Some(q) = q else {
        // Upstream answers a query without `q` with an empty 204.
        return Ok(no_content());
    };
    let name = parse_create_database(&q).ok_or_else(ApiError::query_not_implemented)?;
    let mut target = Target::new();
    target.insert("name".into(), Some(name.clone()));
    state
        .policy
        .enforce("create resource type", &creds, &target)?;
    match state
        .indexer
        .create_resource_type(&new_resource_type(&name))
        .await
    {
        Ok(_) | Err(IndexError::ResourceTypeAlreadyExists(_)) => Ok(no_content()),
        Err(e) => Err(e.into()),
    }
}

fn line_error(n: usize) -> ApiError {
    ApiError::value_error("line", format!("Unable to parse line {n}"))
}

/// What a series key resolves to.
struct SeriesInfo {
    resource: usize,
}

/// The measures of one metric of the request.
#[derive(Debug)]
struct MetricMeasures {
    resource: usize,
    name: String,
    measures: Vec<Measure>,
}

/// A parsed write request, grouped per resource and metric.
#[derive(Debug, Default)]
pub(crate) struct Grouped<'a> {
    /// Resource names (the tag values), in order of appearance.
    resources: Vec<Cow<'a, str>>,
    metrics: Vec<MetricMeasures>,
}

/// Parse a whole body. `tag` names the resource tag; `now` stamps lines
/// without a timestamp; `precision` multiplies the others.
pub(crate) fn group_lines<'a>(
    body: &'a [u8],
    tag: &str,
    precision: i64,
    now: Timestamp,
) -> ApiResult<Grouped<'a>> {
    let mut out = Grouped::default();
    let mut point = Point::default();
    let mut series: HashMap<&'a str, SeriesInfo> = HashMap::new();
    let mut series_fields: HashMap<(&'a str, &'a str), usize> = HashMap::new();
    let mut resource_index: HashMap<Cow<'a, str>, usize> = HashMap::new();
    let mut metric_index: HashMap<(usize, String), usize> = HashMap::new();
    let mut scratch: Vec<usize> = Vec::new();
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        let LineKind::Data(data) = classify(line) else {
            continue;
        };
        point
            .parse(data, precision)
            .map_err(|_| line_error(n + 1))?;
        let ts = point.timestamp.unwrap_or(now);
        let series_key = point.series_key;
        let resource = match series.get(series_key) {
            Some(info) => info.resource,
            None => {
                // The last occurrence of a repeated tag wins, as in a Python dict.
                let Some((_, value)) = point.tags.iter().rev().find(|(k, _)| k == tag) else {
                    return Err(ApiError::value_error(
                        "key",
                        format!("Unable to find key `{tag}' in tags"),
                    ));
                };
                let next = out.resources.len();
                let r = *resource_index.entry(value.clone()).or_insert(next);
                if r == next {
                    out.resources.push(value.clone());
                }
                series.insert(series_key, SeriesInfo { resource: r });
                r
            }
        };
        for (raw_key, key, value) in &point.fields {
            let FieldValue::Number(v) = value else {
                // Strings and booleans are not measures.
                continue;
            };
            let idx = match series_fields.get(&(series_key, *raw_key)) {
                Some(&i) => i,
                None => {
                    let name = metric_name(&point, key, tag, &mut scratch);
                    let next = out.metrics.len();
                    let i = *metric_index.entry((resource, name.clone())).or_insert(next);
                    if i == next {
                        out.metrics.push(MetricMeasures {
                            resource,
                            name,
                            measures: Vec::new(),
                        });
                    }
                    series_fields.insert((series_key, *raw_key), i);
                    i
                }
            };
            out.metrics[idx].measures.push(Measure::new(ts, *v));
        }
    }
    Ok(out)
}

/// `<measurement>.<field>[@k=v,...]`, tags other than the resource's sorted by
/// key (the last of a repeated key wins), `/` replaced by `_`. `scratch` is
/// reused between calls.
fn metric_name(
    point: &Point<'_>,
    field: &str,
    resource_tag: &str,
    scratch: &mut Vec<usize>,
) -> String {
    let tags = &point.tags;
    scratch.clear();
    for (i, (k, _)) in tags.iter().enumerate().rev() {
        if k != resource_tag && !scratch.iter().any(|&j| tags[j].0 == *k) {
            scratch.push(i);
        }
    }
    scratch.sort_by(|&a, &b| tags[a].0.cmp(&tags[b].0));
    let mut name = String::with_capacity(64);
    name.push_str(&point.measurement);
    name.push('.');
    name.push_str(field);
    for (n, &i) in scratch.iter().enumerate() {
        name.push(if n == 0 { '@' } else { ',' });
        name.push_str(&tags[i].0);
        name.push('=');
        name.push_str(&tags[i].1);
    }
    if name.contains('/') {
        name = name.replace('/', "_");
    }
    name
}

/// The body, gunzipped when sent with `Content-Encoding: gzip` (Telegraf's
/// default), refusing to inflate beyond `max_len` bytes.
fn decode_body(headers: &HeaderMap, body: Bytes, max_len: usize) -> ApiResult<Bytes> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        return Ok(body);
    }
    if !encoding.eq_ignore_ascii_case("gzip") {
        return Err(ApiError::unsupported_encoding(encoding));
    }
    use std::io::Read;
    let mut out = Vec::with_capacity(body.len() * 4);
    flate2::read::MultiGzDecoder::new(&body[..])
        .take(max_len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::undecodable_body(e.to_string()))?;
    if out.len() > max_len {
        return Err(ApiError::inflated_body_too_large());
    }
    Ok(Bytes::from(out))
}

async fn write(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let db = ctx
        .param("db")
        .filter(|d| !d.is_empty())
        .unwrap_or("influxdb");
    let precision = match ctx.param("precision") {
        None => 1,
        Some(p) => precision_multiplier(p)
            .ok_or_else(|| ApiError::argument("precision", format!("Unknown precision `{p}'")))?,
    };
    let tag = headers
        .get(TAG_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(DEFAULT_TAG);
    let body = decode_body(&headers, body, state.config.max_body_size)?;
    let grouped = group_lines(&body, tag, precision, now())?;
    let creator = creds.creator();
    let missing = Missing::CreateResource(AutoResource {
        resource_type: new_resource_type(db),
        attributes: Vec::new(),
        any_type: false,
    });
    let mut resources: Vec<ResourceWrite> = Vec::with_capacity(grouped.resources.len());
    for original in &grouped.resources {
        resources.push(ResourceWrite {
            id: resource_uuid(original, Some(&creator)).map_err(ApiError::bad_request)?,
            original_id: original.to_string(),
            missing: missing.clone(),
            metrics: Vec::new(),
        });
    }
    for m in grouped.metrics {
        resources[m.resource]
            .metrics
            .push(NamedWrite::new(m.name, m.measures));
    }
    // Resources with no numeric field are not created.
    resources.retain(|r| !r.metrics.is_empty());
    let request = Request {
        creator: Some(creator),
        metrics: Vec::new(),
        resources,
    };
    ingest::write(&state, &mut Authorizer::new(&state, &creds), request).await?;
    Ok(no_content())
}

/// A resource type without attributes, as `CREATE DATABASE` and the first
/// write into a database create it.
fn new_resource_type(name: &str) -> ResourceType {
    ResourceType {
        name: name.to_string(),
        state: ResourceTypeState::Creating,
        attributes: Vec::new(),
        tablename: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonara::measure::measures;

    #[test]
    fn create_database_queries() {
        assert_eq!(
            parse_create_database("create database influxdbtest").as_deref(),
            Some("influxdbtest")
        );
        assert_eq!(
            parse_create_database("CREATE DATABASE \"tele graf\";").as_deref(),
            Some("tele graf")
        );
        assert_eq!(
            parse_create_database("  Create  Database x_1 ; ").as_deref(),
            Some("x_1")
        );
        for bad in [
            "select metrics plz",
            "create database",
            "create databasex",
            "create database 1x",
            "create database a b",
            "drop database a",
        ] {
            assert_eq!(parse_create_database(bad), None, "{bad}");
        }
    }

    #[test]
    fn lines_group_per_resource_and_metric() {
        let body = b"mymetric,host=foobar,mytag=myvalue field=123 1510581804179554816\n\
cpu,path=/foobar,mytag=myvalue field=43i 1510581804179554816\n\
\n\
cpu,mytag=myvalue,path=/foobar field=44i,s=\"x\" 1510581804179554817\n";
        let g = group_lines(body, "mytag", 1, 7).unwrap();
        assert_eq!(g.resources, vec!["myvalue"]);
        let names: Vec<&str> = g.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["mymetric.field@host=foobar", "cpu.field@path=_foobar"]
        );
        assert_eq!(
            g.metrics[1].measures,
            measures(&[(1510581804179554816, 43.0), (1510581804179554817, 44.0)])
        );

        let g = group_lines(b"m,host=a f=1\nm,host=b f=2,g=3", "host", 1, 7).unwrap();
        assert_eq!(g.resources, vec!["a", "b"]);
        assert_eq!(g.metrics.len(), 3);
        assert_eq!(g.metrics[0].measures, measures(&[(7, 1.0)]));

        let e = group_lines(b"m,host=a f=1\nm,host=a f=x", "host", 1, 7).unwrap_err();
        assert_eq!(e.description["reason"], "Unable to parse line 2");
        let e = group_lines(b"m,x=a f=1", "host", 1, 7).unwrap_err();
        assert_eq!(e.description["reason"], "Unable to find key `host' in tags");
    }
}
