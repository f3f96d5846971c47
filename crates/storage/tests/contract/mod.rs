//! The behaviour every driver owes to the traits, written once and run against
//! each network driver (the local drivers have their own tests of the same).
#![allow(dead_code, unreachable_pub)]

use carbonara::method::BaseMethod;
use carbonara::{Measure, Method, SplitKey};
use gnocchi_storage::{Aggregates, Incoming, SplitRef, WriteBatch, sack_of};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const G60: i64 = 60_000_000_000;
pub const G1: i64 = 1_000_000_000;

/// A name unique to this test run (process, time, counter).
pub fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn metric(i: u64) -> Uuid {
    Uuid::from_u128(0x1234_5678_0000_0000_0000_0000_0000_0000 | u128::from(i))
}

pub fn points(first: i64, n: i64) -> Vec<Measure> {
    (first..first + n)
        .map(|k| Measure::new(k * 1_000_000_000, k as f64))
        .collect()
}

pub fn batch(metrics: &[Uuid], first: i64, n: i64) -> Vec<(Uuid, Vec<Measure>)> {
    metrics.iter().map(|m| (*m, points(first, n))).collect()
}

pub fn split(metric: Uuid, method: Method, granularity: i64, start: i64) -> SplitRef {
    SplitRef {
        metric,
        method,
        key: SplitKey { start, granularity },
    }
}

// ---------------------------------------------------------------------------
// Aggregates

