//! An in-process API over throwaway storage, for the tests of the handlers:
//! SQLite index, file incoming and aggregates under a fresh temporary
//! directory, basic auth as `admin`.

use crate::{ApiConfig, AppState};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use gnocchi_engine::{Engine, EngineConfig};
use gnocchi_storage::local_aggregates::LocalAggregates;
use gnocchi_storage::local_incoming::LocalIncoming;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::ServiceExt;

pub(crate) struct TestApi {
    app: Router,
    dir: PathBuf,
}

impl Drop for TestApi {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestApi {
    pub(crate) async fn start() -> TestApi {
        Self::start_with(ApiConfig::default()).await
    }

    /// An API with `config` (its policy overrides, say).
    pub(crate) async fn start_with(config: ApiConfig) -> TestApi {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gnocchi-api-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("index.sqlite").display());
        let indexer = gnocchi_index::open(&url).await.expect("index");
        indexer.upgrade().await.expect("index schema");
        let incoming =
            Arc::new(LocalIncoming::open(&dir.join("incoming"), 8).expect("incoming store"));
        let aggregates =
            Arc::new(LocalAggregates::open(&dir.join("aggregates.redb")).expect("aggregates"));
        let engine = Engine::new(
            indexer.clone(),
            incoming.clone(),
            aggregates,
            EngineConfig::default(),
        );
        let state = AppState::new(indexer, incoming, engine, config).expect("state");
        TestApi {
            app: crate::router(Arc::new(state)),
            dir,
        }
    }

    /// `METHOD path` with a JSON body (or none): the status and the JSON
    /// answer (a string when it is not JSON).
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("Accept", "application/json")
            // basic auth, user `admin`
            .header("Authorization", "Basic YWRtaW46");
        let req = match body {
            Some(b) => req
                .header("Content-Type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("answer");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST path` of a raw body of `content_type`: the status and the body.
    pub(crate) async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("Authorization", "Basic YWRtaW46")
            .header("Accept", "application/json")
            .header("Content-Type", content_type)
            .body(Body::from(body))
            .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("answer");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `GET path` as `admin`: the whole response, headers included.
    pub(crate) async fn get_response(&self, path: &str) -> axum::response::Response {
        let req = Request::builder()
            .uri(path)
            .header("Accept", "application/json")
            .header("Authorization", "Basic YWRtaW46")
            .body(Body::empty())
            .expect("request");
        self.app.clone().oneshot(req).await.expect("answer")
    }

    /// A call that must answer `expected`; its JSON answer.
    pub(crate) async fn expect(
        &self,
        expected: StatusCode,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, v) = self.call(method, path, body).await;
        assert_eq!(status, expected, "{method} {path}: {v}");
        v
    }

    /// A `GET` that must answer `expected`; its JSON answer.
    pub(crate) async fn get(&self, expected: StatusCode, path: &str) -> Value {
        self.expect(expected, "GET", path, None).await
    }

    /// An archive policy `name` with one granularity of 60 s and `methods`.
    pub(crate) async fn policy_60s(&self, name: &str, methods: &[&str]) {
        self.expect(
            StatusCode::CREATED,
            "POST",
            "/v1/archive_policy",
            Some(serde_json::json!({
                "name": name,
                "back_window": 0,
                "definition": [{"granularity": "60s", "points": 100}],
                "aggregation_methods": methods,
            })),
        )
        .await;
    }

    /// A new metric with `policy`, holding `points` (ISO timestamp, value),
    /// processed. Its id.
    pub(crate) async fn metric_with(&self, policy: &str, points: &[(&str, f64)]) -> String {
        let m = self
            .expect(
                StatusCode::CREATED,
                "POST",
                "/v1/metric",
                Some(serde_json::json!({"archive_policy_name": policy})),
            )
            .await;
        let id = m["id"].as_str().expect("metric id").to_string();
        let measures: Vec<Value> = points
            .iter()
            .map(|(t, v)| serde_json::json!({"timestamp": t, "value": v}))
            .collect();
        self.expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/metric/{id}/measures"),
            Some(Value::Array(measures)),
        )
        .await;
        self.expect(
            StatusCode::OK,
            "GET",
            &format!("/v1/metric/{id}/measures?refresh=true"),
            None,
        )
        .await;
        id
    }
}
