//! What the write protocols share (InfluxDB line protocol, Prometheus remote
//! write, the resources batch): finding or creating, on the fly, a resource,
//! its type and its named metrics, as upstream's
//! `get_or_create_resource_and_metrics`.
//!
//! Concurrent writers may race to create the same resource or metric; the
//! loser of such a race simply looks again (a bounded number of times).

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::lookup::policy_from_rules;
use crate::access::policy::Target;
use crate::wire::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use gnocchi_index::{
    AttrValue, AttributeSchema, GENERIC, IndexError, Metric, MetricSpec, NewResource, Resource,
    ResourceType, ResourceTypeState, ResourceUpdate,
};
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

/// SPEC §1.7, as resource URLs map ids (the resource module's helper).
pub(crate) fn resource_uuid(id: &str, creator: Option<&str>) -> Result<Uuid, String> {
    gnocchi_index::resource_uuid(id, creator.unwrap_or(""))
}

/// Does a resource (of any type) with this id exist?
pub(crate) async fn resource_exists(state: &AppState, id: Uuid) -> ApiResult<bool> {
    Ok(state.indexer.get_resource(GENERIC, id).await?.is_some())
}

/// The resource type a protocol writes into, created on first use when the
/// caller may create resource types.
pub(crate) struct AutoType<'a> {
    pub(crate) name: &'a str,
    pub(crate) attributes: Vec<AttributeSchema>,
}

/// A required string attribute of `min..=max` characters.
pub(crate) fn string_attribute(name: &str, min: u32, max: u32) -> AttributeSchema {
    AttributeSchema {
        name: name.to_string(),
        required: true,
        kind: gnocchi_index::AttributeKind::String {
            min_length: min,
            max_length: max,
        },
    }
}

