//! `/v1/resource_type`: create, list, show, JSON-Patch and delete resource types.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::lookup::find_resource_type as find;
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{
    Ctx, created, json_body, json_body_typed, no_content, ok_json, ok_json_list, quote_segment,
};
use crate::wire::validate::{self, Path};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use gnocchi_index::{
    AttrValue, AttributeKind, AttributeSchema, ResourceType, ResourceTypeState, ResourceTypeUpdate,
};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/resource_type", get(list).post(create))
        .route(
            "/resource_type/{name}",
            get(show).patch(patch).delete(delete),
        )
}

/// Names a type's attributes may not take: the base fields of every resource.
const INVALID_NAMES: &[&str] = &[
    "id",
    "type",
    "metrics",
    "revision",
    "revision_start",
    "revision_end",
    "started_at",
    "ended_at",
    "user_id",
    "project_id",
    "created_by_user_id",
    "created_by_project_id",
    "get_metric",
    "creator",
    // Not refused upstream, but it would shadow the base field in every JSON.
    "original_resource_id",
];

/// Longest and shortest `min_length`/`max_length` bounds.
const STRING_MAX: u32 = 256;

pub(crate) fn attribute_json(a: &AttributeSchema) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(a.kind.type_name()));
    m.insert("required".into(), json!(a.required));
    match &a.kind {
        // In upstream's order, which clients print as is.
        AttributeKind::String {
            min_length,
            max_length,
        } => {
            m.insert("max_length".into(), json!(max_length));
            m.insert("min_length".into(), json!(min_length));
        }
        AttributeKind::Number { min, max } => {
            m.insert("min".into(), json!(min));
            m.insert("max".into(), json!(max));
        }
        _ => {}
    }
    Value::Object(m)
}

pub(crate) fn to_json(rt: &ResourceType) -> Value {
    let attrs: Map<String, Value> = rt
        .attributes
        .iter()
        .map(|a| (a.name.clone(), attribute_json(a)))
        .collect();
    json!({"name": rt.name, "attributes": attrs, "state": rt.state.as_str()})
}

/// A `min`/`max` bound, kept as written (integer or float) as upstream does.
fn real(v: &Value, path: &Path) -> ApiResult<Option<serde_json::Number>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(Some(n.clone())),
        _ => Err(path.invalid("expected Real")),
    }
}

fn bounded_int(v: &Value, path: &Path, min: u32, max: u32) -> ApiResult<u32> {
    let n = v
        .as_i64()
        .filter(|_| !v.is_boolean())
        .ok_or_else(|| path.invalid("expected int"))?;
    if n < i64::from(min) {
        return Err(path.invalid(&format!("value must be at least {min}")));
    }
    if n > i64::from(max) {
        return Err(path.invalid(&format!("value must be at most {max}")));
    }
    Ok(n as u32)
}

/// One attribute definition; `with_options` (PATCH) also takes `options.fill`.
/// Returns the schema and the fill value, if any.
fn parse_attribute(
    name: &str,
    def: &Value,
    path: &Path,
    with_options: bool,
) -> ApiResult<AttributeDef> {
    let map = def
        .as_object()
        .ok_or_else(|| path.invalid("expected a dictionary"))?;
    let type_name = map
        .get("type")
        .ok_or_else(|| path.key("type").key_error("required key not provided"))?;
    let extra: &[&str] = match type_name.as_str() {
        Some("string") => &["min_length", "max_length"],
        Some("number") => &["min", "max"],
        Some("uuid" | "bool" | "datetime") => &[],
        _ => return Err(path.key("type").invalid("not a valid value")),
    };
    let mut allowed = vec!["type", "required"];
    allowed.extend_from_slice(extra);
    if with_options {
        allowed.push("options");
    }
    validate::object(def, path, &allowed, &["type"])?;
    let required = match map.get("required") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(path.key("required").invalid("expected bool")),
    };
    let kind = attribute_kind(type_name.as_str(), map, path)?;
    check_attribute(name, &kind)?;
    let schema = AttributeSchema {
        name: name.to_owned(),
        required,
        kind,
    };
    let fill = fill_option(&schema, map.get("options"), path)?;
    Ok((schema, fill))
}

