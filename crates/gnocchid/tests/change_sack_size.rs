//! `gnocchid change-sack-size` re-splits the incoming store of a stopped server,
//! and the server starts on it afterwards.

mod common;
use common::*;
use std::process::Command;

#[tokio::test]
async fn change_sack_size_is_stored_and_the_server_starts_on_it() {
    let dir = temp_dir("sacks");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gnocchid"))
            .arg("--data-dir")
            .arg(&dir)
            .args(args)
            .output()
            .expect("run gnocchid")
    };
    assert!(run(&["upgrade"]).status.success());
    let out = run(&["change-sack-size", "--sacks-number", "64"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = std::fs::read_to_string(dir.join("incoming").join("config.json")).unwrap();
    assert!(stored.contains("64"), "{stored}");
    let out = run(&["change-sack-size", "--sacks-number", "0"]);
    assert!(!out.status.success());

    let s = Server::start_in(dir, &[]);
    let c = client();
    let id = create_metric(&c, &s, "low").await;
    let r = c
        .post(s.url(&format!("/v1/metric/{id}/measures")))
        .basic_auth("admin", Some(""))
        .json(&serde_json::json!([{"timestamp": "2024-01-01T00:00:00", "value": 1}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = c
        .get(s.url(&format!("/v1/metric/{id}/measures?refresh=true")))
        .basic_auth("admin", Some(""))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1));
}
