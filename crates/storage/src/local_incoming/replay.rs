//! Opening the log: the directory is locked, the number of sacks read, and
//! the segments replayed in two passes (the commit positions from the newest
//! checkpoint on, then every measure past its sack's commit position) before
//! the writer thread starts in a new segment. Also the offline change of the
//! number of sacks, which needs the same replay to know nothing is pending.

use super::layout::{
    create_segment, list_segments, load_or_store_sacks, lock_dir, segment_name, store_sacks,
    sync_dir,
};
use super::record::{
    T_CHECKPOINT, T_COMMIT, T_MEASURES, decode_measures, scan_segment, u32_at, u64_at,
};
use super::sacks::{Dirty, Sack, Segments, Shared, Touched};
use super::writer::Writer;
use super::{LocalIncoming, LocalIncomingOptions, Pos};
use crate::{Result, StorageError, sack_of};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use tokio::sync::Notify;

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
        crate::check_sack_count(sacks)?;
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