/// The kind of a (known) `type` with its bounds.
fn attribute_kind(
    type_name: Option<&str>,
    map: &Map<String, Value>,
    path: &Path,
) -> ApiResult<AttributeKind> {
    Ok(match type_name {
        Some("string") => {
            let min_length = match map.get("min_length") {
                None => 0,
                Some(v) => bounded_int(v, &path.key("min_length"), 0, STRING_MAX)?,
            };
            let max_length = match map.get("max_length") {
                None => STRING_MAX,
                Some(v) => bounded_int(v, &path.key("max_length"), 1, STRING_MAX)?,
            };
            AttributeKind::String {
                min_length,
                max_length,
            }
        }
        Some("number") => AttributeKind::Number {
            min: map
                .get("min")
                .map_or(Ok(None), |v| real(v, &path.key("min")))?,
            max: map
                .get("max")
                .map_or(Ok(None), |v| real(v, &path.key("max")))?,
        },
        Some("uuid") => AttributeKind::Uuid,
        Some("bool") => AttributeKind::Bool,
        _ => AttributeKind::Datetime,
    })
}

/// Upstream's checks of an attribute's name and of its bounds' order.
fn check_attribute(name: &str, kind: &AttributeKind) -> ApiResult<()> {
    if name.chars().count() > 63
        || INVALID_NAMES.contains(&name)
        || !name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return Err(ApiError::invalid_input_text(format!(
            "Resource attribute name {name} is invalid"
        )));
    }
    let bounds = match kind {
        AttributeKind::String {
            min_length,
            max_length,
        } => (min_length > max_length).then(|| (min_length.to_string(), max_length.to_string())),
        AttributeKind::Number {
            min: Some(min),
            max: Some(max),
        } => (as_f64(min) > as_f64(max)).then(|| (min.to_string(), max.to_string())),
        _ => None,
    };
    if let Some((min, max)) = bounds {
        return Err(ApiError::invalid_input_text(format!(
            "Resource attribute value min (or min_length) {min} must be less  than or equal to max (or max_length) {max}!"
        )));
    }
    Ok(())
}

/// `options.fill` (PATCH): the value existing resources get, checked
/// against the attribute's schema.
fn fill_option(
    schema: &AttributeSchema,
    options: Option<&Value>,
    path: &Path,
) -> ApiResult<Option<AttrValue>> {
    let Some(options) = options else {
        return Ok(None);
    };
    let opath = path.key("options");
    let opts = validate::object(options, &opath, &["fill"], &[])?;
    let Some(v) = opts.get("fill") else {
        return Ok(None);
    };
    let value = crate::wire::attributes::attribute_value(schema, v, &opath.key("fill"));
    value.map(Some).map_err(|e| {
        let reason = e.description["reason"]
            .as_str()
            .map_or_else(String::new, |r| {
                r.split(" for dictionary value")
                    .next()
                    .unwrap_or(r)
                    .to_owned()
            });
        ApiError::invalid_input_text(format!(
            "Option 'fill' of resource attribute {} is invalid: {reason}",
            schema.name
        ))
    })
}

fn as_f64(n: &serde_json::Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

/// `{"name", "attributes"?}` (PATCH: also `state`, ignored, and `options` in attributes).
/// An attribute definition and its `options.fill`.
type AttributeDef = (AttributeSchema, Option<AttrValue>);

fn parse_type(body: &Value, with_options: bool) -> ApiResult<(String, Vec<AttributeDef>)> {
    let root = Path::root();
    let allowed: &[&str] = if with_options {
        &["name", "attributes", "state"]
    } else {
        &["name", "attributes"]
    };
    let map = validate::object(body, &root, allowed, &["name"])?;
    let name = validate::string(&map["name"], &root.key("name"))?.to_owned();
    let mut attributes = Vec::new();
    if let Some(attrs) = map.get("attributes") {
        let apath = root.key("attributes");
        let attrs = attrs
            .as_object()
            .ok_or_else(|| apath.invalid("expected a dictionary"))?;
        for (attr_name, def) in attrs {
            attributes.push(parse_attribute(
                attr_name,
                def,
                &apath.key(attr_name),
                with_options,
            )?);
        }
    }
    Ok((name, attributes))
}

async fn create(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&headers, &body)?;
    let (name, attributes) = parse_type(&body, false)?;
    state
        .policy
        .enforce_untargeted("create resource type", &creds)?;
    let rt = ResourceType {
        name,
        state: ResourceTypeState::Creating,
        attributes: attributes.into_iter().map(|(a, _)| a).collect(),
        tablename: None,
    };
    let rt = state.indexer.create_resource_type(&rt).await?;
    let location = ctx.url(&format!("/v1/resource_type/{}", quote_segment(&rt.name)));
    Ok(created(location, &to_json(&rt)))
}

async fn list(State(state): State<Arc<AppState>>, creds: Creds) -> ApiResult<Response> {
    state
        .policy
        .enforce_untargeted("list resource type", &creds)?;
    let types = state.indexer.list_resource_types().await?;
    Ok(ok_json_list(&types, to_json))
}

