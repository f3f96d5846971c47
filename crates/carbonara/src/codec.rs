//! The on-disk format of splits and raw buffers: compact and bit-exact.
//!
//! See `docs/split-format.md` for the byte layout and the measured sizes. In short:
//!
//! ```text
//! split = version(1) varint(n) [ts-section value-section] crc32-le(4)
//! raw   = version(1) varint(n) [ts-general  value-section] crc32-le(4)
//! raw   = version(2) varint(n) [ts-general  value-section] split-index crc32-le(4)
//! ```
//!
//! A version-2 raw buffer also carries its metric's [`SplitIndex`]: which
//! splits exist for each series. metricd rewrites the raw buffer whenever it
//! writes splits, so keeping the index there spares one listing per series
//! and per processing (a `LIST` request each on object stores).
//!
//! - split timestamps are slots (`(ts - key.start) / granularity`), stored as runs
//!   or as a bitmap, whichever is smaller (a full split costs 4 bytes);
//! - raw timestamps are deltas in units of their gcd, coded from the first
//!   delta or as delta-of-delta;
//! - values pick the smallest of: constant; *scaled* (every value is
//!   `f(p / (base·m))` plus a per-point correction in ulps, `f` = identity or
//!   square root: decimals, integers, sums, means and standard deviations of
//!   decimal inputs); Gorilla XOR; integer delta of the bit patterns; raw;
//! - integer streams go by blocks of 64, each bit-packed with patched
//!   exceptions or Rice-coded, whichever is smaller.
//!
//! Every f64 bit pattern and every timestamp round-trips exactly. Decoding
//! checks a CRC-32 first, never panics and never allocates more than the input
//! can justify. Encoding only searches (for decimals, bucket sizes...): the
//! decoder applies what is written.

use crate::aggregated::{AggregatedTimeSerie, POINTS_PER_SPLIT, SplitKey};
use crate::bound::BoundTimeSerie;
use crate::method::Method;
use crate::time::Timestamp;
use std::collections::BTreeMap;

mod bytes;
mod packing;
mod scaled;
mod timestamps;
mod values;

use self::bytes::{Reader, put_varint, unzigzag, zigzag};
use timestamps::{
    decode_split_timestamps, decode_timestamps_general, encode_split_timestamps,
    encode_timestamps_general,
};
use values::{decode_values, encode_values};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("corrupt data: {0}")]
    Corrupt(&'static str),
}

type Result<T, E = CodecError> = std::result::Result<T, E>;

#[inline]
fn corrupt<T>(what: &'static str) -> Result<T> {
    Err(CodecError::Corrupt(what))
}

const SPLIT_VERSION: u8 = 1;
const RAW_VERSION: u8 = 1;
const RAW_WITH_INDEX_VERSION: u8 = 2;
const CRC_LEN: usize = 4;
const SPLIT_POINTS: usize = POINTS_PER_SPLIT as usize;

// Split timestamp modes.
const TS_RUNS: u8 = 0;
const TS_BITMAP: u8 = 1;
const TS_EXPLICIT: u8 = 2;

// Orders of general timestamps.
const TS_BY_FIRST: u8 = 0;
const TS_BY_PREVIOUS: u8 = 1;

// Value modes.
const V_RAW: u8 = 0;
const V_CONST: u8 = 1;
const V_XOR: u8 = 2;
const V_SCALED: u8 = 3;
const V_INTDELTA: u8 = 4;

// Flags of the scaled mode.
const SF_ORDER_MASK: u8 = 0b11;
const SF_MULTIPLIERS: u8 = 1 << 2;
const SF_CORRECTIONS: u8 = 1 << 3;
const SF_SQRT: u8 = 1 << 4;
const SF_GCD: u8 = 1 << 5;
const SF_PGCD: u8 = 1 << 6;
const SF_MFIRST: u8 = 1 << 7;

