//! The `/v1/aggregates` operation language: from a JSON tree or an
//! S-expression string to a validated [`Node`] tree.
//!
//! Both forms reduce to the same prefix lists: the string
//! `"(aggregate mean (metric (ID mean) (ID2 mean)))"` reads as
//! `["aggregate", "mean", ["metric", ["ID", "mean"], ["ID2", "mean"]]]`.
//! Numbers are constants; in the string form they are words that read as
//! floats (as upstream coerces them).
//!
//! Error messages follow upstream's schema: whatever is wrong inside the
//! tree, the message describes the top-level node (`'rolling' operation
//! invalid`, `Operation must not be empty`...), because upstream's validator
//! reports the first alternative it tried. Untrusted input cannot exhaust the
//! stack or memory: nesting is capped at [`MAX_DEPTH`] levels and the tree at
//! [`MAX_NODES`] nodes (both 400), and the S-expression reader is iterative.

use crate::wire::error::ApiError;
use crate::wire::validate::Path;
use carbonara::Method;
use carbonara::calendar::Sampling;
use carbonara::ops::{BinaryOp, Reduction, UnaryOp};
use carbonara::time;
use serde_json::{Value, json};

/// Deepest nesting of operations accepted.
pub(crate) const MAX_DEPTH: usize = 64;
/// Most nodes (lists and atoms) accepted in one operations tree.
pub(crate) const MAX_NODES: usize = 10_000;

/// One `[reference, aggregation]` pair of a `metric` node: a metric id, or a
/// metric name glob when resources are searched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RefKey {
    pub(crate) name: String,
    pub(crate) aggregation: String,
}

/// A validated operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Const(f64),
    /// `single`: written `["metric", ref, agg]` rather than as a list of pairs.
    Metric {
        refs: Vec<RefKey>,
        single: bool,
    },
    Binary {
        name: String,
        op: BinaryOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    /// `["clip", value, min, max]`.
    Clip(Box<Node>, Box<Node>, Box<Node>),
    Unary {
        name: String,
        op: UnaryOp,
        arg: Box<Node>,
    },
    /// Differences between consecutive points (first point dropped).
    RateOfChange(Box<Node>),
    /// Differences per second (first point NaN).
    RateOfChangeSec(Box<Node>),
    Aggregate {
        name: String,
        how: Reduction,
        arg: Box<Node>,
    },
    Rolling {
        name: String,
        how: Reduction,
        window: usize,
        arg: Box<Node>,
    },
    Resample {
        name: String,
        method: Method,
        /// A fixed span (> 0) from the language; a calendar grouping only
        /// from the deprecated aggregation API's `resample` parameter.
        sampling: Sampling,
        arg: Box<Node>,
    },
}

/// Parse the `operations` field of a request body (JSON tree or string).
pub(crate) fn parse_operations(value: &Value) -> Result<Node, ApiError> {
    let owned;
    let tree = match value {
        Value::String(s) => {
            owned = read_sexpr(s)?;
            &owned
        }
        other => other,
    };
    let mut budget = MAX_NODES;
    match node(tree, 0, &mut budget, true) {
        Ok(n) => Ok(n),
        Err(Invalid::TooDeep) => Err(path().invalid(&format!(
            "Operations are nested deeper than {MAX_DEPTH} levels"
        ))),
        Err(Invalid::TooBig) => {
            Err(path().invalid(&format!("Operations have more than {MAX_NODES} nodes")))
        }
        Err(Invalid::Metric(msg)) => Err(path().invalid(&msg)),
        Err(Invalid::Shape) => Err(path().invalid(&top_level_message(tree))),
    }
}

fn path() -> Path {
    Path::root().key("operations")
}

/// Why a (sub)tree is not a valid operation.
#[derive(Debug)]
enum Invalid {
    /// Some node has the wrong shape: reported about the top-level node.
    Shape,
    /// The top-level `metric` node's references are malformed.
    Metric(String),
    TooDeep,
    TooBig,
}

