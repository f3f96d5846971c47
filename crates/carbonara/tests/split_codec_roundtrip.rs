//! Round trips and corruption handling of the split and raw-buffer codec.

use carbonara::codec::{CodecError, decode_raw, decode_split, encode_raw, encode_split};
use carbonara::{AggregatedTimeSerie, BoundTimeSerie, NS_PER_SEC, POINTS_PER_SPLIT, SplitKey};
use proptest::prelude::*;

const N: usize = POINTS_PER_SPLIT as usize;

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn split(key: SplitKey, slots: &[usize], values: &[f64]) -> AggregatedTimeSerie {
    AggregatedTimeSerie {
        granularity: key.granularity,
        timestamps: slots
            .iter()
            .map(|&s| key.start + s as i64 * key.granularity)
            .collect(),
        values: values.to_vec(),
    }
}

fn assert_split_roundtrip(key: SplitKey, serie: &AggregatedTimeSerie) -> Vec<u8> {
    let bytes = encode_split(key, serie);
    let back = decode_split(key, &bytes).expect("valid encoding decodes");
    assert_eq!(back.granularity, key.granularity);
    assert_eq!(back.timestamps, serie.timestamps);
    assert!(same_bits(&back.values, &serie.values), "values differ");
    bytes
}

fn assert_raw_roundtrip(raw: &BoundTimeSerie) -> Vec<u8> {
    let bytes = encode_raw(raw);
    let back = decode_raw(&bytes, raw.block_size, raw.back_window).expect("valid encoding decodes");
    assert_eq!(back.timestamps, raw.timestamps);
    assert!(same_bits(&back.values, &raw.values), "values differ");
    assert_eq!(
        (back.block_size, back.back_window),
        (raw.block_size, raw.back_window)
    );
    bytes
}

/// Special doubles: NaN payloads (quiet, signalling, negative), signed zeros,
/// infinities, subnormals, extremes.
fn special() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(f64::from_bits(0x7ff0_0000_0000_0001)),
        Just(f64::from_bits(0x7ff8_dead_beef_0001)),
        Just(f64::from_bits(0xfff4_0000_0000_0000)),
        Just(0.0),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN_POSITIVE),
        Just(f64::from_bits(1)),
        Just(-f64::from_bits(0x000f_ffff_ffff_ffff)),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::EPSILON),
        Just(0.1 + 0.2),
    ]
}

/// A value of any kind: arbitrary bits, special, decimal, integer.
fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<u64>().prop_map(f64::from_bits),
        2 => special(),
        3 => (-1_000_000i64..1_000_000, 0i32..4).prop_map(|(k, d)| k as f64 / 10f64.powi(d)),
        1 => any::<i64>().prop_map(|k| k as f64),
        1 => any::<f64>(),
    ]
}

/// Series with structure (so that every value mode gets exercised): constant
/// runs, decimal walks, sums/means/standard deviations of decimal buckets,
/// arbitrary values; with some special values sprinkled in.
fn series(len: usize) -> impl Strategy<Value = Vec<f64>> {
    let walk = (any::<u64>(), 0i32..4, 1usize..40).prop_map(move |(seed, d, n)| {
        let mut s = seed | 1;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut x: i64 = (rnd() % 100_000) as i64;
        let kind = rnd() % 5;
        (0..len)
            .map(|_| {
                let k = n + (rnd() % 3) as usize;
                let vals: Vec<f64> = (0..k)
                    .map(|_| {
                        x += (rnd() % 2001) as i64 - 1000;
                        x as f64 / 10f64.powi(d)
                    })
                    .collect();
                let sum = vals.iter().fold(0.0, |a, &v| a + v);
                let mean = sum / k as f64;
                match kind {
                    0 => vals[0],
                    1 => sum,
                    2 => mean,
                    3 => {
                        let ss = vals.iter().fold(0.0, |a, &v| a + (v - mean) * (v - mean));
                        (ss / (k - 1).max(1) as f64).sqrt()
                    }
                    _ => (rnd() % 3) as f64,
                }
            })
            .collect::<Vec<f64>>()
    });
    let arbitrary = prop::collection::vec(any_value(), len);
    let constant = any_value().prop_map(move |v| vec![v; len]);
    (
        prop_oneof![4 => walk, 2 => arbitrary, 1 => constant],
        prop::collection::vec((0..len.max(1), special()), 0..4),
    )
        .prop_map(|(mut v, sprinkle)| {
            for (i, s) in sprinkle {
                if i < v.len() {
                    v[i] = s;
                }
            }
            v
        })
}

