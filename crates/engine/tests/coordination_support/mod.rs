//! The contract every distributed [`Coordinator`] keeps, run against each real
//! backend by `coordination_redis.rs` and `coordination_pg.rs`.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use gnocchi_engine::Coordinator;
use gnocchi_engine::hashring::HashRing;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub type Make = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Box<dyn Coordinator>>>>>;

/// Poll `check` every 50 ms until it holds or `within` passes; returns the time it took.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{what}: not true after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn members_of(c: &dyn Coordinator) -> Vec<String> {
    c.members()
        .await
        .expect("members")
        .expect("a distributed coordinator knows its members")
}

/// Two joined coordinators see each other.
pub async fn members_see_each_other(make: &Make) {
    let a = make().await;
    let b = make().await;
    a.join().await.unwrap();
    b.join().await.unwrap();
    let (ida, idb) = (a.member_id(), b.member_id());
    assert_ne!(ida, idb);
    for c in [&a, &b] {
        let m = members_of(c.as_ref()).await;
        assert!(
            m.contains(&ida) && m.contains(&idb),
            "{m:?} lacks {ida} or {idb}"
        );
    }
    // A process that only takes locks (an API process) is not a member.
    let api = make().await;
    assert!(!members_of(a.as_ref()).await.contains(&api.member_id()));
    a.leave().await;
    b.leave().await;
}

/// A lock held by one is refused to the other until released.
pub async fn locks_are_exclusive(make: &Make) {
    let a = make().await;
    let b = make().await;
    let la = a.try_lock_sack(7).await.unwrap().expect("free sack");
    assert!(la.held());
    assert!(
        b.try_lock_sack(7).await.unwrap().is_none(),
        "lock granted twice"
    );
    // Other sacks are independent.
    let lb = b.try_lock_sack(8).await.unwrap().expect("another sack");
    assert!(a.try_lock_sack(8).await.unwrap().is_none());
    la.unlock().await.unwrap();
    let lb7 = b.try_lock_sack(7).await.unwrap().expect("released sack");
    lb7.unlock().await.unwrap();
    lb.unlock().await.unwrap();
    // Dropping a lock releases it too (in the background).
    let la = a.try_lock_sack(9).await.unwrap().unwrap();
    drop(la);
    eventually(
        Duration::from_secs(2),
        "a dropped lock is released",
        || async {
            match b.try_lock_sack(9).await.unwrap() {
                Some(l) => {
                    l.unlock().await.unwrap();
                    true
                }
                None => false,
            }
        },
    )
    .await;
}

/// A lock is kept for as long as it is held, however long past its TTL.
pub async fn held_locks_outlive_their_ttl(make: &Make, ttl: Duration) {
    let a = make().await;
    let b = make().await;
    let la = a.try_lock_sack(11).await.unwrap().unwrap();
    let until = Instant::now() + ttl * 3;
    while Instant::now() < until {
        assert!(
            la.held(),
            "lock no longer trusted while its holder is alive"
        );
        assert!(b.try_lock_sack(11).await.unwrap().is_none());
        tokio::time::sleep(ttl / 4).await;
    }
    la.unlock().await.unwrap();
}

/// A killed member (dropped without leaving, its locks never released) frees
/// its locks and its membership within `within`. Returns (locks, membership)
/// take-over times.
pub async fn killed_member_is_taken_over(make: &Make, within: Duration) -> (Duration, Duration) {
    let a = make().await;
    let b = make().await;
    a.join().await.unwrap();
    b.join().await.unwrap();
    let ida = a.member_id();
    let la = a.try_lock_sack(3).await.unwrap().unwrap();
    assert!(members_of(b.as_ref()).await.contains(&ida));
    // "kill -9": no unlock, no leave, heartbeats stop.
    std::mem::forget(la);
    drop(a);
    let locks = eventually(within, "the killed member's lock is freed", || async {
        match b.try_lock_sack(3).await.unwrap() {
            Some(l) => {
                l.unlock().await.unwrap();
                true
            }
            None => false,
        }
    })
    .await;
    let membership = eventually(within, "the killed member leaves the group", || async {
        !members_of(b.as_ref()).await.contains(&ida)
    })
    .await;
    b.leave().await;
    (locks, membership)
}

