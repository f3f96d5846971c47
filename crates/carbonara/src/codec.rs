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

// ---------------------------------------------------------------------------
// Byte-level helpers
// ---------------------------------------------------------------------------

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline]
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn u8(&mut self) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => corrupt("truncated"),
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return corrupt("varint overflow");
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return corrupt("varint overflow");
            }
        }
    }

    #[inline]
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return corrupt("truncated");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u64_le(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}

/// LSB-first bit writer appending to a byte vector.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter { out, acc: 0, n: 0 }
    }

    /// Append the low `w` bits of `v` (`w <= 64`, `v < 2^w`).
    #[inline]
    fn put(&mut self, v: u64, w: u32) {
        if w == 0 {
            return;
        }
        self.acc |= v << self.n;
        let total = self.n + w;
        if total >= 64 {
            self.out.extend_from_slice(&self.acc.to_le_bytes());
            self.acc = if self.n == 0 { 0 } else { v >> (64 - self.n) };
            self.n = total - 64;
        } else {
            self.n = total;
        }
    }

    fn finish(self) {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
    }
}

/// LSB-first bit reader; every read is bounds-checked.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            end: data.len().saturating_mul(8),
        }
    }

    #[inline]
    fn window(&self, byte: usize) -> u128 {
        if let Some(s) = self.data.get(byte..byte + 16) {
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            u128::from_le_bytes(a)
        } else {
            let mut a = [0u8; 16];
            let s = self.data.get(byte..).unwrap_or(&[]);
            a[..s.len()].copy_from_slice(s);
            u128::from_le_bytes(a)
        }
    }

    /// Read `w <= 64` bits.
    #[inline]
    fn get(&mut self, w: u32) -> Result<u64> {
        if w == 0 {
            return Ok(0);
        }
        if self.pos + w as usize > self.end {
            return corrupt("truncated bit stream");
        }
        let word = self.window(self.pos >> 3) >> (self.pos & 7);
        self.pos += w as usize;
        Ok(word as u64 & mask(w))
    }

    /// Bytes consumed so far (partial last byte included).
    fn consumed(&self) -> usize {
        self.pos.div_ceil(8)
    }
}

#[inline]
fn mask(w: u32) -> u64 {
    if w >= 64 { u64::MAX } else { (1u64 << w) - 1 }
}

// ---------------------------------------------------------------------------
// Packing of u64 streams: blocks of 64 values, each either patched
// bit-packing ("PFOR") or Rice coding, whichever is smaller.
//
// PFOR block = header(u8: width 0..=64 | 0x80 if exceptions) packed(ceil(len·width/8) bytes)
//              [varint(count) count × (u8 index, varint(value >> width))]
// Rice block = header(u8: 65 + k) varint(byte length) bits
// ---------------------------------------------------------------------------

fn pfor_encode(vals: &[u64], out: &mut Vec<u8>) {
    for chunk in vals.chunks(BLOCK) {
        pfor_encode_block(chunk, out);
    }
}

fn pfor_encode_block(chunk: &[u64], out: &mut Vec<u8>) {
    let len = chunk.len();
    let mut hist = [0u32; 65];
    for &v in chunk {
        hist[(64 - v.leading_zeros()) as usize] += 1;
    }
    let maxbl = (0..=64).rev().find(|&b| hist[b] != 0).unwrap_or(0);
    // Cost in bits of width w: len·w + exceptions.
    let mut best_w = maxbl;
    let mut best_cost = len * maxbl;
    let mut exc = 0usize;
    for w in (0..maxbl).rev() {
        exc += hist[w + 1] as usize;
        // Each exception costs at least 16 bits: past half the block a
        // narrower width never pays.
        if exc > len / 2 {
            break;
        }
        let mut cost = len * w + 8 * varint_len(exc as u64);
        for (b, &h) in hist.iter().enumerate().take(maxbl + 1).skip(w + 1) {
            cost += h as usize * (8 + 8 * (b - w).div_ceil(7));
        }
        if cost < best_cost {
            best_cost = cost;
            best_w = w;
        }
    }
    // Rice coding wins on peaked distributions (most residuals small, a tail).
    let pfor_bytes = 1 + best_cost.div_ceil(8);
    let sum: u128 = chunk.iter().map(|&v| u128::from(v)).sum();
    let mean = (sum / len as u128) as u64;
    let kb = (64 - mean.leading_zeros()) as usize;
    let mut rice: Option<(u32, usize)> = None;
    for k in kb.saturating_sub(2)..=(kb + 1).min(RICE_MAX_K as usize) {
        let k = k as u32;
        let bits: usize = chunk.iter().map(|&v| rice_bits(v, k)).sum();
        let nbytes = bits.div_ceil(8);
        let total = 1 + varint_len(nbytes as u64) + nbytes;
        if total < rice.map_or(pfor_bytes, |(_, t)| t) {
            rice = Some((k, total));
        }
    }
    if let Some((k, _)) = rice {
        let bits: usize = chunk.iter().map(|&v| rice_bits(v, k)).sum();
        out.push(RICE_HEADER + k as u8);
        put_varint(out, bits.div_ceil(8) as u64);
        let mut bw = BitWriter::new(out);
        for &v in chunk {
            let q = v >> k;
            if q < RICE_ESCAPE {
                bw.put(mask(q as u32), q as u32 + 1);
                bw.put(v & mask(k), k);
            } else {
                bw.put(mask(RICE_ESCAPE as u32), RICE_ESCAPE as u32);
                bw.put(v, 64);
            }
        }
        bw.finish();
        return;
    }
    let w = best_w as u32;
    let has_exc = chunk.iter().any(|&v| (64 - v.leading_zeros()) > w);
    out.push(w as u8 | if has_exc { 0x80 } else { 0 });
    if w > 0 {
        let m = mask(w);
        let mut bw = BitWriter::new(out);
        for &v in chunk {
            bw.put(v & m, w);
        }
        bw.finish();
    }
    if has_exc {
        let count = chunk
            .iter()
            .filter(|&&v| (64 - v.leading_zeros()) > w)
            .count();
        put_varint(out, count as u64);
        for (i, &v) in chunk.iter().enumerate() {
            if (64 - v.leading_zeros()) > w {
                out.push(i as u8);
                put_varint(out, v >> w);
            }
        }
    }
}

