//! Entities as upstream renders them in JSON: archive policies, metrics (as
//! created, listed and shown) and resources. Routes and the aggregates
//! processor render through these, so one entity has one shape.

use carbonara::ArchivePolicy;
use carbonara::time::{self, format_timedelta};
use gnocchi_index::{AttrValue, Metric, Resource};
use serde_json::{Map, Value, json};

/// An archive policy.
pub(crate) fn archive_policy_json(ap: &ArchivePolicy) -> Value {
    let definition: Vec<Value> = ap
        .definition
        .iter()
        .map(|d| {
            json!({
                "timespan": d.timespan.map(format_timedelta),
                "granularity": format_timedelta(d.granularity),
                "points": d.points,
            })
        })
        .collect();
    let methods: Vec<String> = ap
        .aggregation_methods
        .iter()
        .map(|m| m.to_string())
        .collect();
    json!({
        "name": ap.name,
        "back_window": ap.back_window,
        "definition": definition,
        "aggregation_methods": methods,
    })
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

/// A metric's fields in upstream's order: `shown` (how its resource and
/// archive policy appear, which differs between the shapes) between `unit`
/// and the creator's two ids.
fn metric_fields(m: &Metric, shown: [(&str, Value); 2]) -> Value {
    let (user, project) = created_by(&m.creator);
    let mut doc = Map::new();
    doc.insert("id".into(), json!(m.id));
    doc.insert("creator".into(), json!(m.creator));
    doc.insert("name".into(), json!(m.name));
    doc.insert("unit".into(), json!(m.unit));
    for (key, value) in shown {
        doc.insert(key.into(), value);
    }
    doc.insert("created_by_user_id".into(), user);
    doc.insert("created_by_project_id".into(), project);
    Value::Object(doc)
}

/// The shape of a metric right after creation.
pub(crate) fn metric_json_created(m: &Metric) -> Value {
    metric_fields(
        m,
        [
            ("resource_id", json!(m.resource_id)),
            ("archive_policy_name", json!(m.archive_policy.name)),
        ],
    )
}

/// The shape in listings: the archive policy in full.
pub(crate) fn metric_json_listed(m: &Metric) -> Value {
    metric_fields(
        m,
        [
            ("resource_id", json!(m.resource_id)),
            ("archive_policy", archive_policy_json(&m.archive_policy)),
        ],
    )
}

/// The shape of `GET /v1/metric/ID` (with `resource` rendered by the caller):
/// the resource and archive policy in full.
pub(crate) fn metric_json_shown(m: &Metric) -> Value {
    metric_json_with_resource(m, Value::Null)
}

pub(crate) fn metric_json_with_resource(m: &Metric, resource: Value) -> Value {
    metric_fields(
        m,
        [
            ("resource", resource),
            ("archive_policy", archive_policy_json(&m.archive_policy)),
        ],
    )
}

fn iso(ns: i64) -> Value {
    Value::String(time::format_iso(ns))
}

pub(crate) fn attr_json(v: &AttrValue) -> Value {
    match v {
        AttrValue::Null => Value::Null,
        AttrValue::String(s) => json!(s),
        AttrValue::Uuid(u) => json!(u),
        AttrValue::Number(f) => json!(f),
        AttrValue::Bool(b) => json!(b),
        AttrValue::Datetime(ns) => iso(*ns),
    }
}

/// A resource as upstream renders it: 13 base keys plus the type's attributes.
pub(crate) fn resource_json(r: &Resource) -> Value {
    resource_json_ordered(r, false)
}

/// `history_order`: the order of upstream's history rows (every row of a
/// `history=true` listing), where `revision_end` comes right after `id`.
/// Keys come in upstream's order: clients such as the `gnocchi` CLI print
/// them in the order they arrive.
pub(crate) fn resource_json_ordered(r: &Resource, history_order: bool) -> Value {
    let (user, project) = created_by(&r.creator);
    let metrics: Map<String, Value> = r
        .metrics
        .iter()
        .map(|(name, id)| (name.clone(), json!(id)))
        .collect();
    let revision_end = r.revision_end.map_or(Value::Null, iso);
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id));
    if history_order {
        m.insert("revision_end".into(), revision_end.clone());
    }
    m.insert("creator".into(), json!(r.creator));
    m.insert("started_at".into(), iso(r.started_at));
    m.insert("revision_start".into(), iso(r.revision_start));
    m.insert("ended_at".into(), r.ended_at.map_or(Value::Null, iso));
    m.insert("user_id".into(), json!(r.user_id));
    m.insert("project_id".into(), json!(r.project_id));
    m.insert("original_resource_id".into(), json!(r.original_resource_id));
    m.insert("type".into(), json!(r.resource_type));
    for (name, v) in &r.attributes {
        m.insert(name.clone(), attr_json(v));
    }
    if !history_order {
        m.insert("revision_end".into(), revision_end);
    }
    m.insert("metrics".into(), Value::Object(metrics));
    m.insert("created_by_user_id".into(), user);
    m.insert("created_by_project_id".into(), project);
    Value::Object(m)
}
