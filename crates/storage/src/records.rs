//! The bytes of pending measures, as upstream's incoming drivers store them
//! (a Redis list element, an S3 object): packed 16-byte records, the numpy
//! dtype `[('timestamps', '<M8[ns]'), ('values', '<f8')]`, that is a
//! little-endian `i64` nanosecond timestamp then a little-endian `f64` value.

use carbonara::Measure;

/// Bytes per measure.
pub(crate) const RECORD: usize = 16;

/// Append the packed records of `points` to `buf`.
pub(crate) fn encode(points: &[Measure], buf: &mut Vec<u8>) {
    buf.reserve(points.len() * RECORD);
    for m in points {
        buf.extend_from_slice(&m.timestamp.to_le_bytes());
        buf.extend_from_slice(&m.value.to_le_bytes());
    }
}

/// Decode packed records into `out` (a trailing partial record is ignored:
/// callers check the length first); returns the number decoded.
pub(crate) fn decode(bytes: &[u8], out: &mut Vec<Measure>) -> u64 {
    let chunks = bytes.chunks_exact(RECORD);
    let n = chunks.len();
    out.reserve(n);
    for c in chunks {
        let (ts, v) = c.split_at(8);
        let ts = i64::from_le_bytes(ts.try_into().unwrap_or_default());
        let v = f64::from_le_bytes(v.try_into().unwrap_or_default());
        out.push(Measure::new(ts, v));
    }
    n as u64
}