/// A split key: granularity of a few common sizes or arbitrary, start aligned.
fn key() -> impl Strategy<Value = SplitKey> {
    let g = prop_oneof![
        Just(NS_PER_SEC),
        Just(60 * NS_PER_SEC),
        Just(300 * NS_PER_SEC),
        Just(3600 * NS_PER_SEC),
        1i64..1_000_000_000_000,
    ];
    (g, any::<u32>()).prop_map(|(g, k)| {
        let span = g * POINTS_PER_SPLIT;
        SplitKey {
            start: (i64::from(k) % (i64::MAX / span / 2)) * span,
            granularity: g,
        }
    })
}

/// A presence pattern: sorted unique slots in `0..3600`.
fn slots() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        // Random subset of any density.
        (0.0f64..1.0, any::<u64>()).prop_map(|(density, seed)| {
            let mut s = seed | 1;
            (0..N)
                .filter(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 11) as f64 / (1u64 << 53) as f64 <= density
                })
                .collect()
        }),
        // A contiguous range (a split being filled, or the first one of a metric).
        (0..N, 0..N).prop_map(|(a, b)| (a.min(b)..=a.max(b)).collect()),
        // Arbitrary small sets.
        prop::collection::btree_set(0..N, 0..50).prop_map(|s| s.into_iter().collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn split_roundtrip_any_presence_and_values(key in key(), slots in slots(), values in series(N)) {
        let serie = split(key, &slots, &values[..slots.len()]);
        assert_split_roundtrip(key, &serie);
    }

    #[test]
    fn split_roundtrip_arbitrary_bits(key in key(), bits in prop::collection::vec(any::<u64>(), 0..=N)) {
        let values: Vec<f64> = bits.iter().map(|&b| f64::from_bits(b)).collect();
        let slots: Vec<usize> = (0..values.len()).collect();
        assert_split_roundtrip(key, &split(key, &slots, &values));
    }

    #[test]
    fn split_roundtrip_special_values(key in key(), values in prop::collection::vec(special(), 1..200)) {
        let slots: Vec<usize> = (0..values.len()).map(|i| i * 7 % N).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let values = &values[..slots.len()];
        assert_split_roundtrip(key, &split(key, &slots, values));
    }

    #[test]
    fn split_roundtrip_off_grid_timestamps(
        key in key(),
        ts in prop::collection::btree_set(any::<i64>(), 1..100),
        values in prop::collection::vec(any_value(), 100),
    ) {
        // Out of contract (not bucket starts of the split): still lossless.
        let timestamps: Vec<i64> = ts.into_iter().collect();
        let values = values[..timestamps.len()].to_vec();
        let serie = AggregatedTimeSerie { granularity: key.granularity, timestamps, values };
        assert_split_roundtrip(key, &serie);
    }

    #[test]
    fn raw_roundtrip_arbitrary(
        ts in prop::collection::btree_set(0i64..=i64::MAX, 0..600),
        values in series(600),
        block_size in 1i64..1_000_000_000_000,
        back_window in any::<u64>(),
    ) {
        let timestamps: Vec<i64> = ts.into_iter().collect();
        let values = values[..timestamps.len()].to_vec();
        assert_raw_roundtrip(&BoundTimeSerie { timestamps, values, block_size, back_window });
    }

    #[test]
    fn raw_roundtrip_regular_with_jitter(
        start in 0i64..2_000_000_000,
        interval in 1i64..3600,
        jitter_ms in 0i64..999,
        n in 1usize..2000,
        values in series(2000),
    ) {
        let timestamps: Vec<i64> = (0..n as i64)
            .map(|i| (start + i * interval) * NS_PER_SEC + (i * 7919 % (jitter_ms + 1)) * 1_000_000)
            .collect();
        assert_raw_roundtrip(&BoundTimeSerie { timestamps, values: values[..n].to_vec(), block_size: 60, back_window: 0 });
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000), key in key()) {
        let _ = decode_split(key, &bytes);
        let _ = decode_raw(&bytes, 1, 0);
        // Same bytes with a valid checksum and version, so that the parser itself is exercised.
        for version in [1u8, 2] {
            let mut b = vec![version];
            b.extend_from_slice(&bytes);
            let crc = crc32fast::hash(&b);
            b.extend_from_slice(&crc.to_le_bytes());
            let _ = decode_split(key, &b);
            let _ = decode_raw(&b, 1, 0);
        }
    }

    #[test]
    fn truncations_and_bit_flips_are_rejected(
        key in key(),
        slots in slots(),
        values in series(N),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let serie = split(key, &slots, &values[..slots.len()]);
        let bytes = encode_split(key, &serie);
        let cut = cut.index(bytes.len());
        prop_assert!(decode_split(key, &bytes[..cut]).is_err());
        let mut flipped = bytes.clone();
        flipped[flip.index(bytes.len())] ^= 1 << bit;
        prop_assert!(decode_split(key, &flipped).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(decode_split(key, &longer).is_err());
    }

    #[test]
    fn mutated_bodies_with_valid_checksum_never_panic(
        key in key(),
        slots in slots(),
        values in series(N),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        // Damage the body, then fix the checksum: the parser must cope (Ok or Err).
        let serie = split(key, &slots, &values[..slots.len()]);
        let bytes = encode_split(key, &serie);
        let mut body = bytes[..bytes.len() - 4].to_vec();
        for (i, b) in &edits {
            let i = i.index(body.len() - 1) + 1;
            body[i] = *b;
        }
        let cut = 1 + cut.index(body.len());
        body.truncate(cut);
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        if let Ok(s) = decode_split(key, &body) {
            prop_assert!(s.timestamps.len() <= N);
            prop_assert_eq!(s.timestamps.len(), s.values.len());
            prop_assert!(s.timestamps.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn mutated_raw_bodies_with_valid_checksum_never_panic(
        ts in prop::collection::btree_set(0i64..=i64::MAX / 2, 1..300),
        values in series(300),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let timestamps: Vec<i64> = ts.into_iter().collect();
        let values = values[..timestamps.len()].to_vec();
        let bytes = encode_raw(&BoundTimeSerie { timestamps, values, block_size: 1, back_window: 0 });
        let mut body = bytes[..bytes.len() - 4].to_vec();
        for (i, b) in &edits {
            let i = i.index(body.len() - 1) + 1;
            body[i] = *b;
        }
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        if let Ok(r) = decode_raw(&body, 1, 0) {
            prop_assert_eq!(r.timestamps.len(), r.values.len());
            prop_assert!(r.timestamps.windows(2).all(|w| w[0] < w[1]));
        }
    }
}

#[test]
fn empty_split() {
    let key = SplitKey {
        start: 0,
        granularity: 60 * NS_PER_SEC,
    };
    let bytes = assert_split_roundtrip(
        key,
        &AggregatedTimeSerie {
            granularity: key.granularity,
            timestamps: vec![],
            values: vec![],
        },
    );
    assert!(bytes.len() <= 6, "{} bytes", bytes.len());
}

#[test]
fn single_point() {
    let key = SplitKey {
        start: 3600 * 60 * NS_PER_SEC,
        granularity: 60 * NS_PER_SEC,
    };
    for v in [
        0.0,
        -0.0,
        42.5,
        f64::NAN,
        f64::INFINITY,
        f64::from_bits(1),
        1e300,
        0.1 + 0.2,
    ] {
        for slot in [0usize, 1, 1799, N - 1] {
            assert_split_roundtrip(key, &split(key, &[slot], &[v]));
        }
    }
}

#[test]
fn full_regular_split_is_tiny() {
    let key = SplitKey {
        start: 0,
        granularity: NS_PER_SEC,
    };
    let slots: Vec<usize> = (0..N).collect();
    // Constant: header + runs + one value.
    let bytes = assert_split_roundtrip(key, &split(key, &slots, &[1.0; N]));
    assert!(bytes.len() < 30, "{} bytes", bytes.len());
    // A counter growing by a constant step: almost free too.
    let values: Vec<f64> = (0..N).map(|i| 1000.0 + 5.0 * i as f64).collect();
    let bytes = assert_split_roundtrip(key, &split(key, &slots, &values));
    assert!(bytes.len() < 100, "{} bytes", bytes.len());
    // Two-decimal gauge: well under 2 bytes per point.
    let values: Vec<f64> = (0..N)
        .map(|i| ((i * 7919) % 10_000) as f64 / 100.0)
        .collect();
    let bytes = assert_split_roundtrip(key, &split(key, &slots, &values));
    assert!(bytes.len() < 2 * N, "{} bytes", bytes.len());
}

#[test]
fn all_3600_special_and_arbitrary() {
    let key = SplitKey {
        start: 0,
        granularity: 300 * NS_PER_SEC,
    };
    let slots: Vec<usize> = (0..N).collect();
    let mut s = 0x1234_5678_9abc_def1u64;
    let values: Vec<f64> = (0..N)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            match i % 7 {
                0 => f64::NAN,
                1 => -0.0,
                2 => f64::from_bits(s),
                3 => f64::from_bits(s & 0x000f_ffff_ffff_ffff),
                _ => (s % 10_000) as f64 / 100.0,
            }
        })
        .collect();
    let bytes = assert_split_roundtrip(key, &split(key, &slots, &values));
    // Never much worse than raw doubles.
    assert!(bytes.len() <= 8 * N + 64, "{} bytes", bytes.len());
}

#[test]
fn means_and_stds_of_decimals_compress() {
    // Means and sample standard deviations of 2-decimal inputs, 6 per bucket,
    // sometimes 5: far below the 8 bytes of a raw double.
    let key = SplitKey {
        start: 0,
        granularity: 60 * NS_PER_SEC,
    };
    let slots: Vec<usize> = (0..N).collect();
    let mut s = 99u64;
    let mut x = 5000i64;
    let (mut means, mut stds) = (Vec::new(), Vec::new());
    for _ in 0..N {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = if s.is_multiple_of(10) { 5 } else { 6 };
        let vals: Vec<f64> = (0..n)
            .map(|j| {
                x = (x + ((s >> (j * 8)) % 401) as i64 - 200).clamp(0, 10_000);
                x as f64 / 100.0
            })
            .collect();
        let sum = vals.iter().fold(0.0, |a, &v| a + v);
        let mean = sum / n as f64;
        let ss = vals.iter().fold(0.0, |a, &v| a + (v - mean) * (v - mean));
        means.push(mean);
        stds.push((ss / (n - 1) as f64).sqrt());
    }
    let b = assert_split_roundtrip(key, &split(key, &slots, &means));
    assert!(b.len() < 3 * N, "means: {} bytes", b.len());
    let b = assert_split_roundtrip(key, &split(key, &slots, &stds));
    assert!(b.len() < 5 * N, "stds: {} bytes", b.len());
}

#[test]
fn truncated_and_wrong_version_are_errors() {
    let key = SplitKey {
        start: 0,
        granularity: 60 * NS_PER_SEC,
    };
    let serie = split(key, &[0, 1, 2, 10], &[1.5, 2.5, 3.5, 4.5]);
    let bytes = encode_split(key, &serie);
    for cut in 0..bytes.len() {
        assert!(matches!(
            decode_split(key, &bytes[..cut]),
            Err(CodecError::Corrupt(_))
        ));
    }
    let raw = encode_raw(&BoundTimeSerie {
        timestamps: vec![1, 5, 9],
        values: vec![1.0, 2.0, 3.0],
        block_size: 1,
        back_window: 0,
    });
    for cut in 0..raw.len() {
        assert!(decode_raw(&raw[..cut], 1, 0).is_err());
    }
    // A split is not a raw buffer of another version and vice versa.
    let mut other = bytes[..bytes.len() - 4].to_vec();
    other[0] = 99;
    let crc = crc32fast::hash(&other);
    other.extend_from_slice(&crc.to_le_bytes());
    assert!(decode_split(key, &other).is_err());
    assert!(decode_raw(&other, 1, 0).is_err());
}

#[test]
fn huge_counts_are_rejected_without_allocating() {
    // n = u64::MAX-ish in a body with a valid checksum.
    for body in [
        vec![
            1u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
        vec![1u8, 0x91, 0x1c],
    ] {
        let mut b = body.clone();
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let key = SplitKey {
            start: 0,
            granularity: 1,
        };
        assert!(decode_split(key, &b).is_err());
        assert!(decode_raw(&b, 1, 0).is_err());
    }
}

#[test]
fn raw_extremes() {
    for timestamps in [
        vec![0],
        vec![i64::MAX],
        vec![0, i64::MAX],
        vec![0, 1, i64::MAX - 1, i64::MAX],
        vec![5, 6, 7, 8, 9],
    ] {
        let values = vec![f64::NAN; timestamps.len()];
        assert_raw_roundtrip(&BoundTimeSerie {
            timestamps,
            values,
            block_size: 1,
            back_window: 3,
        });
    }
    assert_raw_roundtrip(&BoundTimeSerie {
        timestamps: vec![],
        values: vec![],
        block_size: 1,
        back_window: 0,
    });
}
