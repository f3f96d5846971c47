//! `limit`, `marker`, `sort` query parameters and the `Link: rel="next"` header.

use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{Ctx, ok_json_list, urlencode};
use axum::http::HeaderValue;
use axum::response::Response;
use gnocchi_index::{Nulls, SortDir, SortKey};
use serde_json::Value;

pub(crate) struct Page {
    pub(crate) limit: usize,
    pub(crate) marker: Option<String>,
    /// As the client wrote them (`name:desc`), for the next link.
    pub(crate) sort_raw: Vec<String>,
    pub(crate) sort: Vec<SortKey>,
}

pub(crate) fn parse(ctx: &Ctx, max_limit: usize, default_sort: &[&str]) -> ApiResult<Page> {
    let limit = match ctx.param("limit") {
        None => max_limit,
        Some(l) => {
            let n: i64 = l.trim().parse().map_err(|_| {
                ApiError::argument(
                    "limit",
                    format!(
                        "Invalid value for limit: invalid literal for int() with base 10: '{l}'"
                    ),
                )
            })?;
            if n <= 0 {
                return Err(ApiError::argument("limit", "Must be greater than 0"));
            }
            (n as usize).min(max_limit)
        }
    };
    let mut sort_raw: Vec<String> = ctx
        .params_all("sort")
        .into_iter()
        .map(str::to_string)
        .collect();
    if sort_raw.is_empty() {
        sort_raw = default_sort.iter().map(|s| s.to_string()).collect();
    }
    let mut sort = Vec::with_capacity(sort_raw.len());
    for s in &sort_raw {
        let (key, dir) = s.split_once(':').unwrap_or((s.as_str(), "asc"));
        let (dir, nulls) = match dir {
            "asc" => (SortDir::Asc, Nulls::Default),
            "desc" => (SortDir::Desc, Nulls::Default),
            "asc-nullsfirst" => (SortDir::Asc, Nulls::First),
            "asc-nullslast" => (SortDir::Asc, Nulls::Last),
            "desc-nullsfirst" => (SortDir::Desc, Nulls::First),
            "desc-nullslast" => (SortDir::Desc, Nulls::Last),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Invalid pagination: `Unknown sort direction `{dir}', must be 'asc' or 'desc''"
                )));
            }
        };
        sort.push(SortKey {
            key: key.to_string(),
            dir,
            nulls,
        });
    }
    Ok(Page {
        limit,
        marker: ctx.param("marker").map(str::to_string),
        sort_raw,
        sort,
    })
}

/// 200 with one page of a listing, each item rendered by `render`, and the
/// link to the next page (whose marker is `marker` of the last item).
pub(crate) fn ok_json_page<T>(
    ctx: &Ctx,
    page: &Page,
    items: &[T],
    render: impl Fn(&T) -> Value,
    marker: impl Fn(&T) -> String,
) -> Response {
    let mut resp = ok_json_list(items, render);
    add_next_link(&mut resp, ctx, page, items.len(), items.last().map(marker));
    resp
}

/// Add `Link: <...>; rel="next"` when the page is full: the same query with the
/// effective limit, the last item as marker and the effective sort, keys sorted.
pub(crate) fn add_next_link(
    resp: &mut Response,
    ctx: &Ctx,
    page: &Page,
    count: usize,
    last_marker: Option<String>,
) {
    let Some(marker) = last_marker else { return };
    if count < page.limit {
        return;
    }
    let mut params: Vec<(String, String)> = ctx
        .params
        .iter()
        .filter(|(k, _)| k != "limit" && k != "marker" && k != "sort")
        .cloned()
        .collect();
    params.push(("limit".into(), page.limit.to_string()));
    params.push(("marker".into(), marker));
    params.extend(
        page.sort_raw
            .iter()
            .map(|s| ("sort".to_string(), s.clone())),
    );
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let link = format!(
        "<{}?{}>; rel=\"next\"",
        ctx.url(&ctx.path),
        urlencode(&params)
    );
    if let Ok(v) = HeaderValue::from_str(&link) {
        resp.headers_mut().insert("link", v);
    }
}
