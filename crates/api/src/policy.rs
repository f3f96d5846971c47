//! The policy engine: upstream's named rules (oslo.policy syntax) evaluated
//! against the caller's credentials and the target object.
//!
//! A rule is an expression of checks (`role:admin`, `user:%(creator)s`,
//! `rule:other`, `@`, `!`, empty = allow) combined with `and`, `or`, `not` and
//! parentheses. The target is the object's JSON flattened with dots
//! (`resource.project_id`).

use crate::auth::Creds;
use crate::error::{ApiError, ApiResult};
use serde_json::Value;
use std::collections::HashMap;

/// Upstream's default rules for every endpoint.
const DEFAULT_RULES: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("admin_or_service", "role:admin or role:service"),
    (
        "creator",
        "user:%(creator)s or project_id:%(created_by_project_id)s",
    ),
    ("admin_or_creator", "role:admin or rule:creator"),
    ("resource_owner", "project_id:%(project_id)s"),
    ("metric_owner", "project_id:%(resource.project_id)s"),
    ("get status", "role:admin"),
    ("create resource", ""),
    (
        "get resource",
        "rule:admin_or_creator or rule:resource_owner",
    ),
    ("update resource", "rule:admin_or_service or rule:creator"),
    ("delete resource", "rule:admin_or_creator"),
    ("delete resources", "rule:admin_or_creator"),
    (
        "list resource",
        "rule:admin_or_creator or rule:resource_owner",
    ),
    (
        "search resource",
        "rule:admin_or_service or rule:creator or rule:resource_owner",
    ),
    ("create resource type", "rule:admin_or_service"),
    ("delete resource type", "role:admin"),
    ("update resource type", "rule:admin_or_service"),
    ("list resource type", ""),
    ("get resource type", ""),
    ("get archive policy", ""),
    ("list archive policy", ""),
    ("create archive policy", "rule:admin_or_service"),
    ("update archive policy", "role:admin"),
    ("delete archive policy", "role:admin"),
    ("create archive policy rule", "role:admin"),
    ("get archive policy rule", ""),
    ("list archive policy rule", ""),
    ("update archive policy rule", "role:admin"),
    ("delete archive policy rule", "role:admin"),
    ("create metric", ""),
    ("delete metric", "rule:admin_or_creator"),
    (
        "get metric",
        "rule:admin_or_service or rule:creator or rule:metric_owner",
    ),
    (
        "search metric",
        "rule:admin_or_creator or rule:metric_owner",
    ),
    ("list metric", "rule:admin_or_creator or rule:metric_owner"),
    ("list all metric", "role:admin"),
    (
        "get measures",
        "rule:admin_or_service or rule:creator or rule:metric_owner",
    ),
    ("post measures", "rule:admin_or_service or rule:creator"),
];

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Allow,
    Deny,
    /// `kind:match`: `role:x`, `rule:x`, or a credential compared with a literal or `%(key)s`.
    Check(String, String),
    Not(Box<Rule>),
    And(Vec<Rule>),
    Or(Vec<Rule>),
}

pub struct Policy {
    rules: HashMap<String, Rule>,
}

impl Default for Policy {
    fn default() -> Self {
        let rules = DEFAULT_RULES
            .iter()
            .map(|(n, r)| (n.to_string(), parse(r)))
            .collect();
        Policy { rules }
    }
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in s.split_whitespace() {
        let mut w = word;
        while let Some(rest) = w.strip_prefix('(') {
            out.push("(".to_string());
            w = rest;
        }
        let mut closing = 0;
        while let Some(rest) = w.strip_suffix(')') {
            closing += 1;
            w = rest;
        }
        if !w.is_empty() {
            out.push(w.to_string());
        }
        out.extend(std::iter::repeat_n(")".to_string(), closing));
    }
    out
}

/// Parse a rule; anything unparsable denies (as oslo.policy does).
fn parse(s: &str) -> Rule {
    let tokens = tokenize(s);
    if tokens.is_empty() {
        return Rule::Allow;
    }
    let mut pos = 0;
    let rule = parse_or(&tokens, &mut pos);
    if pos != tokens.len() {
        Rule::Deny
    } else {
        rule.unwrap_or(Rule::Deny)
    }
}

fn parse_or(t: &[String], pos: &mut usize) -> Option<Rule> {
    let mut items = vec![parse_and(t, pos)?];
    while t.get(*pos).is_some_and(|x| x.eq_ignore_ascii_case("or")) {
        *pos += 1;
        items.push(parse_and(t, pos)?);
    }
    Some(if items.len() == 1 {
        items.remove(0)
    } else {
        Rule::Or(items)
    })
}

fn parse_and(t: &[String], pos: &mut usize) -> Option<Rule> {
    let mut items = vec![parse_not(t, pos)?];
    while t.get(*pos).is_some_and(|x| x.eq_ignore_ascii_case("and")) {
        *pos += 1;
        items.push(parse_not(t, pos)?);
    }
    Some(if items.len() == 1 {
        items.remove(0)
    } else {
        Rule::And(items)
    })
}

