//! The coordination contract on a real PostgreSQL. Every test uses its own
//! advisory lock classes, so tests and other users of the database do not meet.
//! Skipped when GNOCCHI_TEST_POSTGRESQL_URL is unset.

mod coordination_support;
use coordination_support::*;

use gnocchi_engine::Coordinator;
use gnocchi_engine::coordination::CoordinationUrl;
use gnocchi_engine::coordination_pg::{PgCoordinator, PgCoordinatorOptions};
use std::sync::Arc;
use std::time::Duration;

fn pg_url() -> Option<String> {
    match std::env::var("GNOCCHI_TEST_POSTGRESQL_URL") {
        Ok(u) if !u.is_empty() => match CoordinationUrl::parse(&u) {
            Ok(CoordinationUrl::Postgres(u)) => Some(u),
            other => panic!("GNOCCHI_TEST_POSTGRESQL_URL is not a PostgreSQL URL: {other:?}"),
        },
        _ => {
            eprintln!("skipped: GNOCCHI_TEST_POSTGRESQL_URL unset");
            None
        }
    }
}

fn options() -> PgCoordinatorOptions {
    // Random classes (positive int4) isolate this test's group and locks.
    let r = uuid::Uuid::new_v4().as_u128();
    PgCoordinatorOptions {
        group_class: ((r as u32) & 0x3fff_ffff) as i32 | 1,
        sack_class: (((r >> 32) as u32) & 0x3fff_ffff) as i32 | 0x4000_0000,
        ping_interval: Duration::from_millis(200),
        ..PgCoordinatorOptions::default()
    }
}

fn maker(url: String) -> Make {
    let opts = options();
    Box::new(move || {
        let (url, opts) = (url.clone(), opts.clone());
        Box::pin(async move {
            Box::new(PgCoordinator::connect(&url, opts).await.unwrap()) as Box<dyn Coordinator>
        })
    })
}

#[tokio::test]
async fn pg_members_see_each_other() {
    let Some(url) = pg_url() else { return };
    members_see_each_other(&maker(url)).await;
}

#[tokio::test]
async fn pg_locks_are_exclusive() {
    let Some(url) = pg_url() else { return };
    locks_are_exclusive(&maker(url)).await;
}

#[tokio::test]
async fn pg_held_locks_outlive_any_delay() {
    let Some(url) = pg_url() else { return };
    held_locks_outlive_their_ttl(&maker(url), Duration::from_millis(800)).await;
}

#[tokio::test]
async fn pg_killed_member_is_taken_over_at_once() {
    let Some(url) = pg_url() else { return };
    // No TTL: the session's end frees everything.
    let (locks, membership) =
        killed_member_is_taken_over(&maker(url), Duration::from_secs(2)).await;
    eprintln!("postgresql: lock freed after {locks:?}, membership after {membership:?}");
}

#[tokio::test]
async fn pg_leaving_frees_everything_at_once() {
    let Some(url) = pg_url() else { return };
    leaving_frees_everything_at_once(&maker(url)).await;
}

#[tokio::test]
async fn pg_rebalance_covers_every_sack() {
    let Some(url) = pg_url() else { return };
    rebalance_covers_every_sack(&maker(url)).await;
}

#[tokio::test]
async fn pg_published_stats_are_seen_by_every_process() {
    let Some(url) = pg_url() else { return };
    published_stats_are_seen_by_every_process(&maker(url)).await;
}

/// A lost session loses its locks (their holder stops trusting them at once),
/// and the coordinator reconnects and joins the group again.
#[tokio::test]
async fn pg_lost_session_loses_locks_and_reconnects() {
    let Some(url) = pg_url() else { return };
    let opts = options();
    let a = Arc::new(PgCoordinator::connect(&url, opts.clone()).await.unwrap());
    let b = PgCoordinator::connect(&url, opts).await.unwrap();
    a.join().await.unwrap();
    let la = a.try_lock_sack(4).await.unwrap().unwrap();
    assert!(la.held());
    a.close_session().await;
    assert!(!la.held(), "a lock of a lost session is still trusted");
    // The lock is free for others right away.
    let lb = b
        .try_lock_sack(4)
        .await
        .unwrap()
        .expect("freed with the session");
    lb.unlock().await.unwrap();
    // Back in the group after the reconnection.
    let id = a.member_id();
    eventually(Duration::from_secs(5), "the member rejoins", || {
        let b = &b;
        let a = a.clone();
        async move {
            let m = b.members().await.unwrap().unwrap();
            m.contains(&a.member_id())
        }
    })
    .await;
    let _ = id;
    la.unlock().await.unwrap();
    a.leave().await;
}
