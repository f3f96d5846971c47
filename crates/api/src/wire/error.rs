//! Every error the API answers, and the one place where errors become HTTP.
//!
//! Handlers return [`ApiError`]; [`IntoResponse`] only records the status and
//! description in the response; the [`render_errors`] middleware, which knows the
//! request's `Accept` header, then writes upstream's body: `{"code", "title",
//! "description"}` when the client prefers JSON, otherwise WebOb's plain-text page
//! (which is what upstream's clients and tests read when they send no `Accept`).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gnocchi_engine::{EngineError, ReadError};
use gnocchi_index::IndexError;
use serde_json::{Value, json};

#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    /// A string, or an object such as `{"cause", "reason", "detail"}`.
    pub(crate) description: Value,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn new(status: StatusCode, description: impl Into<Value>) -> Self {
        ApiError {
            status,
            description: description.into(),
        }
    }
    pub(crate) fn bad_request(description: impl Into<Value>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description)
    }
    pub(crate) fn not_found(description: impl Into<Value>) -> Self {
        Self::new(StatusCode::NOT_FOUND, description)
    }
    pub(crate) fn conflict(description: impl Into<Value>) -> Self {
        Self::new(StatusCode::CONFLICT, description)
    }
    pub(crate) fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "")
    }
    pub(crate) fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "")
    }
    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("The request media type {content_type} is not supported by this server."),
        )
    }
    pub(crate) fn not_acceptable() -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "")
    }
    pub(crate) fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
    /// 503: a backend (index database, incoming or aggregate store) cannot be
    /// reached now. Unlike a 500, the client learns which one and that a retry
    /// may succeed; nothing was written (a write is acknowledged only once
    /// every backend it needs took it).
    pub(crate) fn backend_unavailable(e: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %e, "backend unavailable");
        Self::service_unavailable(format!("{e} (the backend is unavailable; retry later)"))
    }
    /// voluptuous-style schema error: `{"cause": "Invalid input", "reason", "detail": [path]}`.
    pub(crate) fn invalid_input(reason: impl Into<String>, detail: Vec<String>) -> Self {
        Self::bad_request(
            json!({"cause": "Invalid input", "reason": reason.into(), "detail": detail}),
        )
    }
    /// `{"cause": "Value error", "detail": detail, "reason": reason}`: a
    /// line protocol body that does not parse.
    pub(crate) fn value_error(detail: &str, reason: impl Into<String>) -> Self {
        Self::bad_request(
            json!({"cause": "Value error", "detail": detail, "reason": reason.into()}),
        )
    }
    /// `{"cause": "Attribute value error", "detail": attribute, "reason": reason}`.
    pub(crate) fn attribute_value_error(attribute: &str, reason: impl Into<String>) -> Self {
        Self::bad_request(
            json!({"cause": "Attribute value error", "detail": attribute, "reason": reason.into()}),
        )
    }
    /// 400: a compressed or binary body that cannot be decoded.
    pub(crate) fn undecodable_body(reason: impl Into<String>) -> Self {
        Self::bad_request(
            json!({"cause": "Unable to decode body", "reason": reason.into(), "detail": []}),
        )
    }
    /// 415: a `Content-Encoding` other than gzip and identity.
    pub(crate) fn unsupported_encoding(encoding: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {encoding} is not supported"),
        )
    }
    /// 413: a body that inflates beyond `[api] max_body_size`.
    pub(crate) fn inflated_body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The decompressed body is larger than allowed",
        )
    }
    /// 501: an InfluxDB query other than `CREATE DATABASE`.
    pub(crate) fn query_not_implemented() -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            json!({"cause": "Not implemented error", "detail": "q", "reason": "Query not implemented"}),
        )
    }
    /// `{"cause": "Argument value error", "detail": param, "reason": reason}`.
    pub(crate) fn argument(param: &str, reason: impl Into<String>) -> Self {
        Self::bad_request(
            json!({"cause": "Argument value error", "detail": param, "reason": reason.into()}),
        )
    }
}

