//! Cross-series operations behind `/v1/aggregates` and the deprecated
//! `/v1/aggregation` API: aligning several series on the union of their
//! timestamps, filling holes, checking overlap, reducing across series,
//! rolling windows, element-wise arithmetic and math, clipping and rates of
//! change.
//!
//! These follow upstream's *query-time* semantics, which differ from the
//! storage-time methods of [`crate::aggregate`]: reductions ignore NaN (numpy's
//! `nanmean`, `nanstd`... with population statistics, `ddof = 0`), and a hole
//! in a series is a NaN.
//!
//! Data is columnar: a [`Grid`] holds one timestamp vector and one value
//! vector per series, back to back (column-major), so per-series work
//! (rolling, resampling, differences) reads contiguous memory and nothing is
//! allocated per point.

use crate::aggregated::AggregatedTimeSerie;
use crate::calendar::{self, Sampling};
use crate::method::Method;
use crate::time::Timestamp;

/// Several series aligned on the same timestamps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grid {
    /// Sorted, unique.
    pub timestamps: Vec<Timestamp>,
    /// Column-major: series `j` is `values[j * rows .. (j + 1) * rows]`.
    pub values: Vec<f64>,
    pub columns: usize,
}

impl Grid {
    /// A grid of `columns` series over `timestamps`, every value `fill`.
    pub fn filled(timestamps: Vec<Timestamp>, columns: usize, fill: f64) -> Grid {
        let rows = timestamps.len();
        Grid {
            timestamps,
            values: vec![fill; rows.saturating_mul(columns)],
            columns,
        }
    }

    pub fn rows(&self) -> usize {
        self.timestamps.len()
    }

    pub fn column(&self, j: usize) -> &[f64] {
        let r = self.rows();
        self.values.get(j * r..(j + 1) * r).unwrap_or(&[])
    }

    pub fn column_mut(&mut self, j: usize) -> &mut [f64] {
        let r = self.rows();
        self.values.get_mut(j * r..(j + 1) * r).unwrap_or(&mut [])
    }

    /// Only the rows `[lo, hi)`.
    pub fn slice_rows(&self, lo: usize, hi: usize) -> Grid {
        let rows = self.rows();
        let hi = hi.min(rows);
        let lo = lo.min(hi);
        let mut values = Vec::with_capacity((hi - lo) * self.columns);
        for j in 0..self.columns {
            values.extend_from_slice(&self.column(j)[lo..hi]);
        }
        Grid {
            timestamps: self.timestamps[lo..hi].to_vec(),
            values,
            columns: self.columns,
        }
    }

    /// Keep only the rows for which `keep` is true (same length as the rows).
    pub fn filter_rows(&self, keep: &[bool]) -> Grid {
        let mut timestamps = Vec::new();
        for (t, k) in self.timestamps.iter().zip(keep) {
            if *k {
                timestamps.push(*t);
            }
        }
        let mut values = Vec::with_capacity(timestamps.len() * self.columns);
        for j in 0..self.columns {
            for (v, k) in self.column(j).iter().zip(keep) {
                if *k {
                    values.push(*v);
                }
            }
        }
        Grid {
            timestamps,
            values,
            columns: self.columns,
        }
    }

    /// The columns `idx`, in that order.
    pub fn select_columns(&self, idx: &[usize]) -> Grid {
        let mut values = Vec::with_capacity(idx.len() * self.rows());
        for &j in idx {
            values.extend_from_slice(self.column(j));
        }
        Grid {
            timestamps: self.timestamps.clone(),
            values,
            columns: idx.len(),
        }
    }
}

/// Align series on the sorted union of their timestamps; where a series has
/// no point, its value is `filler` (NaN for a hole). Each input must be
/// sorted with unique timestamps (as stored series are).
pub fn align(series: &[(&[Timestamp], &[f64])], filler: f64) -> Grid {
    align_on(union(series), series, filler)
}

/// The sorted union of the series' timestamps (what [`align`] aligns on), so
/// a caller can bound the grid's size before building it.
pub fn union(series: &[(&[Timestamp], &[f64])]) -> Vec<Timestamp> {
    let total: usize = series.iter().map(|(t, _)| t.len()).sum();
    let mut union = Vec::with_capacity(total);
    for (t, _) in series {
        union.extend_from_slice(t);
    }
    union.sort_unstable();
    union.dedup();
    union
}