/// Rice blocks: header `RICE_HEADER + k`, varint byte length, then per value
/// `q = v >> k` ones, a zero and the `k` low bits; `q >= RICE_ESCAPE` is written
/// as `RICE_ESCAPE` ones and the 64-bit value.
const RICE_HEADER: u8 = 65;
const RICE_MAX_K: u32 = 62;
const RICE_ESCAPE: u64 = 40;

#[inline]
fn rice_bits(v: u64, k: u32) -> usize {
    let q = v >> k;
    if q < RICE_ESCAPE {
        q as usize + 1 + k as usize
    } else {
        RICE_ESCAPE as usize + 64
    }
}

/// Largest Rice block: 64 escaped values.
const RICE_MAX_BYTES: usize = BLOCK * (RICE_ESCAPE as usize + 64) / 8;

fn rice_decode_block(r: &mut Reader<'_>, k: u32, len: usize, out: &mut Vec<u64>) -> Result<()> {
    let nbytes = r.varint()?;
    if nbytes > RICE_MAX_BYTES as u64 {
        return corrupt("rice block too long");
    }
    let data = r.bytes(nbytes as usize)?;
    // Zero-padded copy: every 8-byte load below stays in bounds.
    let mut buf = [0u8; RICE_MAX_BYTES + 24];
    buf[..data.len()].copy_from_slice(data);
    let end = data.len() * 8;
    let km = mask(k);
    let mut pos = 0usize;
    for _ in 0..len {
        if pos > end {
            return corrupt("truncated rice block");
        }
        let load = |pos: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&buf[pos >> 3..(pos >> 3) + 8]);
            u64::from_le_bytes(a) >> (pos & 7)
        };
        let w = load(pos);
        let q = (!w).trailing_zeros();
        let v = if u64::from(q) >= RICE_ESCAPE {
            pos += RICE_ESCAPE as usize;
            let lo = load(pos) & mask(32);
            let hi = load(pos + 32) & mask(32);
            pos += 64;
            lo | hi << 32
        } else if q + 1 + k <= 56 {
            pos += q as usize + 1 + k as usize;
            (u64::from(q) << k) | ((w >> (q + 1)) & km)
        } else {
            pos += q as usize + 1;
            let low = if k > 32 {
                let lo = load(pos) & mask(32);
                lo | (load(pos + 32) & mask(k - 32)) << 32
            } else {
                load(pos) & km
            };
            pos += k as usize;
            let hi = u128::from(q) << k;
            u64::try_from(hi | u128::from(low))
                .map_err(|_| CodecError::Corrupt("rice value overflow"))?
        };
        out.push(v);
    }
    if pos > end || pos.div_ceil(8) != data.len() {
        return corrupt("rice block length mismatch");
    }
    Ok(())
}

/// Decode `n` values, appending to `out`.
fn pfor_decode(r: &mut Reader<'_>, n: usize, out: &mut Vec<u64>) -> Result<()> {
    if n.div_ceil(BLOCK) > r.remaining() {
        return corrupt("truncated packed stream");
    }
    out.reserve(n);
    let mut left = n;
    while left > 0 {
        let len = left.min(BLOCK);
        pfor_decode_block(r, len, out)?;
        left -= len;
    }
    Ok(())
}

fn pfor_decode_block(r: &mut Reader<'_>, len: usize, out: &mut Vec<u64>) -> Result<()> {
    let header = r.u8()?;
    if (RICE_HEADER..=RICE_HEADER + RICE_MAX_K as u8).contains(&header) {
        return rice_decode_block(r, u32::from(header - RICE_HEADER), len, out);
    }
    let w = u32::from(header & 0x7f);
    if w > 64 {
        return corrupt("bad packed width");
    }
    let base = out.len();
    let data = r.bytes((len * w as usize).div_ceil(8))?;
    unpack(data, w, len, out);
    if header & 0x80 != 0 {
        if w == 64 {
            return corrupt("exception in a 64-bit block");
        }
        let count = r.varint()?;
        if count == 0 || count > len as u64 {
            return corrupt("bad exception count");
        }
        for _ in 0..count {
            let idx = r.u8()? as usize;
            let hi = r.varint()?;
            if idx >= len || hi == 0 || (w > 0 && (hi >> (64 - w)) != 0) {
                return corrupt("bad exception");
            }
            out[base + idx] |= hi << w;
        }
    }
    Ok(())
}

/// Unpack `len <= 64` values of `w` bits from `data` (exactly `ceil(len·w/8)` bytes).
#[inline]
fn unpack(data: &[u8], w: u32, len: usize, out: &mut Vec<u64>) {
    if w == 0 {
        out.resize(out.len() + len, 0);
        return;
    }
    let mut buf = [0u8; BLOCK * 8 + 16];
    buf[..data.len()].copy_from_slice(data);
    let m = mask(w);
    let w = w as usize;
    if w <= 56 {
        for i in 0..len {
            let bit = i * w;
            let byte = bit >> 3;
            let mut a = [0u8; 8];
            a.copy_from_slice(&buf[byte..byte + 8]);
            out.push((u64::from_le_bytes(a) >> (bit & 7)) & m);
        }
    } else {
        for i in 0..len {
            let bit = i * w;
            let byte = bit >> 3;
            let mut a = [0u8; 16];
            a.copy_from_slice(&buf[byte..byte + 16]);
            out.push((u128::from_le_bytes(a) >> (bit & 7)) as u64 & m);
        }
    }
}

// ---------------------------------------------------------------------------
// Split timestamps: slots as runs or bitmap, or explicit when out of contract
// ---------------------------------------------------------------------------

