//! Values: the choice of a mode per series, and the simple modes (raw, constant, XOR, integer delta).

use super::bytes::{BitReader, BitWriter, Reader, unzigzag, zigzag};
use super::packing::{pfor_decode, pfor_encode};
use super::scaled::{
    POW10, decimal_exponent, decode_scaled, encode_scaled, rational_multipliers, std_counts,
};
use super::{CodecError, Result, V_CONST, V_INTDELTA, V_RAW, V_SCALED, V_XOR, corrupt};

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

pub(super) fn encode_values(values: &[f64], out: &mut Vec<u8>) {
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

pub(super) fn decode_values(r: &mut Reader<'_>, n: usize, out: &mut Vec<f64>) -> Result<()> {
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
pub(super) struct Scratch {
    pub(super) p: Vec<i64>,
    pub(super) e: Vec<i64>,
    pub(super) m: Vec<u64>,
    pub(super) u: Vec<u64>,
    pub(super) u2: Vec<u64>,
    pub(super) best: Vec<u8>,
    pub(super) tmp: Vec<u8>,
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
