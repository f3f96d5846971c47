//! Timestamps of splits (slots) and of raw buffers (general).

use super::bytes::{Reader, put_varint, unzigzag, varint_len, zigzag};
use super::packing::{pfor_decode, pfor_encode};
use super::{
    Result, SPLIT_POINTS, TS_BITMAP, TS_BY_FIRST, TS_BY_PREVIOUS, TS_EXPLICIT, TS_RUNS, corrupt,
};
use crate::aggregated::{POINTS_PER_SPLIT, SplitKey};
use crate::time::Timestamp;

// ---------------------------------------------------------------------------
// Split timestamps: slots as runs or bitmap, or explicit when out of contract
// ---------------------------------------------------------------------------

pub(super) fn encode_split_timestamps(key: SplitKey, ts: &[Timestamp], out: &mut Vec<u8>) {
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

pub(super) fn decode_split_timestamps(
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

pub(super) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

pub(super) fn encode_timestamps_general(ts: &[Timestamp], out: &mut Vec<u8>) {
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

pub(super) fn decode_timestamps_general(
    r: &mut Reader<'_>,
    n: usize,
    out: &mut Vec<Timestamp>,
) -> Result<()> {
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
