//! Aggregation methods applied to the raw points of a bucket.
//!
//! The spellings are part of the public API (archive policy definitions,
//! `aggregation=` query parameters, `/v1/capabilities`), so parsing is exact:
//! no case folding, no whitespace, no leading zeros in `Npct`.

/// One of upstream's 216 aggregation methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Mean,
    Sum,
    Last,
    Max,
    Min,
    Std,
    Median,
    First,
    Count,
    /// `Npct`, 1..=99.
    Pct(u8),
    /// `rate:X`: X applied to the differences between consecutive raw points.
    Rate(BaseMethod),
}

/// The non-rate part of a method (what `rate:` wraps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BaseMethod {
    Mean,
    Sum,
    Last,
    Max,
    Min,
    Std,
    Median,
    First,
    Count,
    Pct(u8),
}

/// Number of distinct methods: 9 named + 99 percentiles, each also as `rate:`.
pub const METHOD_COUNT: usize = 2 * BASE_METHOD_COUNT;
/// Number of distinct non-rate methods.
pub const BASE_METHOD_COUNT: usize = 9 + 99;

const RATE_PREFIX: &str = "rate:";

/// The named (non-percentile) base methods, in the order upstream lists them
/// in its definition of the valid methods; `all()` follows this order.
const NAMED: [(BaseMethod, &str); 9] = [
    (BaseMethod::Mean, "mean"),
    (BaseMethod::Sum, "sum"),
    (BaseMethod::Last, "last"),
    (BaseMethod::Max, "max"),
    (BaseMethod::Min, "min"),
    (BaseMethod::Std, "std"),
    (BaseMethod::Median, "median"),
    (BaseMethod::First, "first"),
    (BaseMethod::Count, "count"),
];

impl BaseMethod {
    /// Parse `mean`, `95pct`...; `None` if unknown (including `rate:` forms).
    pub fn parse(s: &str) -> Option<BaseMethod> {
        if let Some((m, _)) = NAMED.iter().find(|(_, name)| *name == s) {
            return Some(*m);
        }
        let digits = s.strip_suffix("pct")?;
        parse_percentile(digits).map(BaseMethod::Pct)
    }

    /// Every non-rate method: the named ones, then `1pct`..`99pct`.
    pub fn all() -> Vec<BaseMethod> {
        let mut out = Vec::with_capacity(BASE_METHOD_COUNT);
        out.extend(NAMED.iter().map(|(m, _)| *m));
        out.extend((1..=99).map(BaseMethod::Pct));
        out
    }

    /// `None` for `Pct` (its name is built, not static).
    fn static_name(self) -> Option<&'static str> {
        NAMED
            .iter()
            .find(|(m, _)| *m == self)
            .map(|(_, name)| *name)
    }
}

/// `1`..`99` written the way Python's `str(int)` writes them: no sign, no
/// leading zero, so `05pct` and `+5pct` are rejected as upstream rejects them.
fn parse_percentile(digits: &str) -> Option<u8> {
    let bytes = digits.as_bytes();
    if bytes.is_empty() || bytes.len() > 2 || bytes[0] == b'0' {
        return None;
    }
    if !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = bytes.iter().fold(0u8, |acc, b| acc * 10 + (b - b'0'));
    (1..=99).contains(&n).then_some(n)
}

impl Method {
    /// Parse `mean`, `95pct`, `rate:last`...; `None` if unknown.
    pub fn parse(s: &str) -> Option<Method> {
        match s.strip_prefix(RATE_PREFIX) {
            Some(rest) => BaseMethod::parse(rest).map(Method::Rate),
            None => BaseMethod::parse(s).map(Method::from),
        }
    }

    /// Every valid method, in upstream's capabilities order.
    ///
    /// Upstream keeps them in a Python set, so its own order is arbitrary; this
    /// one is stable: the named methods in upstream's declaration order, the
    /// percentiles ascending, then the same again with `rate:`.
    pub fn all() -> Vec<Method> {
        let bases = BaseMethod::all();
        let mut out = Vec::with_capacity(METHOD_COUNT);
        out.extend(bases.iter().map(|b| Method::from(*b)));
        out.extend(bases.iter().map(|b| Method::Rate(*b)));
        out
    }

    pub fn is_rate(self) -> bool {
        matches!(self, Method::Rate(_))
    }

