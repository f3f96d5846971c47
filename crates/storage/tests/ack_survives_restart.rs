//! A measure acknowledged by `add_measures` is pending again after the store is
//! dropped (or crashes) and reopened, including when the log ends with a torn record.

mod common;

use carbonara::Measure;
use common::*;
use gnocchi_storage::Incoming;
use gnocchi_storage::local_incoming::LocalIncoming;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use uuid::Uuid;

/// Three rounds of concurrent writes (one task per metric group); returns what is expected.
async fn write_rounds(
    inc: &Arc<LocalIncoming>,
    metrics: &[Uuid],
    rounds: i64,
) -> HashMap<Uuid, Vec<Measure>> {
    let mut expected: HashMap<Uuid, Vec<Measure>> = HashMap::new();
    for round in 0..rounds {
        let mut tasks = Vec::new();
        for chunk in metrics.chunks(4) {
            let inc = inc.clone();
            let b = batch(chunk, round * 10, 10);
            tasks.push(tokio::spawn(async move { inc.add_measures(b).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        for m in metrics {
            expected
                .entry(*m)
                .or_default()
                .extend(points(round * 10, 10));
        }
    }
    expected
}

#[tokio::test]
async fn acknowledged_measures_are_pending_after_reopen() {
    let dir = TempDir::new("restart");
    let metrics: Vec<Uuid> = (0..20).map(metric).collect();
    let expected = {
        let inc = Arc::new(LocalIncoming::open(dir.path(), 8).unwrap());
        write_rounds(&inc, &metrics, 3).await
    };
    let inc = LocalIncoming::open(dir.path(), 8).unwrap();
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 20 * 30);
    assert_eq!(backlog.per_metric.len(), 20);
    assert!(backlog.per_metric.values().all(|&b| b == 3));
    assert_eq!(take_all(&inc).await, expected);
}

#[tokio::test]
async fn replayed_sacks_are_reported_new() {
    let dir = TempDir::new("restart-new");
    {
        let inc = LocalIncoming::open(dir.path(), 8).unwrap();
        inc.add_measures(batch(&[metric(3)], 0, 5)).await.unwrap();
    }
    let inc = LocalIncoming::open(dir.path(), 8).unwrap();
    let new = inc.wait_for_new(std::time::Duration::from_millis(10)).await;
    assert_eq!(new, vec![gnocchi_storage::sack_of(metric(3), 8)]);
}

#[tokio::test]
async fn torn_last_record_is_ignored() {
    let dir = TempDir::new("torn");
    let metrics: Vec<Uuid> = (0..10).map(metric).collect();
    let mut expected = {
        let inc = Arc::new(LocalIncoming::open(dir.path(), 4).unwrap());
        write_rounds(&inc, &metrics, 2).await
    };
    // A crash in the middle of a write leaves part of a record behind.
    let last = segments(dir.path()).pop().unwrap();
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(&last))
            .unwrap();
        // Header announcing 100 bytes with a wrong checksum, then 37 bytes only.
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(&0xdead_beefu32.to_le_bytes()).unwrap();
        f.write_all(&[1u8; 37]).unwrap();
    }
    {
        let inc = LocalIncoming::open(dir.path(), 4).unwrap();
        assert_eq!(take_all(&inc).await, expected);
    }
    // The torn segment is now an older one: it must still replay cleanly, and
    // what was written after it too.
    {
        let inc = LocalIncoming::open(dir.path(), 4).unwrap();
        inc.add_measures(batch(&metrics[..1], 100, 3))
            .await
            .unwrap();
        expected
            .get_mut(&metrics[0])
            .unwrap()
            .extend(points(100, 3));
    }
    let inc = LocalIncoming::open(dir.path(), 4).unwrap();
    assert_eq!(take_all(&inc).await, expected);
}

#[tokio::test]
async fn garbage_and_zeroes_at_the_tail_are_ignored() {
    for tail in [
        vec![0u8; 4096],
        vec![0xffu8; 3],
        b"not a record at all".to_vec(),
    ] {
        let dir = TempDir::new("tail");
        {
            let inc = LocalIncoming::open(dir.path(), 4).unwrap();
            inc.add_measures(batch(&[metric(1), metric(2)], 0, 7))
                .await
                .unwrap();
        }
        let last = segments(dir.path()).pop().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(&last))
            .unwrap()
            .write_all(&tail)
            .unwrap();
        let inc = LocalIncoming::open(dir.path(), 4).unwrap();
        let all = take_all(&inc).await;
        assert_eq!(all.len(), 2);
        assert_eq!(all[&metric(1)], points(0, 7));
        assert_eq!(all[&metric(2)], points(0, 7));
    }
}

#[tokio::test]
async fn taken_but_uncommitted_measures_are_pending_after_reopen() {
    let dir = TempDir::new("taken-restart");
    let m = metric(5);
    {
        let inc = LocalIncoming::open(dir.path(), 4).unwrap();
        inc.add_measures(batch(&[m], 0, 10)).await.unwrap();
        let taken = inc.take(gnocchi_storage::sack_of(m, 4)).await.unwrap();
        assert_eq!(taken.measures[&m], points(0, 10));
        // Processing "crashes": neither commit nor release.
    }
    let inc = LocalIncoming::open(dir.path(), 4).unwrap();
    assert_eq!(take_all(&inc).await[&m], points(0, 10));
}

#[tokio::test]
async fn committed_measures_are_not_replayed() {
    let dir = TempDir::new("committed-restart");
    let metrics: Vec<Uuid> = (0..12).map(metric).collect();
    {
        let inc = LocalIncoming::open(dir.path(), 4).unwrap();
        inc.add_measures(batch(&metrics, 0, 10)).await.unwrap();
        // Sack 0 is processed; the others are not.
        let taken = inc.take(0).await.unwrap();
        assert!(!taken.measures.is_empty());
        // Measures arriving while sack 0 is processed stay pending.
        inc.add_measures(batch(&metrics, 10, 5)).await.unwrap();
        inc.commit(taken).await.unwrap();
    }
    let inc = LocalIncoming::open(dir.path(), 4).unwrap();
    let all = take_all(&inc).await;
    assert_eq!(all.len(), 12);
    for m in &metrics {
        if gnocchi_storage::sack_of(*m, 4) == 0 {
            assert_eq!(all[m], points(10, 5));
        } else {
            let mut p = points(0, 10);
            p.extend(points(10, 5));
            assert_eq!(all[m], p);
        }
    }
}
