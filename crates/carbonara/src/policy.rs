//! Archive policies: how long to keep what, at which granularities, with which methods.
//!
//! Error messages are upstream's, word for word: clients (and the conformance
//! tests) match on them.

use crate::method::Method;
use crate::time::NS_PER_SEC;

pub use crate::time::format_seconds;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Messages are upstream's, returned to clients as 400 reasons.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> PolicyError {
    PolicyError::Invalid(msg.into())
}

/// One line of a definition. Granularity and timespan in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePolicyItem {
    pub granularity: i64,
    /// `None`: unlimited retention.
    pub points: Option<u64>,
    /// `None`: unlimited retention; else always `granularity * points`.
    pub timespan: Option<i64>,
}

impl ArchivePolicyItem {
    /// Any two of the three give the third (upstream's rules and messages, SPEC §1.3).
    ///
    /// The checks run in upstream's order, so that an input breaking several
    /// rules gets the same message as upstream gives.
    pub fn new(
        granularity: Option<i64>,
        points: Option<u64>,
        timespan: Option<i64>,
    ) -> Result<Self, PolicyError> {
        if let (Some(g), Some(p), Some(t)) = (granularity, points, timespan) {
            // A product that overflows cannot equal any representable timespan.
            if mul_points(g, p) != Some(t) {
                return Err(invalid("timespan ≠ granularity × points"));
            }
        }
        if granularity.is_some_and(|g| g <= 0) {
            return Err(invalid("Granularity should be > 0"));
        }
        if points == Some(0) {
            return Err(invalid("Number of points should be > 0"));
        }

        let granularity = match (granularity, points, timespan) {
            (Some(g), _, _) => g,
            (None, Some(p), Some(t)) => {
                // Integer division: the exact floor, where upstream's float
                // division could round up for very large timespans.
                let g = i64::try_from(p).map_or(0, |p| t / p);
                // Upstream accepts a zero granularity here and fails later at
                // processing time; refuse it up front.
                if g <= 0 {
                    return Err(invalid("Granularity should be > 0"));
                }
                g
            }
            _ => {
                return Err(invalid(
                    "At least two of granularity/points/timespan must be provided",
                ));
            }
        };

        let (points, timespan) = match (points, timespan) {
            (None, None) => (None, None),
            (None, Some(t)) => {
                let p = t / granularity;
                if p <= 0 {
                    return Err(invalid("Calculated number of points is < 0"));
                }
                // p * granularity <= t, so this cannot overflow.
                (Some(p.unsigned_abs()), Some(p * granularity))
            }
            (Some(p), _) => {
                let t = mul_points(granularity, p)
                    .ok_or_else(|| invalid("Calculated timespan is too large"))?;
                (Some(p), Some(t))
            }
        };

        Ok(ArchivePolicyItem {
            granularity,
            points,
            timespan,
        })
    }
}

