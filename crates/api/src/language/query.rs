//! Upstream's resource query language, parsed into the index's [`Filter`].
//!
//! Entry points (also used by `/v1/aggregates` searches and groupby):
//! - [`parse_json_query`]: a JSON query such as
//!   `{"and": [{"=": {"type": "instance"}}, {"like": {"name": "ab%"}}]}`;
//!   `{}` is "everything" (`None`).
//! - [`parse_filter_string`]: the `?filter=` text form, such as
//!   `type = instance and (flavor_id = 2 or not started_at < "2020-01-01")`;
//!   it is turned into the JSON form and validated the same way.
//!
//! Both take the caller's creator, because `id` values go through the same
//! UUID transformation as resource ids in URLs (SPEC §1.7). Shape errors are
//! upstream's voluptuous messages (400 `Invalid input`); field names and value
//! types are checked later by the indexer against the resource type. Nesting is
//! capped at [`MAX_DEPTH`] so a hostile query cannot exhaust the stack.

use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{Ctx, json_body};
use crate::wire::validate::Path;
use axum::http::HeaderMap;
use gnocchi_index::resource_uuid;
use gnocchi_index::{CmpOp, Filter, FilterValue};
use serde_json::{Map, Value};

/// Deepest nesting of operators accepted (either syntax).
pub(crate) const MAX_DEPTH: usize = 32;

const COMPARISONS: &[(&str, CmpOp)] = &[
    ("=", CmpOp::Eq),
    ("==", CmpOp::Eq),
    ("eq", CmpOp::Eq),
    ("<", CmpOp::Lt),
    ("lt", CmpOp::Lt),
    (">", CmpOp::Gt),
    ("gt", CmpOp::Gt),
    ("<=", CmpOp::Le),
    ("≤", CmpOp::Le),
    ("le", CmpOp::Le),
    (">=", CmpOp::Ge),
    ("≥", CmpOp::Ge),
    ("ge", CmpOp::Ge),
    ("!=", CmpOp::Ne),
    ("≠", CmpOp::Ne),
    ("ne", CmpOp::Ne),
];

/// Parse a JSON query; `Ok(None)` for `{}` (no filtering).
pub(crate) fn parse_json_query(query: &Value, creator: &str) -> ApiResult<Option<Filter>> {
    let map = crate::wire::http::dict(query)
        .ok_or_else(|| Path::root().invalid("expected a dictionary"))?;
    if map.is_empty() {
        return Ok(None);
    }
    node(map, &Path::root(), creator, 1).map(Some)
}

fn too_deep(path: &Path) -> ApiError {
    path.invalid(&format!(
        "the query is nested more than {MAX_DEPTH} levels deep"
    ))
}

/// One `{operator: operand}` object.
fn node(map: &Map<String, Value>, path: &Path, creator: &str, depth: usize) -> ApiResult<Filter> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    if map.len() > 1 {
        return Err(path.invalid("length of value must be at most 1"));
    }
    let Some((op, operand)) = map.iter().next() else {
        // A nested `{}`: no constraint.
        return Ok(Filter::And(Vec::new()));
    };
    let here = path.key(op);
    match op.as_str() {
        "and" | "∧" | "or" | "∨" => {
            let list = operand
                .as_array()
                .ok_or_else(|| here.invalid("expected a list"))?;
            if list.is_empty() {
                return Err(here.invalid("length of value must be at least 1"));
            }
            let mut subs = Vec::with_capacity(list.len());
            for (i, sub) in list.iter().enumerate() {
                let p = here.index(i);
                let m = crate::wire::http::dict(sub)
                    .ok_or_else(|| p.invalid("expected a dictionary"))?;
                subs.push(node(m, &p, creator, depth + 1)?);
            }
            Ok(if op == "and" || op == "∧" {
                Filter::And(subs)
            } else {
                Filter::Or(subs)
            })
        }
        "not" => {
            let m = crate::wire::http::dict(operand)
                .ok_or_else(|| here.invalid("expected a dictionary"))?;
            if m.is_empty() {
                return Ok(Filter::Not(Box::new(Filter::And(Vec::new()))));
            }
            Ok(Filter::Not(Box::new(node(m, &here, creator, depth + 1)?)))
        }
        "like" => {
            let (field, value) = single(operand, &here)?;
            let p = here.key(field);
            if field == "id" {
                return Err(p.key_error("value must not be one of ['id']"));
            }
            Ok(Filter::Like {
                field: field.clone(),
                pattern: scalar(value, &p)?,
            })
        }
        "in" => {
            let (field, value) = single(operand, &here)?;
            let p = here.key(field);
            let list = value
                .as_array()
                .ok_or_else(|| p.invalid("expected a list"))?;
            if list.is_empty() {
                return Err(p.invalid("length of value must be at least 1"));
            }
            let values = list
                .iter()
                .enumerate()
                .map(|(i, v)| field_value(field, v, &p.index(i), creator))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(Filter::In {
                field: field.clone(),
                values,
            })
        }
        other => {
            let Some((_, cmp)) = COMPARISONS.iter().find(|(name, _)| *name == other) else {
                return Err(here.key_error("extra keys not allowed"));
            };
            let (field, value) = single(operand, &here)?;
            Ok(Filter::Compare {
                op: *cmp,
                field: field.clone(),
                value: field_value(field, value, &here.key(field), creator)?,
            })
        }
    }
}

