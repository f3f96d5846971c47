//! The bytes that go in and out of Redis: the packed 16-byte measure records
//! of a list element, and the shapes of the scripts' replies (the `take`
//! reply decoded into measures per metric and what the commit must trim).

use crate::{Result, StorageError};
use carbonara::Measure;
use redis::Value;
use std::collections::HashMap;
use uuid::Uuid;

pub(super) use crate::records::encode;
use crate::records::{RECORD, decode};

pub(super) fn unexpected(what: &str, v: &Value) -> StorageError {
    StorageError::Backend(format!("redis: unexpected reply to {what}: {v:?}"))
}

pub(super) fn bytes_of(v: Value, what: &str) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        v => Err(unexpected(what, &v)),
    }
}

pub(super) fn int_of(v: &Value, what: &str) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| unexpected(what, v)),
        v => Err(unexpected(what, v)),
    }
}

pub(super) fn array_of(v: Value, what: &str) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        v => Err(unexpected(what, &v)),
    }
}

pub(super) type Taken = (HashMap<Uuid, Vec<Measure>>, Vec<(String, u64, u64)>);

pub(super) fn parse_take(v: Value, sack: &str) -> Result<Taken> {
    let mut measures = HashMap::new();
    let mut read = Vec::new();
    for entry in array_of(v, "take")? {
        let mut pair = array_of(entry, "take")?.into_iter();
        let (Some(id), Some(elements)) = (pair.next(), pair.next()) else {
            return Err(StorageError::Backend("redis: malformed take reply".into()));
        };
        let id = String::from_utf8(bytes_of(id, "take")?)
            .map_err(|_| StorageError::Backend("redis: metric id is not UTF-8".into()))?;
        let elements = array_of(elements, "take")?;
        let nelements = elements.len() as u64;
        let mut points = Vec::new();
        let mut n = 0u64;
        for e in elements {
            let bytes = bytes_of(e, "take")?;
            if bytes.len() % RECORD != 0 {
                tracing::warn!(sack, metric = %id, bytes = bytes.len(), "measure batch length is not a multiple of 16, tail ignored");
            }
            n += decode(&bytes, &mut points);
        }
        match Uuid::parse_str(&id) {
            Ok(m) => {
                if !points.is_empty() {
                    measures
                        .entry(m)
                        .or_insert_with(Vec::new)
                        .extend_from_slice(&points);
                }
            }
            // Not ours: trimmed away by the commit like the rest.
            Err(_) => {
                tracing::warn!(sack, id = %id, "sack index entry is not a metric id, discarded")
            }
        }
        read.push((id, nelements, n));
    }
    Ok((measures, read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let points = carbonara::measure::measures(&[
            (i64::MIN, f64::NAN),
            (0, -0.0),
            (1_425_600_000_000_000_000, 1.5),
        ]);
        let mut buf = Vec::new();
        encode(&points, &mut buf);
        assert_eq!(buf.len(), 48);
        assert_eq!(&buf[16..24], &0i64.to_le_bytes());
        let mut out = Vec::new();
        buf.push(7); // a torn tail is ignored
        assert_eq!(decode(&buf, &mut out), 3);
        assert_eq!(out[0].timestamp, i64::MIN);
        assert!(out[0].value.is_nan());
        assert_eq!(out[1..], points[1..]);
    }
}
