//! The number of sacks is stored at the first open and the stored value wins;
//! a directory is used by one process (one open store) at a time.

mod common;

use common::*;
use gnocchi_storage::local_incoming::LocalIncoming;
use gnocchi_storage::{Incoming, StorageError, sack_of};

#[tokio::test]
async fn stored_sack_count_wins() {
    let dir = TempDir::new("sacks");
    {
        let inc = LocalIncoming::open(dir.path(), 8).unwrap();
        assert_eq!(inc.sacks(), 8);
        inc.add_measures(batch(&[metric(13)], 0, 2)).await.unwrap();
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config, serde_json::json!({"sacks": 8}));

    let inc = LocalIncoming::open(dir.path(), 128).unwrap();
    assert_eq!(inc.sacks(), 8);
    let taken = inc.take(sack_of(metric(13), 8)).await.unwrap();
    assert_eq!(taken.measures[&metric(13)], points(0, 2));
}

#[test]
fn invalid_sack_counts_are_refused() {
    let dir = TempDir::new("sacks-invalid");
    assert!(LocalIncoming::open(dir.path(), 0).is_err());
    assert!(LocalIncoming::open(dir.path(), 65536).is_err());
    assert!(!dir.path().join("config.json").exists());
}

#[test]
fn directory_is_locked_while_open() {
    let dir = TempDir::new("locked");
    let inc = LocalIncoming::open(dir.path(), 4).unwrap();
    match LocalIncoming::open(dir.path(), 4) {
        Err(StorageError::Locked(_)) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened twice"),
    }
    drop(inc);
    LocalIncoming::open(dir.path(), 4).unwrap();
}

#[tokio::test]
async fn sack_count_changes_only_when_nothing_is_pending() {
    let dir = TempDir::new("change-sacks");
    {
        let inc = LocalIncoming::open(dir.path(), 8).unwrap();
        inc.add_measures(batch(&[metric(1)], 0, 2)).await.unwrap();
        // Open: locked.
        assert!(matches!(
            LocalIncoming::change_sacks(dir.path(), 16),
            Err(StorageError::Locked(_))
        ));
    }
    assert!(LocalIncoming::change_sacks(dir.path(), 16).is_err());
    {
        let inc = LocalIncoming::open(dir.path(), 8).unwrap();
        let taken = inc.take(sack_of(metric(1), 8)).await.unwrap();
        inc.commit(taken).await.unwrap();
    }
    assert_eq!(LocalIncoming::change_sacks(dir.path(), 16).unwrap(), 8);
    let inc = LocalIncoming::open(dir.path(), 8).unwrap();
    assert_eq!(inc.sacks(), 16);
    assert_eq!(inc.backlog().await.unwrap().measures, 0);
    inc.add_measures(batch(&[metric(1)], 5, 1)).await.unwrap();
    drop(inc);
    let inc = LocalIncoming::open(dir.path(), 8).unwrap();
    assert_eq!(
        inc.take(sack_of(metric(1), 16)).await.unwrap().measures[&metric(1)],
        points(5, 1)
    );
}
