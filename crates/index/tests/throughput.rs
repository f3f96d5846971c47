//! Throughput figures (printed, never asserted). Run with
//! `cargo test -p gnocchi-index --release --test throughput -- --ignored --nocapture`.

mod common;

use common::{indexer, new_metric, policy};
use gnocchi_index::Indexer;
use gnocchi_index::sqlite::SqliteIndexer;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

const TASKS: usize = 8;
const PER_TASK: usize = 5_000;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "throughput figures; run explicitly"]
async fn metric_create_and_get_throughput() {
    let (_dir, index) = indexer().await;
    let index: Arc<SqliteIndexer> = Arc::new(index);
    index.create_archive_policy(&policy("low")).await.unwrap();

    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let index = index.clone();
        tasks.push(tokio::spawn(async move {
            let r = Uuid::new_v4();
            let mut ids = Vec::with_capacity(PER_TASK);
            for i in 0..PER_TASK {
                let name = format!("m{t}-{i}");
                let m = index
                    .create_metric(&new_metric("low", Some(&name), Some(r)))
                    .await
                    .unwrap();
                ids.push(m.id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "create_metric: {} in {secs:.2}s = {:.0}/s ({TASKS} tasks)",
        ids.len(),
        ids.len() as f64 / secs
    );

    let ids = Arc::new(ids);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (index, ids) = (index.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let got = index
                    .get_metrics(&[ids[(t * PER_TASK + i * 7919) % ids.len()]])
                    .await
                    .unwrap();
                assert_eq!(got.len(), 1);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = TASKS * PER_TASK;
    println!(
        "get_metrics (1 id): {n} in {secs:.2}s = {:.0}/s ({TASKS} tasks)",
        n as f64 / secs
    );

    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (index, ids) = (index.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK / 5 {
                index.delete_metric(ids[t * PER_TASK + i]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = TASKS * PER_TASK / 5;
    println!(
        "delete_metric: {n} in {secs:.2}s = {:.0}/s ({TASKS} tasks)",
        n as f64 / secs
    );

    let start = Instant::now();
    let q = gnocchi_index::MetricQuery {
        limit: Some(1000),
        ..Default::default()
    };
    let mut rows = 0;
    for _ in 0..20 {
        rows += index.list_metrics(&q).await.unwrap().len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "list_metrics (limit 1000): {:.0} rows/s",
        rows as f64 / secs
    );
}
