//! Every statement about resources and resource types, built with sea-query and
//! no backend in sight (render with the backend's builder, bind with
//! [`crate::bind::bind_values`]), including the compilation of a [`crate::filter::Filter`] into
//! a WHERE clause and keyset pagination over any sort.
//!
//! Listings select from one derived table, `result`, whose columns are the base
//! columns, `revision`, `revision_end` and the type's attributes: for current rows
//! a join of `resource` with the type's table (`revision` = -1, `revision_end` =
//! NULL), with history the UNION ALL of that and the history tables. Filters, sorts
//! and markers then only ever name `result` columns, whatever the mode.
//!
//! The parts: [`columns`] (what a field is and how values are cast to it),
//! [`compile`] (filters to WHERE clauses), [`listing`] (the derived table,
//! sorts, keyset pagination), [`resource_type`] and [`resource`] (the writes),
//! [`attributes`] (the stored attribute list).

mod attributes;
mod columns;
mod compile;
mod listing;
mod resource;
mod resource_type;

pub(crate) use attributes::decode_attributes;
pub(crate) use columns::{Columns, Kind, truncate_us};
pub(crate) use listing::{
    Term, list_resources, lock_resource, resolve_sort, select_marker, select_matching_ids,
    select_resource, select_type_rows,
};
pub(crate) use resource::{
    BaseRow, attach_metric, delete_resources, delete_resources_metrics, detach_metrics,
    insert_history, insert_resource, insert_type_history, insert_type_row, select_resource_metrics,
    update_resource, update_type_row,
};
pub(crate) use resource_type::{
    any_resource_of_type, delete_resource_type, fill_column, insert_resource_type,
    select_resource_types, update_resource_type_attributes,
};

/// The derived table every listing selects from.
const RESULT: &str = "result";
const REVISION: &str = "revision";
const REVISION_END: &str = "revision_end";

#[cfg(test)]
mod tests_support {
    use crate::model_resource::{AttributeKind, AttributeSchema, ResourceType, ResourceTypeState};

    pub(super) fn host() -> ResourceType {
        ResourceType {
            name: "host".into(),
            state: ResourceTypeState::Active,
            attributes: vec![
                AttributeSchema {
                    name: "display-name".into(),
                    required: true,
                    kind: AttributeKind::String {
                        min_length: 0,
                        max_length: 255,
                    },
                },
                AttributeSchema {
                    name: "size".into(),
                    required: false,
                    kind: AttributeKind::Number {
                        min: None,
                        max: None,
                    },
                },
            ],
            tablename: Some("rt_0123".into()),
        }
    }
}
