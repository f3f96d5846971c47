//! Back window: late points older than the first block timestamp (computed
//! before the merge) are dropped; the raw buffer is truncated to whole blocks
//! afterwards; a `rate:` method keeps (and accepts) one more block.

mod support_process;

use std::collections::BTreeMap;

use carbonara::measure::measures as to_measures;
use carbonara::method::BaseMethod;
use carbonara::process::{apply_measures, raw_back_window};
use carbonara::{BoundTimeSerie, Method};
use proptest::prelude::*;
use support_process::*;

/// 2015-03-06T23:30:23Z
const T_2330_23: i64 = BASE + (23 * 3600 + 30 * 60 + 23) * NS;
const MIN: i64 = 60 * NS;

#[test]
fn spec_example_one_minute_back_window_two() {
    let p = policy(vec![item(MIN, None)], 2, vec![Method::Mean]);
    let u = apply_measures(None, &p, &mut to_measures(&[(T_2330_23, 1.0)])).unwrap();
    let raw = u.raw;
    assert_eq!(
        raw.first_block_timestamp(),
        Some(T_2330_23 - 23 * NS - 2 * MIN)
    );

    // 23:28:00 is accepted, 23:27:59 and a 2012 point are not.
    let t_2328 = T_2330_23 - 23 * NS - 2 * MIN;
    let year_2012 = 1_325_376_000 * NS;
    let u2 = apply_measures(
        Some(raw.clone()),
        &p,
        &mut to_measures(&[(t_2328 - NS, 5.0), (year_2012, 6.0), (t_2328, 7.0)]),
    )
    .unwrap();
    assert_eq!(u2.raw.timestamps, vec![t_2328, T_2330_23]);
    assert_eq!(u2.aggregates.len(), 1);
    assert_eq!(
        pairs(&u2.aggregates[0].serie),
        vec![(t_2328, 7.0), (t_2328 + 2 * MIN, 1.0)]
    );

    // Nothing accepted: as upstream, the buckets from the buffer's first
    // point are recomputed all the same, and the buffer is unchanged.
    let u3 = apply_measures(
        Some(raw.clone()),
        &p,
        &mut to_measures(&[(t_2328 - NS, 5.0), (year_2012, 6.0)]),
    )
    .unwrap();
    assert_eq!(u3.raw, raw);
    assert_eq!(
        pairs(&u3.aggregates[0].serie),
        vec![(T_2330_23 - 23 * NS, 1.0)]
    );
}

#[test]
fn first_batch_is_never_cut() {
    let p = policy(vec![item(MIN, None)], 0, vec![Method::Count]);
    let batch: Vec<(i64, f64)> = (0..100).map(|i| (BASE + i * MIN, 1.0)).collect();
    let u = apply_measures(None, &p, &mut to_measures(&batch)).unwrap();
    assert_eq!(u.aggregates[0].serie.len(), 100);
    // ...but the raw buffer is truncated afterwards to the current block.
    assert_eq!(u.raw.timestamps, vec![BASE + 99 * MIN]);
}

#[test]
fn rate_methods_keep_one_more_block() {
    let p = policy(
        vec![item(MIN, None)],
        0,
        vec![Method::Rate(BaseMethod::Mean)],
    );
    assert_eq!(raw_back_window(&p), 1);
    let u = apply_measures(
        None,
        &p,
        &mut to_measures(&[(BASE + 30 * NS, 1.0), (BASE + 90 * NS, 4.0)]),
    )
    .unwrap();
    assert_eq!(u.raw.back_window, 1);
    assert_eq!(u.raw.timestamps.len(), 2);
    // The new point of the next minute diffs against the previous one.
    let u2 = apply_measures(
        Some(u.raw),
        &p,
        &mut to_measures(&[(BASE + 150 * NS, 10.0)]),
    )
    .unwrap();
    assert_eq!(pairs(&u2.aggregates[0].serie), vec![(BASE + 120 * NS, 6.0)]);
    assert_eq!(u2.raw.timestamps, vec![BASE + 90 * NS, BASE + 150 * NS]);
}

fn floor(t: i64, g: i64) -> i64 {
    t.div_euclid(g) * g
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn late_points_beyond_back_window_are_dropped(
        first in prop::collection::vec((0i64..3600, -9i32..9), 1..40),
        second in prop::collection::vec((0i64..3600, -9i32..9), 1..40),
        back_window in 0u64..4,
        block_min in 1i64..6,
        rate in any::<bool>(),
    ) {
        let block = block_min * MIN;
        let methods = if rate { vec![Method::Sum, Method::Rate(BaseMethod::Sum)] } else { vec![Method::Sum] };
        let p = policy(vec![item(MIN, None), item(block, None)], back_window, methods);
        let bw = back_window + u64::from(rate);
        let to_batch = |v: &[(i64, i32)]| -> Vec<(i64, f64)> {
            v.iter().map(|&(t, x)| (BASE + t * NS, f64::from(x))).collect()
        };
        let b1 = to_batch(&first);
        let b2 = to_batch(&second);

        let u1 = apply_measures(None, &p, &mut to_measures(&b1)).unwrap();
        let last1 = b1.iter().map(|p| p.0).max().unwrap();
        let cutoff = floor(last1, block) - bw as i64 * block;
        prop_assert_eq!(u1.raw.first_block_timestamp(), Some(cutoff));
        prop_assert!(u1.raw.timestamps.iter().all(|&t| t >= cutoff));

        // Model of the buffer after the second batch.
        let mut model: BTreeMap<i64, f64> = u1.raw.timestamps.iter().copied().zip(u1.raw.values.iter().copied()).collect();
        let mut in_batch: BTreeMap<i64, f64> = BTreeMap::new();
        for &(t, v) in b2.iter().filter(|p| p.0 >= cutoff) {
            let e = in_batch.entry(t).or_insert(v);
            if v < *e { *e = v; }
        }
        model.extend(in_batch);
        // Upstream's start of the recomputation: the refused points count.
        let oldest_measure = b2.iter().map(|p| p.0).min().unwrap();
        let first_changed = (*model.keys().next().unwrap()).max(oldest_measure);

        let u2 = apply_measures(Some(u1.raw.clone()), &p, &mut to_measures(&b2)).unwrap();
        let last2 = *model.keys().last().unwrap();
        let cutoff2 = floor(last2, block) - bw as i64 * block;
        let kept: Vec<(i64, f64)> = model.iter().filter(|p| *p.0 >= cutoff2).map(|(&t, &v)| (t, v)).collect();
        prop_assert_eq!(pairs_raw(&u2.raw), kept);
        // Every recomputed series starts at that point's bucket.
        for agg in &u2.aggregates {
            prop_assert_eq!(agg.serie.timestamps[0] >= floor(first_changed, agg.granularity), true);
            if !agg.method.is_rate() {
                prop_assert_eq!(agg.serie.timestamps[0], floor(first_changed, agg.granularity));
            }
        }
    }
}

fn pairs_raw(r: &BoundTimeSerie) -> Vec<(i64, f64)> {
    r.timestamps
        .iter()
        .copied()
        .zip(r.values.iter().copied())
        .collect()
}
