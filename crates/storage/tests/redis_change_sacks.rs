//! `RedisIncoming::change_sacks` (`gnocchid change-sack-size` on Redis), against
//! a real Redis at `GNOCCHI_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379/`),
//! database 12; skipped when it is unset. Every test works under its own key
//! prefix and deletes its keys when done, even on failure.

use carbonara::Measure;
use gnocchi_storage::redis_incoming::RedisIncoming;
use gnocchi_storage::{Incoming, StorageError, sack_of};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// `GNOCCHI_TEST_REDIS_URL` on database 12.
fn redis_url() -> Option<String> {
    match std::env::var("GNOCCHI_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let sep = if url.contains('?') { '&' } else { '?' };
            Some(format!("{url}{sep}db=12"))
        }
        _ => {
            println!("skipped: GNOCCHI_TEST_REDIS_URL unset");
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
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Prefix {
            url: url.to_string(),
            prefix: format!(
                "gnocchi-test-{name}-{}-{nanos}-{}:",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    fn conn(&self) -> redis::Connection {
        gnocchi_storage::redis_url::client(&self.url)
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The keys under this prefix matching `pattern` (without the prefix).
    fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}{pattern}", self.prefix))
            .query(&mut self.conn())
            .unwrap();
        keys.sort();
        keys.into_iter()
            .map(|k| k[self.prefix.len()..].to_string())
            .collect()
    }

    async fn connect(&self, sacks: u32) -> RedisIncoming {
        RedisIncoming::connect_with_prefix(&self.url, sacks, &self.prefix)
            .await
            .unwrap()
    }

    async fn change(&self, sacks: u32) -> gnocchi_storage::Result<u32> {
        RedisIncoming::change_sacks_with_prefix(&self.url, sacks, &self.prefix).await
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
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        for chunk in keys.chunks(1000) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
    }
}

fn metric(i: u64) -> Uuid {
    Uuid::from_u128(0x9abc_def0_0000_0000_0000_0000_0000_0000 | u128::from(i))
}

fn points(first: i64, n: i64) -> Vec<Measure> {
    (first..first + n)
        .map(|k| Measure::new(k * 1_000_000_000, k as f64))
        .collect()
}

/// Take and commit every sack; returns the number of measures taken.
async fn drain(inc: &RedisIncoming) -> usize {
    let mut n = 0;
    for s in 0..inc.sacks() {
        let taken = inc.take(s).await.unwrap();
        n += taken.measures.values().map(Vec::len).sum::<usize>();
        inc.commit(taken).await.unwrap();
    }
    n
}

fn is_backlog_refusal(e: &StorageError, measures: u64) -> bool {
    let msg = e.to_string();
    msg.contains("Cannot change sack when non-empty backlog")
        && msg.contains(&format!("remaining {measures} measures"))
}

#[tokio::test]
async fn refused_with_a_backlog_then_the_new_count_is_used() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "change-backlog");
    let old = p.connect(4).await;
    let ids: Vec<Uuid> = (0..10).map(metric).collect();
    old.add_measures(ids.iter().map(|m| (*m, points(0, 3))).collect())
        .await
        .unwrap();

    let e = p.change(8).await.unwrap_err();
    assert!(is_backlog_refusal(&e, 30), "{e}");
    assert_eq!(p.connect(99).await.sacks(), 4, "a refusal changes nothing");
    assert_eq!(old.backlog().await.unwrap().measures, 30);

    assert_eq!(drain(&old).await, 30);
    assert_eq!(p.change(8).await.unwrap(), 4);

    // A process started afterwards uses the stored count, whatever it asks for.
    let new = p.connect(128).await;
    assert_eq!(new.sacks(), 8);
    new.add_measures(ids.iter().map(|m| (*m, points(100, 2))).collect())
        .await
        .unwrap();
    for m in &ids {
        let s = sack_of(*m, 8);
        assert_eq!(
            p.keys(&format!("incoming8-{s}:{}", m.hyphenated())).len(),
            1,
            "{m} is in sack {s} of 8"
        );
    }
    let mut seen = 0;
    for s in 0..8 {
        let taken = new.take(s).await.unwrap();
        for (m, pts) in &taken.measures {
            assert_eq!(sack_of(*m, 8), s);
            assert_eq!(pts, &points(100, 2));
            seen += 1;
        }
        new.commit(taken).await.unwrap();
    }
    assert_eq!(seen, ids.len());

    // The process started before the change is refused instead of writing
    // into the old sacks, which nobody reads any more.
    let e = old
        .add_measures(vec![(ids[0], points(200, 1))])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("restart"), "{e}");
    assert_eq!(p.keys("incoming4-*"), Vec::<String>::new());
    assert_eq!(new.backlog().await.unwrap().measures, 0);
}

#[tokio::test]
async fn measures_taken_but_not_committed_block_the_change() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "change-taken");
    let inc = p.connect(2).await;
    let m = metric(1);
    inc.add_measures(vec![(m, points(0, 5))]).await.unwrap();
    let taken = inc.take(sack_of(m, 2)).await.unwrap();
    assert_eq!(taken.measures[&m].len(), 5);
    let e = p.change(3).await.unwrap_err();
    assert!(is_backlog_refusal(&e, 5), "{e}");
    inc.release(taken).await.unwrap();
    let e = p.change(3).await.unwrap_err();
    assert!(is_backlog_refusal(&e, 5), "{e}");
    assert_eq!(drain(&inc).await, 5);
    assert_eq!(p.change(3).await.unwrap(), 2);
    assert_eq!(p.connect(2).await.sacks(), 3);
}

