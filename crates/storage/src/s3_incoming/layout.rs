//! Upstream's layout of the `<prefix>-measure` bucket: object names, the
//! names of new measure objects, and how a listed name is read back.

use carbonara::time::format_measure_timestamp;
use object_store::path::Path;
use parking_lot::Mutex;
use uuid::Uuid;

/// The object holding the number of sacks, `{"sacks": N}` (upstream's
/// `gnocchi-config`, `IncomingDriver.CFG_PREFIX`).
pub(super) const CONFIG_OBJECT: &str = "gnocchi-config";

/// Sack `number` of `total`, as upstream's S3 driver names it (`SACK_NAME_FORMAT
/// = "{number}-{total}"`): the first segment of its measure objects' names.
pub(super) fn sack_name(number: u32, total: u32) -> String {
    format!("{number}-{total}")
}

/// `<sack>/`: everything pending in a sack.
pub(super) fn sack_prefix(number: u32, total: u32) -> Path {
    Path::from(sack_name(number, total))
}

/// A sack name read back from a listing: `(number, total)`.
pub(super) fn parse_sack_name(name: &str) -> Option<(u32, u32)> {
    let (number, total) = name.split_once('-')?;
    Some((number.parse().ok()?, total.parse().ok()?))
}

/// A pending measure object as listed: `<sack>/<metric uuid>/<measure id>`.
#[derive(Debug)]
pub(super) struct MeasureObject {
    pub(super) metric: Uuid,
    pub(super) path: Path,
    pub(super) size: u64,
}

impl MeasureObject {
    /// Read a listed object name; `None` for anything that is not a measure
    /// object (the config object, a stray object), which callers ignore.
    pub(super) fn parse(path: Path, size: u64) -> Option<MeasureObject> {
        let mut parts = path.as_ref().splitn(3, '/');
        let (_sack, metric, id) = (parts.next()?, parts.next()?, parts.next()?);
        if id.is_empty() || id.contains('/') {
            return None;
        }
        let metric = Uuid::parse_str(metric).ok()?;
        Some(MeasureObject { metric, path, size })
    }

    /// The measure id (`<uuid>_<YYYYmmdd_HH:MM:SS>`).
    fn id(&self) -> &str {
        self.path.filename().unwrap_or_default()
    }

    /// The order a metric's objects are read in: by the second they were
    /// written (the suffix), then by their id. Upstream's ids are random
    /// (uuid4) and it reads a sack in listing order; ours are time-ordered
    /// (uuid7, monotonic within the process), so measures written by one
    /// process are read in the order they were acknowledged.
    pub(super) fn read_order(&self) -> (&str, &str) {
        let id = self.id();
        (id.split_once('_').map_or("", |(_, when)| when), id)
    }
}

/// Names new measure objects: `<sack>/<metric>/<uuid>_<YYYYmmdd_HH:MM:SS>`,
/// upstream's `_store_new_measures` format (its suffix is the UTC time of
/// the write, `strftime("_%Y%m%d_%H:%M:%S")`).
///
/// The uuid is a version 7 uuid (time-ordered) rather than upstream's random
/// version 4, so that names sort in write order; it is kept strictly
/// increasing within the process, even when the clock steps back.
pub(super) struct MeasureNames {
    last: Mutex<u128>,
}

impl MeasureNames {
    pub(super) fn new() -> Self {
        MeasureNames {
            last: Mutex::new(0),
        }
    }

    pub(super) fn name(&self, sack: &str, metric: Uuid) -> Path {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let id = {
            let random = Uuid::new_v4();
            let mut bytes = [0u8; 10];
            bytes.copy_from_slice(&random.as_bytes()[6..16]);
            let fresh = uuid::Builder::from_unix_timestamp_millis(
                u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
                &bytes,
            )
            .into_uuid()
            .as_u128();
            let mut last = self.last.lock();
            // +1 on the low (random) bits keeps the version and variant bits.
            *last = fresh.max(last.wrapping_add(1));
            Uuid::from_u128(*last)
        };
        let mut when = String::with_capacity(25);
        format_measure_timestamp(i64::try_from(now.as_nanos()).unwrap_or(i64::MAX), &mut when);
        // `YYYY-MM-DDTHH:MM:SS+00:00` → `_YYYYMMDD_HH:MM:SS`.
        let date: String = when.get(..10).unwrap_or_default().replace('-', "");
        let time = when.get(11..19).unwrap_or_default();
        Path::from_iter([
            sack.to_string(),
            metric.hyphenated().to_string(),
            format!("{}_{date}_{time}", id.hyphenated()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_upstreams_and_sort_in_write_order() {
        let names = MeasureNames::new();
        let m = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let first = names.name("3-128", m);
        let parts: Vec<&str> = first.as_ref().split('/').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "3-128");
        assert_eq!(parts[1], "01234567-89ab-cdef-0123-456789abcdef");
        let (id, when) = parts[2].split_once('_').unwrap();
        let id = Uuid::parse_str(id).unwrap();
        assert_eq!(id.get_version_num(), 7);
        // `YYYYmmdd_HH:MM:SS`
        assert_eq!(when.len(), 17);
        assert_eq!(&when[8..9], "_");
        assert_eq!(&when[11..12], ":");
        assert!(when[..8].bytes().all(|b| b.is_ascii_digit()));
        let objects: Vec<MeasureObject> = (0..1000)
            .map(|_| MeasureObject::parse(names.name("3-128", m), 16).unwrap())
            .collect();
        for pair in objects.windows(2) {
            assert!(pair[0].read_order() < pair[1].read_order());
            assert_eq!(
                Uuid::parse_str(pair[1].id().split_once('_').unwrap().0)
                    .unwrap()
                    .get_version_num(),
                7
            );
        }
    }

    #[test]
    fn listed_names_are_read_back() {
        let o = MeasureObject::parse(
            Path::from(
                "0-128/9f3c1a9e-0f3e-4b5a-9a43-0c1d2e3f4a5b/6b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8_20261207_14:15:16",
            ),
            32,
        )
        .unwrap();
        assert_eq!(
            o.metric,
            Uuid::parse_str("9f3c1a9e-0f3e-4b5a-9a43-0c1d2e3f4a5b").unwrap()
        );
        assert_eq!(o.read_order().0, "20261207_14:15:16");
        assert!(MeasureObject::parse(Path::from(CONFIG_OBJECT), 14).is_none());
        assert!(MeasureObject::parse(Path::from("0-128/not-a-uuid/x"), 16).is_none());
        assert_eq!(parse_sack_name("12-128"), Some((12, 128)));
        assert_eq!(parse_sack_name("incoming128-12"), None);
        assert_eq!(sack_prefix(5, 64).as_ref(), "5-64");
    }
}