/// `{field: value}` with exactly one key.
fn single<'a>(operand: &'a Value, path: &Path) -> ApiResult<(&'a String, &'a Value)> {
    let m =
        crate::wire::http::dict(operand).ok_or_else(|| path.invalid("expected a dictionary"))?;
    if m.len() > 1 {
        return Err(path.invalid("length of value must be at most 1"));
    }
    m.iter()
        .next()
        .ok_or_else(|| path.invalid("length of value must be at least 1"))
}

/// A scalar (not a list nor an object).
fn scalar(v: &Value, path: &Path) -> ApiResult<FilterValue> {
    Ok(match v {
        Value::Null => FilterValue::Null,
        Value::Bool(b) => FilterValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => FilterValue::Int(i),
            None => FilterValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => FilterValue::String(s.clone()),
        _ => return Err(path.invalid("expected str")),
    })
}

/// A value compared with `field`: for `id`, the resource UUID of the string.
fn field_value(field: &str, v: &Value, path: &Path, creator: &str) -> ApiResult<FilterValue> {
    if field != "id" {
        return scalar(v, path);
    }
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(path.invalid("expected str")),
    };
    let id = resource_uuid(&s, creator).map_err(|e| path.invalid(&e))?;
    Ok(FilterValue::String(id.to_string()))
}

// ------------------------------------------------------------------ filter strings

/// The filter of a resource search: the JSON `body` when there is one, else
/// `?filter=`. `Ok(None)`: neither was given (or the body is `{}`).
pub(crate) fn search_filter(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: Option<&[u8]>,
    creator: &str,
) -> ApiResult<Option<Filter>> {
    if let Some(body) = body {
        let v = json_body(headers, body)?;
        return parse_json_query(&v, creator);
    }
    match ctx.param("filter") {
        Some(f) if !f.is_empty() => parse_filter_string(f, creator),
        _ => Ok(None),
    }
}

/// Parse a `?filter=` string; `Ok(None)` never happens for a valid string (an
/// empty one is a parse error, as upstream).
pub(crate) fn parse_filter_string(s: &str, creator: &str) -> ApiResult<Option<Filter>> {
    let mut p = Parser {
        s,
        pos: 0,
        depth: 0,
    };
    let tree = p.expr().map_err(invalid_filter)?;
    p.skip_ws();
    if p.pos < s.len() {
        return Err(invalid_filter(p.expected("end of text")));
    }
    parse_json_query(&tree, creator)
}

fn invalid_filter(message: String) -> ApiError {
    ApiError::invalid_filter(message)
}

/// Operators of a condition, tried in upstream's order (so `==` never parses:
/// `=` matches first and the right-hand side then starts with `=`).
const FILTER_OPS: &[&str] = &[
    ">=", "<=", "!=", ">", "<", "=", "==", "eq", "ne", "lt", "gt", "ge", "le", "in", "like", "≠",
    "≥", "≤",
];

