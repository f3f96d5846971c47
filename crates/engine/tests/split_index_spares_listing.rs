//! metricd keeps each metric's split index in its raw buffer, so processing
//! measures does not list the aggregate store (one `LIST` per series on S3):
//! the index always equals what a listing would return, also after retention
//! deletes old splits, and buffers written without an index are listed once.

mod embedded;

use async_trait::async_trait;
use carbonara::codec::{self, SplitIndex};
use carbonara::{ArchivePolicy, ArchivePolicyItem, Method, NS_PER_SEC, SplitKey};
use gnocchi_engine::{Engine, EngineConfig, InProcessCoordinator, MeasuresQuery};
use gnocchi_index::{Indexer, sqlite::SqliteIndexer};
use gnocchi_storage::local_aggregates::LocalAggregates;
use gnocchi_storage::local_incoming::LocalIncoming;
use gnocchi_storage::{Aggregates, Result, SplitRef, WriteBatch, sack_of};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

/// The embedded aggregate store, counting the series it is asked to list.
struct CountingAggregates {
    inner: LocalAggregates,
    listed_series: AtomicUsize,
}

#[async_trait]
impl Aggregates for CountingAggregates {
    async fn get_raw(&self, metrics: &[Uuid]) -> Result<Vec<Option<Vec<u8>>>> {
        self.inner.get_raw(metrics).await
    }
    async fn list_split_keys(&self, series: &[(Uuid, Method, i64)]) -> Result<Vec<Vec<SplitKey>>> {
        self.listed_series.fetch_add(series.len(), Ordering::SeqCst);
        self.inner.list_split_keys(series).await
    }
    async fn get_splits(&self, splits: &[SplitRef]) -> Result<Vec<Option<Vec<u8>>>> {
        self.inner.get_splits(splits).await
    }
    async fn write(&self, batch: WriteBatch) -> Result<()> {
        self.inner.write(batch).await
    }
    async fn delete_metrics(&self, metrics: &[Uuid]) -> Result<()> {
        self.inner.delete_metrics(metrics).await
    }
}

const MINUTE: i64 = 60 * NS_PER_SEC;
/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200 * NS_PER_SEC;

struct Setup {
    engine: Arc<Engine>,
    store: Arc<CountingAggregates>,
    metric: gnocchi_index::Metric,
    dir: std::path::PathBuf,
}

