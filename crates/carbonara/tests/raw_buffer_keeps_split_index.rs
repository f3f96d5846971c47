//! The raw buffer carries its metric's split index (which splits exist per
//! series), so that metricd does not list them; buffers written without one
//! still decode.

use carbonara::codec::{
    SplitIndex, decode_raw, decode_raw_with_index, encode_raw, encode_raw_with_index,
};
use carbonara::{BoundTimeSerie, Method, NS_PER_SEC};
use proptest::prelude::*;

fn raw() -> BoundTimeSerie {
    BoundTimeSerie {
        timestamps: vec![10 * NS_PER_SEC, 11 * NS_PER_SEC, 70 * NS_PER_SEC],
        values: vec![1.0, 2.5, -3.0],
        block_size: 60 * NS_PER_SEC,
        back_window: 0,
    }
}

fn sample_index() -> SplitIndex {
    let minute = 60 * NS_PER_SEC;
    let mut index = SplitIndex::new();
    index.insert((Method::Mean, minute), vec![0, 3600 * minute]);
    index.insert(
        (
            Method::parse("rate:95pct").expect("a method"),
            3600 * NS_PER_SEC,
        ),
        vec![-7_200 * 3600 * NS_PER_SEC, 0, 3_600 * 3600 * NS_PER_SEC],
    );
    index.insert((Method::Max, NS_PER_SEC), Vec::new());
    index
}

#[test]
fn index_round_trips_beside_the_points() {
    let index = sample_index();
    let bytes = encode_raw_with_index(&raw(), &index);
    let (back, back_index) = decode_raw_with_index(&bytes, 60 * NS_PER_SEC, 0).expect("decodes");
    assert_eq!(back.timestamps, raw().timestamps);
    assert_eq!(back.values, raw().values);
    assert_eq!(back_index, Some(index));
    // Readers that only want the points still get them.
    assert_eq!(
        decode_raw(&bytes, 60 * NS_PER_SEC, 0)
            .expect("decodes")
            .timestamps,
        raw().timestamps
    );
}

#[test]
fn buffers_without_index_decode_with_none() {
    let bytes = encode_raw(&raw());
    let (back, index) = decode_raw_with_index(&bytes, 60 * NS_PER_SEC, 0).expect("decodes");
    assert_eq!(back.values, raw().values);
    assert_eq!(index, None);
}

#[test]
fn truncated_index_is_corrupt() {
    let bytes = encode_raw_with_index(&raw(), &sample_index());
    for cut in 0..bytes.len() {
        assert!(
            decode_raw_with_index(&bytes[..cut], 1, 0).is_err(),
            "cut at {cut}"
        );
    }
}

/// Rewrites the body of an encoded buffer and fixes its checksum.
fn with_body(bytes: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut body = bytes[..bytes.len() - 4].to_vec();
    edit(&mut body);
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

#[test]
fn unsorted_or_unknown_entries_are_corrupt() {
    let empty_raw = BoundTimeSerie::new(1, 0);
    let mut index = SplitIndex::new();
    index.insert((Method::Mean, 1), vec![5, 6]);
    let bytes = encode_raw_with_index(&empty_raw, &index);
    // Layout: version, n=0, series=1, len=4, "mean", granularity, count=2, 5, delta=1.
    assert_eq!(&bytes[3..8], b"\x04mean");
    let zero_delta = with_body(&bytes, |b| {
        let last = b.len() - 1;
        b[last] = 0;
    });
    assert!(decode_raw_with_index(&zero_delta, 1, 0).is_err());
    let unknown = with_body(&bytes, |b| b[4..8].copy_from_slice(b"mexn"));
    assert!(decode_raw_with_index(&unknown, 1, 0).is_err());
    let huge_count = with_body(&bytes, |b| {
        b.truncate(b.len() - 3);
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    });
    assert!(decode_raw_with_index(&huge_count, 1, 0).is_err());
}

proptest! {
    #[test]
    fn any_index_round_trips(
        entries in prop::collection::vec(
            (0usize..Method::all().len(), 1i64..1_000_000_000_000, prop::collection::btree_set(any::<i64>(), 0..20)),
            0..8,
        )
    ) {
        let methods = Method::all();
        let mut index = SplitIndex::new();
        for (m, granularity, starts) in entries {
            index.insert((methods[m], granularity), starts.into_iter().collect());
        }
        let bytes = encode_raw_with_index(&raw(), &index);
        let (_, back) = decode_raw_with_index(&bytes, 60 * NS_PER_SEC, 0).expect("decodes");
        prop_assert_eq!(back, Some(index));
    }

    #[test]
    fn any_bytes_decode_without_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut b = vec![2u8];
        b.extend_from_slice(&body);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let _ = decode_raw_with_index(&b, 1, 0);
    }
}
