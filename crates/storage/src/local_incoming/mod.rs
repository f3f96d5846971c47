//! Local incoming store: a group-committed write-ahead log with in-memory sacks.
//!
//! # Durability
//!
//! `add_measures` hands its batch to one writer thread. The writer drains every
//! request queued meanwhile, appends them to the current log segment with one
//! `write`, calls `fdatasync` once, applies them to the in-memory sacks, and only
//! then wakes the callers: many concurrent requests share one fsync, and a measure
//! acknowledged is on disk (it survives kill -9 and power loss) and visible to
//! `take`.
//!
//! # On-disk format (all integers little-endian)
//!
//! `<dir>/config.json`: `{"sacks": N}`, written at the first open; the stored value
//! wins over the one passed later (as upstream's `gnocchi-config`).
//!
//! `<dir>/LOCK`: `flock`ed exclusively while the directory is open.
//!
//! `<dir>/wal-<seq, 20 digits>.log`: segments, in sequence order. A segment is the
//! 8-byte magic `GNCWAL01` followed by records:
//!
//! ```text
//! record  = len u32 | crc32(payload) u32 | payload (len bytes)
//! payload = 1 u8 (measures)   { metric uuid [16] | count u32 | count × (ts i64, value f64) }*
//!         | 2 u8 (commit)     sack u32 | seq u64 | offset u64
//!         | 3 u8 (checkpoint) nsacks u32 | nsacks × (seq u64 | offset u64)
//! ```
//!
//! One measures record is one `add_measures` call (so each of its metric entries
//! is one "batch" of the backlog, as upstream counts them). The *position* of a
//! record is `(segment seq, offset of the end of the record)`, totally ordered.
//!
//! A commit record says "every measure of `sack` at a position ≤ (seq, offset) is
//! processed". Each new segment starts with a checkpoint of all sacks' commit
//! positions, so the newest segment alone knows everything committed and older
//! segments can be deleted in any order. Replay ([`LocalIncoming::open`]) reads
//! the commit positions (newest segment backwards until a checkpoint), then
//! every measures record, re-pending the entries past their sack's commit
//! position. A bad record (length or CRC) ends the replay of its segment: in the
//! last segment this is the torn tail of an unacknowledged write (ignored, and
//! truncated away); in an older one it is corruption (logged, rest of the
//! segment skipped). Appending then continues in a new segment.
//!
//! # Sacks, leases and segment lifecycle
//!
//! Each sack holds, in memory, its pending measures per metric (arrival order),
//! the number of batches per metric, and the set of segments its pending data
//! lies in (each segment keeps a count of such holders). `take` moves the
//! pending data out in O(1) and leases the sack; measures arriving meanwhile
//! go to a fresh map. `commit` logs a commit record (group-committed like
//! measures), then drops the lease's segment references; `release` puts the
//! measures back in front of the newer ones. A segment file is deleted once it
//! is not the current one and no sack holds data in it. The current segment is
//! rotated when it exceeds [`LocalIncomingOptions::segment_bytes`].
//!
//! A `take` of a sack that is leased, or that has nothing pending, returns an
//! empty [`SackMeasures`] with token 0 (no lease); `commit`/`release` of token 0
//! do nothing.
//!
//! If an `fdatasync` fails the writer stops accepting writes (the page cache
//! state is unknown after a failed fsync): every later call fails until the
//! process is restarted and the log replayed. A failed `write` (e.g. disk full)
//! is truncated away and only fails the requests of that group.

use crate::{Backlog, Incoming, MeasureBatch, Result, SackMeasures, StorageError, sack_of};
use async_trait::async_trait;
use carbonara::Measure;
use parking_lot::Mutex;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use uuid::Uuid;

const MAGIC: &[u8; 8] = b"GNCWAL01";
const REC_HEADER: usize = 8;
const T_MEASURES: u8 = 1;
const T_COMMIT: u8 = 2;
const T_CHECKPOINT: u8 = 3;
/// Largest record accepted (one `add_measures` call).
const MAX_RECORD: usize = 1 << 30;
/// The writer stops draining its queue once a group is this large.
const GROUP_BYTES: usize = 16 << 20;
const MAX_SACKS: u32 = 65535;

/// A record's position in the log: (segment seq, end offset of the record).
type Pos = (u64, u64);

