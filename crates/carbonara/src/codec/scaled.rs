//! The scaled value mode: values as integers over a (per-point) multiplier, for decimals, means and standard deviations.

use super::bytes::{Reader, put_varint, unzigzag, zigzag};
use super::packing::{pfor_decode, pfor_encode};
use super::timestamps::gcd;
use super::values::Scratch;
use super::{
    Result, SF_CORRECTIONS, SF_GCD, SF_MFIRST, SF_MULTIPLIERS, SF_ORDER_MASK, SF_PGCD, SF_SQRT,
    V_SCALED, corrupt,
};

pub(super) const POW10: [f64; 16] = [
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
pub(super) fn decimal_exponent(values: &[f64]) -> Option<(usize, bool)> {
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
pub(super) fn rational_multipliers(values: &[f64], out: &mut Vec<u64>) -> bool {
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
pub(super) fn std_counts(values: &[f64], out: &mut Vec<u64>) -> Option<u32> {
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
pub(super) fn encode_scaled(
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

pub(super) fn decode_scaled(r: &mut Reader<'_>, n: usize, out: &mut Vec<f64>) -> Result<()> {
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
