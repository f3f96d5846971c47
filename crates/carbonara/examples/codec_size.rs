//! Measure the split codec on a deterministic, realistic mix of series.
//!
//! Run: `cargo run --release -p carbonara --example codec_size`
//!
//! Inputs (all deterministic): a CPU % gauge (2 decimals), an integer counter
//! growing irregularly, a temperature (0.1 steps, noisy), a constant, a
//! rarely-toggling boolean and a memory gauge in bytes (multiples of 1 KiB),
//! each sampled every 10 s (collectd-like, 1% of the points missing) and
//! every 60 s (poller-like). They are aggregated as the default `low` and
//! `medium` policies do (5 min; 1 min and 1 h) with mean, min, max, sum, std,
//! count, cut into 3600-point splits and encoded. Full splits and partially
//! filled ones (the current split of a metric: 60 and 720 points, and one
//! with a 6-hour gap) are reported separately, per series kind and per
//! method; the mix is every split weighted by its points.
//!
//! The aggregation here is the example's own (left-to-right sums, mean =
//! sum / count, two-pass sample std), like upstream's per-bucket semantics.

use std::collections::BTreeMap;
use std::time::Instant;

use carbonara::codec::{decode_raw, decode_split, encode_raw, encode_split};
use carbonara::{AggregatedTimeSerie, BoundTimeSerie, NS_PER_SEC, SplitKey};

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
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Roughly normal (sum of uniforms).
    fn normal(&mut self) -> f64 {
        (0..4).map(|_| self.f()).sum::<f64>() - 2.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Cpu,
    Counter,
    Temperature,
    Constant,
    Boolean,
    Memory,
}

const KINDS: [Kind; 6] = [
    Kind::Cpu,
    Kind::Counter,
    Kind::Temperature,
    Kind::Constant,
    Kind::Boolean,
    Kind::Memory,
];

/// Parse-like decimal: the double nearest to `k / 10^d` (what a JSON parser yields).
fn dec(k: i64, d: i32) -> f64 {
    k as f64 / 10f64.powi(d)
}