fn encode_split_timestamps(key: SplitKey, ts: &[Timestamp], out: &mut Vec<u8>) {
    let g = key.granularity;
    let mut slots: Vec<u32> = Vec::with_capacity(ts.len());
    let mut ok = g > 0 && ts.len() <= SPLIT_POINTS;
    if ok {
        for &t in ts {
            let Some(off) = t.checked_sub(key.start) else {
                ok = false;
                break;
            };
            if off < 0 || off % g != 0 || off / g >= POINTS_PER_SPLIT {
                ok = false;
                break;
            }
            let s = (off / g) as u32;
            if slots.last().is_some_and(|&p| p >= s) {
                ok = false;
                break;
            }
            slots.push(s);
        }
    }
    if !ok {
        out.push(TS_EXPLICIT);
        encode_timestamps_general(ts, out);
        return;
    }
    // Runs of consecutive slots.
    let mut runs_size = 0usize;
    let mut nruns = 0u64;
    let mut prev_end = 0u32;
    let mut i = 0;
    while i < slots.len() {
        let start = slots[i];
        let mut j = i + 1;
        while j < slots.len() && slots[j] == slots[j - 1] + 1 {
            j += 1;
        }
        runs_size += varint_len(u64::from(start - prev_end)) + varint_len((j - i - 1) as u64);
        nruns += 1;
        prev_end = slots[j - 1] + 1;
        i = j;
    }
    runs_size += varint_len(nruns);
    let first = slots[0];
    let span = slots[slots.len() - 1] - first + 1;
    let bitmap_size =
        varint_len(u64::from(first)) + varint_len(u64::from(span)) + (span as usize).div_ceil(8);
    if runs_size <= bitmap_size {
        out.push(TS_RUNS);
        put_varint(out, nruns);
        let mut prev_end = 0u32;
        let mut i = 0;
        while i < slots.len() {
            let start = slots[i];
            let mut j = i + 1;
            while j < slots.len() && slots[j] == slots[j - 1] + 1 {
                j += 1;
            }
            put_varint(out, u64::from(start - prev_end));
            put_varint(out, (j - i - 1) as u64);
            prev_end = slots[j - 1] + 1;
            i = j;
        }
    } else {
        out.push(TS_BITMAP);
        put_varint(out, u64::from(first));
        put_varint(out, u64::from(span));
        let base = out.len();
        out.resize(base + (span as usize).div_ceil(8), 0);
        for &s in &slots {
            let b = (s - first) as usize;
            out[base + b / 8] |= 1 << (b % 8);
        }
    }
}