/// [`align`] on a precomputed [`union`] of the same series.
pub fn align_on(union: Vec<Timestamp>, series: &[(&[Timestamp], &[f64])], filler: f64) -> Grid {
    let mut grid = Grid::filled(union, series.len(), filler);
    let rows = grid.rows();
    for (j, (ts, vals)) in series.iter().enumerate() {
        let col = &mut grid.values[j * rows..(j + 1) * rows];
        let mut k = 0;
        for (t, v) in ts.iter().zip(vals.iter()) {
            while k < rows && grid.timestamps[k] < *t {
                k += 1;
            }
            if k < rows && grid.timestamps[k] == *t {
                col[k] = *v;
            }
        }
    }
    grid
}

/// Replace every NaN by the last non-NaN value before it, per series
/// (leading NaN stay).
pub fn fill_forward(grid: &mut Grid) {
    for j in 0..grid.columns {
        let mut last = f64::NAN;
        for v in grid.column_mut(j) {
            if v.is_nan() {
                *v = last;
            } else {
                last = *v;
            }
        }
    }
}

/// Replace every NaN by the next non-NaN value after it, per series
/// (trailing NaN stay).
pub fn fill_backward(grid: &mut Grid) {
    for j in 0..grid.columns {
        let mut next = f64::NAN;
        for v in grid.column_mut(j).iter_mut().rev() {
            if v.is_nan() {
                *v = next;
            } else {
                next = *v;
            }
        }
    }
}

/// Rows where every series has a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Overlap {
    pub count: usize,
    /// First and last fully-overlapping rows.
    pub first: Option<usize>,
    pub last: Option<usize>,
}

pub fn overlap(grid: &Grid) -> Overlap {
    let rows = grid.rows();
    let mut full = vec![true; rows];
    for j in 0..grid.columns {
        for (f, v) in full.iter_mut().zip(grid.column(j)) {
            if v.is_nan() {
                *f = false;
            }
        }
    }
    let mut o = Overlap::default();
    for (i, f) in full.iter().enumerate() {
        if *f {
            o.count += 1;
            o.first.get_or_insert(i);
            o.last = Some(i);
        }
    }
    o
}

/// Query-time reductions: numpy's NaN-ignoring functions (population `std`
/// and `var`; `sum` of nothing is 0, the others NaN; `count` counts non-NaN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reducer {
    Mean,
    Median,
    Std,
    Var,
    Min,
    Max,
    Sum,
    Count,
}

/// A reducer, optionally followed by a difference along time (`rate:X`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reduction {
    pub reducer: Reducer,
    pub rate: bool,
}

impl Reducer {
    pub fn parse(s: &str) -> Option<Reducer> {
        Some(match s {
            "mean" => Reducer::Mean,
            "median" => Reducer::Median,
            "std" => Reducer::Std,
            "var" => Reducer::Var,
            "min" => Reducer::Min,
            "max" => Reducer::Max,
            "sum" => Reducer::Sum,
            "count" => Reducer::Count,
            _ => return None,
        })
    }

    /// Reduce `vals`, ignoring NaN. `scratch` is reused between calls.
    pub fn reduce(self, vals: impl Iterator<Item = f64>, scratch: &mut Vec<f64>) -> f64 {
        scratch.clear();
        scratch.extend(vals.filter(|v| !v.is_nan()));
        let n = scratch.len();
        match self {
            Reducer::Count => n as f64,
            Reducer::Sum => scratch.iter().sum(),
            _ if n == 0 => f64::NAN,
            Reducer::Mean => scratch.iter().sum::<f64>() / n as f64,
            Reducer::Min => scratch.iter().copied().fold(f64::INFINITY, f64::min),
            Reducer::Max => scratch.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Reducer::Var | Reducer::Std => {
                let mean = scratch.iter().sum::<f64>() / n as f64;
                let ss: f64 = scratch.iter().map(|v| (v - mean) * (v - mean)).sum();
                let var = ss / n as f64;
                if self == Reducer::Std {
                    var.sqrt()
                } else {
                    var
                }
            }
            Reducer::Median => {
                scratch.sort_unstable_by(|a, b| a.total_cmp(b));
                if n % 2 == 1 {
                    scratch[n / 2]
                } else {
                    (scratch[n / 2 - 1] + scratch[n / 2]) / 2.0
                }
            }
        }
    }
}

