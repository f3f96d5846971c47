//! Container and object names, as upstream Gnocchi 4.7 writes them (see the
//! module doc of `swift`).

use crate::ceph::names::seconds_to_ns;
use carbonara::Method;
use carbonara::time::{format_iso, format_seconds};
use parking_lot::Mutex;
use uuid::Uuid;

/// The object (and container) holding the number of sacks.
pub(super) const CONFIG: &str = "gnocchi-config";
/// A metric's raw buffer.
pub(super) const RAW_OBJECT: &str = "none_v3";

/// Names of the containers of one deployment.
#[derive(Clone, Debug)]
pub(super) struct Containers {
    pub(super) prefix: String,
    /// `swift_container_prefix_all`.
    pub(super) prefix_all: bool,
}

impl Containers {
    /// `<prefix>.<metric>`.
    pub(super) fn metric(&self, metric: Uuid) -> String {
        format!("{}.{metric}", self.prefix)
    }

    fn shared(&self, name: &str) -> String {
        if self.prefix_all {
            format!("{}.{name}", self.prefix)
        } else {
            name.to_string()
        }
    }

    /// `gnocchi-config`, or `<prefix>.gnocchi-config`.
    pub(super) fn config(&self) -> String {
        self.shared(CONFIG)
    }

    /// `incoming<N>-<s>`, or `<prefix>.incoming<N>-<s>`.
    pub(super) fn sack(&self, nsacks: u32, sack: u32) -> String {
        self.shared(&format!("incoming{nsacks}-{sack}"))
    }
}

/// `<start>_<method>_<granularity>_v3`.
pub(super) fn split_object(method: Method, granularity: i64, start: i64) -> String {
    format!(
        "{}_{method}_{}_v3",
        format_seconds(start),
        format_seconds(granularity)
    )
}

/// A split name read back: `(start ns, method, granularity ns)`; `None` for
/// the raw buffer, other versions and stray objects.
pub(super) fn parse_split(name: &str) -> Option<(i64, &str, i64)> {
    let mut parts = name.split('_');
    let (Some(start), Some(method), Some(granularity), Some("v3"), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    Some((to_ns(start)?, method, to_ns(granularity)?))
}

/// Seconds as written back to nanoseconds: exact for what a whole number of
/// nanoseconds prints as, and a start printed from the ends of the `i64`
/// range (which rounds, as a float, past them) is clamped back to them.
fn to_ns(text: &str) -> Option<i64> {
    seconds_to_ns(text).or_else(|| {
        let s: f64 = text.parse().ok()?;
        // `as` saturates at the ends of the range.
        s.is_finite().then_some((s * 1e9) as i64)
    })
}

/// A measure object of a sack as listed: `<metric>/<uuid>_<YYYYmmdd_HH:MM:SS>`.
pub(super) fn parse_measure(name: &str) -> Option<Uuid> {
    let (metric, id) = name.split_once('/')?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    Uuid::parse_str(metric).ok()
}

/// The order a metric's objects are read in: by the second they were
/// written (the suffix), then by name (our ids are time-ordered).
pub(super) fn read_order(name: &str) -> (&str, &str) {
    let id = name.split_once('/').map_or(name, |(_, id)| id);
    (id.split_once('_').map_or("", |(_, when)| when), id)
}

/// Names new measure objects as upstream (`<metric>/<uuid>_<YYYYmmdd_HH:MM:SS>`,
/// UTC), with a version 7 uuid kept strictly increasing in the process
/// rather than upstream's random one, so that names sort in write order.
pub(super) struct MeasureNames {
    last: Mutex<u128>,
}

impl MeasureNames {
    pub(super) fn new() -> Self {
        MeasureNames {
            last: Mutex::new(0),
        }
    }

    pub(super) fn name(&self, metric: Uuid) -> String {
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
            *last = fresh.max(last.wrapping_add(1));
            Uuid::from_u128(*last)
        };
        let iso = format_iso(i64::try_from(now.as_nanos()).unwrap_or(i64::MAX));
        let date: String = iso.get(..10).unwrap_or("").replace('-', "");
        let time = iso.get(11..19).unwrap_or("");
        format!("{metric}/{id}_{date}_{time}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonara::method::BaseMethod;

    #[test]
    fn names_are_upstreams() {
        let m = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let c = Containers {
            prefix: "gnocchi".into(),
            prefix_all: false,
        };
        assert_eq!(c.metric(m), "gnocchi.01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(c.sack(128, 5), "incoming128-5");
        assert_eq!(c.config(), "gnocchi-config");
        let all = Containers {
            prefix_all: true,
            ..c
        };
        assert_eq!(all.sack(128, 5), "gnocchi.incoming128-5");
        assert_eq!(all.config(), "gnocchi.gnocchi-config");
        let name = split_object(Method::Mean, 60_000_000_000, 1_425_600_000_000_000_000);
        assert_eq!(name, "1425600000.0_mean_60.0_v3");
        assert_eq!(
            parse_split(&name),
            Some((1_425_600_000_000_000_000, "mean", 60_000_000_000))
        );
        let p = Method::Rate(BaseMethod::Pct(95));
        let name = split_object(p, 1_000_000_000, -3_600_000_000_000);
        assert_eq!(
            parse_split(&name),
            Some((-3_600_000_000_000, "rate:95pct", 1_000_000_000))
        );
        assert_eq!(parse_split(RAW_OBJECT), None);
        for extreme in [i64::MIN, i64::MAX] {
            let name = split_object(Method::Mean, 1_000_000_000, extreme);
            assert_eq!(
                parse_split(&name),
                Some((extreme, "mean", 1_000_000_000)),
                "{name}"
            );
        }
        assert_eq!(parse_split("1425600000.0_mean_60.0"), None);
        let names = MeasureNames::new();
        let a = names.name(m);
        let b = names.name(m);
        assert_eq!(parse_measure(&a), Some(m));
        assert!(read_order(&a) < read_order(&b));
        let (when, _) = read_order(&a);
        assert_eq!(when.len(), 17, "{a}");
        assert_eq!(parse_measure("gnocchi-config"), None);
    }
}