/// Upstream's errors that more than one endpoint answers, named once so the
/// wording cannot drift between them.
impl ApiError {
    /// 404 `Metric <id> does not exist`.
    pub(crate) fn metric_not_found(id: impl std::fmt::Display) -> Self {
        Self::not_found(format!("Metric {id} does not exist"))
    }
    /// 404 `Resource <id> does not exist`.
    pub(crate) fn resource_not_found(id: impl std::fmt::Display) -> Self {
        Self::not_found(format!("Resource {id} does not exist"))
    }
    /// 404 `Resource type <name> does not exist`.
    pub(crate) fn resource_type_not_found(name: impl std::fmt::Display) -> Self {
        Self::not_found(format!("Resource type {name} does not exist"))
    }
    /// 404 `Archive policy <name> does not exist`.
    pub(crate) fn archive_policy_not_found(name: impl std::fmt::Display) -> Self {
        Self::not_found(format!("Archive policy {name} does not exist"))
    }
    /// 404: the method is not one of the metric's archive policy.
    pub(crate) fn aggregation_method_not_found(metric: uuid::Uuid, aggregation: &str) -> Self {
        Self::not_found(json!({
            "cause": "Aggregation method does not exist for this metric",
            "detail": {"metric": metric.to_string(), "aggregation_method": aggregation},
        }))
    }
    /// 404: upstream's `AggregationDoesNotExist` (method at a granularity).
    pub(crate) fn aggregation_not_found(
        aggregation: &str,
        granularity: i64,
        metric: uuid::Uuid,
    ) -> Self {
        Self::not_found(format!(
            "Aggregation method '{aggregation}' at granularity '{}' for metric {metric} does not exist",
            carbonara::policy::format_seconds(granularity)
        ))
    }
    /// 400: metric names are URL segments.
    pub(crate) fn slash_in_metric_name() -> Self {
        Self::bad_request("'/' is not supported in metric name")
    }
    /// 403 with upstream's message (rather than the empty one of a policy refusal).
    pub(crate) fn insufficient_privileges() -> Self {
        Self::new(StatusCode::FORBIDDEN, "Insufficient privileges")
    }
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "")
    }
    pub(crate) fn precondition_failed() -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, "")
    }
    pub(crate) fn not_modified() -> Self {
        Self::new(StatusCode::NOT_MODIFIED, "")
    }
    /// 503 with a message (a metric locked by metricd, the identity service down).
    pub(crate) fn service_unavailable(description: impl Into<Value>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, description)
    }
    /// 503: keystone could not be asked whether a token is valid.
    pub(crate) fn identity_service_unavailable() -> Self {
        Self::service_unavailable("The identity service is unavailable")
    }
    /// The same error answered as a 400: where upstream reports a missing
    /// entity named in a body (not in the URL) as bad input.
    pub(crate) fn into_bad_request(mut self) -> Self {
        self.status = StatusCode::BAD_REQUEST;
        self
    }
}

