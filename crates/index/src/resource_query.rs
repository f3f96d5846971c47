//! Every statement about resources and resource types, built with sea-query and
//! no backend in sight (render with the backend's builder, bind with
//! [`crate::bind::bind_values`]), including the compilation of a [`Filter`] into
//! a WHERE clause and keyset pagination over any sort.
//!
//! Listings select from one derived table, `result`, whose columns are the base
//! columns, `revision`, `revision_end` and the type's attributes: for current rows
//! a join of `resource` with the type's table (`revision` = -1, `revision_end` =
//! NULL), with history the UNION ALL of that and the history tables. Filters, sorts
//! and markers then only ever name `result` columns, whatever the mode.

use crate::IndexError;
use crate::filter::{CmpOp, Filter, FilterValue, MAX_FILTER_DEPTH};
use crate::model::{Nulls, SortDir, SortKey};
use crate::model_resource::{
    AttrValue, AttributeKind, AttributeSchema, GENERIC, ResourceQuery, ResourceType,
    ResourceTypeState,
};
use crate::query::uuid_text;
use crate::schema::{MetricT, STATUS_ACTIVE, STATUS_DELETE};
use crate::schema_resource::{BASE_COLUMNS, HistoryT, ResourceT, ResourceTypeT, history_table};
use crate::value_list::{self, Dialect};
use sea_query::{
    Alias, Cond, DeleteStatement, Expr, InsertStatement, LikeExpr, Order, Query, SelectStatement,
    SimpleExpr, UnionType, UpdateStatement, Value,
};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

/// The derived table every listing selects from.
const RESULT: &str = "result";
const REVISION: &str = "revision";
const REVISION_END: &str = "revision_end";

// ------------------------------------------------------------------ attribute codec

/// `resource_type.attributes`: a JSON list (definition order) of
/// `{"name", "type", "required", <constraints>}`.
pub(crate) fn encode_attributes(attributes: &[AttributeSchema]) -> String {
    let list: Vec<Json> = attributes
        .iter()
        .map(|a| {
            let mut m = Map::new();
            m.insert("name".into(), json!(a.name));
            m.insert("type".into(), json!(a.kind.type_name()));
            m.insert("required".into(), json!(a.required));
            match &a.kind {
                AttributeKind::String {
                    min_length,
                    max_length,
                } => {
                    m.insert("min_length".into(), json!(min_length));
                    m.insert("max_length".into(), json!(max_length));
                }
                AttributeKind::Number { min, max } => {
                    m.insert("min".into(), json!(min));
                    m.insert("max".into(), json!(max));
                }
                _ => {}
            }
            Json::Object(m)
        })
        .collect();
    Json::Array(list).to_string()
}

pub(crate) fn decode_attributes(
    type_name: &str,
    text: &str,
) -> Result<Vec<AttributeSchema>, IndexError> {
    let corrupt = |what: &str| {
        IndexError::Backend(format!(
            "resource type {type_name}: unreadable attributes in the index ({what})"
        ))
    };
    let v: Json = serde_json::from_str(text).map_err(|e| corrupt(&e.to_string()))?;
    let list = v.as_array().ok_or_else(|| corrupt("not a list"))?;
    list.iter()
        .map(|a| {
            let name = a["name"]
                .as_str()
                .ok_or_else(|| corrupt("name"))?
                .to_owned();
            let required = a["required"].as_bool().ok_or_else(|| corrupt("required"))?;
            let u32_of = |k: &str| {
                a[k].as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| corrupt(k))
            };
            let kind = match a["type"].as_str() {
                Some("string") => AttributeKind::String {
                    min_length: u32_of("min_length")?,
                    max_length: u32_of("max_length")?,
                },
                Some("uuid") => AttributeKind::Uuid,
                Some("number") => AttributeKind::Number {
                    min: a["min"].as_number().cloned(),
                    max: a["max"].as_number().cloned(),
                },
                Some("bool") => AttributeKind::Bool,
                Some("datetime") => AttributeKind::Datetime,
                _ => return Err(corrupt("type")),
            };
            Ok(AttributeSchema {
                name,
                required,
                kind,
            })
        })
        .collect()
}

