//! Keystone mode, against a fake Keystone: tokens, the cache, and a project's
//! isolation from another's resources and metrics (403/404 as upstream,
//! filtered listings, searches and aggregates).

mod auth_support;
mod common;

use auth_support::{FakeKeystone, FakeUser, write_config};
use common::Server;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

const RA: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const RB: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const RX: &str = "cccccccc-0000-4000-8000-000000000003";

struct Api {
    c: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut r = self
            .c
            .request(method, format!("{}{}", self.base, path))
            .header("Accept", "application/json");
        if let Some(t) = token {
            r = r.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }
    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::GET, path, Some(token), None).await;
        (s, v)
    }
    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::POST, path, Some(token), Some(body)).await;
        (s, v)
    }
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("array expected: {v}"))
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn projects_are_isolated_in_keystone_mode() {
    let ks = FakeKeystone::start(&[
        (
            "tok-a",
            FakeUser {
                user_id: "ua",
                project_id: "pa",
                roles: &["member"],
            },
        ),
        (
            "tok-a2",
            FakeUser {
                user_id: "ua2",
                project_id: "pa",
                roles: &["member"],
            },
        ),
        (
            "tok-b",
            FakeUser {
                user_id: "ub",
                project_id: "pb",
                roles: &["member"],
            },
        ),
        (
            "tok-admin",
            FakeUser {
                user_id: "root",
                project_id: "padmin",
                roles: &["admin", "member"],
            },
        ),
    ])
    .await;
    let dir = common::temp_dir("tenant");
    let conf = write_config(&dir.join("etc"), &ks.config(""));
    let s = Server::start_in(
        dir.join("data"),
        &["--config-file", conf.to_str().expect("path")],
    );
    let api = Api {
        c: common::client(),
        base: s.base.clone(),
    };

    // No token, or one Keystone does not know: 401 with the Keystone challenge.
    let (st, _, h) = api
        .call(Method::GET, "/v1/resource/generic", None, None)
        .await;
    assert_eq!(st, 401);
    assert_eq!(
        h["www-authenticate"],
        format!("Keystone uri=\"{}\"", ks.url).as_str()
    );
    let (st, body, h) = api
        .call(Method::GET, "/v1/metric", Some("bogus"), None)
        .await;
    assert_eq!(st, 401);
    assert_eq!(body["code"], 401);
    assert!(h.contains_key("www-authenticate"));
    // `/` is never authenticated.
    let (st, _, _) = api.call(Method::GET, "/", None, None).await;
    assert_eq!(st, 200);

    // A resource of each project (and one created by A for project B), each with a metric.
    for (token, id, project) in [
        ("tok-a", RA, "pa"),
        ("tok-b", RB, "pb"),
        ("tok-a", RX, "pb"),
    ] {
        let (st, v) = api
            .post("/v1/resource/generic", token, json!({"id": id, "project_id": project, "metrics": {"cpu": {"archive_policy_name": "low"}}}))
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let (_, ra) = api
        .get(&format!("/v1/resource/generic/{RA}"), "tok-a")
        .await;
    assert_eq!(ra["creator"], "ua:pa");
    assert_eq!(ra["created_by_project_id"], "pa");
    let (_, rb) = api
        .get(&format!("/v1/resource/generic/{RB}"), "tok-b")
        .await;
    let ra_cpu = ra["metrics"]["cpu"].as_str().expect("metric").to_string();
    let rb_cpu = rb["metrics"]["cpu"].as_str().expect("metric").to_string();
    let (st, ma) = api
        .post("/v1/metric", "tok-a", json!({"archive_policy_name": "low"}))
        .await;
    assert_eq!(st, 201);
    let ma = ma["id"].as_str().expect("id").to_string();
    let (_, mb) = api
        .post("/v1/metric", "tok-b", json!({"archive_policy_name": "low"}))
        .await;
    let mb = mb["id"].as_str().expect("id").to_string();

    // Listings and searches: only what the project owns or created.
    let (st, v) = api.get("/v1/resource/generic", "tok-a").await;
    assert_eq!(st, 200);
    assert_eq!(ids(&v), vec![RA.to_string(), RX.to_string()]);
    let (_, v) = api.get("/v1/resource/generic", "tok-b").await;
    assert_eq!(ids(&v), vec![RB.to_string(), RX.to_string()]);
    let (_, v) = api.get("/v1/resource/generic", "tok-admin").await;
    assert_eq!(ids(&v).len(), 3);
    let (st, v) = api
        .post(
            "/v1/search/resource/generic",
            "tok-a",
            json!({"=": {"id": RB}}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(v, json!([]));
    let (_, v) = api
        .post("/v1/search/resource/generic", "tok-a", json!({}))
        .await;
    assert_eq!(ids(&v), vec![RA.to_string(), RX.to_string()]);
    let (_, v) = api.get("/v1/resource/generic?history=true", "tok-a").await;
    assert!(!v.to_string().contains(RB));
    // Another user of the same project sees the project's resources.
    let (_, v) = api.get("/v1/resource/generic", "tok-a2").await;
    assert_eq!(ids(&v), vec![RA.to_string(), RX.to_string()]);

    let (st, v) = api.get("/v1/metric", "tok-a").await;
    assert_eq!(st, 200);
    let seen = ids(&v);
    assert!(seen.contains(&ma) && seen.contains(&ra_cpu), "{seen:?}");
    assert!(!seen.contains(&mb) && !seen.contains(&rb_cpu), "{seen:?}");
    let (_, v) = api.get("/v1/metric", "tok-admin").await;
    assert!(ids(&v).contains(&mb));

    // Single objects of another project: resources hidden (404), metrics refused (403).
    for path in [
        format!("/v1/resource/generic/{RB}"),
        format!("/v1/resource/generic/{RB}/history"),
        format!("/v1/resource/generic/{RB}/metric"),
    ] {
        let (st, v) = api.get(&path, "tok-a").await;
        assert_eq!(st, 404, "{path}: {v}");
        assert_eq!(v["description"], format!("Resource {RB} does not exist"));
    }
    for path in [
        format!("/v1/metric/{mb}"),
        format!("/v1/metric/{mb}/measures"),
        format!("/v1/metric/{rb_cpu}"),
        format!("/v1/resource/generic/{RB}/metric/cpu/measures"),
    ] {
        let (st, _) = api.get(&path, "tok-a").await;
        assert_eq!(st, 403, "{path}");
    }
    let (st, _) = api
        .post(
            &format!("/v1/search/metric?metric_id={mb}"),
            "tok-a",
            json!({"=": 1}),
        )
        .await;
    assert_eq!(st, 403);
    // Writes on another project's objects.
    let (st, _, _) = api
        .call(
            Method::PATCH,
            &format!("/v1/resource/generic/{RB}"),
            Some("tok-a"),
            Some(json!({"ended_at": null})),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/resource/generic/{RB}"),
            Some("tok-a"),
            None,
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = api
        .post(
            &format!("/v1/metric/{mb}/measures"),
            "tok-a",
            json!([{"timestamp": "2020-01-01T00:00:00", "value": 1}]),
        )
        .await;
    assert_eq!(st, 403);
    let (st, v) = api
        .post(
            "/v1/batch/metrics/measures",
            "tok-a",
            json!({mb.clone(): [{"timestamp": "2020-01-01T00:00:00", "value": 1}]}),
        )
        .await;
    assert_eq!(st, 403, "{v}");
    let (st, v, _) = api
        .call(
            Method::DELETE,
            "/v1/resource/generic",
            Some("tok-a"),
            Some(json!({"=": {"id": RB}})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["deleted"], 0);

    // Owner by project: B reads what A created for project B, and its measures.
    let (st, _) = api
        .get(&format!("/v1/resource/generic/{RX}"), "tok-b")
        .await;
    assert_eq!(st, 200);
    let (_, rx) = api
        .get(&format!("/v1/resource/generic/{RX}"), "tok-a")
        .await;
    let rx_cpu = rx["metrics"]["cpu"].as_str().expect("metric").to_string();
    let (st, _) = api
        .get(&format!("/v1/metric/{rx_cpu}/measures"), "tok-b")
        .await;
    assert_eq!(st, 200);

    // Aggregates: named metrics of another project refused, searches filtered.
    let (st, _) = api
        .post(
            "/v1/aggregates",
            "tok-a",
            json!({"operations": ["metric", mb, "mean"]}),
        )
        .await;
    assert_eq!(st, 403);
    let (st, v) = api
        .post(
            "/v1/aggregates?details=true",
            "tok-a",
            json!({"resource_type": "generic", "search": {}, "operations": "(metric cpu mean)"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let text = v.to_string();
    assert!(!text.contains(&rb_cpu) && !text.contains(RB), "{text}");
    assert!(text.contains(&ra_cpu) || text.contains(RA), "{text}");
    let (st, v) = api
        .post(
            "/v1/aggregation/resource/generic/metric/cpu",
            "tok-a",
            json!({"=": {"id": RB}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!([]));

    // Admin sees everything.
    for path in [
        format!("/v1/resource/generic/{RB}"),
        format!("/v1/metric/{mb}"),
        "/v1/status".to_string(),
    ] {
        let (st, _) = api.get(&path, "tok-admin").await;
        assert_eq!(st, 200, "{path}");
    }
    let (st, _) = api.get("/v1/status", "tok-a").await;
    assert_eq!(st, 403);

    // Validated tokens are cached: one validation per token, not per request.
    let before = ks.validations.load(Ordering::SeqCst);
    for _ in 0..5 {
        api.get("/v1/resource/generic", "tok-a").await;
    }
    assert_eq!(ks.validations.load(Ordering::SeqCst), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn short_token_cache_time_revalidates() {
    let ks = FakeKeystone::start(&[(
        "tok-a",
        FakeUser {
            user_id: "ua",
            project_id: "pa",
            roles: &["member"],
        },
    )])
    .await;
    let dir = common::temp_dir("tenant-cache");
    let conf = write_config(&dir.join("etc"), &ks.config("token_cache_time = 0"));
    let s = Server::start_in(
        dir.join("data"),
        &["--config-file", conf.to_str().expect("path")],
    );
    let api = Api {
        c: common::client(),
        base: s.base.clone(),
    };
    for _ in 0..3 {
        let (st, _) = api.get("/v1/metric", "tok-a").await;
        assert_eq!(st, 200);
    }
    assert_eq!(ks.validations.load(Ordering::SeqCst), 3);
}
