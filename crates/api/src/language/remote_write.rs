//! Prometheus remote write, version 0.1.0: a snappy-compressed protobuf
//! `WriteRequest`. Only four messages matter, so they are decoded by hand,
//! borrowing label strings from the decompressed buffer:
//!
//! ```text
//! WriteRequest { repeated TimeSeries timeseries = 1; ... metadata = 3 (skipped) }
//! TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; exemplars = 3, histograms = 4 (skipped) }
//! Label        { string name = 1; string value = 2; }
//! Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds
//! ```
//!
//! Unknown fields of every wire type are skipped, as protobuf requires. The
//! decoder never panics and never reads past its input (proptest below).

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    Snappy(String),
    TooLarge(usize),
    Protobuf(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Snappy(e) => write!(f, "invalid snappy data: {e}"),
            DecodeError::TooLarge(n) => {
                write!(f, "decompressed body of {n} bytes is larger than allowed")
            }
            DecodeError::Protobuf(e) => write!(f, "invalid protobuf WriteRequest: {e}"),
        }
    }
}

/// The stream format's identifier chunk (Prometheus sends the block format; a
/// framed body is accepted too).
const STREAM_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// Decompress a body, refusing to inflate beyond `max_len` bytes.
pub(crate) fn decompress(body: &[u8], max_len: usize) -> Result<Vec<u8>, DecodeError> {
    if body.starts_with(STREAM_MAGIC) {
        use std::io::Read;
        let mut out = Vec::new();
        snap::read::FrameDecoder::new(body)
            .take(max_len as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| DecodeError::Snappy(e.to_string()))?;
        if out.len() > max_len {
            return Err(DecodeError::TooLarge(out.len()));
        }
        return Ok(out);
    }
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > max_len {
        return Err(DecodeError::TooLarge(len));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))
}

/// One time series; reuse it across [`for_each_series`] calls' callbacks.
#[derive(Debug, Default)]
pub(crate) struct Series<'a> {
    pub(crate) labels: Vec<(&'a str, &'a str)>,
    /// `(timestamp in ms, value)`.
    pub(crate) samples: Vec<(i64, f64)>,
}

impl<'a> Series<'a> {
    /// A label's value; the last one wins when a name repeats.
    pub(crate) fn label(&self, name: &str) -> Option<&'a str> {
        self.labels
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// Call `f` for every time series of a decompressed `WriteRequest`.
pub(crate) fn for_each_series<'a, E>(
    buf: &'a [u8],
    mut f: impl FnMut(&Series<'a>) -> Result<(), E>,
) -> Result<Result<(), E>, DecodeError> {
    let mut series = Series::default();
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        if field == 1 && wire == LEN {
            let msg = r.bytes()?;
            decode_series(msg, &mut series)?;
            if let Err(e) = f(&series) {
                return Ok(Err(e));
            }
        } else {
            r.skip(wire)?;
        }
    }
    Ok(Ok(()))
}

fn decode_series<'a>(buf: &'a [u8], out: &mut Series<'a>) -> Result<(), DecodeError> {
    out.labels.clear();
    out.samples.clear();
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, LEN) => {
                let mut l = Reader {
                    buf: r.bytes()?,
                    pos: 0,
                };
                let (mut name, mut value) = ("", "");
                while !l.done() {
                    match l.key()? {
                        (1, LEN) => name = l.string()?,
                        (2, LEN) => value = l.string()?,
                        (_, w) => l.skip(w)?,
                    }
                }
                out.labels.push((name, value));
            }
            (2, LEN) => {
                let mut s = Reader {
                    buf: r.bytes()?,
                    pos: 0,
                };
                let (mut ts, mut value) = (0i64, 0f64);
                while !s.done() {
                    match s.key()? {
                        (1, I64) => value = f64::from_bits(s.fixed64()?),
                        (2, VARINT) => ts = s.varint()? as i64,
                        (_, w) => s.skip(w)?,
                    }
                }
                out.samples.push((ts, value));
            }
            (_, w) => r.skip(w)?,
        }
    }
    Ok(())
}

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(DecodeError::Protobuf("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Protobuf("varint too long"))
    }

    fn key(&mut self) -> Result<(u64, u8), DecodeError> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Protobuf("truncated field"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::Protobuf("length overflow"))?;
        self.take(n)
    }

    fn string(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::Protobuf("string is not UTF-8"))
    }

    fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            I32 => self.take(4).map(drop),
            _ => Err(DecodeError::Protobuf("unsupported wire type")),
        }
    }
}

