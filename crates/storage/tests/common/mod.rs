//! Helpers shared by the storage tests.
#![allow(dead_code, unreachable_pub)]

use carbonara::Measure;
use gnocchi_storage::local_incoming::LocalIncoming;
use gnocchi_storage::{Incoming, MeasureBatch};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "gnocchi-storage-{name}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn metric(i: u64) -> Uuid {
    Uuid::from_u128(0x1234_5678_0000_0000_0000_0000_0000_0000 | u128::from(i))
}

/// `n` points for `metric` numbered from `first`: (first+k seconds, value first+k).
pub fn points(first: i64, n: i64) -> Vec<Measure> {
    (first..first + n)
        .map(|k| Measure::new(k * 1_000_000_000, k as f64))
        .collect()
}

pub fn batch(metrics: &[Uuid], first: i64, n: i64) -> MeasureBatch {
    metrics.iter().map(|m| (*m, points(first, n))).collect()
}

/// Take every sack and return all measures per metric (the sacks stay leased:
/// the leases are simply forgotten, as by a crashed processor).
pub async fn take_all(inc: &LocalIncoming) -> HashMap<Uuid, Vec<Measure>> {
    let mut all = HashMap::new();
    for s in 0..inc.sacks() {
        let taken = inc.take(s).await.unwrap();
        for (m, p) in taken.measures {
            assert!(all.insert(m, p).is_none());
        }
    }
    all
}

pub fn segments(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("wal-"))
        .collect();
    names.sort();
    names
}