/// A metric whose 1-minute series keeps 10 days (a split holds 3600 points,
/// 2.5 days), so that measures weeks apart expire whole splits.
async fn setup() -> Setup {
    let dir = std::env::temp_dir().join(format!("engine-split-index-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let indexer = SqliteIndexer::open(dir.join("index.sqlite").to_str().unwrap())
        .await
        .unwrap();
    indexer.upgrade().await.unwrap();
    let policy = ArchivePolicy::new(
        "ten-days".into(),
        0,
        vec![
            ArchivePolicyItem::new(Some(MINUTE), Some(14_400), None).unwrap(),
            ArchivePolicyItem::new(Some(3600 * NS_PER_SEC), None, None).unwrap(),
        ],
        vec![
            Method::Mean,
            Method::Max,
            Method::parse("rate:last").unwrap(),
        ],
    )
    .unwrap();
    indexer.create_archive_policy(&policy).await.unwrap();
    let id = Uuid::new_v4();
    let metric = embedded::create_metric(&indexer, id, "ten-days").await;
    let store = Arc::new(CountingAggregates {
        inner: LocalAggregates::open(&dir.join("aggregates.redb")).unwrap(),
        listed_series: AtomicUsize::new(0),
    });
    let engine = Engine::with_coordinator(
        Arc::new(indexer),
        Arc::new(LocalIncoming::open(&dir.join("incoming"), 4).unwrap()),
        store.clone(),
        EngineConfig::default(),
        Arc::new(InProcessCoordinator::new()),
    );
    Setup {
        engine,
        store,
        metric,
        dir,
    }
}

impl Setup {
    /// Posts one measure per minute over `[start, start + minutes)` and processes them.
    async fn process_minutes(&self, start: i64, minutes: i64) {
        let measures = (0..minutes)
            .map(|i| carbonara::Measure::new(start + i * MINUTE, i as f64))
            .collect();
        self.engine
            .incoming
            .add_measures(vec![(self.metric.id, measures)])
            .await
            .unwrap();
        let sack = sack_of(self.metric.id, self.engine.incoming.sacks());
        self.engine.process_sack(sack).await.unwrap();
    }

    fn listed(&self) -> usize {
        self.store.listed_series.load(Ordering::SeqCst)
    }

    async fn stored_index(&self) -> Option<SplitIndex> {
        let raw = self.store.get_raw(&[self.metric.id]).await.unwrap();
        let bytes = raw.into_iter().next().flatten().expect("a raw buffer");
        codec::decode_raw_with_index(&bytes, 1, 0).unwrap().1
    }

    /// The index stored in the raw buffer equals a listing of every series.
    async fn assert_index_matches_listing(&self) {
        let index = self.stored_index().await.expect("an index");
        let policy = &self.metric.archive_policy;
        let series: Vec<(Uuid, Method, i64)> = policy
            .aggregation_methods
            .iter()
            .flat_map(|&m| {
                policy
                    .definition
                    .iter()
                    .map(move |d| (self.metric.id, m, d.granularity))
            })
            .collect();
        let listed = self.store.inner.list_split_keys(&series).await.unwrap();
        assert_eq!(index.len(), series.len());
        for ((_, method, granularity), keys) in series.iter().zip(listed) {
            let starts: Vec<i64> = keys.iter().map(|k| k.start).collect();
            assert_eq!(
                index.get(&(*method, *granularity)),
                Some(&starts),
                "{method} at {granularity}"
            );
        }
    }

    async fn read(&self, method: Method, granularity: i64) -> Vec<f64> {
        let q = MeasuresQuery {
            method,
            granularity: Some(granularity),
            start: None,
            stop: None,
            resample: None,
        };
        let series = self.engine.read_measures(&self.metric, &q).await.unwrap();
        series.into_iter().flat_map(|s| s.values).collect()
    }
}

#[tokio::test]
async fn processing_reads_the_index_instead_of_listing() {
    let s = setup().await;
    s.process_minutes(T0, 10).await;
    s.process_minutes(T0 + 10 * MINUTE, 5_000).await;
    s.process_minutes(T0 + 6_000 * MINUTE, 100).await;
    assert_eq!(s.listed(), 0, "no series listed");
    s.assert_index_matches_listing().await;
    // A 1-minute split spans 3600 minutes, aligned on the epoch.
    let span = 3600 * MINUTE;
    let expected: Vec<i64> = [T0, T0 + 6_099 * MINUTE]
        .iter()
        .map(|t| t - t.rem_euclid(span))
        .collect();
    let index = s.stored_index().await.unwrap();
    assert_eq!(index[&(Method::Mean, MINUTE)], expected);
    assert_eq!(s.read(Method::Mean, MINUTE).await.len(), 5_110);
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test]
async fn expired_splits_leave_the_index() {
    let s = setup().await;
    s.process_minutes(T0, 5_000).await;
    // Thirty days later: the 1-minute splits of January expire.
    s.process_minutes(T0 + 30 * 1_440 * MINUTE, 10).await;
    assert_eq!(s.listed(), 0);
    s.assert_index_matches_listing().await;
    let index = s.stored_index().await.unwrap();
    assert_eq!(index[&(Method::Mean, MINUTE)].len(), 1);
    // The hourly series keeps everything (unlimited retention).
    assert_eq!(index[&(Method::Mean, 3600 * NS_PER_SEC)].len(), 1);
    assert_eq!(
        s.read(Method::Max, MINUTE).await,
        (0..10).map(f64::from).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test]
async fn buffers_without_index_are_listed_once() {
    let s = setup().await;
    s.process_minutes(T0, 4_000).await;
    // A raw buffer as an earlier version wrote it: points only.
    let raw = s.store.get_raw(&[s.metric.id]).await.unwrap();
    let points = codec::decode_raw(raw[0].as_deref().unwrap(), 1, 0).unwrap();
    s.store
        .write(WriteBatch {
            raw: vec![(s.metric.id, codec::encode_raw(&points))],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(s.stored_index().await, None);

    s.process_minutes(T0 + 4_000 * MINUTE, 10).await;
    // Three methods × two granularities.
    assert_eq!(s.listed(), 6);
    s.assert_index_matches_listing().await;
    s.process_minutes(T0 + 4_010 * MINUTE, 10).await;
    assert_eq!(s.listed(), 6, "listed only once");
    assert_eq!(s.read(Method::Mean, MINUTE).await.len(), 4_020);
    let _ = std::fs::remove_dir_all(&s.dir);
}
