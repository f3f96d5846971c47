//! `/v1/resource/...` and `/v1/search/resource/...`: resources of every type,
//! their history, their named metrics (and those metrics' measures), listings,
//! searches and batch deletes.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::lookup::{
    check_visible, find_resource, find_resource_type as find_type, policy_from_rules,
    resource_not_found,
};
use crate::access::policy::Target;
use crate::access::targets::resource_target as policy_target;
use crate::access::visibility::{resource_filter, restrict_resources};
use crate::language::query::search_filter;
use crate::wire::attributes::{attribute_value, datetime};
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{
    Ctx, created, json_body, no_content, ok_json, ok_json_list, quote_segment,
};
use crate::wire::pagination;
use crate::wire::render::{metric_json_listed, resource_json as to_json, resource_json_ordered};
use crate::wire::validate::{self, Path};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::{get, post};
use carbonara::time;
use gnocchi_index::resource_uuid;
use gnocchi_index::{
    Filter, FilterValue, IndexError, MetricQuery, MetricSpec, NewResource, Resource, ResourceQuery,
    ResourceUpdate,
};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use uuid::Uuid;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/resource", get(types_index))
        .route(
            "/resource/{rtype}",
            get(list).post(create).delete(delete_many),
        )
        .route(
            "/resource/{rtype}/{id}",
            get(show).patch(update).delete(delete_one),
        )
        .route("/resource/{rtype}/{id}/history", get(history))
        .route(
            "/resource/{rtype}/{id}/metric",
            get(list_metrics).post(add_metrics),
        )
        .route("/search/resource/{rtype}", post(search).get(search_get))
}

/// Upstream's default resource sort.
const DEFAULT_SORT: &[&str] = &["revision_start:asc", "started_at:asc"];

// ------------------------------------------------------------------ ids

// ------------------------------------------------------------------ JSON

/// Keep only the `attrs` the client asked for (unknown ones are ignored).
fn select_attrs(v: Value, attrs: &[&str]) -> Value {
    match v {
        Value::Object(m) if !attrs.is_empty() => Value::Object(
            m.into_iter()
                .filter(|(k, _)| attrs.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

// ------------------------------------------------------------------ ETags

/// `sha1(str(id) + revision_start.isoformat())`, as upstream.
fn etag(r: &Resource) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(r.id.to_string().as_bytes());
    h.update(time::format_iso(r.revision_start).as_bytes());
    h.digest().to_string()
}

fn last_modified(r: &Resource) -> std::time::SystemTime {
    let secs = u64::try_from(r.revision_start.div_euclid(1_000_000_000)).unwrap_or(0);
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

fn set_etag_headers(resp: &mut Response, r: &Resource) {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", etag(r))) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(last_modified(r))) {
        resp.headers_mut().insert(header::LAST_MODIFIED, v);
    }
}

/// Does an `If-Match`/`If-None-Match` list name this entity tag (or `*`)?
fn etag_listed(value: &str, tag: &str) -> bool {
    value.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.trim_start_matches("W/").trim_matches('"') == tag
    })
}

fn http_date(headers: &HeaderMap, name: header::HeaderName) -> Option<std::time::SystemTime> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
}

