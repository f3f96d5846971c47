//! A backend that goes away makes the API answer 503 naming it, never a 500
//! or a hang, and the same requests succeed again once it is back, with
//! nothing acknowledged lost (upstream issue #1199: metricd stopped for good
//! after a Redis hiccup).
//!
//! The incoming store is a `redis-server` this test starts on a free port
//! (with `appendonly yes`, so what Redis acknowledged survives its restart)
//! and kills; the machine's shared Redis is never touched. Skipped, saying
//! why, when `redis-server` is not on PATH.

mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A throwaway Redis on `port`, its data in `dir`.
fn start_redis(port: u16, dir: &Path) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

async fn post_measure(c: &reqwest::Client, s: &Server, metric: &str, t: u32) -> (u16, String) {
    let resp = c
        .post(s.url(&format!("/v1/metric/{metric}/measures")))
        .basic_auth("admin", Some(""))
        .json(&serde_json::json!([{"timestamp": format!("2024-01-01T00:{:02}:{:02}", t / 60, t % 60), "value": 1.0}]))
        .send()
        .await
        .expect("request answered");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test]
async fn the_api_answers_503_while_redis_is_down_and_recovers_when_it_returns() {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: redis-server is not on PATH");
        return;
    }
    let redis_dir = temp_dir("unavailable-redis");
    let port = free_port();
    let mut redis = start_redis(port, &redis_dir);
    let conf = redis_dir.join("gnocchi.conf");
    std::fs::write(
        &conf,
        format!("[incoming]\ndriver = redis\nredis_url = redis://127.0.0.1:{port}/1\n"),
    )
    .expect("write config");
    let s = Server::start(
        "unavailable",
        &["--config-file", conf.to_str().expect("utf-8 path")],
    );
    let c = client();
    let metric = create_metric(&c, &s, "low").await;
    assert_eq!(post_measure(&c, &s, &metric, 0).await.0, 202);

    let _ = redis.kill();
    let _ = redis.wait();
    let started = Instant::now();
    let (status, body) = post_measure(&c, &s, &metric, 1).await;
    assert_eq!(status, 503, "with Redis down: {body}");
    assert!(
        body.contains("redis"),
        "the answer names the backend: {body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered within the operation timeout, not after {:?}",
        started.elapsed()
    );

    let mut redis = start_redis(port, &redis_dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut acked = vec![0];
    let mut t = 2;
    loop {
        let (status, body) = post_measure(&c, &s, &metric, t).await;
        if status == 202 {
            acked.push(t);
            break;
        }
        assert_eq!(status, 503, "while Redis comes back: {body}");
        assert!(
            Instant::now() < deadline,
            "still 503 10 s after Redis returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        t += 1;
    }

    // Every acknowledged measure is aggregated exactly once: they all fall
    // in one 5-minute bucket of `low`, whose `count` must equal them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = c
            .get(s.url(&format!(
                "/v1/metric/{metric}/measures?aggregation=count&refresh=true"
            )))
            .basic_auth("admin", Some(""))
            .send()
            .await
            .expect("read");
        let status = resp.status();
        let points: serde_json::Value = resp.json().await.unwrap_or_default();
        let counted: f64 = points
            .as_array()
            .map(|a| a.iter().filter_map(|p| p[2].as_f64()).sum())
            .unwrap_or(0.0);
        if status == 200 && counted == acked.len() as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged {} measures, aggregated {counted} ({status}: {points})",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(s);
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&redis_dir);
}
