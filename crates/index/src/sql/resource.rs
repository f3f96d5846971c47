//! Resources and resource types: the [`ResourceIndexer`] half of [`SqlIndexer`].
//! Statements come from [`crate::resource_query`]; this file only sequences them
//! in transactions (or on a read connection) and decodes rows.

use super::{Backend, ID_CHUNK, Render, SqlIndexer, SqlRow, kind, now_ns, parse_uuid};
use crate::filter::Filter;
use crate::model::NewMetric;
use crate::model_resource::{
    AttrValue, GENERIC, MetricSpec, NewResource, Resource, ResourceQuery, ResourceType,
    ResourceTypeState, ResourceTypeUpdate, ResourceUpdate,
};
use crate::query;
use crate::resource_query::{self as rq, Columns, Kind, Term, truncate_us};
use crate::schema_resource::{self as rs, ResourceT};
use crate::{IndexError, ResourceIndexer, Result};
use async_trait::async_trait;
use sea_query::Value;
use sqlx::error::ErrorKind;
use std::collections::HashMap;
use uuid::Uuid;

const START_AFTER_END: &str = "Start timestamp cannot be after end timestamp";

fn type_from_row(row: &impl SqlRow) -> Result<ResourceType> {
    let name = row.text_req(0)?.to_owned();
    let tablename = row.string(1)?;
    let attributes = rq::decode_attributes(&name, row.text_req(2)?)?;
    let state = row.text_req(3)?;
    let state = ResourceTypeState::parse(state).ok_or_else(|| {
        IndexError::Backend(format!("resource type {name}: unknown state {state}"))
    })?;
    Ok(ResourceType {
        name,
        state,
        attributes,
        tablename,
    })
}

async fn load_type<B: Backend>(conn: &mut B::Conn, name: &str) -> Result<Option<ResourceType>> {
    let rows = B::fetch_all(conn, rq::select_resource_types(Some(name)).sql::<B>()).await?;
    rows.first().map(type_from_row).transpose()
}

async fn require_type<B: Backend>(conn: &mut B::Conn, name: &str) -> Result<ResourceType> {
    load_type::<B>(conn, name)
        .await?
        .ok_or_else(|| IndexError::ResourceTypeNotFound(name.to_owned()))
}

/// One column of `row`, decoded as `kind`.
fn attr_at(row: &impl SqlRow, i: usize, kind: Kind) -> Result<AttrValue> {
    Ok(match kind {
        Kind::Text => row.string(i)?.map_or(AttrValue::Null, AttrValue::String),
        Kind::Uuid => match row.text(i)? {
            None => AttrValue::Null,
            Some(s) => AttrValue::Uuid(parse_uuid(s)?),
        },
        Kind::Real => row.real(i)?.map_or(AttrValue::Null, AttrValue::Number),
        Kind::Bool => row.boolean(i)?.map_or(AttrValue::Null, AttrValue::Bool),
        Kind::Ns | Kind::Int => row.int(i)?.map_or(AttrValue::Null, AttrValue::Datetime),
    })
}

/// A bind value of the same kind, for keyset markers.
fn value_at(row: &impl SqlRow, i: usize, kind: Kind) -> Result<Value> {
    Ok(match kind {
        Kind::Text | Kind::Uuid => Value::String(row.string(i)?.map(Box::new)),
        Kind::Real => Value::Double(row.real(i)?),
        Kind::Bool => Value::Bool(row.boolean(i)?),
        Kind::Ns | Kind::Int => Value::BigInt(row.int(i)?),
    })
}

