//! `POST /v1/search/metric`: the points of some metrics whose value matches a
//! predicate, e.g. `{"and": [{">=": 10}, {"<": [{"+": 5}, 30]}]}`.
//!
//! The body is a tree of one-key objects: `{op: number}` compares or combines
//! the value with a number (`value op number`); `{op: [a, b]}` applies `op` to
//! two operands, each a number or a nested operation on the value; `and`/`or`
//! (`∧`/`∨`) take a list of predicates. As upstream, comparisons yield 1 or 0
//! and a point matches when the result is non-zero.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::targets::metric_target as policy_target;
use crate::language::aggregates_parse::MAX_DEPTH;
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{Ctx, json_body, ok_json_text};
use crate::wire::points::write_points;
use crate::wire::validate::Path;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use carbonara::calendar::Sampling;
use carbonara::ops::BinaryOp;
use carbonara::{AggregatedTimeSerie, Method, time};
use gnocchi_engine::SeriesRef;
use gnocchi_index::Metric;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/search/metric", post(search))
}

/// A validated predicate on a point's value.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// The point's value.
    Value,
    Const(f64),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    All(Vec<Expr>),
    Any(Vec<Expr>),
    /// Accepted by upstream's schema, refused when evaluated.
    Not,
}

/// Operators of `{op: ...}`; upstream's list (no `clip_*`, no `max`).
fn binary_op(name: &str) -> Option<BinaryOp> {
    match name {
        "clip_min" | "clip_max" | "max" => None,
        other => BinaryOp::parse(other),
    }
}

fn is_number(v: &Value) -> bool {
    v.is_number()
}

/// `{op: number | [operand, operand]}` where an operand is a number or an
/// operation.
fn operation(v: &Value, path: &Path, depth: usize) -> ApiResult<Expr> {
    if depth >= MAX_DEPTH {
        return Err(path.invalid(&format!("Query is nested deeper than {MAX_DEPTH} levels")));
    }
    let map = crate::wire::http::dict(v).ok_or_else(|| path.invalid("expected a dictionary"))?;
    if map.len() != 1 {
        return Err(path.invalid("length of value must be at most 1 and at least 1"));
    }
    let (key, arg) = map
        .iter()
        .next()
        .ok_or_else(|| path.invalid("expected a dictionary"))?;
    let op = binary_op(key).ok_or_else(|| path.key(key).invalid("extra keys not allowed"))?;
    let p = path.key(key);
    if let Some(n) = arg.as_f64().filter(|_| is_number(arg)) {
        return Ok(Expr::Binary(
            op,
            Box::new(Expr::Value),
            Box::new(Expr::Const(n)),
        ));
    }
    let items = arg
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| p.invalid("expected a list of 2 numbers or operations"))?;
    let mut operands = Vec::with_capacity(2);
    for (i, item) in items.iter().enumerate() {
        operands.push(match item.as_f64().filter(|_| is_number(item)) {
            Some(n) => Expr::Const(n),
            None => operation(item, &p.index(i), depth + 1)?,
        });
    }
    let right = operands.pop().unwrap_or(Expr::Const(f64::NAN));
    let left = operands.pop().unwrap_or(Expr::Const(f64::NAN));
    Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
}

/// A predicate: an operation, or `and`/`or`/`not` of a list of predicates.
fn predicate(v: &Value, path: &Path, depth: usize) -> ApiResult<Expr> {
    if depth >= MAX_DEPTH {
        return Err(path.invalid(&format!("Query is nested deeper than {MAX_DEPTH} levels")));
    }
    let combinator = crate::wire::http::dict(v)
        .filter(|m| m.len() == 1)
        .and_then(|m| {
            m.iter()
                .next()
                .filter(|(k, _)| matches!(k.as_str(), "and" | "∧" | "or" | "∨" | "not"))
        });
    let Some((key, arg)) = combinator else {
        return operation(v, path, depth);
    };
    let p = path.key(key);
    let items = arg.as_array().ok_or_else(|| p.invalid("expected a list"))?;
    let mut subs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        subs.push(predicate(item, &p.index(i), depth + 1)?);
    }
    Ok(match key.as_str() {
        "and" | "∧" => Expr::All(subs),
        "or" | "∨" => Expr::Any(subs),
        _ => Expr::Not,
    })
}

impl Expr {
    fn check(&self) -> ApiResult<()> {
        match self {
            Expr::Not => Err(ApiError::bad_request("Unknown operator not")),
            Expr::Binary(_, a, b) => {
                a.check()?;
                b.check()
            }
            Expr::All(xs) | Expr::Any(xs) => xs.iter().try_for_each(Expr::check),
            Expr::Value | Expr::Const(_) => Ok(()),
        }
    }

    fn eval(&self, value: f64) -> f64 {
        // Python truthiness: only zero is false (NaN is true).
        let truth = |x: f64| x != 0.0;
        match self {
            Expr::Value => value,
            Expr::Const(c) => *c,
            Expr::Binary(op, a, b) => op.apply(a.eval(value), b.eval(value)),
            Expr::All(xs) => f64::from(u8::from(xs.iter().all(|x| truth(x.eval(value))))),
            Expr::Any(xs) => f64::from(u8::from(xs.iter().any(|x| truth(x.eval(value))))),
            Expr::Not => 0.0,
        }
    }

    fn matches(&self, value: f64) -> bool {
        self.eval(value) != 0.0
    }
}