/// RFC 7232's order of preconditions (SPEC §3.9).
fn check_preconditions(method: &Method, headers: &HeaderMap, r: &Resource) -> ApiResult<()> {
    let tag = etag(r);
    let modified = last_modified(r);
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let precondition_failed = || ApiError::precondition_failed();
    let not_modified = || ApiError::not_modified();
    let safe = *method == Method::GET || *method == Method::HEAD;
    match if_match {
        Some(v) if !etag_listed(v, &tag) => return Err(precondition_failed()),
        Some(_) => {}
        None => {
            if http_date(headers, header::IF_UNMODIFIED_SINCE).is_some_and(|d| d < modified) {
                return Err(precondition_failed());
            }
        }
    }
    match if_none_match {
        Some(v) if etag_listed(v, &tag) => {
            return Err(if safe {
                not_modified()
            } else {
                precondition_failed()
            });
        }
        Some(_) => {}
        None => {
            if safe && http_date(headers, header::IF_MODIFIED_SINCE).is_some_and(|d| d >= modified)
            {
                return Err(not_modified());
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ bodies

fn opt_str_field(v: &Value, path: &Path) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(path.invalid("expected str")),
    }
}

/// `{name: "<metric uuid>" | {archive_policy_name?, unit?}}`; policies come from
/// the rules when not named.
async fn parse_metrics(
    state: &AppState,
    v: &Value,
    path: &Path,
) -> ApiResult<Vec<(String, MetricSpec)>> {
    let map = crate::wire::http::dict(v).ok_or_else(|| path.invalid("expected a dictionary"))?;
    let mut out = Vec::with_capacity(map.len());
    for (name, def) in map {
        let p = path.key(name);
        let spec = match def {
            Value::String(s) => MetricSpec::Existing(
                Uuid::parse_str(s).map_err(|_| p.invalid("not a valid value"))?,
            ),
            Value::Object(_) => {
                let m = validate::object(
                    def,
                    &p,
                    &["archive_policy_name", "unit", "name", "resource_id"],
                    &[],
                )?;
                if !gnocchi_index::valid_metric_name(name) {
                    return Err(ApiError::slash_in_metric_name());
                }
                let unit = validate::opt_string(m.get("unit"), &p.key("unit"), Some(31))?;
                let ap = validate::opt_string(
                    m.get("archive_policy_name"),
                    &p.key("archive_policy_name"),
                    None,
                )?;
                let archive_policy_name = match ap {
                    Some(ap) => ap,
                    None => policy_from_rules(state, Some(name)).await?,
                };
                MetricSpec::New {
                    archive_policy_name,
                    unit,
                }
            }
            _ => return Err(p.invalid("not a valid value")),
        };
        out.push((name.clone(), spec));
    }
    Ok(out)
}

/// Errors of metric attachment, as 400s (upstream's `NoSuchMetric`, `NoSuchArchivePolicy`).
fn metric_errors(e: IndexError) -> ApiError {
    match e {
        IndexError::MetricNotFound(_)
        | IndexError::ArchivePolicyNotFound(_)
        | IndexError::InvalidResourceValue(_) => ApiError::bad_request(e.to_string()),
        other => other.into(),
    }
}

// ------------------------------------------------------------------ handlers

async fn types_index(
    State(state): State<Arc<AppState>>,
    _creds: Creds,
    ctx: Ctx,
) -> ApiResult<Response> {
    let types = state.indexer.list_resource_types().await?;
    let m: Map<String, Value> = types
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                json!(ctx.url(&format!("/v1/resource/{}", quote_segment(&t.name)))),
            )
        })
        .collect();
    Ok(ok_json(&Value::Object(m)))
}

async fn create(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    UrlPath(rtype): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let rt = find_type(&state, &rtype).await?;
    let body = json_body(&headers, &body)?;
    let root = Path::root();
    let map =
        crate::wire::http::dict(&body).ok_or_else(|| root.invalid("expected a dictionary"))?;
    let creator = creds.creator();
    let mut new = NewResource {
        id: Uuid::nil(),
        resource_type: rt.name.clone(),
        original_resource_id: String::new(),
        creator: Some(creator.clone()),
        user_id: None,
        project_id: None,
        started_at: None,
        ended_at: None,
        attributes: Vec::new(),
        metrics: Vec::new(),
    };
    let mut has_id = false;
    for (key, v) in map {
        let p = root.key(key);
        match key.as_str() {
            "id" => {
                let original = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(p.invalid("expected str")),
                };
                new.id = resource_uuid(&original, &creator).map_err(|e| p.invalid(&e))?;
                new.original_resource_id = original;
                has_id = true;
            }
            "started_at" => new.started_at = Some(datetime(v, &p)?),
            "ended_at" => new.ended_at = Some(datetime(v, &p)?),
            "user_id" => new.user_id = opt_str_field(v, &p)?,
            "project_id" => new.project_id = opt_str_field(v, &p)?,
            "metrics" => new.metrics = parse_metrics(&state, v, &p).await?,
            name => match rt.attribute(name) {
                Some(a) => new
                    .attributes
                    .push((name.to_owned(), attribute_value(a, v, &p)?)),
                None => return Err(p.key_error("extra keys not allowed")),
            },
        }
    }
    if !has_id {
        return Err(root.key("id").key_error("required key not provided"));
    }
    for a in &rt.attributes {
        if a.required && !map.contains_key(&a.name) {
            return Err(root.key(&a.name).key_error("required key not provided"));
        }
    }
    state
        .policy
        .enforce("create resource", &creds, &Target::new())?;
    let resource = state
        .indexer
        .create_resource(&new)
        .await
        .map_err(metric_errors)?;
    let location = ctx.url(&format!(
        "/v1/resource/{}/{}",
        quote_segment(&rt.name),
        resource.id
    ));
    let mut resp = created(location, &to_json(&resource));
    set_etag_headers(&mut resp, &resource);
    Ok(resp)
}

