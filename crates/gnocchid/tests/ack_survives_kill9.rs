//! Every measure acknowledged with 202 survives a kill -9 of the server, whether
//! it was still waiting in a sack or already aggregated: on the embedded
//! default (the write-ahead log) and, with the `ceph` feature, on Ceph
//! (measures in the sacks' omap, splits as objects).

mod common;
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::test]
async fn acknowledged_measures_survive_kill9() {
    survive_kill9("kill9", &[]).await;
}

/// Incoming and aggregates in a pool of the test's own.
#[cfg(feature = "ceph")]
#[tokio::test]
async fn acknowledged_measures_survive_kill9_on_ceph() {
    let pool = match ceph::CephPool::create(&format!("kill9-{}", std::process::id())) {
        Ok(p) => p,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let dir = temp_dir("kill9-ceph");
    let conf = dir.join("gnocchi.conf");
    let driver = pool.driver_options();
    std::fs::write(&conf, format!("[storage]\n{driver}\n[incoming]\n{driver}")).unwrap();
    let conf = conf.to_str().unwrap().to_string();
    survive_kill9("kill9-ceph", &["--config-file", &conf]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writers stream measures until the server is killed; after a restart every
/// acknowledged one is counted.
async fn survive_kill9(name: &str, args: &[&str]) {
    let s = Server::start(name, args);
    let c = client();
    // 1-second granularity and `count`, so every measure stays countable.
    let r = c
        .post(s.url("/v1/archive_policy"))
        .basic_auth("admin", Some(""))
        .json(
            &json!({"name": "count", "aggregation_methods": ["count"], "back_window": 100000,
                      "definition": [{"granularity": "1s"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(create_metric(&c, &s, "count").await);
    }

    // Writers push 10 distinct timestamps per request until the server dies.
    let acked: Arc<Vec<AtomicUsize>> =
        Arc::new((0..ids.len()).map(|_| AtomicUsize::new(0)).collect());
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (c, url, acked) = (
            c.clone(),
            s.url(&format!("/v1/metric/{id}/measures")),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for batch in 0..100_000usize {
                let body: Vec<Value> = (0..10)
                    .map(|k| json!({"timestamp": 1_700_000_000 + batch * 10 + k, "value": 1.0}))
                    .collect();
                match c
                    .post(&url)
                    .basic_auth("admin", Some(""))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 202 => {
                        acked[i].store((batch + 1) * 10, Ordering::SeqCst);
                    }
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let dir = s.kill9();
    for t in tasks {
        let _ = t.await;
    }

    let s = Server::start_in(dir, args);
    let mut total = 0;
    for (i, id) in ids.iter().enumerate() {
        let want = acked[i].load(Ordering::SeqCst);
        assert!(want > 0, "the writers made no progress before the kill");
        let r = c
            .get(s.url(&format!(
                "/v1/metric/{id}/measures?refresh=true&aggregation=count"
            )))
            .basic_auth("admin", Some(""))
            .send()
            .await
            .unwrap();
        let points: Vec<Value> = r.json().await.unwrap();
        let got: f64 = points.iter().map(|p| p[2].as_f64().unwrap()).sum();
        assert!(
            got as usize >= want,
            "metric {id}: {got} measures after restart, {want} were acknowledged"
        );
        total += want;
    }
    eprintln!("{total} acknowledged measures all present after kill -9");
}
