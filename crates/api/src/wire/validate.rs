//! Request body validation with upstream's (voluptuous) error messages:
//! `extra keys not allowed @ data['x']`, `required key not provided @ data['x']`,
//! `<problem> for dictionary value @ data['a'][0]['b']`, and the path as `detail`.

use crate::wire::error::{ApiError, ApiResult};
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Where in the body a value sits.
#[derive(Debug, Clone, Default)]
pub(crate) struct Path(Vec<Seg>);

impl Path {
    pub(crate) fn root() -> Self {
        Path(Vec::new())
    }
    pub(crate) fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }
    pub(crate) fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
    fn render(&self) -> String {
        let mut s = String::from("data");
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => s.push_str(&format!("[{}]", py_str_repr(k))),
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }
    fn detail(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|s| match s {
                Seg::Key(k) => k.clone(),
                Seg::Index(i) => i.to_string(),
            })
            .collect()
    }
    fn is_dict_value(&self) -> bool {
        matches!(self.0.last(), Some(Seg::Key(_)))
    }

    /// A problem with the value at this path.
    pub(crate) fn invalid(&self, problem: &str) -> ApiError {
        let reason = if self.0.is_empty() {
            problem.to_string()
        } else if self.is_dict_value() {
            format!("{problem} for dictionary value @ {}", self.render())
        } else {
            format!("{problem} @ {}", self.render())
        };
        ApiError::invalid_input(reason, self.detail())
    }
    pub(crate) fn key_error(&self, problem: &str) -> ApiError {
        ApiError::invalid_input(format!("{problem} @ {}", self.render()), self.detail())
    }
}

/// Python's `repr()` of a string, as voluptuous prints keys.
fn py_str_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// The value must be an object whose keys are all in `allowed` and which has every
/// key of `required`. Returns the map; errors follow voluptuous's order (extra keys
/// in input order first, then missing keys).
pub(crate) fn object<'a>(
    value: &'a Value,
    path: &Path,
    allowed: &[&str],
    required: &[&str],
) -> ApiResult<&'a Map<String, Value>> {
    let map =
        crate::wire::http::dict(value).ok_or_else(|| path.invalid("expected a dictionary"))?;
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(path.key(key).key_error("extra keys not allowed"));
        }
    }
    for key in required {
        if !map.contains_key(*key) {
            return Err(path.key(key).key_error("required key not provided"));
        }
    }
    Ok(map)
}

pub(crate) fn string<'a>(value: &'a Value, path: &Path) -> ApiResult<&'a str> {
    value.as_str().ok_or_else(|| path.invalid("expected str"))
}

/// A string or null.
pub(crate) fn opt_string(
    value: Option<&Value>,
    path: &Path,
    max_len: Option<usize>,
) -> ApiResult<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let s = string(v, path)?;
            if let Some(max) = max_len
                && s.chars().count() > max
            {
                return Err(path.invalid(&format!("length of value must be at most {max}")));
            }
            Ok(Some(s.to_string()))
        }
    }
}

/// An integer (also as an integral float or a numeric string, as `Coerce(int)`).
pub(crate) fn integer(value: &Value, path: &Path) -> ApiResult<i64> {
    let n = match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| path.invalid("expected int"))
}

pub(crate) fn list<'a>(value: &'a Value, path: &Path) -> ApiResult<&'a Vec<Value>> {
    value
        .as_array()
        .ok_or_else(|| path.invalid("expected a list"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: ApiError) -> String {
        e.description["reason"].as_str().unwrap().to_string()
    }

    #[test]
    fn a_nan_literal_is_not_a_dictionary() {
        let mut scratch = Vec::new();
        let v: Value = crate::wire::http::from_json_slice(b"NaN", &mut scratch).unwrap();
        let e = object(&v, &Path::root().key("a"), &[], &[]).unwrap_err();
        assert_eq!(
            reason(e),
            "expected a dictionary for dictionary value @ data['a']"
        );
    }

    #[test]
    fn messages_match_voluptuous() {
        let v = serde_json::json!({"cowsay": "moo"});
        let e = object(&v, &Path::root(), &["name"], &[]).unwrap_err();
        assert_eq!(reason(e), "extra keys not allowed @ data['cowsay']");
        let v = serde_json::json!({});
        let e = object(&v, &Path::root(), &["definition"], &["definition"]).unwrap_err();
        assert_eq!(reason(e), "required key not provided @ data['definition']");
        let e = Path::root()
            .key("definition")
            .index(0)
            .key("points")
            .invalid("value must be at least 1");
        assert_eq!(
            e.description["detail"],
            serde_json::json!(["definition", "0", "points"])
        );
        assert_eq!(
            reason(e),
            "value must be at least 1 for dictionary value @ data['definition'][0]['points']"
        );
    }
}
