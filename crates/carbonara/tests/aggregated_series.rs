//! Aggregated series: splits, merge (newer wins), strict retention, slicing,
//! resampling and the split store helpers.

mod support_process;

use std::collections::BTreeMap;

use carbonara::aggregate::aggregate;
use carbonara::aggregated::{merge_split, split_is_expired};
use carbonara::method::BaseMethod;
use carbonara::{AggregatedTimeSerie, Method, POINTS_PER_SPLIT, SplitKey};
use proptest::prelude::*;
use support_process::*;

fn serie(g: i64) -> impl Strategy<Value = AggregatedTimeSerie> {
    prop::collection::btree_map(0i64..20_000, -100i32..100, 0..200).prop_map(move |m| {
        AggregatedTimeSerie {
            granularity: g,
            timestamps: m.keys().map(|k| BASE + k * g).collect(),
            values: m.values().map(|&v| f64::from(v)).collect(),
        }
    })
}

fn as_map(s: &AggregatedTimeSerie) -> BTreeMap<i64, f64> {
    pairs(s).into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn split_partitions_by_key(s in serie(NS)) {
        let parts = s.split();
        let keys: Vec<SplitKey> = parts.iter().map(|p| p.0).collect();
        prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let mut all = Vec::new();
        for (k, p) in &parts {
            prop_assert!(!p.is_empty());
            prop_assert_eq!(k.span(), NS * POINTS_PER_SPLIT);
            prop_assert!(p.timestamps.iter().all(|&t| SplitKey::of(t, NS) == *k));
            all.extend(pairs(p));
        }
        prop_assert_eq!(all, pairs(&s));
    }

    #[test]
    fn merge_newer_wins(a in serie(NS), b in serie(NS)) {
        let mut m = a.clone();
        m.merge(&b);
        let mut expected = as_map(&a);
        expected.extend(as_map(&b));
        prop_assert_eq!(pairs(&m), expected.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn truncate_is_strict(s in serie(NS), k in 0i64..20_000) {
        let oldest = BASE + k * NS;
        let mut t = s.clone();
        t.truncate_before(oldest);
        let expected: Vec<_> = pairs(&s).into_iter().filter(|p| p.0 > oldest).collect();
        prop_assert_eq!(pairs(&t), expected);
    }

    #[test]
    fn slice_floors_start(s in serie(10 * NS), a in proptest::option::of(0i64..200_000), b in proptest::option::of(0i64..200_000)) {
        let start = a.map(|x| BASE + x * NS);
        let stop = b.map(|x| BASE + x * NS);
        let got = s.slice(start, stop);
        let expected: Vec<_> = pairs(&s)
            .into_iter()
            .filter(|p| start.is_none_or(|st| p.0 >= st.div_euclid(10 * NS) * 10 * NS))
            .filter(|p| stop.is_none_or(|sp| p.0 < sp))
            .collect();
        prop_assert_eq!(pairs(&got), expected);
    }

    #[test]
    fn resample_regroups_points(s in serie(NS), g in prop::sample::select(vec![5 * NS, 60 * NS, 3600 * NS])) {
        for b in base_methods() {
            let got = s.resample(g, plain(b));
            prop_assert_eq!(got.granularity, g);
            prop_assert!(same_bits(&pairs(&got), &reference_aggregate(&pairs(&s), g, b)));
            let rate = s.resample(g, Method::Rate(b));
            prop_assert!(same_bits(&pairs(&rate), &reference_aggregate(&reference_derive(&pairs(&s)), g, b)));
        }
    }

    #[test]
    fn merge_split_keeps_stored_points_and_truncates_new_ones(a in serie(NS), b in serie(NS), k in proptest::option::of(0i64..20_000)) {
        let oldest = k.map(|k| BASE + k * NS);
        let stored = if a.is_empty() { None } else { Some(a.clone()) };
        let got = merge_split(stored, b.clone(), oldest);
        let mut expected = as_map(&a);
        expected.extend(as_map(&b).into_iter().filter(|p| oldest.is_none_or(|o| p.0 > o)));
        let expected: Vec<_> = expected.into_iter().collect();
        prop_assert_eq!(got.granularity, NS);
        prop_assert_eq!(pairs(&got), expected);
    }

    #[test]
    fn expired_splits_hold_only_old_points(start in 0i64..100, oldest in 0i64..400_000) {
        let g = NS;
        let key = SplitKey { start: BASE + start * g * POINTS_PER_SPLIT, granularity: g };
        let oldest = BASE + oldest * g;
        if split_is_expired(key, oldest) {
            // Its whole span is at or before the oldest point to keep.
            prop_assert!(key.next().start <= oldest);
        } else {
            // Only the split holding `oldest` or later ones are kept.
            prop_assert!(key.start >= SplitKey::of(oldest, g).start);
        }
    }
}

#[test]
fn resample_mean_of_means() {
    let s = AggregatedTimeSerie {
        granularity: 60 * NS,
        timestamps: vec![BASE, BASE + 60 * NS, BASE + 120 * NS, BASE + 300 * NS],
        values: vec![1.0, 2.0, 6.0, 10.0],
    };
    let r = s.resample(300 * NS, Method::Mean);
    assert_eq!(pairs(&r), vec![(BASE, 3.0), (BASE + 300 * NS, 10.0)]);
    assert_eq!(
        r,
        aggregate(&s.timestamps, &s.values, 300 * NS, BaseMethod::Mean)
    );
}

#[test]
fn split_is_expired_matches_upstream_key_rule() {
    let g = 60 * NS;
    let span = g * POINTS_PER_SPLIT;
    let k0 = SplitKey::of(BASE, g);
    // The split holding the oldest point is kept even when it ends before it.
    assert!(!split_is_expired(k0, k0.start + span - 1));
    assert!(split_is_expired(k0, k0.start + span));
    assert!(!split_is_expired(k0.next(), k0.start + span));
}
