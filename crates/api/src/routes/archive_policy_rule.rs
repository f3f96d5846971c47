//! `/v1/archive_policy_rule`: which archive policy a new metric gets from its name.

use crate::AppState;
use crate::access::auth::Creds;
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{
    Ctx, created, json_body, no_content, ok_json, ok_json_list, quote_segment,
};
use crate::wire::validate::{self, Path};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use gnocchi_index::{ArchivePolicyRule, IndexError};
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/archive_policy_rule", get(list).post(create))
        .route(
            "/archive_policy_rule/{name}",
            get(show).patch(rename).delete(delete),
        )
}

fn to_json(rule: &ArchivePolicyRule) -> Value {
    json!({
        "name": rule.name,
        "archive_policy_name": rule.archive_policy_name,
        "metric_pattern": rule.metric_pattern,
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
        .enforce_untargeted("create archive policy rule", &creds)?;
    let body = json_body(&headers, &body)?;
    let root = Path::root();
    let fields = ["name", "metric_pattern", "archive_policy_name"];
    let map = validate::object(&body, &root, &fields, &fields)?;
    let mut values = Vec::with_capacity(3);
    for f in fields {
        let s = validate::string(&map[f], &root.key(f))?;
        if s.chars().count() > 255 {
            return Err(root.key(f).invalid("length of value must be at most 255"));
        }
        values.push(s.to_string());
    }
    let rule = ArchivePolicyRule {
        name: values[0].clone(),
        metric_pattern: values[1].clone(),
        archive_policy_name: values[2].clone(),
    };
    match state.indexer.create_archive_policy_rule(&rule).await {
        Err(IndexError::ArchivePolicyNotFound(ap)) => {
            return Err(ApiError::rule_archive_policy_not_found(&ap));
        }
        other => other?,
    }
    let location = ctx.url(&format!(
        "/v1/archive_policy_rule/{}",
        quote_segment(&rule.name)
    ));
    Ok(created(location, &to_json(&rule)))
}

async fn list(State(state): State<Arc<AppState>>, creds: Creds) -> ApiResult<Response> {
    state
        .policy
        .enforce_untargeted("list archive policy rule", &creds)?;
    let rules = state.indexer.list_archive_policy_rules().await?;
    Ok(ok_json_list(&rules, to_json))
}

async fn show(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    state
        .policy
        .enforce_untargeted("get archive policy rule", &creds)?;
    let found = state.indexer.get_archive_policy_rule(&name).await?;
    let rule = found.ok_or(IndexError::ArchivePolicyRuleNotFound(name))?;
    Ok(ok_json(&to_json(&rule)))
}

async fn rename(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    state
        .policy
        .enforce_untargeted("update archive policy rule", &creds)?;
    let body = json_body(&headers, &body)?;
    let root = Path::root();
    let map = validate::object(&body, &root, &["name"], &["name"])?;
    let new_name = validate::string(&map["name"], &root.key("name"))?;
    match state
        .indexer
        .rename_archive_policy_rule(&name, new_name)
        .await
    {
        Ok(rule) => Ok(ok_json(&to_json(&rule))),
        Err(IndexError::ArchivePolicyRuleAlreadyExists(taken)) => {
            Err(ApiError::archive_policy_rule_name_taken(&name, &taken))
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Response> {
    state
        .policy
        .enforce_untargeted("delete archive policy rule", &creds)?;
    state.indexer.delete_archive_policy_rule(&name).await?;
    Ok(no_content())
}