impl Reduction {
    /// `mean`, `rate:max`, ...
    pub fn parse(s: &str) -> Option<Reduction> {
        match s.strip_prefix("rate:") {
            Some(rest) => Reducer::parse(rest).map(|reducer| Reduction {
                reducer,
                rate: true,
            }),
            None => Reducer::parse(s).map(|reducer| Reduction {
                reducer,
                rate: false,
            }),
        }
    }
}

/// Reduce across series, row by row: a one-column grid. With `rate`, the
/// differences between consecutive rows, stamped at the later one.
pub fn reduce_across(grid: &Grid, how: Reduction) -> Grid {
    let rows = grid.rows();
    let out = match how.reducer {
        Reducer::Median => {
            let mut out = Vec::with_capacity(rows);
            let mut scratch = Vec::with_capacity(grid.columns);
            for i in 0..rows {
                let row = (0..grid.columns).map(|j| grid.values[j * rows + i]);
                out.push(how.reducer.reduce(row, &mut scratch));
            }
            out
        }
        r => reduce_columnwise(grid, r),
    };
    let reduced = Grid {
        timestamps: grid.timestamps.clone(),
        values: out,
        columns: 1,
    };
    if how.rate { diff(&reduced) } else { reduced }
}

/// Row reductions computed by sweeping whole columns (contiguous memory),
/// adding the series in order so every row sums left to right exactly as
/// [`Reducer::reduce`] does.
fn reduce_columnwise(grid: &Grid, r: Reducer) -> Vec<f64> {
    let rows = grid.rows();
    let mut count = vec![0u32; rows];
    let mut acc = vec![
        match r {
            Reducer::Min => f64::INFINITY,
            Reducer::Max => f64::NEG_INFINITY,
            _ => 0.0,
        };
        rows
    ];
    for j in 0..grid.columns {
        for ((a, c), v) in acc.iter_mut().zip(count.iter_mut()).zip(grid.column(j)) {
            if v.is_nan() {
                continue;
            }
            *c += 1;
            *a = match r {
                Reducer::Min => a.min(*v),
                Reducer::Max => a.max(*v),
                _ => *a + v,
            };
        }
    }
    match r {
        Reducer::Count => count.iter().map(|c| f64::from(*c)).collect(),
        Reducer::Sum => acc,
        Reducer::Mean | Reducer::Min | Reducer::Max => acc
            .iter()
            .zip(&count)
            .map(|(a, c)| match (r, *c) {
                (_, 0) => f64::NAN,
                (Reducer::Mean, c) => a / f64::from(c),
                _ => *a,
            })
            .collect(),
        Reducer::Var | Reducer::Std | Reducer::Median => {
            let means: Vec<f64> = acc
                .iter()
                .zip(&count)
                .map(|(a, c)| a / f64::from(*c))
                .collect();
            let mut ss = vec![0.0; rows];
            for j in 0..grid.columns {
                for ((s, m), v) in ss.iter_mut().zip(&means).zip(grid.column(j)) {
                    if !v.is_nan() {
                        *s += (v - m) * (v - m);
                    }
                }
            }
            ss.iter()
                .zip(&count)
                .map(|(s, c)| {
                    if *c == 0 {
                        return f64::NAN;
                    }
                    let var = s / f64::from(*c);
                    if r == Reducer::Std { var.sqrt() } else { var }
                })
                .collect()
        }
    }
}

/// Trailing windows of `window` rows per series (the first `window - 1` rows
/// have no full window and are dropped). `None` if `window` is 0.
pub fn rolling(grid: &Grid, how: Reduction, window: usize) -> Option<Grid> {
    if window == 0 {
        return None;
    }
    let rows = grid.rows();
    let out_rows = (rows + 1).saturating_sub(window);
    let mut values = Vec::with_capacity(out_rows * grid.columns);
    let mut scratch = Vec::with_capacity(window);
    for j in 0..grid.columns {
        let col = grid.column(j);
        for w in col.windows(window) {
            values.push(how.reducer.reduce(w.iter().copied(), &mut scratch));
        }
    }
    let rolled = Grid {
        timestamps: grid.timestamps[rows - out_rows..].to_vec(),
        values,
        columns: grid.columns,
    };
    Some(if how.rate { diff(&rolled) } else { rolled })
}

