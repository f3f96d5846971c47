//! Properties of the query-time operations (`carbonara::ops`) and of calendar
//! bucketing (`carbonara::calendar`): alignment keeps every point, fills only
//! touch holes, NaN-ignoring reductions match a naive model, rolling windows
//! and differences have the right shapes, calendar periods contain their
//! points, and no input panics.

use carbonara::Method;
use carbonara::calendar::{self, Calendar, Sampling};
use carbonara::ops::{self, Reducer, Reduction};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A sorted, unique series.
fn series() -> impl Strategy<Value = (Vec<i64>, Vec<f64>)> {
    prop::collection::btree_map(-50i64..50, -1e6f64..1e6, 0..20).prop_map(|m| {
        let ts: Vec<i64> = m.keys().copied().collect();
        let vals: Vec<f64> = m.values().copied().collect();
        (ts, vals)
    })
}

fn reducer() -> impl Strategy<Value = Reducer> {
    prop_oneof![
        Just(Reducer::Mean),
        Just(Reducer::Median),
        Just(Reducer::Std),
        Just(Reducer::Var),
        Just(Reducer::Min),
        Just(Reducer::Max),
        Just(Reducer::Sum),
        Just(Reducer::Count),
    ]
}

fn calendar_grouping() -> impl Strategy<Value = Calendar> {
    prop_oneof![
        Just(Calendar::Year),
        Just(Calendar::Half),
        Just(Calendar::Quarter),
        Just(Calendar::Month),
        Just(Calendar::Week),
    ]
}

