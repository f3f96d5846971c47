//! Upstream's metric-derived.yaml gabbit: points every 10 s, 1-minute buckets,
//! fed in one batch and in two batches.

mod support_process;

use carbonara::Method;
use carbonara::measure::measures as to_measures;
use carbonara::method::BaseMethod;
use carbonara::process::apply_measures;
use support_process::*;

/// 2015-03-06T14:33:00Z
const T0: i64 = 1_425_652_380 * NS;

fn measures() -> Vec<(i64, f64)> {
    let mut m = vec![(T0, 10.0)];
    let vals = [
        13.0, 13.0, 15.0, 18.0, 20.0, 22.0, 26.0, 30.0, 31.0, 37.0, 55.0, 62.0, 100.0, 102.0,
        103.0, 104.0, 110.0,
    ];
    for (i, v) in vals.iter().enumerate() {
        m.push((T0 + 70 * NS + i as i64 * 10 * NS, *v));
    }
    m
}

fn carrot_cake() -> carbonara::ArchivePolicy {
    policy(
        vec![item(60 * NS, None)],
        0,
        vec![
            Method::Rate(BaseMethod::Mean),
            Method::Rate(BaseMethod::Max),
            Method::Rate(BaseMethod::Pct(95)),
            Method::Max,
        ],
    )
}

fn minute(i: i64) -> i64 {
    T0 + i * 60 * NS
}

fn check(store: &Store) {
    let g = 60 * NS;
    assert_eq!(
        store.serie(Method::Rate(BaseMethod::Mean), g),
        vec![
            (minute(1), 2.0),
            (minute(2), 5.833333333333333),
            (minute(3), 9.166666666666666)
        ]
    );
    assert_eq!(
        store.serie(Method::Rate(BaseMethod::Pct(95)), g),
        vec![(minute(1), 3.0), (minute(2), 15.0), (minute(3), 30.25)]
    );
    assert_eq!(
        store.serie(Method::Rate(BaseMethod::Max), g),
        vec![(minute(1), 3.0), (minute(2), 18.0), (minute(3), 38.0)]
    );
    assert_eq!(
        store.serie(Method::Max, g),
        vec![
            (minute(0), 10.0),
            (minute(1), 20.0),
            (minute(2), 55.0),
            (minute(3), 110.0)
        ]
    );
}

#[test]
fn rate_methods_one_batch() {
    let p = carrot_cake();
    let mut store = Store::default();
    let update = apply_measures(None, &p, &mut to_measures(&measures())).expect("accepted");
    store.apply(&update);
    check(&store);
}

#[test]
fn rate_methods_two_batches() {
    let p = carrot_cake();
    let all = measures();
    let mut store = Store::default();
    let first = apply_measures(None, &p, &mut to_measures(&all[..8])).expect("accepted");
    store.apply(&first);
    let second =
        apply_measures(Some(first.raw), &p, &mut to_measures(&all[8..])).expect("accepted");
    store.apply(&second);
    check(&store);
}

#[test]
fn rate_methods_point_by_point() {
    let p = carrot_cake();
    let mut store = Store::default();
    let mut raw = None;
    for m in measures() {
        let update = apply_measures(raw.take(), &p, &mut to_measures(&[m])).expect("accepted");
        store.apply(&update);
        raw = Some(update.raw);
    }
    check(&store);
}