/// Upstream's errors of one endpoint family each, named here so that every
/// status and body the API answers is built in this file.
impl ApiError {
    /// 400 `Invalid input: <message>`: voluptuous's message as a plain string.
    pub(crate) fn invalid_input_text(message: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("Invalid input: {message}"))
    }
    /// 400 `Invalid filter: <message>`: a `?filter=` string that does not parse.
    pub(crate) fn invalid_filter(message: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("Invalid filter: {message}"))
    }
    /// 400: `resample` without `granularity`.
    pub(crate) fn resample_without_granularity() -> Self {
        Self::bad_request("A granularity must be specified to resample")
    }
    /// 400: the rule names an archive policy that does not exist.
    pub(crate) fn rule_archive_policy_not_found(name: &str) -> Self {
        Self::bad_request(json!({
            "cause": "Archive policy does not exist",
            "reason": format!("Archive policy {name} does not exist"),
            "detail": name,
        }))
    }
    /// 400: upstream's `UnsupportedArchivePolicyChange`.
    pub(crate) fn archive_policy_change_unsupported(name: &str, why: &str) -> Self {
        Self::bad_request(format!(
            "Archive policy {name} does not support change: {why}"
        ))
    }
    /// 400: renaming a rule to the name of another one.
    pub(crate) fn archive_policy_rule_name_taken(name: &str, taken: &str) -> Self {
        Self::bad_request(format!(
            "Archive policy rule {name} does not support change: Archive policy rule {taken} already exists."
        ))
    }
    /// 409: a metric of that name is already on the resource.
    pub(crate) fn named_metric_conflict(name: &str) -> Self {
        Self::conflict(format!("Named metric {name} already exists"))
    }
    /// 400: a batch delete of resources needs a query.
    pub(crate) fn empty_delete_query() -> Self {
        Self::bad_request("caution: the query can not be empty, or it will delete entire database")
    }
    /// 400: a `groupby` attribute the resources cannot be sorted by.
    pub(crate) fn invalid_groupby() -> Self {
        Self::bad_request("Invalid groupby attribute")
    }
    /// 400: a `reaggregation` that is no reduction.
    pub(crate) fn invalid_reaggregation(value: &str) -> Self {
        Self::bad_request(format!(
            "Invalid reaggregation value {value}, must be one of mean, median, std, min, max, sum, var, count"
        ))
    }
    /// 400: more values than one aggregation may hold in memory.
    pub(crate) fn too_many_points_to_aggregate(
        series: usize,
        timestamps: usize,
        max_values: usize,
    ) -> Self {
        Self::bad_request(format!(
            "Too many points to aggregate: {series} series of {timestamps} timestamps (at most {max_values} values); narrow start/stop or choose a coarser granularity"
        ))
    }
    /// 400: upstream's `UnAggregableTimeseries`.
    pub(crate) fn unaggregable(reason: String, detail: Value) -> Self {
        Self::bad_request(json!({
            "cause": "Metrics cannot be aggregated",
            "reason": reason,
            "detail": detail,
        }))
    }
    /// 404: a method at a granularity no referenced metric has (`/v1/aggregates`).
    pub(crate) fn metrics_with_unknown_aggregation(metric: uuid::Uuid, aggregation: &str) -> Self {
        Self::not_found(json!({
            "cause": "Metrics with unknown aggregation",
            "detail": [[metric.to_string(), aggregation]],
        }))
    }
    /// 400: an operations string that does not parse as an S-expression.
    pub(crate) fn unparsable_operations(message: String) -> Self {
        Self::bad_request(json!({
            "cause": "Invalid operations",
            "reason": "Fail to parse the operations string",
            "detail": message,
        }))
    }
    /// 400: operations that reference no metric.
    pub(crate) fn operations_without_metric(operations: Value) -> Self {
        Self::bad_request(json!({
            "cause": "Operations is invalid",
            "reason": "At least one 'metric' is required",
            "detail": operations,
        }))
    }
    /// 400: a metric reference that is not a UUID; `references` as `[[name, aggregation], ...]`.
    pub(crate) fn invalid_metric_references(references: Vec<Value>) -> Self {
        Self::bad_request(json!({
            "cause": "Invalid metric references",
            "reason": "badly formed hexadecimal UUID string",
            "detail": references,
        }))
    }
    /// 404: referenced metric ids that do not exist.
    pub(crate) fn unknown_metrics(missing: Vec<String>) -> Self {
        Self::not_found(json!({
            "cause": "Unknown metrics",
            "reason": "Provided metrics don't exists",
            "detail": missing,
        }))
    }
    /// 400: a metric search asks for a method or a granularity its policy lacks.
    pub(crate) fn aggregation_does_not_exist(granularity: i64, aggregation: &str) -> Self {
        Self::bad_request(json!({
            "cause": "Aggregation does not exist",
            "detail": {"granularity": crate::wire::json::seconds(granularity), "aggregation_method": aggregation},
        }))
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        use IndexError::*;
        match e {
            ArchivePolicyAlreadyExists(_) | ArchivePolicyRuleAlreadyExists(_) => {
                ApiError::conflict(e.to_string())
            }
            ArchivePolicyNotFound(_) | ArchivePolicyRuleNotFound(_) | MetricNotFound(_) => {
                ApiError::not_found(e.to_string())
            }
            ArchivePolicyInUse(_) => ApiError::bad_request(e.to_string()),
            NamedMetricAlreadyExists(name) => ApiError::bad_request(
                json!({"cause": "Named metric already exists", "reason": format!("Named metric {name} already exists"), "detail": name}),
            ),
            InvalidSortKey(_) | InvalidMarker(_) => {
                ApiError::bad_request(format!("Invalid pagination: `{e}'"))
            }
            ResourceTypeAlreadyExists(_) | ResourceAlreadyExists(_) => {
                ApiError::conflict(e.to_string())
            }
            ResourceTypeNotFound(_) | ResourceNotFound(_) => ApiError::not_found(e.to_string()),
            ResourceTypeInUse(_)
            | InvalidResourceValue(_)
            | QueryValueError { .. }
            | QueryAttributeError { .. }
            | InvalidQuery(_) => ApiError::bad_request(e.to_string()),
            Database(_) | SharedDatabase(_) | Connect { .. } if e.is_unavailable() => {
                ApiError::backend_unavailable(e)
            }
            Backend(_)
            | Database(_)
            | SharedDatabase(_)
            | Internal { .. }
            | Connect { .. }
            | Io { .. } => ApiError::internal(e),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Index(e) => e.into(),
            EngineError::MetricLocked(_) => ApiError::service_unavailable(e.to_string()),
            EngineError::Storage(e) => e.into(),
            EngineError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Engine(e) => e.into(),
            // The callers build the specific 404s; these are fallbacks.
            other => ApiError::not_found(other.to_string()),
        }
    }
}