fn mul_points(granularity: i64, points: u64) -> Option<i64> {
    i64::try_from(points)
        .ok()
        .and_then(|p| granularity.checked_mul(p))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArchivePolicy {
    pub name: String,
    pub back_window: u64,
    pub definition: Vec<ArchivePolicyItem>,
    /// Resolved, sorted, without duplicates.
    pub aggregation_methods: Vec<Method>,
}

impl ArchivePolicy {
    /// Validates the definition (non-empty, no duplicate granularity).
    /// The methods are stored sorted and without duplicates.
    pub fn new(
        name: String,
        back_window: u64,
        definition: Vec<ArchivePolicyItem>,
        mut aggregation_methods: Vec<Method>,
    ) -> Result<Self, PolicyError> {
        if definition.is_empty() {
            // Upstream's schema validator words it this way.
            return Err(invalid("length of value must be at least 1"));
        }
        // Upstream names the first granularity (in definition order) that
        // appears more than once.
        for (i, item) in definition.iter().enumerate() {
            let seen_before = definition[..i]
                .iter()
                .any(|d| d.granularity == item.granularity);
            if seen_before {
                continue;
            }
            let repeated = definition[i + 1..]
                .iter()
                .any(|d| d.granularity == item.granularity);
            if repeated {
                return Err(invalid(format!(
                    "More than one archive policy uses granularity `{}'",
                    format_seconds(item.granularity)
                )));
            }
        }
        aggregation_methods.sort_unstable();
        aggregation_methods.dedup();
        Ok(ArchivePolicy {
            name,
            back_window,
            definition,
            aggregation_methods,
        })
    }

    /// The largest granularity: the block the raw buffer and back window count in.
    pub fn max_block_size(&self) -> i64 {
        self.definition
            .iter()
            .map(|d| d.granularity)
            .max()
            .unwrap_or(0)
    }

    /// Resolve a requested method list against the defaults: `*`, `+m`, `-m` as upstream.
    /// Errors name the first unknown method (upstream answers 400 Invalid input).
    ///
    /// - `*` anywhere: start from every method;
    /// - else, if every entry is `+m`/`-m` (vacuously true for an empty list, as
    ///   upstream): start from the defaults;
    /// - else start from the plain entries. Upstream also keeps the literal
    ///   `"+m"` strings in that case (SPEC §8.1.3); we do not.
    ///
    /// Then `+m` adds and `-m` removes, in request order, so the last mention of
    /// a method wins (upstream applies them in set order, i.e. unpredictably).
    pub fn resolve_aggregation_methods(
        requested: Option<&[String]>,
        defaults: &[Method],
    ) -> Result<Vec<Method>, PolicyError> {
        let Some(requested) = requested else {
            return Ok(sorted_unique(defaults.to_vec()));
        };

        let entries = requested
            .iter()
            .map(|s| {
                Entry::parse(s)
                    .ok_or_else(|| invalid(format!("Invalid value for aggregation_methods: {s}")))
            })
            .collect::<Result<Vec<Entry>, PolicyError>>()?;

        let mut methods: Vec<Method> = if entries.contains(&Entry::All) {
            Method::all()
        } else if entries
            .iter()
            .all(|e| matches!(e, Entry::Add(_) | Entry::Remove(_)))
        {
            defaults.to_vec()
        } else {
            entries
                .iter()
                .filter_map(|e| match e {
                    Entry::Plain(m) => Some(*m),
                    _ => None,
                })
                .collect()
        };

        for entry in &entries {
            match *entry {
                Entry::Add(m) => methods.push(m),
                Entry::Remove(m) => methods.retain(|x| *x != m),
                Entry::All | Entry::Plain(_) => {}
            }
        }
        Ok(sorted_unique(methods))
    }
}

/// One entry of a requested `aggregation_methods` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    All,
    Plain(Method),
    Add(Method),
    Remove(Method),
}

impl Entry {
    fn parse(s: &str) -> Option<Entry> {
        if s == "*" {
            return Some(Entry::All);
        }
        if let Some(rest) = s.strip_prefix('+') {
            return Method::parse(rest).map(Entry::Add);
        }
        if let Some(rest) = s.strip_prefix('-') {
            return Method::parse(rest).map(Entry::Remove);
        }
        Method::parse(s).map(Entry::Plain)
    }
}

