//! Finding the entity a request names (by URL id, by name on a resource), or
//! upstream's 404; and the archive policy a new metric gets from the rules.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::targets::resource_target;
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::render::resource_json;
use gnocchi_index::{
    ArchivePolicyRule, Metric, MetricQuery, Resource, ResourceType, resource_uuid,
};
use serde_json::Value;
use uuid::Uuid;

/// The active metric with this id, or upstream's 404.
pub(crate) async fn find_metric(state: &AppState, id: &str) -> ApiResult<Metric> {
    let not_found = || ApiError::metric_not_found(id);
    let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
    state
        .indexer
        .get_metrics(&[uuid])
        .await?
        .into_iter()
        .next()
        .ok_or_else(not_found)
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
        let mut v = resource_json(&r);
        if let Value::Object(o) = &mut v {
            // `shift_remove` keeps the order of the keys after it (upstream's).
            o.shift_remove("metrics");
        }
        v
    }))
}

/// The archive policy a metric gets when none is named: the first rule whose
/// pattern matches the metric name (rules come in upstream's match order).
pub(crate) async fn policy_from_rules(state: &AppState, name: Option<&str>) -> ApiResult<String> {
    let name = name.unwrap_or("");
    let rules = state.indexer.list_archive_policy_rules().await?;
    ArchivePolicyRule::policy_for(&rules, name)
        .map(str::to_string)
        .ok_or_else(|| ApiError::no_archive_policy_rule(name))
}

/// The type named `name`, or upstream's 404.
pub(crate) async fn find_resource_type(state: &AppState, name: &str) -> ApiResult<ResourceType> {
    state
        .indexer
        .get_resource_type(name)
        .await?
        .ok_or_else(|| ApiError::resource_type_not_found(name))
}

pub(crate) fn resource_not_found(id: impl std::fmt::Display) -> ApiError {
    ApiError::resource_not_found(id)
}

/// The id in a URL, through §1.7 with the caller as creator; 404 when impossible.
pub(crate) fn url_id(id: &str, creds: &Creds) -> ApiResult<Uuid> {
    resource_uuid(id, &creds.creator()).map_err(|_| resource_not_found(id))
}

/// "get resource" on `r`: 403, or in keystone mode 404 as if it did not exist.
pub(crate) fn check_visible(
    state: &AppState,
    creds: &Creds,
    rtype: &str,
    r: &Resource,
) -> ApiResult<()> {
    crate::access::visibility::check_resource(
        &state.policy,
        "get resource",
        creds,
        rtype,
        &resource_target(r),
        || resource_not_found(r.id),
    )
}

pub(crate) async fn find_resource(
    state: &AppState,
    rtype: &str,
    id: &str,
    creds: &Creds,
) -> ApiResult<Resource> {
    let uuid = url_id(id, creds)?;
    find_resource_type(state, rtype).await?;
    state
        .indexer
        .get_resource(rtype, uuid)
        .await?
        .ok_or_else(|| resource_not_found(uuid))
}

/// The active metric `name` of the resource, or the 404 upstream gives.
pub(crate) async fn find_named_metric(
    state: &AppState,
    rtype: &str,
    id: &str,
    name: &str,
    creds: &Creds,
) -> ApiResult<Metric> {
    let uuid = url_id(id, creds)?;
    let found = state
        .indexer
        .list_metrics(&MetricQuery {
            resource_id: Some(uuid),
            name: Some(name.to_owned()),
            ..Default::default()
        })
        .await?;
    if let Some(m) = found.into_iter().next() {
        return Ok(m);
    }
    find_resource(state, rtype, id, creds).await?;
    Err(ApiError::metric_not_found(name))
}
