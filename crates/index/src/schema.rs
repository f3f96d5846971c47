//! The schema: table and column names, and the versioned migrations that build it.
//!
//! Every migration is a list of sea-query schema statements, so one definition serves
//! SQLite, PostgreSQL and MySQL/MariaDB alike (render with the backend's `SchemaBuilder`).
//! Migrations are append-only: never edit a released one, add the next version.
//!
//! Column conventions (all backends):
//! - ids (metric id, resource id) are 36-char lowercase hyphenated UUID text in a
//!   `VARCHAR(36)`. One representation everywhere, readable in any SQL shell, and its
//!   text order is the UUID's byte order, so `ORDER BY id` and keyset markers agree
//!   across backends. Not `CHAR(36)`: PostgreSQL compares a `bpchar` column with a
//!   text parameter (what sqlx binds) by casting the column, which rules out its
//!   index — every metric lookup would scan the table. (Migrations 1 and 2 declared
//!   `CHAR(36)` before the PostgreSQL backend existed; on SQLite, the only engine
//!   with databases from then, both declarations mean the same TEXT column.)
//! - instants are BIGINT nanoseconds since the Unix epoch, UTC.
//! - archive policy definitions and method sets are JSON text (see `codec`).

use sea_query::{
    ColumnDef, Expr, ForeignKey, ForeignKeyAction, Iden, Index, IndexCreateStatement,
    SchemaBuilder, Table, TableCreateStatement,
};

#[derive(Iden, Clone, Copy)]
pub(crate) enum SchemaVersion {
    #[iden = "schema_version"]
    Table,
    Version,
    Description,
    AppliedAt,
}

#[derive(Iden, Clone, Copy)]
pub(crate) enum ApT {
    #[iden = "archive_policy"]
    Table,
    Name,
    BackWindow,
    Definition,
    AggregationMethods,
}

#[derive(Iden, Clone, Copy)]
pub(crate) enum RuleT {
    #[iden = "archive_policy_rule"]
    Table,
    Name,
    MetricPattern,
    ArchivePolicyName,
}

#[derive(Iden, Clone, Copy)]
pub(crate) enum MetricT {
    #[iden = "metric"]
    Table,
    Id,
    ArchivePolicyName,
    Creator,
    Name,
    Unit,
    ResourceId,
    Status,
    CreatedAt,
}

/// `metric.status` values.
pub(crate) const STATUS_ACTIVE: &str = "active";
pub(crate) const STATUS_DELETE: &str = "delete";

/// Length of the text form of a UUID.
pub(crate) const UUID_LEN: u32 = 36;

/// One schema statement of a migration.
pub(crate) enum Step {
    Table(TableCreateStatement),
    Index(IndexCreateStatement),
    /// Seed rows; values must be inlined constants (migrations bind nothing).
    Insert(sea_query::InsertStatement),
}

impl Step {
    pub(crate) fn to_sql(&self, builder: &dyn SchemaBuilder) -> String {
        match self {
            Step::Table(t) => t.build_any(builder),
            Step::Index(i) => i.build_any(builder),
            Step::Insert(q) => q.build_any(builder as &dyn sea_query::QueryBuilder).0,
        }
    }
}

pub(crate) struct Migration {
    /// Strictly increasing from 1, without gaps.
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) steps: fn() -> Vec<Step>,
}

/// All migrations, in order. Append only.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "archive policies, archive policy rules, metrics",
        steps: v1_steps,
    },
    Migration {
        version: 2,
        description: "resource types, resources, resource history, the generic type",
        steps: crate::schema_resource::v2_steps,
    },
];

pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The bookkeeping table itself; created (if missing) before any migration runs.
pub(crate) fn schema_version_table() -> TableCreateStatement {
    Table::create()
        .table(SchemaVersion::Table)
        .if_not_exists()
        .col(
            ColumnDef::new(SchemaVersion::Version)
                .big_integer()
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(SchemaVersion::Description)
                .string_len(255)
                .not_null(),
        )
        .col(
            ColumnDef::new(SchemaVersion::AppliedAt)
                .big_integer()
                .not_null(),
        )
        .to_owned()
}

