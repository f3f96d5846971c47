//! The sacks in memory: each sack's pending measures and batch counts, its
//! lease while taken, the segments its data lies in (reference-counted, so a
//! segment is deleted once no sack needs it), and the set of sacks with new
//! measures that wakes metricd. Shared by the writer thread, the replay and
//! the `Incoming` calls.

use super::layout::segment_name;
use super::{LocalIncoming, Pos, bad_sack, bad_token};
use crate::{MeasureBatch, Result, SackMeasures, sack_of};
use carbonara::Measure;
use parking_lot::Mutex;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;
use tokio::sync::Notify;
use uuid::Uuid;

pub(super) struct Shared {
    pub(super) dir: PathBuf,
    pub(super) nsacks: u32,
    pub(super) sacks: Vec<Mutex<Sack>>,
    pub(super) segs: Mutex<Segments>,
    pub(super) dirty: Mutex<Dirty>,
    pub(super) notify: Notify,
    pub(super) next_token: AtomicU64,
}

#[derive(Default)]
pub(super) struct Sack {
    pub(super) measures: HashMap<Uuid, Vec<Measure>>,
    pub(super) batches: HashMap<Uuid, u64>,
    /// Pending measures (points).
    pub(super) count: u64,
    /// Segments holding pending data of this sack, ascending; each holds one reference.
    pub(super) segs: Vec<u64>,
    /// Position of the last record that added data to this sack.
    pub(super) last_pos: Pos,
    /// When the oldest pending measure was applied (after a restart, when the
    /// log was replayed: the age counts from the restart).
    pub(super) oldest: Option<SystemTime>,
    pub(super) taken: Option<Taken>,
}

pub(super) struct Taken {
    pub(super) token: u64,
    pub(super) batches: HashMap<Uuid, u64>,
    pub(super) count: u64,
    pub(super) segs: Vec<u64>,
    pub(super) pos: Pos,
    /// When the oldest taken measure was applied.
    pub(super) oldest: Option<SystemTime>,
}

pub(super) struct Segments {
    /// Every segment file present, with the number of sacks (pending or taken) holding data in it.
    pub(super) refs: BTreeMap<u64, u32>,
    pub(super) current: u64,
}

impl Segments {
    fn add_ref(&mut self, seq: u64) {
        *self.refs.entry(seq).or_insert(0) += 1;
    }
    /// Drop one reference; true if the segment file must now be deleted.
    fn drop_ref(&mut self, seq: u64) -> bool {
        match self.refs.get_mut(&seq) {
            Some(r) => {
                *r = r.saturating_sub(1);
                if *r == 0 && seq != self.current {
                    self.refs.remove(&seq);
                    true
                } else {
                    false
                }
            }
            None => false,
        }
    }
}

#[derive(Default)]
pub(super) struct Dirty {
    pub(super) flags: Vec<bool>,
    pub(super) list: Vec<u32>,
}

impl Dirty {
    fn mark(&mut self, sack: u32) -> bool {
        let f = &mut self.flags[sack as usize];
        if *f {
            return false;
        }
        *f = true;
        self.list.push(sack);
        true
    }
    pub(super) fn drain(&mut self) -> Vec<u32> {
        for &s in &self.list {
            self.flags[s as usize] = false;
        }
        std::mem::take(&mut self.list)
    }
}