impl From<gnocchi_ingest::IngestError> for ApiError {
    fn from(e: gnocchi_ingest::IngestError) -> Self {
        use gnocchi_ingest::IngestError;
        match e {
            IngestError::Index(e) => e.into(),
            IngestError::Storage(e) => e.into(),
            IngestError::Contention => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            IngestError::NotCreated { .. } => ApiError::internal(e),
        }
    }
}

impl ApiError {
    /// Upstream's answer to what a write request cannot write: every unknown
    /// resource, else every unknown metric (sorted), else the first other
    /// problem. `None` when there is none.
    pub(crate) fn from_problems(problems: &[gnocchi_ingest::Problem]) -> Option<ApiError> {
        use gnocchi_ingest::Problem;
        let unknown_resources: Vec<Value> = problems
            .iter()
            .filter_map(|p| match p {
                Problem::UnknownResource { id, original_id } => Some(json!({
                    "resource_id": id.to_string(),
                    "original_resource_id": original_id,
                })),
                _ => None,
            })
            .collect();
        if !unknown_resources.is_empty() {
            return Some(ApiError::bad_request(
                json!({"cause": "Unknown resources", "detail": unknown_resources}),
            ));
        }
        let mut unknown_metrics: Vec<String> = problems
            .iter()
            .filter_map(|p| match p {
                Problem::UnknownMetric(id) => Some(id.to_string()),
                Problem::UnknownNamedMetric { resource, name } => {
                    Some(format!("{resource}/{name}"))
                }
                _ => None,
            })
            .collect();
        if !unknown_metrics.is_empty() {
            unknown_metrics.sort();
            return Some(ApiError::bad_request(format!(
                "Unknown metrics: {}",
                unknown_metrics.join(", ")
            )));
        }
        problems.iter().find_map(|p| match p {
            Problem::SlashInMetricName(_) => Some(ApiError::slash_in_metric_name()),
            Problem::NoArchivePolicyRule(name) => Some(ApiError::no_archive_policy_rule(name)),
            Problem::ArchivePolicyNotFound(ap) => {
                Some(ApiError::archive_policy_not_found(ap).into_bad_request())
            }
            Problem::ResourceOfAnotherType { id } => Some(ApiError::conflict(json!({
                "cause": "Resource already exists",
                "detail": id.to_string(),
            }))),
            Problem::UnknownResource { .. }
            | Problem::UnknownMetric(_)
            | Problem::UnknownNamedMetric { .. } => None,
        })
    }

