//! The compilation of a [`Filter`] into a WHERE clause over `result`'s
//! columns: upstream's operators and their NULL rules, `lifespan`, the
//! `created_by_*` halves of `creator`, `in` lists of any length and the cap on
//! bound parameters.

use super::RESULT;
use super::columns::{Columns, Kind, cast, invalid, is_null, rcol};
use crate::IndexError;
use crate::filter::{CmpOp, Filter, FilterValue, MAX_FILTER_DEPTH};
use crate::schema_resource::ResourceT;
use crate::value_list::{self, Dialect};
use sea_query::{Alias, Cond, Expr, LikeExpr, SimpleExpr, Value};

fn never() -> SimpleExpr {
    Expr::val(1).eq(0)
}

fn always() -> SimpleExpr {
    Expr::val(1).eq(1)
}

fn compare(col: SimpleExpr, op: CmpOp, v: Value) -> SimpleExpr {
    let e = Expr::expr(col.clone());
    if is_null(&v) {
        return match op {
            CmpOp::Eq => e.is_null(),
            CmpOp::Ne => e.is_not_null(),
            // `x < NULL` is never true.
            _ => never(),
        };
    }
    match op {
        CmpOp::Eq => e.eq(v),
        // Upstream's `!=` also matches rows where the field is unset.
        CmpOp::Ne => Cond::any()
            .add(Expr::expr(col).is_null())
            .add(e.ne(v))
            .into(),
        CmpOp::Lt => e.lt(v),
        CmpOp::Le => e.lte(v),
        CmpOp::Gt => e.gt(v),
        CmpOp::Ge => e.gte(v),
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `created_by_user_id` / `created_by_project_id`: the halves of `creator`.
fn created_by(
    field: &str,
    like: bool,
    value: &FilterValue,
    user: bool,
) -> Result<String, IndexError> {
    let FilterValue::String(v) = value else {
        return Err(invalid(value, field));
    };
    let v = if like { v.clone() } else { escape_like(v) };
    Ok(if user {
        format!("{v}:%")
    } else {
        format!("%:{v}")
    })
}

fn creator_like(pattern: String) -> SimpleExpr {
    Expr::col((Alias::new(RESULT), ResourceT::Creator)).like(LikeExpr::new(pattern).escape('\\'))
}

/// Compile a filter against `result`'s columns, for `dialect` (long `in` lists
/// differ, see [`crate::value_list`]).
///
/// A filter that would bind more than [`value_list::MAX_BOUND_VALUES`]
/// parameters (thousands of comparisons rather than one long `in`) is refused as
/// an invalid query: the engines cap bound parameters per statement.
pub(crate) fn compile(
    filter: &Filter,
    cols: &Columns,
    dialect: Dialect,
) -> Result<SimpleExpr, IndexError> {
    if filter.depth() > MAX_FILTER_DEPTH {
        return Err(IndexError::InvalidQuery(format!(
            "the query is nested more than {MAX_FILTER_DEPTH} levels deep"
        )));
    }
    let mut c = Compiler {
        cols,
        dialect,
        bound: 0,
    };
    let expr = c.node(filter)?;
    if c.bound > value_list::MAX_BOUND_VALUES {
        return Err(IndexError::InvalidQuery(format!(
            "the query compares with more than {} values: give long lists of values to `in`",
            value_list::MAX_BOUND_VALUES
        )));
    }
    Ok(expr)
}

struct Compiler<'a> {
    cols: &'a Columns,
    dialect: Dialect,
    /// Parameters bound so far.
    bound: usize,
}

impl Compiler<'_> {
    fn node(&mut self, filter: &Filter) -> Result<SimpleExpr, IndexError> {
        let cols = self.cols;
        self.bound += 1;
        Ok(match filter {
            Filter::And(v) => {
                if v.is_empty() {
                    return Ok(always());
                }
                let mut c = Cond::all();
                for f in v {
                    c = c.add(self.node(f)?);
                }
                c.into()
            }
            Filter::Or(v) => {
                if v.is_empty() {
                    return Ok(never());
                }
                let mut c = Cond::any();
                for f in v {
                    c = c.add(self.node(f)?);
                }
                c.into()
            }
            Filter::Not(f) => self.node(f)?.not(),
            Filter::Compare { op, field, value } => match field.as_str() {
                "lifespan" => {
                    let ns = match value {
                        FilterValue::Int(i) => i.checked_mul(1_000_000_000),
                        FilterValue::Float(f) if f.is_finite() => Some((f * 1e9) as i64),
                        FilterValue::String(s) => carbonara::time::parse_timespan(s).ok(),
                        _ => None,
                    }
                    .ok_or_else(|| invalid(value, field))?;
                    let span: SimpleExpr = Expr::col((Alias::new(RESULT), ResourceT::EndedAt))
                        .sub(Expr::col((Alias::new(RESULT), ResourceT::StartedAt)));
                    compare(span, *op, Value::BigInt(Some(ns)))
                }
                "created_by_user_id" | "created_by_project_id" => {
                    let user = field == "created_by_user_id";
                    match op {
                        CmpOp::Eq => creator_like(created_by(field, false, value, user)?),
                        CmpOp::Ne => creator_like(created_by(field, false, value, user)?).not(),
                        _ => return Err(invalid(value, field)),
                    }
                }
                name => {
                    let (kind, _) = cols.get(name).ok_or_else(|| cols.no_attribute(name))?;
                    compare(rcol(name), *op, cast(value, kind, name)?)
                }
            },
            Filter::In { field, values } => {
                let (kind, _) = cols.get(field).ok_or_else(|| cols.no_attribute(field))?;
                let mut with_null = false;
                let mut cast_values = Vec::with_capacity(values.len());
                for v in values {
                    let c = cast(v, kind, field)?;
                    if is_null(&c) {
                        with_null = true;
                    } else {
                        cast_values.push(c);
                    }
                }
                let mut any = Cond::any();
                if !cast_values.is_empty() {
                    if cast_values.len() <= value_list::BIND_EACH_MAX {
                        self.bound += cast_values.len();
                    }
                    any = any.add(value_list::is_in(
                        rcol(field),
                        kind,
                        cast_values,
                        self.dialect,
                    ));
                }
                if with_null {
                    any = any.add(Expr::expr(rcol(field)).is_null());
                }
                if any.is_empty() { never() } else { any.into() }
            }
            Filter::Like { field, pattern } => match field.as_str() {
                "created_by_user_id" | "created_by_project_id" => creator_like(created_by(
                    field,
                    true,
                    pattern,
                    field == "created_by_user_id",
                )?),
                name => {
                    let (kind, _) = cols.get(name).ok_or_else(|| cols.no_attribute(name))?;
                    if !matches!(kind, Kind::Text | Kind::Uuid) || *pattern == FilterValue::Null {
                        return Err(invalid(pattern, name));
                    }
                    Expr::expr(rcol(name)).like(LikeExpr::new(pattern.to_string()))
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource_query::tests_support::host;

    #[test]
    fn unknown_fields_and_bad_values_are_reported() {
        let rt = host();
        let cols = Columns::new(&rt, false);
        let f = Filter::Compare {
            op: CmpOp::Eq,
            field: "revision_end".into(),
            value: FilterValue::Null,
        };
        assert!(matches!(
            compile(&f, &cols, Dialect::Sqlite),
            Err(IndexError::QueryAttributeError { .. })
        ));
        let f = Filter::Compare {
            op: CmpOp::Eq,
            field: "size".into(),
            value: FilterValue::String("big".into()),
        };
        assert!(matches!(
            compile(&f, &cols, Dialect::Sqlite),
            Err(IndexError::QueryValueError { .. })
        ));
    }
}
