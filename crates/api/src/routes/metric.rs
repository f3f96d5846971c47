//! `/v1/metric`: create, list, show and delete metrics.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::lookup::{
    find_metric as find, find_named_metric, loaded_resource, policy_from_rules,
};
use crate::access::policy::{Target, flatten};
use crate::access::targets::metric_target as policy_target;
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{Ctx, created, json_body, no_content, ok_json};
use crate::wire::pagination;
use crate::wire::render::{
    metric_json_created as to_json_created, metric_json_listed as to_json_listed,
    metric_json_with_resource as to_json_with_resource,
};
use crate::wire::validate::{self, Path};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use gnocchi_index::{IndexError, Metric, MetricQuery, NewMetric};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/metric", get(list).post(create))
        .route("/metric/{id}", get(show).delete(delete))
        // A metric named on its resource.
        .route(
            "/resource/{rtype}/{id}/metric/{name}",
            get(show_metric).delete(delete_metric),
        )
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
    if name
        .as_deref()
        .is_some_and(|n| !gnocchi_index::valid_metric_name(n))
    {
        return Err(ApiError::slash_in_metric_name());
    }
    if resource_id.is_some() && name.is_none() {
        return Err(ApiError::attribute_value_error(
            "name",
            "Name cannot be null if resource_id is not null",
        ));
    }
    let resource_id = match resource_id {
        None => None,
        Some(rid) => {
            let id = gnocchi_index::resource_uuid(&rid, &creds.creator())
                .map_err(|e| root.key("resource_id").invalid(&e))?;
            // Upstream answers a 500 here (its foreign key fails); a clear 400 is better.
            if state
                .indexer
                .get_resource(gnocchi_index::GENERIC, id)
                .await?
                .is_none()
            {
                return Err(ApiError::resource_not_found(id).into_bad_request());
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
            return Err(ApiError::archive_policy_not_found(ap).into_bad_request());
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
    let marker = |m: &Metric| m.id.to_string();
    Ok(pagination::ok_json_page(
        &ctx,
        &page,
        &metrics,
        to_json_listed,
        marker,
    ))
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
    delete_found(&state, &creds, &metric).await
}

/// `DELETE` of a metric already found (by id, or by name on a resource).
async fn delete_found(state: &AppState, creds: &Creds, metric: &Metric) -> ApiResult<Response> {
    state
        .policy
        .enforce("delete metric", creds, &policy_target(metric))?;
    state.indexer.delete_metric(metric.id).await?;
    Ok(no_content())
}

async fn show_metric(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath((rtype, id, name)): UrlPath<(String, String, String)>,
) -> ApiResult<Response> {
    let m = find_named_metric(&state, &rtype, &id, &name, &creds).await?;
    show_found(&state, &creds, &m).await
}

async fn delete_metric(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath((rtype, id, name)): UrlPath<(String, String, String)>,
) -> ApiResult<Response> {
    let m = find_named_metric(&state, &rtype, &id, &name, &creds).await?;
    delete_found(&state, &creds, &m).await
}
