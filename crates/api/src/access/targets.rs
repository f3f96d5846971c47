//! What the policy rules see of each entity (upstream's flattened JSON), one
//! target per entity.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::policy::{Target, flatten};
use crate::wire::error::ApiResult;
use crate::wire::render::{metric_json_shown, metric_json_with_resource, resource_json};
use gnocchi_index::{Metric, Resource};
use serde_json::Value;

/// What the policy rules see of a metric.
pub(crate) fn metric_target(m: &Metric) -> Target {
    flatten(&metric_json_shown(m))
}

/// What the policy rules see of a metric with its resource (for
/// `metric_owner`, `project_id:%(resource.project_id)s`), as upstream's metric
/// controller loads it. Only keystone callers have a project to compare with,
/// so only they pay for the lookup.
pub(crate) async fn metric_target_with_resource(
    state: &AppState,
    creds: &Creds,
    m: &Metric,
) -> ApiResult<Target> {
    let resource = match m.resource_id {
        Some(rid) if creds.scoped => state
            .indexer
            .get_resource(gnocchi_index::GENERIC, rid)
            .await?
            .map_or(Value::Null, |r| resource_json(&r)),
        _ => Value::Null,
    };
    Ok(flatten(&metric_json_with_resource(m, resource)))
}

/// What the policy rules see of a resource.
pub(crate) fn resource_target(r: &Resource) -> Target {
    flatten(&resource_json(r))
}