/// Upstream's message about a top-level node that is not a valid operation
/// (the metric schema's, being the first alternative tried).
fn top_level_message(tree: &Value) -> String {
    match tree {
        Value::Array(items) if items.is_empty() => "Operation must not be empty".to_string(),
        Value::Array(items) if items.len() < 2 => {
            "Operation need at least one argument".to_string()
        }
        Value::Array(items) => format!("'{}' operation invalid", py_str(&items[0])),
        other => format!("Expected a tuple/list, got a {}", py_type(other)),
    }
}

/// Python's `type(v)` as printed in messages.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<class 'NoneType'>",
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(n) if n.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'str'>",
        Value::Array(_) => "<class 'list'>",
        Value::Object(_) if crate::wire::http::is_non_finite(v) => "<class 'float'>",
        Value::Object(_) => "<class 'dict'>",
    }
}

/// Python's `str(v)` of a decoded JSON value.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr(v)` of a decoded JSON value.
pub(crate) fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => i.to_string(),
            _ => {
                let mut s = String::new();
                crate::wire::json::py_float(n.as_f64().unwrap_or(f64::NAN), &mut s);
                s
            }
        },
        Value::String(s) => py_str_repr(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

fn py_str_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

fn spend(budget: &mut usize) -> Result<(), Invalid> {
    if *budget == 0 {
        return Err(Invalid::TooBig);
    }
    *budget -= 1;
    Ok(())
}

/// A sub-node: an operation, or a number (numeric strings and booleans
/// coerce, as Python's `float()` does).
fn operand(v: &Value, depth: usize, budget: &mut usize) -> Result<Node, Invalid> {
    match v {
        Value::Array(_) => node(v, depth, budget, false),
        other => {
            spend(budget)?;
            coerce_float(other).map(Node::Const).ok_or(Invalid::Shape)
        }
    }
}

/// Python `float(v)` of a JSON scalar.
pub(crate) fn coerce_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => parse_py_float(s),
        _ => None,
    }
}

/// Python's `float(str)`: surrounding whitespace allowed, `inf`/`nan` spelled
/// any case, digits with `_` separators.
pub(crate) fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(f) = t.parse::<f64>() {
        return Some(f);
    }
    // Underscores only between digits, as Python's grammar wants.
    let bytes = t.as_bytes();
    let ok = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'_'
            || (i > 0
                && i + 1 < bytes.len()
                && bytes[i - 1].is_ascii_digit()
                && bytes[i + 1].is_ascii_digit())
    });
    if ok && t.contains('_') {
        t.replace('_', "").parse::<f64>().ok()
    } else {
        None
    }
}

/// Python `int(v)` of a JSON scalar (floats truncate, strings must be integral).
fn coerce_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                .map(|f| f.trunc() as i64)
        }),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => s.trim().replace('_', "").parse::<i64>().ok(),
        _ => None,
    }
}

/// `utils.to_timespan`: seconds as a number, or any timespan string; > 0.
fn coerce_timespan(v: &Value) -> Option<i64> {
    let ns = match v {
        Value::Number(n) => time::timespan_from_seconds(n.as_f64()?).ok()?,
        Value::String(s) => time::parse_timespan(s).ok()?,
        _ => return None,
    };
    (ns > 0).then_some(ns)
}