/// Differences between consecutive rows, per series, stamped at the later
/// row (the first row is dropped): `rateofchange`.
pub fn diff(grid: &Grid) -> Grid {
    let rows = grid.rows();
    if rows == 0 {
        return grid.clone();
    }
    let mut values = Vec::with_capacity((rows - 1) * grid.columns);
    for j in 0..grid.columns {
        values.extend(grid.column(j).windows(2).map(|w| w[1] - w[0]));
    }
    Grid {
        timestamps: grid.timestamps[1..].to_vec(),
        values,
        columns: grid.columns,
    }
}

/// Differences between consecutive rows divided by the seconds between them,
/// per series; the first row has no predecessor and is NaN: `rateofchangesec`.
pub fn diff_per_second(grid: &Grid) -> Grid {
    let rows = grid.rows();
    let mut values = Vec::with_capacity(grid.values.len());
    for j in 0..grid.columns {
        let col = grid.column(j);
        if rows > 0 {
            values.push(f64::NAN);
        }
        for (w, t) in col.windows(2).zip(grid.timestamps.windows(2)) {
            let secs =
                (i128::from(t[1]) - i128::from(t[0])) as f64 / crate::time::NS_PER_SEC as f64;
            values.push((w[1] - w[0]) / secs);
        }
    }
    Grid {
        timestamps: grid.timestamps.clone(),
        values,
        columns: grid.columns,
    }
}

/// Regroup every series at `sampling` with carbonara's per-bucket semantics
/// for `method` (sample `std`, percentiles, `rate:`...), then re-align them
/// (a series whose bucket yields no point gets a hole there).
pub fn resample(grid: &Grid, sampling: Sampling, method: Method) -> Grid {
    let parts: Vec<AggregatedTimeSerie> = (0..grid.columns)
        .map(|j| {
            let col = grid.column(j);
            match sampling {
                Sampling::Fixed(g) => AggregatedTimeSerie {
                    granularity: g,
                    timestamps: grid.timestamps.clone(),
                    values: col.to_vec(),
                }
                .resample(g, method),
                Sampling::Calendar(c) => calendar::resample(&grid.timestamps, col, c, method),
            }
        })
        .collect();
    let same_stamps = parts.windows(2).all(|w| w[0].timestamps == w[1].timestamps);
    if same_stamps {
        // The common case: no union to compute.
        let timestamps = parts
            .first()
            .map(|p| p.timestamps.clone())
            .unwrap_or_default();
        let mut values = Vec::with_capacity(timestamps.len() * parts.len());
        for p in &parts {
            values.extend_from_slice(&p.values);
        }
        return Grid {
            timestamps,
            values,
            columns: grid.columns,
        };
    }
    let refs: Vec<(&[Timestamp], &[f64])> = parts
        .iter()
        .map(|p| (&p.timestamps[..], &p.values[..]))
        .collect();
    align(&refs, f64::NAN)
}

/// A time window `[start, end)`; `None` bounds are open.
pub type Window = (Option<Timestamp>, Option<Timestamp>);

/// Weight each point of a series by the fraction of its bucket
/// `[t, t + granularity)` that lies inside `windows` (summed over them), and
/// drop the points whose bucket lies outside all of them. This is how a
/// resource revision's metrics count only over the revision's lifetime when
/// aggregating with history.
pub fn window_weighted(
    timestamps: &[Timestamp],
    values: &[f64],
    granularity: i64,
    windows: &[Window],
) -> (Vec<Timestamp>, Vec<f64>) {
    let mut ts = Vec::with_capacity(timestamps.len());
    let mut vals = Vec::with_capacity(values.len());
    let g = i128::from(granularity.max(1));
    for (t, v) in timestamps.iter().zip(values) {
        let lo = i128::from(*t);
        let hi = lo + g;
        let mut weight = 0.0;
        for (ws, we) in windows {
            let a = ws.map_or(lo, |s| lo.max(i128::from(s)));
            let b = we.map_or(hi, |e| hi.min(i128::from(e)));
            if b > a {
                weight += (b - a) as f64 / g as f64;
            }
        }
        if weight > 0.0 {
            ts.push(*t);
            vals.push(v * weight);
        }
    }
    (ts, vals)
}