/// Round trip, sorted listing, overwrite, per-split and per-metric deletion.
pub async fn aggregates_round_trip(store: &dyn Aggregates) {
    let (a, b) = (metric(1), metric(2));
    let starts = [
        -7 * G60 * 3600,
        -G60 * 3600,
        0,
        G60 * 3600,
        5 * G60 * 3600,
        1_425_600_000 * G1,
    ];
    assert_eq!(store.get_raw(&[a, b]).await.unwrap(), vec![None, None]);
    assert!(store.get_raw(&[]).await.unwrap().is_empty());
    assert!(store.get_splits(&[]).await.unwrap().is_empty());
    assert!(store.list_split_keys(&[]).await.unwrap().is_empty());
    store.write(WriteBatch::default()).await.unwrap();
    store.delete_metrics(&[]).await.unwrap();

    let mut batch = WriteBatch {
        raw: vec![(a, b"raw a".to_vec()), (b, b"raw b".to_vec())],
        ..Default::default()
    };
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
    // Binary data survives untouched.
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    batch
        .splits
        .push((split(b, Method::Max, G60, 0), binary.clone()));
    store.write(batch).await.unwrap();

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
            (b, Method::Max, G60),
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
    assert_eq!(
        listed,
        vec![
            keys(G60),
            keys(G1),
            vec![],
            vec![],
            vec![SplitKey {
                start: 0,
                granularity: G60
            }]
        ]
    );

    let got = store
        .get_splits(&[
            split(b, Method::Pct(95), G1, 0),
            split(b, Method::Pct(95), G1, 1),
            split(a, Method::Mean, G60, starts[5]),
            split(b, Method::Max, G60, 0),
        ])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(format!("{b} {:?} {G1} 2", Method::Pct(95)).into_bytes()),
            None,
            Some(format!("{a} {:?} {G60} 5", Method::Mean).into_bytes()),
            Some(binary)
        ]
    );

    // Overwrite one split, delete others (one absent), in one batch; a split
    // both deleted and written is written.
    store
        .write(WriteBatch {
            raw: vec![(a, b"raw a 2".to_vec())],
            splits: vec![
                (split(a, Method::Mean, G60, 0), b"new".to_vec()),
                (
                    split(a, Method::Mean, G60, starts[1]),
                    b"rewritten".to_vec(),
                ),
            ],
            delete_splits: vec![
                split(a, Method::Mean, G60, starts[0]),
                split(a, Method::Mean, G60, 12345),
                split(a, Method::Mean, G60, starts[1]),
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
            .get_splits(&[
                split(a, Method::Mean, G60, 0),
                split(a, Method::Mean, G60, starts[1])
            ])
            .await
            .unwrap(),
        vec![Some(b"new".to_vec()), Some(b"rewritten".to_vec())]
    );
    assert_eq!(
        store
            .list_split_keys(&[(a, Method::Mean, G60)])
            .await
            .unwrap()[0],
        keys(G60)[1..].to_vec()
    );

    // Deleting a metric leaves its neighbours alone.
    store.delete_metrics(&[a, metric(99)]).await.unwrap();
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
    assert_eq!(
        store
            .get_splits(&[split(a, Method::Mean, G60, 0)])
            .await
            .unwrap(),
        vec![None]
    );

    store.delete_metrics(&[b]).await.unwrap();
    assert_eq!(store.get_raw(&[a, b]).await.unwrap(), vec![None, None]);
    assert_eq!(
        store
            .list_split_keys(&[(b, Method::Pct(95), G1), (b, Method::Max, G60)])
            .await
            .unwrap(),
        vec![vec![], vec![]]
    );
}

/// Extreme ids, timestamps and granularities are kept apart and sorted numerically.
pub async fn aggregates_extremes(store: &dyn Aggregates) {
    let (lo, hi) = (Uuid::nil(), Uuid::max());
    let starts = [i64::MIN, -10, -1, 0, 9, 10, i64::MAX];
    let mut batch = WriteBatch::default();
    for m in [lo, hi] {
        // Written in reverse so that a lexicographic listing would come out wrong.
        for &start in starts.iter().rev() {
            batch
                .splits
                .push((split(m, Method::Count, G1, start), vec![1]));
            batch
                .splits
                .push((split(m, Method::Count, 10 * G1, start), vec![2]));
        }
        batch.raw.push((m, vec![]));
    }
    store.write(batch).await.unwrap();
    let all = |g| {
        starts
            .iter()
            .map(|&start| SplitKey {
                start,
                granularity: g,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        store
            .list_split_keys(&[(hi, Method::Count, G1), (hi, Method::Count, 10 * G1)])
            .await
            .unwrap(),
        vec![all(G1), all(10 * G1)]
    );
    // An empty raw buffer may read as absent: upstream's Ceph layout marks a
    // created, never processed metric with an empty object (the engine never
    // writes an empty raw buffer).
    let raw = store.get_raw(&[lo]).await.unwrap();
    assert!(raw == vec![Some(vec![])] || raw == vec![None], "{raw:?}");
    store.delete_metrics(&[hi]).await.unwrap();
    assert_eq!(
        store
            .list_split_keys(&[(hi, Method::Count, G1), (lo, Method::Count, G1)])
            .await
            .unwrap(),
        vec![vec![], all(G1)]
    );
    store.delete_metrics(&[lo]).await.unwrap();
    assert_eq!(store.get_raw(&[lo, hi]).await.unwrap(), vec![None, None]);
}

// ---------------------------------------------------------------------------
// Incoming

/// Every pending measure, per metric, taking and releasing each sack.
pub async fn peek_all(inc: &dyn Incoming) -> HashMap<Uuid, Vec<Measure>> {
    let mut all = HashMap::new();
    for s in 0..inc.sacks() {
        let taken = inc.take(s).await.unwrap();
        for (m, p) in &taken.measures {
            assert_eq!(gnocchi_storage::sack_of(*m, inc.sacks()), s);
            assert!(all.insert(*m, p.clone()).is_none());
        }
        inc.release(taken).await.unwrap();
    }
    all
}

/// Take, commit and release semantics; `inc` must have 4 sacks and be empty.
pub async fn incoming_take_commit_release(inc: &dyn Incoming) {
    assert_eq!(inc.sacks(), 4);
    let (a, b, c) = (metric(0), metric(4), metric(1)); // a and b share sack 0
    assert_eq!(sack_of(a, 4), sack_of(b, 4));
    assert_ne!(sack_of(a, 4), sack_of(c, 4));
    let sack = sack_of(a, 4);
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 0);
    assert!(backlog.per_metric.is_empty());
    assert_eq!(inc.take(sack).await.unwrap().token, 0);
    inc.add_measures(vec![]).await.unwrap();
    inc.add_measures(vec![(a, vec![])]).await.unwrap();
    assert_eq!(inc.backlog().await.unwrap().measures, 0);

    inc.add_measures(batch(&[a, b, c], 0, 3)).await.unwrap();
    inc.add_measures(batch(&[a], 3, 2)).await.unwrap();
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 11);
    assert_eq!(backlog.per_metric, HashMap::from([(a, 2), (b, 1), (c, 1)]));

    let taken = inc.take(sack).await.unwrap();
    assert_ne!(taken.token, 0);
    assert_eq!(taken.sack, sack);
    assert_eq!(taken.measures.len(), 2);
    assert_eq!(taken.measures[&a], points(0, 5));
    assert_eq!(taken.measures[&b], points(0, 3));

    // Taken measures still count in the backlog; measures added during the
    // take go to the backlog too, and a second take of the leased sack gets nothing.
    inc.add_measures(batch(&[a], 100, 2)).await.unwrap();
    inc.add_measures(vec![(a, points(200, 1)), (b, points(200, 1))])
        .await
        .unwrap();
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 15);
    assert_eq!(backlog.per_metric, HashMap::from([(a, 4), (b, 2), (c, 1)]));
    let second = inc.take(sack).await.unwrap();
    assert_eq!(second.token, 0);
    assert!(second.measures.is_empty());
    inc.commit(second).await.unwrap(); // token 0: no-op

    // Release: everything comes back, older measures first.
    inc.release(taken).await.unwrap();
    let again = inc.take(sack).await.unwrap();
    let mut all_a = points(0, 5);
    all_a.extend(points(100, 2));
    all_a.extend(points(200, 1));
    let mut all_b = points(0, 3);
    all_b.extend(points(200, 1));
    assert_eq!(again.measures[&a], all_a);
    assert_eq!(again.measures[&b], all_b);
    assert_eq!(inc.backlog().await.unwrap().measures, 15);

    // Measures added between take and commit stay pending after the commit.
    inc.add_measures(batch(&[a, b], 300, 4)).await.unwrap();
    inc.commit(again).await.unwrap();
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 8 + 3);
    assert_eq!(backlog.per_metric, HashMap::from([(a, 1), (b, 1), (c, 1)]));
    let rest = inc.take(sack).await.unwrap();
    assert_eq!(rest.measures[&a], points(300, 4));
    assert_eq!(rest.measures[&b], points(300, 4));
    inc.commit(rest).await.unwrap();
    assert_eq!(inc.take(sack).await.unwrap().token, 0);

    // The other sack was never touched.
    let other = inc.take(sack_of(c, 4)).await.unwrap();
    assert_eq!(other.measures, HashMap::from([(c, points(0, 3))]));
    inc.commit(other).await.unwrap();
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 0);
    assert!(backlog.per_metric.is_empty());
    for s in 0..4 {
        assert_eq!(inc.take(s).await.unwrap().token, 0);
    }
}

