//! Every statement the index runs, built with sea-query and no backend in sight:
//! render them with `SqliteQueryBuilder` (or PostgreSQL/MySQL) and bind the values
//! with [`crate::bind::bind_values`].

use crate::IndexError;
use crate::model::{Metric, MetricQuery, NewMetric, Nulls, SortDir};
use crate::resource_query::Kind;
use crate::schema::{ApT, MetricT, RuleT, STATUS_ACTIVE, STATUS_DELETE, SchemaVersion};
use crate::value_list::{self, Dialect};
use sea_query::{
    Cond, DeleteStatement, Expr, InsertStatement, LikeExpr, Order, Query, SelectStatement,
    SimpleExpr, UpdateStatement, Value,
};
use uuid::Uuid;

/// Text form of an id as stored: lowercase hyphenated.
pub(crate) fn uuid_text(id: &Uuid) -> String {
    id.as_hyphenated().to_string()
}

fn opt_uuid_value(id: Option<&Uuid>) -> Value {
    Value::String(id.map(|u| Box::new(uuid_text(u))))
}

fn opt_string_value(s: Option<&str>) -> Value {
    Value::String(s.map(|s| Box::new(s.to_owned())))
}

// ---------------------------------------------------------------- schema_version

pub(crate) fn select_schema_version() -> SelectStatement {
    Query::select()
        .expr(Expr::col(SchemaVersion::Version).max())
        .from(SchemaVersion::Table)
        .to_owned()
}

pub(crate) fn insert_schema_version(
    version: i64,
    description: &str,
    now_ns: i64,
) -> InsertStatement {
    Query::insert()
        .into_table(SchemaVersion::Table)
        .columns([
            SchemaVersion::Version,
            SchemaVersion::Description,
            SchemaVersion::AppliedAt,
        ])
        .values_panic([version.into(), description.into(), now_ns.into()])
        .to_owned()
}

// ---------------------------------------------------------------- archive policies

/// Columns, in this order: name, back_window, definition, aggregation_methods.
pub(crate) fn select_archive_policies(name: Option<&str>) -> SelectStatement {
    let mut q = Query::select();
    q.columns([
        ApT::Name,
        ApT::BackWindow,
        ApT::Definition,
        ApT::AggregationMethods,
    ])
    .from(ApT::Table)
    .order_by(ApT::Name, Order::Asc);
    if let Some(name) = name {
        q.and_where(Expr::col(ApT::Name).eq(name));
    }
    q
}

pub(crate) fn insert_archive_policy(
    name: &str,
    back_window: i64,
    definition: String,
    methods: String,
) -> InsertStatement {
    Query::insert()
        .into_table(ApT::Table)
        .columns([
            ApT::Name,
            ApT::BackWindow,
            ApT::Definition,
            ApT::AggregationMethods,
        ])
        .values_panic([
            name.into(),
            back_window.into(),
            definition.into(),
            methods.into(),
        ])
        .to_owned()
}

pub(crate) fn update_archive_policy(
    name: &str,
    definition: String,
    back_window: Option<i64>,
) -> UpdateStatement {
    let mut q = Query::update();
    q.table(ApT::Table).value(ApT::Definition, definition);
    if let Some(bw) = back_window {
        q.value(ApT::BackWindow, bw);
    }
    q.and_where(Expr::col(ApT::Name).eq(name));
    q
}

pub(crate) fn delete_archive_policy(name: &str) -> DeleteStatement {
    Query::delete()
        .from_table(ApT::Table)
        .and_where(Expr::col(ApT::Name).eq(name))
        .to_owned()
}

// ---------------------------------------------------------------- rules

/// Columns: name, metric_pattern, archive_policy_name; upstream's match order.
pub(crate) fn select_rules(name: Option<&str>) -> SelectStatement {
    let mut q = Query::select();
    q.columns([RuleT::Name, RuleT::MetricPattern, RuleT::ArchivePolicyName])
        .from(RuleT::Table)
        .order_by(RuleT::MetricPattern, Order::Desc)
        .order_by(RuleT::Name, Order::Asc);
    if let Some(name) = name {
        q.and_where(Expr::col(RuleT::Name).eq(name));
    }
    q
}

pub(crate) fn insert_rule(name: &str, pattern: &str, ap_name: &str) -> InsertStatement {
    Query::insert()
        .into_table(RuleT::Table)
        .columns([RuleT::Name, RuleT::MetricPattern, RuleT::ArchivePolicyName])
        .values_panic([name.into(), pattern.into(), ap_name.into()])
        .to_owned()
}

pub(crate) fn rename_rule(name: &str, new_name: &str) -> UpdateStatement {
    Query::update()
        .table(RuleT::Table)
        .value(RuleT::Name, new_name)
        .and_where(Expr::col(RuleT::Name).eq(name))
        .to_owned()
}

