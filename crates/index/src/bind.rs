//! Binds the values sea-query collected to an sqlx query, for any sqlx database
//! whose driver encodes the handful of Rust types the index uses.

use sea_query::{Value, Values};
use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

/// Bind every value of `values`, in order, to `query`.
///
/// Only the variants the index's statements produce are supported; anything else is
/// a programming error caught by the tests (it panics with the variant's name).
pub(crate) fn bind_values<'q, DB>(
    mut query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    values: &'q Values,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    Option<bool>: Encode<'q, DB> + Type<DB>,
    Option<i32>: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    Option<f64>: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
{
    for value in &values.0 {
        query = match value {
            Value::Bool(v) => query.bind(*v),
            Value::TinyInt(v) => query.bind(v.map(i32::from)),
            Value::SmallInt(v) => query.bind(v.map(i32::from)),
            Value::Int(v) => query.bind(*v),
            Value::BigInt(v) => query.bind(*v),
            Value::TinyUnsigned(v) => query.bind(v.map(i32::from)),
            Value::SmallUnsigned(v) => query.bind(v.map(i32::from)),
            Value::Unsigned(v) => query.bind(v.map(i64::from)),
            // Limits and offsets: sea-query hands them over as u64.
            Value::BigUnsigned(v) => query.bind(v.map(|u| i64::try_from(u).unwrap_or(i64::MAX))),
            Value::Double(v) => query.bind(*v),
            Value::Float(v) => query.bind(v.map(f64::from)),
            Value::String(v) => query.bind(v.as_deref().map(String::as_str)),
            Value::Bytes(v) => query.bind(v.as_deref().map(Vec::as_slice)),
            other => panic!("the index does not bind {other:?}"),
        };
    }
    query
}
