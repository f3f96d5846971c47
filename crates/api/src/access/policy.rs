//! The policy engine: upstream's named rules (oslo.policy syntax) evaluated
//! against the caller's credentials and the target object.
//!
//! A rule is an expression of checks (`role:admin`, `user:%(creator)s`,
//! `rule:other`, `@`, `!`, empty = allow) combined with `and`, `or`, `not` and
//! parentheses. The target is the object's JSON flattened with dots
//! (`resource.project_id`).

use crate::access::auth::Creds;
use crate::wire::error::{ApiError, ApiResult};
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

impl Policy {
    /// Upstream's defaults, with `overrides` (an operator's policy file:
    /// rule name → rule string) replacing or adding rules.
    pub fn with_overrides(overrides: &[(String, String)]) -> Policy {
        let mut policy = Policy::default();
        for (name, rule) in overrides {
            policy.rules.insert(name.clone(), parse(rule));
        }
        policy
    }
}

/// Parse an oslo.policy file: a JSON object or a YAML mapping of rule name →
/// rule string (the flat form `oslopolicy-sample-generator` writes: one
/// `"name": "rule"` per line, `#` comments). Errors name the offending line.
pub fn parse_policy_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.starts_with('{') {
        let v: Value = serde_json::from_str(trimmed).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(map) = v else {
            return Err("expected an object of rule name → rule string".into());
        };
        return map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(r) => Ok((k, r)),
                _ => Err(format!("rule `{k}': expected a string")),
            })
            .collect();
    }
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_start_matches('\u{feff}');
        let body = strip_yaml_comment(line);
        let body = body.trim();
        if body.is_empty() || body == "---" || body == "..." {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            return Err(format!("line {n}: nested YAML is not a policy rule"));
        }
        let (key, rest) = yaml_scalar(body, true)
            .ok_or_else(|| format!("line {n}: expected `\"rule name\": \"rule\"'"))?;
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix(':') else {
            return Err(format!("line {n}: expected `:' after the rule name"));
        };
        let rest = rest.trim();
        let value = if rest.is_empty() || rest == "''" || rest == "\"\"" {
            String::new()
        } else {
            let (v, tail) = yaml_scalar(rest, false)
                .ok_or_else(|| format!("line {n}: the rule must be a string"))?;
            if !tail.trim().is_empty() {
                return Err(format!("line {n}: unexpected text after the rule"));
            }
            v
        };
        out.push((key, value));
    }
    Ok(out)
}

/// `line` without a trailing `# comment` (a `#` outside quotes, at the start or after a space).
fn strip_yaml_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return &line[..i],
            None => {}
        }
        prev = c;
    }
    line
}

/// A quoted or plain YAML scalar at the start of `s`, and what follows it. A
/// plain key ends at `: `; a plain value takes the rest of the line.
fn yaml_scalar(s: &str, key: bool) -> Option<(String, &str)> {
    if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((out, &rest[i + 1..])),
                '\\' => match chars.next()?.1 {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        None
    } else if let Some(rest) = s.strip_prefix('\'') {
        let mut out = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    return Some((out, &rest[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        None
    } else if key {
        let end = s.find(": ").or_else(|| s.strip_suffix(':').map(str::len))?;
        Some((s[..end].trim().to_string(), &s[end..]))
    } else if s.starts_with(['[', '{', '|', '>', '&', '*']) {
        // Sequences, mappings, block scalars, anchors: not a rule string.
        None
    } else {
        Some((s.trim().to_string(), ""))
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
                    // A quoted literal on the left compares with the right side.
                    if let Some(lit) = quoted(kind) {
                        return lit == expected;
                    }
                    // The credentials upstream's auth helpers give: `user` is the
                    // creator string; the ids exist only in keystone mode.
                    let creator;
                    let actual = match kind.as_str() {
                        "user" => {
                            creator = creds.creator();
                            Some(creator.as_str())
                        }
                        "user_id" if creds.scoped => Some(creds.user_id.as_str()),
                        "project_id" => creds.project_id.as_deref(),
                        "domain_id" => creds.domain_id.as_deref(),
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

    /// 403 unless allowed `rule` on an empty target, as upstream enforces the
    /// rules of what no project owns (archive policies, their rules, resource
    /// types) and of creations.
    pub(crate) fn enforce_untargeted(&self, rule: &str, creds: &Creds) -> ApiResult<()> {
        self.enforce(rule, creds, &Target::new())
    }
}

/// `'x'` or `"x"` → `x`.
fn quoted(s: &str) -> Option<&str> {
    ['\'', '"']
        .iter()
        .find_map(|q| s.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
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
            domain_id: None,
            roles: if name == "admin" {
                vec!["admin".into()]
            } else {
                vec![]
            },
            scoped: false,
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

    fn keystone(user: &str, project: &str, roles: &[&str]) -> Creds {
        Creds {
            user_id: user.into(),
            project_id: Some(project.into()),
            domain_id: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            scoped: true,
        }
    }

    #[test]
    fn keystone_project_owns_resources_and_metrics() {
        let p = Policy::default();
        let alice = keystone("alice", "pa", &["member"]);
        let r = flatten(
            &serde_json::json!({"creator": "bob:pb", "created_by_project_id": "pb", "project_id": "pa"}),
        );
        assert!(p.allowed("get resource", &alice, &r));
        let r = flatten(
            &serde_json::json!({"creator": "bob:pb", "created_by_project_id": "pb", "project_id": "pb"}),
        );
        assert!(!p.allowed("get resource", &alice, &r));
        let r = flatten(
            &serde_json::json!({"creator": "carol:pa", "created_by_project_id": "pa", "project_id": null}),
        );
        assert!(p.allowed("get resource", &alice, &r));
        let m = flatten(
            &serde_json::json!({"creator": "bob:pb", "created_by_project_id": "pb", "resource": {"project_id": "pa"}}),
        );
        assert!(p.allowed("get measures", &alice, &m));
        assert!(!p.allowed("post measures", &alice, &m));
        assert!(p.allowed(
            "get status",
            &keystone("x", "y", &["admin"]),
            &Target::new()
        ));
    }

    #[test]
    fn overrides_replace_rules() {
        let p = Policy::with_overrides(&[
            ("get status".into(), "".into()),
            ("new".into(), "role:x".into()),
        ]);
        assert!(p.allowed("get status", &user("foobar"), &Target::new()));
        assert!(!p.allowed("new", &user("foobar"), &Target::new()));
        assert!(p.allowed("get metric", &user("admin"), &Target::new()));
    }

    #[test]
    fn policy_files_parse_as_yaml_or_json() {
        let yaml = "# comment\n---\n\"get status\": \"\"\n'list metric': 'role:admin'  # trailing\ncreate metric: role:admin or role:creator\n\"delete metric\":\n#\"get resource\": \"\"\n";
        let rules = parse_policy_file(yaml).expect("yaml");
        assert_eq!(
            rules,
            vec![
                ("get status".into(), "".into()),
                ("list metric".into(), "role:admin".into()),
                ("create metric".into(), "role:admin or role:creator".into()),
                ("delete metric".into(), "".into()),
            ]
        );
        let json = r#"{"get status": "@", "list metric": "!"}"#;
        assert_eq!(parse_policy_file(json).expect("json").len(), 2);
        assert!(parse_policy_file("a:\n  b: c\n").is_err());
        assert!(parse_policy_file("\"unterminated: x\n").is_err());
        assert!(parse_policy_file(r#"{"a": 1}"#).is_err());
        assert!(parse_policy_file("\"get status\": [role:admin]\n").is_err());
    }
}