pub(crate) fn delete_rule(name: &str) -> DeleteStatement {
    Query::delete()
        .from_table(RuleT::Table)
        .and_where(Expr::col(RuleT::Name).eq(name))
        .to_owned()
}

// ---------------------------------------------------------------- metrics

pub(crate) fn insert_metric(m: &NewMetric, now_ns: i64) -> InsertStatement {
    insert_metrics(&[(m, now_ns)])
}

/// One INSERT of several metrics (created at the paired instants).
pub(crate) fn insert_metrics(metrics: &[(&NewMetric, i64)]) -> InsertStatement {
    let mut q = Query::insert();
    q.into_table(MetricT::Table).columns([
        MetricT::Id,
        MetricT::ArchivePolicyName,
        MetricT::Creator,
        MetricT::Name,
        MetricT::Unit,
        MetricT::ResourceId,
        MetricT::Status,
        MetricT::CreatedAt,
    ]);
    for (m, now_ns) in metrics {
        q.values_panic([
            uuid_text(&m.id).into(),
            m.archive_policy_name.as_str().into(),
            opt_string_value(m.creator.as_deref()).into(),
            opt_string_value(m.name.as_deref()).into(),
            opt_string_value(m.unit.as_deref()).into(),
            opt_uuid_value(m.resource_id.as_ref()).into(),
            STATUS_ACTIVE.into(),
            (*now_ns).into(),
        ]);
    }
    q
}

/// Active metrics joined with their policy. Columns, in this order:
/// id, name, unit, resource_id, creator, ap.name, ap.back_window, ap.definition,
/// ap.aggregation_methods (see `sqlite::metric_from_row`).
fn select_active_metrics() -> SelectStatement {
    Query::select()
        .columns([
            (MetricT::Table, MetricT::Id),
            (MetricT::Table, MetricT::Name),
            (MetricT::Table, MetricT::Unit),
            (MetricT::Table, MetricT::ResourceId),
            (MetricT::Table, MetricT::Creator),
        ])
        .columns([
            (ApT::Table, ApT::Name),
            (ApT::Table, ApT::BackWindow),
            (ApT::Table, ApT::Definition),
            (ApT::Table, ApT::AggregationMethods),
        ])
        .from(MetricT::Table)
        .inner_join(
            ApT::Table,
            Expr::col((ApT::Table, ApT::Name)).equals((MetricT::Table, MetricT::ArchivePolicyName)),
        )
        .and_where(Expr::col((MetricT::Table, MetricT::Status)).eq(STATUS_ACTIVE))
        .to_owned()
}

pub(crate) fn get_metrics(ids: &[Uuid]) -> SelectStatement {
    let mut q = select_active_metrics();
    if let [id] = ids {
        q.and_where(Expr::col((MetricT::Table, MetricT::Id)).eq(uuid_text(id)));
    } else {
        q.and_where(Expr::col((MetricT::Table, MetricT::Id)).is_in(ids.iter().map(uuid_text)));
    }
    q
}

/// Mark the active metrics among `ids` deleted (rows affected: how many were active).
pub(crate) fn delete_metrics(ids: &[Uuid]) -> UpdateStatement {
    Query::update()
        .table(MetricT::Table)
        .value(MetricT::Status, STATUS_DELETE)
        .value(MetricT::ResourceId, Value::String(None))
        .and_where(Expr::col(MetricT::Id).is_in(ids.iter().map(uuid_text)))
        .and_where(Expr::col(MetricT::Status).eq(STATUS_ACTIVE))
        .to_owned()
}

/// [`delete_metrics`], returning the ids it marked (SQLite >= 3.35, PostgreSQL;
/// not MySQL/MariaDB).
pub(crate) fn delete_metrics_returning(ids: &[Uuid]) -> UpdateStatement {
    delete_metrics(ids).returning_col(MetricT::Id).to_owned()
}

pub(crate) fn list_deleted_metrics(limit: usize) -> SelectStatement {
    Query::select()
        .column(MetricT::Id)
        .from(MetricT::Table)
        .and_where(Expr::col(MetricT::Status).eq(STATUS_DELETE))
        .limit(limit as u64)
        .to_owned()
}

pub(crate) fn expunge_metrics(ids: &[Uuid]) -> DeleteStatement {
    Query::delete()
        .from_table(MetricT::Table)
        .and_where(Expr::col(MetricT::Status).eq(STATUS_DELETE))
        .and_where(Expr::col(MetricT::Id).is_in(ids.iter().map(uuid_text)))
        .to_owned()
}

/// A sortable metric attribute.
struct SortColumn {
    col: MetricT,
    nullable: bool,
}

