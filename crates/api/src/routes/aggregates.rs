//! `POST /v1/aggregates`: dynamic aggregation across metrics with the
//! operation language of [`crate::language::aggregates_parse`], and the processor it
//! shares with the deprecated `/v1/aggregation` API.
//!
//! The processor reads every referenced series at every granularity they
//! have in common (one storage batch), aligns the series of each granularity
//! on the union of their timestamps (holes are NaN, or the numeric `fill`),
//! fills or checks the overlap, evaluates the operations on that grid with
//! `carbonara::ops`, and renders `[[timestamp, granularity, value], ...]`.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::lookup::loaded_resource;
use crate::access::targets::metric_target as policy_target;
use crate::access::visibility::restrict_resources;
use crate::language::aggregates_eval::*;
use crate::language::aggregates_output::*;
use crate::language::aggregates_parse::{Node, RefKey, parse_operations, py_repr};
use crate::language::query::{parse_filter_string, parse_json_query};
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{Ctx, json_body, ok_json_text};
use crate::wire::json::push_json;
use crate::wire::render::metric_json_with_resource as to_json_with_resource;
use crate::wire::validate::{self, Path};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use carbonara::ops;
use gnocchi_index::{IndexError, Metric, Resource, ResourceQuery};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/aggregates", post(post_aggregates))
}

async fn post_aggregates(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let details = ctx.bool_param("details")?.unwrap_or(false);
    let q = parse_query(&ctx)?;
    let body = json_body(&headers, &body)?;
    let root = Path::root();
    let with_resources = body
        .as_object()
        .is_some_and(|m| m.contains_key("resource_type") || m.contains_key("search"));
    let map = if with_resources {
        validate::object(
            &body,
            &root,
            &["operations", "resource_type", "search"],
            &["operations", "resource_type", "search"],
        )?
    } else {
        validate::object(&body, &root, &["operations"], &["operations"])?
    };
    let operations = parse_operations(map.get("operations").unwrap_or(&Value::Null))?;
    let references = operations.references();
    if references.is_empty() {
        return Err(ApiError::operations_without_metric(operations.to_json()));
    }
    let asked = Asked {
        operations: &operations,
        references: &references,
        q: &q,
        details,
    };
    if with_resources {
        let use_history = ctx.bool_param("use_history")?.unwrap_or(false);
        let search = Search {
            resource_type: map.get("resource_type").unwrap_or(&Value::Null),
            query: map.get("search").unwrap_or(&Value::Null),
            groupby: groupby_param(&ctx),
            use_history,
        };
        return by_resources(&state, &creds, asked, &search).await;
    }
    by_metric_ids(&state, &creds, asked).await
}

/// What an aggregates request asks, whether it names its metrics by id or
/// searches resources for them.
#[derive(Clone, Copy)]
struct Asked<'a> {
    operations: &'a Node,
    references: &'a [RefKey],
    q: &'a AggQuery,
    details: bool,
}

/// The resource part of an aggregates request.
struct Search<'a> {
    resource_type: &'a Value,
    query: &'a Value,
    groupby: Vec<String>,
    use_history: bool,
}

/// `Metric ['a', 'b'] does not exist`: upstream's message, with the globs
/// sorted as a Python list.
fn no_such_metric(references: &[RefKey]) -> ApiError {
    let mut names: Vec<&str> = references.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let list: Vec<String> = names.iter().map(|n| py_repr(&json!(n))).collect();
    ApiError::metric_not_found(format_args!("[{}]", list.join(", ")))
}

/// Index errors of a resource search are the client's fault (400), but for
/// the backend's own.
fn search_error(e: IndexError) -> ApiError {
    match e {
        e if e.is_backend_failure() => e.into(),
        other => {
            let api: ApiError = other.into();
            match api.description {
                Value::String(s) => ApiError::bad_request(s),
                d => ApiError::bad_request(d),
            }
        }
    }
}

async fn by_resources(
    state: &AppState,
    creds: &Creds,
    asked: Asked<'_>,
    search: &Search<'_>,
) -> ApiResult<Response> {
    let Asked {
        operations,
        references,
        q,
        details,
    } = asked;
    let found = search_resources(state, creds, q, search).await?;
    let metrics = metrics_of(state, &found.resources).await?;
    let rendered: Vec<Value> = found
        .resources
        .iter()
        .map(crate::wire::render::resource_json)
        .collect();
    // Resources are sorted by the groupby attributes: groups are runs.
    let keyed = rendered.iter().enumerate();
    let mut groups = group_runs(keyed.map(|(i, r)| (group_of(r, &search.groupby), i)));
    if groups.is_empty() {
        groups.push((Vec::new(), Vec::new()));
    }
    let mut bodies: Vec<(GroupKey, String)> = Vec::new();
    for (key, members) in &groups {
        let (refs, shown) = group_references(&found, members, &metrics, references, q);
        if refs.is_empty() {
            // A group without any matching metric is left out.
            continue;
        }
        let docs = details.then(|| shown_resources(&found.resources, &rendered, &shown));
        let body = evaluate_group(state, operations, q, &refs, docs).await?;
        bodies.push((key.clone(), body));
    }
    if bodies.is_empty() {
        return Err(no_such_metric(references));
    }
    if search.groupby.is_empty() {
        let body = bodies.pop().map(|(_, b)| b).unwrap_or_default();
        return Ok(ok_json_text(body));
    }
    Ok(ok_json_text(groups_json(&bodies)))
}