/// Tuning of [`LocalIncoming`].
#[derive(Debug, Clone)]
pub struct LocalIncomingOptions {
    /// Rotate the current segment once it is larger than this.
    pub segment_bytes: u64,
}

impl Default for LocalIncomingOptions {
    fn default() -> Self {
        LocalIncomingOptions {
            segment_bytes: 64 << 20,
        }
    }
}

/// The incoming store of the embedded (single machine) deployment.
pub struct LocalIncoming {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Req>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Holds the directory's `flock` until dropped.
    _lock: File,
}

struct Shared {
    dir: PathBuf,
    nsacks: u32,
    sacks: Vec<Mutex<Sack>>,
    segs: Mutex<Segments>,
    dirty: Mutex<Dirty>,
    notify: Notify,
    next_token: AtomicU64,
}

#[derive(Default)]
struct Sack {
    measures: HashMap<Uuid, Vec<Measure>>,
    batches: HashMap<Uuid, u64>,
    /// Pending measures (points).
    count: u64,
    /// Segments holding pending data of this sack, ascending; each holds one reference.
    segs: Vec<u64>,
    /// Position of the last record that added data to this sack.
    last_pos: Pos,
    taken: Option<Taken>,
}

struct Taken {
    token: u64,
    batches: HashMap<Uuid, u64>,
    count: u64,
    segs: Vec<u64>,
    pos: Pos,
}