async fn show(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    method: Method,
    headers: HeaderMap,
    UrlPath((rtype, id)): UrlPath<(String, String)>,
) -> ApiResult<Response> {
    let r = find_resource(&state, &rtype, &id, &creds).await?;
    check_visible(&state, &creds, &rtype, &r)?;
    check_preconditions(&method, &headers, &r)?;
    Ok(resource_response(&r))
}

/// 200 with the resource and its entity tag.
fn resource_response(r: &Resource) -> Response {
    let mut resp = ok_json(&to_json(r));
    set_etag_headers(&mut resp, r);
    resp
}

async fn update(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    method: Method,
    headers: HeaderMap,
    UrlPath((rtype, id)): UrlPath<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let rt = find_type(&state, &rtype).await?;
    let r = find_resource(&state, &rtype, &id, &creds).await?;
    state
        .policy
        .enforce("update resource", &creds, &policy_target(&r))?;
    check_preconditions(&method, &headers, &r)?;
    let body = json_body(&headers, &body)?;
    let root = Path::root();
    let map =
        crate::wire::http::dict(&body).ok_or_else(|| root.invalid("expected a dictionary"))?;
    let mut u = ResourceUpdate::default();
    for (key, v) in map {
        let p = root.key(key);
        match key.as_str() {
            "started_at" => u.started_at = Some(datetime(v, &p)?),
            "ended_at" => {
                u.ended_at = Some(if v.is_null() {
                    None
                } else {
                    Some(datetime(v, &p)?)
                })
            }
            "user_id" => u.user_id = Some(opt_str_field(v, &p)?),
            "project_id" => u.project_id = Some(opt_str_field(v, &p)?),
            "metrics" => u.metrics = Some(parse_metrics(&state, v, &p).await?),
            name => match rt.attribute(name) {
                Some(a) => u
                    .attributes
                    .push((name.to_owned(), attribute_value(a, v, &p)?)),
                None => return Err(p.key_error("extra keys not allowed")),
            },
        }
    }
    let r = if map.is_empty() {
        r
    } else {
        state
            .indexer
            .update_resource(&rtype, r.id, &u)
            .await
            .map_err(metric_errors)?
    };
    Ok(resource_response(&r))
}

async fn delete_one(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    method: Method,
    headers: HeaderMap,
    UrlPath((rtype, id)): UrlPath<(String, String)>,
) -> ApiResult<Response> {
    let r = find_resource(&state, &rtype, &id, &creds).await?;
    state
        .policy
        .enforce("delete resource", &creds, &policy_target(&r))?;
    check_preconditions(&method, &headers, &r)?;
    match state.indexer.delete_resource(r.id).await {
        Err(IndexError::ResourceNotFound(_)) => Err(resource_not_found(r.id)),
        other => other.map(|()| no_content()).map_err(Into::into),
    }
}

/// The query of a search or batch delete: a JSON body, else `?filter=`.
/// `Ok(None)`: none given (or `{}`).
fn query_of(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: &[u8],
    creds: &Creds,
) -> ApiResult<Option<Filter>> {
    let body = Some(body).filter(|b| !b.is_empty());
    search_filter(ctx, headers, body, &creds.creator())
}

async fn delete_many(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    UrlPath(rtype): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    find_type(&state, &rtype).await?;
    let Some(filter) = query_of(&ctx, &headers, &body, &creds)? else {
        return Err(ApiError::empty_delete_query());
    };
    let filter = restrict_resources(
        &state.policy,
        "delete resources",
        &creds,
        &rtype,
        Some(filter),
    )?
    .unwrap_or(Filter::And(vec![]));
    let deleted = state.indexer.delete_resources(&rtype, &filter).await?;
    Ok(ok_json(&json!({"deleted": deleted})))
}

/// Listing and search share everything but where the filter comes from.
async fn listing(
    state: &AppState,
    ctx: &Ctx,
    rtype: &str,
    filter: Option<Filter>,
    history: bool,
) -> ApiResult<Response> {
    find_type(state, rtype).await?;
    let details = ctx.bool_param("details")?.unwrap_or(false);
    let page = pagination::parse(ctx, state.config.max_limit, DEFAULT_SORT)?;
    let query = ResourceQuery {
        resource_type: rtype.to_owned(),
        filter,
        details,
        history,
        sort: page.sort.clone(),
        limit: Some(page.limit),
        marker: page.marker.clone(),
    };
    let resources = state.indexer.list_resources(&query).await?;
    let attrs = ctx.params_all("attrs");
    let render = |r: &Resource| select_attrs(resource_json_ordered(r, history), &attrs);
    let marker = |r: &Resource| {
        if history {
            format!("{}@{}", r.id, r.revision)
        } else {
            r.id.to_string()
        }
    };
    Ok(pagination::ok_json_page(
        ctx, &page, &resources, render, marker,
    ))
}