/// `leave` frees the membership and the locks at once.
pub async fn leaving_frees_everything_at_once(make: &Make) {
    let a = make().await;
    let b = make().await;
    a.join().await.unwrap();
    b.join().await.unwrap();
    let _la = a.try_lock_sack(5).await.unwrap().unwrap();
    a.leave().await;
    assert!(!members_of(b.as_ref()).await.contains(&a.member_id()));
    let lb = b.try_lock_sack(5).await.unwrap().expect("freed by leave");
    lb.unlock().await.unwrap();
    b.leave().await;
}

/// With the members every coordinator sees, the ring covers every sack exactly
/// `min(replicas, members)` times, and all members compute the same ring.
pub async fn rebalance_covers_every_sack(make: &Make) {
    let mut all = Vec::new();
    for _ in 0..3 {
        let c = make().await;
        c.join().await.unwrap();
        all.push(c);
    }
    let views: Vec<Vec<String>> = {
        let mut v = Vec::new();
        for c in &all {
            v.push(members_of(c.as_ref()).await);
        }
        v
    };
    for v in &views {
        assert_eq!(v, &views[0], "members disagree on the group");
    }
    let members = &views[0];
    assert_eq!(members.len(), 3, "{members:?}");
    let sacks = 128u32;
    for replicas in 1..=4 {
        let mut cover = vec![0usize; sacks as usize];
        for c in &all {
            let ring = HashRing::new(&members_of(c.as_ref()).await);
            for s in ring.sacks_for(&c.member_id(), sacks, replicas) {
                cover[s as usize] += 1;
            }
        }
        assert!(
            cover.iter().all(|&n| n == replicas.min(members.len())),
            "replicas {replicas}: {cover:?}"
        );
    }
    // One leaves: the two left cover every sack again.
    let gone = all.pop().unwrap();
    gone.leave().await;
    let members = members_of(all[0].as_ref()).await;
    assert_eq!(members.len(), 2);
    let ring = HashRing::new(&members);
    let mut cover = vec![0usize; sacks as usize];
    for c in &all {
        for s in ring.sacks_for(&c.member_id(), sacks, 1) {
            cover[s as usize] += 1;
        }
    }
    assert!(cover.iter().all(|&n| n == 1), "{cover:?}");
    for c in &all {
        c.leave().await;
    }
}

/// What a member publishes is read by any process (an API process too),
/// for live members only: a member that leaves takes its statistics along.
pub async fn published_stats_are_seen_by_every_process(make: &Make) {
    use gnocchi_engine::MemberStats;
    let a = make().await;
    let b = make().await;
    let api = make().await;
    a.join().await.unwrap();
    b.join().await.unwrap();
    let stats_a = MemberStats {
        sacks: vec![0, 2],
        measures_processed_last_minute: 120,
        window_seconds: 60.0,
    };
    let stats_b = MemberStats {
        sacks: vec![1, 3],
        measures_processed_last_minute: 0,
        window_seconds: 12.5,
    };
    a.publish_stats(&stats_a).await.unwrap();
    b.publish_stats(&stats_b).await.unwrap();
    let seen = api.member_stats().await.unwrap().expect("distributed");
    assert_eq!(seen.get(&a.member_id()), Some(&stats_a), "{seen:?}");
    assert_eq!(seen.get(&b.member_id()), Some(&stats_b), "{seen:?}");
    // Publishing again replaces the figures.
    let newer = MemberStats {
        measures_processed_last_minute: 7,
        ..stats_a.clone()
    };
    a.publish_stats(&newer).await.unwrap();
    let seen = b.member_stats().await.unwrap().expect("distributed");
    assert_eq!(seen.get(&a.member_id()), Some(&newer));
    b.leave().await;
    let seen = api.member_stats().await.unwrap().expect("distributed");
    assert!(!seen.contains_key(&b.member_id()), "{seen:?}");
    assert!(seen.contains_key(&a.member_id()));
    a.leave().await;
}