/// The resources an aggregates search selects, in group order.
struct FoundResources {
    resources: Vec<Resource>,
    /// Every revision of the resources (`use_history` with a `groupby`).
    history: bool,
    /// With history, each resource's first revision start: that revision
    /// counts from `start`, as data usually predates the resource's creation
    /// in the index.
    first_revision: HashMap<Uuid, i64>,
}

/// The `resource_type` and `search` of the body, resolved to the resources
/// (or revisions) the caller may see.
async fn search_resources(
    state: &AppState,
    creds: &Creds,
    q: &AggQuery,
    search: &Search<'_>,
) -> ApiResult<FoundResources> {
    let rtype = search
        .resource_type
        .as_str()
        .ok_or_else(|| Path::root().key("resource_type").invalid("expected str"))?;
    if state.indexer.get_resource_type(rtype).await?.is_none() {
        return Err(ApiError::resource_type_not_found(rtype).into_bad_request());
    }
    let filter = match search.query {
        Value::String(s) => parse_filter_string(s, &creds.creator())?,
        Value::Object(_) => parse_json_query(search.query, &creds.creator())?,
        _ => {
            return Err(Path::root()
                .key("search")
                .invalid("expected a dictionary or a filter string"));
        }
    };
    // Keystone callers aggregate only over what their project may see.
    let filter = restrict_resources(&state.policy, "search resource", creds, rtype, filter)?;
    let history = search.use_history && !search.groupby.is_empty();
    let query = ResourceQuery {
        resource_type: rtype.to_string(),
        filter,
        details: false,
        history,
        sort: resource_sort(&search.groupby),
        limit: None,
        marker: None,
    };
    let mut resources = state
        .indexer
        .list_resources(&query)
        .await
        .map_err(search_error)?;
    if history {
        // Only the revisions alive at some point of [start, stop).
        resources.retain(|r| {
            q.start.is_none_or(|s| r.revision_end.is_none_or(|e| e > s))
                && q.stop.is_none_or(|e| r.revision_start < e)
        });
    }
    let mut first_revision: HashMap<Uuid, i64> = HashMap::new();
    for r in &resources {
        let e = first_revision.entry(r.id).or_insert(r.revision_start);
        *e = (*e).min(r.revision_start);
    }
    Ok(FoundResources {
        resources,
        history,
        first_revision,
    })
}

/// The metrics attached to any of `resources`, by id.
async fn metrics_of(state: &AppState, resources: &[Resource]) -> ApiResult<HashMap<Uuid, Metric>> {
    let mut metric_ids: Vec<Uuid> = resources
        .iter()
        .flat_map(|r| r.metrics.iter().map(|(_, id)| *id))
        .collect();
    metric_ids.sort_unstable();
    metric_ids.dedup();
    let metrics = state.indexer.get_metrics(&metric_ids).await?;
    Ok(metrics.into_iter().map(|m| (m.id, m)).collect())
}

/// The part of [start, stop) a revision covers in a history search (no
/// window without history: everything counts).
fn revision_windows(found: &FoundResources, r: &Resource, q: &AggQuery) -> Vec<ops::Window> {
    if !found.history {
        return Vec::new();
    }
    let from = if found.first_revision.get(&r.id) == Some(&r.revision_start) {
        q.start
    } else {
        Some(
            q.start
                .map_or(r.revision_start, |s| s.max(r.revision_start)),
        )
    };
    let to = match (r.revision_end, q.stop) {
        (Some(e), Some(s)) => Some(e.min(s)),
        (e, s) => e.or(s),
    };
    vec![(from, to)]
}