fn v1_steps() -> Vec<Step> {
    let archive_policy = Table::create()
        .table(ApT::Table)
        .col(
            ColumnDef::new(ApT::Name)
                .string_len(255)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(ApT::BackWindow).big_integer().not_null())
        .col(ColumnDef::new(ApT::Definition).text().not_null())
        .col(ColumnDef::new(ApT::AggregationMethods).text().not_null())
        .to_owned();

    // Foreign keys are NO ACTION rather than upstream's RESTRICT: the same refusal for
    // immediate constraints, but SQLite reports RESTRICT as SQLITE_CONSTRAINT_TRIGGER,
    // which drivers do not classify as a foreign key violation.
    let rule = Table::create()
        .table(RuleT::Table)
        .col(
            ColumnDef::new(RuleT::Name)
                .string_len(255)
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(RuleT::MetricPattern)
                .string_len(255)
                .not_null(),
        )
        .col(
            ColumnDef::new(RuleT::ArchivePolicyName)
                .string_len(255)
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_apr_ap_name_ap_name")
                .from(RuleT::Table, RuleT::ArchivePolicyName)
                .to(ApT::Table, ApT::Name)
                .on_delete(ForeignKeyAction::NoAction),
        )
        .to_owned();

    // `resource_id` has no foreign key yet: the resource table arrives in a later
    // migration, which adds `fk_metric_resource_id_resource_id` (on SQLite by rebuilding
    // the table, as SQLite cannot add a constraint to an existing table).
    let metric = Table::create()
        .table(MetricT::Table)
        .col(
            ColumnDef::new(MetricT::Id)
                .string_len(UUID_LEN)
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(MetricT::ArchivePolicyName)
                .string_len(255)
                .not_null(),
        )
        .col(ColumnDef::new(MetricT::Creator).string_len(255).null())
        .col(ColumnDef::new(MetricT::Name).string_len(255).null())
        .col(ColumnDef::new(MetricT::Unit).string_len(31).null())
        .col(
            ColumnDef::new(MetricT::ResourceId)
                .string_len(UUID_LEN)
                .null(),
        )
        .col(
            ColumnDef::new(MetricT::Status)
                .string_len(8)
                .not_null()
                .default(STATUS_ACTIVE)
                .check(Expr::col(MetricT::Status).is_in([STATUS_ACTIVE, STATUS_DELETE])),
        )
        .col(ColumnDef::new(MetricT::CreatedAt).big_integer().not_null())
        .foreign_key(
            ForeignKey::create()
                .name("fk_metric_ap_name_ap_name")
                .from(MetricT::Table, MetricT::ArchivePolicyName)
                .to(ApT::Table, ApT::Name)
                .on_delete(ForeignKeyAction::NoAction),
        )
        // As upstream: NULLs are distinct, and deleting a metric sets resource_id NULL,
        // so only active metrics of a resource compete for a name.
        .index(
            Index::create()
                .name("uniq_metric0resource_id0name")
                .unique()
                .col(MetricT::ResourceId)
                .col(MetricT::Name),
        )
        .to_owned();

    let metric_index = |name: &str, col: MetricT| {
        Step::Index(
            Index::create()
                .name(name)
                .table(MetricT::Table)
                .col(col)
                .to_owned(),
        )
    };

    vec![
        Step::Table(archive_policy),
        Step::Table(rule),
        Step::Index(
            Index::create()
                .name("ix_apr_archive_policy_name")
                .table(RuleT::Table)
                .col(RuleT::ArchivePolicyName)
                .to_owned(),
        ),
        Step::Table(metric),
        // Filters of list_metrics, and the archive policy foreign key (an unindexed
        // child column makes every policy delete a scan). Deliberately no index on
        // `status`: nearly every row is active, and without statistics SQLite would
        // prefer it to the id order and the selective filters (then sort everything);
        // the janitor's scan for deleted rows is a cheap sequential read.
        metric_index("ix_metric_archive_policy_name", MetricT::ArchivePolicyName),
        metric_index("ix_metric_name", MetricT::Name),
        metric_index("ix_metric_unit", MetricT::Unit),
        metric_index("ix_metric_creator", MetricT::Creator),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_query::{MysqlQueryBuilder, PostgresQueryBuilder, SqliteQueryBuilder};

    #[test]
    fn versions_are_dense_and_increasing() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.description);
        }
    }

    #[test]
    fn every_backend_renders_the_schema() {
        let builders: [&dyn SchemaBuilder; 3] = [
            &SqliteQueryBuilder,
            &PostgresQueryBuilder,
            &MysqlQueryBuilder,
        ];
        for b in builders {
            assert!(
                schema_version_table()
                    .build_any(b)
                    .contains("schema_version")
            );
            for m in MIGRATIONS {
                for step in (m.steps)() {
                    assert!(!step.to_sql(b).is_empty());
                }
            }
        }
        let sqlite: Vec<String> = v1_steps()
            .iter()
            .map(|s| s.to_sql(&SqliteQueryBuilder))
            .collect();
        let metric = sqlite
            .iter()
            .find(|s| s.contains("TABLE \"metric\""))
            .unwrap();
        assert!(metric.contains("UNIQUE"), "{metric}");
        assert!(metric.contains("FOREIGN KEY"), "{metric}");
    }
}