async fn list(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    UrlPath(rtype): UrlPath<String>,
) -> ApiResult<Response> {
    // Basic and remoteuser modes list everything, as upstream; keystone
    // callers see what their project may.
    let history = ctx.bool_param("history")?.unwrap_or(false);
    let restriction = resource_filter(&state.policy, "list resource", &creds, &rtype)?;
    listing(&state, &ctx, &rtype, restriction, history).await
}

async fn search(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    UrlPath(rtype): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    find_type(&state, &rtype).await?;
    let filter = query_of(&ctx, &headers, &body, &creds)?;
    let history = ctx.bool_param("history")?.unwrap_or(false);
    let filter = restrict_resources(&state.policy, "search resource", &creds, &rtype, filter)?;
    listing(&state, &ctx, &rtype, filter, history).await
}

/// Searches are POSTs: an unknown type is still a 404, a known one a 405.
async fn search_get(
    State(state): State<Arc<AppState>>,
    _creds: Creds,
    UrlPath(rtype): UrlPath<String>,
) -> ApiResult<Response> {
    find_type(&state, &rtype).await?;
    Err(ApiError::method_not_allowed())
}

async fn history(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    UrlPath((rtype, id)): UrlPath<(String, String)>,
) -> ApiResult<Response> {
    let r = find_resource(&state, &rtype, &id, &creds).await?;
    check_visible(&state, &creds, &rtype, &r)?;
    let filter = Filter::Compare {
        op: gnocchi_index::CmpOp::Eq,
        field: "id".into(),
        value: FilterValue::String(r.id.to_string()),
    };
    listing(&state, &ctx, &rtype, Some(filter), true).await
}

// ------------------------------------------------------------------ named metrics

/// The resource's metrics by name, as a listing. Upstream lists them in the
/// database's own order (in practice creation order), and `gnocchi metric
/// create -r` prints the first of the list: by name it is at least the same
/// on every call.
async fn resource_metrics(state: &AppState, id: Uuid) -> ApiResult<Response> {
    let mut metrics = state
        .indexer
        .list_metrics(&MetricQuery {
            resource_id: Some(id),
            ..Default::default()
        })
        .await?;
    metrics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ok_json_list(&metrics, metric_json_listed))
}

async fn list_metrics(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath((rtype, id)): UrlPath<(String, String)>,
) -> ApiResult<Response> {
    let r = find_resource(&state, &rtype, &id, &creds).await?;
    check_visible(&state, &creds, &rtype, &r)?;
    resource_metrics(&state, r.id).await
}

