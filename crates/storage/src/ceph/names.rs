//! Object names and omap keys, as upstream Gnocchi 4.7.1 writes them (see the
//! module doc of `ceph`), and the measure records of an omap value.

use carbonara::time::{format_iso, format_seconds};
use carbonara::{Measure, Method};
use uuid::Uuid;

/// The object holding the number of sacks.
pub(super) const CONFIG_OBJECT: &str = "gnocchi-config";
/// Prefix of every measure key in a sack's omap.
pub(super) const MEASURE_PREFIX: &str = "measure_";

/// `incoming<N>-<s>`.
pub(super) fn sack_object(nsacks: u32, sack: u32) -> String {
    format!("incoming{nsacks}-{sack}")
}

/// `measure_<metric>_<uuid>_<YYYYmmdd_HH:MM:SS>` (UTC), as upstream's
/// incoming driver names a batch; the unique `batch` uuid keeps batches apart.
pub(super) fn measure_key(metric: Uuid, batch: Uuid, now_ns: i64) -> String {
    // "YYYY-MM-DDTHH:MM:SS..." -> "YYYYmmdd_HH:MM:SS"
    let iso = format_iso(now_ns);
    let date: String = iso.get(..10).unwrap_or("").replace('-', "");
    let time = iso.get(11..19).unwrap_or("");
    format!("{MEASURE_PREFIX}{metric}_{batch}_{date}_{time}")
}

/// When a measure key's batch arrived, from its `YYYYmmdd_HH:MM:SS` suffix
/// (to the second; upstream's keys carry it too).
pub(super) fn arrival_of_key(key: &str) -> Option<std::time::SystemTime> {
    let mut fields = key.rsplitn(3, '_');
    let (time, date) = (fields.next()?, fields.next()?);
    let (y, md) = (date.get(..4)?, date.get(4..)?);
    let (m, d) = (md.get(..2)?, md.get(2..)?);
    let ns = carbonara::time::parse_timestamp(&format!("{y}-{m}-{d}T{time}"), 0).ok()?;
    let secs = u64::try_from(ns / carbonara::time::NS_PER_SEC).ok()?;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))
}

/// The metric of a measure key (its second `_`-separated field).
pub(super) fn metric_of_key(key: &str) -> Option<Uuid> {
    key.split('_').nth(1).and_then(|s| Uuid::parse_str(s).ok())
}

/// `gnocchi_<metric>_none_v3`: the raw buffer, whose omap indexes the splits.
pub(super) fn raw_object(metric: Uuid) -> String {
    format!("gnocchi_{metric}_none_v3")
}

/// `gnocchi_<metric>_<start>_<method>_<granularity>_v3`.
pub(super) fn split_object(metric: Uuid, method: Method, granularity: i64, start: i64) -> String {
    format!(
        "gnocchi_{metric}_{}_{method}_{}_v3",
        format_seconds(start),
        format_seconds(granularity)
    )
}

/// The start (seconds, as written) of a split named in a metric's omap, if it
/// belongs to the series (`method`, `granularity`) and is of the current
/// version (`_v3`).
pub(super) fn split_start<'a>(name: &'a str, method: &str, granularity: &str) -> Option<&'a str> {
    let mut parts = name.split('_');
    let (Some("gnocchi"), Some(_metric), Some(start), Some(m), Some(g), Some("v3"), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    (m == method && g == granularity).then_some(start)
}

/// A decimal number of seconds as Python prints a float (`1425600000.0`,
/// `3.6`, `1e-05`, `-25200.0`) to exact nanoseconds: the digits are read as a
/// decimal, not through a float, so that a start printed from a whole number
/// of nanoseconds reads back to it.
pub(crate) fn seconds_to_ns(text: &str) -> Option<i64> {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // value = digits * 10^(exp - frac.len()) seconds = digits * 10^(exp - frac.len() + 9) ns
    let digits: i128 = format!("{int}{frac}").parse().ok()?;
    let scale = exp - frac.len() as i32 + 9;
    let ns = if scale >= 0 {
        digits.checked_mul(10i128.checked_pow(scale as u32)?)?
    } else {
        let div = 10i128.checked_pow((-scale) as u32)?;
        // Rounded to the nearest nanosecond.
        (digits + div / 2) / div
    };
    i64::try_from(if neg { -ns } else { ns }).ok()
}

