//! `column IN (values...)` at any length.
//!
//! Every engine caps the bound parameters of one statement (SQLite 32,766,
//! PostgreSQL and MySQL 65,535), so a search with 100,000 ids cannot bind one
//! parameter per value. A short list is still bound value by value (the
//! planners know `IN (?, ?, ...)` best); a long one is bound as *one* parameter,
//! a JSON array, that the engine unnests into a one-column table:
//! `column IN (SELECT ... FROM <unnest>(?))`. Unnesting a JSON array is the one
//! piece of per-dialect SQL this needs: no table function is common to the
//! three engines.
//!
//! The alternatives were worse: chunking cannot serve a sorted, paginated
//! search; a temporary table filled in chunks needs per-connection state that a
//! failed search would leave behind on pooled connections; inlining values as
//! literals makes string escaping depend on the server's SQL mode.

use crate::resource_query::Kind;
use sea_query::{BinOper, Expr, SimpleExpr, Value};
use serde_json::Value as Json;

/// Lists longer than this are bound as one JSON parameter.
pub(crate) const BIND_EACH_MAX: usize = 100;

/// Bound parameters one statement may carry: values of short lists and of
/// comparisons, markers and limits. Far below every engine's cap, so a filter
/// over the budget is refused with a 400 rather than failing in the engine.
pub(crate) const MAX_BOUND_VALUES: usize = 10_000;

/// The SQL engine a statement is rendered for, where the SQL itself differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// `col IN (values)`; `values` must not be empty nor hold NULLs (the caller
/// turns NULLs into `IS NULL`). Values are of `kind` (as [`crate::resource_query::columns::cast`]
/// makes them).
pub(crate) fn is_in(
    col: SimpleExpr,
    kind: Kind,
    values: Vec<Value>,
    dialect: Dialect,
) -> SimpleExpr {
    if values.len() <= BIND_EACH_MAX {
        return Expr::expr(col).is_in(values);
    }
    let list = Json::Array(values.iter().filter_map(json_of).collect()).to_string();
    let unnest = match dialect {
        // json_each's `value` has the JSON type's affinity: TEXT for strings,
        // INTEGER for integers and booleans (sent as 0/1), REAL for reals.
        Dialect::Sqlite => "SELECT value FROM json_each(?)".to_owned(),
        Dialect::Postgres => format!(
            // sea-query numbers PostgreSQL placeholders `$1`, `$2`... itself.
            "SELECT CAST(value AS {}) FROM json_array_elements_text(CAST($1 AS json))",
            match kind {
                Kind::Uuid | Kind::Text => "text",
                Kind::Ns | Kind::Int => "bigint",
                Kind::Real => "double precision",
                Kind::Bool => "boolean",
            }
        ),
        Dialect::Mysql => format!(
            "SELECT v FROM JSON_TABLE(?, '$[*]' COLUMNS (v {} PATH '$')) AS in_list",
            match kind {
                Kind::Uuid => "VARCHAR(36)",
                Kind::Text => "TEXT",
                Kind::Ns | Kind::Int | Kind::Bool => "BIGINT",
                Kind::Real => "DOUBLE",
            }
        ),
    };
    Expr::expr(col).binary(BinOper::In, Expr::cust_with_values(unnest, [list]))
}

/// A value as a JSON array element. Booleans become 0/1 (what SQLite and MySQL
/// store, and what PostgreSQL's boolean cast accepts); a non-finite real, which
/// no stored number equals, is left out.
fn json_of(v: &Value) -> Option<Json> {
    match v {
        Value::String(Some(s)) => Some(Json::String(s.as_ref().clone())),
        Value::BigInt(Some(i)) => Some(Json::from(*i)),
        Value::Double(Some(f)) => serde_json::Number::from_f64(*f).map(Json::Number),
        Value::Bool(Some(b)) => Some(Json::from(i64::from(*b))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_query::{Alias, MysqlQueryBuilder, PostgresQueryBuilder, Query, SqliteQueryBuilder};

    fn render(dialect: Dialect, n: usize) -> (String, sea_query::Values) {
        let values = (0..n).map(|i| Value::BigInt(Some(i as i64))).collect();
        let mut q = Query::select();
        q.column(Alias::new("c"))
            .from(Alias::new("t"))
            .and_where(is_in(
                Expr::col(Alias::new("c")).into(),
                Kind::Int,
                values,
                dialect,
            ));
        match dialect {
            Dialect::Sqlite => q.build(SqliteQueryBuilder),
            Dialect::Postgres => q.build(PostgresQueryBuilder),
            Dialect::Mysql => q.build(MysqlQueryBuilder),
        }
    }

    #[test]
    fn a_long_list_is_one_json_parameter_in_every_dialect() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let (sql, values) = render(dialect, BIND_EACH_MAX + 1);
            assert_eq!(values.0.len(), 1, "{sql}");
            let Value::String(Some(list)) = &values.0[0] else {
                panic!("{values:?}")
            };
            let parsed: Vec<i64> = serde_json::from_str(list).unwrap();
            assert_eq!(parsed, (0..=BIND_EACH_MAX as i64).collect::<Vec<_>>());
            println!("{sql}");
        }
    }

    #[test]
    fn the_list_takes_its_place_among_other_parameters() {
        let values = (0..=BIND_EACH_MAX)
            .map(|i| Value::BigInt(Some(i as i64)))
            .collect();
        let mut q = Query::select();
        q.column(Alias::new("c"))
            .from(Alias::new("t"))
            .and_where(Expr::col(Alias::new("a")).eq(1))
            .and_where(is_in(
                Expr::col(Alias::new("c")).into(),
                Kind::Int,
                values,
                Dialect::Postgres,
            ))
            .and_where(Expr::col(Alias::new("b")).eq(2));
        let (sql, values) = q.build(PostgresQueryBuilder);
        assert!(
            sql.contains("CAST($2 AS json)") && sql.ends_with("\"b\" = $3"),
            "{sql}"
        );
        assert_eq!(values.0.len(), 3);
    }

    #[test]
    fn a_short_list_binds_each_value() {
        let (sql, values) = render(Dialect::Postgres, BIND_EACH_MAX);
        assert_eq!(values.0.len(), BIND_EACH_MAX, "{sql}");
    }
}
