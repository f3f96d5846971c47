//! Throughput figures (printed, never asserted). Run with
//! `cargo test -p gnocchi-index --release --test throughput -- --ignored --nocapture`.

mod common;

use common::{indexer, new_metric, policy};
use gnocchi_index::MetricQuery;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// Concurrent callers (as an API server's in-flight requests); env
/// `GNOCCHI_INDEX_BENCH_TASKS` overrides.
fn tasks() -> usize {
    std::env::var("GNOCCHI_INDEX_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}
const TOTAL: usize = 40_000;

/// CPU seconds this process has used (user + system), from /proc: the figure that
/// does not depend on what else the machine runs.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 (utime, stime), counted after the ")" that ends field 2.
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn report(what: &str, n: usize, start: Instant, cpu0: f64, tasks: usize) {
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    println!(
        "{what}: {n} in {secs:.2}s = {:.0}/s ({tasks} tasks); {:.1} us CPU each",
        n as f64 / secs,
        cpu * 1e6 / n as f64
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "throughput figures; run explicitly"]
async fn metric_create_get_delete_list_throughput() {
    let (_dir, index) = indexer().await;
    let tasks_n = tasks();
    let per_task = TOTAL / tasks_n;
    index.create_archive_policy(&policy("low")).await.unwrap();

    let (start, cpu0) = (Instant::now(), cpu_secs());
    let mut tasks = Vec::new();
    for t in 0..tasks_n {
        let index = index.clone();
        tasks.push(tokio::spawn(async move {
            let r = Uuid::new_v4();
            let mut ids = Vec::with_capacity(per_task);
            for i in 0..per_task {
                let name = format!("m{t}-{i}");
                let nm = new_metric("low", Some(&name), Some(r));
                ids.push(index.create_metric(&nm).await.unwrap().id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    report("create_metric", ids.len(), start, cpu0, tasks_n);

    let ids = Arc::new(ids);
    let (start, cpu0) = (Instant::now(), cpu_secs());
    let mut tasks = Vec::new();
    for t in 0..tasks_n {
        let (index, ids) = (index.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let id = ids[(t * per_task + i * 7919) % ids.len()];
                assert_eq!(index.get_metrics(&[id]).await.unwrap().len(), 1);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    report(
        "get_metrics (1 id)",
        tasks_n * per_task,
        start,
        cpu0,
        tasks_n,
    );

    let (start, cpu0) = (Instant::now(), cpu_secs());
    let mut tasks = Vec::new();
    for t in 0..tasks_n {
        let (index, ids) = (index.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task / 5 {
                index.delete_metric(ids[t * per_task + i]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    report(
        "delete_metric",
        tasks_n * (per_task / 5),
        start,
        cpu0,
        tasks_n,
    );

    let (start, cpu0) = (Instant::now(), cpu_secs());
    let mut marker = None;
    let mut rows = 0;
    loop {
        let q = MetricQuery {
            limit: Some(1000),
            marker,
            ..Default::default()
        };
        let page = index.list_metrics(&q).await.unwrap();
        rows += page.len();
        match page.last() {
            Some(m) if page.len() == 1000 => marker = Some(m.id.to_string()),
            _ => break,
        }
    }
    report("list_metrics rows (pages of 1000)", rows, start, cpu0, 1);
}
