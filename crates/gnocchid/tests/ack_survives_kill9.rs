//! Every measure acknowledged with 202 survives a kill -9 of the server, whether
//! it was still waiting in a sack or already aggregated.

mod common;
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::test]
async fn acknowledged_measures_survive_kill9() {
    let s = Server::start("kill9", &[]);
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

    let s = Server::start_in(dir, &[]);
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
