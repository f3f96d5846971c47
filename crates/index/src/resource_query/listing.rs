//! Reading resources: the derived table `result` (current rows, with history
//! the UNION ALL of the history tables), one resource, and the listing with its
//! sort and keyset pagination after a marker over any sort.

use super::columns::{Columns, Kind, is_null, rcol};
use super::compile::compile;
use super::{RESULT, REVISION, REVISION_END};
use crate::IndexError;
use crate::filter::Filter;
use crate::model::{Nulls, SortDir, SortKey};
use crate::model_resource::{GENERIC, ResourceQuery, ResourceType};
use crate::query::uuid_text;
use crate::schema_resource::{BASE_COLUMNS, HistoryT, ResourceT, history_table};
use crate::value_list::Dialect;
use sea_query::{Alias, Cond, Expr, Order, Query, SelectStatement, SimpleExpr, UnionType, Value};
use uuid::Uuid;

/// `resource` (joined with the type's table) as `result`'s current rows.
fn current_rows(rt: &ResourceType) -> SelectStatement {
    let r = ResourceT::Table;
    let mut q = Query::select();
    for c in BASE_COLUMNS {
        q.column((r, c));
    }
    q.expr_as(Expr::val(-1i64), Alias::new(REVISION))
        .expr_as(Expr::value(Value::BigInt(None)), Alias::new(REVISION_END))
        .from(r);
    if let Some(table) = &rt.tablename {
        let t = Alias::new(table);
        for a in &rt.attributes {
            q.column((t.clone(), Alias::new(&a.name)));
        }
        q.inner_join(
            t.clone(),
            Expr::col((t, ResourceT::Id)).equals((r, ResourceT::Id)),
        );
    } else if rt.name != GENERIC {
        q.and_where(Expr::col((r, ResourceT::Type)).eq(rt.name.as_str()));
    }
    q
}

/// `resource_history` (joined with the type's history table).
fn history_rows(rt: &ResourceType) -> SelectStatement {
    let h = HistoryT::Table;
    let mut q = Query::select();
    for c in BASE_COLUMNS {
        q.column((h, c));
    }
    q.column((h, HistoryT::Revision))
        .column((h, HistoryT::RevisionEnd))
        .from(h);
    if let Some(table) = &rt.tablename {
        let t = Alias::new(history_table(table));
        for a in &rt.attributes {
            q.column((t.clone(), Alias::new(&a.name)));
        }
        q.inner_join(
            t.clone(),
            Expr::col((t, HistoryT::Revision)).equals((h, HistoryT::Revision)),
        );
    } else if rt.name != GENERIC {
        q.and_where(Expr::col((h, ResourceT::Type)).eq(rt.name.as_str()));
    }
    q
}

fn derived(rt: &ResourceType, history: bool) -> SelectStatement {
    let mut q = current_rows(rt);
    if history {
        q.union(UnionType::All, history_rows(rt));
    }
    q
}

/// `SELECT <all result columns> FROM (<derived>) AS result`.
fn select_result(rt: &ResourceType, history: bool) -> SelectStatement {
    let cols = Columns::new(rt, history);
    let mut q = Query::select();
    for (name, _, _) in &cols.fields {
        q.column((Alias::new(RESULT), Alias::new(name)));
    }
    q.from_subquery(derived(rt, history), Alias::new(RESULT));
    q
}

/// Lock a resource's base row for the rest of the transaction (`FOR UPDATE` on
/// PostgreSQL and MySQL; SQLite's write transaction already excludes other
/// writers), so that concurrent updates of one resource apply one after the
/// other and each records its own revision.
pub(crate) fn lock_resource(id: &Uuid) -> SelectStatement {
    Query::select()
        .column(ResourceT::Id)
        .from(ResourceT::Table)
        .and_where(Expr::col(ResourceT::Id).eq(uuid_text(id)))
        .lock_exclusive()
        .to_owned()
}

/// One current resource of the type (any type for `generic`, base columns only).
pub(crate) fn select_resource(rt: &ResourceType, id: &Uuid) -> SelectStatement {
    let mut q = select_result(rt, false);
    q.and_where(Expr::expr(rcol("id")).eq(uuid_text(id)));
    q
}

/// One resolved ORDER BY term.
#[derive(Debug, Clone)]
pub(crate) struct Term {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    nullable: bool,
    desc: bool,
    nulls_first: bool,
}

