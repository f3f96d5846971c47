//! Concurrent single-statement writes share commits; a write that violates a
//! constraint fails alone, with its own error, and every acknowledged write is there.

mod common;

use common::{TempDir, new_metric, policy};
use gnocchi_index::sqlite::SqliteIndexer;
use gnocchi_index::{IndexError, Indexer, MetricQuery};
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_fail_alone_and_succeed_durably() {
    let dir = TempDir::new();
    let a = Arc::new(SqliteIndexer::open(&dir.db_path()).await.unwrap());
    a.upgrade().await.unwrap();
    a.create_archive_policy(&policy("low")).await.unwrap();
    // `a` has "gone" cached; another process deletes it: a's inserts hit the
    // foreign key inside the group commit.
    a.create_archive_policy(&policy("gone")).await.unwrap();
    let b = SqliteIndexer::open(&dir.db_path()).await.unwrap();
    b.delete_archive_policy("gone").await.unwrap();

    let r = Uuid::new_v4();
    let mut tasks = Vec::new();
    for round in 0..3 {
        for k in 0..40 {
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                let nm = match k % 4 {
                    // Two writers per name on one resource: exactly one wins.
                    0 | 1 => new_metric("low", Some(&format!("dup{round}-{}", k / 4)), Some(r)),
                    2 => new_metric("gone", Some("x"), None),
                    _ => new_metric("low", Some(&format!("u{round}-{k}")), Some(r)),
                };
                (k % 4, a.create_metric(&nm).await.map(|m| m.id))
            }));
        }
    }
    let mut created = HashSet::new();
    let (mut dups, mut gone) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (_, Ok(id)) => {
                created.insert(id);
            }
            (0 | 1, Err(IndexError::NamedMetricAlreadyExists(n))) => {
                assert!(n.starts_with("dup"));
                dups += 1;
            }
            (2, Err(IndexError::ArchivePolicyNotFound(n))) => {
                assert_eq!(n, "gone");
                gone += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(dups, 3 * 10);
    assert_eq!(gone, 3 * 10);
    assert_eq!(created.len(), 3 * 20);

    // Concurrent deletes of the same metrics: one succeeds, one is not found.
    let victims: Vec<Uuid> = created.iter().take(10).copied().collect();
    let mut tasks = Vec::new();
    for &id in victims.iter().chain(&victims) {
        let a = a.clone();
        tasks.push(tokio::spawn(async move { a.delete_metric(id).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(IndexError::MetricNotFound(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(ok, victims.len());

    // Everything acknowledged is visible to another process.
    let listed: HashSet<Uuid> = b
        .list_metrics(&MetricQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    let expected: HashSet<Uuid> = created
        .difference(&victims.iter().copied().collect())
        .copied()
        .collect();
    assert_eq!(listed, expected);
}
