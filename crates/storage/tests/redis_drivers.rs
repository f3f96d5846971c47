//! The Redis drivers against a real Redis at `GNOCCHI_TEST_REDIS_URL`
//! (e.g. `redis://127.0.0.1:6379/`); skipped when it is unset. Every test works
//! under its own key prefix and deletes its keys when done, even on failure.
//!
//! Throughput figures (ignored by default; they never fail on timing):
//! `GNOCCHI_TEST_REDIS_URL=redis://127.0.0.1:6379/ cargo test --release -p gnocchi-storage --test redis_drivers -- --ignored --nocapture`

mod contract;

use carbonara::Method;
use carbonara::measure::measures;
use contract::*;
use gnocchi_storage::redis_aggregates::RedisAggregates;
use gnocchi_storage::redis_incoming::RedisIncoming;
use gnocchi_storage::{Aggregates, Incoming, WriteBatch, sack_of};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn redis_url() -> Option<String> {
    match std::env::var("GNOCCHI_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: GNOCCHI_TEST_REDIS_URL not set");
            None
        }
    }
}

/// A unique key prefix, whose keys are deleted when dropped.
struct Prefix {
    url: String,
    prefix: String,
}

impl Prefix {
    fn new(url: &str, name: &str) -> Prefix {
        Prefix {
            url: url.to_string(),
            prefix: format!("{}:", unique(&format!("gnocchi-test-{name}"))),
        }
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        let client = gnocchi_storage::redis_url::client(&self.url).unwrap();
        let mut conn = client.get_connection().unwrap();
        let pattern = format!("{}*", self.prefix);
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap();
        keys
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(client) = gnocchi_storage::redis_url::client(&self.url) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let pattern = format!("{}*", self.prefix);
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg(&pattern)
            .query(&mut conn)
            .unwrap_or_default();
        for chunk in keys.chunks(1000) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
    }
}

// ---------------------------------------------------------------------------
// RedisIncoming

#[tokio::test]
async fn incoming_take_commit_release() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "take");
    let inc = RedisIncoming::connect_with_prefix(&url, 4, &p.prefix)
        .await
        .unwrap();
    contract::incoming_take_commit_release(&inc).await;
    // Everything committed: only the config hash remains.
    assert_eq!(
        p.keys(),
        vec![format!("{}gnocchi-config", p.prefix).into_bytes()]
    );
}

#[tokio::test]
async fn incoming_tokens() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "tokens");
    let inc = RedisIncoming::connect_with_prefix(&url, 8, &p.prefix)
        .await
        .unwrap();
    contract::incoming_tokens(&inc).await;
}

#[tokio::test]
async fn incoming_many_metrics() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "many");
    let inc = RedisIncoming::connect_with_prefix(&url, 16, &p.prefix)
        .await
        .unwrap();
    contract::incoming_many(&inc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incoming_concurrent_takes_and_adds() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "concurrent");
    let inc: Arc<dyn Incoming> = Arc::new(
        RedisIncoming::connect_with_prefix(&url, 2, &p.prefix)
            .await
            .unwrap(),
    );
    contract::incoming_concurrent(inc).await;
}

#[tokio::test]
async fn the_stored_sack_count_wins_and_keys_are_upstreams() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "sacks");
    let first = RedisIncoming::connect_with_prefix(&url, 8, &p.prefix)
        .await
        .unwrap();
    assert_eq!(first.sacks(), 8);
    let second = RedisIncoming::connect_with_prefix(&url, 128, &p.prefix)
        .await
        .unwrap();
    assert_eq!(second.sacks(), 8);
    assert!(
        RedisIncoming::connect_with_prefix(&url, 0, &p.prefix)
            .await
            .is_err()
    );

    // Measures added through one handle are taken through the other, and the
    // keys are upstream's: `incoming<N>-<sack>:<uuid>` lists of 16-byte records.
    let m = metric(3);
    first
        .add_measures(vec![(m, measures(&[(1_000, 1.5), (2_000, -2.0)]))])
        .await
        .unwrap();
    first
        .add_measures(vec![(m, measures(&[(3_000, 4.0)]))])
        .await
        .unwrap();
    let client = gnocchi_storage::redis_url::client(&url).unwrap();
    let mut conn = client.get_connection().unwrap();
    let list = format!("{}incoming8-{}:{m}", p.prefix, sack_of(m, 8));
    let elements: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(&list)
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    let mut want = Vec::new();
    for (ts, v) in [(1_000i64, 1.5f64), (2_000, -2.0)] {
        want.extend_from_slice(&ts.to_le_bytes());
        want.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(elements.len(), 2);
    assert_eq!(elements[0], want);
    let sacks: String = redis::cmd("HGET")
        .arg(format!("{}gnocchi-config", p.prefix))
        .arg("sacks")
        .query(&mut conn)
        .unwrap();
    assert_eq!(sacks, "8");

    let taken = second.take(sack_of(m, 8)).await.unwrap();
    assert_eq!(
        taken.measures[&m],
        measures(&[(1_000, 1.5), (2_000, -2.0), (3_000, 4.0)])
    );
    // A crashed worker's lease is just forgotten: the measures are still there.
    drop(taken);
    let again = first.take(sack_of(m, 8)).await.unwrap();
    assert_eq!(again.measures[&m].len(), 3);
    first.commit(again).await.unwrap();
    let exists: bool = redis::cmd("EXISTS").arg(&list).query(&mut conn).unwrap();
    assert!(!exists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sacks_are_notified_across_processes() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "notify");
    let waiter: Arc<dyn Incoming> = Arc::new(
        RedisIncoming::connect_with_prefix(&url, 8, &p.prefix)
            .await
            .unwrap(),
    );
    // Same handle, then another handle standing for an API process.
    let latency = contract::incoming_notifications(waiter.clone(), waiter.clone()).await;
    let adder: Arc<dyn Incoming> = Arc::new(
        RedisIncoming::connect_with_prefix(&url, 8, &p.prefix)
            .await
            .unwrap(),
    );
    let latency2 = contract::incoming_notifications(waiter.clone(), adder).await;
    println!("woken {latency:?} / {latency2:?} after add_measures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_sacks_are_reported_when_the_subscription_starts() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "notify-start");
    let adder = RedisIncoming::connect_with_prefix(&url, 8, &p.prefix)
        .await
        .unwrap();
    adder.add_measures(batch(&[metric(5)], 0, 2)).await.unwrap();
    // A worker starting now (no message will come) still learns of the pending sack.
    let waiter = RedisIncoming::connect_with_prefix(&url, 8, &p.prefix)
        .await
        .unwrap();
    let start = Instant::now();
    let mut got = waiter.wait_for_new(Duration::from_secs(10)).await;
    got.extend(waiter.wait_for_new(Duration::from_millis(100)).await);
    assert_eq!(got, vec![sack_of(metric(5), 8)]);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn upstream_style_urls_connect() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "url");
    // `?db=N` as upstream writes it: the store lives in that database.
    let parsed = url::Url::parse(&url).unwrap();
    let base = format!(
        "redis://{}:{}/",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(6379)
    );
    let inc = RedisIncoming::connect_with_prefix(&format!("{base}?db=3"), 2, &p.prefix)
        .await
        .unwrap();
    let client = redis::Client::open(format!("{base}3")).unwrap();
    let mut conn = client.get_connection().unwrap();
    let key = format!("{}gnocchi-config", p.prefix);
    let sacks: Option<String> = redis::cmd("HGET")
        .arg(&key)
        .arg("sacks")
        .query(&mut conn)
        .unwrap();
    assert_eq!(sacks.as_deref(), Some("2"));
    let _: () = redis::cmd("DEL").arg(&key).query(&mut conn).unwrap();
    drop(inc);
    assert!(
        RedisIncoming::connect(&format!("{base}?sentinel=mymaster"), 2)
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------------------
// RedisAggregates

#[tokio::test]
async fn aggregates_round_trip() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "aggregates");
    let store = RedisAggregates::connect_with_prefix(&url, &p.prefix)
        .await
        .unwrap();
    contract::aggregates_round_trip(&store).await;
    assert!(p.keys().is_empty());
}