/// Validate the sort keys; append `id` (and `revision` with history) as tie-breakers.
pub(crate) fn resolve_sort(q: &ResourceQuery, cols: &Columns) -> Result<Vec<Term>, IndexError> {
    let mut terms: Vec<Term> = Vec::with_capacity(q.sort.len() + 4);
    // No sort: upstream's default for resources.
    let default_sort = [
        SortKey {
            key: "revision_start".into(),
            dir: SortDir::Asc,
            nulls: Nulls::Default,
        },
        SortKey {
            key: "started_at".into(),
            dir: SortDir::Asc,
            nulls: Nulls::Default,
        },
    ];
    let keys = if q.sort.is_empty() {
        &default_sort[..]
    } else {
        &q.sort[..]
    };
    for key in keys {
        let (kind, nullable) = cols
            .get(&key.key)
            .ok_or_else(|| IndexError::InvalidSortKey(key.key.clone()))?;
        let desc = key.dir == SortDir::Desc;
        let nulls_first = match key.nulls {
            Nulls::First => true,
            Nulls::Last => false,
            // PostgreSQL's default (upstream's reference backend): NULL is largest.
            Nulls::Default => desc,
        };
        terms.push(Term {
            name: key.key.clone(),
            kind,
            nullable,
            desc,
            nulls_first,
        });
    }
    let mut tie = vec![("id", Kind::Uuid)];
    if q.history {
        tie.push((REVISION, Kind::Int));
    }
    for (name, kind) in tie {
        if !terms.iter().any(|t| t.name == name) {
            terms.push(Term {
                name: name.to_owned(),
                kind,
                nullable: false,
                desc: false,
                nulls_first: false,
            });
        }
    }
    Ok(terms)
}

/// The marker row's sort values: `SELECT <term columns> FROM result WHERE id = ? AND revision = ?`.
pub(crate) fn select_marker(
    rt: &ResourceType,
    history: bool,
    terms: &[Term],
    id: &Uuid,
    revision: i64,
) -> SelectStatement {
    let mut q = Query::select();
    for t in terms {
        q.column((Alias::new(RESULT), Alias::new(&t.name)));
    }
    q.from_subquery(derived(rt, history), Alias::new(RESULT))
        .and_where(Expr::expr(rcol("id")).eq(uuid_text(id)))
        .and_where(Expr::expr(rcol(REVISION)).eq(revision));
    q
}

/// `col` equals `v`, NULL included.
fn same(t: &Term, v: &Value) -> SimpleExpr {
    if is_null(v) {
        Expr::expr(rcol(&t.name)).is_null()
    } else {
        Expr::expr(rcol(&t.name)).eq(v.clone())
    }
}

/// `col` sorts strictly after `v` under `t`; `None` when nothing can.
fn after(t: &Term, v: &Value) -> Option<SimpleExpr> {
    let col = || Expr::expr(rcol(&t.name));
    if is_null(v) {
        // Only non-NULLs follow a NULL, and only when NULLs come first.
        return (t.nullable && t.nulls_first).then(|| col().is_not_null());
    }
    let strict = if t.desc {
        col().lt(v.clone())
    } else {
        col().gt(v.clone())
    };
    Some(if t.nullable && !t.nulls_first {
        Cond::any().add(strict).add(col().is_null()).into()
    } else {
        strict
    })
}

/// Rows strictly after the marker: `k1 > m1 OR (k1 = m1 AND k2 > m2) OR ...`.
fn keyset_after(terms: &[Term], values: &[Value]) -> Cond {
    let mut any = Cond::any();
    for (i, t) in terms.iter().enumerate() {
        let Some(after) = after(t, &values[i]) else {
            continue;
        };
        let mut all = Cond::all();
        for (prev, v) in terms[..i].iter().zip(values) {
            all = all.add(same(prev, v));
        }
        any = any.add(all.add(after));
    }
    any
}

/// The listing: filter, keyset after the marker's values, sort, limit.
pub(crate) fn list_resources(
    rt: &ResourceType,
    q: &ResourceQuery,
    terms: &[Term],
    marker: Option<&[Value]>,
    dialect: Dialect,
) -> Result<SelectStatement, IndexError> {
    let cols = Columns::new(rt, q.history);
    let mut s = select_result(rt, q.history);
    if let Some(f) = &q.filter {
        s.and_where(compile(f, &cols, dialect)?);
    }
    if let Some(values) = marker {
        s.cond_where(keyset_after(terms, values));
    }
    for t in terms {
        if t.nullable {
            // Portable NULLS FIRST/LAST: false (0) sorts before true (1) everywhere.
            let order = if t.nulls_first {
                Order::Desc
            } else {
                Order::Asc
            };
            s.order_by_expr(Expr::expr(rcol(&t.name)).is_null(), order);
        }
        s.order_by_expr(rcol(&t.name), if t.desc { Order::Desc } else { Order::Asc });
    }
    if let Some(limit) = q.limit {
        s.limit(limit as u64);
    }
    Ok(s)
}

