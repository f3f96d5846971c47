//! Carrying out an authorized [`Plan`]: the creations, then one append.
//!
//! A creation that fails because a concurrent writer created the same thing
//! first is not an error: the request is planned again and then finds it.

use crate::plan::{Plan, Slot};
use crate::request::Request;
use crate::{IngestError, Written};
use gnocchi_index::{IndexError, Indexer, Resource, ResourceUpdate};
use gnocchi_storage::Incoming;
use std::collections::HashMap;
use uuid::Uuid;

/// The outcome of the creations.
pub(crate) enum Created {
    /// Someone else created part of it meanwhile: plan again.
    LostRace,
    /// Ids of the metrics created with resources, by (resource, name).
    Ids(HashMap<(Uuid, String), Uuid>),
}

/// Is this error a concurrent writer having created it first?
fn lost_race(e: &IndexError) -> bool {
    matches!(
        e,
        IndexError::ResourceAlreadyExists(_)
            | IndexError::NamedMetricAlreadyExists(_)
            | IndexError::ResourceNotFound(_)
    )
}

fn metric_ids(r: &Resource, ids: &mut HashMap<(Uuid, String), Uuid>) {
    for (name, id) in &r.metrics {
        ids.insert((r.id, name.clone()), *id);
    }
}

/// Create everything the plan creates, types first, then resources, then metrics.
pub(crate) async fn create(indexer: &dyn Indexer, plan: &Plan) -> Result<Created, IngestError> {
    for t in &plan.new_resource_types {
        match indexer.create_resource_type(t).await {
            Ok(_) | Err(IndexError::ResourceTypeAlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut ids = HashMap::new();
    for r in &plan.new_resources {
        match indexer.create_resource(r).await {
            Ok(created) => metric_ids(&created, &mut ids),
            Err(e) if lost_race(&e) => return Ok(Created::LostRace),
            Err(e) => return Err(e.into()),
        }
    }
    for g in &plan.grown_resources {
        let update = ResourceUpdate {
            metrics: Some(g.metrics.clone()),
            append_metrics: true,
            ..Default::default()
        };
        match indexer
            .update_resource(&g.resource.resource_type, g.resource.id, &update)
            .await
        {
            Ok(updated) => metric_ids(&updated, &mut ids),
            Err(e) if lost_race(&e) => return Ok(Created::LostRace),
            Err(e) => return Err(e.into()),
        }
    }
    for m in &plan.new_metrics {
        match indexer.create_metric(&m.metric).await {
            Ok(_) => {}
            Err(e) if lost_race(&e) => return Ok(Created::LostRace),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Created::Ids(ids))
}

/// Append every measures list of the plan, in one batch.
pub(crate) async fn append(
    incoming: &dyn Incoming,
    plan: Plan,
    ids: HashMap<(Uuid, String), Uuid>,
    mut request: Request,
) -> Result<Written, IngestError> {
    let mut batch = Vec::with_capacity(plan.appends.len());
    let mut written = Written::default();
    for a in plan.appends {
        let id = if a.id_from_resource {
            let key = (
                a.metric.resource_id.unwrap_or_default(),
                a.metric.name.clone().unwrap_or_default(),
            );
            *ids.get(&key).ok_or(IngestError::NotCreated {
                resource: key.0,
                name: key.1,
            })?
        } else {
            a.metric.id
        };
        let measures = std::mem::take(match a.slot {
            Slot::Metric(i) => &mut request.metrics[i].measures,
            Slot::Named(r, m) => &mut request.resources[r].metrics[m].measures,
        });
        if !measures.is_empty() {
            written.metrics += 1;
            written.measures += measures.len();
            batch.push((id, measures));
        }
    }
    if !batch.is_empty() {
        incoming.add_measures(batch).await?;
    }
    Ok(written)
}
