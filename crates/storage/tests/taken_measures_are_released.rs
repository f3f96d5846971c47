//! Taking a sack leases its measures; releasing them puts them back in front of
//! the measures that arrived meanwhile; committing removes them for good.

mod common;

use common::*;
use gnocchi_storage::local_incoming::LocalIncoming;
use gnocchi_storage::{Incoming, SackMeasures, sack_of};
use std::time::Duration;

#[tokio::test]
async fn released_measures_come_back_before_newer_ones() {
    let dir = TempDir::new("release");
    let inc = LocalIncoming::open(dir.path(), 4).unwrap();
    let (a, b) = (metric(0), metric(4)); // same sack (0) with 4 sacks
    assert_eq!(sack_of(a, 4), sack_of(b, 4));
    let sack = sack_of(a, 4);
    inc.add_measures(batch(&[a, b], 0, 3)).await.unwrap();
    inc.add_measures(batch(&[a], 3, 2)).await.unwrap();

    let taken = inc.take(sack).await.unwrap();
    assert_ne!(taken.token, 0);
    let mut a_first = points(0, 3);
    a_first.extend(points(3, 2));
    assert_eq!(taken.measures[&a], a_first);
    assert_eq!(taken.measures[&b], points(0, 3));

    // Taken measures still count in the backlog.
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 8);
    assert_eq!(backlog.per_metric[&a], 2);
    assert_eq!(backlog.per_metric[&b], 1);

    // While leased: new measures go to a fresh map, and a second take gets nothing.
    inc.add_measures(batch(&[a], 100, 2)).await.unwrap();
    let second = inc.take(sack).await.unwrap();
    assert_eq!(second.token, 0);
    assert!(second.measures.is_empty());
    inc.commit(second).await.unwrap(); // token 0: no-op
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 10);
    assert_eq!(backlog.per_metric[&a], 3);

    inc.release(taken).await.unwrap();
    let again = inc.take(sack).await.unwrap();
    let mut all_a = a_first.clone();
    all_a.extend(points(100, 2));
    assert_eq!(again.measures[&a], all_a);
    assert_eq!(again.measures[&b], points(0, 3));
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 10);
    assert_eq!(backlog.per_metric[&a], 3);

    inc.commit(again).await.unwrap();
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 0);
    assert!(backlog.per_metric.is_empty());
    assert_eq!(inc.take(sack).await.unwrap().token, 0);
}

#[tokio::test]
async fn released_measures_survive_restart_in_order() {
    let dir = TempDir::new("release-restart");
    let a = metric(1);
    let sack = sack_of(a, 2);
    {
        let inc = LocalIncoming::open(dir.path(), 2).unwrap();
        inc.add_measures(batch(&[a], 0, 3)).await.unwrap();
        let taken = inc.take(sack).await.unwrap();
        inc.add_measures(batch(&[a], 3, 3)).await.unwrap();
        inc.release(taken).await.unwrap();
    }
    let inc = LocalIncoming::open(dir.path(), 2).unwrap();
    assert_eq!(inc.take(sack).await.unwrap().measures[&a], points(0, 6));
}

#[tokio::test]
async fn stale_tokens_are_refused() {
    let dir = TempDir::new("token");
    let inc = LocalIncoming::open(dir.path(), 1).unwrap();
    inc.add_measures(batch(&[metric(1)], 0, 3)).await.unwrap();
    let taken = inc.take(0).await.unwrap();
    let forged = SackMeasures {
        sack: 0,
        measures: Default::default(),
        token: taken.token + 1,
    };
    assert!(inc.commit(forged).await.is_err());
    let forged = SackMeasures {
        sack: 0,
        measures: Default::default(),
        token: taken.token + 1,
    };
    assert!(inc.release(forged).await.is_err());
    let token = taken.token;
    inc.commit(taken).await.unwrap();
    let stale = SackMeasures {
        sack: 0,
        measures: Default::default(),
        token,
    };
    assert!(inc.release(stale).await.is_err());
    assert!(inc.take(7).await.is_err());
}

#[tokio::test]
async fn new_sacks_are_notified() {
    let dir = TempDir::new("notify");
    let inc = std::sync::Arc::new(LocalIncoming::open(dir.path(), 8).unwrap());
    assert!(inc.wait_for_new(Duration::from_millis(20)).await.is_empty());

    let waiter = {
        let inc = inc.clone();
        tokio::spawn(async move { inc.wait_for_new(Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    inc.add_measures(batch(&[metric(1), metric(2)], 0, 1))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let mut got = waiter.await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    // The waiter may have woken after the first of the two sacks only.
    got.extend(inc.wait_for_new(Duration::from_millis(1)).await);
    got.sort_unstable();
    let mut want = vec![sack_of(metric(1), 8), sack_of(metric(2), 8)];
    want.sort_unstable();
    assert_eq!(got, want);
    assert!(inc.wait_for_new(Duration::from_millis(10)).await.is_empty());
}
