//! `upgrade()` creates the schema once, is a no-op afterwards (also across reopen and
//! concurrent upgraders), keeps the data, and refuses a schema newer than it knows.

mod common;

use common::{TempDir, TestDb, new_metric, policy};
use gnocchi_index::sqlite::SqliteIndexer;
use gnocchi_index::{IndexError, Indexer};
use sqlx::{Connection, Row, SqliteConnection};

async fn versions(path: &str) -> Vec<i64> {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{path}"))
        .await
        .unwrap();
    sqlx::query("SELECT version FROM schema_version ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn upgrade_twice_and_after_reopen_keeps_schema_and_data() {
    let dir = TempDir::new();
    let path = dir.db_path();
    let index = SqliteIndexer::open(&path).await.unwrap();
    index.upgrade().await.unwrap();
    index.upgrade().await.unwrap();
    index.create_archive_policy(&policy("low")).await.unwrap();
    let m = index
        .create_metric(&new_metric("low", Some("cpu"), None))
        .await
        .unwrap();
    drop(index);

    let v = versions(&path).await;
    assert!(!v.is_empty());
    assert_eq!(v, (1..=v.len() as i64).collect::<Vec<_>>());

    let index = SqliteIndexer::open(&path).await.unwrap();
    index.upgrade().await.unwrap();
    assert_eq!(versions(&path).await, v);
    assert_eq!(
        index.get_archive_policy("low").await.unwrap().unwrap(),
        policy("low")
    );
    assert_eq!(index.get_metrics(&[m.id]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_upgraders_apply_each_migration_once() {
    let dir = TempDir::new();
    let path = dir.db_path();
    let a = SqliteIndexer::open(&path).await.unwrap();
    let b = SqliteIndexer::open(&path).await.unwrap();
    let (ra, rb) = tokio::join!(a.upgrade(), b.upgrade());
    ra.unwrap();
    rb.unwrap();
    let v = versions(&path).await;
    assert_eq!(v, (1..=v.len() as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = TempDir::new();
    let path = dir.db_path();
    let index = SqliteIndexer::open(&path).await.unwrap();
    index.upgrade().await.unwrap();
    let mut conn = SqliteConnection::connect(&format!("sqlite://{path}"))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (9999, 'future', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert!(matches!(index.upgrade().await, Err(IndexError::Backend(m)) if m.contains("9999")));
}

#[tokio::test]
async fn memory_database_upgrades_and_serves() {
    let index = SqliteIndexer::open(":memory:").await.unwrap();
    index.upgrade().await.unwrap();
    index.upgrade().await.unwrap();
    index.create_archive_policy(&policy("low")).await.unwrap();
    let m = index
        .create_metric(&new_metric("low", Some("cpu"), None))
        .await
        .unwrap();
    let got = index.get_metrics(&[m.id]).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(*got[0].archive_policy, policy("low"));
    let listed = index.list_metrics(&Default::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn processes_starting_together_migrate_once_on_any_backend() {
    let db = TestDb::new().await;
    let (a, b, c) = (db.open().await, db.open().await, db.open().await);
    let (ra, rb, rc) = tokio::join!(a.upgrade(), b.upgrade(), c.upgrade());
    ra.unwrap();
    rb.unwrap();
    rc.unwrap();
    a.create_archive_policy(&policy("low")).await.unwrap();
    let again = db.open().await;
    again.upgrade().await.unwrap();
    assert_eq!(
        again.get_archive_policy("low").await.unwrap(),
        Some(policy("low"))
    );
    assert_eq!(
        again.list_resource_types().await.unwrap().len(),
        1,
        "generic, seeded once"
    );
}
