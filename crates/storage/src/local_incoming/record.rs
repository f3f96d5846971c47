//! The log's records: their encoding (length, CRC32, type byte, payload) and
//! the scan of a segment file that yields every valid record and stops at the
//! first torn or corrupt one. The bytes only; what the records mean to the
//! sacks is decided by the writer and the replay.

use super::Pos;
use crate::{MeasureBatch, Result};
use carbonara::Measure;
use std::path::Path;
use uuid::Uuid;

pub(super) const MAGIC: &[u8; 8] = b"GNCWAL01";
const REC_HEADER: usize = 8;
pub(super) const T_MEASURES: u8 = 1;
pub(super) const T_COMMIT: u8 = 2;
pub(super) const T_CHECKPOINT: u8 = 3;
/// Largest record accepted (one `add_measures` call).
pub(super) const MAX_RECORD: usize = 1 << 30;

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
pub(super) fn measures_record_size(batch: &MeasureBatch) -> Option<usize> {
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

pub(super) fn encode_measures(buf: &mut Vec<u8>, batch: &MeasureBatch) {
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

pub(super) fn encode_commit(buf: &mut Vec<u8>, sack: u32, pos: Pos) {
    let start = begin_record(buf, T_COMMIT);
    buf.extend_from_slice(&sack.to_le_bytes());
    buf.extend_from_slice(&pos.0.to_le_bytes());
    buf.extend_from_slice(&pos.1.to_le_bytes());
    seal_record(buf, start);
}

pub(super) fn encode_checkpoint(buf: &mut Vec<u8>, commits: &[Pos]) {
    let start = begin_record(buf, T_CHECKPOINT);
    buf.extend_from_slice(&(commits.len() as u32).to_le_bytes());
    for &(seq, off) in commits {
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&off.to_le_bytes());
    }
    seal_record(buf, start);
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Decode a measures payload (after its type byte).
pub(super) fn decode_measures(mut b: &[u8]) -> std::result::Result<MeasureBatch, String> {
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
pub(super) struct Scan {
    /// End of the last valid record (0 if even the magic is missing).
    pub(super) valid_end: u64,
    /// File length.
    pub(super) len: u64,
}

/// Call `f(kind, payload, position end)` for every valid record of a segment
/// (`report`: log where and why the valid records end early).
pub(super) fn scan_segment(
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