fn decode_split_timestamps(
    key: SplitKey,
    r: &mut Reader<'_>,
    n: usize,
    out: &mut Vec<Timestamp>,
) -> Result<()> {
    let g = key.granularity;
    let slot_ts = |s: u64| key.start.wrapping_add((s as i64).wrapping_mul(g));
    match r.u8()? {
        TS_RUNS => {
            let nruns = r.varint()?;
            if nruns == 0 || nruns > n as u64 {
                return corrupt("bad run count");
            }
            let mut pos = 0u64;
            for _ in 0..nruns {
                let gap = r.varint()?;
                let len = r.varint()?.saturating_add(1);
                let start = pos.saturating_add(gap);
                let end = start.saturating_add(len);
                if end > SPLIT_POINTS as u64 || out.len() as u64 + len > n as u64 {
                    return corrupt("run out of split");
                }
                out.extend((start..end).map(slot_ts));
                pos = end;
            }
        }
        TS_BITMAP => {
            let first = r.varint()?;
            let span = r.varint()?;
            if span == 0 || first.saturating_add(span) > SPLIT_POINTS as u64 {
                return corrupt("bitmap out of split");
            }
            let bytes = r.bytes((span as usize).div_ceil(8))?;
            for (bi, &byte) in bytes.iter().enumerate() {
                let mut b = byte;
                while b != 0 {
                    let bit = b.trailing_zeros() as u64;
                    b &= b - 1;
                    let idx = bi as u64 * 8 + bit;
                    if idx >= span || out.len() >= n {
                        return corrupt("bitmap bits out of span");
                    }
                    out.push(slot_ts(first + idx));
                }
            }
        }
        TS_EXPLICIT => return decode_timestamps_general(r, n, out),
        _ => return corrupt("unknown timestamp mode"),
    }
    if out.len() != n {
        return corrupt("timestamp count mismatch");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// General timestamps (raw buffers): t0, unit = gcd of deltas, first delta,
// then delta-of-delta in units, zigzag, bit-packed.
// ---------------------------------------------------------------------------

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

fn encode_timestamps_general(ts: &[Timestamp], out: &mut Vec<u8>) {
    put_varint(out, zigzag(ts[0]));
    if ts.len() < 2 {
        return;
    }
    let mut unit = 0u64;
    for w in ts.windows(2) {
        unit = gcd(unit, (w[1] as u64).wrapping_sub(w[0] as u64));
        if unit == 1 {
            break;
        }
    }
    let unit = unit.max(1);
    put_varint(out, unit);
    let k1 = (ts[1] as u64).wrapping_sub(ts[0] as u64) / unit;
    put_varint(out, k1);
    if ts.len() < 3 {
        return;
    }
    // Deltas relative to the first one (jittered clocks), or delta of deltas
    // (drifting ones): whichever packs smaller.
    let mut by_first = Vec::with_capacity(ts.len() - 2);
    let mut by_prev = Vec::with_capacity(ts.len() - 2);
    let mut prev = k1;
    for w in ts[1..].windows(2) {
        let k = (w[1] as u64).wrapping_sub(w[0] as u64) / unit;
        by_first.push(zigzag(k.wrapping_sub(k1) as i64));
        by_prev.push(zigzag(k.wrapping_sub(prev) as i64));
        prev = k;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    pfor_encode(&by_first, &mut a);
    pfor_encode(&by_prev, &mut b);
    if a.len() <= b.len() {
        out.push(TS_BY_FIRST);
        out.extend_from_slice(&a);
    } else {
        out.push(TS_BY_PREVIOUS);
        out.extend_from_slice(&b);
    }
}

fn decode_timestamps_general(r: &mut Reader<'_>, n: usize, out: &mut Vec<Timestamp>) -> Result<()> {
    let mut t = unzigzag(r.varint()?);
    out.push(t);
    if n < 2 {
        return Ok(());
    }
    let unit = r.varint()?;
    if unit == 0 {
        return corrupt("zero timestamp unit");
    }
    let mut k = r.varint()?;
    let step = k.wrapping_mul(unit) as i64;
    let next = t.wrapping_add(step);
    if next <= t {
        return corrupt("timestamps not increasing");
    }
    t = next;
    out.push(t);
    if n < 3 {
        return Ok(());
    }
    let by_first = match r.u8()? {
        TS_BY_FIRST => true,
        TS_BY_PREVIOUS => false,
        _ => return corrupt("unknown timestamp order"),
    };
    let k1 = k;
    let mut res = Vec::new();
    pfor_decode(r, n - 2, &mut res)?;
    for &d in &res {
        k = if by_first { k1 } else { k }.wrapping_add(unzigzag(d) as u64);
        let next = t.wrapping_add(k.wrapping_mul(unit) as i64);
        if next <= t {
            return corrupt("timestamps not increasing");
        }
        t = next;
        out.push(t);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
/// Largest decimal exponent tried.
const MAX_DECIMALS: usize = 12;
/// |p| beyond this is not exactly representable as f64.
const EXACT_INT: f64 = 9_007_199_254_740_992.0; // 2^53
/// Corrections larger than this (in ulps) mark a point as an outlier of the scaled model.
const MAX_CORRECTION: i64 = 1 << 20;
/// Tolerance (ulps) when checking a known multiplier.
const FIT_ULPS: i64 = 1 << 12;
/// Tolerance (ulps) when discovering a new multiplier.
const DISCOVER_ULPS: i64 = 64;
/// Largest multiplier tried by the rational search.
const MAX_MULTIPLIER: u64 = 1 << 24;
/// Largest bucket size tried when looking for the structure of a sample
/// standard deviation.
const MAX_STD_COUNT: u64 = 4096;
/// Decimal digits of the inputs tried for standard deviations.
const MAX_STD_DECIMALS: u32 = 3;

fn encode_values(values: &[f64], out: &mut Vec<u8>) {
    let n = values.len();
    let first = values[0].to_bits();
    if values.iter().all(|v| v.to_bits() == first) {
        out.push(V_CONST);
        out.extend_from_slice(&first.to_le_bytes());
        return;
    }
    let mut best: Option<Vec<u8>> = None;
    let mut best_len = 1 + 8 * n; // raw
    let consider = |buf: Vec<u8>, best: &mut Option<Vec<u8>>, best_len: &mut usize| {
        if buf.len() < *best_len {
            *best_len = buf.len();
            *best = Some(buf);
        }
    };
    let mut s = Scratch::default();
    let mut decimal_exact = false;
    if let Some((d, exact)) = decimal_exponent(values) {
        let mut buf = Vec::with_capacity(n * 2 + 16);
        encode_scaled(values, POW10[d] as u64, None, false, &mut s, &mut buf);
        consider(buf, &mut best, &mut best_len);
        decimal_exact = exact;
    }
    if !decimal_exact {
        let mut ks = Vec::new();
        if rational_multipliers(values, &mut ks) {
            let mut buf = Vec::with_capacity(n * 3 + 16);
            encode_scaled(values, 1, Some(&ks), false, &mut s, &mut buf);
            consider(buf, &mut best, &mut best_len);
        }
        let std_decimals = if best_len > n * 3 && n >= 8 {
            std_counts(values, &mut ks)
        } else {
            None
        };
        if let Some(d) = std_decimals {
            let mut buf = Vec::with_capacity(n * 6 + 16);
            encode_scaled(values, 100u64.pow(d), Some(&ks), true, &mut s, &mut buf);
            consider(buf, &mut best, &mut best_len);
        }
        if best_len > n * 3 {
            let mut buf = Vec::with_capacity(n * 8 + 16);
            encode_xor(values, &mut buf);
            consider(buf, &mut best, &mut best_len);
            let mut buf = Vec::with_capacity(n * 8 + 16);
            encode_intdelta(values, &mut s, &mut buf);
            consider(buf, &mut best, &mut best_len);
        }
    }
    match best {
        Some(buf) => out.extend_from_slice(&buf),
        None => {
            out.push(V_RAW);
            for v in values {
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
    }
}

fn decode_values(r: &mut Reader<'_>, n: usize, out: &mut Vec<f64>) -> Result<()> {
    match r.u8()? {
        V_RAW => {
            let data = r.bytes(
                n.checked_mul(8)
                    .ok_or(CodecError::Corrupt("too many values"))?,
            )?;
            out.extend(data.chunks_exact(8).map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_bits(u64::from_le_bytes(a))
            }));
            Ok(())
        }
        V_CONST => {
            let v = f64::from_bits(r.u64_le()?);
            out.resize(out.len() + n, v);
            Ok(())
        }
        V_XOR => decode_xor(r, n, out),
        V_SCALED => decode_scaled(r, n, out),
        V_INTDELTA => decode_intdelta(r, n, out),
        _ => corrupt("unknown value mode"),
    }
}

#[derive(Default)]
struct Scratch {
    p: Vec<i64>,
    e: Vec<i64>,
    m: Vec<u64>,
    u: Vec<u64>,
    u2: Vec<u64>,
    best: Vec<u8>,
    tmp: Vec<u8>,
}

/// Reconstruction of the scaled model: `p / q`, or its square root.
#[inline]
fn scaled_value(p: i64, q: u64, sqrt: bool) -> f64 {
    let r = p as f64 / q as f64;
    if sqrt { r.sqrt() } else { r }
}

/// The effective multiplier of a stored one: itself, or `k·(k−1)` for
/// standard deviations (`k` is then the bucket size).
#[inline]
fn effective_multiplier(k: u64, sqrt: bool) -> u64 {
    if sqrt {
        k.wrapping_mul(k.wrapping_sub(1))
    } else {
        k
    }
}

/// The integer prediction of `p` from `p_prev` when the multiplier changes.
#[inline]
fn rescale(p_prev: i64, m_prev: u64, m: u64) -> i64 {
    if m_prev == m {
        p_prev
    } else {
        (i128::from(p_prev) * i128::from(m) / i128::from(m_prev)) as i64
    }
}

/// Prediction of `p[i]` (`i >= 1`): 0 = the first value, 1 = the previous one
/// (rescaled when the multiplier changes), 2 = linear extrapolation.
#[inline]
fn predict(order: u8, i: usize, p: &[i64], m: Option<&[u64]>) -> i64 {
    match (order, m) {
        (0, _) => p[0],
        (2, None) if i >= 2 => p[i - 1].wrapping_mul(2).wrapping_sub(p[i - 2]),
        (2, Some(m)) if i >= 2 && m[i] == m[i - 1] && m[i - 1] == m[i - 2] => {
            p[i - 1].wrapping_mul(2).wrapping_sub(p[i - 2])
        }
        (_, None) => p[i - 1],
        (_, Some(m)) => rescale(p[i - 1], m[i - 1], m[i]),
    }
}

/// Smallest decimal exponent `d` such that (most) values are `p / 10^d` exactly.
/// Returns `(d, all_exact)`, `None` when the values do not look decimal.
fn decimal_exponent(values: &[f64]) -> Option<(usize, bool)> {
    let n = values.len();
    let mut d = 0usize;
    let mut exact = 0usize;
    let mut misses = 0usize;
    let is_exact = |v: f64, d: usize| {
        let s = round(v * POW10[d]);
        s.abs() < EXACT_INT && ((s as i64) as f64 / POW10[d]).to_bits() == v.to_bits()
    };
    for (i, &v) in values.iter().enumerate() {
        if is_exact(v, d) {
            exact += 1;
        } else if let Some(nd) = (d + 1..=MAX_DECIMALS).find(|&nd| is_exact(v, nd)) {
            d = nd;
            exact += 1;
        } else {
            misses += 1;
            if misses > n / 2 + 4 || (i >= 32 && exact < 8) {
                return None;
            }
        }
    }
    if exact == 0 {
        return None;
    }
    Some((d, misses == 0))
}

/// Round to an integer (ties to even below 2^51, without a libm call). Only the
/// encoder rounds: any nearby integer is correct, the decoder just uses it.
#[inline]
fn round(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    if x.abs() < 2_251_799_813_685_248.0 {
        (x + MAGIC) - MAGIC
    } else {
        x.round()
    }
}

/// Correction (in ulps, as a wrapping difference of bit patterns) from `r` to `v`.
#[inline]
fn correction(v: f64, r: f64) -> i64 {
    v.to_bits().wrapping_sub(r.to_bits()) as i64
}

/// Does `v` round-trip as `p / m` within `tol` ulps?
#[inline]
fn fits(v: f64, m: u64, tol: i64) -> bool {
    let x = v * m as f64;
    let s = round(x);
    // `v·m` must be an integer to well within the spacing of the candidates.
    if !(s.abs() < EXACT_INT && (x - s).abs() <= 1.0 / 1024.0) {
        return false;
    }
    correction(v, scaled_value(s as i64, m, false)).unsigned_abs() <= tol as u64
}

/// Exact continued-fraction expansion of `|v|` (a dyadic rational): the first
/// convergent denominator `k <= MAX_MULTIPLIER` such that `v·k` is nearly an integer.
fn reduced_denominator(v: f64) -> Option<u64> {
    if !v.is_finite() || v == 0.0 {
        return None;
    }
    let bits = v.abs().to_bits();
    let biased = (bits >> 52) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    let (mut mant, exp) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), biased - 1075)
    };
    if exp >= 0 {
        return fits(v, 1, DISCOVER_ULPS).then_some(1);
    }
    let mut shift = (-exp) as u32;
    if shift > 120 {
        let drop = shift - 120;
        if drop >= 53 {
            return None;
        }
        mant >>= drop;
        shift = 120;
    }
    let (mut num, mut den) = (u128::from(mant), 1u128 << shift);
    let (mut k1, mut k2) = (0u128, 1u128);
    while den != 0 {
        let a = num / den;
        let k = a.checked_mul(k1).and_then(|x| x.checked_add(k2))?;
        if k > u128::from(MAX_MULTIPLIER) {
            return None;
        }
        if fits(v, k as u64, DISCOVER_ULPS) {
            return Some(k as u64);
        }
        (k2, k1) = (k1, k);
        (num, den) = (den, num - a * den);
    }
    None
}

/// Per-point multipliers `m` such that `v·m` is nearly an integer: means of
/// decimals (`m = count·10^d`). The multiplier is kept close to the previous
/// one (a multiple of the reduced denominator), so that it follows the bucket
/// size and the numerators stay in the same units. Returns false when the
/// values are not rational enough.
fn rational_multipliers(values: &[f64], out: &mut Vec<u64>) -> bool {
    let n = values.len();
    out.clear();
    let mut prev = values
        .iter()
        .take(8)
        .filter_map(|&v| reduced_denominator(v))
        .max()
        .unwrap_or(0);
    let mut misses = 0usize;
    for &v in values {
        if prev != 0 && fits(v, prev, FIT_ULPS) {
            out.push(prev);
            continue;
        }
        match reduced_denominator(v) {
            Some(q) => {
                let t = ((prev + q / 2) / q).max(1);
                let m = q
                    .checked_mul(t)
                    .filter(|&m| m <= MAX_MULTIPLIER && fits(v, m, FIT_ULPS))
                    .unwrap_or(q);
                out.push(m);
                prev = m;
            }
            None => {
                misses += 1;
                if misses > n / 4 + 4 || (misses >= 8 && misses * 2 > out.len()) {
                    return false;
                }
                out.push(prev.max(1));
            }
        }
    }
    true
}

/// Does `v` round-trip as `sqrt(p / m)` within `tol` ulps?
#[inline]
fn sqrt_fits(v: f64, m: u64, tol: i64) -> bool {
    let x = v * v * m as f64;
    let s = round(x);
    if !(s.abs() < EXACT_INT && (x - s).abs() <= 0.25) {
        return false;
    }
    correction(v, scaled_value(s as i64, m, true)).unsigned_abs() <= tol as u64
}

/// The multiplier of a sample variance of `n` points with `d` decimals:
/// `n·(n−1)·10^(2d)`, so that `variance·m` is an integer.
#[inline]
fn std_multiplier(n: u64, d: u32) -> u64 {
    n * (n - 1) * 100u64.pow(d)
}

/// Bucket sizes `n` (into `out`) and decimals `d` such that `v² · n(n−1)·10^(2d)`
/// is nearly an integer and its square root reproduces `v` within a few ulps:
/// sample standard deviations of decimal inputs. `None` when the values do not
/// have that structure.
fn std_counts(values: &[f64], out: &mut Vec<u64>) -> Option<u32> {
    let len = values.len();
    out.clear();
    // Small splits (rewritten on every batch) get a small search budget.
    let mut budget = 16 * len + 8192;
    let mut cur: Option<(u64, u32)> = None;
    let mut misses = 0usize;
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() || v <= 0.0 {
            out.push(cur.map_or(2, |c| c.0));
            if v != 0.0 {
                misses += 1;
            }
            continue;
        }
        let mut found = None;
        if let Some((n, d)) = cur {
            // The bucket size usually stays the same or moves a little.
            for k in [0i64, -1, 1, -2, 2, -3, 3, -4, 4, -6, 6, -8, 8] {
                let nn = n as i64 + k;
                if nn >= 2
                    && nn as u64 <= MAX_STD_COUNT
                    && sqrt_fits(v, std_multiplier(nn as u64, d), FIT_ULPS)
                {
                    found = Some((nn as u64, d));
                    break;
                }
            }
        }
        if found.is_none() && budget > 0 {
            let x = v * v;
            let next: &[f64] = values.get(i + 1..(i + 3).min(len)).unwrap_or(&[]);
            // Candidates in increasing multiplier order (a 4-way merge over the
            // decimal counts): the first confirmed one is the smallest, larger
            // ones are often its multiples.
            let (dlo, dhi) = match cur {
                Some((_, d)) => (d, d),
                None => (0, MAX_STD_DECIMALS),
            };
            let mut next_n = [2u64; MAX_STD_DECIMALS as usize + 1];
            while budget > 0 {
                let mut pick: Option<(u64, u32)> = None;
                for d in dlo..=dhi {
                    let n = next_n[d as usize];
                    if n <= MAX_STD_COUNT && pick.is_none_or(|(pm, _)| std_multiplier(n, d) < pm) {
                        pick = Some((std_multiplier(n, d), d));
                    }
                }
                let Some((m, d)) = pick else { break };
                let n = next_n[d as usize];
                next_n[d as usize] += 1;
                budget -= 1;
                let xm = x * m as f64;
                // Also false for NaN.
                if xm.partial_cmp(&EXACT_INT) != Some(std::cmp::Ordering::Less) {
                    break;
                }
                let tol = xm * (n as f64 + 8.0) * f64::EPSILON;
                if (xm - round(xm)).abs() > tol.max(1e-9) || !sqrt_fits(v, m, DISCOVER_ULPS) {
                    continue;
                }
                // Confirm on the next points (whose bucket size may differ a little).
                let confirmed = next.iter().all(|&nv| {
                    (n.saturating_sub(3).max(2)..=n + 3)
                        .any(|nn| sqrt_fits(nv, std_multiplier(nn, d), FIT_ULPS))
                });
                if confirmed {
                    found = Some((n, d));
                    break;
                }
            }
        }
        match found {
            Some(f) => {
                cur = Some(f);
                out.push(f.0);
            }
            None => {
                misses += 1;
                if misses > len / 4 + 4 {
                    return None;
                }
                out.push(cur.map_or(2, |c| c.0));
            }
        }
    }
    let (first, d) = cur?;
    // Points before the first discovery take its bucket size.
    let head = values
        .iter()
        .position(|&v| v.is_finite() && v > 0.0)
        .unwrap_or(0);
    let found_at = out
        .iter()
        .zip(values)
        .position(|(&k, &v)| k == first && v > 0.0)
        .unwrap_or(head);
    for k in &mut out[..found_at] {
        *k = first;
    }
    Some(d)
}

/// Scaled mode: `v = f(p·pg / (base·m)) + e ulps`, `f` = identity or square root,
/// `m` = the stored multiplier `k` (or `k·(k−1)` for square roots).
///
/// ```text
/// flags(u8) varint(base) [varint(k0) packed(k deltas)] [varint(pg)] varint(zigzag p0)
/// [varint(g)] packed(residuals / g) [packed(corrections)]
/// ```
fn encode_scaled(
    values: &[f64],
    base: u64,
    ks: Option<&[u64]>,
    sqrt: bool,
    s: &mut Scratch,
    out: &mut Vec<u8>,
) {
    let n = values.len();
    // With a constant multiplier, fold it into the base.
    let (base, ks) = match ks {
        Some(k) if k.iter().all(|&x| x == k[0]) => {
            (base.wrapping_mul(effective_multiplier(k[0], sqrt)), None)
        }
        other => (base, other),
    };
    s.m.clear();
    if let Some(k) = ks {
        s.m.extend(k.iter().map(|&k| effective_multiplier(k, sqrt)));
    }
    let mults: Option<&[u64]> = if ks.is_some() { Some(&s.m) } else { None };
    let q_of = |i: usize| match mults {
        Some(m) => base.wrapping_mul(m[i]),
        None => base,
    };
    s.p.clear();
    s.e.clear();
    // Pass 1: the numerators of the points the model fits; outliers marked.
    const OUTLIER: i64 = i64::MIN;
    let mut pg = 0u64;
    let mut outliers = false;
    for (i, &v) in values.iter().enumerate() {
        let q = q_of(i);
        let t = if sqrt { v * v } else { v };
        let sc = round(t * q as f64);
        let mut p = OUTLIER;
        let mut e = 0;
        if sc.abs() < EXACT_INT {
            let e0 = correction(v, scaled_value(sc as i64, q, sqrt));
            if e0.unsigned_abs() <= MAX_CORRECTION as u64 {
                p = sc as i64;
                e = e0;
                if pg != 1 {
                    pg = gcd(pg, p.unsigned_abs());
                }
            }
        }
        outliers |= p == OUTLIER;
        s.p.push(p);
        s.e.push(e);
    }
    // Common factor of the numerators (memory sizes in KiB...).
    let pg = if pg <= 1 { 1 } else { pg as i64 };
    // Pass 2: outliers get the predicted numerator (residual 0) and a full correction.
    if outliers {
        for (i, &v) in values.iter().enumerate() {
            if s.p[i] == OUTLIER {
                let pred = if i == 0 {
                    0
                } else {
                    predict(1, i, &s.p, mults)
                };
                let p = pred / pg * pg;
                s.p[i] = p;
                s.e[i] = correction(v, scaled_value(p, q_of(i), sqrt));
            }
        }
    }
    let any_e = s.e.iter().any(|&e| e != 0);
    if pg > 1 {
        for p in s.p.iter_mut() {
            *p /= pg;
        }
    }
    let mut flags = 0u8;
    if pg > 1 {
        flags |= SF_PGCD;
    }
    if any_e {
        flags |= SF_CORRECTIONS;
    }
    if sqrt {
        flags |= SF_SQRT;
    }
    // Pick the prediction order with the smallest residuals (sum of bit
    // lengths: a cheap proxy of the packed size), then pack only that one.
    let mut best_order = 0u8;
    let mut best_gcd = 1u64;
    let mut best_cost = u64::MAX;
    for order in 0..=2u8 {
        if order == 2 && n < 3 {
            break;
        }
        s.u.clear();
        let mut g = 0u64;
        for i in 1..n {
            let r = s.p[i].wrapping_sub(predict(order, i, &s.p, mults));
            if g != 1 {
                g = gcd(g, r.unsigned_abs());
            }
            s.u.push(r as u64);
        }
        let g = if g <= 1 || g > i64::MAX as u64 { 1 } else { g };
        let mut cost = 0u64;
        for u in s.u.iter_mut() {
            *u = zigzag((*u as i64) / g as i64);
            cost += u64::from(64 - u.leading_zeros());
        }
        if cost < best_cost {
            best_cost = cost;
            std::mem::swap(&mut s.u, &mut s.u2);
            best_order = order;
            best_gcd = g;
        }
    }
    s.best.clear();
    if best_gcd > 1 {
        put_varint(&mut s.best, best_gcd);
    }
    pfor_encode(&s.u2, &mut s.best);
    if best_gcd > 1 {
        flags |= SF_GCD;
    }
    flags |= best_order;
    // The multiplier stream: deltas from the previous one or from the first.
    s.tmp.clear();
    if let Some(k) = ks {
        s.u.clear();
        s.u.extend(k.windows(2).map(|w| zigzag(w[1].wrapping_sub(w[0]) as i64)));
        pfor_encode(&s.u, &mut s.tmp);
        let by_prev = s.tmp.len();
        s.u.clear();
        s.u.extend(k[1..].iter().map(|&x| zigzag(x.wrapping_sub(k[0]) as i64)));
        let mut alt = Vec::new();
        pfor_encode(&s.u, &mut alt);
        if alt.len() < by_prev {
            s.tmp = alt;
            flags |= SF_MFIRST;
        }
        flags |= SF_MULTIPLIERS;
    }
    out.push(V_SCALED);
    out.push(flags);
    put_varint(out, base);
    if let Some(k) = ks {
        put_varint(out, k[0]);
        out.extend_from_slice(&s.tmp);
    }
    if pg > 1 {
        put_varint(out, pg as u64);
    }
    put_varint(out, zigzag(s.p[0]));
    out.extend_from_slice(&s.best);
    if any_e {
        s.u.clear();
        s.u.extend(s.e.iter().map(|&e| zigzag(e)));
        pfor_encode(&s.u, out);
    }
}

fn decode_scaled(r: &mut Reader<'_>, n: usize, out: &mut Vec<f64>) -> Result<()> {
    let flags = r.u8()?;
    let order = flags & SF_ORDER_MASK;
    if order > 2 {
        return corrupt("bad prediction order");
    }
    let sqrt = flags & SF_SQRT != 0;
    let base = r.varint()?;
    if base == 0 {
        return corrupt("zero scale");
    }
    let mut mults: Vec<u64> = Vec::new();
    if flags & SF_MULTIPLIERS != 0 {
        let k0 = r.varint()?;
        mults.push(k0);
        pfor_decode(r, n - 1, &mut mults)?;
        let mut prev = k0;
        for k in mults[1..].iter_mut() {
            let from = if flags & SF_MFIRST != 0 { k0 } else { prev };
            *k = from.wrapping_add(unzigzag(*k) as u64);
            prev = *k;
        }
        for k in mults.iter_mut() {
            *k = effective_multiplier(*k, sqrt);
            if *k == 0 {
                return corrupt("zero multiplier");
            }
        }
    } else if flags & SF_MFIRST != 0 {
        return corrupt("multiplier flag without multipliers");
    }
    let m = if mults.is_empty() {
        None
    } else {
        Some(&mults[..])
    };
    let pg = if flags & SF_PGCD != 0 {
        nonzero(r.varint()?)? as i64
    } else {
        1
    };
    let p0 = unzigzag(r.varint()?);
    let g = if flags & SF_GCD != 0 {
        nonzero(r.varint()?)? as i64
    } else {
        1
    };
    let mut res: Vec<u64> = Vec::new();
    pfor_decode(r, n - 1, &mut res)?;
    let mut p: Vec<i64> = Vec::with_capacity(n);
    p.push(p0);
    for (i, &u) in res.iter().enumerate() {
        let pred = predict(order, i + 1, &p, m);
        p.push(pred.wrapping_add(unzigzag(u).wrapping_mul(g)));
    }
    let start = out.len();
    match m {
        None => out.extend(
            p.iter()
                .map(|&p| scaled_value(p.wrapping_mul(pg), base, sqrt)),
        ),
        Some(m) => out.extend(
            p.iter()
                .zip(m)
                .map(|(&p, &m)| scaled_value(p.wrapping_mul(pg), base.wrapping_mul(m), sqrt)),
        ),
    }
    if flags & SF_CORRECTIONS != 0 {
        res.clear();
        pfor_decode(r, n, &mut res)?;
        for (v, &e) in out[start..].iter_mut().zip(&res) {
            *v = f64::from_bits(v.to_bits().wrapping_add(unzigzag(e) as u64));
        }
    }
    Ok(())
}

#[inline]
fn nonzero(v: u64) -> Result<u64> {
    if v == 0 || v > i64::MAX as u64 {
        corrupt("bad factor")
    } else {
        Ok(v)
    }
}

/// Gorilla XOR: `0` same value; `10` + bits within the previous window;
/// `11` + 5-bit leading zeros + 6-bit (length − 1) + bits.
fn encode_xor(values: &[f64], out: &mut Vec<u8>) {
    out.push(V_XOR);
    let mut w = BitWriter::new(out);
    let mut prev = values[0].to_bits();
    w.put(prev, 64);
    let (mut wlz, mut wtz) = (u32::MAX, 0u32);
    for v in &values[1..] {
        let b = v.to_bits();
        let x = b ^ prev;
        prev = b;
        if x == 0 {
            w.put(0, 1);
            continue;
        }
        let lz = x.leading_zeros().min(31);
        let tz = x.trailing_zeros();
        if wlz != u32::MAX && lz >= wlz && tz >= wtz {
            w.put(0b01, 2);
            w.put(x >> wtz, 64 - wlz - wtz);
        } else {
            let sig = 64 - lz - tz;
            w.put(0b11, 2);
            w.put(u64::from(lz), 5);
            w.put(u64::from(sig - 1), 6);
            w.put(x >> tz, sig);
            wlz = lz;
            wtz = tz;
        }
    }
    w.finish();
}

fn decode_xor(r: &mut Reader<'_>, n: usize, out: &mut Vec<f64>) -> Result<()> {
    let mut br = BitReader::new(r.rest());
    let mut prev = br.get(64)?;
    out.push(f64::from_bits(prev));
    let (mut wlz, mut wtz) = (u32::MAX, 0u32);
    for _ in 1..n {
        if br.get(1)? != 0 {
            let x = if br.get(1)? == 0 {
                if wlz == u32::MAX {
                    return corrupt("xor window used before being set");
                }
                br.get(64 - wlz - wtz)? << wtz
            } else {
                let lz = br.get(5)? as u32;
                let sig = br.get(6)? as u32 + 1;
                if lz + sig > 64 {
                    return corrupt("bad xor window");
                }
                let tz = 64 - lz - sig;
                wlz = lz;
                wtz = tz;
                br.get(sig)? << tz
            };
            prev ^= x;
        }
        out.push(f64::from_bits(prev));
    }
    let used = br.consumed();
    r.bytes(used)?;
    Ok(())
}

/// Integer delta of the bit patterns, zigzag, bit-packed.
fn encode_intdelta(values: &[f64], s: &mut Scratch, out: &mut Vec<u8>) {
    out.push(V_INTDELTA);
    out.extend_from_slice(&values[0].to_bits().to_le_bytes());
    s.u.clear();
    s.u.extend(
        values
            .windows(2)
            .map(|w| zigzag(w[1].to_bits().wrapping_sub(w[0].to_bits()) as i64)),
    );
    pfor_encode(&s.u, out);
}

fn decode_intdelta(r: &mut Reader<'_>, n: usize, out: &mut Vec<f64>) -> Result<()> {
    let mut prev = r.u64_le()?;
    out.push(f64::from_bits(prev));
    let mut d = Vec::new();
    pfor_decode(r, n - 1, &mut d)?;
    for &u in &d {
        prev = prev.wrapping_add(unzigzag(u) as u64);
        out.push(f64::from_bits(prev));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_and_zigzag() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX, 1 << 63] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            assert_eq!(Reader::new(&b).varint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn packed_streams_roundtrip_both_block_kinds() {
        let mut seed = 12345u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut rice, mut pfor) = (0, 0);
        for shape in 0..8u32 {
            for _ in 0..20 {
                let n = (rnd() % 300) as usize;
                let vals: Vec<u64> = (0..n)
                    .map(|_| match shape {
                        // Geometric-like: Rice territory.
                        0 => rnd().trailing_zeros() as u64 * 3,
                        1 => (rnd() % 1000) >> (rnd() % 10),
                        // With huge escapes.
                        2 => {
                            if rnd() % 50 == 0 {
                                rnd()
                            } else {
                                rnd() % 16
                            }
                        }
                        3 => u64::MAX - rnd() % 3,
                        4 => rnd() % 7,
                        5 => 0,
                        6 => rnd() >> (rnd() % 64),
                        _ => rnd(),
                    })
                    .collect();
                let mut b = Vec::new();
                pfor_encode(&vals, &mut b);
                let mut r = Reader::new(&b);
                let mut out = Vec::new();
                for chunk in vals.chunks(BLOCK) {
                    if (RICE_HEADER..=RICE_HEADER + RICE_MAX_K as u8).contains(&r.rest()[0]) {
                        rice += 1;
                    } else {
                        pfor += 1;
                    }
                    pfor_decode(&mut r, chunk.len(), &mut out).unwrap();
                }
                assert_eq!(out, vals);
                assert_eq!(r.remaining(), 0);
                // Any truncation fails without panicking.
                for cut in 0..b.len() {
                    let mut r = Reader::new(&b[..cut]);
                    let mut out = Vec::new();
                    assert!(pfor_decode(&mut r, vals.len(), &mut out).is_err());
                }
            }
        }
        assert!(rice > 0 && pfor > 0, "rice {rice} pfor {pfor}");
    }

    #[test]
    fn pfor_roundtrip() {
        let vals: Vec<u64> = (0..200u64)
            .map(|i| if i % 17 == 0 { u64::MAX - i } else { i % 5 })
            .collect();
        let mut b = Vec::new();
        pfor_encode(&vals, &mut b);
        let mut r = Reader::new(&b);
        let mut out = Vec::new();
        pfor_decode(&mut r, vals.len(), &mut out).unwrap();
        assert_eq!(out, vals);
        assert_eq!(r.remaining(), 0);
    }
}
