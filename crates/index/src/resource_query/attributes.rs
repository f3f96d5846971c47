//! The attribute codec: a resource type's attributes as the JSON list stored
//! in `resource_type.attributes`. Kept apart because it is the only part of
//! these statements that is a persisted format rather than SQL.

use crate::IndexError;
use crate::model_resource::{AttributeKind, AttributeSchema};
use serde_json::{Map, Value as Json, json};

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
    let v: Json = serde_json::from_str(text).map_err(|e| {
        IndexError::internal(
            format!("resource type {type_name}: unreadable attributes in the index"),
            e,
        )
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource_query::tests_support::host;

    #[test]
    fn attributes_round_trip() {
        let rt = host();
        let text = encode_attributes(&rt.attributes);
        assert_eq!(decode_attributes("host", &text).unwrap(), rt.attributes);
    }
}
