//! An engine on fresh embedded backends, as the all-in-one server opens them:
//! a SQLite index holding upstream's built-in archive policies, the local
//! incoming log with `sacks` sacks, and a redb aggregate store, all in `dir`.

use carbonara::policy::{builtin_policies, default_aggregation_methods};
use gnocchi_engine::{Coordinator, Engine, EngineConfig, InProcessCoordinator};
use gnocchi_index::{Indexer, Metric, NewMetric, sqlite::SqliteIndexer};
use gnocchi_storage::{local_aggregates::LocalAggregates, local_incoming::LocalIncoming};
use std::path::Path;
use std::sync::Arc;

#[allow(dead_code)] // not every test binary opens a whole engine
pub(crate) async fn engine_in(
    dir: &Path,
    sacks: u32,
    coordinator: Option<Arc<dyn Coordinator>>,
) -> Arc<Engine> {
    std::fs::create_dir_all(dir).unwrap();
    let indexer = SqliteIndexer::open(dir.join("index.sqlite").to_str().unwrap())
        .await
        .unwrap();
    indexer.upgrade().await.unwrap();
    for ap in builtin_policies(&default_aggregation_methods()) {
        indexer.create_archive_policy(&ap).await.unwrap();
    }
    let incoming = LocalIncoming::open(&dir.join("incoming"), sacks).unwrap();
    let aggregates = LocalAggregates::open(&dir.join("aggregates.redb")).unwrap();
    Engine::with_coordinator(
        Arc::new(indexer),
        Arc::new(incoming),
        Arc::new(aggregates),
        EngineConfig::default(),
        coordinator.unwrap_or_else(|| Arc::new(InProcessCoordinator::new())),
    )
}

/// A new metric `id` with archive policy `policy`, created by `admin`.
#[allow(dead_code)] // not every test binary creates metrics this way
pub(crate) async fn create_metric(indexer: &dyn Indexer, id: uuid::Uuid, policy: &str) -> Metric {
    indexer
        .create_metric(&NewMetric {
            id,
            name: None,
            unit: None,
            resource_id: None,
            creator: Some("admin".into()),
            archive_policy_name: policy.into(),
        })
        .await
        .unwrap()
}