// ------------------------------------------------------------------ fields

/// How a field is stored and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Lowercase hyphenated UUID text.
    Uuid,
    Text,
    /// BIGINT nanoseconds since the epoch.
    Ns,
    Real,
    Bool,
    Int,
}

impl Kind {
    pub(crate) fn of(kind: &AttributeKind) -> Kind {
        match kind {
            AttributeKind::String { .. } => Kind::Text,
            AttributeKind::Uuid => Kind::Uuid,
            AttributeKind::Number { .. } => Kind::Real,
            AttributeKind::Bool => Kind::Bool,
            AttributeKind::Datetime => Kind::Ns,
        }
    }

    /// A NULL of this kind (typed, so every backend can bind it).
    fn null(self) -> Value {
        match self {
            Kind::Uuid | Kind::Text => Value::String(None),
            Kind::Ns | Kind::Int => Value::BigInt(None),
            Kind::Real => Value::Double(None),
            Kind::Bool => Value::Bool(None),
        }
    }
}

fn base_kind(c: ResourceT) -> (Kind, bool) {
    match c {
        ResourceT::Id => (Kind::Uuid, false),
        ResourceT::StartedAt | ResourceT::RevisionStart => (Kind::Ns, false),
        ResourceT::EndedAt => (Kind::Ns, true),
        ResourceT::Type | ResourceT::OriginalResourceId => (Kind::Text, false),
        _ => (Kind::Text, true),
    }
}

fn base_name(c: ResourceT) -> String {
    sea_query::Iden::to_string(&c)
}

/// The columns of `result` for a type, in select order: base columns, `revision`,
/// `revision_end`, then the type's attributes.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    pub(crate) fields: Vec<(String, Kind, bool)>,
    /// Whether `revision`/`revision_end` may be filtered and sorted on.
    history: bool,
    type_name: String,
}

impl Columns {
    pub(crate) fn new(rt: &ResourceType, history: bool) -> Self {
        let mut fields: Vec<(String, Kind, bool)> = BASE_COLUMNS
            .iter()
            .map(|c| {
                let (k, n) = base_kind(*c);
                (base_name(*c), k, n)
            })
            .collect();
        fields.push((REVISION.into(), Kind::Int, false));
        fields.push((REVISION_END.into(), Kind::Ns, true));
        for a in &rt.attributes {
            fields.push((a.name.clone(), Kind::of(&a.kind), true));
        }
        Columns {
            fields,
            history,
            type_name: rt.name.clone(),
        }
    }

    fn get(&self, name: &str) -> Option<(Kind, bool)> {
        if !self.history && (name == REVISION || name == REVISION_END) {
            return None;
        }
        self.fields
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, k, n)| (*k, *n))
    }

    fn no_attribute(&self, name: &str) -> IndexError {
        IndexError::QueryAttributeError {
            resource_type: self.type_name.clone(),
            attribute: name.to_owned(),
        }
    }
}

fn rcol(name: &str) -> SimpleExpr {
    Expr::col((Alias::new(RESULT), Alias::new(name))).into()
}

// ------------------------------------------------------------------ value casts