struct Segments {
    /// Every segment file present, with the number of sacks (pending or taken) holding data in it.
    refs: BTreeMap<u64, u32>,
    current: u64,
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
struct Dirty {
    flags: Vec<bool>,
    list: Vec<u32>,
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
    fn drain(&mut self) -> Vec<u32> {
        for &s in &self.list {
            self.flags[s as usize] = false;
        }
        std::mem::take(&mut self.list)
    }
}

enum Req {
    Append {
        batch: MeasureBatch,
        done: oneshot::Sender<Result<()>>,
    },
    Commit {
        sack: u32,
        pos: Pos,
        done: oneshot::Sender<Result<()>>,
    },
}

fn segment_name(seq: u64) -> String {
    format!("wal-{seq:020}.log")
}

fn segment_seq(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Shared {
    fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(segment_name(seq))
    }

    fn delete_segments(&self, seqs: &[u64]) {
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
    fn apply(&self, batch: MeasureBatch, pos: Pos, touched: &mut Touched) {
        for (metric, points) in batch {
            if points.is_empty() {
                continue;
            }
            let s = sack_of(metric, self.nsacks);
            let mut sack = self.sacks[s as usize].lock();
            sack.count += points.len() as u64;
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

    fn publish(&self, touched: &mut Touched) {
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
struct Touched {
    flags: Vec<bool>,
    list: Vec<u32>,
}

impl Touched {
    fn new(n: u32) -> Self {
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

// ---------------------------------------------------------------------------
// Record encoding and decoding

fn begin_record(buf: &mut Vec<u8>, kind: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; REC_HEADER]);
    buf.push(kind);
    start
}

fn seal_record(buf: &mut [u8], start: usize) {
    let payload = &buf[start + REC_HEADER..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Size of the measures record of `batch`, or `None` if there is nothing to store.
fn measures_record_size(batch: &MeasureBatch) -> Option<usize> {
    let mut size = REC_HEADER + 1;
    let mut any = false;
    for (_, points) in batch {
        if !points.is_empty() {
            any = true;
            size = size.saturating_add(20 + points.len().saturating_mul(16));
        }
    }
    any.then_some(size)
}

fn encode_measures(buf: &mut Vec<u8>, batch: &MeasureBatch) {
    let start = begin_record(buf, T_MEASURES);
    for (metric, points) in batch {
        if points.is_empty() {
            continue;
        }
        buf.extend_from_slice(metric.as_bytes());
        buf.extend_from_slice(&(points.len() as u32).to_le_bytes());
        for &Measure {
            timestamp: ts,
            value,
        } in points
        {
            let mut rec = [0u8; 16];
            rec[..8].copy_from_slice(&ts.to_le_bytes());
            rec[8..].copy_from_slice(&value.to_le_bytes());
            buf.extend_from_slice(&rec);
        }
    }
    seal_record(buf, start);
}

fn encode_commit(buf: &mut Vec<u8>, sack: u32, pos: Pos) {
    let start = begin_record(buf, T_COMMIT);
    buf.extend_from_slice(&sack.to_le_bytes());
    buf.extend_from_slice(&pos.0.to_le_bytes());
    buf.extend_from_slice(&pos.1.to_le_bytes());
    seal_record(buf, start);
}

fn encode_checkpoint(buf: &mut Vec<u8>, commits: &[Pos]) {
    let start = begin_record(buf, T_CHECKPOINT);
    buf.extend_from_slice(&(commits.len() as u32).to_le_bytes());
    for &(seq, off) in commits {
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&off.to_le_bytes());
    }
    seal_record(buf, start);
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Decode a measures payload (after its type byte).
fn decode_measures(mut b: &[u8]) -> std::result::Result<MeasureBatch, String> {
    let mut batch = Vec::new();
    while !b.is_empty() {
        if b.len() < 20 {
            return Err("truncated metric entry".into());
        }
        let metric = Uuid::from_bytes(b[..16].try_into().expect("16 bytes"));
        let count = u32_at(b, 16) as usize;
        b = &b[20..];
        let bytes = count
            .checked_mul(16)
            .filter(|&n| n <= b.len())
            .ok_or("truncated measures")?;
        let points = b[..bytes]
            .chunks_exact(16)
            .map(|c| {
                let ts = i64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
                let v = f64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
                Measure::new(ts, v)
            })
            .collect();
        b = &b[bytes..];
        batch.push((metric, points));
    }
    Ok(batch)
}

/// Outcome of scanning one segment file.
struct Scan {
    /// End of the last valid record (0 if even the magic is missing).
    valid_end: u64,
    /// File length.
    len: u64,
}

/// Call `f(kind, payload, position end)` for every valid record of a segment
/// (`report`: log where and why the valid records end early).
fn scan_segment(
    path: &Path,
    is_last: bool,
    report: bool,
    mut f: impl FnMut(u8, &[u8], u64) -> Result<()>,
) -> Result<Scan> {
    let data = std::fs::read(path)?;
    let len = data.len() as u64;
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        if report && !is_last {
            tracing::error!(segment = %path.display(), "incoming log segment has no valid header, skipped");
        }
        return Ok(Scan { valid_end: 0, len });
    }
    let mut at = MAGIC.len();
    while at < data.len() {
        let bad = |why: &str| {
            if !report {
                return;
            }
            if is_last {
                tracing::info!(segment = %path.display(), offset = at, dropped = data.len() - at, "ignoring torn tail of the incoming log ({why})");
            } else {
                tracing::error!(segment = %path.display(), offset = at, dropped = data.len() - at, "corrupt record in incoming log ({why}), rest of segment skipped");
            }
        };
        if data.len() - at < REC_HEADER {
            bad("truncated header");
            break;
        }
        let rlen = u32_at(&data, at) as usize;
        let crc = u32_at(&data, at + 4);
        if rlen == 0 || rlen > data.len() - at - REC_HEADER {
            bad("bad length");
            break;
        }
        let payload = &data[at + REC_HEADER..at + REC_HEADER + rlen];
        if crc32fast::hash(payload) != crc {
            bad("bad checksum");
            break;
        }
        at += REC_HEADER + rlen;
        f(payload[0], &payload[1..], at as u64)?;
    }
    Ok(Scan {
        valid_end: at as u64,
        len,
    })
}

// ---------------------------------------------------------------------------
// Opening and replay

fn lock_dir(dir: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            Err(StorageError::Locked(dir.display().to_string()))
        }
        Err(e) => Err(StorageError::Io(e.into())),
    }
}

fn load_or_store_sacks(dir: &Path, sacks: u32) -> Result<u32> {
    let path = dir.join("config.json");
    match std::fs::read(&path) {
        Ok(data) => {
            let v: serde_json::Value = serde_json::from_slice(&data)
                .map_err(|e| StorageError::Corrupt(format!("{}: {e}", path.display())))?;
            let n = v
                .get("sacks")
                .and_then(|n| n.as_u64())
                .filter(|&n| (1..=u64::from(MAX_SACKS)).contains(&n))
                .ok_or_else(|| {
                    StorageError::Corrupt(format!("{}: no valid \"sacks\"", path.display()))
                })?;
            let n = n as u32;
            if n != sacks {
                tracing::info!(
                    stored = n,
                    requested = sacks,
                    "incoming storage keeps its stored number of sacks"
                );
            }
            Ok(n)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !(1..=MAX_SACKS).contains(&sacks) {
                return Err(StorageError::Backend(format!(
                    "number of sacks must be 1..={MAX_SACKS}, not {sacks}"
                )));
            }
            store_sacks(dir, sacks)?;
            Ok(sacks)
        }
        Err(e) => Err(e.into()),
    }
}

fn store_sacks(dir: &Path, sacks: u32) -> Result<()> {
    let tmp = dir.join("config.json.tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(serde_json::json!({ "sacks": sacks }).to_string().as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join("config.json"))?;
    sync_dir(dir)?;
    Ok(())
}

fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(seq) = entry.file_name().to_str().and_then(segment_seq) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

impl LocalIncoming {
    /// Open the log under `dir` (created if needed), replaying what is pending.
    pub fn open(dir: &Path, sacks: u32) -> Result<Self> {
        Self::open_with_options(dir, sacks, LocalIncomingOptions::default())
    }

    pub fn open_with_options(
        dir: &Path,
        sacks: u32,
        options: LocalIncomingOptions,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        let nsacks = load_or_store_sacks(dir, sacks)?;
        let (shared, commits, seqs) = replay(dir, nsacks)?;

        // Continue in a new segment.
        let seq = seqs.last().map_or(1, |s| s + 1);
        let mut buf = Vec::with_capacity(1 << 20);
        let file = create_segment(dir, seq, &commits, &mut buf)?;
        let offset = buf.len() as u64;
        let obsolete: Vec<u64> = {
            let mut segs = shared.segs.lock();
            segs.current = seq;
            segs.refs.insert(seq, 0);
            let obsolete: Vec<u64> = segs
                .refs
                .iter()
                .filter(|&(&s, &r)| r == 0 && s != seq)
                .map(|(&s, _)| s)
                .collect();
            for s in &obsolete {
                segs.refs.remove(s);
            }
            obsolete
        };
        shared.delete_segments(&obsolete);

        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            shared: shared.clone(),
            rx,
            file,
            seq,
            offset,
            commits,
            buf,
            segment_bytes: options.segment_bytes.max(1),
            failed: None,
            touched: Touched::new(nsacks),
        };
        let writer = std::thread::Builder::new()
            .name("incoming-wal".into())
            .spawn(move || writer.run())?;
        Ok(LocalIncoming {
            shared,
            tx: Some(tx),
            writer: Some(writer),
            _lock: lock,
        })
    }

    /// Change the stored number of sacks of the (closed) log under `dir`, as
    /// `gnocchi-change-sack-size` does: refused while measures are pending, since
    /// they would land in other sacks. Returns the previous number.
    pub fn change_sacks(dir: &Path, sacks: u32) -> Result<u32> {
        if !(1..=MAX_SACKS).contains(&sacks) {
            return Err(StorageError::Backend(format!(
                "number of sacks must be 1..={MAX_SACKS}, not {sacks}"
            )));
        }
        std::fs::create_dir_all(dir)?;
        let _lock = lock_dir(dir)?;
        let old = load_or_store_sacks(dir, sacks)?;
        if old == sacks {
            return Ok(old);
        }
        let (shared, _, seqs) = replay(dir, old)?;
        let pending: u64 = shared.sacks.iter().map(|s| s.lock().count).sum();
        if pending > 0 {
            return Err(StorageError::Backend(format!(
                "{pending} measures are still pending: process them before changing the number of sacks"
            )));
        }
        // Everything is committed: the log (and its per-sack commit positions) is no longer needed.
        store_sacks(dir, sacks)?;
        for seq in seqs {
            std::fs::remove_file(dir.join(segment_name(seq)))?;
        }
        sync_dir(dir)?;
        Ok(old)
    }

    async fn send(&self, make: impl FnOnce(oneshot::Sender<Result<()>>) -> Req) -> Result<()> {
        let (done, wait) = oneshot::channel();
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| StorageError::Backend("incoming log closed".into()))?;
        tx.send(make(done))
            .map_err(|_| StorageError::Backend("incoming log writer stopped".into()))?;
        wait.await
            .map_err(|_| StorageError::Backend("incoming log writer stopped".into()))?
    }

    /// Put taken measures back as pending (shared by `release` and a failed `commit`).
    fn put_back(&self, taken: SackMeasures) -> Result<()> {
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
            // Everything was removed by the caller: the data is no longer needed.
            let segs = std::mem::take(&mut sack.segs);
            drop(sack);
            self.unref(&segs);
        }
        Ok(())
    }

    fn unref(&self, segs: &[u64]) {
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

/// Read the log of `dir`: the sacks with every uncommitted measure pending, the
/// commit positions, and the segments present.
fn replay(dir: &Path, nsacks: u32) -> Result<(Arc<Shared>, Vec<Pos>, Vec<u64>)> {
    let seqs = list_segments(dir)?;
    // Pass 1: commit positions, from the newest segment back to the newest checkpoint.
    let mut commits: Vec<Pos> = vec![(0, 0); nsacks as usize];
    for (i, &seq) in seqs.iter().enumerate().rev() {
        let is_last = i + 1 == seqs.len();
        let mut found_checkpoint = false;
        scan_segment(
            &dir.join(segment_name(seq)),
            is_last,
            false,
            |kind, p, _| {
                match kind {
                    T_COMMIT if p.len() == 20 => {
                        let sack = u32_at(p, 0) as usize;
                        let pos = (u64_at(p, 4), u64_at(p, 12));
                        if let Some(c) = commits.get_mut(sack) {
                            *c = (*c).max(pos);
                        }
                    }
                    T_CHECKPOINT if p.len() >= 4 => {
                        let n = u32_at(p, 0) as usize;
                        if n != nsacks as usize || p.len() != 4 + 16 * n {
                            return Err(StorageError::Corrupt(format!(
                                "incoming log checkpoint for {n} sacks, {nsacks} configured"
                            )));
                        }
                        for (s, c) in commits.iter_mut().enumerate() {
                            let pos = (u64_at(p, 4 + 16 * s), u64_at(p, 12 + 16 * s));
                            *c = (*c).max(pos);
                        }
                        found_checkpoint = true;
                    }
                    _ => {}
                }
                Ok(())
            },
        )?;
        if found_checkpoint {
            break;
        }
    }

    let shared = Arc::new(Shared {
        dir: dir.to_path_buf(),
        nsacks,
        sacks: (0..nsacks).map(|_| Mutex::new(Sack::default())).collect(),
        segs: Mutex::new(Segments {
            refs: BTreeMap::new(),
            current: 0,
        }),
        dirty: Mutex::new(Dirty {
            flags: vec![false; nsacks as usize],
            list: Vec::new(),
        }),
        notify: Notify::new(),
        next_token: AtomicU64::new(1),
    });

    // Pass 2: re-pend every measure past its sack's commit position.
    let mut touched = Touched::new(nsacks);
    let mut replayed = 0u64;
    for (i, &seq) in seqs.iter().enumerate() {
        shared.segs.lock().refs.entry(seq).or_insert(0);
        let is_last = i + 1 == seqs.len();
        let path = shared.segment_path(seq);
        let scan = scan_segment(&path, is_last, true, |kind, p, end| {
            if kind != T_MEASURES {
                return Ok(());
            }
            let pos = (seq, end);
            let mut batch = decode_measures(p)
                .map_err(|e| StorageError::Corrupt(format!("{}: {e}", path.display())))?;
            batch.retain(|(m, _)| pos > commits[sack_of(*m, nsacks) as usize]);
            replayed += batch.iter().map(|(_, p)| p.len() as u64).sum::<u64>();
            shared.apply(batch, pos, &mut touched);
            Ok(())
        })?;
        if is_last && scan.valid_end < scan.len && scan.valid_end > 0 {
            // Cut the torn tail so that it is not reported as corruption once
            // this segment is no longer the last one.
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(scan.valid_end)?;
            f.sync_all()?;
        }
    }
    shared.publish(&mut touched);
    if replayed > 0 {
        tracing::info!(
            measures = replayed,
            segments = seqs.len(),
            "incoming log replayed"
        );
    }
    Ok((shared, commits, seqs))
}

fn bad_sack(sack: u32) -> StorageError {
    StorageError::Backend(format!("no sack {sack}"))
}

fn bad_token(taken: &SackMeasures) -> StorageError {
    StorageError::Backend(format!(
        "sack {} is not leased with token {}",
        taken.sack, taken.token
    ))
}

fn create_segment(dir: &Path, seq: u64, commits: &[Pos], buf: &mut Vec<u8>) -> Result<File> {
    let path = dir.join(segment_name(seq));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    buf.clear();
    buf.extend_from_slice(MAGIC);
    encode_checkpoint(buf, commits);
    file.write_all(buf)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

impl Drop for LocalIncoming {
    fn drop(&mut self) {
        // Closing the channel stops the writer once it has handled what is queued.
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

// ---------------------------------------------------------------------------
// The writer thread

struct Writer {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Req>,
    file: File,
    seq: u64,
    offset: u64,
    /// Commit position of each sack, as logged.
    commits: Vec<Pos>,
    buf: Vec<u8>,
    segment_bytes: u64,
    failed: Option<String>,
    touched: Touched,
}

impl Writer {
    fn run(mut self) {
        let mut group: Vec<Req> = Vec::new();
        let mut ends: Vec<u64> = Vec::new();
        while let Ok(first) = self.rx.recv() {
            group.push(first);
            self.buf.clear();
            ends.clear();
            self.encode(&group[0], &mut ends);
            while self.buf.len() < GROUP_BYTES {
                match self.rx.try_recv() {
                    Ok(req) => {
                        self.encode(&req, &mut ends);
                        group.push(req);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(&mut group, &ends);
            if self.failed.is_none() && self.offset >= self.segment_bytes {
                self.rotate();
            }
            if self.buf.capacity() > 4 * GROUP_BYTES {
                self.buf = Vec::with_capacity(1 << 20);
            }
        }
        if let Err(e) = self.file.sync_data() {
            tracing::error!(error = %e, "incoming log: final fdatasync failed");
        }
    }

    fn encode(&mut self, req: &Req, ends: &mut Vec<u64>) {
        match req {
            Req::Append { batch, .. } => encode_measures(&mut self.buf, batch),
            Req::Commit { sack, pos, .. } => encode_commit(&mut self.buf, *sack, *pos),
        }
        ends.push(self.offset + self.buf.len() as u64);
    }

    fn commit_group(&mut self, group: &mut Vec<Req>, ends: &[u64]) {
        if let Some(why) = &self.failed {
            let why = why.clone();
            for req in group.drain(..) {
                respond(req, Err(StorageError::Backend(why.clone())));
            }
            return;
        }
        let written = self.file.write_all(&self.buf);
        let result = match written {
            Err(e) => {
                // Cut what may have been partially written; the log stays usable.
                let cut = self
                    .file
                    .set_len(self.offset)
                    .and_then(|()| self.file.seek(SeekFrom::Start(self.offset)));
                if let Err(e2) = cut {
                    self.failed = Some(format!(
                        "incoming log unusable after a failed write: {e}, then {e2}"
                    ));
                }
                Err(format!("incoming log write failed: {e}"))
            }
            Ok(()) => match self.file.sync_data() {
                Err(e) => {
                    let why = format!("incoming log fdatasync failed, restart needed: {e}");
                    tracing::error!("{why}");
                    self.failed = Some(why.clone());
                    Err(why)
                }
                Ok(()) => Ok(()),
            },
        };
        if let Err(why) = result {
            for req in group.drain(..) {
                respond(req, Err(StorageError::Backend(why.clone())));
            }
            return;
        }
        self.offset += self.buf.len() as u64;
        let mut dones = Vec::with_capacity(group.len());
        for (req, &end) in group.drain(..).zip(ends) {
            match req {
                Req::Append { batch, done } => {
                    self.shared.apply(batch, (self.seq, end), &mut self.touched);
                    dones.push(done);
                }
                Req::Commit { sack, pos, done } => {
                    let c = &mut self.commits[sack as usize];
                    *c = (*c).max(pos);
                    dones.push(done);
                }
            }
        }
        self.shared.publish(&mut self.touched);
        for done in dones {
            let _ = done.send(Ok(()));
        }
    }

    fn rotate(&mut self) {
        let seq = self.seq + 1;
        let file = match create_segment(&self.shared.dir, seq, &self.commits, &mut self.buf) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a new incoming log segment, continuing in the current one");
                let _ = std::fs::remove_file(self.shared.segment_path(seq));
                return;
            }
        };
        let old = self.seq;
        self.file = file;
        self.seq = seq;
        self.offset = self.buf.len() as u64;
        let delete_old = {
            let mut segs = self.shared.segs.lock();
            segs.current = seq;
            segs.refs.insert(seq, 0);
            if segs.refs.get(&old) == Some(&0) {
                segs.refs.remove(&old);
                true
            } else {
                false
            }
        };
        if delete_old {
            self.shared.delete_segments(&[old]);
        }
    }
}

fn respond(req: Req, result: Result<()>) {
    let done = match req {
        Req::Append { done, .. } | Req::Commit { done, .. } => done,
    };
    let _ = done.send(result);
}

// ---------------------------------------------------------------------------
// The trait

#[async_trait]
impl Incoming for LocalIncoming {
    fn sacks(&self) -> u32 {
        self.shared.nsacks
    }

    async fn add_measures(&self, batch: MeasureBatch) -> Result<()> {
        match measures_record_size(&batch) {
            None => Ok(()),
            Some(size) if size > MAX_RECORD => Err(StorageError::Backend(format!(
                "measure batch too large ({size} bytes encoded)"
            ))),
            Some(_) => self.send(|done| Req::Append { batch, done }).await,
        }
    }

    async fn take(&self, sack: u32) -> Result<SackMeasures> {
        let slot = self
            .shared
            .sacks
            .get(sack as usize)
            .ok_or_else(|| bad_sack(sack))?;
        let mut s = slot.lock();
        if s.taken.is_some() || s.count == 0 {
            return Ok(SackMeasures {
                sack,
                measures: HashMap::new(),
                token: 0,
            });
        }
        let token = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        let measures = std::mem::take(&mut s.measures);
        let taken = Taken {
            token,
            batches: std::mem::take(&mut s.batches),
            count: std::mem::take(&mut s.count),
            segs: std::mem::take(&mut s.segs),
            pos: s.last_pos,
        };
        s.taken = Some(taken);
        Ok(SackMeasures {
            sack,
            measures,
            token,
        })
    }

    async fn commit(&self, taken: SackMeasures) -> Result<()> {
        if taken.token == 0 {
            return Ok(());
        }
        let sack = taken.sack;
        let pos = {
            let slot = self
                .shared
                .sacks
                .get(sack as usize)
                .ok_or_else(|| bad_sack(sack))?;
            match &slot.lock().taken {
                Some(t) if t.token == taken.token => t.pos,
                _ => return Err(bad_token(&taken)),
            }
        };
        if let Err(e) = self.send(|done| Req::Commit { sack, pos, done }).await {
            // Not recorded as processed: keep the measures pending (processing is idempotent).
            self.put_back(taken)?;
            return Err(e);
        }
        let segs = {
            let mut s = self.shared.sacks[sack as usize].lock();
            match &s.taken {
                Some(t) if t.token == taken.token => s.taken.take().expect("checked").segs,
                _ => return Err(bad_token(&taken)),
            }
        };
        self.unref(&segs);
        Ok(())
    }

    async fn release(&self, taken: SackMeasures) -> Result<()> {
        self.put_back(taken)
    }

    async fn backlog(&self) -> Result<Backlog> {
        let mut backlog = Backlog::default();
        for slot in &self.shared.sacks {
            let s = slot.lock();
            backlog.measures += s.count;
            for (m, b) in &s.batches {
                *backlog.per_metric.entry(*m).or_insert(0) += b;
            }
            if let Some(t) = &s.taken {
                backlog.measures += t.count;
                for (m, b) in &t.batches {
                    *backlog.per_metric.entry(*m).or_insert(0) += b;
                }
            }
        }
        Ok(backlog)
    }

    async fn wait_for_new(&self, timeout: Duration) -> Vec<u32> {
        let notified = self.shared.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let ready = self.shared.dirty.lock().drain();
        if !ready.is_empty() {
            return ready;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
        self.shared.dirty.lock().drain()
    }
}