fn parse_not(t: &[String], pos: &mut usize) -> Option<Rule> {
    let tok = t.get(*pos)?;
    if tok.eq_ignore_ascii_case("not") {
        *pos += 1;
        return Some(Rule::Not(Box::new(parse_not(t, pos)?)));
    }
    if tok == "(" {
        *pos += 1;
        let inner = parse_or(t, pos)?;
        if t.get(*pos).map(String::as_str) != Some(")") {
            return None;
        }
        *pos += 1;
        return Some(inner);
    }
    *pos += 1;
    Some(match tok.as_str() {
        "@" => Rule::Allow,
        "!" => Rule::Deny,
        _ => match tok.split_once(':') {
            Some((k, v)) => Rule::Check(k.to_string(), v.to_string()),
            None => Rule::Deny,
        },
    })
}

/// A target flattened with dots (`resource.project_id`), values as strings.
pub(crate) type Target = HashMap<String, Option<String>>;

pub(crate) fn flatten(value: &Value) -> Target {
    fn walk(prefix: &str, v: &Value, out: &mut Target) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Null => {
                out.insert(prefix.to_string(), None);
            }
            Value::String(s) => {
                out.insert(prefix.to_string(), Some(s.clone()));
            }
            other => {
                out.insert(prefix.to_string(), Some(other.to_string()));
            }
        }
    }
    let mut out = Target::new();
    walk("", value, &mut out);
    out
}

impl Policy {
    fn eval(&self, rule: &Rule, creds: &Creds, target: &Target, depth: u8) -> bool {
        if depth > 32 {
            return false;
        }
        match rule {
            Rule::Allow => true,
            Rule::Deny => false,
            Rule::Not(r) => !self.eval(r, creds, target, depth + 1),
            Rule::And(rs) => rs.iter().all(|r| self.eval(r, creds, target, depth + 1)),
            Rule::Or(rs) => rs.iter().any(|r| self.eval(r, creds, target, depth + 1)),
            Rule::Check(kind, m) => match kind.as_str() {
                "rule" => self
                    .rules
                    .get(m)
                    .is_some_and(|r| self.eval(r, creds, target, depth + 1)),
                "role" => creds.roles.iter().any(|r| r.eq_ignore_ascii_case(m)),
                _ => {
                    let expected = match substitute(m, target) {
                        Some(e) => e,
                        None => return false,
                    };
                    let actual = match kind.as_str() {
                        "user" | "user_id" => Some(creds.user_id.as_str()),
                        "project_id" | "project" => creds.project_id.as_deref(),
                        _ => None,
                    };
                    actual.is_some_and(|a| a == expected)
                }
            },
        }
    }

    /// Is `creds` allowed `rule` on `target`?
    pub(crate) fn allowed(&self, rule: &str, creds: &Creds, target: &Target) -> bool {
        match self.rules.get(rule) {
            Some(r) => self.eval(r, creds, target, 0),
            // An unknown rule name is a programming error: deny.
            None => false,
        }
    }

    /// 403 unless allowed.
    pub(crate) fn enforce(&self, rule: &str, creds: &Creds, target: &Target) -> ApiResult<()> {
        if self.allowed(rule, creds, target) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

/// `%(key)s` → the target's value; a literal stays as is. `None`: key missing or null.
fn substitute(m: &str, target: &Target) -> Option<String> {
    if let Some(key) = m.strip_prefix("%(").and_then(|r| r.strip_suffix(")s")) {
        target.get(key).cloned().flatten()
    } else {
        Some(m.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Creds {
        Creds {
            user_id: name.into(),
            project_id: None,
            roles: if name == "admin" {
                vec!["admin".into()]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn only_admin_may_read_status() {
        let p = Policy::default();
        assert!(p.allowed("get status", &user("admin"), &Target::new()));
        assert!(!p.allowed("get status", &user("foobar"), &Target::new()));
    }

    #[test]
    fn creator_may_read_its_metric_and_others_may_not() {
        let p = Policy::default();
        let target = flatten(
            &serde_json::json!({"creator": "foobar", "created_by_project_id": "", "resource": null}),
        );
        assert!(p.allowed("get metric", &user("foobar"), &target));
        assert!(!p.allowed("get metric", &user("foobaz"), &target));
        assert!(p.allowed("get metric", &user("admin"), &target));
    }

    #[test]
    fn rule_expressions_parse_with_parentheses_and_not() {
        assert_eq!(parse(""), Rule::Allow);
        assert_eq!(parse("!"), Rule::Deny);
        let r = parse("(role:a or role:b) and not role:c");
        let p = Policy::default();
        let mut c = user("x");
        c.roles = vec!["b".into()];
        assert!(p.eval(&r, &c, &Target::new(), 0));
        c.roles.push("c".into());
        assert!(!p.eval(&r, &c, &Target::new(), 0));
        assert_eq!(parse("role:a or"), Rule::Deny);
    }
}
