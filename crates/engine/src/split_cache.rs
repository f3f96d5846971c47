//! The splits this metricd wrote last, per metric, so that the next pass
//! merges new points into them without reading them back: in the steady
//! state (a metric receiving points in order) every pass rewrites the latest
//! split of each series, and on a network store reading it back is one GET
//! per split, half of the steady state's requests.
//!
//! An entry is used only while the metric's raw buffer, read at the start of
//! the pass, is byte for byte the one written with those splits (a 64-bit
//! hash and the length are compared). Every completed processing writes the
//! raw buffer after its splits, so a processing by another metricd (after a
//! rebalance, or `refresh=true` in an API process) changes the raw buffer
//! and the entry is ignored; a deleted metric has no raw buffer. A failed
//! write forgets the part's entries before it starts, so the cache never
//! claims what the store may not hold. Equal raw buffers after another
//! process's pass mean the same points, hence the same aggregates.
//!
//! Bounded by `[metricd] split_cache_size` (bytes of split payloads): the
//! entries written longest ago are dropped first.

use gnocchi_storage::SplitRef;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use uuid::Uuid;

pub(crate) struct SplitCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Uuid, Entry>,
    /// Insertion order, for eviction: (metric, generation of its entry).
    order: VecDeque<(Uuid, u64)>,
    bytes: usize,
    generation: u64,
}

struct Entry {
    raw: RawStamp,
    splits: HashMap<SplitRef, Vec<u8>>,
    bytes: usize,
    generation: u64,
}

/// What identifies a raw buffer's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawStamp {
    hash: u64,
    len: usize,
}

impl RawStamp {
    pub(crate) fn of(raw: &[u8]) -> RawStamp {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        raw.hash(&mut h);
        RawStamp {
            hash: h.finish(),
            len: raw.len(),
        }
    }
}

impl SplitCache {
    pub(crate) fn new(capacity: usize) -> SplitCache {
        SplitCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The splits cached for `metric`, if its stored raw buffer is still `raw`.
    pub(crate) fn splits_for(
        &self,
        metric: Uuid,
        raw: RawStamp,
    ) -> Option<HashMap<SplitRef, Vec<u8>>> {
        if self.capacity == 0 {
            return None;
        }
        let inner = self.lock();
        let e = inner.entries.get(&metric)?;
        (e.raw == raw).then(|| e.splits.clone())
    }

    /// Drop what is cached for these metrics (before writing them).
    pub(crate) fn forget(&self, metrics: impl IntoIterator<Item = Uuid>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        for m in metrics {
            if let Some(e) = inner.entries.remove(&m) {
                inner.bytes -= e.bytes;
            }
        }
    }

    /// `metric`'s raw buffer `raw` and its `splits` are stored.
    pub(crate) fn insert(&self, metric: Uuid, raw: RawStamp, splits: HashMap<SplitRef, Vec<u8>>) {
        let bytes: usize = splits.values().map(Vec::len).sum();
        if self.capacity == 0 || bytes > self.capacity {
            return;
        }
        let mut inner = self.lock();
        inner.generation += 1;
        let generation = inner.generation;
        if let Some(old) = inner.entries.insert(
            metric,
            Entry {
                raw,
                splits,
                bytes,
                generation,
            },
        ) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        inner.order.push_back((metric, generation));
        while inner.bytes > self.capacity {
            let Some((m, g)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&m).is_some_and(|e| e.generation == g)
                && let Some(e) = inner.entries.remove(&m)
            {
                inner.bytes -= e.bytes;
            }
        }
        // Stale positions (entries replaced since) are dropped as they surface;
        // keep the queue from growing without bound meanwhile.
        if inner.order.len() > 4 * inner.entries.len() + 1024 {
            let Inner { entries, order, .. } = &mut *inner;
            order.retain(|(m, g)| entries.get(m).is_some_and(|e| e.generation == *g));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonara::{Method, SplitKey};

    fn split(metric: Uuid, start: i64) -> SplitRef {
        SplitRef {
            metric,
            method: Method::Mean,
            key: SplitKey {
                start,
                granularity: 1,
            },
        }
    }

    #[test]
    fn used_only_while_the_raw_buffer_is_unchanged_and_bounded() {
        let cache = SplitCache::new(10);
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let raw = RawStamp::of(b"raw a");
        cache.insert(a, raw, HashMap::from([(split(a, 0), vec![1; 6])]));
        assert_eq!(cache.splits_for(a, raw).unwrap()[&split(a, 0)], vec![1; 6]);
        assert!(cache.splits_for(a, RawStamp::of(b"raw a'")).is_none());
        // Over capacity: the oldest entry goes.
        cache.insert(b, raw, HashMap::from([(split(b, 0), vec![2; 6])]));
        assert!(cache.splits_for(a, raw).is_none());
        assert!(cache.splits_for(b, raw).is_some());
        cache.forget([b]);
        assert!(cache.splits_for(b, raw).is_none());
        assert_eq!(cache.lock().bytes, 0);
        assert!(SplitCache::new(0).splits_for(b, raw).is_none());
    }
}
