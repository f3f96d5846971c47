//! Every per-bucket method (std, median, percentiles...) matches a naive
//! reference implementation, bit for bit, including upstream's NaN handling.

mod support_process;

use carbonara::aggregate::{aggregate, derive};
use carbonara::method::BaseMethod;
use proptest::prelude::*;
use support_process::*;

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -1e6f64..1e6,
        2 => (-20i32..20).prop_map(f64::from),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
    ]
}

fn points() -> impl Strategy<Value = Vec<(i64, f64)>> {
    prop::collection::vec((0i64..100_000, value()), 0..300).prop_map(|mut v| {
        v.sort_by_key(|p| p.0);
        v.dedup_by_key(|p| p.0);
        v.into_iter()
            .map(|(t, x)| (BASE + t * 1_000_000, x))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn every_method_matches_reference(pts in points(), g_ms in prop::sample::select(vec![1i64, 7, 100, 1000, 5000, 60_000])) {
        let g = g_ms * 1_000_000;
        let ts: Vec<i64> = pts.iter().map(|p| p.0).collect();
        let vals: Vec<f64> = pts.iter().map(|p| p.1).collect();
        for m in base_methods().into_iter().chain((0..=100).map(BaseMethod::Pct)) {
            let got = aggregate(&ts, &vals, g, m);
            prop_assert_eq!(got.granularity, g);
            let r = reference_aggregate(&pts, g, m);
            prop_assert!(same_bits(&pairs(&got), &r), "{:?}: got {:?} reference {:?}", m, pairs(&got), r);
        }
    }

    #[test]
    fn derive_matches_reference(pts in points()) {
        let ts: Vec<i64> = pts.iter().map(|p| p.0).collect();
        let vals: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let (dts, dv) = derive(&ts, &vals);
        let got: Vec<(i64, f64)> = dts.into_iter().zip(dv).collect();
        prop_assert!(same_bits(&got, &reference_derive(&pts)));
    }
}

#[test]
fn std_of_single_point_bucket_yields_nothing() {
    let ts = [BASE, BASE + NS, BASE + 60 * NS];
    let v = [1.0, 3.0, 5.0];
    let s = aggregate(&ts, &v, 60 * NS, BaseMethod::Std);
    assert_eq!(pairs(&s), vec![(BASE, std::f64::consts::SQRT_2)]);
}

#[test]
fn known_values() {
    let ts: Vec<i64> = (0..4).map(|i| BASE + i * NS).collect();
    let v = [4.0, 1.0, 3.0, 2.0];
    let one = |m| aggregate(&ts, &v, 60 * NS, m).values[0];
    assert_eq!(one(BaseMethod::Median), 2.5);
    assert_eq!(one(BaseMethod::Mean), 2.5);
    assert_eq!(one(BaseMethod::Count), 4.0);
    assert_eq!(one(BaseMethod::First), 4.0);
    assert_eq!(one(BaseMethod::Last), 2.0);
    assert_eq!(one(BaseMethod::Min), 1.0);
    assert_eq!(one(BaseMethod::Max), 4.0);
    // pos = 3 * 0.5 = 1.5 -> 2 * 0.5 + 3 * 0.5
    assert_eq!(one(BaseMethod::Pct(50)), 2.5);
    // pos = 3 * 0.95 ~ 2.85 -> 3 * 0.15 + 4 * 0.85 (upstream's weights and rounding)
    let pos = 3.0 * (95.0 / 100.0);
    assert_eq!(
        one(BaseMethod::Pct(95)),
        3.0 * (3.0 - pos) + 4.0 * (pos - 2.0)
    );
    assert_eq!(one(BaseMethod::Std), (5.0f64 / 3.0).sqrt());
}

#[test]
fn nan_like_numpy() {
    let ts: Vec<i64> = (0..3).map(|i| BASE + i * NS).collect();
    let v = [2.0, f64::NAN, 1.0];
    let one = |m| aggregate(&ts, &v, 60 * NS, m).values[0];
    assert_eq!(one(BaseMethod::Min), 1.0);
    assert!(one(BaseMethod::Max).is_nan());
    assert!(one(BaseMethod::Mean).is_nan());
    assert!(one(BaseMethod::Std).is_nan());
    assert_eq!(one(BaseMethod::Median), 2.0);
    assert_eq!(one(BaseMethod::Count), 3.0);
    assert!(one(BaseMethod::Pct(99)).is_nan());
    assert_eq!(one(BaseMethod::Pct(1)), 1.0 * (1.0 - 0.02) + 2.0 * 0.02);
}