/// Forged and stale tokens are refused; unknown sacks are errors.
pub async fn incoming_tokens(inc: &dyn Incoming) {
    inc.add_measures(batch(&[metric(1)], 0, 3)).await.unwrap();
    let s = sack_of(metric(1), inc.sacks());
    let taken = inc.take(s).await.unwrap();
    let forged = || gnocchi_storage::SackMeasures {
        sack: s,
        measures: Default::default(),
        token: taken.token + 1,
    };
    assert!(inc.commit(forged()).await.is_err());
    assert!(inc.release(forged()).await.is_err());
    let token = taken.token;
    inc.commit(taken).await.unwrap();
    let stale = gnocchi_storage::SackMeasures {
        sack: s,
        measures: Default::default(),
        token,
    };
    assert!(inc.release(stale).await.is_err());
    assert!(inc.take(inc.sacks()).await.is_err());
    assert_eq!(inc.backlog().await.unwrap().measures, 0);
}

/// Many metrics and batches across every sack: nothing lost, nothing duplicated.
pub async fn incoming_many(inc: &dyn Incoming) {
    let metrics: Vec<Uuid> = (0..300)
        .map(|i| Uuid::from_u128(0xabcd_0000_0000_0000_0000_0000_0000_0000 + i * 7919))
        .collect();
    for round in 0..3 {
        inc.add_measures(batch(&metrics, round * 10, 10))
            .await
            .unwrap();
    }
    let backlog = inc.backlog().await.unwrap();
    assert_eq!(backlog.measures, 300 * 30);
    assert!(backlog.per_metric.values().all(|&b| b == 3));
    let mut seen = 0;
    for s in 0..inc.sacks() {
        let taken = inc.take(s).await.unwrap();
        for (m, p) in &taken.measures {
            assert_eq!(sack_of(*m, inc.sacks()), s);
            assert_eq!(*p, points(0, 30));
            seen += 1;
        }
        inc.commit(taken).await.unwrap();
    }
    assert_eq!(seen, 300);
    assert_eq!(inc.backlog().await.unwrap().measures, 0);
}

