//! Packing of u64 streams (patched bit-packing or Rice coding, per block of 64).

use super::bytes::{BitWriter, Reader, mask, put_varint, varint_len};
use super::{BLOCK, CodecError, Result, corrupt};

// ---------------------------------------------------------------------------
// Packing of u64 streams: blocks of 64 values, each either patched
// bit-packing ("PFOR") or Rice coding, whichever is smaller.
//
// PFOR block = header(u8: width 0..=64 | 0x80 if exceptions) packed(ceil(len·width/8) bytes)
//              [varint(count) count × (u8 index, varint(value >> width))]
// Rice block = header(u8: 65 + k) varint(byte length) bits
// ---------------------------------------------------------------------------

pub(super) fn pfor_encode(vals: &[u64], out: &mut Vec<u8>) {
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
pub(super) fn pfor_decode(r: &mut Reader<'_>, n: usize, out: &mut Vec<u64>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
