//! The columns of the derived table `result` and their kinds, and the casts of
//! filter values and attribute values to bind values of those kinds: what a
//! field *is*, shared by the filter compiler, the listing and the writes.

use super::{RESULT, REVISION, REVISION_END};
use crate::IndexError;
use crate::filter::FilterValue;
use crate::model_resource::{AttrValue, AttributeKind, ResourceType};
use crate::query::uuid_text;
use crate::schema_resource::{BASE_COLUMNS, ResourceT};
use sea_query::{Alias, Expr, SimpleExpr, Value};
use uuid::Uuid;

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
    pub(super) fn null(self) -> Value {
        match self {
            Kind::Uuid | Kind::Text => Value::String(None),
            Kind::Ns | Kind::Int => Value::BigInt(None),
            Kind::Real => Value::Double(None),
            Kind::Bool => Value::Bool(None),
        }
    }
}

/// Whether a bind value is a NULL (of any kind).
pub(super) fn is_null(v: &Value) -> bool {
    matches!(
        v,
        Value::String(None) | Value::BigInt(None) | Value::Double(None) | Value::Bool(None)
    )
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

pub(super) fn base_name(c: ResourceT) -> String {
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

    pub(super) fn get(&self, name: &str) -> Option<(Kind, bool)> {
        if !self.history && (name == REVISION || name == REVISION_END) {
            return None;
        }
        self.fields
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, k, n)| (*k, *n))
    }

    pub(super) fn no_attribute(&self, name: &str) -> IndexError {
        IndexError::QueryAttributeError {
            resource_type: self.type_name.clone(),
            attribute: name.to_owned(),
        }
    }
}

pub(super) fn rcol(name: &str) -> SimpleExpr {
    Expr::col((Alias::new(RESULT), Alias::new(name))).into()
}

pub(super) fn invalid(value: &FilterValue, field: &str) -> IndexError {
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
