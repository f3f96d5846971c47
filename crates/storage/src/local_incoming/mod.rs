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
//!
//! # The parts
//!
//! `record` (the bytes of a record, the scan of a segment), `layout` (the
//! directory: lock, stored number of sacks, segment files), `sacks` (the
//! in-memory sacks, leases and segment references), `writer` (the
//! group-committing thread), `replay` (opening, replay, changing the number
//! of sacks); this file holds the store itself and the [`Incoming`] calls.

mod layout;
mod record;
mod replay;
mod sacks;
mod writer;

use self::record::{MAX_RECORD, measures_record_size};
use self::sacks::{Shared, Taken};
use self::writer::Req;
use crate::{Backlog, Incoming, MeasureBatch, Result, SackMeasures, StorageError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

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

impl Drop for LocalIncoming {
    fn drop(&mut self) {
        // Closing the channel stops the writer once it has handled what is queued.
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl LocalIncoming {
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
            oldest: s.oldest.take(),
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
        let mut oldest = HashMap::new();
        for (sack, slot) in self.shared.sacks.iter().enumerate() {
            let s = slot.lock();
            let taken = s.taken.as_ref().and_then(|t| t.oldest);
            if let Some(first) = s.oldest.into_iter().chain(taken).min() {
                oldest.insert(sack as u32, first);
            }
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
        backlog.oldest_pending = Some(oldest);
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
