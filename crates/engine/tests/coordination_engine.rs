//! The engine honours its coordinator: a sack locked by another process is
//! skipped (and its measures stay pending), `refresh=true` waits for the lock
//! up to its timeout, and measures read under a lock that was lost meanwhile
//! are kept for another pass instead of being deleted. The janitor purges a
//! deleted metric only under its sack's lock.

mod embedded;

use async_trait::async_trait;
use gnocchi_engine::coordination::{CoordResult, LockHandle, SackLock};
use gnocchi_engine::{Coordinator, Engine, EngineError};
use gnocchi_storage::sack_of;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Another process "holds" the sacks in `busy`; locks it grants report
/// `held() == !lost`.
#[derive(Default)]
struct Fake {
    busy: Mutex<HashSet<u32>>,
    lost: Arc<AtomicBool>,
}

struct FakeLock(Arc<AtomicBool>);

#[async_trait]
impl LockHandle for FakeLock {
    fn held(&self) -> bool {
        !self.0.load(Ordering::SeqCst)
    }
    async fn unlock(self: Box<Self>) -> CoordResult<()> {
        Ok(())
    }
}

#[async_trait]
impl Coordinator for Fake {
    fn member_id(&self) -> String {
        "fake".into()
    }
    fn is_distributed(&self) -> bool {
        true
    }
    async fn join(&self) -> CoordResult<()> {
        Ok(())
    }
    async fn leave(&self) {}
    async fn members(&self) -> CoordResult<Option<Vec<String>>> {
        Ok(Some(vec!["fake".into()]))
    }
    async fn try_lock_sack(&self, sack: u32) -> CoordResult<Option<SackLock>> {
        if self.busy.lock().contains(&sack) {
            return Ok(None);
        }
        Ok(Some(SackLock::new(
            sack,
            Box::new(FakeLock(self.lost.clone())),
        )))
    }
}

async fn engine(fake: Arc<Fake>) -> (Arc<Engine>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("engine-coord-{}", Uuid::new_v4()));
    (embedded::engine_in(&dir, 4, Some(fake)).await, dir)
}

async fn metric_with_measures(e: &Engine) -> Uuid {
    let id = Uuid::new_v4();
    embedded::create_metric(e.indexer.as_ref(), id, "low").await;
    e.incoming
        .add_measures(vec![(
            id,
            vec![carbonara::Measure::new(1_700_000_000_000_000_000, 1.0)],
        )])
        .await
        .unwrap();
    id
}

async fn pending(e: &Engine) -> usize {
    e.incoming.backlog().await.unwrap().per_metric.len()
}

#[tokio::test]
async fn sacks_locked_elsewhere_are_skipped_and_refresh_waits() {
    let fake = Arc::new(Fake::default());
    let (e, dir) = engine(fake.clone()).await;
    let id = metric_with_measures(&e).await;
    let sack = sack_of(id, e.incoming.sacks());
    fake.busy.lock().insert(sack);

    let all: Vec<u32> = (0..e.incoming.sacks()).collect();
    let report = e.process_sacks(&all).await.unwrap();
    assert_eq!(report.skipped, 1);
    assert_eq!(report.measures, 0);
    assert_eq!(pending(&e).await, 1, "a skipped sack keeps its measures");

    // refresh=true gives up after its timeout...
    let r = e.refresh_metric(id, Duration::from_millis(300)).await;
    assert!(
        matches!(r, Err(EngineError::MetricLocked(m)) if m == id),
        "{r:?}"
    );
    // ...and succeeds once the other process lets the lock go meanwhile.
    let f = fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        f.busy.lock().clear();
    });
    e.refresh_metric(id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(pending(&e).await, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn measures_read_under_a_lost_lock_are_kept() {
    let fake = Arc::new(Fake::default());
    let (e, dir) = engine(fake.clone()).await;
    let id = metric_with_measures(&e).await;
    let sack = sack_of(id, e.incoming.sacks());
    fake.lost.store(true, Ordering::SeqCst);
    e.process_sacks(&[sack]).await.unwrap();
    assert_eq!(pending(&e).await, 1, "deleted measures under a lost lock");
    // Processing again is idempotent, and commits once the lock holds.
    fake.lost.store(false, Ordering::SeqCst);
    e.process_sacks(&[sack]).await.unwrap();
    assert_eq!(pending(&e).await, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn janitor_purges_only_under_the_sack_lock() {
    let fake = Arc::new(Fake::default());
    let (e, dir) = engine(fake.clone()).await;
    let id = metric_with_measures(&e).await;
    let sack = sack_of(id, e.incoming.sacks());
    e.process_sacks(&[sack]).await.unwrap();
    e.indexer.delete_metric(id).await.unwrap();

    // Another process holds the sack (it may be writing this metric's splits).
    fake.busy.lock().insert(sack);
    assert_eq!(e.janitor_pass().await.unwrap(), 0);
    assert_eq!(e.indexer.list_deleted_metrics(10).await.unwrap(), vec![id]);
    assert!(e.aggregates.get_raw(&[id]).await.unwrap()[0].is_some());

    fake.busy.lock().clear();
    assert_eq!(e.janitor_pass().await.unwrap(), 1);
    assert!(e.indexer.list_deleted_metrics(10).await.unwrap().is_empty());
    assert_eq!(e.aggregates.get_raw(&[id]).await.unwrap(), vec![None]);
    let _ = std::fs::remove_dir_all(&dir);
}
