//! How archive policies are stored: definition and aggregation methods as JSON text.
//!
//! definition: `[{"granularity": <ns>, "points": <n>|null, "timespan": <ns>|null}, ...]`
//! (integer nanoseconds, exact; items in their input order).
//! aggregation_methods: `["mean", "95pct", "rate:last", ...]` (method names as
//! `Method`'s Display renders them).

use crate::IndexError;
use carbonara::{ArchivePolicy, ArchivePolicyItem, Method};
use serde_json::{Value, json};

pub(crate) fn encode_definition(definition: &[ArchivePolicyItem]) -> String {
    Value::Array(
        definition
            .iter()
            .map(|d| json!({"granularity": d.granularity, "points": d.points, "timespan": d.timespan}))
            .collect(),
    )
    .to_string()
}

pub(crate) fn encode_methods(methods: &[Method]) -> String {
    Value::Array(
        methods
            .iter()
            .map(|m| Value::String(m.to_string()))
            .collect(),
    )
    .to_string()
}

fn corrupt(what: &str, name: &str, detail: impl std::fmt::Display) -> IndexError {
    IndexError::Backend(format!(
        "archive policy {name}: unreadable {what} in the index: {detail}"
    ))
}

pub(crate) fn decode_definition(
    name: &str,
    text: &str,
) -> Result<Vec<ArchivePolicyItem>, IndexError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        IndexError::internal(
            format!("archive policy {name}: unreadable definition in the index"),
            e,
        )
    })?;
    let items = v
        .as_array()
        .ok_or_else(|| corrupt("definition", name, "not a list"))?;
    items
        .iter()
        .map(|item| {
            let granularity = item
                .get("granularity")
                .and_then(Value::as_i64)
                .ok_or_else(|| corrupt("definition", name, "granularity"))?;
            let points = match item.get("points") {
                None | Some(Value::Null) => None,
                Some(p) => Some(
                    p.as_u64()
                        .ok_or_else(|| corrupt("definition", name, "points"))?,
                ),
            };
            let timespan = match item.get("timespan") {
                None | Some(Value::Null) => None,
                Some(t) => Some(
                    t.as_i64()
                        .ok_or_else(|| corrupt("definition", name, "timespan"))?,
                ),
            };
            Ok(ArchivePolicyItem {
                granularity,
                points,
                timespan,
            })
        })
        .collect()
}

pub(crate) fn decode_methods(name: &str, text: &str) -> Result<Vec<Method>, IndexError> {
    let names: Vec<String> = serde_json::from_str(text).map_err(|e| {
        IndexError::internal(
            format!("archive policy {name}: unreadable aggregation methods in the index"),
            e,
        )
    })?;
    names
        .iter()
        .map(|m| Method::parse(m).ok_or_else(|| corrupt("aggregation methods", name, m)))
        .collect()
}

pub(crate) fn back_window_to_db(back_window: u64) -> Result<i64, IndexError> {
    i64::try_from(back_window)
        .map_err(|_| IndexError::Backend(format!("back_window {back_window} is out of range")))
}

/// Rebuild a policy from its stored columns.
pub(crate) fn decode_policy(
    name: &str,
    back_window: i64,
    definition: &str,
    methods: &str,
) -> Result<ArchivePolicy, IndexError> {
    Ok(ArchivePolicy {
        name: name.to_owned(),
        back_window: u64::try_from(back_window)
            .map_err(|_| corrupt("back_window", name, back_window))?,
        definition: decode_definition(name, definition)?,
        aggregation_methods: decode_methods(name, methods)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_round_trips() {
        let def = vec![
            ArchivePolicyItem {
                granularity: 1_000_000_000,
                points: Some(3600),
                timespan: Some(3_600_000_000_000),
            },
            ArchivePolicyItem {
                granularity: 60_000_000_000,
                points: None,
                timespan: None,
            },
        ];
        let text = encode_definition(&def);
        assert_eq!(decode_definition("x", &text).unwrap(), def);
    }

    #[test]
    fn garbage_is_a_backend_error() {
        assert!(matches!(
            decode_definition("x", "{"),
            Err(e) if e.is_backend_failure() && std::error::Error::source(&e).is_some()
        ));
        assert!(matches!(
            decode_definition("x", "[{\"points\": 1}]"),
            Err(IndexError::Backend(_))
        ));
    }
}