impl Shared {
    pub(super) fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(segment_name(seq))
    }

    pub(super) fn delete_segments(&self, seqs: &[u64]) {
        for &seq in seqs {
            let path = self.segment_path(seq);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::debug!(segment = %path.display(), "incoming log segment consumed, deleted")
                }
                Err(e) => {
                    tracing::warn!(segment = %path.display(), error = %e, "cannot delete consumed incoming log segment")
                }
            }
        }
    }

    /// Add durable measures to their sacks (writer thread and replay).
    pub(super) fn apply(&self, batch: MeasureBatch, pos: Pos, touched: &mut Touched) {
        let now = SystemTime::now();
        for (metric, points) in batch {
            if points.is_empty() {
                continue;
            }
            let s = sack_of(metric, self.nsacks);
            let mut sack = self.sacks[s as usize].lock();
            sack.count += points.len() as u64;
            sack.oldest.get_or_insert(now);
            *sack.batches.entry(metric).or_insert(0) += 1;
            match sack.measures.entry(metric) {
                Entry::Occupied(mut e) => e.get_mut().extend_from_slice(&points),
                Entry::Vacant(e) => {
                    e.insert(points);
                }
            }
            sack.last_pos = pos;
            if sack.segs.last() != Some(&pos.0) {
                sack.segs.push(pos.0);
                self.segs.lock().add_ref(pos.0);
            }
            drop(sack);
            touched.mark(s);
        }
    }

    pub(super) fn publish(&self, touched: &mut Touched) {
        if touched.list.is_empty() {
            return;
        }
        let mut new = false;
        {
            let mut dirty = self.dirty.lock();
            for &s in &touched.list {
                new |= dirty.mark(s);
            }
        }
        touched.clear();
        if new {
            self.notify.notify_waiters();
        }
    }
}

/// Sacks touched by one group (writer-local, reused).
pub(super) struct Touched {
    flags: Vec<bool>,
    list: Vec<u32>,
}

impl Touched {
    pub(super) fn new(n: u32) -> Self {
        Touched {
            flags: vec![false; n as usize],
            list: Vec::new(),
        }
    }
    fn mark(&mut self, s: u32) {
        if !self.flags[s as usize] {
            self.flags[s as usize] = true;
            self.list.push(s);
        }
    }
    fn clear(&mut self) {
        for &s in &self.list {
            self.flags[s as usize] = false;
        }
        self.list.clear();
    }
}

impl LocalIncoming {
    /// Put taken measures back as pending (shared by `release` and a failed `commit`).
    pub(super) fn put_back(&self, taken: SackMeasures) -> Result<()> {
        if taken.token == 0 {
            return Ok(());
        }
        let shared = &self.shared;
        let slot = shared
            .sacks
            .get(taken.sack as usize)
            .ok_or_else(|| bad_sack(taken.sack))?;
        let mut sack = slot.lock();
        let t = match &sack.taken {
            Some(t) if t.token == taken.token => sack.taken.take().expect("checked"),
            _ => return Err(bad_token(&taken)),
        };
        let mut count = 0u64;
        for (metric, mut points) in taken.measures {
            if points.is_empty() {
                continue;
            }
            count += points.len() as u64;
            let batches = t.batches.get(&metric).copied().unwrap_or(1);
            *sack.batches.entry(metric).or_insert(0) += batches;
            match sack.measures.entry(metric) {
                Entry::Occupied(mut e) => {
                    points.extend_from_slice(e.get());
                    *e.get_mut() = points;
                }
                Entry::Vacant(e) => {
                    e.insert(points);
                }
            }
        }
        sack.count += count;
        if count > 0 {
            sack.oldest = match (sack.oldest, t.oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        // Merge the lease's segment references into the pending ones: a segment
        // referenced by both keeps one reference.
        let pending = std::mem::take(&mut sack.segs);
        let dups: Vec<u64> = t
            .segs
            .iter()
            .copied()
            .filter(|s| pending.binary_search(s).is_ok())
            .collect();
        let mut segs = pending;
        segs.extend(
            t.segs
                .iter()
                .copied()
                .filter(|s| dups.binary_search(s).is_err()),
        );
        segs.sort_unstable();
        if !dups.is_empty() {
            let mut table = shared.segs.lock();
            for s in dups {
                table.drop_ref(s);
            }
        }
        sack.segs = segs;
        if sack.count == 0 {
            sack.oldest = None;
            // Everything was removed by the caller: the data is no longer needed.
            let segs = std::mem::take(&mut sack.segs);
            drop(sack);
            self.unref(&segs);
        }
        Ok(())
    }

    pub(super) fn unref(&self, segs: &[u64]) {
        let obsolete: Vec<u64> = {
            let mut table = self.shared.segs.lock();
            segs.iter()
                .copied()
                .filter(|&s| table.drop_ref(s))
                .collect()
        };
        self.shared.delete_segments(&obsolete);
    }
}