/// The NaN-ignoring reductions, written the obvious way.
fn naive(r: Reducer, vals: &[f64]) -> f64 {
    let v: Vec<f64> = vals.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = v.len() as f64;
    match r {
        Reducer::Count => n,
        Reducer::Sum => v.iter().sum(),
        _ if v.is_empty() => f64::NAN,
        Reducer::Mean => v.iter().sum::<f64>() / n,
        Reducer::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
        Reducer::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Reducer::Var | Reducer::Std => {
            let m = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
            if r == Reducer::Std { var.sqrt() } else { var }
        }
        Reducer::Median => {
            let mut s = v.clone();
            s.sort_by(|a, b| a.total_cmp(b));
            let k = s.len();
            if k % 2 == 1 {
                s[k / 2]
            } else {
                (s[k / 2 - 1] + s[k / 2]) / 2.0
            }
        }
    }
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

proptest! {
    #[test]
    fn align_keeps_every_point_and_only_them(all in prop::collection::vec(series(), 1..5)) {
        let inputs: Vec<(&[i64], &[f64])> = all.iter().map(|(t, v)| (&t[..], &v[..])).collect();
        let g = ops::align(&inputs, f64::NAN);
        prop_assert!(g.timestamps.windows(2).all(|w| w[0] < w[1]));
        prop_assert_eq!(g.columns, all.len());
        for (j, (ts, vals)) in all.iter().enumerate() {
            let col = g.column(j);
            let expect: BTreeMap<i64, f64> = ts.iter().copied().zip(vals.iter().copied()).collect();
            for (t, v) in g.timestamps.iter().zip(col) {
                match expect.get(t) {
                    Some(x) => prop_assert_eq!(x, v),
                    None => prop_assert!(v.is_nan()),
                }
            }
            for t in ts {
                prop_assert!(g.timestamps.binary_search(t).is_ok());
            }
        }
    }

    #[test]
    fn fills_only_touch_holes(all in prop::collection::vec(series(), 1..4)) {
        let inputs: Vec<(&[i64], &[f64])> = all.iter().map(|(t, v)| (&t[..], &v[..])).collect();
        let g = ops::align(&inputs, f64::NAN);
        let mut f = g.clone();
        ops::fill_forward(&mut f);
        ops::fill_backward(&mut f);
        for j in 0..g.columns {
            let has_any = g.column(j).iter().any(|v| !v.is_nan());
            for (a, b) in g.column(j).iter().zip(f.column(j)) {
                if !a.is_nan() {
                    prop_assert_eq!(a, b);
                }
                prop_assert_eq!(b.is_nan(), !has_any);
            }
        }
    }

    #[test]
    fn reductions_match_naive_model(all in prop::collection::vec(series(), 1..5), r in reducer(), rate in any::<bool>()) {
        let inputs: Vec<(&[i64], &[f64])> = all.iter().map(|(t, v)| (&t[..], &v[..])).collect();
        let g = ops::align(&inputs, f64::NAN);
        let out = ops::reduce_across(&g, Reduction { reducer: r, rate });
        let mut expect: Vec<f64> = (0..g.rows())
            .map(|i| {
                let row: Vec<f64> = (0..g.columns).map(|j| g.column(j)[i]).collect();
                naive(r, &row)
            })
            .collect();
        let mut stamps = g.timestamps.clone();
        if rate && !expect.is_empty() {
            expect = expect.windows(2).map(|w| w[1] - w[0]).collect();
            stamps.remove(0);
        }
        prop_assert_eq!(&out.timestamps, &stamps);
        for (a, b) in out.values.iter().zip(&expect) {
            prop_assert!(same(*a, *b), "{} vs {}", a, b);
        }
    }

    #[test]
    fn columnwise_reductions_are_bit_exact(all in prop::collection::vec(series(), 1..6), r in reducer()) {
        // The column sweep must add in the same order as a row-by-row reduce.
        let inputs: Vec<(&[i64], &[f64])> = all.iter().map(|(t, v)| (&t[..], &v[..])).collect();
        let g = ops::align(&inputs, f64::NAN);
        let out = ops::reduce_across(&g, Reduction { reducer: r, rate: false });
        let mut scratch = Vec::new();
        for i in 0..g.rows() {
            let row = (0..g.columns).map(|j| g.column(j)[i]);
            let want = r.reduce(row, &mut scratch);
            prop_assert!(want.to_bits() == out.values[i].to_bits() || (want.is_nan() && out.values[i].is_nan()));
        }
    }

    #[test]
    fn rolling_windows_are_trailing(s in series(), r in reducer(), window in 1usize..6) {
        let g = ops::align(&[(&s.0[..], &s.1[..])], f64::NAN);
        let out = ops::rolling(&g, Reduction { reducer: r, rate: false }, window).unwrap_or_default();
        let n = g.rows();
        prop_assert_eq!(out.rows(), (n + 1).saturating_sub(window));
        for (k, v) in out.values.iter().enumerate() {
            prop_assert!(same(*v, naive(r, &s.1[k..k + window])));
            prop_assert_eq!(out.timestamps[k], g.timestamps[k + window - 1]);
        }
    }

    #[test]
    fn calendar_periods_contain_their_points(ts in any::<i64>(), cal in calendar_grouping()) {
        let start = cal.floor(ts);
        let next = cal.next(start);
        prop_assert!(start <= ts);
        // Saturation at the ends of the i64 range aside, the point is in its period.
        if next != i64::MAX && start != i64::MIN {
            prop_assert!(ts < next);
            prop_assert_eq!(cal.floor(next), next);
            prop_assert_eq!(cal.floor(next - 1), start);
        }
    }

    #[test]
    fn calendar_resample_groups_by_period(
        days in prop::collection::btree_map(0i64..3000, -100f64..100.0, 0..40),
        cal in calendar_grouping(),
    ) {
        const DAY: i64 = 86_400_000_000_000;
        let ts: Vec<i64> = days.keys().map(|d| d * DAY + 3_600_000_000_000).collect();
        let vals: Vec<f64> = days.values().copied().collect();
        let out = calendar::resample(&ts, &vals, cal, Method::Sum);
        let mut expect: BTreeMap<i64, f64> = BTreeMap::new();
        for (t, v) in ts.iter().zip(&vals) {
            *expect.entry(cal.floor(*t)).or_insert(0.0) += v;
        }
        prop_assert_eq!(out.timestamps, expect.keys().copied().collect::<Vec<_>>());
        for (a, b) in out.values.iter().zip(expect.values()) {
            prop_assert!(same(*a, *b));
        }
    }

    #[test]
    fn nothing_panics(
        all in prop::collection::vec(
            prop::collection::vec((any::<i64>(), any::<f64>()), 0..10), 0..4),
        window in 0usize..5,
        g in any::<i64>(),
        cal in calendar_grouping(),
    ) {
        // Unsorted, duplicated, extreme input: wrong answers are allowed, panics are not.
        let cols: Vec<(Vec<i64>, Vec<f64>)> = all
            .iter()
            .map(|s| (s.iter().map(|p| p.0).collect(), s.iter().map(|p| p.1).collect()))
            .collect();
        let inputs: Vec<(&[i64], &[f64])> = cols.iter().map(|(t, v)| (&t[..], &v[..])).collect();
        let mut grid = ops::align(&inputs, f64::NAN);
        ops::fill_forward(&mut grid);
        let _ = ops::overlap(&grid);
        let how = Reduction { reducer: Reducer::Mean, rate: true };
        let _ = ops::reduce_across(&grid, how);
        let _ = ops::rolling(&grid, how, window);
        let _ = ops::diff(&grid);
        let _ = ops::diff_per_second(&grid);
        let _ = ops::resample(&grid, Sampling::Fixed(g), Method::Mean);
        let _ = ops::resample(&grid, Sampling::Calendar(cal), Method::Rate(carbonara::method::BaseMethod::Pct(95)));
        let _ = grid.slice_rows(window, 2);
        let _ = grid.select_columns(&[0, 7]);
    }
}