/// Raw input of one kind: `n` points every `interval` seconds from `start`.
fn generate(
    kind: Kind,
    seed: u64,
    start_s: i64,
    interval_s: i64,
    n: usize,
    drop_some: bool,
) -> (Vec<i64>, Vec<f64>) {
    let mut rng = Rng(seed);
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    let mut cpu = 30.0f64;
    let mut counter: i64 = 1_000_000;
    let mut boolean = 1i64;
    let mut mem: i64 = 3 << 30;
    for i in 0..n {
        let t = start_s + i as i64 * interval_s;
        let v = match kind {
            Kind::Cpu => {
                cpu += rng.normal() * 4.0 + (30.0 - cpu) * 0.02;
                cpu = cpu.clamp(0.0, 100.0);
                dec((cpu * 100.0).round() as i64, 2)
            }
            Kind::Counter => {
                let burst = if rng.f() < 0.05 {
                    (rng.f() * 200_000.0) as i64
                } else {
                    0
                };
                counter += (rng.f() * 3000.0) as i64 * interval_s / 10 + burst;
                counter as f64
            }
            Kind::Temperature => {
                let day = (t % 86400) as f64 / 86400.0 * std::f64::consts::TAU;
                let x = 21.0 + 3.0 * day.sin() + rng.normal() * 0.3;
                dec((x * 10.0).round() as i64, 1)
            }
            Kind::Constant => 1.0,
            Kind::Boolean => {
                if rng.f() < 0.002 {
                    boolean = 1 - boolean;
                }
                boolean as f64
            }
            Kind::Memory => {
                mem += ((rng.normal() * 2000.0) as i64) * 1024;
                mem = mem.clamp(1 << 30, 15 << 30);
                mem as f64
            }
        };
        if drop_some && rng.f() < 0.01 {
            continue;
        }
        ts.push(t * NS_PER_SEC);
        vs.push(v);
    }
    (ts, vs)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Agg {
    Mean,
    Min,
    Max,
    Sum,
    Std,
    Count,
}

const AGGS: [Agg; 6] = [
    Agg::Mean,
    Agg::Min,
    Agg::Max,
    Agg::Sum,
    Agg::Std,
    Agg::Count,
];

fn aggregate(ts: &[i64], vs: &[f64], g: i64, agg: Agg) -> AggregatedTimeSerie {
    let mut out = AggregatedTimeSerie {
        granularity: g,
        timestamps: Vec::new(),
        values: Vec::new(),
    };
    let mut i = 0;
    while i < ts.len() {
        let b = ts[i] - ts[i].rem_euclid(g);
        let mut j = i;
        while j < ts.len() && ts[j] < b + g {
            j += 1;
        }
        let vals = &vs[i..j];
        let n = vals.len();
        let sum = vals.iter().fold(0.0, |a, &v| a + v);
        let v = match agg {
            Agg::Mean => Some(sum / n as f64),
            Agg::Min => Some(vals.iter().copied().fold(f64::INFINITY, f64::min)),
            Agg::Max => Some(vals.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
            Agg::Sum => Some(sum),
            Agg::Count => Some(n as f64),
            Agg::Std => {
                if n < 2 {
                    None
                } else {
                    let mean = sum / n as f64;
                    let ss = vals.iter().fold(0.0, |a, &v| a + (v - mean) * (v - mean));
                    Some((ss / (n - 1) as f64).sqrt())
                }
            }
        };
        if let Some(v) = v {
            out.timestamps.push(b);
            out.values.push(v);
        }
        i = j;
    }
    out
}

/// Cut into splits.
fn splits(serie: &AggregatedTimeSerie) -> Vec<(SplitKey, AggregatedTimeSerie)> {
    let mut out: Vec<(SplitKey, AggregatedTimeSerie)> = Vec::new();
    for (&t, &v) in serie.timestamps.iter().zip(&serie.values) {
        let key = SplitKey::of(t, serie.granularity);
        if out.last().is_none_or(|(k, _)| *k != key) {
            out.push((
                key,
                AggregatedTimeSerie {
                    granularity: serie.granularity,
                    timestamps: Vec::new(),
                    values: Vec::new(),
                },
            ));
        }
        let s = &mut out.last_mut().expect("just pushed").1;
        s.timestamps.push(t);
        s.values.push(v);
    }
    out
}

#[derive(Default, Clone, Copy)]
struct Tally {
    bytes: usize,
    points: usize,
}

impl Tally {
    fn add(&mut self, bytes: usize, points: usize) {
        self.bytes += bytes;
        self.points += points;
    }
    fn bpp(&self) -> f64 {
        if self.points == 0 {
            0.0
        } else {
            self.bytes as f64 / self.points as f64
        }
    }
}

struct Case {
    kind: Kind,
    agg: Agg,
    full: bool,
    key: SplitKey,
    serie: AggregatedTimeSerie,
}

fn main() {
    let granularities = [60 * NS_PER_SEC, 300 * NS_PER_SEC, 3600 * NS_PER_SEC];
    let start_s = 1_700_000_000 - 1_700_000_000 % (3600 * 3600);
    let mut cases: Vec<Case> = Vec::new();
    let mut raws: Vec<(Kind, BoundTimeSerie)> = Vec::new();
    for (ki, &kind) in KINDS.iter().enumerate() {
        for (interval, drop) in [(10i64, true), (60, false)] {
            // One full split of the coarsest granularity (1 h × 3600 = 150 days)
            // plus a partial one; finer granularities get many full splits.
            let n = ((3600 * 3600 + 3600 * 720) / interval) as usize;
            let seed = 1000 + ki as u64 * 10 + interval as u64;
            let (ts, vs) = generate(kind, seed, start_s, interval, n, drop);
            // A raw buffer: one hour of points, timestamps with ms jitter.
            {
                let mut rng = Rng(seed ^ 0xabc);
                let take = (3600 / interval) as usize;
                let rts: Vec<i64> = ts[..take]
                    .iter()
                    .map(|&t| t + (rng.f() * 1000.0) as i64 * 1_000_000)
                    .collect();
                raws.push((
                    kind,
                    BoundTimeSerie {
                        timestamps: rts,
                        values: vs[..take].to_vec(),
                        block_size: 0,
                        back_window: 0,
                    },
                ));
            }
            for &g in &granularities {
                for agg in AGGS {
                    let serie = aggregate(&ts, &vs, g, agg);
                    let all = splits(&serie);
                    // Full splits: at most 4 per (kind, interval, g, agg) to keep the mix balanced.
                    let mut taken = 0;
                    for (key, s) in &all {
                        if s.timestamps.len() >= 3500 && taken < 4 {
                            cases.push(Case {
                                kind,
                                agg,
                                full: true,
                                key: *key,
                                serie: s.clone(),
                            });
                            taken += 1;
                        }
                    }
                    // Partial splits: the first 60 and 720 points of a split,
                    // and one with a 6-hour gap (a host down).
                    if let Some((key, s)) = all.iter().find(|(_, s)| s.timestamps.len() >= 3500) {
                        for len in [60usize, 720] {
                            let part = AggregatedTimeSerie {
                                granularity: g,
                                timestamps: s.timestamps[..len].to_vec(),
                                values: s.values[..len].to_vec(),
                            };
                            cases.push(Case {
                                kind,
                                agg,
                                full: false,
                                key: *key,
                                serie: part,
                            });
                        }
                        let gap = (6 * 3600 * NS_PER_SEC / g).max(1) as usize;
                        let keep: Vec<usize> = (0..720usize.min(s.timestamps.len()))
                            .filter(|&i| !(200..200 + gap).contains(&i))
                            .collect();
                        let part = AggregatedTimeSerie {
                            granularity: g,
                            timestamps: keep.iter().map(|&i| s.timestamps[i]).collect(),
                            values: keep.iter().map(|&i| s.values[i]).collect(),
                        };
                        cases.push(Case {
                            kind,
                            agg,
                            full: false,
                            key: *key,
                            serie: part,
                        });
                    }
                }
            }
        }
    }

    // Sizes (and a round-trip check).
    let mut by_kind_agg: BTreeMap<(Kind, Agg), Tally> = BTreeMap::new();
    let mut by_kind: BTreeMap<Kind, Tally> = BTreeMap::new();
    let mut by_agg_full: BTreeMap<Agg, Tally> = BTreeMap::new();
    let mut by_agg_partial: BTreeMap<Agg, Tally> = BTreeMap::new();
    let (mut full, mut partial, mut all) = (Tally::default(), Tally::default(), Tally::default());
    let mut encoded = Vec::with_capacity(cases.len());
    for c in &cases {
        let bytes = encode_split(c.key, &c.serie);
        let back = decode_split(c.key, &bytes).expect("decodes");
        assert_eq!(back.timestamps, c.serie.timestamps);
        assert!(
            back.values
                .iter()
                .zip(&c.serie.values)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        let (b, p) = (bytes.len(), c.serie.timestamps.len());
        all.add(b, p);
        if c.full {
            full.add(b, p);
            by_kind_agg.entry((c.kind, c.agg)).or_default().add(b, p);
            by_kind.entry(c.kind).or_default().add(b, p);
            by_agg_full.entry(c.agg).or_default().add(b, p);
        } else {
            partial.add(b, p);
            by_agg_partial.entry(c.agg).or_default().add(b, p);
        }
        encoded.push(bytes);
    }

    println!("bytes/point of full splits, per series kind and method (upstream: ~3.5)");
    print!("{:<12}", "kind");
    for agg in AGGS {
        print!("{:>8}", format!("{agg:?}").to_lowercase());
    }
    println!("{:>8}", "all");
    for kind in KINDS {
        print!("{:<12}", format!("{kind:?}").to_lowercase());
        for agg in AGGS {
            print!(
                "{:>8.3}",
                by_kind_agg
                    .get(&(kind, agg))
                    .copied()
                    .unwrap_or_default()
                    .bpp()
            );
        }
        println!("{:>8.3}", by_kind[&kind].bpp());
    }
    print!("{:<12}", "all kinds");
    for agg in AGGS {
        print!("{:>8.3}", by_agg_full[&agg].bpp());
    }
    println!("{:>8.3}", full.bpp());
    print!("{:<12}", "partial");
    for agg in AGGS {
        print!("{:>8.3}", by_agg_partial[&agg].bpp());
    }
    println!("{:>8.3}", partial.bpp());
    let exact =
        [Agg::Min, Agg::Max, Agg::Sum, Agg::Count]
            .iter()
            .fold(Tally::default(), |mut t, a| {
                t.add(by_agg_full[a].bytes, by_agg_full[a].points);
                t
            });
    let inexact = [Agg::Mean, Agg::Std]
        .iter()
        .fold(Tally::default(), |mut t, a| {
            t.add(by_agg_full[a].bytes, by_agg_full[a].points);
            t
        });
    println!();
    println!(
        "full splits: {} points, {:.3} bytes/point",
        full.points,
        full.bpp()
    );
    println!(
        "  min/max/sum/count (decimal-like): {:.3} bytes/point",
        exact.bpp()
    );
    println!(
        "  mean/std (computed doubles):      {:.3} bytes/point",
        inexact.bpp()
    );
    println!(
        "partial splits: {} points, {:.3} bytes/point",
        partial.points,
        partial.bpp()
    );
    println!(
        "MIX (all splits): {} points, {:.3} bytes/point",
        all.points,
        all.bpp()
    );

    // Raw buffers.
    let mut raw_tally = Tally::default();
    print!("raw buffers (1 h, ms-jittered timestamps), bytes/point:");
    for (kind, raw) in &raws {
        let bytes = encode_raw(raw);
        let back = decode_raw(&bytes, 0, 0).expect("raw decodes");
        assert_eq!(back.timestamps, raw.timestamps);
        assert!(
            back.values
                .iter()
                .zip(&raw.values)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        raw_tally.add(bytes.len(), raw.timestamps.len());
        print!(
            " {}={:.2}",
            format!("{kind:?}").to_lowercase(),
            bytes.len() as f64 / raw.timestamps.len() as f64
        );
    }
    println!("; all {:.3}", raw_tally.bpp());

    // Speed.
    let rounds = 5;
    let t0 = Instant::now();
    let mut sink = 0usize;
    for _ in 0..rounds {
        for c in &cases {
            sink += encode_split(c.key, &c.serie).len();
        }
    }
    let enc = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for _ in 0..rounds {
        for (c, b) in cases.iter().zip(&encoded) {
            sink += decode_split(c.key, b).expect("decodes").values.len();
        }
    }
    let decs = t0.elapsed().as_secs_f64();
    let pts = (all.points * rounds) as f64;
    println!(
        "speed: encode {:.1}M points/s, decode {:.1}M points/s ({sink})",
        pts / enc / 1e6,
        pts / decs / 1e6
    );
    type Pick = fn(&Case) -> bool;
    let groups: [(&str, Pick); 4] = [
        ("decimal-like", |c| !matches!(c.agg, Agg::Mean | Agg::Std)),
        ("mean/std", |c| matches!(c.agg, Agg::Mean | Agg::Std)),
        ("partial splits", |c| !c.full),
        ("60-point splits", |c| c.serie.timestamps.len() == 60),
    ];
    for (label, pick) in groups {
        let sel: Vec<usize> = (0..cases.len()).filter(|&i| pick(&cases[i])).collect();
        let p: usize = sel
            .iter()
            .map(|&i| cases[i].serie.timestamps.len())
            .sum::<usize>()
            * rounds;
        let t0 = Instant::now();
        for _ in 0..rounds {
            for &i in &sel {
                sink += encode_split(cases[i].key, &cases[i].serie).len();
            }
        }
        let e = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        for _ in 0..rounds {
            for &i in &sel {
                sink += decode_split(cases[i].key, &encoded[i])
                    .expect("decodes")
                    .values
                    .len();
            }
        }
        let d = t0.elapsed().as_secs_f64();
        println!(
            "  {label}: encode {:.1}M points/s, decode {:.1}M points/s ({sink})",
            p as f64 / e / 1e6,
            p as f64 / d / 1e6
        );
    }
}
