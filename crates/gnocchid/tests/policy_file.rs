//! `[oslo_policy] policy_file`: an operator's rules override upstream's
//! defaults; an unreadable or malformed file stops the start.

mod auth_support;
mod common;

use auth_support::write_config;
use common::Server;
use serde_json::json;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread")]
async fn yaml_overrides_change_decisions() {
    let dir = common::temp_dir("policy-yaml");
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).expect("etc");
    std::fs::write(
        etc.join("policy.yaml"),
        "# operator overrides\n\"get status\": \"\"\n\"create metric\": \"role:admin\"\n#\"list metric\": \"!\"\n",
    )
    .expect("policy");
    // A relative path is relative to the config file.
    let conf = write_config(&etc, "[oslo_policy]\npolicy_file = policy.yaml\n");
    let s = Server::start_in(
        dir.join("data"),
        &["--config-file", conf.to_str().expect("path")],
    );
    let c = common::client();
    // Default: admin only; overridden: anyone.
    let resp = c
        .get(s.url("/v1/status"))
        .basic_auth("foobar", Some(""))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 200);
    // Default: anyone; overridden: admin only.
    let create = |user: &'static str| {
        c.post(s.url("/v1/metric"))
            .basic_auth(user, Some(""))
            .json(&json!({"archive_policy_name": "low"}))
            .send()
    };
    assert_eq!(create("foobar").await.expect("req").status(), 403);
    assert_eq!(create("admin").await.expect("req").status(), 201);
    // Rules the file leaves alone (or comments out) keep their defaults.
    let resp = c
        .get(s.url("/v1/metric"))
        .basic_auth("foobar", Some(""))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 200);
    let resp = c
        .delete(s.url("/v1/archive_policy/low"))
        .basic_auth("foobar", Some(""))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_policy_files_work_too() {
    let dir = common::temp_dir("policy-json");
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).expect("etc");
    let policy = etc.join("policy.json");
    std::fs::write(&policy, r#"{"list archive policy": "role:admin"}"#).expect("policy");
    let conf = write_config(
        &etc,
        &format!("[oslo_policy]\npolicy_file = {}\n", policy.display()),
    );
    let s = Server::start_in(
        dir.join("data"),
        &["--config-file", conf.to_str().expect("path")],
    );
    let c = common::client();
    let list = |user: &'static str| {
        c.get(s.url("/v1/archive_policy"))
            .basic_auth(user, Some(""))
            .send()
    };
    assert_eq!(list("foobar").await.expect("req").status(), 403);
    assert_eq!(list("admin").await.expect("req").status(), 200);
}

fn start_fails(name: &str, policy: Option<&str>, expected: &str) {
    let dir = common::temp_dir(name);
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).expect("etc");
    if let Some(text) = policy {
        std::fs::write(etc.join("policy.yaml"), text).expect("policy");
    }
    let conf = write_config(&etc, "[oslo_policy]\npolicy_file = policy.yaml\n");
    let out = Command::new(env!("CARGO_BIN_EXE_gnocchid"))
        .args(["--config-file", conf.to_str().expect("path"), "--data-dir"])
        .arg(dir.join("data"))
        .args(["--port", &common::free_port().to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("run gnocchid");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[oslo_policy] policy_file") && stderr.contains(expected),
        "{stderr}"
    );
}

#[test]
fn unreadable_or_malformed_files_stop_the_start() {
    start_fails("policy-missing", None, "cannot read");
    start_fails(
        "policy-bad",
        Some("\"get status\": \"\"\nnested:\n  x: y\n"),
        "line 3",
    );
}
