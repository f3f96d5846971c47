//! Shared helpers: a throwaway database file per test, and sample records.
#![allow(dead_code, unreachable_pub)]

use carbonara::method::BaseMethod;
use carbonara::{ArchivePolicy, ArchivePolicyItem, Method};
use gnocchi_index::sqlite::SqliteIndexer;
use gnocchi_index::{Indexer, NewMetric};
use std::path::PathBuf;
use uuid::Uuid;

pub const SECOND: i64 = 1_000_000_000;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("gnocchi-index-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn db_path(&self) -> String {
        self.0.join("index.sqlite").to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An upgraded indexer on a new file database; keep the `TempDir` alive as long.
pub async fn indexer() -> (TempDir, SqliteIndexer) {
    let dir = TempDir::new();
    let index = SqliteIndexer::open(&dir.db_path()).await.unwrap();
    index.upgrade().await.unwrap();
    (dir, index)
}

pub fn policy(name: &str) -> ArchivePolicy {
    ArchivePolicy {
        name: name.to_owned(),
        back_window: 0,
        definition: vec![
            ArchivePolicyItem {
                granularity: SECOND,
                points: Some(3600),
                timespan: Some(3600 * SECOND),
            },
            ArchivePolicyItem {
                granularity: 60 * SECOND,
                points: None,
                timespan: None,
            },
        ],
        aggregation_methods: vec![
            Method::Mean,
            Method::Max,
            Method::Pct(95),
            Method::Rate(BaseMethod::Last),
        ],
    }
}

pub fn new_metric(ap: &str, name: Option<&str>, resource_id: Option<Uuid>) -> NewMetric {
    NewMetric {
        id: Uuid::new_v4(),
        name: name.map(str::to_owned),
        unit: None,
        resource_id,
        creator: Some("admin".to_owned()),
        archive_policy_name: ap.to_owned(),
    }
}