fn node(v: &Value, depth: usize, budget: &mut usize, top: bool) -> Result<Node, Invalid> {
    if depth >= MAX_DEPTH {
        return Err(Invalid::TooDeep);
    }
    spend(budget)?;
    let items = match v {
        Value::Array(items) if items.len() >= 2 => items,
        _ => return Err(Invalid::Shape),
    };
    let head = items[0].as_str().ok_or(Invalid::Shape)?;
    let d = depth + 1;
    if head == "metric" {
        return metric(&items[1..], budget).map_err(|e| match e {
            Invalid::Shape if top => Invalid::Metric(
                "Expected a [metric reference, aggregation] pair or a list of them".to_string(),
            ),
            other => other,
        });
    }
    let name = head.to_string();
    match items.len() {
        2 => {
            let unary = UnaryOp::parse(head);
            if unary.is_some() || head == "rateofchange" || head == "rateofchangesec" {
                let arg = Box::new(operand(&items[1], d, budget)?);
                return Ok(match unary {
                    Some(op) => Node::Unary { name, op, arg },
                    None if head == "rateofchange" => Node::RateOfChange(arg),
                    None => Node::RateOfChangeSec(arg),
                });
            }
        }
        3 => {
            if let Some(op) = BinaryOp::parse(head) {
                let left = Box::new(operand(&items[1], d, budget)?);
                let right = Box::new(operand(&items[2], d, budget)?);
                return Ok(Node::Binary {
                    name,
                    op,
                    left,
                    right,
                });
            }
            if head == "aggregate" {
                let how = reduction(&items[1])?;
                let arg = Box::new(operand(&items[2], d, budget)?);
                return Ok(Node::Aggregate {
                    name: agg_name(&items[1]),
                    how,
                    arg,
                });
            }
        }
        4 => {
            if let Some(node) = node4(head, items, d, budget)? {
                return Ok(node);
            }
        }
        _ => {}
    }
    Err(Invalid::Shape)
}

/// The nodes of three operands: `clip`, `rolling` and `resample`; `None`
/// for any other head.
fn node4(
    head: &str,
    items: &[Value],
    d: usize,
    budget: &mut usize,
) -> Result<Option<Node>, Invalid> {
    match head {
        "clip" => {
            let a = Box::new(operand(&items[1], d, budget)?);
            let lo = Box::new(operand(&items[2], d, budget)?);
            let hi = Box::new(operand(&items[3], d, budget)?);
            Ok(Some(Node::Clip(a, lo, hi)))
        }
        "rolling" => {
            let how = reduction(&items[1])?;
            let window = coerce_int(&items[2])
                .filter(|w| *w >= 1)
                .and_then(|w| usize::try_from(w).ok())
                .ok_or(Invalid::Shape)?;
            let arg = Box::new(operand(&items[3], d, budget)?);
            Ok(Some(Node::Rolling {
                name: agg_name(&items[1]),
                how,
                window,
                arg,
            }))
        }
        "resample" => {
            // Upstream's schema takes the same 16 names as `aggregate`
            // and `rolling` (mean, median, std, min, max, sum, var, count
            // and their rate:), not every archive policy method: `first`,
            // `last`, `Npct`, `rate:last`... are refused like any other
            // malformed node. Among those 16, `var` and `rate:var` pass
            // upstream's schema and then fail (500, no such grouping);
            // `Method::parse` refuses them here (400).
            let method = items[1]
                .as_str()
                .filter(|name| Reduction::parse(name).is_some())
                .and_then(Method::parse)
                .ok_or(Invalid::Shape)?;
            let granularity = coerce_timespan(&items[2]).ok_or(Invalid::Shape)?;
            let arg = Box::new(operand(&items[3], d, budget)?);
            Ok(Some(Node::Resample {
                name: agg_name(&items[1]),
                method,
                sampling: Sampling::Fixed(granularity),
                arg,
            }))
        }
        _ => Ok(None),
    }
}