/// The references of one group: each metric of its resources whose name
/// matches a wanted glob (two revisions of a resource make one series over
/// both windows); and the members that had one, to show with `details`.
fn group_references(
    found: &FoundResources,
    members: &[usize],
    metrics: &HashMap<Uuid, Metric>,
    references: &[RefKey],
    q: &AggQuery,
) -> (Vec<Reference>, Vec<usize>) {
    let mut refs: Vec<Reference> = Vec::new();
    let mut shown: Vec<usize> = Vec::new();
    for &i in members {
        let r = &found.resources[i];
        let window = revision_windows(found, r, q);
        let mut used = false;
        for wanted in references {
            for (name, id) in &r.metrics {
                if !gnocchi_index::fnmatch::fnmatch(name, &wanted.name) {
                    continue;
                }
                let Some(m) = metrics.get(id) else { continue };
                used = true;
                if let Some(existing) = refs.iter_mut().find(|x| {
                    x.metric.id == *id && x.lookup == *wanted && x.resource_id == Some(r.id)
                }) {
                    existing.windows.extend(window.iter().copied());
                    continue;
                }
                refs.push(Reference {
                    metric: m.clone(),
                    aggregation: wanted.aggregation.clone(),
                    lookup: wanted.clone(),
                    resource_id: Some(r.id),
                    windows: window.clone(),
                });
            }
        }
        if used {
            shown.push(i);
        }
    }
    (refs, shown)
}

/// The rendered resources of `shown`, each resource once.
fn shown_resources(resources: &[Resource], rendered: &[Value], shown: &[usize]) -> Vec<Value> {
    let mut seen = HashSet::new();
    shown
        .iter()
        .filter(|&&i| seen.insert(resources[i].id))
        .map(|&i| rendered[i].clone())
        .collect()
}

/// One group's `{"measures": ..., "references"?: [...]}`.
async fn evaluate_group(
    state: &AppState,
    operations: &Node,
    q: &AggQuery,
    refs: &[Reference],
    references: Option<Vec<Value>>,
) -> ApiResult<String> {
    let identity = |r: &RefKey| r.clone();
    let output = get_measures(state, refs, operations, q, identity)
        .await
        .map_err(ProcError::into_api)?;
    let mut out = String::with_capacity(256);
    out.push_str("{\"measures\": ");
    write_measures_by_resource(&mut out, refs, &output);
    push_references(&mut out, references);
    Ok(out)
}

/// `, "references": [...]}` with `details`, else only the closing brace.
fn push_references(out: &mut String, references: Option<Vec<Value>>) {
    if let Some(docs) = references {
        out.push_str(", \"references\": ");
        push_json(out, &Value::Array(docs));
    }
    out.push('}');
}

/// A metric reference's id as upstream prints it (lowercase, hyphenated).
fn normalize_id(r: &RefKey) -> RefKey {
    RefKey {
        name: Uuid::parse_str(&r.name).map_or_else(|_| r.name.clone(), |u| u.to_string()),
        aggregation: r.aggregation.clone(),
    }
}