/// A `result` row: base columns, revision, revision_end, then `rt`'s attributes.
fn resource_from_row(row: &impl SqlRow, rt: &ResourceType) -> Result<Resource> {
    let mut attributes = Vec::with_capacity(rt.attributes.len());
    for (i, a) in rt.attributes.iter().enumerate() {
        attributes.push((a.name.clone(), attr_at(row, 11 + i, Kind::of(&a.kind))?));
    }
    Ok(Resource {
        id: row.uuid(0)?,
        resource_type: row.text_req(1)?.to_owned(),
        creator: row.string(2)?,
        started_at: row.int_req(3)?,
        revision_start: row.int_req(4)?,
        ended_at: row.int(5)?,
        user_id: row.string(6)?,
        project_id: row.string(7)?,
        original_resource_id: row.text_req(8)?.to_owned(),
        revision: row.int_req(9)?,
        revision_end: row.int(10)?,
        attributes,
        metrics: Vec::new(),
    })
}

/// Fill in each resource's current metrics.
async fn load_metrics<B: Backend>(conn: &mut B::Conn, resources: &mut [Resource]) -> Result<()> {
    let mut ids: Vec<Uuid> = resources.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut by_resource: HashMap<Uuid, Vec<(String, Uuid)>> = HashMap::new();
    for chunk in ids.chunks(ID_CHUNK) {
        for row in B::fetch_all(conn, rq::select_resource_metrics(chunk).sql::<B>()).await? {
            let rid = row.uuid(0)?;
            let name = row.string(1)?;
            let id = row.uuid(2)?;
            by_resource
                .entry(rid)
                .or_default()
                .push((name.unwrap_or_default(), id));
        }
    }
    for r in resources {
        if let Some(m) = by_resource.get(&r.id) {
            r.metrics = m.clone();
        }
    }
    Ok(())
}

async fn fetch_resource<B: Backend>(
    conn: &mut B::Conn,
    rt: &ResourceType,
    id: &Uuid,
) -> Result<Option<Resource>> {
    let rows = B::fetch_all(conn, rq::select_resource(rt, id).sql::<B>()).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut r = [resource_from_row(row, rt)?];
    load_metrics::<B>(conn, &mut r).await?;
    let [r] = r;
    Ok(Some(r))
}

