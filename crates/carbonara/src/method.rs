//! Aggregation methods applied to the raw points of a bucket.
//!
//! INTERFACE (implementation to be filled in): keep these signatures.

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

impl Method {
    /// Parse `mean`, `95pct`, `rate:last`...; `None` if unknown.
    pub fn parse(s: &str) -> Option<Method> {
        let _ = s;
        unimplemented!()
    }
    /// Every valid method, in upstream's capabilities order.
    pub fn all() -> Vec<Method> {
        unimplemented!()
    }
    pub fn is_rate(self) -> bool {
        matches!(self, Method::Rate(_))
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = f;
        unimplemented!()
    }
}