const RECORD: usize = 16;

/// numpy's `TIMESERIES_ARRAY_DTYPE` bytes of `points`.
pub(super) fn encode_measures(points: &[Measure]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(points.len() * RECORD);
    for m in points {
        buf.extend_from_slice(&m.timestamp.to_le_bytes());
        buf.extend_from_slice(&m.value.to_le_bytes());
    }
    buf
}

/// Decode records into `out`; a torn tail (not a multiple of 16) is ignored.
pub(super) fn decode_measures(bytes: &[u8], out: &mut Vec<Measure>) -> usize {
    let chunks = bytes.chunks_exact(RECORD);
    let n = chunks.len();
    out.reserve(n);
    for c in chunks {
        let (ts, v) = c.split_at(8);
        let mut t = [0u8; 8];
        t.copy_from_slice(ts);
        let mut f = [0u8; 8];
        f.copy_from_slice(v);
        out.push(Measure::new(i64::from_le_bytes(t), f64::from_le_bytes(f)));
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_are_upstreams() {
        let m = Uuid::parse_str("5b1e5f07-fd8e-4e0c-a1b3-3e6a1f0d2c11").unwrap();
        let g = 60_000_000_000;
        assert_eq!(
            split_object(m, Method::Mean, g, 1_425_600_000_000_000_000),
            "gnocchi_5b1e5f07-fd8e-4e0c-a1b3-3e6a1f0d2c11_1425600000.0_mean_60.0_v3"
        );
        assert_eq!(
            raw_object(m),
            "gnocchi_5b1e5f07-fd8e-4e0c-a1b3-3e6a1f0d2c11_none_v3"
        );
        let name = split_object(m, Method::Mean, 1_000_000, -3_600_000_000);
        assert_eq!(split_start(&name, "mean", "0.001"), Some("-3.6"));
        assert_eq!(split_start(&name, "max", "0.001"), None);
        assert_eq!(split_start(&format!("{name}x"), "mean", "0.001"), None);
    }

    #[test]
    fn python_floats_read_back_exactly() {
        for (text, ns) in [
            ("1425600000.0", 1_425_600_000_000_000_000),
            ("3.6", 3_600_000_000),
            ("1e-05", 10_000),
            ("1e-09", 1),
            ("-25200.0", -25_200_000_000_000),
            ("1425600003.6", 1_425_600_003_600_000_000i64),
        ] {
            assert_eq!(seconds_to_ns(text), Some(ns), "{text}");
        }
        assert_eq!(seconds_to_ns("1.5e+16"), None, "out of range");
        assert_eq!(seconds_to_ns("abc"), None);
        for ns in [1_425_600_000_000_000_000i64, 1_000, 3_600_000_000, -7] {
            assert_eq!(seconds_to_ns(&format_seconds(ns)), Some(ns));
        }
    }

    #[test]
    fn measure_keys_are_upstreams() {
        let m = Uuid::parse_str("5b1e5f07-fd8e-4e0c-a1b3-3e6a1f0d2c11").unwrap();
        let key = measure_key(m, Uuid::new_v4(), 1_425_600_061_000_000_000);
        assert_eq!(
            arrival_of_key(&key),
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_425_600_061))
        );
        assert!(key.starts_with("measure_5b1e5f07-fd8e-4e0c-a1b3-3e6a1f0d2c11_"));
        assert!(key.ends_with("_20150306_00:01:01"), "{key}");
        assert_eq!(metric_of_key(&key), Some(m));
    }
}
