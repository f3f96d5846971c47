//! A log segment is deleted once it is no longer written to and every measure in
//! it is committed; segments holding uncommitted measures are kept.

mod common;

use common::*;
use gnocchi_storage::Incoming;
use gnocchi_storage::local_incoming::{LocalIncoming, LocalIncomingOptions};
use uuid::Uuid;

fn small() -> LocalIncomingOptions {
    LocalIncomingOptions {
        segment_bytes: 4096,
    }
}

#[tokio::test]
async fn segments_of_committed_measures_are_deleted() {
    let dir = TempDir::new("segments");
    let metrics: Vec<Uuid> = (0..8).map(metric).collect();
    let inc = LocalIncoming::open_with_options(dir.path(), 4, small()).unwrap();
    for round in 0..20 {
        inc.add_measures(batch(&metrics, round * 10, 10))
            .await
            .unwrap();
    }
    assert!(segments(dir.path()).len() > 5, "{:?}", segments(dir.path()));

    // Sacks 0..3 processed: sack 3 still holds every segment.
    for s in 0..3 {
        let taken = inc.take(s).await.unwrap();
        inc.commit(taken).await.unwrap();
    }
    assert!(segments(dir.path()).len() > 5);

    let taken = inc.take(3).await.unwrap();
    assert_eq!(taken.measures.len(), 2);
    inc.commit(taken).await.unwrap();
    // Only the segment being written remains.
    assert_eq!(segments(dir.path()).len(), 1, "{:?}", segments(dir.path()));
    assert_eq!(inc.backlog().await.unwrap().measures, 0);
    drop(inc);

    // Nothing comes back; reopening starts a new segment and drops the old one.
    let inc = LocalIncoming::open_with_options(dir.path(), 4, small()).unwrap();
    assert_eq!(inc.backlog().await.unwrap().measures, 0);
    assert_eq!(segments(dir.path()).len(), 1);
}

#[tokio::test]
async fn released_measures_keep_their_segments() {
    let dir = TempDir::new("segments-release");
    let metrics: Vec<Uuid> = (0..4).map(metric).collect();
    let inc = LocalIncoming::open_with_options(dir.path(), 1, small()).unwrap();
    for round in 0..10 {
        inc.add_measures(batch(&metrics, round * 10, 10))
            .await
            .unwrap();
    }
    let taken = inc.take(0).await.unwrap();
    for round in 10..20 {
        inc.add_measures(batch(&metrics, round * 10, 10))
            .await
            .unwrap();
    }
    let before = segments(dir.path());
    inc.release(taken).await.unwrap();
    assert_eq!(segments(dir.path()), before);
    drop(inc);

    let inc = LocalIncoming::open_with_options(dir.path(), 1, small()).unwrap();
    let all = take_all(&inc).await;
    for m in &metrics {
        assert_eq!(all[m], points(0, 200));
    }
}

#[tokio::test]
async fn segments_are_deleted_after_restart_and_commit() {
    let dir = TempDir::new("segments-restart");
    let metrics: Vec<Uuid> = (0..6).map(metric).collect();
    {
        let inc = LocalIncoming::open_with_options(dir.path(), 2, small()).unwrap();
        for round in 0..10 {
            inc.add_measures(batch(&metrics, round * 10, 10))
                .await
                .unwrap();
        }
    }
    let inc = LocalIncoming::open_with_options(dir.path(), 2, small()).unwrap();
    assert!(segments(dir.path()).len() > 3);
    for s in 0..2 {
        let taken = inc.take(s).await.unwrap();
        assert_eq!(taken.measures.len(), 3);
        inc.commit(taken).await.unwrap();
    }
    assert_eq!(segments(dir.path()).len(), 1);
}
