//! Backlog visibility in a scale-out deployment: two metricd engines share
//! Redis sacks (Redis incoming and coordination). Before they run, the
//! incoming store tells how long the pending measures have waited; once they
//! run, each member publishes its own sacks (together every sack, none twice
//! with one replica) and counts the measures it processed, which add up to
//! every measure written. Skipped when GNOCCHI_TEST_REDIS_URL is unset.

mod coordination_support;
mod embedded;

use coordination_support::eventually;
use gnocchi_engine::coordination_redis::{RedisCoordinator, RedisCoordinatorOptions};
use gnocchi_engine::{Coordinator, Engine, EngineConfig};
use gnocchi_storage::Incoming;
use gnocchi_storage::redis_incoming::RedisIncoming;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use uuid::Uuid;

const SACKS: u32 = 8;

fn redis_url() -> Option<String> {
    match std::env::var("GNOCCHI_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(format!("{}/13", u.trim_end_matches('/'))),
        _ => {
            eprintln!("skipped: GNOCCHI_TEST_REDIS_URL unset");
            None
        }
    }
}

async fn coordinator(url: &str, ns: &str, member: &str) -> RedisCoordinator {
    let opts = RedisCoordinatorOptions {
        namespace: ns.to_string(),
        member_ttl: Duration::from_secs(2),
        lock_ttl: Duration::from_secs(2),
    };
    RedisCoordinator::connect(url, member, opts).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_metricd_reports_its_own_sacks_and_together_they_cover_every_sack() {
    let Some(url) = redis_url() else { return };
    let ns = format!("test-status-{}:", Uuid::new_v4().simple());
    let dir = std::env::temp_dir().join(format!("engine-status-{}", Uuid::new_v4()));
    // One index and aggregate store (the embedded ones), Redis sacks.
    let base = embedded::engine_in(&dir, SACKS, None).await;
    let incoming = |ns: String| {
        let url = url.clone();
        async move {
            Arc::new(
                RedisIncoming::connect_with_prefix(&url, SACKS, &ns)
                    .await
                    .unwrap(),
            )
        }
    };
    let writer = incoming(ns.clone()).await;

    // Measures wait: the store says since when.
    let metrics: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
    for m in &metrics {
        embedded::create_metric(base.indexer.as_ref(), *m, "low").await;
    }
    let batch = metrics
        .iter()
        .map(|m| {
            let points = (0..3)
                .map(|i| {
                    carbonara::Measure::new(1_700_000_000_000_000_000 + i * 60_000_000_000, 1.0)
                })
                .collect();
            (*m, points)
        })
        .collect();
    writer.add_measures(batch).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let backlog = writer.backlog().await.unwrap();
    let oldest = backlog
        .oldest_pending
        .clone()
        .expect("Redis knows arrival times");
    assert!(!oldest.is_empty());
    for (sack, at) in &oldest {
        let age = SystemTime::now().duration_since(*at).unwrap_or_default();
        assert!(
            age >= Duration::from_millis(250) && age < Duration::from_secs(30),
            "sack {sack}: {age:?}"
        );
    }

    // Two metricd processes start.
    let config = EngineConfig {
        processing_replicas: 1,
        membership_refresh: Duration::from_millis(200),
        notification_delay: Duration::from_millis(50),
        ..EngineConfig::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut members = Vec::new();
    let mut tasks = Vec::new();
    for name in ["metricd-a", "metricd-b"] {
        let engine = Engine::with_coordinator(
            base.indexer.clone(),
            incoming(ns.clone()).await,
            base.aggregates.clone(),
            config.clone(),
            Arc::new(coordinator(&url, &ns, name).await),
        );
        tasks.push(tokio::spawn(engine.clone().run(stopped.clone())));
        members.push(name.to_string());
    }

    // Any process (an API) reads both members' figures.
    let api = coordinator(&url, &ns, "api").await;
    let total = (metrics.len() * 3) as u64;
    let last = std::sync::Mutex::new(String::new());
    eventually(
        Duration::from_secs(30),
        "members cover the sacks and count every measure",
        || {
            let (api, members, last) = (&api, &members, &last);
            async move {
                let Some(stats) = api.member_stats().await.unwrap() else {
                    return false;
                };
                *last.lock().unwrap() = format!("{stats:?}");
                if stats.keys().cloned().collect::<Vec<_>>() != *members {
                    return false;
                }
                let mut covered: Vec<u32> = stats.values().flat_map(|s| s.sacks.clone()).collect();
                covered.sort_unstable();
                let each_has_some = stats.values().all(|s| !s.sacks.is_empty());
                let processed: u64 = stats
                    .values()
                    .map(|s| s.measures_processed_last_minute)
                    .sum();
                each_has_some && covered == (0..SACKS).collect::<Vec<_>>() && processed == total
            }
        },
    )
    .await;
    eprintln!("members: {}", last.lock().unwrap());

    // Nothing pending any more: no arrival time left.
    let backlog = writer.backlog().await.unwrap();
    assert!(backlog.per_metric.is_empty());
    assert_eq!(backlog.oldest_pending, Some(Default::default()));

    let _ = stop.send(true);
    for t in tasks {
        t.await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