/// Element-wise functions of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Abs,
    Neg,
    Cos,
    Sin,
    Tan,
    Floor,
    Ceil,
}

impl UnaryOp {
    pub fn parse(s: &str) -> Option<UnaryOp> {
        Some(match s {
            "abs" | "absolute" => UnaryOp::Abs,
            "neg" | "negative" => UnaryOp::Neg,
            "cos" => UnaryOp::Cos,
            "sin" => UnaryOp::Sin,
            "tan" => UnaryOp::Tan,
            "floor" => UnaryOp::Floor,
            "ceil" => UnaryOp::Ceil,
            _ => return None,
        })
    }

    #[inline]
    pub fn apply(self, v: f64) -> f64 {
        match self {
            UnaryOp::Abs => v.abs(),
            UnaryOp::Neg => -v,
            UnaryOp::Cos => v.cos(),
            UnaryOp::Sin => v.sin(),
            UnaryOp::Tan => v.tan(),
            UnaryOp::Floor => v.floor(),
            UnaryOp::Ceil => v.ceil(),
        }
    }
}

/// Element-wise functions of two values (numpy's ufunc semantics: comparisons
/// give 1.0 or 0.0, `%` takes the sign of the divisor, `max` ignores NaN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
    Ne,
    Mod,
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    ClipMin,
    ClipMax,
    Max,
}

impl BinaryOp {
    pub fn parse(s: &str) -> Option<BinaryOp> {
        Some(match s {
            "=" | "==" | "eq" => BinaryOp::Eq,
            "<" | "lt" => BinaryOp::Lt,
            ">" | "gt" => BinaryOp::Gt,
            "<=" | "≤" | "le" => BinaryOp::Le,
            ">=" | "≥" | "ge" => BinaryOp::Ge,
            "!=" | "≠" | "ne" => BinaryOp::Ne,
            "%" | "mod" => BinaryOp::Mod,
            "+" | "add" => BinaryOp::Add,
            "-" | "sub" => BinaryOp::Sub,
            "*" | "×" | "mul" => BinaryOp::Mul,
            "/" | "÷" | "div" => BinaryOp::Div,
            "**" | "^" | "pow" => BinaryOp::Pow,
            "clip_min" => BinaryOp::ClipMin,
            "clip_max" => BinaryOp::ClipMax,
            "max" => BinaryOp::Max,
            _ => return None,
        })
    }

    #[inline]
    pub fn apply(self, a: f64, b: f64) -> f64 {
        let truth = |c: bool| if c { 1.0 } else { 0.0 };
        match self {
            BinaryOp::Eq => truth(a == b),
            BinaryOp::Lt => truth(a < b),
            BinaryOp::Gt => truth(a > b),
            BinaryOp::Le => truth(a <= b),
            BinaryOp::Ge => truth(a >= b),
            BinaryOp::Ne => truth(a != b),
            BinaryOp::Mod => py_mod(a, b),
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            BinaryOp::ClipMin => clip(a, b, f64::NAN),
            BinaryOp::ClipMax => clip(a, f64::NAN, b),
            BinaryOp::Max => a.max(b),
        }
    }
}

/// Floating-point modulo with the sign of the divisor (numpy's `mod`).
#[inline]
pub fn py_mod(a: f64, b: f64) -> f64 {
    let m = a % b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        m + b
    } else if m == 0.0 {
        0.0f64.copysign(b)
    } else {
        m
    }
}

/// `min(max(v, lo), hi)` where a NaN bound means "no bound" and a NaN value
/// stays NaN.
#[inline]
pub fn clip(v: f64, lo: f64, hi: f64) -> f64 {
    let mut r = v;
    if !lo.is_nan() && r < lo {
        r = lo;
    }
    if !hi.is_nan() && r > hi {
        r = hi;
    }
    r
}

