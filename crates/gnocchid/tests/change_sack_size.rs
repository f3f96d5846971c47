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

/// On the Redis incoming driver (Redis database 12 of `GNOCCHI_TEST_REDIS_URL`,
/// skipped when it is unset), the count is stored in Redis's `gnocchi-config`.
#[tokio::test]
async fn change_sack_size_on_redis() {
    use gnocchi_storage::Incoming;
    use gnocchi_storage::redis_incoming::RedisIncoming;

    let url = match std::env::var("GNOCCHI_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}db=12")
        }
        _ => {
            println!("skipped: GNOCCHI_TEST_REDIS_URL unset");
            return;
        }
    };
    async fn drain(url: &str) {
        let inc = RedisIncoming::connect(url, 128).await.unwrap();
        for s in 0..inc.sacks() {
            let taken = inc.take(s).await.unwrap();
            inc.commit(taken).await.unwrap();
        }
    }
    // Measures left by an earlier run would block the change.
    drain(&url).await;

    let dir = temp_dir("sacks-redis");
    let conf = dir.join("gnocchi.conf");
    std::fs::write(
        &conf,
        format!("[incoming]\ndriver = redis\nredis_url = {url}\n"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gnocchid"))
            .arg("--data-dir")
            .arg(&dir)
            .arg("--config-file")
            .arg(&conf)
            .args(args)
            .output()
            .expect("run gnocchid")
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(run(&["upgrade"]));
    ok(run(&["change-sack-size", "--sacks-number", "50"]));
    assert_eq!(RedisIncoming::connect(&url, 128).await.unwrap().sacks(), 50);

    // Refused while a measure is pending, as upstream.
    let inc = RedisIncoming::connect(&url, 128).await.unwrap();
    inc.add_measures(vec![(
        uuid::Uuid::new_v4(),
        vec![carbonara::Measure::new(0, 1.0)],
    )])
    .await
    .unwrap();
    drop(inc);
    let out = run(&["change-sack-size", "--sacks-number", "64"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Cannot change sack when non-empty backlog"),
        "{stderr}"
    );
    assert_eq!(RedisIncoming::connect(&url, 128).await.unwrap().sacks(), 50);
    drain(&url).await;
    ok(run(&["change-sack-size", "--sacks-number", "64"]));
    assert_eq!(RedisIncoming::connect(&url, 128).await.unwrap().sacks(), 64);
    assert!(
        !run(&["change-sack-size", "--sacks-number", "0"])
            .status
            .success()
    );
    assert!(
        !run(&["change-sack-size", "--sacks-number", "65536"])
            .status
            .success()
    );

    let s = Server::start_in(dir, &["--config-file", conf.to_str().unwrap()]);
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
