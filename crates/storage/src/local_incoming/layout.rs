//! The directory's layout: its `LOCK`, the number of sacks in `config.json`,
//! and the names of the log segments (`wal-<seq>.log`), created with their
//! checkpoint header. Everything here touches the file system, nothing the
//! sacks.

use super::Pos;
use super::record::{MAGIC, encode_checkpoint};
use crate::{Result, StorageError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

pub(super) fn segment_name(seq: u64) -> String {
    format!("wal-{seq:020}.log")
}

fn segment_seq(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(super) fn lock_dir(dir: &Path) -> Result<File> {
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

pub(super) fn load_or_store_sacks(dir: &Path, sacks: u32) -> Result<u32> {
    let path = dir.join("config.json");
    match std::fs::read(&path) {
        Ok(data) => {
            let v: serde_json::Value =
                serde_json::from_slice(&data).map_err(|source| StorageError::CorruptFile {
                    path: path.display().to_string(),
                    source,
                })?;
            let n = crate::stored_sack_count(&v).ok_or_else(|| {
                StorageError::Corrupt(format!("{}: no valid \"sacks\"", path.display()))
            })?;
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
            crate::check_sack_count(sacks)?;
            store_sacks(dir, sacks)?;
            Ok(sacks)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn store_sacks(dir: &Path, sacks: u32) -> Result<()> {
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

pub(super) fn list_segments(dir: &Path) -> Result<Vec<u64>> {
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

pub(super) fn create_segment(
    dir: &Path,
    seq: u64,
    commits: &[Pos],
    buf: &mut Vec<u8>,
) -> Result<File> {
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
