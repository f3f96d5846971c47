//! How the aggregates processor's output is rendered: `[[timestamp,
//! granularity, value], ...]` per granularity, keyed by metric or by resource;
//! and the `groupby` of resources.

use crate::language::aggregates_eval::{Output, Part, Reference};
use crate::wire::http::Ctx;
use crate::wire::json::push_json;
use crate::wire::points::{granularity_token, write_points};
use gnocchi_index::{Nulls, SortDir, SortKey};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// Append `[[ts, granularity, value], ...]` of `parts` (coarsest first).
pub(crate) fn write_parts(out: &mut String, parts: &[Part]) {
    out.push('[');
    let mut first = true;
    for p in parts {
        let token = granularity_token(p.sampling);
        write_points(out, &mut first, &token, &p.timestamps, &p.values);
    }
    out.push(']');
}

fn push_key(out: &mut String, key: &str) {
    out.push_str(&serde_json::to_string(key).unwrap_or_else(|_| "\"\"".to_string()));
    out.push_str(": ");
}

/// `{"aggregated": [...]}` or `{"<id>": {"<agg>": [...]}}` for metric-id references.
pub(crate) fn write_measures_by_id(out: &mut String, refs: &[Reference], output: &Output) {
    match output {
        Output::Aggregated(parts) => {
            out.push_str("{\"aggregated\": ");
            write_parts(out, parts);
            out.push('}');
        }
        Output::PerReference(per_ref) => {
            // Group by metric, in order of first appearance.
            let mut order: Vec<Uuid> = Vec::new();
            let mut by_metric: HashMap<Uuid, Vec<usize>> = HashMap::new();
            for (i, r) in refs.iter().enumerate() {
                by_metric
                    .entry(r.metric.id)
                    .or_insert_with(|| {
                        order.push(r.metric.id);
                        Vec::new()
                    })
                    .push(i);
            }
            out.push('{');
            for (k, id) in order.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                push_key(out, &id.to_string());
                out.push('{');
                for (n, &i) in by_metric.get(id).into_iter().flatten().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    push_key(out, &refs[i].aggregation);
                    write_parts(out, per_ref.get(i).map_or(&[][..], |p| &p[..]));
                }
                out.push('}');
            }
            out.push('}');
        }
    }
}

/// `groupby` values, sorted and each once (as upstream).
pub(crate) fn groupby_param(ctx: &Ctx) -> Vec<String> {
    let mut g: Vec<String> = ctx
        .param_list("groupby")
        .into_iter()
        .map(str::to_string)
        .collect();
    g.sort_unstable();
    g.dedup();
    g
}

/// Sort keys for a resource search: the groupby attributes, else upstream's
/// default resource order.
pub(crate) fn resource_sort(groupby: &[String]) -> Vec<SortKey> {
    let keys: Vec<&str> = if groupby.is_empty() {
        vec!["revision_start", "started_at"]
    } else {
        groupby.iter().map(String::as_str).collect()
    };
    keys.into_iter()
        .map(|k| SortKey {
            key: k.to_string(),
            dir: SortDir::Asc,
            nulls: Nulls::Default,
        })
        .collect()
}

/// A group of resources: each groupby attribute with its value.
pub(crate) type GroupKey = Vec<(String, Value)>;

/// The value of each groupby attribute of a resource, as rendered.
pub(crate) fn group_of(resource: &Value, groupby: &[String]) -> GroupKey {
    groupby
        .iter()
        .map(|k| (k.clone(), resource.get(k).cloned().unwrap_or(Value::Null)))
        .collect()
}

pub(crate) fn group_json(group: &[(String, Value)]) -> Value {
    Value::Object(group.iter().cloned().collect())
}

/// Items keyed by their group, gathered into runs of the same key: resources
/// come sorted by the groupby attributes, so each group is one run.
pub(crate) fn group_runs<T>(
    items: impl IntoIterator<Item = (GroupKey, T)>,
) -> Vec<(GroupKey, Vec<T>)> {
    let mut groups: Vec<(GroupKey, Vec<T>)> = Vec::new();
    for (key, item) in items {
        match groups.last_mut() {
            Some((k, members)) if *k == key => members.push(item),
            _ => groups.push((key, vec![item])),
        }
    }
    groups
}

/// `[{"group": {...}, "measures": ...}, ...]`, each group's measures already
/// written.
pub(crate) fn groups_json(groups: &[(GroupKey, String)]) -> String {
    let mut out = String::from("[");
    for (n, (key, measures)) in groups.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"group\": ");
        push_json(&mut out, &group_json(key));
        out.push_str(", \"measures\": ");
        out.push_str(measures);
        out.push('}');
    }
    out.push(']');
    out
}

/// `{"aggregated": [...]}` or `{"<resource id>": {"<metric name>": {"<agg>": [...]}}}`.
pub(crate) fn write_measures_by_resource(out: &mut String, refs: &[Reference], output: &Output) {
    let per_ref = match output {
        Output::Aggregated(parts) => {
            out.push_str("{\"aggregated\": ");
            write_parts(out, parts);
            out.push('}');
            return;
        }
        Output::PerReference(p) => p,
    };
    // resource → metric name → aggregation, each in order of first appearance.
    type ByName<'a> = Vec<(&'a str, Vec<usize>)>;
    let mut tree: Vec<(Uuid, ByName)> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let rid = r.resource_id.unwrap_or_default();
        let name = r.metric.name.as_deref().unwrap_or_default();
        let pos = match tree.iter().position(|(id, _)| *id == rid) {
            Some(p) => p,
            None => {
                tree.push((rid, Vec::new()));
                tree.len() - 1
            }
        };
        let metrics = &mut tree[pos].1;
        match metrics.iter_mut().find(|(n, _)| *n == name) {
            Some((_, aggs)) => aggs.push(i),
            None => metrics.push((name, vec![i])),
        }
    }
    out.push('{');
    for (k, (rid, metrics)) in tree.iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        push_key(out, &rid.to_string());
        out.push('{');
        for (n, (name, aggs)) in metrics.iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            push_key(out, name);
            out.push('{');
            let mut written: Vec<&str> = Vec::new();
            for &i in aggs {
                let agg = refs[i].aggregation.as_str();
                if written.contains(&agg) {
                    continue;
                }
                if !written.is_empty() {
                    out.push_str(", ");
                }
                written.push(agg);
                push_key(out, agg);
                write_parts(out, per_ref.get(i).map_or(&[][..], |p| &p[..]));
            }
            out.push('}');
        }
        out.push('}');
    }
    out.push('}');
}