fn sort_column(key: &str) -> Option<SortColumn> {
    let (col, nullable) = match key {
        "id" => (MetricT::Id, false),
        "name" => (MetricT::Name, true),
        "unit" => (MetricT::Unit, true),
        "archive_policy_name" => (MetricT::ArchivePolicyName, false),
        "creator" => (MetricT::Creator, true),
        "resource_id" => (MetricT::ResourceId, true),
        _ => return None,
    };
    Some(SortColumn { col, nullable })
}

/// The value of a sort column in a metric, as stored (every sortable column is text).
fn sort_value(m: &Metric, col: MetricT) -> Option<String> {
    match col {
        MetricT::Id => Some(uuid_text(&m.id)),
        MetricT::Name => m.name.clone(),
        MetricT::Unit => m.unit.clone(),
        MetricT::ArchivePolicyName => Some(m.archive_policy.name.clone()),
        MetricT::Creator => m.creator.clone(),
        MetricT::ResourceId => m.resource_id.as_ref().map(uuid_text),
        _ => unreachable!("not a sort column"),
    }
}

/// One resolved ORDER BY term.
struct Term {
    col: MetricT,
    nullable: bool,
    desc: bool,
    nulls_first: bool,
}

/// Validate the sort keys and append `id` as the tie-breaker (unless already there).
fn resolve_sort(query: &MetricQuery) -> Result<Vec<Term>, IndexError> {
    let mut terms = Vec::with_capacity(query.sort.len() + 1);
    for key in &query.sort {
        let c = sort_column(&key.key).ok_or_else(|| IndexError::InvalidSortKey(key.key.clone()))?;
        let desc = key.dir == SortDir::Desc;
        let nulls_first = match key.nulls {
            Nulls::First => true,
            Nulls::Last => false,
            // PostgreSQL's default: NULLs sort as the largest value.
            Nulls::Default => desc,
        };
        terms.push(Term {
            col: c.col,
            nullable: c.nullable,
            desc,
            nulls_first,
        });
    }
    if !terms.iter().any(|t| matches!(t.col, MetricT::Id)) {
        terms.push(Term {
            col: MetricT::Id,
            nullable: false,
            desc: false,
            nulls_first: false,
        });
    }
    Ok(terms)
}

fn qcol(col: MetricT) -> Expr {
    Expr::col((MetricT::Table, col))
}

/// `col` equals `v`, NULL included.
fn same(col: MetricT, v: &Option<String>) -> SimpleExpr {
    match v {
        None => qcol(col).is_null(),
        Some(v) => qcol(col).eq(v.as_str()),
    }
}

/// `col` sorts strictly after `v` under `t`; `None` when nothing can.
fn after(t: &Term, v: &Option<String>) -> Option<SimpleExpr> {
    match v {
        // Only non-NULLs follow a NULL, and only when NULLs come first.
        None => (t.nullable && t.nulls_first).then(|| qcol(t.col).is_not_null()),
        Some(v) => {
            let strict = if t.desc {
                qcol(t.col).lt(v.as_str())
            } else {
                qcol(t.col).gt(v.as_str())
            };
            if t.nullable && !t.nulls_first {
                Some(Cond::any().add(strict).add(qcol(t.col).is_null()).into())
            } else {
                Some(strict)
            }
        }
    }
}

/// The rows strictly after `marker` in the order of `terms`: the lexicographic
/// expansion `k1 > m1 OR (k1 = m1 AND k2 > m2) OR ...`, NULL-aware.
fn keyset_after(terms: &[Term], marker: &Metric) -> Cond {
    let values: Vec<Option<String>> = terms.iter().map(|t| sort_value(marker, t.col)).collect();
    let mut any = Cond::any();
    for (i, t) in terms.iter().enumerate() {
        let Some(after) = after(t, &values[i]) else {
            continue;
        };
        let mut all = Cond::all();
        for (prev, v) in terms[..i].iter().zip(&values) {
            all = all.add(same(prev.col, v));
        }
        any = any.add(all.add(after));
    }
    // With `id` always a term and ids non-NULL, `any` is never empty.
    any
}