fn invalid(value: &FilterValue, field: &str) -> IndexError {
    IndexError::QueryValueError {
        value: value.to_string(),
        field: field.to_owned(),
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Upstream keeps instants to the microsecond.
pub(crate) fn truncate_us(ns: i64) -> i64 {
    ns - ns.rem_euclid(1_000)
}

/// Cast a filter value to a column kind, as upstream converts before comparing
/// (text columns compare with `str(value)`, instants parse like any timestamp...).
pub(crate) fn cast(value: &FilterValue, kind: Kind, field: &str) -> Result<Value, IndexError> {
    let bad = || invalid(value, field);
    Ok(match (kind, value) {
        (k, FilterValue::Null) => k.null(),
        (Kind::Text, v) => Value::String(Some(Box::new(v.to_string()))),
        (Kind::Uuid, FilterValue::String(s)) => {
            let u = Uuid::parse_str(s.trim()).map_err(|_| bad())?;
            Value::String(Some(Box::new(uuid_text(&u))))
        }
        (Kind::Uuid, _) => return Err(bad()),
        (Kind::Ns, FilterValue::Int(i)) => {
            Value::BigInt(Some(i.checked_mul(1_000_000_000).ok_or_else(bad)?))
        }
        (Kind::Ns, FilterValue::Float(f)) => Value::BigInt(Some(truncate_us(
            carbonara::time::timestamp_from_epoch_seconds(*f).map_err(|_| bad())?,
        ))),
        (Kind::Ns, FilterValue::String(s)) => Value::BigInt(Some(truncate_us(
            carbonara::time::parse_timestamp(s, now_ns()).map_err(|_| bad())?,
        ))),
        (Kind::Ns, FilterValue::Bool(_)) => return Err(bad()),
        (Kind::Real, FilterValue::Int(i)) => Value::Double(Some(*i as f64)),
        (Kind::Real, FilterValue::Float(f)) => Value::Double(Some(*f)),
        (Kind::Real, FilterValue::Bool(b)) => Value::Double(Some(if *b { 1.0 } else { 0.0 })),
        (Kind::Real, FilterValue::String(s)) => {
            Value::Double(Some(s.trim().parse::<f64>().map_err(|_| bad())?))
        }
        (Kind::Bool, FilterValue::Bool(b)) => Value::Bool(Some(*b)),
        (Kind::Bool, FilterValue::Int(i)) if *i == 0 || *i == 1 => Value::Bool(Some(*i == 1)),
        (Kind::Bool, FilterValue::String(s)) => {
            Value::Bool(Some(match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" | "y" | "t" => true,
                "false" | "no" | "off" | "0" | "n" | "f" => false,
                _ => return Err(bad()),
            }))
        }
        (Kind::Bool, _) => return Err(bad()),
        (Kind::Int, FilterValue::Int(i)) => Value::BigInt(Some(*i)),
        (Kind::Int, FilterValue::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => {
            Value::BigInt(Some(*f as i64))
        }
        (Kind::Int, FilterValue::String(s)) => {
            Value::BigInt(Some(s.trim().parse::<i64>().map_err(|_| bad())?))
        }
        (Kind::Int, _) => return Err(bad()),
    })
}

/// A typed attribute value as a bind value.
pub(crate) fn attr_value(v: &AttrValue, kind: Kind) -> Value {
    match v {
        AttrValue::Null => kind.null(),
        AttrValue::String(s) => Value::String(Some(Box::new(s.clone()))),
        AttrValue::Uuid(u) => Value::String(Some(Box::new(uuid_text(u)))),
        AttrValue::Number(f) => Value::Double(Some(*f)),
        AttrValue::Bool(b) => Value::Bool(Some(*b)),
        AttrValue::Datetime(ns) => Value::BigInt(Some(*ns)),
    }
}

// ------------------------------------------------------------------ filter compilation

fn is_null(v: &Value) -> bool {
    matches!(
        v,
        Value::String(None) | Value::BigInt(None) | Value::Double(None) | Value::Bool(None)
    )
}

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

// ------------------------------------------------------------------ derived table

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

/// One current resource of the type (any type for `generic`, base columns only).
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

pub(crate) fn select_resource(rt: &ResourceType, id: &Uuid) -> SelectStatement {
    let mut q = select_result(rt, false);
    q.and_where(Expr::expr(rcol("id")).eq(uuid_text(id)));
    q
}

// ------------------------------------------------------------------ listing

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

// ------------------------------------------------------------------ resource types

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

// ------------------------------------------------------------------ resources

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
        .map_err(|e| IndexError::Backend(e.to_string()))?;
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
        .map_err(|e| IndexError::Backend(e.to_string()))?;
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

// ------------------------------------------------------------------ metrics of resources

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SortKey;
    use crate::schema_resource::{add_column, create_type_tables, drop_column};
    use sea_query::{
        MysqlQueryBuilder, PostgresQueryBuilder, QueryBuilder, SchemaBuilder, SqliteQueryBuilder,
    };

    fn host() -> ResourceType {
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

    #[test]
    fn attributes_round_trip() {
        let rt = host();
        let text = encode_attributes(&rt.attributes);
        assert_eq!(decode_attributes("host", &text).unwrap(), rt.attributes);
    }
}