/// `waiter` wakes when `adder` adds measures (they may be two handles on one store).
pub async fn incoming_notifications(
    waiter: Arc<dyn Incoming>,
    adder: Arc<dyn Incoming>,
) -> Duration {
    let n = waiter.sacks();
    // Whatever is reported at start-up is drained first.
    let _ = waiter.wait_for_new(Duration::from_millis(300)).await;
    assert!(
        waiter
            .wait_for_new(Duration::from_millis(50))
            .await
            .is_empty()
    );

    let task = {
        let waiter = waiter.clone();
        tokio::spawn(async move { waiter.wait_for_new(Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    adder
        .add_measures(batch(&[metric(1), metric(2)], 0, 1))
        .await
        .unwrap();
    let mut got = task.await.unwrap();
    let latency = start.elapsed();
    assert!(latency < Duration::from_secs(10), "woken after {latency:?}");
    // The waiter may have woken after the first of the two sacks only.
    got.extend(waiter.wait_for_new(Duration::from_millis(200)).await);
    got.sort_unstable();
    got.dedup();
    let mut want = vec![sack_of(metric(1), n), sack_of(metric(2), n)];
    want.sort_unstable();
    want.dedup();
    assert_eq!(got, want);
    assert!(
        waiter
            .wait_for_new(Duration::from_millis(50))
            .await
            .is_empty()
    );
    latency
}

// ---------------------------------------------------------------------------
// Throughput figures (printed, never asserted)

/// Write `metrics` x 6 splits (400 B) + raw buffers (1000 B) three times, then read, list, delete.
pub async fn aggregates_bench(name: &str, store: &dyn Aggregates, metrics: u64) {
    let methods = [
        Method::Mean,
        Method::Max,
        Method::Min,
        Method::Sum,
        Method::Count,
        Method::Last,
    ];
    for round in 0..3i64 {
        let mut batch = WriteBatch::default();
        for m in 0..metrics {
            let id = metric(m);
            batch.raw.push((id, vec![7u8; 1000]));
            for method in methods {
                batch.splits.push((
                    SplitRef {
                        metric: id,
                        method,
                        key: SplitKey {
                            start: round * G60 * 3600,
                            granularity: G60,
                        },
                    },
                    vec![3u8; 400],
                ));
            }
        }
        let splits = batch.splits.len();
        let start = Instant::now();
        store.write(batch).await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name} write: {splits} splits of 400 B + {metrics} raw of 1000 B in {:.0} ms: {:.0} splits/s",
            secs * 1e3,
            splits as f64 / secs
        );
    }
    let ids: Vec<_> = (0..metrics).map(metric).collect();
    let start = Instant::now();
    let raw = store.get_raw(&ids).await.unwrap();
    assert!(raw.iter().all(|r| r.is_some()));
    println!(
        "{name} get_raw: {metrics} in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let series: Vec<_> = ids
        .iter()
        .flat_map(|&id| methods.map(|m| (id, m, G60)))
        .collect();
    let start = Instant::now();
    let keys = store.list_split_keys(&series).await.unwrap();
    assert!(keys.iter().all(|k| k.len() == 3));
    println!(
        "{name} list_split_keys: {} series in {:.1} ms",
        series.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    let refs: Vec<SplitRef> = series
        .iter()
        .map(|&(metric, method, g)| SplitRef {
            metric,
            method,
            key: SplitKey {
                start: G60 * 3600,
                granularity: g,
            },
        })
        .collect();
    let start = Instant::now();
    let got = store.get_splits(&refs).await.unwrap();
    assert!(got.iter().all(|r| r.is_some()));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name} get_splits: {} in {:.1} ms: {:.0} splits/s",
        refs.len(),
        secs * 1e3,
        refs.len() as f64 / secs
    );
    let start = Instant::now();
    store.delete_metrics(&ids).await.unwrap();
    println!(
        "{name} delete_metrics: {metrics} in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
}

/// Adders and processors racing on one sack: every measure is taken exactly once.
pub async fn incoming_concurrent(inc: Arc<dyn Incoming>) {
    let m = metric(0);
    let s = sack_of(m, inc.sacks());
    let adder = {
        let inc = inc.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                inc.add_measures(vec![(m, points(i * 5, 5))]).await.unwrap();
            }
        })
    };
    let mut workers = Vec::new();
    for _ in 0..4 {
        let inc = inc.clone();
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for round in 0..300 {
                let taken = inc.take(s).await.unwrap();
                if let Some(p) = taken.measures.get(&m) {
                    seen.extend(p.iter().map(|m| m.timestamp));
                }
                if round % 7 == 6 && taken.token != 0 {
                    // A failed processing: nothing seen, everything comes back.
                    seen.truncate(seen.len() - taken.measures[&m].len());
                    inc.release(taken).await.unwrap();
                } else {
                    inc.commit(taken).await.unwrap();
                }
                tokio::task::yield_now().await;
            }
            seen
        }));
    }
    adder.await.unwrap();
    let mut seen: Vec<i64> = Vec::new();
    for w in workers {
        seen.extend(w.await.unwrap());
    }
    let rest = inc.take(s).await.unwrap();
    if let Some(p) = rest.measures.get(&m) {
        seen.extend(p.iter().map(|m| m.timestamp));
    }
    inc.commit(rest).await.unwrap();
    seen.sort_unstable();
    let want: Vec<i64> = points(0, 1000).iter().map(|m| m.timestamp).collect();
    assert_eq!(seen.len(), want.len(), "measures lost or duplicated");
    assert_eq!(seen, want);
    assert_eq!(inc.backlog().await.unwrap().measures, 0);
}