/// Ids of the current resources of the type matching `filter`.
pub(crate) fn select_matching_ids(
    rt: &ResourceType,
    filter: &Filter,
    dialect: Dialect,
) -> Result<SelectStatement, IndexError> {
    let cols = Columns::new(rt, false);
    let mut q = Query::select();
    q.column((Alias::new(RESULT), ResourceT::Id))
        .from_subquery(derived(rt, false), Alias::new(RESULT))
        .and_where(compile(filter, &cols, dialect)?);
    Ok(q)
}

/// Attribute values of some rows of a type: current rows by id, history rows by
/// revision. Columns: the key, then the attributes in definition order.
pub(crate) fn select_type_rows(
    rt: &ResourceType,
    history: bool,
    keys: Vec<Value>,
) -> Option<SelectStatement> {
    let table = rt.tablename.as_ref()?;
    let (table, key) = if history {
        (history_table(table), Alias::new(REVISION))
    } else {
        (table.clone(), Alias::new("id"))
    };
    let mut q = Query::select();
    q.column(key.clone());
    for a in &rt.attributes {
        q.column(Alias::new(&a.name));
    }
    q.from(Alias::new(table))
        .and_where(Expr::col(key).is_in(keys));
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{CmpOp, FilterValue};
    use crate::resource_query::tests_support::host;
    use crate::schema_resource::{add_column, create_type_tables, drop_column};
    use sea_query::{
        MysqlQueryBuilder, PostgresQueryBuilder, QueryBuilder, SchemaBuilder, SqliteQueryBuilder,
    };

    #[test]
    fn every_backend_renders_a_filtered_history_listing_and_the_ddl() {
        let rt = host();
        let s = |v: &str| FilterValue::String(v.into());
        let filter = Filter::And(vec![
            Filter::Compare {
                op: CmpOp::Ne,
                field: "display-name".into(),
                value: s("x"),
            },
            Filter::Compare {
                op: CmpOp::Ge,
                field: "size".into(),
                value: FilterValue::Int(3),
            },
            Filter::Compare {
                op: CmpOp::Lt,
                field: "lifespan".into(),
                value: s("1h"),
            },
            Filter::Compare {
                op: CmpOp::Eq,
                field: "created_by_project_id".into(),
                value: s("p"),
            },
            Filter::In {
                field: "id".into(),
                values: vec![s(&Uuid::nil().to_string())],
            },
            Filter::Like {
                field: "user_id".into(),
                pattern: s("a%"),
            },
            Filter::Not(Box::new(Filter::Or(vec![Filter::Compare {
                op: CmpOp::Eq,
                field: "revision_end".into(),
                value: FilterValue::Null,
            }]))),
        ]);
        let mut q = ResourceQuery::new("host");
        q.history = true;
        q.filter = Some(filter);
        q.sort = vec![SortKey {
            key: "size".into(),
            dir: SortDir::Desc,
            nulls: Nulls::Last,
        }];
        q.limit = Some(5);
        let cols = Columns::new(&rt, true);
        let terms = resolve_sort(&q, &cols).unwrap();
        let marker: Vec<Value> = terms.iter().map(|t| t.kind.null()).collect();
        let builders: [&dyn QueryBuilder; 3] = [
            &SqliteQueryBuilder,
            &PostgresQueryBuilder,
            &MysqlQueryBuilder,
        ];
        for b in builders {
            let (sql, _) = list_resources(&rt, &q, &terms, Some(&marker), Dialect::Sqlite)
                .unwrap()
                .build_any(b);
            assert!(sql.contains("UNION ALL"), "{sql}");
            assert!(sql.contains("LIKE"), "{sql}");
        }
        let schemas: [&dyn SchemaBuilder; 3] = [
            &SqliteQueryBuilder,
            &PostgresQueryBuilder,
            &MysqlQueryBuilder,
        ];
        for b in schemas {
            for t in create_type_tables("rt_0123", &rt.attributes) {
                assert!(t.build_any(b).contains("rt_0123"));
            }
            assert!(
                add_column("rt_0123", &rt.attributes[1])
                    .build_any(b)
                    .contains("ADD")
            );
            assert!(drop_column("rt_0123", "size").build_any(b).contains("DROP"));
        }
    }
}
