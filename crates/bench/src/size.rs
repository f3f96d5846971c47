//! Bytes per stored point on a realistic mix of metrics.
//!
//! What it measures: after metricd processed one day of 10-second samples of
//! M metrics (default 100) with a `medium`-like policy (1 minute over a day,
//! 1 hour over 30 days, the 6 default methods), the size of every encoded split
//! in the aggregate store divided by the number of aggregated points they hold
//! (the primary figure: what the split codec achieves). Also the size of the
//! whole redb file (not compacted: b-tree pages, free pages and the raw buffers
//! included) per point, for comparison with databases measured by disk usage.
//!
//! The mix, in equal parts, is what a host agent reports:
//! - gauges with 1 decimal (temperatures: a slow random walk),
//! - gauges with 2 decimals (CPU percentages: noisy, 0–100),
//! - counters (bytes sent: a monotonically increasing integer),
//! - integer gauges (memory used: multiples of 4 KiB, changing slowly),
//! - near-constant values (a status that is 1, rarely 0).
//!
//! Each method yields its own kind of series: `count` is constant, `min`/`max`
//! keep the input's decimals, `mean` and `std` are arbitrary doubles.

use super::deployment::open_embedded;
use super::processing::{create_metrics, process_all_sacks};
use super::report::{Figure, Report};
use crate::BoxError;
use carbonara::{ArchivePolicy, ArchivePolicyItem, Measure, Method, NS_PER_SEC, codec};
use gnocchi_engine::{Engine, EngineConfig};
use gnocchi_storage::SplitRef;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Settings {
    pub metrics: usize,
    pub workers: usize,
}

const SAMPLE: i64 = 10;

/// The kinds of metric of the mix, by `index % 5` (see [`samples`]).
const KINDS: [&str; 5] = ["temperature", "cpu%", "counter", "memory", "status"];
const DAY: i64 = 86_400;

fn policy() -> ArchivePolicy {
    let item = |g: i64, timespan: i64| ArchivePolicyItem {
        granularity: g * NS_PER_SEC,
        points: Some((timespan / g) as u64),
        timespan: Some(timespan * NS_PER_SEC),
    };
    let mut methods = carbonara::policy::default_aggregation_methods();
    methods.sort_unstable();
    ArchivePolicy {
        name: "bench-size".into(),
        back_window: 0,
        definition: vec![item(60, DAY), item(3600, 30 * DAY)],
        aggregation_methods: methods,
    }
}

/// splitmix64: a tiny deterministic generator, so every run stores the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

/// One day of samples of metric `k` of the mix, as (ns timestamp, value).
fn samples(k: usize, t0: i64) -> Vec<Measure> {
    let mut rng = Rng(k as u64 + 1);
    let n = (DAY / SAMPLE) as usize;
    let mut out = Vec::with_capacity(n);
    let mut level = match k % 5 {
        0 => 20.0 + 10.0 * rng.unit(),
        2 => (rng.next() % 1_000_000_000) as f64,
        3 => 4096.0 * (100_000 + rng.next() % 400_000) as f64,
        _ => 0.0,
    };
    for i in 0..n {
        let v = match k % 5 {
            // Temperature: slow random walk, 1 decimal.
            0 => {
                level += (rng.unit() - 0.5) * 0.4;
                round(level, 1)
            }
            // CPU %: noisy around a per-metric load, 2 decimals.
            1 => round((30.0 + 40.0 * rng.unit() * rng.unit()).min(100.0), 2),
            // Counter: bytes sent, increasing by a bursty amount.
            2 => {
                level += (rng.next() % 50_000) as f64;
                level
            }
            // Memory used: 4 KiB pages, changing now and then.
            3 => {
                if rng.next().is_multiple_of(10) {
                    level += 4096.0 * ((rng.next() % 2001) as f64 - 1000.0);
                }
                level
            }
            // Status: 1, rarely 0.
            _ => {
                if rng.next().is_multiple_of(1000) {
                    0.0
                } else {
                    1.0
                }
            }
        };
        out.push(Measure::new(t0 + i as i64 * SAMPLE * NS_PER_SEC, v));
    }
    out
}

