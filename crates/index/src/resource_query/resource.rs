//! Writing resources: their base rows, their type's rows, the revisions copied
//! into the history tables, and the metrics attached to them.

use super::columns::{Kind, attr_value, base_name};
use super::{REVISION, REVISION_END};
use crate::IndexError;
use crate::model_resource::{AttrValue, ResourceType};
use crate::query::uuid_text;
use crate::schema::{MetricT, STATUS_ACTIVE, STATUS_DELETE};
use crate::schema_resource::{BASE_COLUMNS, HistoryT, ResourceT, history_table};
use sea_query::{
    Alias, DeleteStatement, Expr, InsertStatement, Order, Query, SelectStatement, SimpleExpr,
    UpdateStatement, Value,
};
use uuid::Uuid;

/// Base column values of a new or updated row.
pub(crate) struct BaseRow<'a> {
    pub(crate) id: &'a Uuid,
    pub(crate) resource_type: &'a str,
    pub(crate) creator: Option<&'a str>,
    pub(crate) started_at: i64,
    pub(crate) revision_start: i64,
    pub(crate) ended_at: Option<i64>,
    pub(crate) user_id: Option<&'a str>,
    pub(crate) project_id: Option<&'a str>,
    pub(crate) original_resource_id: &'a str,
}

fn opt_str(s: Option<&str>) -> Value {
    Value::String(s.map(|s| Box::new(s.to_owned())))
}

pub(crate) fn insert_resource(row: &BaseRow<'_>) -> InsertStatement {
    Query::insert()
        .into_table(ResourceT::Table)
        .columns(BASE_COLUMNS)
        .values_panic([
            uuid_text(row.id).into(),
            row.resource_type.into(),
            opt_str(row.creator).into(),
            row.started_at.into(),
            row.revision_start.into(),
            Value::BigInt(row.ended_at).into(),
            opt_str(row.user_id).into(),
            opt_str(row.project_id).into(),
            row.original_resource_id.into(),
        ])
        .to_owned()
}

/// The type's row for a resource: id plus every attribute (missing ones NULL).
pub(crate) fn insert_type_row(
    rt: &ResourceType,
    id: &Uuid,
    values: &[(String, AttrValue)],
) -> Option<InsertStatement> {
    let table = rt.tablename.as_ref()?;
    let mut cols = vec![Alias::new("id")];
    let mut vals: Vec<SimpleExpr> = vec![uuid_text(id).into()];
    for a in &rt.attributes {
        cols.push(Alias::new(&a.name));
        let v = values
            .iter()
            .find(|(n, _)| *n == a.name)
            .map_or(AttrValue::Null, |(_, v)| v.clone());
        vals.push(attr_value(&v, Kind::of(&a.kind)).into());
    }
    Some(
        Query::insert()
            .into_table(Alias::new(table))
            .columns(cols)
            .values_panic(vals)
            .to_owned(),
    )
}

/// Copy the current base row into `resource_history`, ending it at `now`;
/// returns the new revision (`RETURNING`: SQLite ≥ 3.35 and PostgreSQL; MySQL
/// needs `LAST_INSERT_ID()` in its adapter).
pub(crate) fn insert_history(id: &Uuid, now: i64) -> Result<InsertStatement, IndexError> {
    let mut select = Query::select();
    for c in BASE_COLUMNS {
        select.column(c);
    }
    select
        .expr(Expr::val(now))
        .from(ResourceT::Table)
        .and_where(Expr::col(ResourceT::Id).eq(uuid_text(id)));
    let mut cols: Vec<Alias> = BASE_COLUMNS
        .iter()
        .map(|c| Alias::new(base_name(*c)))
        .collect();
    cols.push(Alias::new(REVISION_END));
    let mut q = Query::insert();
    q.into_table(HistoryT::Table)
        .columns(cols)
        .select_from(select)
        .map_err(|e| IndexError::internal("resource history insert", e))?;
    q.returning_col(HistoryT::Revision);
    Ok(q)
}

