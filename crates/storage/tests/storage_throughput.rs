//! Throughput figures (ignored by default; they never fail on timing):
//! `cargo test --release -p gnocchi-storage --test storage_throughput -- --ignored --nocapture`

mod common;

use carbonara::{Method, SplitKey};
use common::*;
use gnocchi_storage::local_aggregates::LocalAggregates;
use gnocchi_storage::local_incoming::LocalIncoming;
use gnocchi_storage::{Aggregates, Incoming, SplitRef, WriteBatch};
use std::sync::Arc;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn incoming_add_measures_throughput() {
    let dir = TempDir::new("bench-incoming");
    let inc = Arc::new(LocalIncoming::open(dir.path(), 128).unwrap());
    for (tasks, per_metric) in [
        (1usize, 5000i64),
        (4, 5000),
        (16, 5000),
        (64, 5000),
        (64, 50),
    ] {
        let batches_per_task = 3200 / tasks;
        let metrics_per_batch = (5000 / per_metric) as u64;
        let start = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let inc = inc.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..batches_per_task {
                    let b = (0..metrics_per_batch)
                        .map(|k| {
                            (
                                metric(t as u64 * 1000 + k),
                                points(i as i64 * per_metric, per_metric),
                            )
                        })
                        .collect();
                    inc.add_measures(b).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let measures = (tasks * batches_per_task * 5000) as f64;
        println!(
            "add_measures: {tasks} tasks, 5000-measure batches ({metrics_per_batch} metrics x {per_metric}): {:.2}M measures/s, {:.0} batches/s",
            measures / secs / 1e6,
            (tasks * batches_per_task) as f64 / secs
        );
        for s in 0..inc.sacks() {
            let taken = inc.take(s).await.unwrap();
            inc.commit(taken).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn aggregates_write_throughput() {
    let dir = TempDir::new("bench-aggregates");
    let store = LocalAggregates::open(&dir.path().join("a.redb")).unwrap();
    let methods = [
        Method::Mean,
        Method::Max,
        Method::Min,
        Method::Sum,
        Method::Count,
        Method::Last,
    ];
    let g = 60_000_000_000i64;
    // As processing does: every batch rewrites the raw buffers and the current
    // split of each series; now and then the splits start anew.
    for round in 0..8i64 {
        let split_start = (round / 4) * g * 3600;
        let mut batch = WriteBatch::default();
        for m in 0..5000u64 {
            let id = metric(m);
            batch.raw.push((id, vec![7u8; 1000]));
            for method in methods {
                let key = SplitKey {
                    start: split_start,
                    granularity: g,
                };
                batch.splits.push((
                    SplitRef {
                        metric: id,
                        method,
                        key,
                    },
                    vec![3u8; 400],
                ));
            }
        }
        let n = batch.raw.len() + batch.splits.len();
        let start = Instant::now();
        store.write(batch).await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        let kind = if round % 4 == 0 {
            "new splits"
        } else {
            "rewritten splits"
        };
        println!(
            "aggregates write ({kind}): {n} objects (5000 raw of 1000 B + 30000 splits of 400 B) in {:.0} ms: {:.0} writes/s",
            secs * 1e3,
            n as f64 / secs
        );
    }
    let ids: Vec<_> = (0..5000).map(metric).collect();
    let start = Instant::now();
    let raw = store.get_raw(&ids).await.unwrap();
    assert!(raw.iter().all(|r| r.is_some()));
    println!(
        "aggregates get_raw: 5000 in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let series: Vec<_> = ids
        .iter()
        .flat_map(|&id| methods.map(|m| (id, m, g)))
        .collect();
    let start = Instant::now();
    let keys = store.list_split_keys(&series).await.unwrap();
    assert!(keys.iter().all(|k| k.len() == 2));
    println!(
        "aggregates list_split_keys: {} series in {:.1} ms",
        series.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
}
