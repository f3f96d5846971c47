//! Every acknowledged write is in the database after the process dies without any
//! cleanup (`abort()`, as kill -9): WAL with synchronous=NORMAL.
//!
//! The test re-runs its own binary as the writer child: it writes, records what it
//! was acknowledged, and aborts mid-flight with writes still being submitted.

mod common;

use common::{TempDir, new_metric, policy};
use gnocchi_index::sqlite::SqliteIndexer;
use gnocchi_index::{Indexer, MetricQuery};
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

const CHILD_ENV: &str = "GNOCCHI_INDEX_ABORT_CHILD_DB";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of acknowledged_writes_survive_abort"]
async fn child_writes_then_aborts() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let index = Arc::new(SqliteIndexer::open(&path).await.unwrap());
    index.upgrade().await.unwrap();
    index.create_archive_policy(&policy("low")).await.unwrap();
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (index, acked) = (index.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let m = index
                    .create_metric(&new_metric("low", None, None))
                    .await
                    .unwrap();
                acked.lock().unwrap().push(m.id);
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Print what was acknowledged so far, then die with writes in flight.
    let ids = acked.lock().unwrap().clone();
    let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    std::fs::write(format!("{path}.acked"), list.join("\n")).unwrap();
    std::process::abort();
}

#[tokio::test]
async fn acknowledged_writes_survive_abort() {
    let dir = TempDir::new();
    let path = dir.db_path();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writes_then_aborts",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must have aborted");
    let acked: HashSet<Uuid> = std::fs::read_to_string(format!("{path}.acked"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(!acked.is_empty());

    let index = SqliteIndexer::open(&path).await.unwrap();
    index.upgrade().await.unwrap();
    let present: HashSet<Uuid> = index
        .list_metrics(&MetricQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    let lost: Vec<&Uuid> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "{} acknowledged metrics lost", lost.len());
}