/// Apply `f` to two grids of equal rows, broadcasting a one-column grid over
/// the other's columns. `None` when the column counts are incompatible.
pub fn zip_grids(a: &Grid, b: &Grid, f: impl Fn(f64, f64) -> f64) -> Option<Grid> {
    let rows = a.rows();
    if b.rows() != rows {
        return None;
    }
    let columns = match (a.columns, b.columns) {
        (x, y) if x == y => x,
        (1, y) => y,
        (x, 1) => x,
        _ => return None,
    };
    let mut values = Vec::with_capacity(rows * columns);
    for j in 0..columns {
        let ca = a.column(if a.columns == 1 { 0 } else { j });
        let cb = b.column(if b.columns == 1 { 0 } else { j });
        values.extend(ca.iter().zip(cb).map(|(x, y)| f(*x, *y)));
    }
    Some(Grid {
        timestamps: a.timestamps.clone(),
        values,
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_union_with_holes() {
        let g = align(
            &[(&[1, 3], &[10.0, 30.0]), (&[2, 3], &[2.0, 3.0])],
            f64::NAN,
        );
        assert_eq!(g.timestamps, vec![1, 2, 3]);
        assert_eq!(g.column(0)[0], 10.0);
        assert!(g.column(0)[1].is_nan());
        assert!(g.column(1)[0].is_nan());
        assert_eq!(g.column(1)[2], 3.0);
        let o = overlap(&g);
        assert_eq!((o.count, o.first, o.last), (1, Some(2), Some(2)));
    }

    #[test]
    fn fills() {
        let mut g = align(
            &[(&[2, 4], &[1.0, 2.0]), (&[1, 3, 5], &[7.0, 8.0, 9.0])],
            f64::NAN,
        );
        fill_forward(&mut g);
        assert!(g.column(0)[0].is_nan());
        assert_eq!(&g.column(0)[1..], &[1.0, 1.0, 2.0, 2.0]);
        fill_backward(&mut g);
        assert_eq!(g.column(0), &[1.0, 1.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn reducers_ignore_nan() {
        let mut s = Vec::new();
        let v = [1.0, f64::NAN, 3.0];
        assert_eq!(Reducer::Mean.reduce(v.iter().copied(), &mut s), 2.0);
        assert_eq!(Reducer::Count.reduce(v.iter().copied(), &mut s), 2.0);
        assert_eq!(Reducer::Std.reduce(v.iter().copied(), &mut s), 1.0);
        assert_eq!(Reducer::Var.reduce(v.iter().copied(), &mut s), 1.0);
        assert_eq!(Reducer::Median.reduce(v.iter().copied(), &mut s), 2.0);
        assert_eq!(Reducer::Sum.reduce([f64::NAN].into_iter(), &mut s), 0.0);
        assert!(Reducer::Max.reduce([f64::NAN].into_iter(), &mut s).is_nan());
    }

    #[test]
    fn rolling_and_rates() {
        let g = align(&[(&[1, 2, 3, 4], &[43.1, 12.0, -16.0, 9.0])], f64::NAN);
        let how = Reduction::parse("mean").unwrap();
        let r = rolling(&g, how, 2).unwrap();
        assert_eq!(r.timestamps, vec![2, 3, 4]);
        assert_eq!(r.values, vec![27.55, -2.0, -3.5]);
        assert_eq!(rolling(&g, how, 5).unwrap().rows(), 0);
        let d = diff(&g);
        assert_eq!(d.timestamps, vec![2, 3, 4]);
        assert_eq!(d.values, vec![12.0 - 43.1, -28.0, 25.0]);
    }

    #[test]
    fn windows_weigh_buckets() {
        let (t, v) = window_weighted(&[0, 10, 20], &[4.0, 4.0, 4.0], 10, &[(Some(15), None)]);
        assert_eq!(t, vec![10, 20]);
        assert_eq!(v, vec![2.0, 4.0]);
        let (t, _) = window_weighted(&[0, 10], &[1.0, 1.0], 10, &[(None, Some(10))]);
        assert_eq!(t, vec![0]);
    }

    #[test]
    fn numpy_mod_and_clip() {
        assert_eq!(py_mod(-1.0, 3.0), 2.0);
        assert_eq!(py_mod(1.0, -3.0), -2.0);
        assert!(py_mod(1.0, 0.0).is_nan());
        assert_eq!(clip(5.0, 10.0, f64::NAN), 10.0);
        assert_eq!(clip(5.0, f64::NAN, 1.0), 1.0);
        assert!(clip(f64::NAN, 0.0, 1.0).is_nan());
    }
}