async fn by_metric_ids(state: &AppState, creds: &Creds, asked: Asked<'_>) -> ApiResult<Response> {
    let Asked {
        operations,
        references,
        q,
        details,
    } = asked;
    let mut ids = Vec::with_capacity(references.len());
    for r in references {
        match Uuid::parse_str(&r.name) {
            Ok(u) => ids.push(u),
            Err(_) => {
                return Err(ApiError::invalid_metric_references(
                    references
                        .iter()
                        .map(|r| json!([r.name, r.aggregation]))
                        .collect(),
                ));
            }
        }
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    let metrics = state.indexer.get_metrics(&unique).await?;
    let by_id: HashMap<Uuid, &Metric> = metrics.iter().map(|m| (m.id, m)).collect();
    let mut missing: Vec<String> = Vec::new();
    for id in &ids {
        let s = id.to_string();
        if !by_id.contains_key(id) && !missing.contains(&s) {
            missing.push(s);
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::unknown_metrics(missing));
    }
    for m in &metrics {
        state
            .policy
            .enforce("get metric", creds, &policy_target(m))?;
    }
    let mut refs: Vec<Reference> = Vec::with_capacity(references.len());
    let mut seen = HashSet::new();
    for (r, id) in references.iter().zip(&ids) {
        let lookup = normalize_id(r);
        if !seen.insert(lookup.clone()) {
            continue;
        }
        if let Some(m) = by_id.get(id) {
            refs.push(Reference {
                metric: (*m).clone(),
                aggregation: r.aggregation.clone(),
                lookup,
                resource_id: None,
                windows: Vec::new(),
            });
        }
    }
    let output = get_measures(state, &refs, operations, q, normalize_id)
        .await
        .map_err(ProcError::into_api)?;
    let mut out = String::with_capacity(256);
    out.push_str("{\"measures\": ");
    write_measures_by_id(&mut out, &refs, &output);
    let references = if details {
        Some(shown_metrics(state, &refs).await?)
    } else {
        None
    };
    push_references(&mut out, references);
    Ok(ok_json_text(out))
}

/// Each metric once, in UUID order, with its resource (as upstream's
/// indexer lists them with `details=True`).
async fn shown_metrics(state: &AppState, refs: &[Reference]) -> ApiResult<Vec<Value>> {
    let mut shown: Vec<&Metric> = refs.iter().map(|r| &r.metric).collect();
    shown.sort_unstable_by_key(|m| m.id);
    shown.dedup_by_key(|m| m.id);
    let mut docs = Vec::with_capacity(shown.len());
    for m in shown {
        let resource = loaded_resource(state, m).await?;
        docs.push(to_json_with_resource(m, resource));
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use crate::test_support::TestApi;
    use axum::http::StatusCode;
    use serde_json::json;

    /// Upstream prints the two operands in Python: a resample period is the
    /// `numpy.timedelta64` its schema made of it (messages taken from
    /// upstream 4.7.1 with numpy 2).
    #[tokio::test]
    async fn different_granularities_are_named_with_the_resample_period_as_numpy_prints_it() {
        let api = TestApi::start().await;
        api.policy_60s("p", &["mean"]).await;
        let a = api
            .metric_with(
                "p",
                &[
                    ("2024-01-01T00:00:00", 1.0),
                    ("2024-01-01T00:01:00", 2.0),
                    ("2024-01-01T00:02:00", 4.0),
                ],
            )
            .await;
        let cases = [
            (
                format!("(+ (metric {a} mean) (resample mean 120 (metric {a} mean)))"),
                format!(
                    "['metric', '{a}', 'mean'] <> ['resample', 'mean', \
                     np.timedelta64(120000000000,'ns'), ['metric', '{a}', 'mean']]"
                ),
            ),
            (
                format!(
                    "(- (rolling max 2 (resample count 1.5 (metric {a} mean))) \
                     (clip (abs (metric {a} mean)) 0 1))"
                ),
                format!(
                    "['rolling', 'max', 2, ['resample', 'count', \
                     np.timedelta64(1500000000,'ns'), ['metric', '{a}', 'mean']]] <> \
                     ['clip', ['abs', ['metric', '{a}', 'mean']], 0.0, 1.0]"
                ),
            ),
        ];
        for (ops, operands) in cases {
            let got = api
                .expect(
                    StatusCode::BAD_REQUEST,
                    "POST",
                    "/v1/aggregates",
                    Some(json!({ "operations": ops })),
                )
                .await;
            assert_eq!(
                got["description"],
                json!({
                    "cause": "Metrics cannot be aggregated",
                    "reason": format!("Can't compute timeseries with different granularity {operands}"),
                    "detail": [[a, "mean"]],
                })
            );
        }
    }

    #[tokio::test]
    async fn details_show_each_metric_with_its_resource_as_upstream_loads_it() {
        let api = TestApi::start().await;
        api.policy_60s("p", &["mean"]).await;
        let alone = api.metric_with("p", &[("2024-01-01T00:00:00", 1.0)]).await;
        let rid = "aaaaaaaa-0000-4000-8000-000000000001";
        api.expect(
            StatusCode::CREATED,
            "POST",
            "/v1/resource/generic",
            Some(json!({"id": rid, "project_id": "p1", "metrics": {"cpu": {"archive_policy_name": "p"}}})),
        )
        .await;
        let r = api
            .expect(
                StatusCode::OK,
                "GET",
                &format!("/v1/resource/generic/{rid}"),
                None,
            )
            .await;
        let cpu = r["metrics"]["cpu"].as_str().expect("cpu").to_string();
        let got = api
            .expect(
                StatusCode::OK,
                "POST",
                "/v1/aggregates?details=true",
                Some(json!({"operations": ["metric", [cpu, "mean"], [alone, "mean"]]})),
            )
            .await;
        let refs = got["references"].as_array().expect("references");
        // Each metric once, in UUID order.
        let ids: Vec<&str> = refs.iter().map(|m| m["id"].as_str().expect("id")).collect();
        let mut sorted = vec![alone.as_str(), cpu.as_str()];
        sorted.sort_unstable();
        assert_eq!(ids, sorted);
        for m in refs {
            assert!(m.get("resource_id").is_none(), "{m}");
            assert_eq!(m["archive_policy"]["name"], "p");
            if m["id"] == alone.as_str() {
                assert_eq!(m["resource"], json!(null));
            } else {
                // The resource's own attributes, not its metrics.
                assert_eq!(m["resource"]["id"], rid);
                assert_eq!(m["resource"]["project_id"], "p1");
                assert_eq!(m["resource"]["type"], "generic");
                assert!(m["resource"].get("metrics").is_none(), "{m}");
            }
        }
    }
}