async fn add_metrics(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath((rtype, id)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let r = find_resource(&state, &rtype, &id, &creds).await?;
    state
        .policy
        .enforce("update resource", &creds, &policy_target(&r))?;
    let body = json_body(&headers, &body)?;
    let metrics = parse_metrics(&state, &body, &Path::root()).await?;
    let u = ResourceUpdate {
        metrics: Some(metrics),
        append_metrics: true,
        ..Default::default()
    };
    match state.indexer.update_resource(&rtype, r.id, &u).await {
        Ok(_) => {}
        Err(IndexError::NamedMetricAlreadyExists(name)) => {
            return Err(ApiError::named_metric_conflict(&name));
        }
        Err(e) => return Err(metric_errors(e)),
    }
    resource_metrics(&state, r.id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_uuid_ids_match_upstream_vectors() {
        let cases = [
            ("1.2.3.4", "foobar", "a9c729cc-d1b0-5e6b-b5ba-8b5a7f45f1fc"),
            ("foobar", "foobar", "2fbfbb20-8d56-5e1e-afb9-b3007da11fdf"),
            ("foobar", "admin", "b4d568e4-7af1-5aec-ac3f-9c09fa3685a9"),
        ];
        for (id, creator, expected) in cases {
            assert_eq!(resource_uuid(id, creator).unwrap().to_string(), expected);
        }
        let u = "75C44741-CC60-4033-804E-2D3098C7D2E9";
        assert_eq!(resource_uuid(u, "x").unwrap().to_string(), u.to_lowercase());
        assert!(resource_uuid("a/b", "x").is_err());
        assert!(resource_uuid(&"x".repeat(290), "x").is_err());
        assert!(resource_uuid(&"x".repeat(289), "x").is_ok());
    }
    /// More ids than any index engine binds in one statement (issue 11: this
    /// answered 500).
    #[tokio::test]
    async fn search_in_100000_ids_answers_the_matching_resources() {
        use crate::test_support::TestApi;
        use axum::http::StatusCode;
        use serde_json::json;
        let api = TestApi::start().await;
        let mut created = Vec::new();
        for _ in 0..3 {
            let id = Uuid::new_v4().to_string();
            api.expect(
                StatusCode::CREATED,
                "POST",
                "/v1/resource/generic",
                Some(json!({"id": id})),
            )
            .await;
            created.push(id);
        }
        let mut ids: Vec<String> = (0..99_998).map(|_| Uuid::new_v4().to_string()).collect();
        ids.insert(500, created[0].clone());
        ids.insert(70_000, created[2].clone());
        let found = api
            .expect(
                StatusCode::OK,
                "POST",
                "/v1/search/resource/generic",
                Some(json!({"in": {"id": ids}})),
            )
            .await;
        let mut found: Vec<&str> = found
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| r["id"].as_str().expect("an id"))
            .collect();
        found.sort_unstable();
        let mut expected = vec![created[0].as_str(), created[2].as_str()];
        expected.sort_unstable();
        assert_eq!(found, expected);
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The CLI prints a resource's fields (and `--details`/`--history`
    /// columns) in the order its keys arrive: upstream's order. Number bounds
    /// of a type come back integer or float as written, as upstream.
    #[tokio::test]
    async fn resources_types_and_rules_render_in_upstream_key_order_and_number_types() {
        use crate::test_support::TestApi;
        use axum::http::StatusCode;
        let api = TestApi::start().await;
        let rt = api
            .expect(
                StatusCode::CREATED,
                "POST",
                "/v1/resource_type",
                Some(json!({"name": "ko", "attributes": {
                    "s": {"type": "string", "required": false, "max_length": 16},
                    "n": {"type": "number", "required": false, "min": 0, "max": 16.0},
                    "f": {"type": "number", "required": false, "min": -1.5}}})),
            )
            .await;
        let shown = api.get(StatusCode::OK, "/v1/resource_type/ko").await;
        for doc in [&rt, &shown] {
            let attrs = &doc["attributes"];
            assert_eq!(
                keys(&attrs["s"]),
                ["type", "required", "max_length", "min_length"]
            );
            assert_eq!(
                attrs["n"].to_string(),
                r#"{"type":"number","required":false,"min":0,"max":16.0}"#
            );
            assert_eq!(
                attrs["f"].to_string(),
                r#"{"type":"number","required":false,"min":-1.5,"max":null}"#
            );
        }
        let id = "11111111-1111-1111-1111-111111111111";
        let (status, err) = api
            .call("POST", "/v1/resource/ko", Some(json!({"id": id, "n": 17})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            err.to_string().contains("value must be at most 16.0"),
            "{err}"
        );
        let created = api
            .expect(
                StatusCode::CREATED,
                "POST",
                "/v1/resource/ko",
                Some(json!({"id": id, "s": "x", "n": 2})),
            )
            .await;
        let current = [
            "id",
            "creator",
            "started_at",
            "revision_start",
            "ended_at",
            "user_id",
            "project_id",
            "original_resource_id",
            "type",
            "s",
            "n",
            "f",
            "revision_end",
            "metrics",
            "created_by_user_id",
            "created_by_project_id",
        ];
        assert_eq!(keys(&created), current);
        api.expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/resource/ko/{id}"),
            Some(json!({"n": 3})),
        )
        .await;
        let history = api
            .get(StatusCode::OK, &format!("/v1/resource/ko/{id}/history"))
            .await;
        let mut in_history: Vec<&str> = current.to_vec();
        in_history.retain(|k| *k != "revision_end");
        in_history.insert(1, "revision_end");
        for row in history.as_array().expect("history rows") {
            assert_eq!(keys(row), in_history);
        }
        api.policy_60s("p", &["mean"]).await;
        let rule = api
            .expect(
                StatusCode::CREATED,
                "POST",
                "/v1/archive_policy_rule",
                Some(json!({"name": "r", "metric_pattern": "x.*", "archive_policy_name": "p"})),
            )
            .await;
        assert_eq!(
            keys(&rule),
            ["name", "archive_policy_name", "metric_pattern"]
        );
    }
}