async fn search(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let mut ids: Vec<Uuid> = ctx
        .params_all("metric_id")
        .into_iter()
        .filter_map(|s| Uuid::parse_str(s).ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let metrics = state.indexer.get_metrics(&ids).await?;
    for m in &metrics {
        state
            .policy
            .enforce("search metric", &creds, &policy_target(m))?;
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("No query specified in body"));
    }
    let body = json_body(&headers, &body)?;
    let expr = predicate(&body, &Path::root(), 0)?;
    let start = time_bound(&ctx, "start")?;
    let stop = time_bound(&ctx, "stop")?;
    expr.check()?;
    let requested = granularities_param(&ctx)?;
    let aggregation = ctx.param("aggregation").unwrap_or("mean");
    let wanted = wanted_series(&metrics, requested.as_deref(), aggregation)?;
    let series = state.engine.read_series(&wanted, start, stop).await?;
    Ok(ok_json_text(matching_points(
        &metrics, &wanted, &series, &expr,
    )))
}

/// `start` or `stop`: a timestamp, or a plain 400.
fn time_bound(ctx: &Ctx, name: &str) -> ApiResult<Option<i64>> {
    match ctx.param(name) {
        None => Ok(None),
        Some(v) => time::parse_timestamp(v, crate::wire::params::now())
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("Invalid value for {name}"))),
    }
}

/// Every `granularity` given, finest last; `None` when there is none.
fn granularities_param(ctx: &Ctx) -> ApiResult<Option<Vec<i64>>> {
    let raw = ctx.params_all("granularity");
    if raw.is_empty() {
        return Ok(None);
    }
    let mut gs = Vec::with_capacity(raw.len());
    for g in raw {
        match time::parse_timespan(g) {
            Ok(ns) if ns > 0 => gs.push(ns),
            Ok(_) => {
                return Err(ApiError::argument(
                    "granularity",
                    "Timespan must be positive",
                ));
            }
            Err(_) => {
                return Err(ApiError::argument(
                    "granularity",
                    "Unable to parse timespan",
                ));
            }
        }
    }
    gs.sort_unstable_by(|a, b| b.cmp(a));
    Ok(Some(gs))
}

/// The series to read: each metric's `aggregation` at the requested
/// granularities (or all of its policy's), coarsest first; 400 when a
/// policy lacks one.
fn wanted_series<'a>(
    metrics: &'a [Metric],
    requested: Option<&[i64]>,
    aggregation: &str,
) -> ApiResult<Vec<SeriesRef<'a>>> {
    let method = Method::parse(aggregation);
    let mut wanted: Vec<SeriesRef> = Vec::new();
    for m in metrics {
        let policy = &m.archive_policy;
        let grans: Vec<i64> = match requested {
            Some(gs) => gs.to_vec(),
            None => {
                let mut gs: Vec<i64> = policy.definition.iter().map(|d| d.granularity).collect();
                gs.sort_unstable_by(|a, b| b.cmp(a));
                gs
            }
        };
        for g in grans {
            let method = method.filter(|x| {
                policy.aggregation_methods.contains(x)
                    && policy.definition.iter().any(|d| d.granularity == g)
            });
            let Some(method) = method else {
                return Err(ApiError::aggregation_does_not_exist(g, aggregation));
            };
            wanted.push(SeriesRef {
                metric: m,
                method,
                granularity: g,
            });
        }
    }
    Ok(wanted)
}

/// `{"<id>": [[timestamp, granularity, value], ...], ...}`: the points of
/// each metric's series that match `expr`.
fn matching_points(
    metrics: &[Metric],
    wanted: &[SeriesRef<'_>],
    series: &[AggregatedTimeSerie],
    expr: &Expr,
) -> String {
    let mut out = String::with_capacity(64);
    out.push('{');
    let mut i = 0;
    for (n, m) in metrics.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!("\"{}\": [", m.id));
        let mut first = true;
        let mut ts = Vec::new();
        let mut vals = Vec::new();
        while i < wanted.len() && wanted[i].metric.id == m.id {
            let s = &series[i];
            ts.clear();
            vals.clear();
            for (t, v) in s.timestamps.iter().zip(&s.values) {
                if expr.matches(*v) {
                    ts.push(*t);
                    vals.push(*v);
                }
            }
            let token = crate::wire::points::granularity_token(Sampling::Fixed(s.granularity));
            write_points(&mut out, &mut first, &token, &ts, &vals);
            i += 1;
        }
        out.push(']');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> ApiResult<Expr> {
        let e = predicate(&v, &Path::root(), 0)?;
        e.check()?;
        Ok(e)
    }

    #[test]
    fn predicates_evaluate_like_upstream() {
        let e = parse(json!({"=": 12})).unwrap();
        assert!(e.matches(12.0) && !e.matches(11.0));
        let e = parse(json!({">=": [{"+": 23}, 50]})).unwrap();
        assert!(e.matches(27.0) && !e.matches(26.0));
        let e = parse(json!({"∧": [{"≥": 10}, {"<": 20}]})).unwrap();
        assert!(e.matches(10.0) && !e.matches(20.0));
        let e = parse(json!({"or": [{"=": 1}, {"=": 2}]})).unwrap();
        assert!(e.matches(2.0) && !e.matches(3.0));
    }

    #[test]
    fn bad_queries_are_refused() {
        assert!(parse(json!({"not": [{"=": 1}]})).is_err());
        assert!(parse(json!({"foo": 1})).is_err());
        assert!(parse(json!({"=": "x"})).is_err());
        assert!(parse(json!({"=": [1, 2, 3]})).is_err());
        assert!(parse(json!({"=": 1, "<": 2})).is_err());
        let mut v = json!({"=": 1});
        for _ in 0..100 {
            v = json!({"and": [v]});
        }
        assert!(parse(v).is_err());
    }
}