fn agg_name(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn reduction(v: &Value) -> Result<Reduction, Invalid> {
    v.as_str().and_then(Reduction::parse).ok_or(Invalid::Shape)
}

/// The arguments of a `metric` node: `ref, agg` or `[ref, agg], [ref, agg]...`.
fn metric(args: &[Value], budget: &mut usize) -> Result<Node, Invalid> {
    let pair = |v: &[Value]| -> Option<RefKey> {
        match v {
            [Value::String(name), Value::String(aggregation)] => Some(RefKey {
                name: name.clone(),
                aggregation: aggregation.clone(),
            }),
            _ => None,
        }
    };
    if let Some(r) = pair(args) {
        spend(budget)?;
        return Ok(Node::Metric {
            refs: vec![r],
            single: true,
        });
    }
    let mut refs = Vec::with_capacity(args.len());
    for a in args {
        spend(budget)?;
        let r = a.as_array().and_then(|p| pair(p)).ok_or(Invalid::Shape)?;
        refs.push(r);
    }
    Ok(Node::Metric {
        refs,
        single: false,
    })
}

impl Node {
    /// Every `[reference, aggregation]` pair, in order of first appearance,
    /// each once.
    pub(crate) fn references(&self) -> Vec<RefKey> {
        let mut out: Vec<RefKey> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        self.walk(&mut |n| {
            if let Node::Metric { refs, .. } = n {
                for r in refs {
                    if seen.insert(r.clone()) {
                        out.push(r.clone());
                    }
                }
            }
        });
        out
    }

    fn walk(&self, f: &mut impl FnMut(&Node)) {
        f(self);
        match self {
            Node::Const(_) | Node::Metric { .. } => {}
            Node::Binary { left, right, .. } => {
                left.walk(f);
                right.walk(f);
            }
            Node::Clip(a, b, c) => {
                a.walk(f);
                b.walk(f);
                c.walk(f);
            }
            Node::Unary { arg, .. }
            | Node::Aggregate { arg, .. }
            | Node::Rolling { arg, .. }
            | Node::Resample { arg, .. }
            | Node::RateOfChange(arg)
            | Node::RateOfChangeSec(arg) => arg.walk(f),
        }
    }

    /// The validated tree back as JSON (numbers as floats, as upstream's
    /// coerced tree), for error details.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Node::Const(f) => json!(f),
            Node::Metric { refs, single } => {
                let mut items = vec![json!("metric")];
                if *single {
                    items.push(json!(refs[0].name));
                    items.push(json!(refs[0].aggregation));
                } else {
                    items.extend(refs.iter().map(|r| json!([r.name, r.aggregation])));
                }
                Value::Array(items)
            }
            Node::Binary {
                name, left, right, ..
            } => json!([name, left.to_json(), right.to_json()]),
            Node::Clip(a, b, c) => json!(["clip", a.to_json(), b.to_json(), c.to_json()]),
            Node::Unary { name, arg, .. } => json!([name, arg.to_json()]),
            Node::RateOfChange(arg) => json!(["rateofchange", arg.to_json()]),
            Node::RateOfChangeSec(arg) => json!(["rateofchangesec", arg.to_json()]),
            Node::Aggregate { name, arg, .. } => json!(["aggregate", name, arg.to_json()]),
            Node::Rolling {
                name, window, arg, ..
            } => json!(["rolling", name, window, arg.to_json()]),
            Node::Resample {
                name,
                sampling,
                arg,
                ..
            } => {
                let g = match sampling {
                    Sampling::Fixed(g) => json!(crate::wire::json::seconds(*g)),
                    Sampling::Calendar(c) => json!(c.letter()),
                };
                json!(["resample", name, g, arg.to_json()])
            }
        }
    }
}