#[tokio::test]
async fn invalid_counts_are_refused() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "change-invalid");
    assert_eq!(p.connect(5).await.sacks(), 5);
    for bad in [0, 65536, u32::MAX] {
        let e = p.change(bad).await.unwrap_err();
        assert!(e.to_string().contains("between 1 and 65535"), "{e}");
    }
    assert_eq!(p.connect(7).await.sacks(), 5);
    // The bounds themselves are valid.
    assert_eq!(p.change(65535).await.unwrap(), 5);
    assert_eq!(p.connect(7).await.sacks(), 65535);
    assert_eq!(p.change(1).await.unwrap(), 65535);
    let one = p.connect(7).await;
    assert_eq!(one.sacks(), 1);
    one.add_measures(vec![(metric(3), points(0, 1))])
        .await
        .unwrap();
    assert_eq!(p.keys("incoming1-0"), vec!["incoming1-0".to_string()]);

    // A stored count that is not a number is reported, not overwritten.
    let _: () = redis::cmd("HSET")
        .arg(format!("{}gnocchi-config", p.prefix))
        .arg("sacks")
        .arg("lots")
        .query(&mut p.conn())
        .unwrap();
    let e = p.change(4).await.unwrap_err();
    assert!(matches!(e, StorageError::Corrupt(_)), "{e}");
}

#[tokio::test]
async fn unchanged_or_unset_counts_are_accepted() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "change-unset");
    // Nothing stored yet: the count is stored, as upstream's set_storage_settings.
    assert_eq!(p.change(16).await.unwrap(), 16);
    assert_eq!(p.connect(128).await.sacks(), 16);
    // The same count again: nothing to do, even with measures pending.
    let inc = p.connect(128).await;
    inc.add_measures(vec![(metric(1), points(0, 2))])
        .await
        .unwrap();
    assert_eq!(p.change(16).await.unwrap(), 16);
    assert_eq!(inc.backlog().await.unwrap().measures, 2);
}

#[tokio::test]
async fn empty_keys_of_the_old_layout_are_deleted() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "change-stale");
    let inc = p.connect(4).await;
    // A sack index entry whose list is gone, and upstream's notification key.
    let mut conn = p.conn();
    let _: () = redis::cmd("HSET")
        .arg(format!("{}incoming4-1", p.prefix))
        .arg(metric(9).hyphenated().to_string())
        .arg(3)
        .query(&mut conn)
        .unwrap();
    assert_eq!(inc.backlog().await.unwrap().per_metric.len(), 0);
    let _: () = redis::cmd("SET")
        .arg(format!("{}incoming4-2", p.prefix))
        .arg(1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(p.change(6).await.unwrap(), 4);
    assert_eq!(p.keys("incoming*"), Vec::<String>::new());
    assert_eq!(p.keys("*"), vec!["gnocchi-config".to_string()]);
}

/// A writer still using the old count while the change runs: every measure it
/// was told is stored is either drained before the change or refused after it,
/// none is left behind in the old sacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_writer_loses_nothing() {
    let Some(url) = redis_url() else { return };
    let p = Prefix::new(&url, "change-concurrent");
    let old = Arc::new(p.connect(4).await);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let old = old.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut stored = 0usize;
            let mut i = 0i64;
            let refused = loop {
                if stop.load(Ordering::Relaxed) {
                    break None;
                }
                for _ in 0..10 {
                    let b = (0..4).map(|k| (metric(k), points(i, 2))).collect();
                    i += 2;
                    match old.add_measures(b).await {
                        Ok(()) => stored += 8,
                        Err(e) => return (stored, Some(e)),
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            (stored, refused)
        })
    };
    // The writer has stored measures: refused until they are drained.
    while old.backlog().await.unwrap().measures == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let e = p.change(9).await.unwrap_err();
    assert!(e.to_string().contains("non-empty backlog"), "{e}");
    let mut drained = 0usize;
    let mut changed = false;
    for _ in 0..500 {
        drained += drain(&old).await;
        match p.change(9).await {
            Ok(4) => {
                changed = true;
                break;
            }
            Ok(n) => panic!("changed from {n}, not 4"),
            Err(e) => assert!(e.to_string().contains("non-empty backlog"), "{e}"),
        }
    }
    if !changed {
        stop.store(true, Ordering::Relaxed);
        let _ = writer.await;
        panic!("the writer never paused long enough");
    }
    // Its next write is refused: it stops by itself.
    let (stored, refused) = writer.await.unwrap();
    let refused = refused.expect("the writer is refused after the change");
    assert!(refused.to_string().contains("restart"), "{refused}");
    assert!(stored > 0);
    assert_eq!(drained, stored, "every stored measure was drained");
    assert_eq!(old.backlog().await.unwrap().measures, 0);
    assert_eq!(p.keys("incoming4-*"), Vec::<String>::new());
}
