//! Duplicate timestamps: within a batch the smallest value wins (upstream sorts
//! by (timestamp, value) and keeps the first); a later batch replaces a stored
//! value at the same timestamp while it is inside the back window.

mod support_process;

use std::collections::BTreeMap;

use carbonara::BoundTimeSerie;
use carbonara::Method;
use carbonara::measure::measures as to_measures;
use carbonara::process::apply_measures;
use proptest::prelude::*;
use support_process::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn smallest_value_wins_within_a_batch(
        pts in prop::collection::vec((0i64..20, -50i32..50), 1..80),
    ) {
        let batch: Vec<(i64, f64)> = pts.iter().map(|&(t, v)| (BASE + t * NS, f64::from(v))).collect();
        let mut expected: BTreeMap<i64, f64> = BTreeMap::new();
        for &(t, v) in &batch {
            let e = expected.entry(t).or_insert(v);
            if v < *e { *e = v; }
        }
        let mut raw = BoundTimeSerie::new(60 * NS, 0);
        let oldest = raw.merge(&mut to_measures(&batch));
        prop_assert_eq!(oldest, expected.keys().next().copied());
        prop_assert_eq!(raw.timestamps, expected.keys().copied().collect::<Vec<_>>());
        prop_assert_eq!(raw.values, expected.values().copied().collect::<Vec<_>>());
    }

    #[test]
    fn later_batch_replaces_stored_values(
        first in prop::collection::vec((0i64..30, -50i32..50), 1..40),
        second in prop::collection::vec((0i64..30, -50i32..50), 1..40),
    ) {
        // A back window covering everything: the second batch only overrides.
        let p = policy(vec![item(60 * NS, None)], 5, vec![Method::Sum, Method::Count]);
        let to_batch = |v: &[(i64, i32)]| -> Vec<(i64, f64)> {
            v.iter().map(|&(t, x)| (BASE + t * NS, f64::from(x))).collect()
        };
        let mut model: BTreeMap<i64, f64> = BTreeMap::new();
        let min_per_ts = |b: &[(i64, f64)]| {
            let mut m: BTreeMap<i64, f64> = BTreeMap::new();
            for &(t, v) in b {
                let e = m.entry(t).or_insert(v);
                if v < *e { *e = v; }
            }
            m
        };
        let b1 = to_batch(&first);
        let b2 = to_batch(&second);
        model.extend(min_per_ts(&b1));
        model.extend(min_per_ts(&b2));

        let u1 = apply_measures(None, &p, &mut to_measures(&b1)).unwrap();
        let mut store = Store::default();
        store.apply(&u1);
        let u2 = apply_measures(Some(u1.raw), &p, &mut to_measures(&b2)).unwrap();
        store.apply(&u2);
        prop_assert_eq!(&u2.raw.timestamps, &model.keys().copied().collect::<Vec<_>>());
        prop_assert_eq!(&u2.raw.values, &model.values().copied().collect::<Vec<_>>());
        let pts: Vec<(i64, f64)> = model.into_iter().collect();
        prop_assert_eq!(store.serie(Method::Sum, 60 * NS), reference_method(&pts, 60 * NS, Method::Sum));
        prop_assert_eq!(store.serie(Method::Count, 60 * NS), reference_method(&pts, 60 * NS, Method::Count));
    }
}

#[test]
fn duplicate_example() {
    let mut raw = BoundTimeSerie::new(NS, 0);
    let batch = [(BASE, 3.0), (BASE, 1.0), (BASE, 2.0)];
    assert_eq!(raw.merge(&mut to_measures(&batch)), Some(BASE));
    assert_eq!(raw.values, vec![1.0]);
    let batch = [(BASE, 7.0)];
    assert_eq!(raw.merge(&mut to_measures(&batch)), Some(BASE));
    assert_eq!(raw.values, vec![7.0]);
}