impl Node {
    /// The validated tree as upstream's error messages print it: the Python
    /// repr of its coerced lists, where a resample period is the
    /// `numpy.timedelta64` that `utils.to_timespan` made of it (numpy 2's repr).
    pub(crate) fn py_repr(&self) -> String {
        let list = |items: Vec<String>| format!("[{}]", items.join(", "));
        let s = |v: &str| py_repr(&json!(v));
        match self {
            Node::Const(_) | Node::Metric { .. } => py_repr(&self.to_json()),
            Node::Binary {
                name, left, right, ..
            } => list(vec![s(name), left.py_repr(), right.py_repr()]),
            Node::Clip(a, b, c) => list(vec![s("clip"), a.py_repr(), b.py_repr(), c.py_repr()]),
            Node::Unary { name, arg, .. } => list(vec![s(name), arg.py_repr()]),
            Node::RateOfChange(arg) => list(vec![s("rateofchange"), arg.py_repr()]),
            Node::RateOfChangeSec(arg) => list(vec![s("rateofchangesec"), arg.py_repr()]),
            Node::Aggregate { name, arg, .. } => list(vec![s("aggregate"), s(name), arg.py_repr()]),
            Node::Rolling {
                name, window, arg, ..
            } => list(vec![
                s("rolling"),
                s(name),
                window.to_string(),
                arg.py_repr(),
            ]),
            Node::Resample {
                name,
                sampling,
                arg,
                ..
            } => {
                let g = match sampling {
                    Sampling::Fixed(g) => format!("np.timedelta64({g},'ns')"),
                    Sampling::Calendar(c) => s(c.letter()),
                };
                list(vec![s("resample"), s(name), g, arg.py_repr()])
            }
        }
    }
}