pub async fn run(s: &Settings, report: &mut Report) -> Result<(), BoxError> {
    let dir = tempfile::Builder::new()
        .prefix("gnocchi-bench-size-")
        .tempdir()?;
    let b = open_embedded(dir.path(), false).await?;
    let policy = policy();
    b.indexer.create_archive_policy(&policy).await?;
    let n = s.metrics.max(1);
    eprintln!("size: {n} metrics x 1 day of {SAMPLE} s samples...");
    let ids = create_metrics(&b, &policy.name, n, 8).await?;
    let t0 = super::ingest::EPOCH_2024 * NS_PER_SEC;
    let mut queued = 0;
    for (chunk_no, chunk) in ids.chunks(20).enumerate() {
        let batch: Vec<(Uuid, Vec<Measure>)> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, samples(chunk_no * 20 + i, t0)))
            .collect();
        queued += batch.iter().map(|(_, m)| m.len()).sum::<usize>();
        b.incoming.add_measures(batch).await?;
    }
    let engine = Engine::new(
        b.indexer.clone(),
        b.incoming.clone(),
        b.aggregates.clone(),
        EngineConfig {
            workers: s.workers.max(1),
            ..EngineConfig::default()
        },
    );
    let start = Instant::now();
    let processed = process_all_sacks(&engine, s.workers).await?;
    let took = start.elapsed();
    if processed != queued {
        return Err(format!("size: {processed} measures processed, {queued} queued").into());
    }

    // Every split of every series, read back through the Aggregates trait.
    let mut series: Vec<(Uuid, Method, i64)> = Vec::new();
    for id in &ids {
        for m in &policy.aggregation_methods {
            for d in &policy.definition {
                series.push((*id, *m, d.granularity));
            }
        }
    }
    let keys = b.aggregates.list_split_keys(&series).await?;
    let refs: Vec<SplitRef> = series
        .iter()
        .zip(&keys)
        .flat_map(|((metric, method, _), keys)| {
            keys.iter().map(move |key| SplitRef {
                metric: *metric,
                method: *method,
                key: *key,
            })
        })
        .collect();
    let splits = b.aggregates.get_splits(&refs).await?;
    let (mut bytes, mut points) = (0usize, 0usize);
    // (bytes, points) per method and per kind of metric, to show where the bytes go.
    let mut by_method: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut by_kind = [(0usize, 0usize); 5];
    let kind_of: HashMap<Uuid, usize> =
        ids.iter().enumerate().map(|(k, id)| (*id, k % 5)).collect();
    for (r, split) in refs.iter().zip(splits) {
        let split = split.ok_or("size: a listed split is missing")?;
        let n = codec::decode_split(r.key, &split)?.len();
        bytes += split.len();
        points += n;
        let m = by_method.entry(r.method.to_string()).or_default();
        m.0 += split.len();
        m.1 += n;
        let k = &mut by_kind[kind_of[&r.metric]];
        k.0 += split.len();
        k.1 += n;
    }
    let ratio = |(b, p): (usize, usize)| b as f64 / p.max(1) as f64;
    let methods: Vec<String> = by_method
        .iter()
        .map(|(m, bp)| format!("{m} {:.2}", ratio(*bp)))
        .collect();
    let kinds: Vec<String> = KINDS
        .iter()
        .zip(by_kind)
        .map(|(k, bp)| format!("{k} {:.2}", ratio(bp)))
        .collect();
    let raw: usize = b
        .aggregates
        .get_raw(&ids)
        .await?
        .iter()
        .map(|r| r.as_ref().map_or(0, Vec::len))
        .sum();
    let file = std::fs::metadata(dir.path().join("aggregates.redb"))?.len();
    if points == 0 {
        return Err("size: no point stored".into());
    }
    report.push(
        Figure::new(
            "bytes_per_point_splits",
            "bytes per stored point (split payloads)",
            bytes as f64 / points as f64,
            "bytes",
        )
        .aim("<= 1.0")
        .note(format!(
            "{bytes} bytes in {} splits for {points} points; {n} metrics, mix of 5 kinds, \
             processed at {:.0} measures/s; by method: {}; by kind: {}",
            refs.len(),
            queued as f64 / took.as_secs_f64(),
            methods.join(", "),
            kinds.join(", ")
        )),
    );
    report.push(
        Figure::new(
            "bytes_per_point_file",
            "bytes per stored point (redb file)",
            file as f64 / points as f64,
            "bytes",
        )
        .note(format!(
            "aggregates.redb: {file} bytes, not compacted, incl. {raw} bytes of raw buffers"
        )),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_deterministic_and_shaped() {
        let a = samples(0, 0);
        assert_eq!(a, samples(0, 0));
        assert_eq!(a.len(), (DAY / SAMPLE) as usize);
        // Temperatures have one decimal.
        assert!(
            a.iter()
                .all(|m| (m.value * 10.0 - (m.value * 10.0).round()).abs() < 1e-6)
        );
        // Counters increase.
        let c = samples(2, 0);
        assert!(c.windows(2).all(|w| w[1].value >= w[0].value));
    }
}