/// Copy the type's current row into its history table under `revision`.
pub(crate) fn insert_type_history(
    rt: &ResourceType,
    id: &Uuid,
    revision: i64,
) -> Result<Option<InsertStatement>, IndexError> {
    let Some(table) = &rt.tablename else {
        return Ok(None);
    };
    let mut select = Query::select();
    select.expr(Expr::val(revision));
    let mut cols = vec![Alias::new(REVISION)];
    for a in &rt.attributes {
        select.column(Alias::new(&a.name));
        cols.push(Alias::new(&a.name));
    }
    select
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("id")).eq(uuid_text(id)));
    let mut q = Query::insert();
    q.into_table(Alias::new(history_table(table)))
        .columns(cols)
        .select_from(select)
        .map_err(|e| IndexError::internal("resource type history insert", e))?;
    Ok(Some(q))
}

pub(crate) fn update_resource(id: &Uuid, changes: Vec<(ResourceT, Value)>) -> UpdateStatement {
    let mut q = Query::update();
    q.table(ResourceT::Table);
    for (c, v) in changes {
        q.value(c, v);
    }
    q.and_where(Expr::col(ResourceT::Id).eq(uuid_text(id)));
    q
}

pub(crate) fn update_type_row(
    rt: &ResourceType,
    id: &Uuid,
    values: &[(String, AttrValue)],
) -> Option<UpdateStatement> {
    let table = rt.tablename.as_ref()?;
    if values.is_empty() {
        return None;
    }
    let mut q = Query::update();
    q.table(Alias::new(table));
    for (name, v) in values {
        let kind = rt.attribute(name).map_or(Kind::Text, |a| Kind::of(&a.kind));
        q.value(Alias::new(name), attr_value(v, kind));
    }
    q.and_where(Expr::col(Alias::new("id")).eq(uuid_text(id)));
    Some(q)
}

pub(crate) fn delete_resources(ids: &[Uuid]) -> DeleteStatement {
    Query::delete()
        .from_table(ResourceT::Table)
        .and_where(Expr::col(ResourceT::Id).is_in(ids.iter().map(uuid_text)))
        .to_owned()
}

/// Columns: resource_id, name, id.
pub(crate) fn select_resource_metrics(ids: &[Uuid]) -> SelectStatement {
    Query::select()
        .columns([MetricT::ResourceId, MetricT::Name, MetricT::Id])
        .from(MetricT::Table)
        .and_where(Expr::col(MetricT::Status).eq(STATUS_ACTIVE))
        .and_where(Expr::col(MetricT::ResourceId).is_in(ids.iter().map(uuid_text)))
        .order_by(MetricT::Name, Order::Asc)
        .to_owned()
}

/// Detach the active metrics of a resource (they stay, without resource).
pub(crate) fn detach_metrics(id: &Uuid) -> UpdateStatement {
    Query::update()
        .table(MetricT::Table)
        .value(MetricT::ResourceId, Value::String(None))
        .and_where(Expr::col(MetricT::ResourceId).eq(uuid_text(id)))
        .and_where(Expr::col(MetricT::Status).eq(STATUS_ACTIVE))
        .to_owned()
}

/// Attach an existing active metric of the same creator under `name`.
pub(crate) fn attach_metric(
    metric: &Uuid,
    resource: &Uuid,
    name: &str,
    creator: Option<&str>,
) -> UpdateStatement {
    let mut q = Query::update();
    q.table(MetricT::Table)
        .value(MetricT::ResourceId, uuid_text(resource))
        .value(MetricT::Name, name)
        .and_where(Expr::col(MetricT::Id).eq(uuid_text(metric)))
        .and_where(Expr::col(MetricT::Status).eq(STATUS_ACTIVE));
    match creator {
        Some(c) => q.and_where(Expr::col(MetricT::Creator).eq(c)),
        None => q.and_where(Expr::col(MetricT::Creator).is_null()),
    };
    q
}

/// Mark the metrics of deleted resources for the janitor.
pub(crate) fn delete_resources_metrics(ids: &[Uuid]) -> UpdateStatement {
    Query::update()
        .table(MetricT::Table)
        .value(MetricT::Status, STATUS_DELETE)
        .value(MetricT::ResourceId, Value::String(None))
        .and_where(Expr::col(MetricT::ResourceId).is_in(ids.iter().map(uuid_text)))
        .to_owned()
}