    /// 400: a new metric without archive policy, and no rule for its name.
    pub(crate) fn no_archive_policy_rule(name: &str) -> Self {
        Self::bad_request(format!(
            "No archive policy name specified and no archive policy rule found matching the metric name {name}"
        ))
    }
}

impl From<gnocchi_storage::StorageError> for ApiError {
    fn from(e: gnocchi_storage::StorageError) -> Self {
        if e.is_unavailable() {
            ApiError::backend_unavailable(e)
        } else {
            ApiError::internal(e)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut()
            .insert(ErrorDescription(self.description));
        resp
    }
}

/// Carried from [`ApiError::into_response`] to [`render_errors`].
#[derive(Clone)]
struct ErrorDescription(Value);

/// Does the client prefer JSON over text for error pages? Among the offers
/// text/plain, text/html and application/json, the highest quality wins, ties
/// going to the earlier offer, as WebOb's `best_match` does.
fn prefers_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let offers = ["text/plain", "text/html", "application/json"];
    let mut best = (0.0f32, 0usize);
    for (i, offer) in offers.iter().enumerate() {
        let q = crate::wire::accept::accept_quality(accept, offer);
        if q > best.0 {
            best = (q, i);
        }
    }
    best.0 > 0.0 && best.1 == 2
}

fn explanation(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => {
            "The server could not comply with the request since it is either malformed or otherwise incorrect."
        }
        401 => {
            "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required."
        }
        403 => "Access was denied to this resource.",
        404 => "The resource could not be found.",
        405 => "The method is not allowed for this resource.",
        406 => "The resource could not be generated that was acceptable to your browser.",
        409 => "There was a conflict when trying to complete your request.",
        412 => "Request precondition failed.",
        413 => "The request is larger than the server is willing or able to process.",
        415 => "The request media type is not supported by this server.",
        501 => "The server has not implemented the requested method.",
        503 => "The server is currently unavailable. Please try again at a later time.",
        _ => "",
    }
}

/// Middleware: give every error response its body, in the format the client prefers.
pub(crate) async fn render_errors(req: Request, next: Next) -> Response {
    let json_wanted = prefers_json(req.headers());
    let mut resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let description = match resp.extensions_mut().remove::<ErrorDescription>() {
        Some(ErrorDescription(d)) => d,
        // Errors produced by the router itself (unknown route, wrong method).
        None => {
            let has_body = resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|l| l != "0");
            if has_body && status != StatusCode::PAYLOAD_TOO_LARGE {
                return resp;
            }
            // axum's body limit answers 413 with its own text: give it ours.
            Value::String(if status == StatusCode::PAYLOAD_TOO_LARGE {
                "Request body too large".to_string()
            } else {
                String::new()
            })
        }
    };
    let title = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Request Entity Too Large",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let (body, content_type) = if json_wanted {
        let doc = json!({"code": status.as_u16(), "title": title, "description": description});
        (crate::wire::json::to_vec(&doc), "application/json")
    } else {
        let detail = match &description {
            Value::String(s) => s.clone(),
            other => String::from_utf8(crate::wire::json::to_vec(other)).unwrap_or_default(),
        };
        let text = format!(
            "{} {}\n\n{}\n\n{}\n",
            status.as_u16(),
            title,
            explanation(status),
            detail
        );
        (text.into_bytes(), "text/plain; charset=UTF-8")
    };
    let (mut parts, _) = resp.into_parts();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}