/// Create the resource type unless it exists (checks "create resource type").
pub(crate) async fn ensure_resource_type(
    state: &AppState,
    creds: &Creds,
    rtype: &AutoType<'_>,
) -> ApiResult<()> {
    if state.indexer.get_resource_type(rtype.name).await?.is_some() {
        return Ok(());
    }
    let mut target = Target::new();
    target.insert("name".into(), Some(rtype.name.to_string()));
    target.insert("state".into(), Some("creating".into()));
    state
        .policy
        .enforce("create resource type", creds, &target)?;
    let rt = ResourceType {
        name: rtype.name.to_string(),
        state: ResourceTypeState::Creating,
        attributes: rtype.attributes.clone(),
        tablename: None,
    };
    match state.indexer.create_resource_type(&rt).await {
        Ok(_) | Err(IndexError::ResourceTypeAlreadyExists(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What the policy rules see of a resource.
fn resource_target(r: &Resource) -> Target {
    let mut t = Target::new();
    let (user, project) = match r
        .creator
        .as_deref()
        .map(|c| c.split_once(':').unwrap_or((c, "")))
    {
        Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
        None => (None, None),
    };
    t.insert("id".into(), Some(r.id.to_string()));
    t.insert("type".into(), Some(r.resource_type.clone()));
    t.insert(
        "original_resource_id".into(),
        Some(r.original_resource_id.clone()),
    );
    t.insert("creator".into(), r.creator.clone());
    t.insert("created_by_user_id".into(), user);
    t.insert("created_by_project_id".into(), project);
    t.insert("user_id".into(), r.user_id.clone());
    t.insert("project_id".into(), r.project_id.clone());
    for (k, v) in &r.attributes {
        if let AttrValue::String(s) = v {
            t.insert(k.clone(), Some(s.clone()));
        }
    }
    t
}

/// New metric definitions for `names`, archive policies from the rules.
async fn new_metric_specs(
    state: &AppState,
    names: &[&str],
) -> ApiResult<Vec<(String, MetricSpec)>> {
    let mut specs = Vec::with_capacity(names.len());
    for name in names {
        if name.contains('/') {
            return Err(ApiError::slash_in_metric_name());
        }
        specs.push((
            name.to_string(),
            MetricSpec::New {
                archive_policy_name: policy_from_rules(state, Some(name)).await?,
                unit: None,
            },
        ));
    }
    Ok(specs)
}

/// The active metrics of `resource` named in `names`.
async fn metrics_of(
    state: &AppState,
    resource: &Resource,
    names: &[&str],
) -> ApiResult<Vec<Metric>> {
    let by_name: HashMap<&str, Uuid> = resource
        .metrics
        .iter()
        .map(|(n, id)| (n.as_str(), *id))
        .collect();
    let ids: Vec<Uuid> = names
        .iter()
        .filter_map(|n| by_name.get(n).copied())
        .collect();
    Ok(state.indexer.get_metrics(&ids).await?)
}

/// How many times a lost creation race is retried before giving up.
const ATTEMPTS: usize = 8;

/// The metrics `names` of the resource `id` of type `rtype`, creating the type
/// (when it has `attributes` to create it with), the resource (with
/// `attributes`) and the missing metrics (archive policies from the rules)
/// as needed. 409 when the id is taken by a resource of another type.
pub(crate) async fn get_or_create_resource_and_metrics(
    state: &AppState,
    creds: &Creds,
    id: Uuid,
    original_id: &str,
    names: &[&str],
    attributes: &[(&str, &str)],
    rtype: &AutoType<'_>,
) -> ApiResult<Vec<Metric>> {
    let creator = creds.creator();
    for _ in 0..ATTEMPTS {
        let resource = match state.indexer.get_resource(rtype.name, id).await {
            Ok(r) => r,
            Err(IndexError::ResourceTypeNotFound(_)) => {
                ensure_resource_type(state, creds, rtype).await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match resource {
            Some(r) => {
                let missing: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| !r.metrics.iter().any(|(m, _)| m == n))
                    .collect();
                if missing.is_empty() {
                    return metrics_of(state, &r, names).await;
                }
                state
                    .policy
                    .enforce("update resource", creds, &resource_target(&r))?;
                let update = ResourceUpdate {
                    metrics: Some(new_metric_specs(state, &missing).await?),
                    append_metrics: true,
                    ..Default::default()
                };
                match state.indexer.update_resource(rtype.name, id, &update).await {
                    Ok(r) => return metrics_of(state, &r, names).await,
                    Err(
                        IndexError::NamedMetricAlreadyExists(_) | IndexError::ResourceNotFound(_),
                    ) => {
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                let mut target = Target::new();
                target.insert("id".into(), Some(id.to_string()));
                target.insert("resource_type".into(), Some(rtype.name.to_string()));
                target.insert("creator".into(), Some(creator.clone()));
                target.insert("original_resource_id".into(), Some(original_id.to_string()));
                for (k, v) in attributes {
                    target.insert((*k).to_string(), Some((*v).to_string()));
                }
                state.policy.enforce("create resource", creds, &target)?;
                let new = NewResource {
                    id,
                    resource_type: rtype.name.to_string(),
                    original_resource_id: original_id.to_string(),
                    creator: Some(creator.clone()),
                    user_id: None,
                    project_id: None,
                    started_at: None,
                    ended_at: None,
                    attributes: attributes
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), AttrValue::String((*v).to_string())))
                        .collect(),
                    metrics: new_metric_specs(state, names).await?,
                };
                match state.indexer.create_resource(&new).await {
                    Ok(r) => return metrics_of(state, &r, names).await,
                    Err(IndexError::ResourceAlreadyExists(_)) => {
                        // Taken under another type: a conflict. Same type: a
                        // concurrent writer won the race; look again.
                        if let Some(g) = state.indexer.get_resource(GENERIC, id).await?
                            && g.resource_type != rtype.name
                        {
                            return Err(ApiError::conflict(json!({
                                "cause": "Resource already exists",
                                "detail": id.to_string(),
                            })));
                        }
                        continue;
                    }
                    Err(IndexError::NamedMetricAlreadyExists(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "Unable to create resource {id} and its metrics: too much contention, please retry"
        ),
    ))
}

/// "post measures" on many metrics at once. The target the rules see renders
/// the whole metric (archive policy included) and costs more than the rest of
/// a measure's ingestion, so decisions are memoized per (creator, resource):
/// what upstream's rules and ours look at (`creator`, `created_by_*`, the
/// resource's ownership). A policy file keying "post measures" on other
/// metric fields would need this memo removed.
pub(crate) struct PostMeasuresCheck<'s> {
    state: &'s AppState,
    creds: &'s Creds,
    decided: HashMap<(Option<String>, Option<Uuid>), bool>,
}

impl<'s> PostMeasuresCheck<'s> {
    pub(crate) fn new(state: &'s AppState, creds: &'s Creds) -> Self {
        PostMeasuresCheck {
            state,
            creds,
            decided: HashMap::new(),
        }
    }

    /// 403 unless the caller may post measures to `metric`.
    pub(crate) fn check(&mut self, metric: &Metric) -> ApiResult<()> {
        let key = (metric.creator.clone(), metric.resource_id);
        let allowed = match self.decided.get(&key) {
            Some(a) => *a,
            None => {
                let a = self.state.policy.allowed(
                    "post measures",
                    self.creds,
                    &crate::access::targets::metric_target(metric),
                );
                self.decided.insert(key, a);
                a
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}
