//! A batch processed in parts (`[metricd] concurrency` > 1, the default on
//! network stores) aggregates exactly as one part does, reads only splits that
//! the split index says exist, never the same split twice, and writes each
//! part on its own. The split cache spares reading back what this process
//! wrote last, and is ignored once another process has written the metric.

mod embedded;

use async_trait::async_trait;
use carbonara::Method;
use carbonara::measure::measures;
use gnocchi_engine::{Engine, EngineConfig, InProcessCoordinator, MeasuresQuery};
use gnocchi_index::{Indexer, sqlite::SqliteIndexer};
use gnocchi_storage::local_aggregates::LocalAggregates;
use gnocchi_storage::local_incoming::LocalIncoming;
use gnocchi_storage::{Aggregates, Result, SplitRef, WriteBatch};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The embedded aggregate store, recording the splits read and the writes.
#[derive(Default)]
struct Recorded {
    splits_read: Vec<SplitRef>,
    absent_read: usize,
    writes: usize,
}

struct RecordingAggregates {
    inner: LocalAggregates,
    seen: Mutex<Recorded>,
}

#[async_trait]
impl Aggregates for RecordingAggregates {
    async fn get_raw(&self, metrics: &[Uuid]) -> Result<Vec<Option<Vec<u8>>>> {
        self.inner.get_raw(metrics).await
    }
    async fn list_split_keys(
        &self,
        series: &[(Uuid, Method, i64)],
    ) -> Result<Vec<Vec<carbonara::SplitKey>>> {
        self.inner.list_split_keys(series).await
    }
    async fn get_splits(&self, splits: &[SplitRef]) -> Result<Vec<Option<Vec<u8>>>> {
        let got = self.inner.get_splits(splits).await?;
        let mut seen = self.seen.lock().unwrap();
        seen.splits_read.extend_from_slice(splits);
        seen.absent_read += got.iter().filter(|g| g.is_none()).count();
        Ok(got)
    }
    async fn write(&self, batch: WriteBatch) -> Result<()> {
        self.seen.lock().unwrap().writes += 1;
        self.inner.write(batch).await
    }
    async fn delete_metrics(&self, metrics: &[Uuid]) -> Result<()> {
        self.inner.delete_metrics(metrics).await
    }
}

struct Stores {
    indexer: Arc<dyn Indexer>,
    incoming: Arc<LocalIncoming>,
    aggregates: Arc<RecordingAggregates>,
}

async fn stores(dir: &std::path::Path) -> Stores {
    std::fs::create_dir_all(dir).unwrap();
    let indexer = SqliteIndexer::open(dir.join("index.sqlite").to_str().unwrap())
        .await
        .unwrap();
    indexer.upgrade().await.unwrap();
    for ap in carbonara::policy::builtin_policies(&carbonara::policy::default_aggregation_methods())
    {
        indexer.create_archive_policy(&ap).await.unwrap();
    }
    Stores {
        indexer: Arc::new(indexer),
        incoming: Arc::new(LocalIncoming::open(&dir.join("incoming"), 1).unwrap()),
        aggregates: Arc::new(RecordingAggregates {
            inner: LocalAggregates::open(&dir.join("aggregates.redb")).unwrap(),
            seen: Mutex::new(Recorded::default()),
        }),
    }
}

/// An engine on `s`, as one metricd process would be.
fn engine(s: &Stores, concurrency: usize, split_cache_size: usize) -> Arc<Engine> {
    Engine::with_coordinator(
        s.indexer.clone(),
        s.incoming.clone(),
        s.aggregates.clone(),
        EngineConfig {
            concurrency,
            split_cache_size,
            ..EngineConfig::default()
        },
        Arc::new(InProcessCoordinator::new()),
    )
}

