//! Feeding a series in one batch or in any chunking/arrival order gives the same
//! final aggregates, as long as the back window covers the whole series.
//!
//! Two families only almost obey this, as upstream's: `Npct` (the rounding of
//! the interpolation position depends on where the recomputation started, so
//! the last digits may differ) and `rate:` (a diff across a gap longer than one
//! granularity between two batches is lost). See `upstream_processing_quirks.rs`.

mod support_process;

use std::collections::BTreeMap;

use carbonara::measure::measures as to_measures;
use carbonara::process::apply_measures;
use carbonara::{BoundTimeSerie, Timestamp};
use proptest::prelude::*;
use support_process::*;

/// Unique timestamps within 30 minutes, small integer-ish values.
fn series() -> impl Strategy<Value = Vec<(Timestamp, f64)>> {
    prop::collection::vec((0i64..1800 * NS, -1000i32..1000, 0u8..4), 1..150).prop_map(|pts| {
        let mut m = BTreeMap::new();
        for (off, v, frac) in pts {
            // Round some offsets to whole seconds so that buckets get several points.
            let off = if frac == 0 {
                off
            } else {
                off / (NS * i64::from(frac)) * NS * i64::from(frac)
            };
            m.entry(BASE + off).or_insert(f64::from(v) / 4.0);
        }
        m.into_iter().collect()
    })
}

fn arrival() -> impl Strategy<Value = (Vec<(Timestamp, f64)>, Vec<usize>)> {
    series().prop_flat_map(|s| {
        let n = s.len();
        (
            Just(s).prop_shuffle(),
            prop::collection::vec(1usize..=n.max(1), 1..8),
        )
    })
}

fn run(
    chunks: &[Vec<(Timestamp, f64)>],
    p: &carbonara::ArchivePolicy,
) -> (Store, Option<BoundTimeSerie>) {
    let mut store = Store::default();
    let mut raw = None;
    for chunk in chunks {
        let batch = chunk.clone();
        if let Some(update) = apply_measures(raw.clone(), p, &mut to_measures(&batch)) {
            store.apply(&update);
            raw = Some(update.raw);
        }
    }
    (store, raw)
}

/// Same timestamps, values equal to 1e-9 relative.
fn close(a: &[(Timestamp, f64)], b: &[(Timestamp, f64)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.0 == y.0 && (x.1 - y.1).abs() <= 1e-9 * x.1.abs().max(y.1.abs()).max(1.0)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn chunked_arrival_equals_one_batch((shuffled, sizes) in arrival()) {
        let grans = [NS, 10 * NS, 60 * NS, 300 * NS];
        let p = policy(grans.iter().map(|&g| item(g, None)).collect(), 40, all_methods());

        let mut sorted = shuffled.clone();
        sorted.sort_by_key(|p| p.0);
        let (one, raw_one) = run(std::slice::from_ref(&shuffled), &p);

        let mut chunks = Vec::new();
        let mut rest = &shuffled[..];
        let mut k = 0;
        while !rest.is_empty() {
            let n = sizes[k % sizes.len()].min(rest.len());
            chunks.push(rest[..n].to_vec());
            rest = &rest[n..];
            k += 1;
        }
        let (many, raw_many) = run(&chunks, &p);
        prop_assert_eq!(raw_one, raw_many);

        for &g in &grans {
            for &m in &p.aggregation_methods {
                let a = one.serie(m, g);
                let r = reference_method(&sorted, g, m);
                prop_assert!(same_bits(&a, &r), "{:?} g={} got={:?} reference={:?}", m, g, a, r);
                if m.is_rate() {
                    continue;
                }
                let b = many.serie(m, g);
                if matches!(m, carbonara::Method::Pct(_)) {
                    prop_assert!(close(&a, &b), "{:?} g={} one={:?} many={:?}", m, g, a, b);
                } else {
                    prop_assert!(same_bits(&a, &b), "{:?} g={} one={:?} many={:?}", m, g, a, b);
                }
            }
        }
    }

    /// With a limited timespan, the visible points (after the read-time
    /// truncation) do not depend on the chunking either.
    #[test]
    fn chunked_arrival_with_retention((shuffled, sizes) in arrival()) {
        let items = vec![item(10 * NS, Some(600 * NS)), item(60 * NS, Some(1200 * NS))];
        let p = policy(items, 40, vec![carbonara::Method::Mean, carbonara::Method::Max]);
        let (one, _) = run(std::slice::from_ref(&shuffled), &p);
        let chunks: Vec<Vec<_>> = shuffled.chunks(sizes[0]).map(|c| c.to_vec()).collect();
        let (many, _) = run(&chunks, &p);
        for it in &p.definition {
            for &m in &p.aggregation_methods {
                let cut = |s: Vec<(Timestamp, f64)>| -> Vec<(Timestamp, f64)> {
                    let Some(last) = s.last().map(|p| p.0) else { return s };
                    let oldest = last - it.timespan.unwrap();
                    s.into_iter().filter(|p| p.0 > oldest).collect()
                };
                let a = cut(one.serie(m, it.granularity));
                let b = cut(many.serie(m, it.granularity));
                prop_assert!(same_bits(&a, &b), "{:?} g={} one={:?} many={:?}", m, it.granularity, a, b);
            }
        }
    }
}