/// Attach (or create) a resource's metrics, inside the caller's transaction.
async fn set_metrics<B: Backend>(
    conn: &mut B::Conn,
    resource: &Uuid,
    creator: Option<&str>,
    metrics: &[(String, MetricSpec)],
) -> Result<()> {
    for (name, spec) in metrics {
        let (stmt, missing) = match spec {
            MetricSpec::Existing(metric) => (
                rq::attach_metric(metric, resource, name, creator).sql::<B>(),
                Some(*metric),
            ),
            MetricSpec::New {
                archive_policy_name,
                unit,
            } => {
                let m = NewMetric {
                    id: Uuid::new_v4(),
                    name: Some(name.clone()),
                    unit: unit.clone(),
                    resource_id: Some(*resource),
                    creator: creator.map(str::to_owned),
                    archive_policy_name: archive_policy_name.clone(),
                };
                (query::insert_metric(&m, now_ns()).sql::<B>(), None)
            }
        };
        match B::execute(conn, &stmt).await {
            Ok(0) => {
                if let Some(m) = missing {
                    return Err(IndexError::MetricNotFound(m));
                }
            }
            Ok(_) => {}
            Err(e) if kind(&e) == Some(ErrorKind::UniqueViolation) => {
                return Err(IndexError::NamedMetricAlreadyExists(name.clone()));
            }
            Err(e) if kind(&e) == Some(ErrorKind::ForeignKeyViolation) => {
                if let MetricSpec::New {
                    archive_policy_name,
                    ..
                } = spec
                {
                    return Err(IndexError::ArchivePolicyNotFound(
                        archive_policy_name.clone(),
                    ));
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Load the type-specific attributes of `generic` listing rows (`details=true`).
async fn load_details<B: Backend>(conn: &mut B::Conn, resources: &mut [Resource]) -> Result<()> {
    let mut types: HashMap<String, Option<ResourceType>> = HashMap::new();
    // (type, history?) → indexes into `resources`
    let mut groups: HashMap<(String, bool), Vec<usize>> = HashMap::new();
    for (i, r) in resources.iter().enumerate() {
        if r.resource_type != GENERIC {
            groups
                .entry((r.resource_type.clone(), r.revision != -1))
                .or_default()
                .push(i);
        }
    }
    for ((tname, history), idxs) in groups {
        if !types.contains_key(&tname) {
            let t = load_type::<B>(conn, &tname).await?;
            types.insert(tname.clone(), t);
        }
        // A type deleted in the meantime: its resources keep their base fields.
        let Some(Some(rt)) = types.get(&tname) else {
            continue;
        };
        let key_of = |r: &Resource| {
            if history {
                Value::BigInt(Some(r.revision))
            } else {
                Value::String(Some(Box::new(query::uuid_text(&r.id))))
            }
        };
        let mut by_key: HashMap<String, Vec<(String, AttrValue)>> = HashMap::new();
        for chunk in idxs.chunks(ID_CHUNK) {
            let keys = chunk.iter().map(|&i| key_of(&resources[i])).collect();
            let Some(stmt) = rq::select_type_rows(rt, history, keys).map(|s| s.sql::<B>()) else {
                break;
            };
            for row in B::fetch_all(conn, stmt).await? {
                let key = if history {
                    row.int_req(0)?.to_string()
                } else {
                    row.text_req(0)?.to_owned()
                };
                let mut attrs = Vec::with_capacity(rt.attributes.len());
                for (j, a) in rt.attributes.iter().enumerate() {
                    attrs.push((a.name.clone(), attr_at(&row, 1 + j, Kind::of(&a.kind))?));
                }
                by_key.insert(key, attrs);
            }
        }
        for i in idxs {
            let r = &mut resources[i];
            let key = if history {
                r.revision.to_string()
            } else {
                query::uuid_text(&r.id)
            };
            if let Some(attrs) = by_key.remove(&key) {
                r.attributes = attrs;
            }
        }
    }
    Ok(())
}

/// `id` or `id@revision` → (id, revision).
fn parse_marker(marker: &str, history: bool) -> Option<(Uuid, i64)> {
    match marker.split_once('@') {
        Some((id, rev)) if history => Some((Uuid::parse_str(id).ok()?, rev.parse().ok()?)),
        Some(_) => None,
        None => Some((Uuid::parse_str(marker).ok()?, -1)),
    }
}

#[async_trait]
impl<B: Backend> ResourceIndexer for SqlIndexer<B> {
    async fn create_resource_type(&self, rt: &ResourceType) -> Result<ResourceType> {
        let mut rt = rt.clone();
        rt.state = ResourceTypeState::Active;
        // Not derived from the name: names are any unicode, and a re-created type
        // must never meet its predecessor's tables.
        rt.tablename = Some(format!("rt_{}", Uuid::new_v4().simple()));
        let mut tx = self.backend.begin().await?;
        match B::execute(&mut tx, &rq::insert_resource_type(&rt, now_ns()).sql::<B>()).await {
            Ok(_) => {}
            Err(e) if kind(&e) == Some(ErrorKind::UniqueViolation) => {
                return Err(IndexError::ResourceTypeAlreadyExists(rt.name));
            }
            Err(e) => return Err(e.into()),
        }
        let sqls: Vec<String> = rt.tablename.as_ref().map_or_else(Vec::new, |table| {
            let tables = rs::create_type_tables(table, &rt.attributes);
            let indexes = rt
                .attributes
                .iter()
                .map(|a| rs::attribute_index(table, &a.name));
            tables
                .iter()
                .map(|t| t.build_any(B::SCHEMA))
                .chain(indexes.map(|i| i.build_any(B::SCHEMA)))
                .collect()
        });
        for sql in &sqls {
            B::ddl(&mut tx, sql).await?;
        }
        B::commit(tx).await?;
        Ok(rt)
    }

    async fn list_resource_types(&self) -> Result<Vec<ResourceType>> {
        let rows = B::fetch_all(
            &mut *self.backend.read().await?,
            rq::select_resource_types(None).sql::<B>(),
        )
        .await?;
        rows.iter().map(type_from_row).collect()
    }

    async fn get_resource_type(&self, name: &str) -> Result<Option<ResourceType>> {
        load_type::<B>(&mut *self.backend.read().await?, name).await
    }

    async fn update_resource_type(
        &self,
        name: &str,
        update: &ResourceTypeUpdate,
    ) -> Result<ResourceType> {
        let mut tx = self.backend.begin().await?;
        let mut rt = require_type::<B>(&mut tx, name).await?;
        if update.add.is_empty() && update.update.is_empty() && update.remove.is_empty() {
            return Ok(rt);
        }
        let Some(table) = rt.tablename.clone() else {
            return Err(IndexError::InvalidResourceValue(format!(
                "Resource type {name} cannot be modified"
            )));
        };
        let tables = [table.clone(), rs::history_table(&table)];
        for attr in &update.remove {
            if rt.attribute(attr).is_none() {
                continue;
            }
            let sql = rs::drop_attribute_index(&table, attr).build_any(B::SCHEMA);
            B::ddl(&mut tx, &sql).await?;
            for t in &tables {
                let sql = rs::drop_column(t, attr).build_any(B::SCHEMA);
                B::ddl(&mut tx, &sql).await?;
            }
            rt.attributes.retain(|a| a.name != *attr);
        }
        for (attr, fill) in &update.add {
            for t in &tables {
                let sql = rs::add_column(t, attr).build_any(B::SCHEMA);
                B::ddl(&mut tx, &sql).await?;
                if let Some(fill) = fill {
                    let stmt = rq::fill_column(t, attr, fill, false).sql::<B>();
                    B::execute(&mut tx, &stmt).await?;
                }
            }
            let sql = rs::attribute_index(&table, &attr.name).build_any(B::SCHEMA);
            B::ddl(&mut tx, &sql).await?;
            rt.attributes.push(attr.clone());
        }
        for (attr, fill) in &update.update {
            let Some(slot) = rt.attributes.iter_mut().find(|a| a.name == attr.name) else {
                continue;
            };
            *slot = attr.clone();
            if let Some(fill) = fill {
                for t in &tables {
                    let stmt = rq::fill_column(t, attr, fill, true).sql::<B>();
                    B::execute(&mut tx, &stmt).await?;
                }
            }
        }
        B::execute(
            &mut tx,
            &rq::update_resource_type_attributes(name, &rt.attributes, now_ns()).sql::<B>(),
        )
        .await?;
        B::commit(tx).await?;
        Ok(rt)
    }

    async fn delete_resource_type(&self, name: &str) -> Result<()> {
        let mut tx = self.backend.begin().await?;
        let rt = require_type::<B>(&mut tx, name).await?;
        if name == GENERIC
            || !B::fetch_all(&mut tx, rq::any_resource_of_type(name).sql::<B>())
                .await?
                .is_empty()
        {
            return Err(IndexError::ResourceTypeInUse(name.to_owned()));
        }
        let stmt = rq::delete_resource_type(name).sql::<B>();
        B::execute(&mut tx, &stmt).await?;
        let sqls: Vec<String> = rt.tablename.as_ref().map_or_else(Vec::new, |table| {
            rs::drop_type_tables(table)
                .iter()
                .map(|t| t.build_any(B::SCHEMA))
                .collect()
        });
        for sql in &sqls {
            B::ddl(&mut tx, sql).await?;
        }
        B::commit(tx).await?;
        Ok(())
    }

    async fn create_resource(&self, r: &NewResource) -> Result<Resource> {
        let now = truncate_us(now_ns());
        let started_at = r.started_at.unwrap_or(now);
        if r.ended_at.is_some_and(|end| started_at > end) {
            return Err(IndexError::InvalidResourceValue(START_AFTER_END.to_owned()));
        }
        let mut tx = self.backend.begin().await?;
        let rt = require_type::<B>(&mut tx, &r.resource_type).await?;
        let row = rq::BaseRow {
            id: &r.id,
            resource_type: &r.resource_type,
            creator: r.creator.as_deref(),
            started_at,
            revision_start: now,
            ended_at: r.ended_at,
            user_id: r.user_id.as_deref(),
            project_id: r.project_id.as_deref(),
            original_resource_id: &r.original_resource_id,
        };
        match B::execute(&mut tx, &rq::insert_resource(&row).sql::<B>()).await {
            Ok(_) => {}
            Err(e) if kind(&e) == Some(ErrorKind::UniqueViolation) => {
                return Err(IndexError::ResourceAlreadyExists(r.id));
            }
            Err(e) => return Err(e.into()),
        }
        let stmt = rq::insert_type_row(&rt, &r.id, &r.attributes).map(|s| s.sql::<B>());
        if let Some(stmt) = stmt {
            B::execute(&mut tx, &stmt).await?;
        }
        set_metrics::<B>(&mut tx, &r.id, r.creator.as_deref(), &r.metrics).await?;
        let created = fetch_resource::<B>(&mut tx, &rt, &r.id)
            .await?
            .ok_or_else(|| IndexError::ResourceNotFound(r.id.to_string()))?;
        B::commit(tx).await?;
        Ok(created)
    }

    async fn get_resource(&self, resource_type: &str, id: Uuid) -> Result<Option<Resource>> {
        let mut conn = self.backend.read().await?;
        let rt = require_type::<B>(&mut conn, resource_type).await?;
        fetch_resource::<B>(&mut conn, &rt, &id).await
    }

    async fn update_resource(
        &self,
        resource_type: &str,
        id: Uuid,
        u: &ResourceUpdate,
    ) -> Result<Resource> {
        let mut tx = self.backend.begin().await?;
        let rt = require_type::<B>(&mut tx, resource_type).await?;
        B::fetch_all(&mut tx, rq::lock_resource(&id).sql::<B>()).await?;
        let current = fetch_resource::<B>(&mut tx, &rt, &id)
            .await?
            .ok_or_else(|| IndexError::ResourceNotFound(id.to_string()))?;

        let mut changes: Vec<(ResourceT, Value)> = Vec::new();
        let str_value = |v: &Option<String>| Value::String(v.clone().map(Box::new));
        if let Some(v) = u.user_id.as_ref().filter(|v| **v != current.user_id) {
            changes.push((ResourceT::UserId, str_value(v)));
        }
        if let Some(v) = u.project_id.as_ref().filter(|v| **v != current.project_id) {
            changes.push((ResourceT::ProjectId, str_value(v)));
        }
        let started_at = u.started_at.unwrap_or(current.started_at);
        if started_at != current.started_at {
            changes.push((ResourceT::StartedAt, Value::BigInt(Some(started_at))));
        }
        let ended_at = u.ended_at.unwrap_or(current.ended_at);
        if ended_at != current.ended_at {
            changes.push((ResourceT::EndedAt, Value::BigInt(ended_at)));
        }
        if ended_at.is_some_and(|end| started_at > end) {
            return Err(IndexError::InvalidResourceValue(START_AFTER_END.to_owned()));
        }
        let changed_attrs: Vec<(String, AttrValue)> = u
            .attributes
            .iter()
            .filter(|(name, v)| {
                current
                    .attributes
                    .iter()
                    .find(|(n, _)| n == name)
                    .is_none_or(|(_, old)| old != v)
            })
            .cloned()
            .collect();

        if !changes.is_empty() || !changed_attrs.is_empty() {
            let now = truncate_us(now_ns()).max(current.revision_start);
            let stmt = rq::insert_history(&id, now)?.sql::<B>();
            let revision = B::insert_returning_id(&mut tx, stmt).await?;
            // The history row keeps the attributes of the resource's own type, also
            // when the update comes through `generic`.
            let own_type = if current.resource_type == rt.name {
                rt.clone()
            } else {
                require_type::<B>(&mut tx, &current.resource_type).await?
            };
            let stmt = rq::insert_type_history(&own_type, &id, revision)?.map(|s| s.sql::<B>());
            if let Some(stmt) = stmt {
                B::execute(&mut tx, &stmt).await?;
            }
            changes.push((ResourceT::RevisionStart, Value::BigInt(Some(now))));
            let stmt = rq::update_resource(&id, changes).sql::<B>();
            B::execute(&mut tx, &stmt).await?;
            let stmt = rq::update_type_row(&rt, &id, &changed_attrs).map(|s| s.sql::<B>());
            if let Some(stmt) = stmt {
                B::execute(&mut tx, &stmt).await?;
            }
        }
        if let Some(metrics) = &u.metrics {
            if !u.append_metrics {
                B::execute(&mut tx, &rq::detach_metrics(&id).sql::<B>()).await?;
            }
            set_metrics::<B>(&mut tx, &id, current.creator.as_deref(), metrics).await?;
        }
        let updated = fetch_resource::<B>(&mut tx, &rt, &id)
            .await?
            .ok_or_else(|| IndexError::ResourceNotFound(id.to_string()))?;
        B::commit(tx).await?;
        Ok(updated)
    }

    async fn delete_resource(&self, id: Uuid) -> Result<()> {
        let mut tx = self.backend.begin().await?;
        B::execute(&mut tx, &rq::delete_resources_metrics(&[id]).sql::<B>()).await?;
        if B::execute(&mut tx, &rq::delete_resources(&[id]).sql::<B>()).await? == 0 {
            return Err(IndexError::ResourceNotFound(id.to_string()));
        }
        B::commit(tx).await?;
        Ok(())
    }

    async fn delete_resources(&self, resource_type: &str, filter: &Filter) -> Result<u64> {
        let mut tx = self.backend.begin().await?;
        let rt = require_type::<B>(&mut tx, resource_type).await?;
        let stmt = rq::select_matching_ids(&rt, filter, B::DIALECT)?.sql::<B>();
        let rows = B::fetch_all(&mut tx, stmt).await?;
        let ids = rows
            .iter()
            .map(|r| r.uuid(0))
            .collect::<Result<Vec<Uuid>>>()?;
        let mut deleted = 0;
        for chunk in ids.chunks(ID_CHUNK) {
            B::execute(&mut tx, &rq::delete_resources_metrics(chunk).sql::<B>()).await?;
            deleted += B::execute(&mut tx, &rq::delete_resources(chunk).sql::<B>()).await?;
        }
        B::commit(tx).await?;
        Ok(deleted)
    }

    async fn list_resources(&self, q: &ResourceQuery) -> Result<Vec<Resource>> {
        let mut conn = self.backend.read().await?;
        let rt = require_type::<B>(&mut conn, &q.resource_type).await?;
        let cols = Columns::new(&rt, q.history);
        let terms: Vec<Term> = rq::resolve_sort(q, &cols)?;
        let marker = match &q.marker {
            None => None,
            Some(m) => {
                let invalid = || IndexError::InvalidMarker(m.clone());
                let (id, revision) = parse_marker(m, q.history).ok_or_else(invalid)?;
                let stmt = rq::select_marker(&rt, q.history, &terms, &id, revision).sql::<B>();
                let rows = B::fetch_all(&mut conn, stmt).await?;
                let row = rows.first().ok_or_else(invalid)?;
                let mut values = Vec::with_capacity(terms.len());
                for (i, t) in terms.iter().enumerate() {
                    values.push(value_at(row, i, t.kind)?);
                }
                Some(values)
            }
        };
        let stmt = rq::list_resources(&rt, q, &terms, marker.as_deref(), B::DIALECT)?.sql::<B>();
        let rows = B::fetch_all(&mut conn, stmt).await?;
        let mut resources = rows
            .iter()
            .map(|r| resource_from_row(r, &rt))
            .collect::<Result<Vec<_>>>()?;
        if q.details && rt.name == GENERIC {
            load_details::<B>(&mut conn, &mut resources).await?;
        }
        load_metrics::<B>(&mut conn, &mut resources).await?;
        Ok(resources)
    }
}