async fn show(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    let rt = find(&state, &name).await?;
    state
        .policy
        .enforce_untargeted("get resource type", &creds)?;
    Ok(ok_json(&to_json(&rt)))
}

/// Apply RFC 6902 `add`/`remove` operations (the only ones accepted) to `doc`.
fn apply_patch(doc: &mut Value, ops: &[(String, String, Option<Value>)]) -> ApiResult<()> {
    for (op, path, value) in ops {
        let mut segments: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        let Some(last) = segments.pop() else {
            return Err(ApiError::bad_request("Only attributes can be modified"));
        };
        let mut parent = &mut *doc;
        for seg in &segments {
            parent = parent.get_mut(seg.as_str()).ok_or_else(|| {
                ApiError::bad_request(format!("can't reach a non-existent object '{seg}'"))
            })?;
        }
        let Some(obj) = parent.as_object_mut() else {
            return Err(ApiError::bad_request(format!(
                "can't modify a non-object at '{path}'"
            )));
        };
        if op == "add" {
            obj.insert(last, value.clone().unwrap_or(Value::Null));
        } else if obj.remove(&last).is_none() {
            return Err(ApiError::bad_request(format!(
                "can't remove a non-existent object '{last}'"
            )));
        }
    }
    Ok(())
}

/// The JSON-Patch body: `[{"op": "add"|"remove", "path": "/attributes...", "value"?: {...}}]`.
fn parse_patch_ops(body: &Value) -> ApiResult<Vec<(String, String, Option<Value>)>> {
    let root = Path::root();
    let list = validate::list(body, &root)?;
    let mut ops = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let p = root.index(i);
        let map = validate::object(item, &p, &["op", "path", "value"], &["op", "path"])?;
        let op = match map["op"].as_str() {
            Some(op @ ("add" | "remove")) => op.to_owned(),
            _ => return Err(p.key("op").invalid("not a valid value")),
        };
        let path = validate::string(&map["path"], &p.key("path"))?;
        if !path.starts_with("/attributes") {
            return Err(p.key("path").invalid("Only attributes can be modified"));
        }
        let value = match map.get("value") {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(p.key("value").invalid("expected dict")),
        };
        ops.push((op, path.to_owned(), value));
    }
    Ok(ops)
}

async fn patch(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let rt = find(&state, &name).await?;
    state
        .policy
        .enforce_untargeted("update resource type", &creds)?;
    let body = json_body_typed(&headers, &body, "application/json-patch+json")?;
    let ops = parse_patch_ops(&body)?;
    let mut next = to_json(&rt);
    apply_patch(&mut next, &ops)?;
    if let Some(m) = next.as_object_mut() {
        m.remove("state");
    }
    let (_, next_attrs) = parse_type(&next, true)?;

    let mut update = ResourceTypeUpdate::default();
    for current in &rt.attributes {
        if !next_attrs.iter().any(|(a, _)| a.name == current.name) {
            update.remove.push(current.name.clone());
        }
    }
    for (attr, fill) in next_attrs {
        match rt.attribute(&attr.name) {
            None => {
                if attr.required && fill.is_none() {
                    return Err(ApiError::invalid_input_text(format!(
                        "Option 'fill' of resource attribute {} is invalid: must not be empty if required=True",
                        attr.name
                    )));
                }
                update.add.push((attr, fill));
            }
            Some(old) if *old == attr => {}
            Some(old) => {
                if old.kind.type_name() != attr.kind.type_name() {
                    return Err(ApiError::bad_request(format!(
                        "Type update is not available yet. Changing {} to {} for attribute {} of resource {}",
                        old.kind.type_name(),
                        attr.kind.type_name(),
                        attr.name,
                        rt.name
                    )));
                }
                if attr.required && !old.required && fill.is_none() {
                    return Err(ApiError::invalid_input_text(format!(
                        "Option 'fill' of resource attribute {} is invalid: must not be empty if required=True",
                        attr.name
                    )));
                }
                update.update.push((attr, fill));
            }
        }
    }
    if update.add.is_empty() && update.remove.is_empty() && update.update.is_empty() {
        return Ok(ok_json(&to_json(&rt)));
    }
    let rt = state.indexer.update_resource_type(&name, &update).await?;
    Ok(ok_json(&to_json(&rt)))
}

async fn delete(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    find(&state, &name).await?;
    state
        .policy
        .enforce_untargeted("delete resource type", &creds)?;
    state.indexer.delete_resource_type(&name).await?;
    Ok(no_content())
}