/// Recursive descent over upstream's grammar, lowest precedence first:
/// `∨` < `or` < `∧` < `and` < `not` < parentheses / conditions.
struct Parser<'a> {
    s: &'a str,
    pos: usize,
    depth: usize,
}

type PResult<T> = Result<T, String>;

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }

    fn expected(&self, what: &str) -> String {
        let found = match self.rest().chars().next() {
            Some(c) => format!("'{c}'"),
            None => "end of text".to_owned(),
        };
        let col = self.s[..self.pos].chars().count();
        format!(
            "Expected {what}, found {found}  (at char {col}), (line:1, col:{})",
            col + 1
        )
    }

    /// Consume `kw` if it is next (alphabetic keywords must end at a word boundary).
    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        if !rest.starts_with(kw) {
            return false;
        }
        let after = rest[kw.len()..].chars().next();
        let alphabetic = kw.chars().all(|c| c.is_ascii_alphabetic());
        if alphabetic && after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            return false;
        }
        self.pos += kw.len();
        true
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.expected(&format!("at most {MAX_DEPTH} levels of nesting")));
        }
        Ok(())
    }

    fn expr(&mut self) -> PResult<Value> {
        self.enter()?;
        let v = self.chain(0);
        self.depth -= 1;
        v
    }

    /// Precedence levels, loosest first.
    const LEVELS: [&'static str; 4] = ["∨", "or", "∧", "and"];

    fn chain(&mut self, level: usize) -> PResult<Value> {
        if level == Self::LEVELS.len() {
            return self.unary();
        }
        let op = Self::LEVELS[level];
        let first = self.chain(level + 1)?;
        let mut items = vec![first];
        while self.keyword(op) {
            items.push(self.chain(level + 1)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            let mut m = Map::new();
            m.insert(op.to_owned(), Value::Array(items));
            Value::Object(m)
        })
    }

    fn unary(&mut self) -> PResult<Value> {
        if self.keyword("not") {
            self.enter()?;
            let inner = self.unary();
            self.depth -= 1;
            let mut m = Map::new();
            m.insert("not".into(), inner?);
            return Ok(Value::Object(m));
        }
        self.skip_ws();
        if self.rest().starts_with('(') {
            self.pos += 1;
            let v = self.expr()?;
            self.skip_ws();
            if !self.rest().starts_with(')') {
                return Err(self.expected("')'"));
            }
            self.pos += 1;
            return Ok(v);
        }
        self.condition()
    }

    fn condition(&mut self) -> PResult<Value> {
        let field = self.term()?;
        self.skip_ws();
        let Some(op) = FILTER_OPS.iter().find(|op| self.rest().starts_with(**op)) else {
            return Err(self.expected("an operator"));
        };
        self.pos += op.len();
        let value = self.term()?;
        let key = match field {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let mut inner = Map::new();
        inner.insert(key, value);
        let mut m = Map::new();
        m.insert((*op).to_owned(), Value::Object(inner));
        Ok(Value::Object(m))
    }

    fn term(&mut self) -> PResult<Value> {
        self.skip_ws();
        let rest = self.rest();
        let Some(first) = rest.chars().next() else {
            return Err(self.expected("a term"));
        };
        if first == '[' {
            self.pos += 1;
            let mut items = Vec::new();
            self.skip_ws();
            if self.rest().starts_with(']') {
                self.pos += 1;
                return Ok(Value::Array(items));
            }
            loop {
                items.push(self.term()?);
                self.skip_ws();
                if self.rest().starts_with(',') {
                    self.pos += 1;
                } else if self.rest().starts_with(']') {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                } else {
                    return Err(self.expected("',' or ']'"));
                }
            }
        }
        if first == '"' || first == '\'' {
            let Some(end) = rest[1..].find(first) else {
                return Err(self.expected("a closing quote"));
            };
            let s = rest[1..1 + end].to_owned();
            self.pos += end + 2;
            return Ok(Value::String(s));
        }
        if let Some(len) = uuid_len(rest) {
            self.pos += len;
            return Ok(Value::String(rest[..len].to_owned()));
        }
        if first.is_ascii_alphabetic() {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..len];
            self.pos += len;
            return Ok(match word {
                "null" | "None" | "none" => Value::Null,
                "true" | "True" => Value::Bool(true),
                "false" | "False" => Value::Bool(false),
                w => Value::String(w.to_owned()),
            });
        }
        if let Some(len) = number_len(rest) {
            let f: f64 = rest[..len].parse().map_err(|_| self.expected("a number"))?;
            self.pos += len;
            return Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number));
        }
        Err(self.expected("a term"))
    }
}