/// Values per bit-packed block.
const BLOCK: usize = 64;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// Encode the points of one split (all inside `key`'s span).
pub fn encode_split(key: SplitKey, serie: &AggregatedTimeSerie) -> Vec<u8> {
    let n = serie.timestamps.len().min(serie.values.len());
    debug_assert_eq!(serie.timestamps.len(), serie.values.len());
    debug_assert!(
        n <= SPLIT_POINTS,
        "a split holds at most {SPLIT_POINTS} points"
    );
    let mut out = Vec::with_capacity(16 + n * 2);
    out.push(SPLIT_VERSION);
    put_varint(&mut out, n as u64);
    if n > 0 {
        encode_split_timestamps(key, &serie.timestamps[..n], &mut out);
        encode_values(&serie.values[..n], &mut out);
    }
    finish_crc(&mut out);
    out
}

/// Decode a split written by [`encode_split`] for the same `key`.
pub fn decode_split(key: SplitKey, bytes: &[u8]) -> Result<AggregatedTimeSerie, CodecError> {
    let body = check_envelope(bytes, SPLIT_VERSION)?;
    let mut r = Reader::new(body);
    let n = r.varint()?;
    if n > SPLIT_POINTS as u64 {
        return corrupt("split point count too large");
    }
    let n = n as usize;
    let mut timestamps = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    if n > 0 {
        decode_split_timestamps(key, &mut r, n, &mut timestamps)?;
        decode_values(&mut r, n, &mut values)?;
    }
    if r.remaining() != 0 {
        return corrupt("trailing bytes");
    }
    Ok(AggregatedTimeSerie {
        granularity: key.granularity,
        timestamps,
        values,
    })
}

/// Which splits exist for each series of one metric: `(method, granularity)`
/// to the sorted start timestamps of its splits.
///
/// Stored in the raw buffer by [`encode_raw_with_index`]. It is exact as long
/// as only the writer of the raw buffer writes or deletes the metric's splits
/// (metricd, under the sack lock). A series missing from the index is unknown
/// (the caller lists it), not empty.
pub type SplitIndex = BTreeMap<(Method, i64), Vec<Timestamp>>;

/// Encode a raw buffer (block_size and back_window are not stored: they come from the policy).
pub fn encode_raw(raw: &BoundTimeSerie) -> Vec<u8> {
    let mut out = raw_body(raw, RAW_VERSION);
    finish_crc(&mut out);
    out
}

