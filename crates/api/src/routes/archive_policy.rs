//! `/v1/archive_policy`: how long to keep what, at which granularities.

use crate::AppState;
use crate::access::auth::Creds;
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{
    Ctx, created, json_body, no_content, ok_json, ok_json_list, quote_segment,
};
use crate::wire::render::archive_policy_json as to_json;
use crate::wire::validate::{self, Path};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use carbonara::time::{TimeError, parse_timespan, timespan_from_seconds};
use carbonara::{ArchivePolicy, ArchivePolicyItem};
use serde_json::Value;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/archive_policy", get(list).post(create))
        .route(
            "/archive_policy/{name}",
            get(show).patch(update).delete(delete),
        )
}

/// A granularity or timespan: seconds as a number, or upstream's timespan syntax; positive.
fn timespan(value: &Value, path: &Path) -> ApiResult<i64> {
    let parsed = match value {
        Value::Number(n) => n
            .as_f64()
            .ok_or(TimeError::InvalidTimespan)
            .and_then(timespan_from_seconds),
        Value::String(s) => parse_timespan(s),
        _ => Err(TimeError::InvalidTimespan),
    };
    match parsed {
        Ok(ns) if ns > 0 => Ok(ns),
        Ok(_) => Err(path.invalid("Timespan must be positive")),
        Err(e) => Err(path.invalid(&e.to_string())),
    }
}

fn definition(value: &Value, path: &Path) -> ApiResult<Vec<ArchivePolicyItem>> {
    let items = validate::list(value, path)?;
    if items.is_empty() {
        return Err(path.invalid("length of value must be at least 1"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let ipath = path.index(i);
        let map = validate::object(item, &ipath, &["granularity", "points", "timespan"], &[])?;
        let mut granularity = None;
        let mut points = None;
        let mut span = None;
        for (k, v) in map {
            let kpath = ipath.key(k);
            match k.as_str() {
                "granularity" => granularity = Some(timespan(v, &kpath)?),
                "timespan" => span = Some(timespan(v, &kpath)?),
                "points" if !v.is_null() => {
                    let p = validate::integer(v, &kpath)?;
                    if p < 1 {
                        return Err(kpath.invalid("value must be at least 1"));
                    }
                    points = Some(p as u64);
                }
                _ => {}
            }
        }
        out.push(
            ArchivePolicyItem::new(granularity, points, span)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        );
    }
    Ok(out)
}

/// One of upstream's `VALID_AGGREGATION_METHODS_VALUES`: a method, `+`/`-`
/// a method, or `*`; the same rule as the policy's own resolution.
fn is_aggregation_methods_value(m: &str) -> bool {
    ArchivePolicy::resolve_aggregation_methods(Some(&[m.to_string()]), &[]).is_ok()
}

fn back_window(value: &Value, path: &Path) -> ApiResult<u64> {
    let n = validate::integer(value, path)?;
    if n < 0 {
        return Err(path.invalid("value must be at least 0"));
    }
    Ok(n as u64)
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
        .enforce_untargeted("create archive policy", &creds)?;
    let body = json_body(&headers, &body)?;
    let root = Path::root();
    let map = validate::object(
        &body,
        &root,
        &["name", "back_window", "definition", "aggregation_methods"],
        &["name", "definition"],
    )?;
    let name = validate::string(&map["name"], &root.key("name"))?.to_string();
    if name.chars().count() > 255 {
        return Err(root
            .key("name")
            .invalid("length of value must be at most 255"));
    }
    let bw = match map.get("back_window") {
        Some(v) => back_window(v, &root.key("back_window"))?,
        None => 0,
    };
    let methods: Option<Vec<String>> = match map.get("aggregation_methods") {
        None => None,
        Some(v) => {
            let p = root.key("aggregation_methods");
            let list = validate::list(v, &p)?;
            let mut out = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                // Upstream's schema is the list of valid values: anything
                // else, a non-string included, is `not a valid value`.
                let method = item
                    .as_str()
                    .filter(|m| is_aggregation_methods_value(m))
                    .ok_or_else(|| p.index(i).invalid("not a valid value"))?;
                out.push(method.to_string());
            }
            Some(out)
        }
    };
    let definition = definition(&map["definition"], &root.key("definition"))?;
    let methods = ArchivePolicy::resolve_aggregation_methods(
        methods.as_deref(),
        &state.config.default_aggregation_methods,
    )
    .map_err(|e| root.key("aggregation_methods").invalid(&e.to_string()))?;
    let ap = ArchivePolicy::new(name, bw, definition, methods)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    state.indexer.create_archive_policy(&ap).await?;
    let location = ctx.url(&format!("/v1/archive_policy/{}", quote_segment(&ap.name)));
    Ok(created(location, &to_json(&ap)))
}

async fn list(State(state): State<Arc<AppState>>, creds: Creds) -> ApiResult<Response> {
    state
        .policy
        .enforce_untargeted("list archive policy", &creds)?;
    let aps = state.indexer.list_archive_policies().await?;
    Ok(ok_json_list(&aps, to_json))
}

async fn show(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    state
        .policy
        .enforce_untargeted("get archive policy", &creds)?;
    let found = state.indexer.get_archive_policy(&name).await?;
    let ap = found.ok_or_else(|| ApiError::archive_policy_not_found(name))?;
    Ok(ok_json(&to_json(&ap)))
}

async fn update(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    state
        .policy
        .enforce_untargeted("update archive policy", &creds)?;
    let body = json_body(&headers, &body)?;
    let root = Path::root();
    let map = validate::object(
        &body,
        &root,
        &["definition", "back_window"],
        &["definition"],
    )?;
    let new_definition = definition(&map["definition"], &root.key("definition"))?;
    let bw = map
        .get("back_window")
        .map(|v| back_window(v, &root.key("back_window")))
        .transpose()?;
    let Some(current) = state.indexer.get_archive_policy(&name).await? else {
        return Err(ApiError::archive_policy_not_found(name));
    };
    let unsupported = |why: String| ApiError::archive_policy_change_unsupported(&name, &why);
    if current.definition.len() != new_definition.len() {
        return Err(unsupported("Cannot add or drop granularities".into()));
    }
    let mut old: Vec<i64> = current.definition.iter().map(|d| d.granularity).collect();
    let mut new: Vec<i64> = new_definition.iter().map(|d| d.granularity).collect();
    old.sort_unstable();
    new.sort_unstable();
    for (o, n) in old.iter().zip(&new) {
        if o != n {
            return Err(unsupported(format!(
                "{} granularity interval was changed",
                carbonara::policy::format_seconds(*o)
            )));
        }
    }
    let ap = state
        .indexer
        .update_archive_policy(&name, &new_definition, bw)
        .await?;
    Ok(ok_json(&to_json(&ap)))
}

async fn delete(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    state
        .policy
        .enforce_untargeted("delete archive policy", &creds)?;
    state.indexer.delete_archive_policy(&name).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::is_aggregation_methods_value;

    #[test]
    fn aggregation_methods_values_are_upstreams() {
        for ok in ["mean", "rate:99pct", "+max", "-1pct", "*", "-rate:count"] {
            assert!(is_aggregation_methods_value(ok), "{ok}");
        }
        for bad in ["bogus", "Mean", "+bogus", "-*", "", "100pct", "rate:"] {
            assert!(!is_aggregation_methods_value(bad), "{bad}");
        }
    }
}