/// Read an S-expression the way upstream's `nestedExpr` does: the first
/// parenthesized expression (anything after it is ignored), words split on
/// whitespace and parentheses, quoted strings kept whole (quotes included).
/// Iterative, so nesting depth costs heap, bounded by [`MAX_DEPTH`].
pub(crate) fn read_sexpr(s: &str) -> Result<Value, ApiError> {
    let fail = ApiError::unparsable_operations;
    let at = |pos: usize| {
        let char_pos = s[..pos].chars().count();
        format!("(at char {char_pos}), (line:1, col:{})", char_pos + 1)
    };
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let mut chars = s.char_indices().peekable();
    while chars.next_if(|(_, c)| is_space(*c)).is_some() {}
    match chars.peek() {
        Some((_, '(')) => {}
        Some((pos, _)) => {
            return Err(fail(format!(
                "Expected nested () expression, found {:?}  {}",
                &s[*pos..].chars().next().unwrap_or(' '),
                at(*pos)
            )));
        }
        None => {
            return Err(fail(format!(
                "Expected nested () expression, found end of text  {}",
                at(s.len())
            )));
        }
    }
    let mut stack: Vec<Vec<Value>> = Vec::new();
    let mut nodes = 0usize;
    while let Some((pos, c)) = chars.next() {
        match c {
            '(' => {
                if stack.len() >= MAX_DEPTH {
                    return Err(path().invalid(&format!(
                        "Operations are nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                stack.push(Vec::new());
            }
            ')' => {
                let done = stack.pop().unwrap_or_default();
                match stack.last_mut() {
                    Some(parent) => parent.push(Value::Array(done)),
                    None => return Ok(Value::Array(done)),
                }
            }
            c if is_space(c) => {}
            '"' | '\'' => {
                // A quoted string runs to the next unescaped matching quote,
                // on one line; an unterminated quote is just a word character.
                let rest = &s[pos + 1..];
                let mut end = None;
                let mut escaped = false;
                for (i, ch) in rest.char_indices() {
                    if escaped {
                        escaped = false;
                    } else if ch == '\\' {
                        escaped = true;
                    } else if ch == '\n' {
                        break;
                    } else if ch == c {
                        end = Some(pos + 1 + i + ch.len_utf8());
                        break;
                    }
                }
                let end = match end {
                    Some(e) => e,
                    None => word_end(s, pos),
                };
                while chars.next_if(|(p, _)| *p < end).is_some() {}
                push_atom(&mut stack, &s[pos..end], &mut nodes)?;
            }
            _ => {
                let end = word_end(s, pos);
                while chars.next_if(|(p, _)| *p < end).is_some() {}
                push_atom(&mut stack, &s[pos..end], &mut nodes)?;
            }
        }
    }
    Err(fail(format!(
        "Expected ')', found end of text  {}",
        at(s.len())
    )))
}

/// End of a bare word starting at `start`: before whitespace, a parenthesis or
/// an opening quote.
fn word_end(s: &str, start: usize) -> usize {
    let mut first = true;
    for (i, c) in s[start..].char_indices() {
        let stop = matches!(c, ' ' | '\t' | '\n' | '\r' | '(' | ')')
            || (!first && matches!(c, '"' | '\''));
        if stop {
            return start + i;
        }
        first = false;
    }
    s.len()
}

fn push_atom(stack: &mut [Vec<Value>], word: &str, nodes: &mut usize) -> Result<(), ApiError> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(path().invalid(&format!("Operations have more than {MAX_NODES} nodes")));
    }
    if let Some(top) = stack.last_mut() {
        top.push(Value::String(word.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: ApiError) -> String {
        e.description["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn sexpr_reads_like_nested_expr() {
        let v = read_sexpr("  (aggregate mean (metric (a mean) (b max)))) trailing").unwrap();
        assert_eq!(
            v,
            json!(["aggregate", "mean", ["metric", ["a", "mean"], ["b", "max"]]])
        );
        let v = read_sexpr("(+ (metric x mean) 2.0)").unwrap();
        assert_eq!(v, json!(["+", ["metric", "x", "mean"], "2.0"]));
        assert_eq!(
            read_sexpr("(metric \"a b\" mean)").unwrap(),
            json!(["metric", "\"a b\"", "mean"])
        );
        for bad in ["(metroc foo bar", "", "metric a b", "((("] {
            let e = read_sexpr(bad).unwrap_err();
            assert_eq!(e.description["cause"], "Invalid operations", "{bad}");
        }
    }

    #[test]
    fn valid_trees() {
        let n = parse_operations(&json!("(rolling mean 2 (metric a mean))")).unwrap();
        assert!(matches!(n, Node::Rolling { window: 2, .. }));
        let n =
            parse_operations(&json!(["resample", "mean", 60, ["metric", "a", "mean"]])).unwrap();
        assert!(matches!(
            n,
            Node::Resample {
                sampling: Sampling::Fixed(60_000_000_000),
                ..
            }
        ));
        let n = parse_operations(&json!("(clip_min (metric a mean) 10)")).unwrap();
        assert!(matches!(
            n,
            Node::Binary {
                op: BinaryOp::ClipMin,
                ..
            }
        ));
        let n =
            parse_operations(&json!("(aggregate rate:mean (metric (a mean) (b mean)))")).unwrap();
        assert_eq!(n.references().len(), 2);
    }

    #[test]
    fn messages_describe_the_top_level_node() {
        let e = |v: Value| reason(parse_operations(&v).unwrap_err());
        assert!(e(json!([])).starts_with("Operation must not be empty"));
        assert!(e(json!(["metric"])).starts_with("Operation need at least one argument"));
        assert!(
            e(json!({"foo": "bar"})).starts_with("Expected a tuple/list, got a <class 'dict'>")
        );
        assert!(
            e(json!("(rolling blah 2 (metric a mean))")).starts_with("'rolling' operation invalid")
        );
        assert!(
            e(json!("(rolling mean (metric a mean))")).starts_with("'rolling' operation invalid")
        );
        assert!(
            e(json!("(notexist (absolute (metric a mean)))"))
                .starts_with("'notexist' operation invalid")
        );
        assert!(
            e(json!("(resample mean invalid (metric a mean))"))
                .starts_with("'resample' operation invalid")
        );
        assert!(
            e(json!(["aggregate", "mean", ["metric"]]))
                .starts_with("'aggregate' operation invalid")
        );
    }

    /// Upstream 4.7.1's schema gives `aggregate`, `rolling` and `resample`
    /// the same 16 names; archive policy methods outside them (`first`,
    /// `Npct`, `rate:last`...) are refused wherever the node sits, and the
    /// message names the top-level node (answers taken from upstream).
    #[test]
    fn resample_takes_only_the_aggregate_functions() {
        let e = |s: &str| reason(parse_operations(&json!(s)).unwrap_err());
        for m in ["first", "last", "50pct", "99pct", "rate:last", "rate:first"] {
            let want = "'resample' operation invalid for dictionary value @ data['operations']";
            assert_eq!(e(&format!("(resample {m} 2 (metric a mean))")), want, "{m}");
            assert_eq!(
                e(&format!(
                    "(resample mean 2 (resample {m} 2 (metric a mean)))"
                )),
                want,
                "{m}"
            );
            assert_eq!(
                e(&format!(
                    "(aggregate mean (resample {m} 2 (metric a mean)))"
                )),
                "'aggregate' operation invalid for dictionary value @ data['operations']",
                "{m}"
            );
            assert_eq!(
                e(&format!("(+ (resample {m} 2 (metric a mean)) 1)")),
                "'+' operation invalid for dictionary value @ data['operations']",
                "{m}"
            );
        }
        for m in [
            "mean",
            "median",
            "std",
            "min",
            "max",
            "sum",
            "count",
            "rate:mean",
            "rate:count",
            "rate:std",
        ] {
            let s = format!("(aggregate mean (resample {m} 2 (metric a mean)))");
            assert!(parse_operations(&json!(s)).is_ok(), "{m}");
        }
        // The aggregated series' own method is not constrained.
        assert!(parse_operations(&json!("(resample mean 2 (metric a first))")).is_ok());
    }

    /// A tiny deterministic generator: no dependency, reproducible failures.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % n.max(1)
        }
    }

    #[test]
    fn random_input_never_panics() {
        let words = [
            "(",
            ")",
            " ",
            "metric",
            "aggregate",
            "rolling",
            "resample",
            "clip",
            "mean",
            "rate:max",
            "95pct",
            "2",
            "-1",
            "1e400",
            "nan",
            "\"",
            "'",
            "a b",
            "+",
            "**",
            "≥",
            "\n",
            "abs",
            "rateofchangesec",
            "60s",
            "0",
            "((",
            "))",
        ];
        let mut rng = Lcg(42);
        for _ in 0..20_000 {
            let n = rng.next(40);
            let s: String = (0..n).map(|_| words[rng.next(words.len())]).collect();
            let _ = parse_operations(&json!(s));
        }
        fn tree(rng: &mut Lcg, depth: usize) -> Value {
            match rng.next(if depth > 6 { 4 } else { 7 }) {
                0 => json!(rng.next(5) as f64 - 1.0),
                1 => json!(["metric", "x", "mean"][rng.next(3)]),
                2 => Value::Null,
                3 => json!({"k": 1}),
                _ => {
                    let heads = [
                        "metric",
                        "aggregate",
                        "rolling",
                        "resample",
                        "clip",
                        "+",
                        "abs",
                        "mean",
                        "x",
                    ];
                    let mut items = vec![json!(heads[rng.next(heads.len())])];
                    for _ in 0..rng.next(5) {
                        items.push(tree(rng, depth + 1));
                    }
                    Value::Array(items)
                }
            }
        }
        for _ in 0..20_000 {
            let t = tree(&mut rng, 0);
            if let Ok(n) = parse_operations(&t) {
                let _ = n.references();
                let _ = py_repr(&n.to_json());
            }
        }
    }

    #[test]
    fn deep_and_huge_trees_are_refused() {
        let deep = format!(
            "{}(metric a mean){}",
            "(abs ".repeat(10_000),
            ")".repeat(10_000)
        );
        let e = parse_operations(&json!(deep)).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        let mut v = json!(["metric", "a", "mean"]);
        for _ in 0..100 {
            v = json!(["abs", v]);
        }
        assert!(parse_operations(&v).is_err());
        let wide = format!("(metric {})", "(a mean) ".repeat(MAX_NODES + 1));
        assert!(parse_operations(&json!(wide)).is_err());
        let wide: Vec<Value> = std::iter::once(json!("metric"))
            .chain((0..MAX_NODES + 1).map(|i| json!([i.to_string(), "mean"])))
            .collect();
        assert!(parse_operations(&Value::Array(wide)).is_err());
    }
}