/// Encode a raw buffer together with its metric's split index.
pub fn encode_raw_with_index(raw: &BoundTimeSerie, index: &SplitIndex) -> Vec<u8> {
    let mut out = raw_body(raw, RAW_WITH_INDEX_VERSION);
    put_varint(&mut out, index.len() as u64);
    for ((method, granularity), starts) in index {
        let name = method.to_string();
        put_varint(&mut out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        put_varint(&mut out, zigzag(*granularity));
        put_varint(&mut out, starts.len() as u64);
        let mut previous = 0i64;
        for (i, &start) in starts.iter().enumerate() {
            if i == 0 {
                put_varint(&mut out, zigzag(start));
            } else {
                // Sorted and distinct: every delta is positive.
                put_varint(&mut out, start.wrapping_sub(previous) as u64);
            }
            previous = start;
        }
    }
    finish_crc(&mut out);
    out
}

fn raw_body(raw: &BoundTimeSerie, version: u8) -> Vec<u8> {
    let n = raw.timestamps.len().min(raw.values.len());
    debug_assert_eq!(raw.timestamps.len(), raw.values.len());
    let mut out = Vec::with_capacity(16 + n * 4);
    out.push(version);
    put_varint(&mut out, n as u64);
    if n > 0 {
        encode_timestamps_general(&raw.timestamps[..n], &mut out);
        encode_values(&raw.values[..n], &mut out);
    }
    out
}

/// Decode a raw buffer written by [`encode_raw`] or [`encode_raw_with_index`]
/// (the index is checked, then dropped); `block_size` and `back_window` are
/// the policy's.
pub fn decode_raw(
    bytes: &[u8],
    block_size: i64,
    back_window: u64,
) -> Result<BoundTimeSerie, CodecError> {
    decode_raw_with_index(bytes, block_size, back_window).map(|(raw, _)| raw)
}

/// Decode a raw buffer and its split index (`None` for a buffer written
/// without one, by [`encode_raw`] or by an earlier version).
pub fn decode_raw_with_index(
    bytes: &[u8],
    block_size: i64,
    back_window: u64,
) -> Result<(BoundTimeSerie, Option<SplitIndex>), CodecError> {
    let (version, body) = envelope(bytes)?;
    if version != RAW_VERSION && version != RAW_WITH_INDEX_VERSION {
        return corrupt("unsupported format version");
    }
    let mut r = Reader::new(body);
    let n = r.varint()?;
    // Every 64 points cost at least one byte of timestamp blocks.
    if n > (r.remaining() as u64)
        .saturating_mul(BLOCK as u64)
        .saturating_add(2)
    {
        return corrupt("raw point count larger than the input allows");
    }
    let n = n as usize;
    let cap = n.min(r.remaining().saturating_mul(4) + 16);
    let mut timestamps = Vec::with_capacity(cap);
    let mut values = Vec::with_capacity(cap);
    if n > 0 {
        decode_timestamps_general(&mut r, n, &mut timestamps)?;
        decode_values(&mut r, n, &mut values)?;
    }
    let index = if version == RAW_WITH_INDEX_VERSION {
        Some(decode_split_index(&mut r)?)
    } else {
        None
    };
    if r.remaining() != 0 {
        return corrupt("trailing bytes");
    }
    let raw = BoundTimeSerie {
        timestamps,
        values,
        block_size,
        back_window,
    };
    Ok((raw, index))
}

fn decode_split_index(r: &mut Reader<'_>) -> Result<SplitIndex> {
    let series = r.varint()?;
    // Each series costs at least four bytes.
    if series > r.remaining() as u64 / 4 {
        return corrupt("split index larger than the input allows");
    }
    let mut index = SplitIndex::new();
    for _ in 0..series {
        let len = r.varint()?;
        if len > r.remaining() as u64 {
            return corrupt("truncated");
        }
        let name = std::str::from_utf8(r.bytes(len as usize)?)
            .ok()
            .and_then(Method::parse);
        let Some(method) = name else {
            return corrupt("unknown method in split index");
        };
        let granularity = unzigzag(r.varint()?);
        let count = r.varint()?;
        // Each start costs at least one byte.
        if count > r.remaining() as u64 {
            return corrupt("split index larger than the input allows");
        }
        let mut starts = Vec::with_capacity(count as usize);
        let mut previous = 0i64;
        for i in 0..count {
            let start = if i == 0 {
                unzigzag(r.varint()?)
            } else {
                let delta = r.varint()?;
                if delta == 0 {
                    return corrupt("split index not sorted");
                }
                match i64::try_from(i128::from(previous) + i128::from(delta)) {
                    Ok(start) => start,
                    Err(_) => return corrupt("split index overflow"),
                }
            };
            starts.push(start);
            previous = start;
        }
        if index.insert((method, granularity), starts).is_some() {
            return corrupt("series twice in split index");
        }
    }
    Ok(index)
}

// ---------------------------------------------------------------------------
// Envelope: version byte + body + CRC-32
// ---------------------------------------------------------------------------

fn finish_crc(out: &mut Vec<u8>) {
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Check version and checksum; return the body between them.
fn check_envelope(bytes: &[u8], version: u8) -> Result<&[u8]> {
    match envelope(bytes)? {
        (v, body) if v == version => Ok(body),
        _ => corrupt("unsupported format version"),
    }
}

/// Check the checksum; return the version byte and the body.
fn envelope(bytes: &[u8]) -> Result<(u8, &[u8])> {
    if bytes.len() < 1 + CRC_LEN {
        return corrupt("truncated");
    }
    let (data, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(data) != stored {
        return corrupt("checksum mismatch");
    }
    Ok((data[0], &data[1..]))
}
