//! The resource filter language, once parsed: what `POST /v1/search/resource`,
//! `DELETE /v1/resource/TYPE`, `?filter=` strings and `/v1/aggregates` searches
//! all compile to. The API parses and validates the shape (operators, arity,
//! `id` values already turned into UUIDs); the indexer resolves field names
//! against the resource type and casts values to the column types, so unknown
//! fields and uncastable values are reported by the indexer
//! ([`crate::IndexError::QueryAttributeError`], [`crate::IndexError::QueryValueError`]).

/// Deepest nesting the indexer compiles; the API's parsers enforce a smaller one.
pub const MAX_FILTER_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All must hold (empty: always true).
    And(Vec<Filter>),
    /// Any must hold (empty: never true).
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `field op value`; `= null` is `IS NULL`, `!= v` also matches NULLs.
    Compare {
        op: CmpOp,
        field: String,
        value: FilterValue,
    },
    /// `field IN (values)`.
    In {
        field: String,
        values: Vec<FilterValue>,
    },
    /// SQL `LIKE` (`%`, `_`), on text fields.
    Like {
        field: String,
        pattern: FilterValue,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A scalar as the client wrote it; the indexer casts it to the field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
}

impl Filter {
    /// Nesting depth (a leaf is 1).
    pub fn depth(&self) -> usize {
        match self {
            Filter::And(v) | Filter::Or(v) => 1 + v.iter().map(Filter::depth).max().unwrap_or(0),
            Filter::Not(f) => 1 + f.depth(),
            _ => 1,
        }
    }
}

impl std::fmt::Display for FilterValue {
    /// As Python's `str()` shows the value (what upstream puts in its messages
    /// and what a text column is compared with).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterValue::Null => f.write_str("None"),
            FilterValue::Bool(true) => f.write_str("True"),
            FilterValue::Bool(false) => f.write_str("False"),
            FilterValue::Int(i) => write!(f, "{i}"),
            FilterValue::Float(x) => {
                if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 {
                    write!(f, "{x:.1}")
                } else {
                    write!(f, "{x}")
                }
            }
            FilterValue::String(s) => f.write_str(s),
        }
    }
}