/// 40 metrics in one sack, one round of measures per engine of `rounds` (each
/// later round merges into the splits of the earlier ones); returns every
/// metric's mean series and, per round, what was read and written.
async fn run(concurrency: usize, cache: usize, rounds: &[usize]) -> (Vec<Vec<f64>>, Vec<Recorded>) {
    let dir = std::env::temp_dir().join(format!("engine-parts-{}", Uuid::new_v4()));
    let s = stores(&dir).await;
    let engines = [
        engine(&s, concurrency, cache),
        engine(&s, concurrency, cache),
    ];
    let e = &engines[0];
    let t0 = 1_700_000_000_000_000_000i64;
    let mut metrics = Vec::new();
    for i in 0..40u32 {
        // Fixed ids: both runs name their metrics alike.
        let id = Uuid::from_u128(0x1000 + u128::from(i));
        metrics.push(embedded::create_metric(e.indexer.as_ref(), id, "medium").await);
    }
    let mut seen = Vec::new();
    for (round, &which) in rounds.iter().enumerate() {
        let round = round as i64;
        let batch = metrics
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let t = t0 + round * 600_000_000_000;
                let v = i as f64 + round as f64;
                (m.id, measures(&[(t, v), (t + 60_000_000_000, v * 2.0)]))
            })
            .collect();
        e.incoming.add_measures(batch).await.unwrap();
        let report = engines[which].process_sack(0).await.unwrap();
        assert_eq!(report.metrics, 40);
        seen.push(std::mem::take(&mut *s.aggregates.seen.lock().unwrap()));
    }
    let q = MeasuresQuery {
        method: Method::Mean,
        granularity: None,
        start: None,
        stop: None,
        resample: None,
    };
    let mut out = Vec::new();
    for m in &metrics {
        let series = e.read_measures(m, &q).await.unwrap();
        out.push(series.iter().flat_map(|s| s.values.clone()).collect());
    }
    let _ = std::fs::remove_dir_all(&dir);
    (out, seen)
}

#[tokio::test]
async fn parts_aggregate_alike_and_read_each_existing_split_once() {
    let (one, one_seen) = run(1, 0, &[0, 0]).await;
    let (four, four_seen) = run(4, 0, &[0, 0]).await;
    assert_eq!(one, four, "processing in parts changed the aggregates");
    // One write per batch with one part; one per part (4 of 10 metrics) with four.
    assert_eq!(
        one_seen.iter().map(|r| r.writes).collect::<Vec<_>>(),
        [1, 1]
    );
    assert_eq!(
        four_seen.iter().map(|r| r.writes).collect::<Vec<_>>(),
        [4, 4]
    );
    for seen in [&one_seen, &four_seen] {
        // New metrics: nothing to read.
        assert!(seen[0].splits_read.is_empty());
        // Then only splits that exist, each once.
        assert!(!seen[1].splits_read.is_empty());
        assert_eq!(
            seen[1].absent_read, 0,
            "a split the index says is absent was read"
        );
        let distinct: HashSet<&SplitRef> = seen[1].splits_read.iter().collect();
        assert_eq!(
            distinct.len(),
            seen[1].splits_read.len(),
            "a split was read twice"
        );
    }
    assert_eq!(
        one_seen[1].splits_read.len(),
        four_seen[1].splits_read.len()
    );
}

#[tokio::test]
async fn the_split_cache_spares_reads_until_another_process_writes() {
    // Engine 0 twice, engine 1 (another process) once, engine 0 again.
    let rounds = [0, 0, 1, 0];
    let (uncached, _) = run(4, 0, &rounds).await;
    let (cached, seen) = run(4, 64 << 20, &rounds).await;
    assert_eq!(uncached, cached, "the split cache changed the aggregates");
    let reads: Vec<usize> = seen.iter().map(|r| r.splits_read.len()).collect();
    assert_eq!(reads[0], 0, "new metrics read nothing");
    assert_eq!(reads[1], 0, "engine 0 merges into what it wrote: {reads:?}");
    assert!(reads[2] > 0, "engine 1 has no cache: {reads:?}");
    assert!(
        reads[3] > 0,
        "engine 1 rewrote the metrics: engine 0 must read them again: {reads:?}"
    );
    assert!(seen.iter().all(|r| r.absent_read == 0));
}
