//! Statements about resource types: their rows in `resource_type` and the
//! filling of a new attribute's column in the type's tables.

use super::attributes::encode_attributes;
use super::columns::{Kind, attr_value};
use crate::model_resource::{AttrValue, AttributeSchema, ResourceType, ResourceTypeState};
use crate::schema_resource::{ResourceT, ResourceTypeT};
use sea_query::{
    Alias, DeleteStatement, Expr, InsertStatement, Order, Query, SelectStatement, UpdateStatement,
    Value,
};

/// Columns: name, tablename, attributes, state.
pub(crate) fn select_resource_types(name: Option<&str>) -> SelectStatement {
    let mut q = Query::select();
    q.columns([
        ResourceTypeT::Name,
        ResourceTypeT::Tablename,
        ResourceTypeT::Attributes,
        ResourceTypeT::State,
    ])
    .from(ResourceTypeT::Table)
    .order_by(ResourceTypeT::Name, Order::Asc);
    if let Some(name) = name {
        q.and_where(Expr::col(ResourceTypeT::Name).eq(name));
    }
    q
}

pub(crate) fn insert_resource_type(rt: &ResourceType, now: i64) -> InsertStatement {
    Query::insert()
        .into_table(ResourceTypeT::Table)
        .columns([
            ResourceTypeT::Name,
            ResourceTypeT::Tablename,
            ResourceTypeT::Attributes,
            ResourceTypeT::State,
            ResourceTypeT::UpdatedAt,
        ])
        .values_panic([
            rt.name.as_str().into(),
            Value::String(rt.tablename.clone().map(Box::new)).into(),
            encode_attributes(&rt.attributes).into(),
            ResourceTypeState::Active.as_str().into(),
            now.into(),
        ])
        .to_owned()
}

pub(crate) fn update_resource_type_attributes(
    name: &str,
    attributes: &[AttributeSchema],
    now: i64,
) -> UpdateStatement {
    Query::update()
        .table(ResourceTypeT::Table)
        .value(ResourceTypeT::Attributes, encode_attributes(attributes))
        .value(ResourceTypeT::UpdatedAt, now)
        .and_where(Expr::col(ResourceTypeT::Name).eq(name))
        .to_owned()
}

pub(crate) fn delete_resource_type(name: &str) -> DeleteStatement {
    Query::delete()
        .from_table(ResourceTypeT::Table)
        .and_where(Expr::col(ResourceTypeT::Name).eq(name))
        .to_owned()
}

/// Any resource (current) of the type.
pub(crate) fn any_resource_of_type(name: &str) -> SelectStatement {
    Query::select()
        .column(ResourceT::Id)
        .from(ResourceT::Table)
        .and_where(Expr::col(ResourceT::Type).eq(name))
        .limit(1)
        .to_owned()
}

/// `UPDATE <table> SET <col> = <fill> [WHERE <col> IS NULL]`.
pub(crate) fn fill_column(
    table: &str,
    attr: &AttributeSchema,
    fill: &AttrValue,
    only_nulls: bool,
) -> UpdateStatement {
    let col = Alias::new(&attr.name);
    let mut q = Query::update();
    q.table(Alias::new(table))
        .value(col.clone(), attr_value(fill, Kind::of(&attr.kind)));
    if only_nulls {
        q.and_where(Expr::col(col).is_null());
    }
    q
}