fn sorted_unique(mut methods: Vec<Method>) -> Vec<Method> {
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// Upstream's `[archive_policy] default_aggregation_methods` default.
pub fn default_aggregation_methods() -> Vec<Method> {
    vec![
        Method::Mean,
        Method::Min,
        Method::Max,
        Method::Sum,
        Method::Std,
        Method::Count,
    ]
}

const MINUTE: i64 = 60 * NS_PER_SEC;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The policies `gnocchi-upgrade` creates on an empty index: `low`, `medium`,
/// `high` (with `defaults` as methods) and `bool` (a back window of one hour,
/// `last` only), defined exactly as upstream defines them.
pub fn builtin_policies(defaults: &[Method]) -> Vec<ArchivePolicy> {
    // (name, back_window, [(granularity, timespan)], methods)
    type Spec<'a> = (&'a str, u64, &'a [(i64, i64)], Vec<Method>);
    let specs: [Spec<'_>; 4] = [
        ("low", 0, &[(5 * MINUTE, 30 * DAY)], defaults.to_vec()),
        (
            "medium",
            0,
            &[(MINUTE, 7 * DAY), (HOUR, 365 * DAY)],
            defaults.to_vec(),
        ),
        (
            "high",
            0,
            &[(NS_PER_SEC, HOUR), (MINUTE, 7 * DAY), (HOUR, 365 * DAY)],
            defaults.to_vec(),
        ),
        ("bool", 3600, &[(NS_PER_SEC, 365 * DAY)], vec![Method::Last]),
    ];
    specs
        .into_iter()
        .map(|(name, back_window, items, methods)| {
            let definition = items
                .iter()
                .map(|&(granularity, timespan)| ArchivePolicyItem {
                    granularity,
                    points: Some(timespan.unsigned_abs() / granularity.unsigned_abs()),
                    timespan: Some(timespan),
                })
                .collect();
            ArchivePolicy {
                name: name.to_owned(),
                back_window,
                definition,
                aggregation_methods: sorted_unique(methods),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format_timedelta, parse_timespan};

    const S: i64 = NS_PER_SEC;

    fn item(g: Option<i64>, p: Option<u64>, t: Option<i64>) -> Result<ArchivePolicyItem, String> {
        ArchivePolicyItem::new(g, p, t).map_err(|e| e.to_string())
    }

    fn err(g: Option<i64>, p: Option<u64>, t: Option<i64>) -> String {
        match item(g, p, t) {
            Ok(i) => panic!("expected an error, got {i:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn granularity_and_points_give_timespan() {
        let i = item(Some(S), Some(20), None).unwrap();
        assert_eq!(i.timespan, Some(20 * S));
        assert_eq!(format_timedelta(i.timespan.unwrap()), "0:00:20");
        let i = item(Some(10 * S), Some(20), None).unwrap();
        assert_eq!(format_timedelta(i.timespan.unwrap()), "0:03:20");
    }

    #[test]
    fn granularity_and_timespan_floor_points_and_recompute_timespan() {
        let i = item(Some(7 * S), None, Some(HOUR)).unwrap();
        assert_eq!(i.points, Some(514));
        assert_eq!(i.granularity, 7 * S);
        assert_eq!(format_timedelta(i.timespan.unwrap()), "0:59:58");
        assert_eq!(format_timedelta(i.granularity), "0:00:07");
    }

    #[test]
    fn points_and_timespan_give_fractional_granularity() {
        let i = item(None, Some(1000), Some(HOUR)).unwrap();
        assert_eq!(format_timedelta(i.granularity), "0:00:03.600000");
        assert_eq!(format_timedelta(i.timespan.unwrap()), "1:00:00");
        assert_eq!(i.points, Some(1000));
    }

    #[test]
    fn granularity_alone_means_unlimited_retention() {
        let i = item(Some(2 * S), None, None).unwrap();
        assert_eq!(i.points, None);
        assert_eq!(i.timespan, None);
        assert_eq!(format_timedelta(i.granularity), "0:00:02");
    }

    #[test]
    fn consistent_triple_is_accepted_inconsistent_rejected() {
        let i = item(Some(S), Some(60), Some(60 * S)).unwrap();
        assert_eq!(i.points, Some(60));
        assert_eq!(
            err(Some(S), Some(50), Some(HOUR)),
            "timespan ≠ granularity × points"
        );
        assert_eq!(
            err(Some(S), Some(60), Some(61 * S)),
            "timespan ≠ granularity × points"
        );
        // Upstream compares before validating the granularity.
        assert_eq!(
            err(Some(0), Some(60), Some(S)),
            "timespan ≠ granularity × points"
        );
        assert_eq!(
            err(Some(i64::MAX), Some(u64::MAX), Some(S)),
            "timespan ≠ granularity × points"
        );
    }

    #[test]
    fn upstream_messages_for_invalid_items() {
        assert_eq!(err(Some(0), Some(60), None), "Granularity should be > 0");
        assert_eq!(err(Some(-S), None, None), "Granularity should be > 0");
        assert_eq!(
            err(Some(10 * S), Some(0), None),
            "Number of points should be > 0"
        );
        assert_eq!(
            err(None, Some(10), None),
            "At least two of granularity/points/timespan must be provided"
        );
        assert_eq!(
            err(None, None, Some(HOUR)),
            "At least two of granularity/points/timespan must be provided"
        );
        assert_eq!(
            err(None, None, None),
            "At least two of granularity/points/timespan must be provided"
        );
        // Granularity larger than the timespan: zero points.
        assert_eq!(
            err(Some(2 * HOUR), None, Some(HOUR)),
            "Calculated number of points is < 0"
        );
        assert_eq!(
            err(Some(S), None, Some(-HOUR)),
            "Calculated number of points is < 0"
        );
    }

    #[test]
    fn degenerate_and_overflowing_items_are_errors_not_panics() {
        assert_eq!(err(None, Some(1000), Some(10)), "Granularity should be > 0");
        assert_eq!(
            err(None, Some(u64::MAX), Some(HOUR)),
            "Granularity should be > 0"
        );
        assert_eq!(
            err(Some(HOUR), Some(u64::MAX), None),
            "Calculated timespan is too large"
        );
        assert_eq!(
            err(Some(i64::MAX), Some(2), None),
            "Calculated timespan is too large"
        );
        let i = item(Some(1), None, Some(i64::MAX)).unwrap();
        assert_eq!(i.timespan, Some(i64::MAX));
    }

    #[test]
    fn duplicate_granularity_names_it_in_python_float_seconds() {
        let a = item(Some(S), Some(60), None).unwrap();
        let b = item(Some(S), Some(120), None).unwrap();
        let e = ArchivePolicy::new("p".into(), 0, vec![a.clone(), b], vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "More than one archive policy uses granularity `1.0'"
        );

        let half = item(Some(S / 2), None, None).unwrap();
        let e = ArchivePolicy::new("p".into(), 0, vec![half.clone(), a, half], vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "More than one archive policy uses granularity `0.5'"
        );
    }

    #[test]
    fn empty_definition_is_rejected() {
        let e = ArchivePolicy::new("p".into(), 0, vec![], vec![]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("length of value must be at least 1")
        );
    }

    #[test]
    fn policy_methods_are_sorted_and_unique() {
        let a = item(Some(S), Some(60), None).unwrap();
        let p = ArchivePolicy::new(
            "p".into(),
            0,
            vec![a],
            vec![Method::Max, Method::Mean, Method::Max],
        )
        .unwrap();
        assert_eq!(p.aggregation_methods, vec![Method::Mean, Method::Max]);
        assert_eq!(p.max_block_size(), S);
    }

    fn resolve(req: Option<&[&str]>) -> Result<Vec<String>, String> {
        let req: Option<Vec<String>> = req.map(|r| r.iter().map(|s| s.to_string()).collect());
        ArchivePolicy::resolve_aggregation_methods(req.as_deref(), &default_aggregation_methods())
            .map(|v| {
                let mut names: Vec<String> = v.iter().map(|m| m.to_string()).collect();
                names.sort();
                names
            })
            .map_err(|e| e.to_string())
    }

    fn names(v: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn omitted_methods_give_the_defaults() {
        assert_eq!(
            resolve(None).unwrap(),
            names(&["mean", "min", "max", "sum", "std", "count"])
        );
    }

    #[test]
    fn star_starts_from_every_method() {
        assert_eq!(resolve(Some(&["*"])).unwrap().len(), 216);
        let r = resolve(Some(&["*", "-mean", "-rate:mean"])).unwrap();
        assert_eq!(r.len(), 214);
        assert!(!r.contains(&"mean".to_string()));
    }

    #[test]
    fn only_signed_entries_start_from_the_defaults() {
        assert_eq!(
            resolve(Some(&["+95pct", "-std", "-count"])).unwrap(),
            names(&["mean", "min", "max", "sum", "95pct"])
        );
        // Vacuously "all signed", as upstream.
        assert_eq!(resolve(Some(&[])).unwrap(), resolve(None).unwrap());
    }

    #[test]
    fn plain_entries_replace_the_defaults() {
        assert_eq!(
            resolve(Some(&["rate:mean", "rate:last"])).unwrap(),
            names(&["rate:last", "rate:mean"])
        );
        assert_eq!(resolve(Some(&["last", "last"])).unwrap(), names(&["last"]));
    }

    #[test]
    fn mixed_plain_and_signed_entries_never_store_literal_signs() {
        assert_eq!(
            resolve(Some(&["mean", "+max", "-median"])).unwrap(),
            names(&["mean", "max"])
        );
        assert_eq!(
            resolve(Some(&["mean", "-mean"])).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn later_sign_wins() {
        assert_eq!(
            resolve(Some(&["+median", "-median"])).unwrap(),
            resolve(None).unwrap()
        );
        assert!(
            resolve(Some(&["-median", "+median"]))
                .unwrap()
                .contains(&"median".to_string())
        );
    }

    #[test]
    fn unknown_entries_are_named() {
        assert_eq!(
            resolve(Some(&["mean", "wtf"])).unwrap_err(),
            "Invalid value for aggregation_methods: wtf"
        );
        for bad in ["", "+*", "-*", "++mean", "+", "Mean", "100pct", "rate:*"] {
            assert!(resolve(Some(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn builtin_policies_match_upstream_definitions() {
        let defaults = default_aggregation_methods();
        let ps = builtin_policies(&defaults);
        let names: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["low", "medium", "high", "bool"]);

        let render = |p: &ArchivePolicy| -> Vec<(String, Option<u64>, String)> {
            p.definition
                .iter()
                .map(|d| {
                    (
                        format_timedelta(d.granularity),
                        d.points,
                        format_timedelta(d.timespan.unwrap()),
                    )
                })
                .collect()
        };
        let r = |g: &str, p: u64, t: &str| (g.to_string(), Some(p), t.to_string());
        assert_eq!(render(&ps[0]), [r("0:05:00", 8640, "30 days, 0:00:00")]);
        assert_eq!(
            render(&ps[1]),
            [
                r("0:01:00", 10080, "7 days, 0:00:00"),
                r("1:00:00", 8760, "365 days, 0:00:00")
            ]
        );
        assert_eq!(
            render(&ps[2]),
            [
                r("0:00:01", 3600, "1:00:00"),
                r("0:01:00", 10080, "7 days, 0:00:00"),
                r("1:00:00", 8760, "365 days, 0:00:00")
            ]
        );
        assert_eq!(
            render(&ps[3]),
            [r("0:00:01", 31536000, "365 days, 0:00:00")]
        );
        assert_eq!(ps[3].back_window, 3600);
        assert_eq!(ps[3].aggregation_methods, vec![Method::Last]);
        for p in &ps[..3] {
            assert_eq!(p.back_window, 0);
            assert_eq!(p.aggregation_methods, sorted_unique(defaults.clone()));
        }
        // Each builtin is what the validating constructors would build.
        for p in &ps {
            for d in &p.definition {
                assert_eq!(
                    &ArchivePolicyItem::new(Some(d.granularity), None, d.timespan).unwrap(),
                    d
                );
            }
            let rebuilt = ArchivePolicy::new(
                p.name.clone(),
                p.back_window,
                p.definition.clone(),
                p.aggregation_methods.clone(),
            )
            .unwrap();
            assert_eq!(&rebuilt, p);
        }
        assert_eq!(ps[2].max_block_size(), HOUR);
    }

    #[test]
    fn items_from_timespan_syntax() {
        let g = parse_timespan("1 second").unwrap();
        let t = parse_timespan("1 hour").unwrap();
        let i = item(Some(g), None, Some(t)).unwrap();
        assert_eq!(i.points, Some(3600));
    }
}
