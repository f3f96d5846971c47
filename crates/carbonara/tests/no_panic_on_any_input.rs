//! No input makes the engine panic: extreme timestamps, odd granularities,
//! NaN/infinite values, mismatched columns, zero block sizes.

mod support_process;

use carbonara::aggregate::{aggregate, derive};
use carbonara::aggregated::{merge_split, split_is_expired};
use carbonara::measure::measures as to_measures;
use carbonara::method::BaseMethod;
use carbonara::process::apply_measures;
use carbonara::{AggregatedTimeSerie, BoundTimeSerie, Method, SplitKey};
use proptest::prelude::*;
use support_process::*;

fn any_ts() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0i64),
        any::<i64>(),
        (-5i64..5)
    ]
}

fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::MAX),
        Just(-0.0)
    ]
}

fn any_method() -> impl Strategy<Value = Method> {
    let base = prop_oneof![
        Just(BaseMethod::Mean),
        Just(BaseMethod::Sum),
        Just(BaseMethod::Last),
        Just(BaseMethod::Max),
        Just(BaseMethod::Min),
        Just(BaseMethod::Std),
        Just(BaseMethod::Median),
        Just(BaseMethod::First),
        Just(BaseMethod::Count),
        any::<u8>().prop_map(BaseMethod::Pct),
    ];
    (base, any::<bool>()).prop_map(|(b, r)| if r { Method::Rate(b) } else { plain(b) })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn nothing_panics(
        pts in prop::collection::vec((any_ts(), any_value()), 0..40),
        pts2 in prop::collection::vec((any_ts(), any_value()), 0..40),
        g in any_ts(),
        g2 in any_ts(),
        back_window in prop_oneof![Just(u64::MAX), 0u64..5],
        methods in prop::collection::vec(any_method(), 0..5),
        cut in any_ts(),
        extra_values in 0usize..3,
    ) {
        let mut sorted = pts.clone();
        sorted.sort_by_key(|p| p.0);
        let ts: Vec<i64> = sorted.iter().map(|p| p.0).collect();
        let mut vals: Vec<f64> = sorted.iter().map(|p| p.1).collect();
        vals.extend(std::iter::repeat_n(1.0, extra_values));
        for m in &methods {
            if let Method::Rate(b) = m {
                let _ = aggregate(&ts, &vals, g, *b);
            }
        }
        let _ = derive(&ts, &vals);
        // Unsorted input must not panic either.
        let uts: Vec<i64> = pts.iter().map(|p| p.0).collect();
        let _ = aggregate(&uts, &vals, g, BaseMethod::Median);

        let serie = AggregatedTimeSerie { granularity: g, timestamps: ts.clone(), values: vals.clone() };
        let _ = serie.split();
        let _ = serie.slice(Some(cut), Some(g2));
        for &m in &methods {
            let _ = serie.resample(g2, m);
        }
        let mut merged = serie.clone();
        merged.merge(&AggregatedTimeSerie { granularity: g, timestamps: uts.clone(), values: vec![] });
        merged.truncate_before(cut);
        let _ = merge_split(Some(serie.clone()), serie.clone(), Some(cut));
        let _ = split_is_expired(SplitKey { start: cut, granularity: g }, g2);
        let _ = SplitKey::of(cut, g).next().span();

        let mut b = BoundTimeSerie::new(g, back_window);
        let _ = b.merge(&mut to_measures(&pts));
        let _ = b.first_block_timestamp();
        let _ = b.merge(&mut to_measures(&pts2));
        b.truncate();

        let p = policy(vec![item(g, None), item(g2, Some(cut))], back_window, methods);
        if let Some(u) = apply_measures(None, &p, &mut to_measures(&pts)) {
            for a in &u.aggregates {
                let _ = a.oldest_point_to_keep();
            }
            let _ = apply_measures(Some(u.raw), &p, &mut to_measures(&pts2));
        }
    }
}
