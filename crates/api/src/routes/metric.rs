//! `/v1/metric`: create, list, show and delete metrics.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::policy::{Target, flatten};
use crate::language::fnmatch::fnmatch;
use crate::routes::archive_policy;
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{Ctx, created, json_body, no_content, ok_json};
use crate::wire::pagination;
use crate::wire::validate::{self, Path};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use gnocchi_index::{IndexError, Metric, MetricQuery, NewMetric};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/metric", get(list).post(create))
        .route("/metric/{id}", get(show).delete(delete))
}

/// `creator` split at the first `:` (basic auth has no project: `""`).
fn created_by(creator: &Option<String>) -> (Value, Value) {
    match creator {
        None => (Value::Null, Value::Null),
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (json!(u), json!(p)),
            None => (json!(c), json!("")),
        },
    }
}

/// The shape of a metric right after creation.
pub(crate) fn to_json_created(m: &Metric) -> Value {
    let (user, project) = created_by(&m.creator);
    json!({
        "id": m.id,
        "creator": m.creator,
        "name": m.name,
        "unit": m.unit,
        "resource_id": m.resource_id,
        "archive_policy_name": m.archive_policy.name,
        "created_by_user_id": user,
        "created_by_project_id": project,
    })
}

/// The shape in listings: the archive policy in full.
pub(crate) fn to_json_listed(m: &Metric) -> Value {
    let (user, project) = created_by(&m.creator);
    json!({
        "id": m.id,
        "creator": m.creator,
        "name": m.name,
        "unit": m.unit,
        "resource_id": m.resource_id,
        "archive_policy": archive_policy::to_json(&m.archive_policy),
        "created_by_user_id": user,
        "created_by_project_id": project,
    })
}

/// The shape of `GET /v1/metric/ID` (with `resource` rendered by the caller):
/// the resource and archive policy in full.
pub(crate) fn to_json_shown(m: &Metric) -> Value {
    to_json_with_resource(m, Value::Null)
}

pub(crate) fn to_json_with_resource(m: &Metric, resource: Value) -> Value {
    let (user, project) = created_by(&m.creator);
    json!({
        "id": m.id,
        "creator": m.creator,
        "name": m.name,
        "unit": m.unit,
        "resource": resource,
        "archive_policy": archive_policy::to_json(&m.archive_policy),
        "created_by_user_id": user,
        "created_by_project_id": project,
    })
}

/// A metric's resource as upstream renders it inside the metric (its
/// `Metric.resource`, loaded alone): the generic attributes, without the
/// `metrics` nor the attributes of the resource's type. Null without one.
pub(crate) async fn loaded_resource(state: &AppState, m: &Metric) -> ApiResult<Value> {
    let Some(rid) = m.resource_id else {
        return Ok(Value::Null);
    };
    let resource = state
        .indexer
        .get_resource(gnocchi_index::GENERIC, rid)
        .await?;
    Ok(resource.map_or(Value::Null, |r| {
        let mut v = crate::routes::resource::to_json(&r);
        if let Value::Object(o) = &mut v {
            o.remove("metrics");
        }
        v
    }))
}

/// What the policy rules see of a metric.
pub(crate) fn policy_target(m: &Metric) -> Target {
    flatten(&to_json_shown(m))
}

/// What the policy rules see of a metric with its resource (for
/// `metric_owner`, `project_id:%(resource.project_id)s`), as upstream's metric
/// controller loads it. Only keystone callers have a project to compare with,
/// so only they pay for the lookup.
pub(crate) async fn policy_target_with_resource(
    state: &AppState,
    creds: &Creds,
    m: &Metric,
) -> ApiResult<Target> {
    let resource = match m.resource_id {
        Some(rid) if creds.scoped => state
            .indexer
            .get_resource(gnocchi_index::GENERIC, rid)
            .await?
            .map_or(Value::Null, |r| crate::routes::resource::to_json(&r)),
        _ => Value::Null,
    };
    Ok(flatten(&to_json_with_resource(m, resource)))
}

/// The active metric with this id, or upstream's 404.
pub(crate) async fn find(state: &AppState, id: &str) -> ApiResult<Metric> {
    let not_found = || ApiError::not_found(format!("Metric {id} does not exist"));
    let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
    state
        .indexer
        .get_metrics(&[uuid])
        .await?
        .into_iter()
        .next()
        .ok_or_else(not_found)
}

/// The archive policy a metric gets when none is named: the first rule whose
/// pattern matches the metric name (rules come in upstream's match order).
pub(crate) async fn policy_from_rules(state: &AppState, name: Option<&str>) -> ApiResult<String> {
    let name = name.unwrap_or("");
    let rules = state.indexer.list_archive_policy_rules().await?;
    rules.into_iter().find(|r| fnmatch(name, &r.metric_pattern)).map(|r| r.archive_policy_name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "No archive policy name specified and no archive policy rule found matching the metric name {name}"
        ))
    })
}

