//! The coordination contract on a real Redis (database 13; every test uses its
//! own key namespace, and every key expires on its own).
//! Skipped when GNOCCHI_TEST_REDIS_URL is unset.

mod coordination_support;
use coordination_support::*;

use gnocchi_engine::Coordinator;
use gnocchi_engine::coordination_redis::{RedisCoordinator, RedisCoordinatorOptions};
use std::time::Duration;

const TTL: Duration = Duration::from_millis(1500);

fn redis_url() -> Option<String> {
    match std::env::var("GNOCCHI_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(format!("{}/13", u.trim_end_matches('/'))),
        _ => {
            eprintln!("skipped: GNOCCHI_TEST_REDIS_URL unset");
            None
        }
    }
}

/// Coordinators sharing one fresh namespace, with short TTLs.
fn maker(url: String) -> Make {
    let ns = format!("test-coord-{}:", uuid::Uuid::new_v4().simple());
    Box::new(move || {
        let (url, ns) = (url.clone(), ns.clone());
        Box::pin(async move {
            let member = format!("member-{}", uuid::Uuid::new_v4().simple());
            let opts = RedisCoordinatorOptions {
                namespace: ns,
                member_ttl: TTL,
                lock_ttl: TTL,
            };
            Box::new(
                RedisCoordinator::connect(&url, &member, opts)
                    .await
                    .unwrap(),
            ) as Box<dyn Coordinator>
        })
    })
}

#[tokio::test]
async fn redis_members_see_each_other() {
    let Some(url) = redis_url() else { return };
    members_see_each_other(&maker(url)).await;
}

#[tokio::test]
async fn redis_locks_are_exclusive() {
    let Some(url) = redis_url() else { return };
    locks_are_exclusive(&maker(url)).await;
}

#[tokio::test]
async fn redis_held_locks_outlive_their_ttl() {
    let Some(url) = redis_url() else { return };
    held_locks_outlive_their_ttl(&maker(url), TTL).await;
}

#[tokio::test]
async fn redis_killed_member_is_taken_over_within_the_ttl() {
    let Some(url) = redis_url() else { return };
    let (locks, membership) =
        killed_member_is_taken_over(&maker(url), TTL + Duration::from_millis(700)).await;
    eprintln!("redis: lock freed after {locks:?}, membership after {membership:?} (TTL {TTL:?})");
}

#[tokio::test]
async fn redis_leaving_frees_everything_at_once() {
    let Some(url) = redis_url() else { return };
    leaving_frees_everything_at_once(&maker(url)).await;
}

#[tokio::test]
async fn redis_rebalance_covers_every_sack() {
    let Some(url) = redis_url() else { return };
    rebalance_covers_every_sack(&maker(url)).await;
}

#[tokio::test]
async fn redis_published_stats_are_seen_by_every_process() {
    let Some(url) = redis_url() else { return };
    published_stats_are_seen_by_every_process(&maker(url)).await;
}

#[tokio::test]
async fn redis_bad_url_is_refused() {
    let e = RedisCoordinator::connect(
        "redis://:topsecret@h:1/?sentinel=x",
        "m",
        RedisCoordinatorOptions::default(),
    )
    .await
    .err()
    .expect("refused");
    assert!(!e.to_string().contains("topsecret"), "{e}");
}
