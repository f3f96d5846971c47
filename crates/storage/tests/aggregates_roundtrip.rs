//! What is written to the aggregate store is read back, listed in order, and
//! deleted per split or per metric, also across a reopen.

mod common;

use carbonara::method::BaseMethod;
use carbonara::{Method, SplitKey};
use common::*;
use gnocchi_storage::local_aggregates::LocalAggregates;
use gnocchi_storage::{Aggregates, SplitRef, StorageError, WriteBatch};

const G60: i64 = 60_000_000_000;
const G1: i64 = 1_000_000_000;

fn split(metric: uuid::Uuid, method: Method, granularity: i64, start: i64) -> SplitRef {
    SplitRef {
        metric,
        method,
        key: SplitKey { start, granularity },
    }
}

#[tokio::test]
async fn writes_are_listed_read_and_deleted() {
    let dir = TempDir::new("aggregates");
    let path = dir.path().join("aggregates.redb");
    let (a, b) = (metric(1), metric(2));
    let starts = [
        -7 * G60 * 3600,
        -G60 * 3600,
        0,
        G60 * 3600,
        5 * G60 * 3600,
        1_425_600_000 * G1,
    ];
    {
        let store = LocalAggregates::open(&path).unwrap();
        assert_eq!(store.get_raw(&[a, b]).await.unwrap(), vec![None, None]);
        let mut batch = WriteBatch {
            raw: vec![(a, b"raw a".to_vec()), (b, b"raw b".to_vec())],
            ..Default::default()
        };
        // Written in no particular order; listed sorted.
        for (i, &start) in starts.iter().enumerate().rev() {
            for metric in [a, b] {
                for method in [
                    Method::Mean,
                    Method::Pct(95),
                    Method::Rate(BaseMethod::Mean),
                ] {
                    for g in [G1, G60] {
                        batch.splits.push((
                            split(metric, method, g, start),
                            format!("{metric} {method:?} {g} {i}").into_bytes(),
                        ));
                    }
                }
            }
        }
        store.write(batch).await.unwrap();
    }

    let store = LocalAggregates::open(&path).unwrap();
    assert_eq!(
        store.get_raw(&[b, metric(3), a]).await.unwrap(),
        vec![Some(b"raw b".to_vec()), None, Some(b"raw a".to_vec())]
    );
    let listed = store
        .list_split_keys(&[
            (a, Method::Mean, G60),
            (a, Method::Rate(BaseMethod::Mean), G1),
            (a, Method::Max, G60),
            (metric(3), Method::Mean, G60),
        ])
        .await
        .unwrap();
    let keys = |g| {
        starts
            .iter()
            .map(|&start| SplitKey {
                start,
                granularity: g,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(listed, vec![keys(G60), keys(G1), vec![], vec![]]);

    let got = store
        .get_splits(&[
            split(b, Method::Pct(95), G1, 0),
            split(b, Method::Pct(95), G1, 1),
            split(a, Method::Mean, G60, starts[5]),
        ])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(format!("{b} {:?} {G1} 2", Method::Pct(95)).into_bytes()),
            None,
            Some(format!("{a} {:?} {G60} 5", Method::Mean).into_bytes())
        ]
    );

    // Overwrite one split, delete another, in one batch.
    store
        .write(WriteBatch {
            raw: vec![(a, b"raw a 2".to_vec())],
            splits: vec![(split(a, Method::Mean, G60, 0), b"new".to_vec())],
            delete_splits: vec![
                split(a, Method::Mean, G60, starts[0]),
                split(a, Method::Mean, G60, 12345),
            ],
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_raw(&[a]).await.unwrap(),
        vec![Some(b"raw a 2".to_vec())]
    );
    assert_eq!(
        store
            .get_splits(&[split(a, Method::Mean, G60, 0)])
            .await
            .unwrap(),
        vec![Some(b"new".to_vec())]
    );
    assert_eq!(
        store
            .list_split_keys(&[(a, Method::Mean, G60)])
            .await
            .unwrap()[0],
        keys(G60)[1..].to_vec()
    );

    // Deleting a metric leaves its neighbours alone.
    store.delete_metrics(&[a]).await.unwrap();
    assert_eq!(
        store.get_raw(&[a, b]).await.unwrap(),
        vec![None, Some(b"raw b".to_vec())]
    );
    let listed = store
        .list_split_keys(&[
            (a, Method::Mean, G60),
            (a, Method::Pct(95), G1),
            (b, Method::Pct(95), G1),
        ])
        .await
        .unwrap();
    assert_eq!(listed, vec![vec![], vec![], keys(G1)]);
    drop(store);

    let store = LocalAggregates::open(&path).unwrap();
    assert_eq!(
        store.get_raw(&[a, b]).await.unwrap(),
        vec![None, Some(b"raw b".to_vec())]
    );
    assert_eq!(
        store
            .list_split_keys(&[(a, Method::Mean, G1)])
            .await
            .unwrap(),
        vec![vec![]]
    );
}

#[tokio::test]
async fn extreme_uuids_and_timestamps_are_kept_apart() {
    let dir = TempDir::new("aggregates-extreme");
    let store = LocalAggregates::open(&dir.path().join("a.redb")).unwrap();
    let (lo, hi) = (uuid::Uuid::nil(), uuid::Uuid::max());
    let mut batch = WriteBatch::default();
    for m in [lo, hi] {
        for start in [i64::MIN, -1, 0, i64::MAX] {
            batch
                .splits
                .push((split(m, Method::Count, G1, start), vec![1]));
        }
        batch.raw.push((m, vec![]));
    }
    store.write(batch).await.unwrap();
    let all: Vec<SplitKey> = [i64::MIN, -1, 0, i64::MAX]
        .iter()
        .map(|&start| SplitKey {
            start,
            granularity: G1,
        })
        .collect();
    assert_eq!(
        store
            .list_split_keys(&[(hi, Method::Count, G1)])
            .await
            .unwrap(),
        vec![all.clone()]
    );
    assert_eq!(store.get_raw(&[lo]).await.unwrap(), vec![Some(vec![])]);
    store.delete_metrics(&[hi]).await.unwrap();
    assert_eq!(
        store
            .list_split_keys(&[(hi, Method::Count, G1), (lo, Method::Count, G1)])
            .await
            .unwrap(),
        vec![vec![], all]
    );
}

#[test]
fn a_store_is_opened_once() {
    let dir = TempDir::new("aggregates-locked");
    let path = dir.path().join("a.redb");
    let _store = LocalAggregates::open(&path).unwrap();
    assert!(matches!(
        LocalAggregates::open(&path),
        Err(StorageError::Locked(_))
    ));
}