/// Length of a UUID (8-4-4-4-12 hex digits, dashes optional) at the start of `s`.
fn uuid_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    for (n, group) in [8usize, 4, 4, 4, 12].iter().enumerate() {
        if n > 0 && b.get(i) == Some(&b'-') {
            i += 1;
        }
        for _ in 0..*group {
            if !b.get(i)?.is_ascii_hexdigit() {
                return None;
            }
            i += 1;
        }
    }
    // A longer word is an identifier or a number, not a UUID.
    if b.get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        return None;
    }
    Some(i)
}

/// Length of `[+-]?\d+(\.\d*)?([eE][+-]?\d+)?` at the start of `s`.
fn number_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        digits(&mut i);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if digits(&mut j) {
            i = j;
        }
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(s: &str) -> Filter {
        parse_filter_string(s, "foobar").unwrap().unwrap()
    }

    fn reason(e: ApiError) -> String {
        match &e.description {
            Value::String(s) => s.clone(),
            d => d["reason"].as_str().unwrap_or_default().to_owned(),
        }
    }

    #[test]
    fn filter_strings_follow_upstream_precedence() {
        let f = filter("a = 1 or b = 2 and not c = 3");
        let Filter::Or(v) = f else { panic!("{f:?}") };
        assert_eq!(v.len(), 2);
        assert!(matches!(&v[1], Filter::And(w) if matches!(w[1], Filter::Not(_))));
        let f = filter("(a = 1 or b = 2) and c in [1, 'x', null]");
        assert!(matches!(f, Filter::And(_)));
    }

    #[test]
    fn double_equals_never_parses() {
        let e = parse_filter_string("id == foobar", "u").unwrap_err();
        assert!(reason(e).starts_with("Invalid filter: Expected"));
    }

    #[test]
    fn empty_in_list_is_a_schema_error() {
        let e = parse_filter_string("id in []", "u").unwrap_err();
        assert!(reason(e).contains("length of value must be at least 1"));
    }

    #[test]
    fn ids_become_resource_uuids() {
        let f = filter("id = foobar");
        assert_eq!(
            f,
            Filter::Compare {
                op: CmpOp::Eq,
                field: "id".into(),
                value: FilterValue::String("2fbfbb20-8d56-5e1e-afb9-b3007da11fdf".into())
            }
        );
    }

    #[test]
    fn json_shape_errors_name_the_path() {
        let e = parse_json_query(&json!({"and": {"project_id": "x"}}), "u").unwrap_err();
        assert_eq!(e.description["detail"], json!(["and"]));
        let e = parse_json_query(&json!({"like": {"id": "fa%"}}), "u").unwrap_err();
        assert_eq!(
            reason(e),
            "value must not be one of ['id'] @ data['like']['id']"
        );
        let e = parse_json_query(&json!({"ne": {"project_id": ["x"]}}), "u").unwrap_err();
        assert!(reason(e).starts_with("expected str for dictionary value"));
        assert_eq!(parse_json_query(&json!({}), "u").unwrap(), None);
    }

    #[test]
    fn hostile_nesting_is_refused_not_overflowed() {
        let deep = "not ".repeat(10_000) + "a = 1";
        assert!(parse_filter_string(&deep, "u").is_err());
        let deep = "(".repeat(10_000) + "a = 1" + &")".repeat(10_000);
        assert!(parse_filter_string(&deep, "u").is_err());
        let mut v = json!({"=": {"a": 1}});
        for _ in 0..100 {
            v = json!({"not": v});
        }
        assert!(parse_json_query(&v, "u").is_err());
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            "(",
            ")",
            "a",
            "a =",
            "= 1",
            "[",
            "'x",
            "a in [1,",
            "not",
            "∨",
            "≥ 1",
            "a ≥ ≤",
        ] {
            assert!(parse_filter_string(s, "u").is_err(), "{s}");
        }
    }
}
