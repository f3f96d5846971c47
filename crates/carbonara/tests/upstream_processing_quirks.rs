//! Where upstream's processing is not the mathematically tidy one, we compute
//! what upstream computes, to the last digit: these cases were found by
//! playing the same measures against upstream 4.7.1
//! (`scripts/compare-with-upstream.py`, docs/upstream-comparison.md).

mod support_process;

use carbonara::measure::measures as to_measures;
use carbonara::method::BaseMethod;
use carbonara::process::apply_measures;
use carbonara::{BoundTimeSerie, Method};
use support_process::*;

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200 * NS;

fn process(
    raw: Option<BoundTimeSerie>,
    p: &carbonara::ArchivePolicy,
    batch: &[(i64, f64)],
) -> carbonara::process::MetricUpdate {
    apply_measures(raw, p, &mut to_measures(batch)).expect("an update")
}

fn series_of(u: &carbonara::process::MetricUpdate, m: Method, g: i64) -> Vec<(i64, f64)> {
    u.aggregates
        .iter()
        .find(|a| a.method == m && a.granularity == g)
        .map(|a| pairs(&a.serie))
        .unwrap_or_default()
}

#[test]
fn percentile_position_counts_from_the_start_of_the_grouped_points() {
    // The second bucket starts at index 3 of the points grouped: the
    // position 3 + 1 × 0.95 rounds differently from 0.95 alone.
    let p = policy(vec![item(5 * NS, None)], 0, vec![Method::Pct(95)]);
    let u = process(
        None,
        &p,
        &[
            (T0, 1.0),
            (T0 + NS, 2.0),
            (T0 + 2 * NS, 3.0),
            (T0 + 5 * NS, 0.0),
            (T0 + 6 * NS, 1e12),
        ],
    );
    assert_eq!(
        series_of(&u, Method::Pct(95), 5 * NS),
        vec![(T0, 2.9), (T0 + 5 * NS, 950000000000.0001)]
    );
}

#[test]
fn rate_diff_across_a_gap_longer_than_the_granularity_is_lost_between_batches() {
    let rate_mean = Method::Rate(BaseMethod::Mean);
    let p = policy(vec![item(5 * NS, None)], 0, vec![rate_mean]);
    let first = process(None, &p, &[(T0 + NS, 1.0)]);
    let second = process(
        Some(first.raw),
        &p,
        &[(T0 + 21 * NS, 5.0), (T0 + 22 * NS, 7.0)],
    );
    // Only 7 - 5: the point at :01 is more than one granularity before :20.
    assert_eq!(
        series_of(&second, rate_mean, 5 * NS),
        vec![(T0 + 20 * NS, 2.0)]
    );

    // In one batch, 5 - 1 counts too.
    let once = process(
        None,
        &p,
        &[(T0 + NS, 1.0), (T0 + 21 * NS, 5.0), (T0 + 22 * NS, 7.0)],
    );
    assert_eq!(
        series_of(&once, rate_mean, 5 * NS),
        vec![(T0 + 20 * NS, 3.0)]
    );

    // Within one granularity of the bucket, the previous batch's point is used.
    let first = process(None, &p, &[(T0 + 16 * NS, 1.0)]);
    let second = process(Some(first.raw), &p, &[(T0 + 21 * NS, 5.0)]);
    assert_eq!(
        series_of(&second, rate_mean, 5 * NS),
        vec![(T0 + 20 * NS, 4.0)]
    );
}

#[test]
fn a_batch_refused_by_the_back_window_recomputes_from_the_buffer() {
    // 2020-02-17, a 10 s × 63 and 300 s × 109 policy without back window.
    let day = 1_581_897_600 * NS;
    let at = |h: i64, m: i64, s: i64| day + (h * 3600 + m * 60 + s) * NS;
    let rate_std = Method::Rate(BaseMethod::Std);
    let p = policy(
        vec![
            item(300 * NS, Some(300 * 109 * NS)),
            item(10 * NS, Some(630 * NS)),
        ],
        0,
        vec![
            Method::Count,
            Method::Last,
            Method::Median,
            Method::Rate(BaseMethod::Count),
            rate_std,
        ],
    );
    let first = process(
        None,
        &p,
        &[
            (at(5, 52, 40), -267873178297.0),
            (at(5, 52, 48), -18.0),
            (at(5, 52, 10), -191.0),
            (at(1, 9, 20), -40.2),
        ],
    );
    let bucket = at(5, 50, 0);
    let before = series_of(&first, rate_std, 300 * NS);
    assert_eq!(before.last(), Some(&(bucket, 267873178192.5)));

    // 03:05:03 is older than the buffer's first block: refused, yet the
    // buckets from the buffer's first point are recomputed from what the
    // buffer still holds, without the diff against the 01:09:20 point.
    let second = process(
        Some(first.raw.clone()),
        &p,
        &[(at(3, 5, 3), -488872658682.0)],
    );
    assert_eq!(second.raw, first.raw);
    let after = series_of(&second, rate_std, 300 * NS);
    assert_eq!(after, vec![(bucket, 378829881595.8183)]);
}
