//! The writer thread: it drains every request queued meanwhile into one
//! group, appends the group to the current segment with one `write`, calls
//! `fdatasync` once, applies the group to the sacks and only then answers the
//! callers; it rotates segments, and stops accepting writes after a failed
//! `fdatasync`.

use super::Pos;
use super::layout::create_segment;
use super::record::{encode_commit, encode_measures};
use super::sacks::{Shared, Touched};
use crate::{MeasureBatch, Result, StorageError};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// The writer stops draining its queue once a group is this large.
const GROUP_BYTES: usize = 16 << 20;

/// A failed write or `fdatasync` of the log, answered to every request of its
/// group (and, once the log is unusable, to every later one): the I/O error is
/// shared, so each answer keeps it as its source.
#[derive(Clone)]
pub(super) struct LogFailure {
    what: String,
    source: Arc<std::io::Error>,
}

impl LogFailure {
    fn new(what: String, source: std::io::Error) -> Self {
        LogFailure {
            what,
            source: Arc::new(source),
        }
    }

    fn error(&self) -> StorageError {
        StorageError::IncomingLog {
            what: self.what.clone(),
            source: self.source.clone(),
        }
    }
}

pub(super) enum Req {
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

pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) rx: mpsc::Receiver<Req>,
    pub(super) file: File,
    pub(super) seq: u64,
    pub(super) offset: u64,
    /// Commit position of each sack, as logged.
    pub(super) commits: Vec<Pos>,
    pub(super) buf: Vec<u8>,
    pub(super) segment_bytes: u64,
    /// Set once the log can no longer be trusted: every later request fails with it.
    pub(super) failed: Option<LogFailure>,
    pub(super) touched: Touched,
}

impl Writer {
    pub(super) fn run(mut self) {
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
        if let Some(failure) = &self.failed {
            let failure = failure.clone();
            for req in group.drain(..) {
                respond(req, Err(failure.error()));
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
                    self.failed = Some(LogFailure::new(
                        format!("incoming log unusable after a failed write ({e}), then"),
                        e2,
                    ));
                }
                Err(LogFailure::new("incoming log write failed".into(), e))
            }
            Ok(()) => match self.file.sync_data() {
                Err(e) => {
                    let failure =
                        LogFailure::new("incoming log fdatasync failed, restart needed".into(), e);
                    tracing::error!("{}: {}", failure.what, failure.source);
                    self.failed = Some(failure.clone());
                    Err(failure)
                }
                Ok(()) => Ok(()),
            },
        };
        if let Err(failure) = result {
            for req in group.drain(..) {
                respond(req, Err(failure.error()));
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
