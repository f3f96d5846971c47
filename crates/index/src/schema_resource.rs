//! Resource tables: the names, migration 2 (resource types, resources, their
//! history and the `generic` type), and the DDL of a resource type's own tables.
//!
//! Layout (as upstream): `resource` holds every resource's base columns, whatever
//! its type; `resource_history` one row per past revision (`revision` is a global
//! autoincrement, the second half of `id@revision` markers); a type with attributes
//! gets `rt_<hex>` (id → resource.id) and `rt_<hex>_history` (revision →
//! resource_history.revision), one real column per attribute so searches compile
//! to plain column predicates. Deleting a resource cascades to all of them.
//!
//! Attribute columns are nullable on every backend: `required` is a property of
//! the API's validation (upstream's NOT NULL would make changing `required` an
//! ALTER COLUMN, which SQLite cannot do).

use crate::model_resource::{AttributeKind, AttributeSchema, GENERIC, ResourceTypeState};
use crate::schema::{Step, UUID_LEN};
use sea_query::{
    Alias, ColumnDef, Expr, ForeignKey, ForeignKeyAction, Iden, Index, IndexCreateStatement,
    IndexDropStatement, Query, Table, TableAlterStatement, TableCreateStatement,
    TableDropStatement,
};

#[derive(Iden, Clone, Copy)]
pub(crate) enum ResourceTypeT {
    #[iden = "resource_type"]
    Table,
    Name,
    Tablename,
    Attributes,
    State,
    UpdatedAt,
}

/// Base columns, shared by `resource` and `resource_history`.
#[derive(Iden, Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ResourceT {
    #[iden = "resource"]
    Table,
    Id,
    Type,
    Creator,
    StartedAt,
    RevisionStart,
    EndedAt,
    UserId,
    ProjectId,
    OriginalResourceId,
}

#[derive(Iden, Clone, Copy)]
pub(crate) enum HistoryT {
    #[iden = "resource_history"]
    Table,
    Revision,
    RevisionEnd,
}

/// The base columns in the order statements select them (see `resource_from_row`).
pub(crate) const BASE_COLUMNS: [ResourceT; 9] = [
    ResourceT::Id,
    ResourceT::Type,
    ResourceT::Creator,
    ResourceT::StartedAt,
    ResourceT::RevisionStart,
    ResourceT::EndedAt,
    ResourceT::UserId,
    ResourceT::ProjectId,
    ResourceT::OriginalResourceId,
];

/// `original_resource_id` max length (upstream's).
const ORIGINAL_ID_LEN: u32 = 289;

fn base_columns(t: &mut TableCreateStatement) {
    t.col(ColumnDef::new(ResourceT::Type).string_len(255).not_null())
        .col(ColumnDef::new(ResourceT::Creator).string_len(255).null())
        .col(
            ColumnDef::new(ResourceT::StartedAt)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(ResourceT::RevisionStart)
                .big_integer()
                .not_null(),
        )
        .col(ColumnDef::new(ResourceT::EndedAt).big_integer().null())
        .col(ColumnDef::new(ResourceT::UserId).string_len(255).null())
        .col(ColumnDef::new(ResourceT::ProjectId).string_len(255).null())
        .col(
            ColumnDef::new(ResourceT::OriginalResourceId)
                .string_len(ORIGINAL_ID_LEN)
                .not_null(),
        );
}

