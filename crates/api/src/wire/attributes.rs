//! Values of resource type attributes, validated against their schema with
//! voluptuous' messages (resource bodies, and a type's `fill` values).

use crate::wire::error::ApiResult;
use crate::wire::params::now;
use crate::wire::validate::Path;
use carbonara::time;
use gnocchi_index::{AttrValue, AttributeKind, AttributeSchema};
use serde_json::Value;
use uuid::Uuid;

/// A value for a type attribute, validated against its schema (voluptuous messages).
pub(crate) fn attribute_value(a: &AttributeSchema, v: &Value, path: &Path) -> ApiResult<AttrValue> {
    if v.is_null() && !a.required {
        return Ok(AttrValue::Null);
    }
    Ok(match &a.kind {
        AttributeKind::String {
            min_length,
            max_length,
        } => {
            let s = v.as_str().ok_or_else(|| path.invalid("expected str"))?;
            let n = s.chars().count();
            if n < *min_length as usize {
                return Err(path.invalid(&format!("length of value must be at least {min_length}")));
            }
            if n > *max_length as usize {
                return Err(path.invalid(&format!("length of value must be at most {max_length}")));
            }
            AttrValue::String(s.to_owned())
        }
        AttributeKind::Uuid => {
            let s = v
                .as_str()
                .ok_or_else(|| path.invalid("badly formed hexadecimal UUID string"))?;
            AttrValue::Uuid(
                Uuid::parse_str(s)
                    .map_err(|_| path.invalid("badly formed hexadecimal UUID string"))?,
            )
        }
        AttributeKind::Number { min, max } => {
            let f = match v {
                Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                // Python's bool is a Real.
                Value::Bool(b) => f64::from(u8::from(*b)),
                _ => return Err(path.invalid("expected Real")),
            };
            let bound = |b: &serde_json::Number| b.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = min.as_ref().filter(|min| f < bound(min)) {
                return Err(path.invalid(&format!("value must be at least {min}")));
            }
            if let Some(max) = max.as_ref().filter(|max| f > bound(max)) {
                return Err(path.invalid(&format!("value must be at most {max}")));
            }
            AttrValue::Number(f)
        }
        AttributeKind::Bool => {
            AttrValue::Bool(v.as_bool().ok_or_else(|| path.invalid("expected bool"))?)
        }
        AttributeKind::Datetime => AttrValue::Datetime(datetime(v, path)?),
    })
}

/// A timestamp field (`started_at`...): epoch seconds or any timestamp string,
/// kept to the microsecond as upstream stores it.
pub(crate) fn datetime(v: &Value, path: &Path) -> ApiResult<i64> {
    let ns = match v {
        Value::Number(n) => time::timestamp_from_epoch_seconds(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => time::parse_timestamp(s, now()),
        _ => return Err(path.invalid("expected a timestamp")),
    }
    .map_err(|e| path.invalid(&e.to_string()))?;
    Ok(ns - ns.rem_euclid(1_000))
}