async fn create(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    state
        .policy
        .enforce("create metric", &creds, &Target::new())?;
    let body = json_body(&headers, &body)?;
    let root = Path::root();
    let map = validate::object(
        &body,
        &root,
        &["archive_policy_name", "name", "unit", "resource_id"],
        &[],
    )?;
    let name = validate::opt_string(map.get("name"), &root.key("name"), Some(255))?;
    let unit = validate::opt_string(map.get("unit"), &root.key("unit"), Some(31))?;
    let ap_name = validate::opt_string(
        map.get("archive_policy_name"),
        &root.key("archive_policy_name"),
        None,
    )?;
    let resource_id = validate::opt_string(map.get("resource_id"), &root.key("resource_id"), None)?;
    if name.as_deref().is_some_and(|n| n.contains('/')) {
        return Err(ApiError::bad_request("'/' is not supported in metric name"));
    }
    if resource_id.is_some() && name.is_none() {
        return Err(ApiError::bad_request(json!({
            "cause": "Attribute value error",
            "detail": "name",
            "reason": "Name cannot be null if resource_id is not null",
        })));
    }
    let resource_id = match resource_id {
        None => None,
        Some(rid) => {
            let id = crate::routes::resource::resource_uuid(&rid, &creds.creator())
                .map_err(|e| root.key("resource_id").invalid(&e))?;
            // Upstream answers a 500 here (its foreign key fails); a clear 400 is better.
            if state
                .indexer
                .get_resource(gnocchi_index::GENERIC, id)
                .await?
                .is_none()
            {
                return Err(ApiError::bad_request(format!(
                    "Resource {id} does not exist"
                )));
            }
            Some(id)
        }
    };
    let ap_name = match ap_name {
        Some(n) => n,
        None => policy_from_rules(&state, name.as_deref()).await?,
    };
    let new = NewMetric {
        id: Uuid::new_v4(),
        name,
        unit,
        resource_id,
        creator: Some(creds.creator()),
        archive_policy_name: ap_name,
    };
    let metric = match state.indexer.create_metric(&new).await {
        Err(IndexError::ArchivePolicyNotFound(ap)) => {
            return Err(ApiError::bad_request(format!(
                "Archive policy {ap} does not exist"
            )));
        }
        other => other?,
    };
    let location = ctx.url(&format!("/v1/metric/{}", metric.id));
    Ok(created(location, &to_json_created(&metric)))
}

async fn list(State(state): State<Arc<AppState>>, creds: Creds, ctx: Ctx) -> ApiResult<Response> {
    // In basic and remoteuser modes every user may list every metric, as
    // upstream; keystone callers see what their project may.
    let visibility =
        crate::access::visibility::metric_visibility(&state.policy, "list metric", &creds)?;
    let page = pagination::parse(&ctx, state.config.max_limit, &["id:asc"])?;
    let mut query = MetricQuery {
        name: ctx.param("name").map(str::to_string),
        unit: ctx.param("unit").map(str::to_string),
        archive_policy_name: ctx.param("archive_policy_name").map(str::to_string),
        creator: ctx.param("creator").map(str::to_string),
        sort: page.sort.clone(),
        limit: Some(page.limit),
        marker: page.marker.clone(),
        visibility,
        ..Default::default()
    };
    for id in ctx.params_all("id") {
        match Uuid::parse_str(id) {
            Ok(u) => query.ids.push(u),
            // An id that cannot exist matches nothing.
            Err(_) => return Ok(ok_json(&json!([]))),
        }
    }
    if let Some(user) = ctx.param("user_id") {
        let project = ctx.param("project_id").unwrap_or("");
        query.creator = Some(format!("{user}:{project}"));
    }
    if let Some(status) = ctx.param("status")
        && status != "active"
    {
        return Ok(ok_json(&json!([])));
    }
    let metrics = state.indexer.list_metrics(&query).await?;
    let mut resp = ok_json(&Value::Array(metrics.iter().map(to_json_listed).collect()));
    pagination::add_next_link(
        &mut resp,
        &ctx,
        &page,
        metrics.len(),
        metrics.last().map(|m| m.id.to_string()),
    );
    Ok(resp)
}

async fn show(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    let metric = find(&state, &id).await?;
    show_found(&state, &creds, &metric).await
}

/// `GET` of a metric already found (by id, or by name on a resource): with its
/// resource in full when it has one.
pub(crate) async fn show_found(
    state: &AppState,
    creds: &Creds,
    metric: &Metric,
) -> ApiResult<Response> {
    let shown = to_json_with_resource(metric, loaded_resource(state, metric).await?);
    state
        .policy
        .enforce("get metric", creds, &flatten(&shown))?;
    Ok(ok_json(&shown))
}

async fn delete(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    let metric = find(&state, &id).await?;
    state
        .policy
        .enforce("delete metric", &creds, &policy_target(&metric))?;
    state.indexer.delete_metric(metric.id).await?;
    Ok(no_content())
}