pub(crate) fn v2_steps() -> Vec<Step> {
    let resource_type = Table::create()
        .table(ResourceTypeT::Table)
        .col(
            ColumnDef::new(ResourceTypeT::Name)
                .string_len(255)
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(ResourceTypeT::Tablename)
                .string_len(35)
                .null()
                .unique_key(),
        )
        .col(ColumnDef::new(ResourceTypeT::Attributes).text().not_null())
        .col(
            ColumnDef::new(ResourceTypeT::State)
                .string_len(20)
                .not_null(),
        )
        .col(
            ColumnDef::new(ResourceTypeT::UpdatedAt)
                .big_integer()
                .not_null(),
        )
        .to_owned();

    let mut resource = Table::create();
    resource.table(ResourceT::Table).col(
        ColumnDef::new(ResourceT::Id)
            .string_len(UUID_LEN)
            .not_null()
            .primary_key(),
    );
    base_columns(&mut resource);
    resource.foreign_key(
        ForeignKey::create()
            .name("fk_resource_resource_type_name")
            .from(ResourceT::Table, ResourceT::Type)
            .to(ResourceTypeT::Table, ResourceTypeT::Name)
            .on_delete(ForeignKeyAction::NoAction),
    );

    let mut history = Table::create();
    history
        .table(HistoryT::Table)
        .col(
            ColumnDef::new(HistoryT::Revision)
                .integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(
            ColumnDef::new(ResourceT::Id)
                .string_len(UUID_LEN)
                .not_null(),
        )
        .col(
            ColumnDef::new(HistoryT::RevisionEnd)
                .big_integer()
                .not_null(),
        );
    base_columns(&mut history);
    history.foreign_key(
        ForeignKey::create()
            .name("fk_rh_id_resource_id")
            .from(HistoryT::Table, ResourceT::Id)
            .to(ResourceT::Table, ResourceT::Id)
            .on_delete(ForeignKeyAction::Cascade),
    );

    let resource_index = |name: &str, col: ResourceT| {
        Step::Index(
            Index::create()
                .name(name)
                .table(ResourceT::Table)
                .col(col)
                .to_owned(),
        )
    };

    // `generic` exists from the start; its constants are inlined (no bind values
    // in migrations).
    let generic = Query::insert()
        .into_table(ResourceTypeT::Table)
        .columns([
            ResourceTypeT::Name,
            ResourceTypeT::Attributes,
            ResourceTypeT::State,
            ResourceTypeT::UpdatedAt,
        ])
        .values_panic([
            Expr::cust(format!("'{GENERIC}'")),
            Expr::cust("'[]'"),
            Expr::cust(format!("'{}'", ResourceTypeState::Active.as_str())),
            Expr::cust("0"),
        ])
        .to_owned();

    vec![
        Step::Table(resource_type),
        Step::Table(resource.to_owned()),
        // The default sort (revision_start, started_at), the type filter of every
        // typed listing, and the usual search keys.
        resource_index("ix_resource_type", ResourceT::Type),
        resource_index("ix_resource_revision_start", ResourceT::RevisionStart),
        resource_index("ix_resource_started_at", ResourceT::StartedAt),
        resource_index("ix_resource_creator", ResourceT::Creator),
        resource_index("ix_resource_user_id", ResourceT::UserId),
        resource_index("ix_resource_project_id", ResourceT::ProjectId),
        Step::Table(history.to_owned()),
        Step::Index(
            Index::create()
                .name("ix_resource_history_id")
                .table(HistoryT::Table)
                .col(ResourceT::Id)
                .to_owned(),
        ),
        Step::Insert(generic),
    ]
}

// ------------------------------------------------------------------ type tables

pub(crate) fn history_table(tablename: &str) -> String {
    format!("{tablename}_history")
}

/// The column definition of an attribute (always nullable, see the module doc).
pub(crate) fn attribute_column(attr: &AttributeSchema) -> ColumnDef {
    let mut c = ColumnDef::new(Alias::new(&attr.name));
    match attr.kind {
        AttributeKind::String { .. } => c.string_len(256),
        AttributeKind::Uuid => c.string_len(UUID_LEN),
        AttributeKind::Number { .. } => c.double(),
        AttributeKind::Bool => c.boolean(),
        AttributeKind::Datetime => c.big_integer(),
    };
    c.null();
    c
}

/// `rt_<hex>` and `rt_<hex>_history`.
pub(crate) fn create_type_tables(
    tablename: &str,
    attributes: &[AttributeSchema],
) -> [TableCreateStatement; 2] {
    let mut current = Table::create();
    current.table(Alias::new(tablename)).col(
        ColumnDef::new(ResourceT::Id)
            .string_len(UUID_LEN)
            .not_null()
            .primary_key(),
    );
    let hist_name = history_table(tablename);
    let mut history = Table::create();
    history.table(Alias::new(&hist_name)).col(
        ColumnDef::new(HistoryT::Revision)
            .integer()
            .not_null()
            .primary_key(),
    );
    for attr in attributes {
        current.col(attribute_column(attr));
        history.col(attribute_column(attr));
    }
    current.foreign_key(
        ForeignKey::create()
            .name(format!("fk_{tablename}_id_resource_id"))
            .from(Alias::new(tablename), ResourceT::Id)
            .to(ResourceT::Table, ResourceT::Id)
            .on_delete(ForeignKeyAction::Cascade),
    );
    history.foreign_key(
        ForeignKey::create()
            .name(format!("fk_{tablename}_h_revision_rh_revision"))
            .from(Alias::new(&hist_name), HistoryT::Revision)
            .to(HistoryT::Table, HistoryT::Revision)
            .on_delete(ForeignKeyAction::Cascade),
    );
    [current.to_owned(), history.to_owned()]
}

/// History first: it references nothing the current table owns, and dropping the
/// referencing side first keeps every backend's FK checks happy.
pub(crate) fn drop_type_tables(tablename: &str) -> [TableDropStatement; 2] {
    [
        Table::drop()
            .table(Alias::new(history_table(tablename)))
            .to_owned(),
        Table::drop().table(Alias::new(tablename)).to_owned(),
    ]
}

/// Name of the index on one attribute column of a type's current table. Attribute
/// names may be long or contain any character: a hash keeps the name short and
/// valid on every backend (PostgreSQL truncates identifiers at 63 bytes).
fn attribute_index_name(table: &str, attr: &str) -> String {
    // FNV-1a: stable across releases and platforms, unlike std's hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in attr.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("ix_{table}_{h:08x}")
}

/// Every attribute column of the current table is indexed, so that searching
/// on it stays fast with many resources (history tables are searched rarely).
pub(crate) fn attribute_index(table: &str, attr: &str) -> IndexCreateStatement {
    Index::create()
        .name(attribute_index_name(table, attr))
        .table(Alias::new(table))
        .col(Alias::new(attr))
        .to_owned()
}

/// SQLite refuses to drop an indexed column: drop its index first. Every
/// attribute column has one (created with the column), so no `IF EXISTS`, which
/// MySQL lacks.
pub(crate) fn drop_attribute_index(table: &str, attr: &str) -> IndexDropStatement {
    Index::drop()
        .name(attribute_index_name(table, attr))
        .table(Alias::new(table))
        .to_owned()
}

/// One ALTER per column and table: SQLite takes a single change per statement.
pub(crate) fn add_column(table: &str, attr: &AttributeSchema) -> TableAlterStatement {
    Table::alter()
        .table(Alias::new(table))
        .add_column(attribute_column(attr))
        .to_owned()
}

pub(crate) fn drop_column(table: &str, name: &str) -> TableAlterStatement {
    Table::alter()
        .table(Alias::new(table))
        .drop_column(Alias::new(name))
        .to_owned()
}
