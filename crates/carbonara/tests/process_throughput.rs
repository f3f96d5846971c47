//! Rough single-core throughput of `apply_measures` (5000 metrics × 60 points,
//! 6 methods, one 5-minute granularity). Prints figures, never asserts timing.
//! Run: cargo test -p carbonara --release --test process_throughput -- --ignored --nocapture

mod support_process;

use std::hint::black_box;
use std::time::Instant;

use carbonara::Measure;
use carbonara::Method;
use carbonara::process::apply_measures;
use support_process::*;

#[test]
#[ignore]
fn apply_measures_throughput() {
    let p = policy(
        vec![item(300 * NS, Some(300 * NS * 8640))],
        0,
        vec![
            Method::Mean,
            Method::Min,
            Method::Max,
            Method::Sum,
            Method::Std,
            Method::Count,
        ],
    );
    const METRICS: usize = 5000;
    const POINTS: i64 = 60;
    let batch = |round: i64, metric: usize| -> Vec<Measure> {
        (0..POINTS)
            .map(|i| {
                let t = BASE + (round * POINTS + i) * 5 * NS + metric as i64 * 1000;
                Measure::new(t, ((metric as i64 * 7 + i * 13) % 101) as f64 * 0.5)
            })
            .collect()
    };
    let mut raws: Vec<Option<carbonara::BoundTimeSerie>> = vec![None; METRICS];
    for round in 0..4 {
        let mut batches: Vec<Vec<Measure>> = (0..METRICS).map(|m| batch(round, m)).collect();
        let start = Instant::now();
        let mut produced = 0usize;
        for (raw, b) in raws.iter_mut().zip(batches.iter_mut()) {
            let update = apply_measures(raw.take(), &p, b).expect("accepted");
            produced += update
                .aggregates
                .iter()
                .map(|a| a.serie.len())
                .sum::<usize>();
            *raw = Some(black_box(update).raw);
        }
        let el = start.elapsed();
        let measures = METRICS as f64 * POINTS as f64;
        println!(
            "round {round} ({}): {:.2} M measures/s ({:.1} µs/metric, {produced} aggregated points)",
            if round == 0 {
                "new metrics"
            } else {
                "existing raw buffers"
            },
            measures / el.as_secs_f64() / 1e6,
            el.as_secs_f64() * 1e6 / METRICS as f64
        );
    }
}