    /// The method applied per bucket: the method itself, or what `rate:` wraps.
    pub fn base(self) -> BaseMethod {
        match self {
            Method::Mean => BaseMethod::Mean,
            Method::Sum => BaseMethod::Sum,
            Method::Last => BaseMethod::Last,
            Method::Max => BaseMethod::Max,
            Method::Min => BaseMethod::Min,
            Method::Std => BaseMethod::Std,
            Method::Median => BaseMethod::Median,
            Method::First => BaseMethod::First,
            Method::Count => BaseMethod::Count,
            Method::Pct(n) => BaseMethod::Pct(n),
            Method::Rate(b) => b,
        }
    }
}

impl From<BaseMethod> for Method {
    fn from(b: BaseMethod) -> Method {
        match b {
            BaseMethod::Mean => Method::Mean,
            BaseMethod::Sum => Method::Sum,
            BaseMethod::Last => Method::Last,
            BaseMethod::Max => Method::Max,
            BaseMethod::Min => Method::Min,
            BaseMethod::Std => Method::Std,
            BaseMethod::Median => Method::Median,
            BaseMethod::First => Method::First,
            BaseMethod::Count => Method::Count,
            BaseMethod::Pct(n) => Method::Pct(n),
        }
    }
}

impl std::fmt::Display for BaseMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseMethod::Pct(n) => write!(f, "{n}pct"),
            named => f.write_str(named.static_name().unwrap_or_default()),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_rate() {
            f.write_str(RATE_PREFIX)?;
        }
        self.base().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn all_has_216_distinct_methods() {
        let all = Method::all();
        assert_eq!(all.len(), 216);
        assert_eq!(all.len(), METHOD_COUNT);
        let set: HashSet<_> = all.iter().collect();
        assert_eq!(set.len(), 216);
        let names: HashSet<String> = all.iter().map(|m| m.to_string()).collect();
        assert_eq!(names.len(), 216);
    }

    #[test]
    fn display_and_parse_are_inverse_for_every_method() {
        for m in Method::all() {
            let s = m.to_string();
            assert_eq!(Method::parse(&s), Some(m), "{s}");
        }
        for b in BaseMethod::all() {
            assert_eq!(BaseMethod::parse(&b.to_string()), Some(b));
        }
    }

    #[test]
    fn all_starts_with_named_methods_then_percentiles_then_rates() {
        let names: Vec<String> = Method::all().iter().map(|m| m.to_string()).collect();
        assert_eq!(
            &names[..10],
            &[
                "mean", "sum", "last", "max", "min", "std", "median", "first", "count", "1pct"
            ]
        );
        assert_eq!(names[107], "99pct");
        assert_eq!(names[108], "rate:mean");
        assert_eq!(names[215], "rate:99pct");
    }

    #[test]
    fn upstream_spellings_parse() {
        assert_eq!(Method::parse("mean"), Some(Method::Mean));
        assert_eq!(Method::parse("95pct"), Some(Method::Pct(95)));
        assert_eq!(Method::parse("1pct"), Some(Method::Pct(1)));
        assert_eq!(Method::parse("99pct"), Some(Method::Pct(99)));
        assert_eq!(
            Method::parse("rate:last"),
            Some(Method::Rate(BaseMethod::Last))
        );
        assert_eq!(
            Method::parse("rate:95pct"),
            Some(Method::Rate(BaseMethod::Pct(95)))
        );
    }

    #[test]
    fn near_misses_are_rejected() {
        for s in [
            "",
            "Mean",
            "MEAN",
            " mean",
            "mean ",
            "0pct",
            "100pct",
            "05pct",
            "+5pct",
            "-5pct",
            "pct",
            "95PCT",
            "95 pct",
            "rate:",
            "rate:rate:mean",
            "Rate:mean",
            "rate: mean",
            "rate:0pct",
            "*",
            "+mean",
            "-mean",
            "wtf",
            "std_dev",
            "1000pct",
            "١pct",
        ] {
            assert_eq!(Method::parse(s), None, "{s:?}");
        }
        assert_eq!(BaseMethod::parse("rate:mean"), None);
    }

    #[test]
    fn base_strips_rate_only() {
        assert_eq!(Method::Pct(50).base(), BaseMethod::Pct(50));
        assert_eq!(Method::Rate(BaseMethod::Max).base(), BaseMethod::Max);
        for b in BaseMethod::all() {
            assert_eq!(Method::from(b).base(), b);
            assert!(!Method::from(b).is_rate());
            assert!(Method::Rate(b).is_rate());
        }
    }
}