#[tokio::test]
async fn aggregates_extremes() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "aggregates-extremes");
    let store = RedisAggregates::connect_with_prefix(&url, &p.prefix)
        .await
        .unwrap();
    contract::aggregates_extremes(&store).await;
    assert!(p.keys().is_empty());
}

#[tokio::test]
async fn aggregates_layout_is_one_hash_per_metric() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "aggregates-layout");
    let store = RedisAggregates::connect_with_prefix(&url, &p.prefix)
        .await
        .unwrap();
    let m = metric(7);
    let s = split(
        m,
        Method::Rate(carbonara::method::BaseMethod::Mean),
        G60,
        1_425_600_000 * G1,
    );
    store
        .write(WriteBatch {
            raw: vec![(m, b"raw".to_vec())],
            splits: vec![(s, b"split".to_vec())],
            ..Default::default()
        })
        .await
        .unwrap();
    let client = gnocchi_storage::redis_url::client(&url).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut fields: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{}timeseries:{m}", p.prefix))
        .query(&mut conn)
        .unwrap();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "1425600000000000000_rate:mean_60000000000".to_string(),
            "none".to_string()
        ]
    );
    store.delete_metrics(&[m]).await.unwrap();
    assert!(p.keys().is_empty());
}

// ---------------------------------------------------------------------------
// Throughput figures

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn redis_incoming_add_measures_throughput() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "bench-incoming");
    let inc = Arc::new(
        RedisIncoming::connect_with_prefix(&url, 128, &p.prefix)
            .await
            .unwrap(),
    );
    for (tasks, per_metric) in [
        (1usize, 5000i64),
        (4, 5000),
        (16, 5000),
        (64, 5000),
        (16, 50),
        (64, 50),
    ] {
        let batches_per_task = (2000 / tasks).max(20);
        let metrics_per_batch = (5000 / per_metric) as u64;
        let start = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let inc = inc.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..batches_per_task {
                    let b = (0..metrics_per_batch)
                        .map(|k| {
                            (
                                metric(t as u64 * 1000 + k),
                                points(i as i64 * per_metric, per_metric),
                            )
                        })
                        .collect();
                    inc.add_measures(b).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let measures = (tasks * batches_per_task * 5000) as f64;
        println!(
            "redis add_measures: {tasks} tasks, 5000-measure batches ({metrics_per_batch} metrics x {per_metric}): {:.2}M measures/s, {:.0} batches/s",
            measures / secs / 1e6,
            (tasks * batches_per_task) as f64 / secs
        );
        let start = Instant::now();
        let mut taken_measures = 0usize;
        for s in 0..inc.sacks() {
            let taken = inc.take(s).await.unwrap();
            taken_measures += taken.measures.values().map(Vec::len).sum::<usize>();
            inc.commit(taken).await.unwrap();
        }
        assert_eq!(taken_measures as f64, measures);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "redis take+commit of all 128 sacks: {:.2}M measures/s",
            measures / secs / 1e6
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn redis_aggregates_write_throughput() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "bench-aggregates");
    let store = RedisAggregates::connect_with_prefix(&url, &p.prefix)
        .await
        .unwrap();
    contract::aggregates_bench("redis", &store, 5000).await;
}
