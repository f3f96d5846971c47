//! `[api] auth_mode` basic and remoteuser against the real binary, plus the
//! request body limit and startup errors of a bad auth configuration.

mod auth_support;
mod common;

use auth_support::write_config;
use common::Server;
use serde_json::{Value, json};
use std::process::{Command, Stdio};

fn start_with(name: &str, conf: &str) -> Server {
    let dir = common::temp_dir(name);
    let path = write_config(&dir.join("etc"), conf);
    Server::start_in(
        dir.join("data"),
        &["--config-file", path.to_str().expect("path")],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_mode_needs_credentials_and_knows_admin() {
    let s = Server::start("auth-basic", &[]);
    let c = common::client();
    let resp = c
        .get(s.url("/v1/metric"))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], 401);
    // An unparsable header is no credential either.
    let resp = c
        .get(s.url("/v1/metric"))
        .header("Authorization", "basic !!!")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 401);
    // `/` and `/healthcheck` are never authenticated.
    assert_eq!(c.get(s.url("/")).send().await.expect("req").status(), 200);
    assert_eq!(
        c.get(s.url("/healthcheck"))
            .send()
            .await
            .expect("req")
            .status(),
        200
    );

    let status = |user: &'static str| {
        c.get(s.url("/v1/status"))
            .basic_auth(user, Some("ignored"))
            .send()
    };
    assert_eq!(status("admin").await.expect("req").status(), 200);
    assert_eq!(status("foobar").await.expect("req").status(), 403);

    // The creator is the user name; no tenant filtering in basic mode.
    let resp = c
        .post(s.url("/v1/metric"))
        .basic_auth("foobar", Some(""))
        .json(&json!({"archive_policy_name": "low"}))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 201);
    let m: Value = resp.json().await.expect("json");
    assert_eq!(m["creator"], "foobar");
    assert_eq!(m["created_by_project_id"], "");
    let listed: Value = c
        .get(s.url("/v1/metric"))
        .basic_auth("other", Some(""))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .any(|x| x["id"] == m["id"])
    );
    // Deleting another user's metric is refused.
    let resp = c
        .delete(s.url(&format!("/v1/metric/{}", m["id"].as_str().expect("id"))))
        .basic_auth("other", Some(""))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn remoteuser_mode_trusts_the_proxy_header() {
    let s = start_with("auth-remote", "[api]\nauth_mode = remoteuser\n");
    let c = common::client();
    let resp = c.get(s.url("/v1/metric")).send().await.expect("req");
    assert_eq!(resp.status(), 401);
    // Basic credentials mean nothing in this mode.
    let resp = c
        .get(s.url("/v1/metric"))
        .basic_auth("admin", Some(""))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 401);
    let resp = c
        .get(s.url("/v1/status"))
        .header("Remote-User", "admin")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 200);
    let resp = c
        .get(s.url("/v1/status"))
        .header("X-Remote-User", "alice")
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 403);
    let resp = c
        .post(s.url("/v1/metric"))
        .header("X-Remote-User", "alice")
        .json(&json!({"archive_policy_name": "low"}))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 201);
    let m: Value = resp.json().await.expect("json");
    assert_eq!(m["creator"], "alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_get_a_rendered_413() {
    let s = start_with("auth-413", "[api]\nmax_body_size = 1024\n");
    let c = common::client();
    let big = json!({"archive_policy_name": "low", "name": "x".repeat(4096)});
    let resp = c
        .post(s.url("/v1/metric"))
        .basic_auth("admin", Some(""))
        .header("Accept", "application/json")
        .json(&big)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], 413);
    assert_eq!(body["title"], "Request Entity Too Large");
    assert_eq!(body["description"], "Request body too large");
    // Without Accept: WebOb's text page.
    let resp = c
        .post(s.url("/v1/metric"))
        .basic_auth("admin", Some(""))
        .json(&big)
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 413);
    let text = resp.text().await.expect("text");
    assert!(text.starts_with("413 Request Entity Too Large"), "{text}");
}

/// Run the binary with `conf`; it must refuse to start, saying `expected`.
fn refuses_to_start(name: &str, conf: &str, expected: &str) {
    let dir = common::temp_dir(name);
    let path = write_config(&dir.join("etc"), conf);
    let out = Command::new(env!("CARGO_BIN_EXE_gnocchid"))
        .args(["--config-file", path.to_str().expect("path"), "--data-dir"])
        .arg(dir.join("data"))
        .args(["--port", &common::free_port().to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("run gnocchid");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "{name}: started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(expected), "{name}: {stderr}");
}

#[test]
fn bad_auth_configuration_stops_the_start() {
    refuses_to_start(
        "auth-bad-mode",
        "[api]\nauth_mode = noauth\n",
        "unsupported [api] auth_mode `noauth'",
    );
    refuses_to_start(
        "auth-ks-nourl",
        "[api]\nauth_mode = keystone\n",
        "[keystone_authtoken] auth_url",
    );
    refuses_to_start(
        "auth-ks-nouser",
        "[api]\nauth_mode = keystone\n[keystone_authtoken]\nauth_url = http://127.0.0.1:9/v3\n",
        "username and password must be set",
    );
}