/// Prometheus marks a series gone with this NaN; it is not a sample.
pub(crate) const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A series as the tests build it: labels and `(timestamp ms, value)` samples.
#[cfg(test)]
pub(crate) type TestSeries<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// Encode a `WriteRequest` (for the tests).
#[cfg(test)]
pub(crate) fn encode_write_request(series: &[TestSeries<'_>]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn len_field(out: &mut Vec<u8>, field: u64, body: &[u8]) {
        varint(out, (field << 3) | u64::from(LEN));
        varint(out, body.len() as u64);
        out.extend_from_slice(body);
    }
    let mut out = Vec::new();
    let mut ts_buf = Vec::new();
    let mut tmp = Vec::new();
    for (labels, samples) in series {
        ts_buf.clear();
        for (n, v) in labels {
            tmp.clear();
            len_field(&mut tmp, 1, n.as_bytes());
            len_field(&mut tmp, 2, v.as_bytes());
            len_field(&mut ts_buf, 1, &tmp);
        }
        for (t, v) in samples {
            tmp.clear();
            varint(&mut tmp, (1 << 3) | u64::from(I64));
            tmp.extend_from_slice(&v.to_bits().to_le_bytes());
            varint(&mut tmp, (2 << 3) | u64::from(VARINT));
            varint(&mut tmp, *t as u64);
            len_field(&mut ts_buf, 2, &tmp);
        }
        len_field(&mut out, 1, &ts_buf);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Owned = (Vec<(String, String)>, Vec<(i64, f64)>);

    fn collect(buf: &[u8]) -> Result<Vec<Owned>, DecodeError> {
        let mut out = Vec::new();
        for_each_series(buf, |s| {
            out.push((
                s.labels
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                s.samples.clone(),
            ));
            Ok::<(), ()>(())
        })?
        .ok();
        Ok(out)
    }

    #[test]
    fn upstream_fixture_decodes() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/conformance/gabbits/prometheus_fixtures/031b586e-ebe1-4737-812e-cf0ddf26f5ad.dump"
        );
        let Ok(body) = std::fs::read(path) else {
            eprintln!("skipped: {path} not found");
            return;
        };
        let buf = decompress(&body, 1 << 20).unwrap();
        let series = collect(&buf).unwrap();
        assert!(!series.is_empty());
        let scraped = series
            .iter()
            .find(|(l, _)| {
                l.iter()
                    .any(|(n, v)| n == "__name__" && v == "scrape_samples_scraped")
            })
            .unwrap();
        assert!(
            scraped
                .0
                .iter()
                .any(|(n, v)| n == "job" && v == "prometheus")
        );
        assert_eq!(scraped.1[0].1, 558.0);
    }

    #[test]
    fn round_trip_and_stream_format() {
        let req = encode_write_request(&[
            (
                vec![("__name__", "up"), ("job", "j")],
                vec![(1000, 1.0), (2000, 0.5)],
            ),
            (vec![("__name__", "x")], vec![]),
        ]);
        let block = snap::raw::Encoder::new().compress_vec(&req).unwrap();
        assert_eq!(decompress(&block, 1 << 20).unwrap(), req);
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut w = snap::write::FrameEncoder::new(&mut framed);
            w.write_all(&req).unwrap();
        }
        assert_eq!(decompress(&framed, 1 << 20).unwrap(), req);
        assert!(matches!(
            decompress(&block, 4),
            Err(DecodeError::TooLarge(_))
        ));
        let series = collect(&req).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].1, vec![(1000, 1.0), (2000, 0.5)]);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decompress(&bytes, 1 << 16);
            let _ = collect(&bytes);
        }

        #[test]
        fn encoded_requests_decode_back(
            series in proptest::collection::vec((
                proptest::collection::vec(("[a-z_]{1,8}", "[ -~é]{0,8}"), 0..4),
                proptest::collection::vec((any::<i64>(), any::<f64>().prop_filter("not NaN", |f| !f.is_nan())), 0..4),
            ), 0..4)
        ) {
            let input: Vec<TestSeries> = series
                .iter()
                .map(|(l, s)| (l.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect(), s.clone()))
                .collect();
            let buf = encode_write_request(&input);
            let back = collect(&buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.len(), series.len());
            for ((l, s), (bl, bs)) in series.iter().zip(&back) {
                prop_assert_eq!(l, bl);
                prop_assert_eq!(s, bs);
            }
        }
    }
}
