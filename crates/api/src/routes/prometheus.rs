//! `POST /v1/prometheus/write`: Prometheus remote write.
//!
//! Each series goes to the resource of type `prometheus` (created on first
//! use, attributes `job` and `instance`) whose id is `<job>@<instance>`
//! (`none` for a missing label), as the metric named by `__name__`; other
//! labels are ignored, so series that differ only by them overwrite each
//! other within a request, as upstream. A series without `__name__` is a 400
//! (upstream: 500). Prometheus' staleness markers are not stored.

use crate::AppState;
use crate::access::auth::Creds;
use crate::ingest::{self, Authorizer, resource_uuid};
use crate::language::remote_write::{STALE_NAN_BITS, decompress, for_each_series};
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::accepted;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use carbonara::Measure;
use carbonara::time::{check_after_epoch, timestamp_from_epoch_seconds};
use gnocchi_index::{AttributeKind, AttributeSchema, ResourceType, ResourceTypeState};
use gnocchi_ingest::{AutoResource, Missing, NamedWrite, Request, ResourceWrite};
use std::collections::HashMap;
use std::sync::Arc;

/// Full path: merged outside the JSON-only `Accept` check (the body is protobuf).
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/prometheus/write", post(write))
}

const RESOURCE_TYPE: &str = "prometheus";

/// One resource's metrics: name → measures (a later series of the same name replaces).
type ByResource = HashMap<(String, String), HashMap<String, Vec<Measure>>>;

/// Decode a remote-write body into measures per (job, instance) and metric name.
pub(crate) fn decode(body: &[u8], max_len: usize) -> ApiResult<ByResource> {
    let buf = decompress(body, max_len).map_err(|e| ApiError::undecodable_body(e.to_string()))?;
    let mut out = ByResource::new();
    let mut err = None;
    let decoded = for_each_series(&buf, |s| {
        let Some(name) = s.label("__name__") else {
            err = Some(ApiError::invalid_input(
                "a time series has no `__name__' label",
                vec!["labels".into()],
            ));
            return Err(());
        };
        if s.samples.is_empty() {
            return Ok(());
        }
        let mut measures = Vec::with_capacity(s.samples.len());
        for &(ms, v) in &s.samples {
            if v.to_bits() == STALE_NAN_BITS {
                continue;
            }
            let ts = timestamp_from_epoch_seconds(ms as f64 / 1000.0)
                .and_then(check_after_epoch)
                .map_err(|e| {
                    err = Some(ApiError::invalid_input(
                        format!("unexpected timestamp '{e}'"),
                        Vec::new(),
                    ));
                })?;
            measures.push(Measure::new(ts, v));
        }
        let job = s.label("job").unwrap_or("none");
        let instance = s.label("instance").unwrap_or("none");
        out.entry((job.to_string(), instance.to_string()))
            .or_default()
            .insert(name.to_string(), measures);
        Ok(())
    })
    .map_err(|e| ApiError::undecodable_body(e.to_string()))?;
    if decoded.is_err() {
        return Err(err.unwrap_or_else(|| ApiError::undecodable_body("invalid time series")));
    }
    Ok(out)
}

async fn write(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    body: Bytes,
) -> ApiResult<Response> {
    let by_resource = decode(&body, state.config.max_body_size)?;
    let creator = creds.creator();
    let mut resources = Vec::with_capacity(by_resource.len());
    for ((job, instance), metrics) in by_resource {
        let original_id = format!("{job}@{instance}");
        resources.push(ResourceWrite {
            id: resource_uuid(&original_id, Some(&creator)).map_err(ApiError::bad_request)?,
            original_id,
            missing: Missing::CreateResource(AutoResource {
                resource_type: resource_type(),
                attributes: vec![("job".into(), job), ("instance".into(), instance)],
                any_type: false,
            }),
            metrics: metrics
                .into_iter()
                .map(|(name, measures)| NamedWrite::new(name, measures))
                .collect(),
        });
    }
    let request = Request {
        creator: Some(creator),
        metrics: Vec::new(),
        resources,
    };
    ingest::write(&state, &mut Authorizer::new(&state, &creds), request).await?;
    Ok(accepted())
}

/// Upstream's type: both attributes required, 1 to 512 characters.
fn resource_type() -> ResourceType {
    let attribute = |name: &str| AttributeSchema {
        name: name.to_string(),
        required: true,
        kind: AttributeKind::String {
            min_length: 1,
            max_length: 512,
        },
    };
    ResourceType {
        name: RESOURCE_TYPE.to_string(),
        state: ResourceTypeState::Creating,
        attributes: vec![attribute("instance"), attribute("job")],
        tablename: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::remote_write::encode_write_request;
    use carbonara::measure::measures;

    fn compress(raw: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(raw).unwrap()
    }

    #[test]
    fn series_map_to_resources_and_names() {
        let raw = encode_write_request(&[
            (
                vec![("__name__", "up"), ("job", "j"), ("instance", "i:1")],
                vec![(1500, 1.0)],
            ),
            (
                vec![("__name__", "up"), ("instance", "x")],
                vec![(1000, f64::from_bits(STALE_NAN_BITS)), (2000, 0.0)],
            ),
            (
                vec![("__name__", "empty"), ("job", "j"), ("instance", "i:1")],
                vec![],
            ),
        ]);
        let out = decode(&compress(&raw), 1 << 20).unwrap();
        assert_eq!(out.len(), 2);
        let ji = &out[&("j".to_string(), "i:1".to_string())];
        assert_eq!(ji["up"], measures(&[(1_500_000_000, 1.0)]));
        assert!(!ji.contains_key("empty"));
        assert_eq!(
            out[&("none".to_string(), "x".to_string())]["up"],
            measures(&[(2_000_000_000, 0.0)])
        );
    }

    #[test]
    fn a_series_without_name_is_a_400() {
        let raw = encode_write_request(&[(vec![("job", "j")], vec![(1, 1.0)])]);
        let e = decode(&compress(&raw), 1 << 20).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        let e = decode(b"not snappy at all", 1 << 20).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
    }
}