/// Filters, sort, keyset pagination after `marker` (already looked up), limit.
pub(crate) fn list_metrics(
    query: &MetricQuery,
    marker: Option<&Metric>,
    dialect: Dialect,
) -> Result<SelectStatement, IndexError> {
    let terms = resolve_sort(query)?;
    let mut q = select_active_metrics();
    if !query.ids.is_empty() {
        let ids = query.ids.iter().map(|u| uuid_text(u).into()).collect();
        q.and_where(value_list::is_in(
            qcol(MetricT::Id).into(),
            Kind::Uuid,
            ids,
            dialect,
        ));
    }
    if let Some(name) = &query.name {
        q.and_where(qcol(MetricT::Name).eq(name.as_str()));
    }
    if let Some(unit) = &query.unit {
        q.and_where(qcol(MetricT::Unit).eq(unit.as_str()));
    }
    if let Some(ap) = &query.archive_policy_name {
        q.and_where(qcol(MetricT::ArchivePolicyName).eq(ap.as_str()));
    }
    if let Some(creator) = &query.creator {
        q.and_where(creator_filter(creator));
    }
    if let Some(rid) = &query.resource_id {
        q.and_where(qcol(MetricT::ResourceId).eq(uuid_text(rid)));
    }
    if let Some(v) = &query.visibility {
        q.cond_where(visibility_filter(v));
    }
    if let Some(marker) = marker {
        q.cond_where(keyset_after(&terms, marker));
    }
    for t in &terms {
        if t.nullable {
            // Portable NULLS FIRST/LAST: false (0) sorts before true (1) everywhere.
            let order = if t.nulls_first {
                Order::Desc
            } else {
                Order::Asc
            };
            q.order_by_expr(qcol(t.col).is_null(), order);
        }
        q.order_by_expr(
            qcol(t.col).into(),
            if t.desc { Order::Desc } else { Order::Asc },
        );
    }
    if let Some(limit) = query.limit {
        q.limit(limit as u64);
    }
    Ok(q)
}

/// Exact match, except upstream's partial forms: `user:` matches every project of
/// that user and `:project` every user of that project.
fn creator_filter(creator: &str) -> SimpleExpr {
    let escaped = || {
        creator
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    };
    if creator.len() > 1 && creator.starts_with(':') {
        qcol(MetricT::Creator).like(LikeExpr::new(format!("%{}", escaped())).escape('\\'))
    } else if creator.len() > 1 && creator.ends_with(':') {
        qcol(MetricT::Creator).like(LikeExpr::new(format!("{}%", escaped())).escape('\\'))
    } else {
        qcol(MetricT::Creator).eq(creator)
    }
}

/// Any of the visibility conditions; none: matches nothing.
fn visibility_filter(v: &crate::model::MetricVisibility) -> Cond {
    use crate::schema_resource::ResourceT;
    let mut any = Cond::any();
    if let Some(p) = &v.created_by_project {
        let escaped = p
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        any = any
            .add(qcol(MetricT::Creator).like(LikeExpr::new(format!("%:{escaped}")).escape('\\')));
    }
    if let Some(p) = &v.resource_project {
        // A subquery rather than a join: metrics without a resource stay visible
        // through their creator.
        let owned = Query::select()
            .column((ResourceT::Table, ResourceT::Id))
            .from(ResourceT::Table)
            .and_where(Expr::col((ResourceT::Table, ResourceT::ProjectId)).eq(p.as_str()))
            .to_owned();
        any = any.add(qcol(MetricT::ResourceId).in_subquery(owned));
    }
    if v.created_by_project.is_none() && v.resource_project.is_none() {
        any = any.add(Expr::val(1).eq(0));
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SortKey;
    use sea_query::{MysqlQueryBuilder, PostgresQueryBuilder, QueryBuilder, SqliteQueryBuilder};

    #[test]
    fn every_backend_renders_a_paginated_listing() {
        let query = MetricQuery {
            name: Some("cpu".into()),
            creator: Some("alice:".into()),
            sort: vec![SortKey {
                key: "unit".into(),
                dir: SortDir::Desc,
                nulls: Nulls::Last,
            }],
            limit: Some(10),
            ..Default::default()
        };
        let marker = Metric {
            id: Uuid::nil(),
            name: Some("cpu".into()),
            unit: None,
            resource_id: None,
            creator: Some("alice:p".into()),
            archive_policy: std::sync::Arc::new(carbonara::ArchivePolicy {
                name: "low".into(),
                back_window: 0,
                definition: vec![],
                aggregation_methods: vec![],
            }),
        };
        let builders: [&dyn QueryBuilder; 3] = [
            &SqliteQueryBuilder,
            &PostgresQueryBuilder,
            &MysqlQueryBuilder,
        ];
        for b in builders {
            let (sql, values) = list_metrics(&query, Some(&marker), Dialect::Sqlite)
                .unwrap()
                .build_any(b);
            assert!(sql.contains("IS NULL"), "{sql}");
            assert!(!values.0.is_empty());
        }
    }

    #[test]
    fn unknown_sort_key_is_rejected() {
        let query = MetricQuery {
            sort: vec![SortKey {
                key: "nonexistent_key".into(),
                dir: SortDir::Asc,
                nulls: Nulls::Default,
            }],
            ..Default::default()
        };
        assert!(matches!(
            list_metrics(&query, None, Dialect::Sqlite),
            Err(IndexError::InvalidSortKey(k)) if k == "nonexistent_key"
        ));
    }
}
