//! `POST /v1/aggregates`: dynamic aggregation across metrics with the
//! operation language of [`crate::language::aggregates_parse`], and the processor it
//! shares with the deprecated `/v1/aggregation` API.
//!
//! The processor reads every referenced series at every granularity they
//! have in common (one storage batch), aligns the series of each granularity
//! on the union of their timestamps (holes are NaN, or the numeric `fill`),
//! fills or checks the overlap, evaluates the operations on that grid with
//! `carbonara::ops`, and renders `[[timestamp, granularity, value], ...]`.

use crate::AppState;
use crate::access::auth::Creds;
use crate::language::aggregates_parse::{Node, RefKey, parse_operations, py_repr};
use crate::language::query::{parse_filter_string, parse_json_query};
use crate::routes::measures::{granularity_token, time_param, timespan_param, write_points};
use crate::routes::metric::{loaded_resource, policy_target, to_json_with_resource};
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::{Ctx, json_body};
use crate::wire::validate::{self, Path};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use carbonara::calendar::Sampling;
use carbonara::ops::{self, Grid};
use carbonara::{Method, Timestamp};
use gnocchi_engine::SeriesRef;
use gnocchi_index::{IndexError, Metric, Nulls, ResourceQuery, SortDir, SortKey};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/aggregates", post(post_aggregates))
}

/// What to do with the holes left by aligning series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fill {
    /// No filling: keep only overlapping timestamps, check `needed_overlap`.
    None,
    /// Holes are NaN and NaN results are emitted.
    Null,
    /// Holes are NaN and non-finite results are dropped.
    DropNa,
    /// Holes take this value.
    Value(f64),
    Ffill,
    Bfill,
    FullFfill,
    FullBfill,
}

impl Fill {
    /// Whether NaN and infinite results are left out of the output.
    fn drops_non_finite(self) -> bool {
        matches!(
            self,
            Fill::DropNa | Fill::Ffill | Fill::Bfill | Fill::FullFfill | Fill::FullBfill
        )
    }
}

/// The query parameters of `/v1/aggregates` (upstream's `validate_qs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AggQuery {
    pub(crate) start: Option<Timestamp>,
    pub(crate) stop: Option<Timestamp>,
    pub(crate) granularity: Option<i64>,
    pub(crate) needed_overlap: f64,
    pub(crate) fill: Fill,
}

/// `/v1/aggregates`'s parameters: without `fill` nor `needed_overlap`,
/// upstream fills with `dropna` rather than checking the overlap.
fn parse_query(ctx: &Ctx) -> ApiResult<AggQuery> {
    validate_qs(ctx, |overlap_given| {
        if overlap_given {
            Fill::None
        } else {
            Fill::DropNa
        }
    })
}

/// Upstream's `validate_qs`, shared by `/v1/aggregates` and the deprecated
/// `/v1/aggregation` API: `needed_overlap`, `start`, `stop`, `granularity`
/// and `fill`, checked in that order, each refused with an `Argument value
/// error` naming it. Without `fill`, `default_fill` gets whether
/// `needed_overlap` was given.
pub(crate) fn validate_qs(
    ctx: &Ctx,
    default_fill: impl FnOnce(bool) -> Fill,
) -> ApiResult<AggQuery> {
    let needed_overlap = match ctx.param("needed_overlap") {
        None => None,
        Some(v) => Some(
            crate::language::aggregates_parse::parse_py_float(v)
                .ok_or_else(|| ApiError::argument("needed_overlap", "Must be a number"))?,
        ),
    };
    let start = time_param(ctx, "start")?;
    let stop = time_param(ctx, "stop")?;
    let granularity = timespan_param(ctx, "granularity")?;
    let fill = match ctx.param("fill") {
        None => default_fill(needed_overlap.is_some()),
        Some("null") => Fill::Null,
        Some("dropna") => Fill::DropNa,
        Some("ffill") => Fill::Ffill,
        Some("bfill") => Fill::Bfill,
        Some("full_ffill") => Fill::FullFfill,
        Some("full_bfill") => Fill::FullBfill,
        Some(v) => Fill::Value(crate::language::aggregates_parse::parse_py_float(v).ok_or_else(|| {
            ApiError::argument(
                "fill",
                "Must be a float, 'dropna', 'null', 'ffill', 'bfill', 'full_ffill' or 'full_bfill'",
            )
        })?),
    };
    Ok(AggQuery {
        start,
        stop,
        granularity,
        needed_overlap: needed_overlap.unwrap_or(100.0),
        fill,
    })
}

/// One series the operations read.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    pub(crate) metric: Metric,
    pub(crate) aggregation: String,
    /// What `metric` nodes select it by: (metric id or name glob, aggregation).
    pub(crate) lookup: RefKey,
    /// The resource it was found on (searches by resource).
    pub(crate) resource_id: Option<Uuid>,
    /// With history: only the points inside these windows count, weighted by
    /// the part of their bucket inside (empty: everything counts).
    pub(crate) windows: Vec<ops::Window>,
}

/// Why the processor gave up; each API renders these its own way.
#[derive(Debug)]
pub(crate) enum ProcError {
    /// The method is not in the metric's archive policy. `granularity`: the
    /// policy's first one, for the deprecated API's message.
    UnknownAggregation {
        metric: Uuid,
        aggregation: String,
        granularity: i64,
    },
    /// Upstream's `UnAggregableTimeseries`.
    Unaggregable {
        reason: String,
        detail: Value,
    },
    Api(ApiError),
}

impl From<ApiError> for ProcError {
    fn from(e: ApiError) -> Self {
        ProcError::Api(e)
    }
}

impl ProcError {
    /// As `/v1/aggregates` answers.
    pub(crate) fn into_api(self) -> ApiError {
        match self {
            ProcError::UnknownAggregation {
                metric,
                aggregation,
                ..
            } => ApiError::not_found(json!({
                "cause": "Metrics with unknown aggregation",
                "detail": [[metric.to_string(), aggregation]],
            })),
            ProcError::Unaggregable { reason, detail } => unaggregable(reason, detail),
            ProcError::Api(e) => e,
        }
    }
}

pub(crate) fn unaggregable(reason: String, detail: Value) -> ApiError {
    ApiError::bad_request(json!({
        "cause": "Metrics cannot be aggregated",
        "reason": reason,
        "detail": detail,
    }))
}

/// One granularity's worth of a result series.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) sampling: Sampling,
    pub(crate) timestamps: Vec<Timestamp>,
    pub(crate) values: Vec<f64>,
}

/// The processor's result.
#[derive(Debug)]
pub(crate) enum Output {
    /// One series (the operations combined the references), coarsest first.
    Aggregated(Vec<Part>),
    /// One series per reference (in reference order), each coarsest first.
    PerReference(Vec<Vec<Part>>),
}

/// Most values (series × timestamps) one granularity's grid may hold: 20M
/// doubles are 160 MB; a request needing more is refused rather than allowed
/// to exhaust the server's memory.
pub(crate) const MAX_GRID_CELLS: usize = 20_000_000;

/// `[[name, aggregation], ...]`: a metric's id, or its name when found on a
/// resource (upstream's `MetricReference.name`).
fn names_detail(refs: &[Reference]) -> Value {
    Value::Array(
        refs.iter()
            .map(|r| {
                let name = match (r.resource_id, &r.metric.name) {
                    (Some(_), Some(n)) => n.clone(),
                    _ => r.metric.id.to_string(),
                };
                json!([name, r.aggregation])
            })
            .collect(),
    )
}

/// `[[reference, aggregation], ...]` as the operations wrote them.
fn lookup_detail(refs: &[Reference]) -> Value {
    Value::Array(
        refs.iter()
            .map(|r| json!([r.lookup.name, r.lookup.aggregation]))
            .collect(),
    )
}

/// Read, align and evaluate: upstream's `processor.get_measures`.
/// `normalize` maps a `metric` node's pair to the lookup key of the
/// references it selects.
pub(crate) async fn get_measures(
    state: &AppState,
    refs: &[Reference],
    operations: &Node,
    q: &AggQuery,
    normalize: &(dyn Fn(&RefKey) -> RefKey + Sync),
) -> Result<Output, ProcError> {
    if refs.is_empty() {
        return Ok(Output::PerReference(Vec::new()));
    }
    let mut methods = Vec::with_capacity(refs.len());
    for r in refs {
        let policy = &r.metric.archive_policy;
        match Method::parse(&r.aggregation).filter(|m| policy.aggregation_methods.contains(m)) {
            Some(m) => methods.push(m),
            None => {
                return Err(ProcError::UnknownAggregation {
                    metric: r.metric.id,
                    aggregation: r.aggregation.clone(),
                    granularity: policy.definition.first().map_or(0, |d| d.granularity),
                });
            }
        }
    }
    let has = |r: &Reference, g: i64| {
        r.metric
            .archive_policy
            .definition
            .iter()
            .any(|d| d.granularity == g)
    };
    let granularities: Vec<i64> = match q.granularity {
        Some(g) => {
            let names = names_detail(refs);
            let missing: Vec<Value> = refs
                .iter()
                .zip(names.as_array().into_iter().flatten())
                .filter(|(r, _)| !has(r, g))
                .map(|(r, name)| json!([name[0], r.aggregation, crate::wire::json::seconds(g)]))
                .collect();
            if !missing.is_empty() {
                return Err(ProcError::Unaggregable {
                    reason: "Granularities are missing".to_string(),
                    detail: Value::Array(missing),
                });
            }
            vec![g]
        }
        None => {
            let mut common: Vec<i64> = Vec::new();
            if let Some(first) = refs.first() {
                for d in &first.metric.archive_policy.definition {
                    if !common.contains(&d.granularity)
                        && refs.iter().all(|r| has(r, d.granularity))
                    {
                        common.push(d.granularity);
                    }
                }
            }
            if common.is_empty() {
                return Err(ProcError::Unaggregable {
                    reason: "No granularity match".to_string(),
                    detail: names_detail(refs),
                });
            }
            common.sort_unstable_by(|a, b| b.cmp(a));
            common
        }
    };

    let wanted: Vec<SeriesRef> = granularities
        .iter()
        .flat_map(|&granularity| {
            refs.iter().zip(&methods).map(move |(r, m)| SeriesRef {
                metric: &r.metric,
                method: *m,
                granularity,
            })
        })
        .collect();
    let series = state
        .engine
        .read_series(&wanted, q.start, q.stop)
        .await
        .map_err(ApiError::from)?;

    let mut series = series;
    for (k, s) in series.iter_mut().enumerate() {
        let r = &refs[k % refs.len()];
        if !r.windows.is_empty() {
            let (ts, vals) =
                ops::window_weighted(&s.timestamps, &s.values, s.granularity, &r.windows);
            s.timestamps = ts;
            s.values = vals;
        }
    }
    let mut results = Vec::with_capacity(granularities.len());
    let mut aggregated = false;
    for (gi, &g) in granularities.iter().enumerate() {
        let chunk = &series[gi * refs.len()..(gi + 1) * refs.len()];
        let inputs: Vec<(&[Timestamp], &[f64])> = chunk
            .iter()
            .map(|s| (&s.timestamps[..], &s.values[..]))
            .collect();
        let filler = match q.fill {
            Fill::Value(v) => v,
            _ => f64::NAN,
        };
        let union = ops::union(&inputs);
        if union.len().saturating_mul(inputs.len()) > MAX_GRID_CELLS {
            return Err(ProcError::Api(ApiError::bad_request(format!(
                "Too many points to aggregate: {} series of {} timestamps (at most {MAX_GRID_CELLS} values); narrow start/stop or choose a coarser granularity",
                inputs.len(),
                union.len()
            ))));
        }
        let mut grid = ops::align_on(union, &inputs, filler);
        match q.fill {
            Fill::None => grid = check_overlap(grid, q, refs)?,
            Fill::Ffill => ops::fill_forward(&mut grid),
            Fill::Bfill => ops::fill_backward(&mut grid),
            Fill::FullFfill => {
                ops::fill_forward(&mut grid);
                ops::fill_backward(&mut grid);
            }
            Fill::FullBfill => {
                ops::fill_backward(&mut grid);
                ops::fill_forward(&mut grid);
            }
            Fill::Null | Fill::DropNa | Fill::Value(_) => {}
        }
        let ctx = EvalCtx {
            grid: &grid,
            sampling: Sampling::Fixed(g),
            refs,
            normalize,
        };
        let result = match eval(operations, &ctx)? {
            Val::Series(s) => s,
            // A tree always holds a metric node, but its value may have been
            // reduced away by constant-only branches: nothing to render.
            Val::Const(_) => Series {
                sampling: Sampling::Fixed(g),
                grid: Grid::default(),
                cols: Vec::new(),
                aggregated: true,
            },
        };
        aggregated |= result.aggregated;
        results.push(result);
    }

    let keep = |ts: &[Timestamp], vals: &[f64], sampling: Sampling| -> Part {
        if q.fill.drops_non_finite() {
            let mut part = Part {
                sampling,
                timestamps: Vec::with_capacity(ts.len()),
                values: Vec::with_capacity(vals.len()),
            };
            for (t, v) in ts.iter().zip(vals) {
                if v.is_finite() {
                    part.timestamps.push(*t);
                    part.values.push(*v);
                }
            }
            part
        } else {
            Part {
                sampling,
                timestamps: ts.to_vec(),
                values: vals.to_vec(),
            }
        }
    };
    if aggregated {
        Ok(Output::Aggregated(
            results
                .iter()
                .map(|s| keep(&s.grid.timestamps, s.grid.column(0), s.sampling))
                .collect(),
        ))
    } else {
        let mut per_ref: Vec<Vec<Part>> = vec![Vec::new(); refs.len()];
        for s in &results {
            for (j, &r) in s.cols.iter().enumerate() {
                if let Some(parts) = per_ref.get_mut(r) {
                    parts.push(keep(&s.grid.timestamps, s.grid.column(j), s.sampling));
                }
            }
        }
        Ok(Output::PerReference(per_ref))
    }
}

/// Without `fill`: trim to the overlapping timestamps when no bound was
/// given, and refuse if less than `needed_overlap` % of them overlap.
fn check_overlap(grid: Grid, q: &AggQuery, refs: &[Reference]) -> Result<Grid, ProcError> {
    let o = ops::overlap(&grid);
    if o.count == 0 && q.needed_overlap > 0.0 {
        return Err(ProcError::Unaggregable {
            reason: "No overlap".to_string(),
            detail: lookup_detail(refs),
        });
    }
    if grid.rows() == 0 {
        return Ok(grid);
    }
    let mut lo = 0;
    let mut hi = grid.rows();
    if let (Some(first), Some(last)) = (o.first, o.last) {
        if q.stop.is_none() {
            hi = last + 1;
        }
        if q.start.is_none() {
            lo = first;
        }
    }
    let grid = if (lo, hi) == (0, grid.rows()) {
        grid
    } else {
        grid.slice_rows(lo, hi)
    };
    let percent = o.count as f64 * 100.0 / grid.rows().max(1) as f64;
    if percent < q.needed_overlap {
        return Err(ProcError::Unaggregable {
            reason: format!(
                "Less than {:.6}% of datapoints overlap in this timespan ({percent:.2}%)",
                q.needed_overlap
            ),
            detail: lookup_detail(refs),
        });
    }
    Ok(grid)
}

struct EvalCtx<'a> {
    /// The aligned references at this granularity, one column each.
    grid: &'a Grid,
    sampling: Sampling,
    refs: &'a [Reference],
    normalize: &'a (dyn Fn(&RefKey) -> RefKey + Sync),
}

#[derive(Debug)]
struct Series {
    sampling: Sampling,
    grid: Grid,
    /// The reference each column stands for (meaningful unless aggregated).
    cols: Vec<usize>,
    /// The series were combined: the output is one `aggregated` series.
    aggregated: bool,
}

#[derive(Debug)]
enum Val {
    Const(f64),
    Series(Series),
}

fn needs_series(what: &str, refs: &[Reference]) -> ProcError {
    ProcError::Unaggregable {
        reason: format!("'{what}' needs a timeseries, not a number"),
        detail: lookup_detail(refs),
    }
}

fn eval(node: &Node, ctx: &EvalCtx) -> Result<Val, ProcError> {
    Ok(match node {
        Node::Const(f) => Val::Const(*f),
        Node::Metric { refs, .. } => {
            let wanted: HashSet<RefKey> = refs.iter().map(|r| (ctx.normalize)(r)).collect();
            let cols: Vec<usize> = ctx
                .refs
                .iter()
                .enumerate()
                .filter(|(_, r)| wanted.contains(&r.lookup))
                .map(|(i, _)| i)
                .collect();
            Val::Series(Series {
                sampling: ctx.sampling,
                grid: ctx.grid.select_columns(&cols),
                cols,
                aggregated: false,
            })
        }
        Node::Unary { op, arg, .. } => match eval(arg, ctx)? {
            Val::Const(f) => Val::Const(op.apply(f)),
            Val::Series(mut s) => {
                for v in &mut s.grid.values {
                    *v = op.apply(*v);
                }
                Val::Series(s)
            }
        },
        Node::RateOfChange(arg) | Node::RateOfChangeSec(arg) => match eval(arg, ctx)? {
            Val::Const(_) => return Err(needs_series("rateofchange", ctx.refs)),
            Val::Series(mut s) => {
                s.grid = if matches!(node, Node::RateOfChange(_)) {
                    ops::diff(&s.grid)
                } else {
                    ops::diff_per_second(&s.grid)
                };
                Val::Series(s)
            }
        },
        Node::Aggregate { how, arg, .. } => match eval(arg, ctx)? {
            Val::Const(_) => return Err(needs_series("aggregate", ctx.refs)),
            Val::Series(s) => Val::Series(Series {
                sampling: s.sampling,
                grid: ops::reduce_across(&s.grid, *how),
                cols: s.cols.first().copied().into_iter().collect(),
                aggregated: true,
            }),
        },
        Node::Rolling {
            how, window, arg, ..
        } => match eval(arg, ctx)? {
            Val::Const(_) => return Err(needs_series("rolling", ctx.refs)),
            Val::Series(mut s) => {
                if *window > s.grid.rows() {
                    return Err(ProcError::Unaggregable {
                        reason: format!(
                            "Rolling window '{window}' is greater than serie length '{}'",
                            s.grid.rows()
                        ),
                        detail: lookup_detail(ctx.refs),
                    });
                }
                s.grid = ops::rolling(&s.grid, *how, *window).unwrap_or_default();
                Val::Series(s)
            }
        },
        Node::Resample {
            method,
            sampling,
            arg,
            ..
        } => match eval(arg, ctx)? {
            Val::Const(_) => return Err(needs_series("resample", ctx.refs)),
            Val::Series(mut s) => {
                s.grid = ops::resample(&s.grid, *sampling, *method);
                s.sampling = *sampling;
                Val::Series(s)
            }
        },
        Node::Binary {
            op, left, right, ..
        } => {
            let a = eval(left, ctx)?;
            let b = eval(right, ctx)?;
            combine(&[a, b], &[left.as_ref(), right.as_ref()], ctx, |x| {
                op.apply(x[0], x[1])
            })?
        }
        Node::Clip(v, lo, hi) => {
            let a = eval(v, ctx)?;
            let b = eval(lo, ctx)?;
            let c = eval(hi, ctx)?;
            combine(
                &[a, b, c],
                &[v.as_ref(), lo.as_ref(), hi.as_ref()],
                ctx,
                |x| ops::clip(x[0], x[1], x[2]),
            )?
        }
    })
}

/// Apply an element-wise function to operands, numbers broadcasting over
/// series. Several series must share timestamps and granularity; combining
/// them makes the result aggregated, as upstream.
fn combine<const N: usize>(
    vals: &[Val; N],
    nodes: &[&Node; N],
    ctx: &EvalCtx,
    f: impl Fn([f64; N]) -> f64,
) -> Result<Val, ProcError> {
    let series: Vec<(usize, &Series)> = vals
        .iter()
        .enumerate()
        .filter_map(|(i, v)| match v {
            Val::Series(s) => Some((i, s)),
            Val::Const(_) => None,
        })
        .collect();
    let Some(&(first_i, first)) = series.first() else {
        let mut x = [0.0; N];
        for (slot, v) in x.iter_mut().zip(vals) {
            if let Val::Const(c) = v {
                *slot = *c;
            }
        }
        return Ok(Val::Const(f(x)));
    };
    let mut columns = first.grid.columns;
    let mut cols = first.cols.clone();
    let mut aggregated = first.aggregated;
    for &(i, s) in &series[1..] {
        if s.grid.timestamps != first.grid.timestamps || s.sampling != first.sampling {
            return Err(ProcError::Unaggregable {
                reason: format!(
                    "Can't compute timeseries with different granularity {} <> {}",
                    py_repr(&nodes[first_i].to_json()),
                    py_repr(&nodes[i].to_json())
                ),
                detail: lookup_detail(ctx.refs),
            });
        }
        columns = match (columns, s.grid.columns) {
            (x, y) if x == y => x,
            (1, y) => {
                cols = s.cols.clone();
                y
            }
            (x, 1) => x,
            (x, y) => {
                return Err(ProcError::Unaggregable {
                    reason: format!(
                        "Can't compute timeseries with different number of series {x} <> {y}"
                    ),
                    detail: lookup_detail(ctx.refs),
                });
            }
        };
        aggregated = true;
    }
    let rows = first.grid.rows();
    let mut values = Vec::with_capacity(rows * columns);
    let mut x = [0.0; N];
    for j in 0..columns {
        for r in 0..rows {
            for (slot, v) in x.iter_mut().zip(vals) {
                *slot = match v {
                    Val::Const(c) => *c,
                    Val::Series(s) => {
                        let col = if s.grid.columns == 1 { 0 } else { j };
                        s.grid.values[col * rows + r]
                    }
                };
            }
            values.push(f(x));
        }
    }
    Ok(Val::Series(Series {
        sampling: first.sampling,
        grid: Grid {
            timestamps: first.grid.timestamps.clone(),
            values,
            columns,
        },
        cols,
        aggregated,
    }))
}

/// Append `[[ts, granularity, value], ...]` of `parts` (coarsest first).
pub(crate) fn write_parts(out: &mut String, parts: &[Part]) {
    out.push('[');
    let mut first = true;
    for p in parts {
        let token = granularity_token(p.sampling);
        write_points(out, &mut first, &token, &p.timestamps, &p.values);
    }
    out.push(']');
}

fn push_key(out: &mut String, key: &str) {
    out.push_str(&serde_json::to_string(key).unwrap_or_else(|_| "\"\"".to_string()));
    out.push_str(": ");
}

/// `{"aggregated": [...]}` or `{"<id>": {"<agg>": [...]}}` for metric-id references.
fn write_measures_by_id(out: &mut String, refs: &[Reference], output: &Output) {
    match output {
        Output::Aggregated(parts) => {
            out.push_str("{\"aggregated\": ");
            write_parts(out, parts);
            out.push('}');
        }
        Output::PerReference(per_ref) => {
            // Group by metric, in order of first appearance.
            let mut order: Vec<Uuid> = Vec::new();
            let mut by_metric: HashMap<Uuid, Vec<usize>> = HashMap::new();
            for (i, r) in refs.iter().enumerate() {
                by_metric
                    .entry(r.metric.id)
                    .or_insert_with(|| {
                        order.push(r.metric.id);
                        Vec::new()
                    })
                    .push(i);
            }
            out.push('{');
            for (k, id) in order.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                push_key(out, &id.to_string());
                out.push('{');
                for (n, &i) in by_metric.get(id).into_iter().flatten().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    push_key(out, &refs[i].aggregation);
                    write_parts(out, per_ref.get(i).map_or(&[][..], |p| &p[..]));
                }
                out.push('}');
            }
            out.push('}');
        }
    }
}

fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn post_aggregates(
    State(state): State<Arc<AppState>>,
    creds: Creds,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let details = ctx.bool_param("details")?.unwrap_or(false);
    let q = parse_query(&ctx)?;
    let body = json_body(&headers, &body)?;
    let root = Path::root();
    let with_resources = body
        .as_object()
        .is_some_and(|m| m.contains_key("resource_type") || m.contains_key("search"));
    let map = if with_resources {
        validate::object(
            &body,
            &root,
            &["operations", "resource_type", "search"],
            &["operations", "resource_type", "search"],
        )?
    } else {
        validate::object(&body, &root, &["operations"], &["operations"])?
    };
    let operations = parse_operations(map.get("operations").unwrap_or(&Value::Null))?;
    let references = operations.references();
    if references.is_empty() {
        return Err(ApiError::bad_request(json!({
            "cause": "Operations is invalid",
            "reason": "At least one 'metric' is required",
            "detail": operations.to_json(),
        })));
    }
    if with_resources {
        let use_history = ctx.bool_param("use_history")?.unwrap_or(false);
        let search = Search {
            resource_type: map.get("resource_type").unwrap_or(&Value::Null),
            query: map.get("search").unwrap_or(&Value::Null),
            groupby: groupby_param(&ctx),
            use_history,
        };
        return by_resources(
            &state,
            &creds,
            &operations,
            &references,
            &q,
            details,
            &search,
        )
        .await;
    }
    by_metric_ids(&state, &creds, &operations, &references, &q, details).await
}

/// `groupby` values, sorted and each once (as upstream).
pub(crate) fn groupby_param(ctx: &Ctx) -> Vec<String> {
    let mut g: Vec<String> = ctx
        .param_list("groupby")
        .into_iter()
        .map(str::to_string)
        .collect();
    g.sort_unstable();
    g.dedup();
    g
}

/// Sort keys for a resource search: the groupby attributes, else upstream's
/// default resource order.
pub(crate) fn resource_sort(groupby: &[String]) -> Vec<SortKey> {
    let keys: Vec<&str> = if groupby.is_empty() {
        vec!["revision_start", "started_at"]
    } else {
        groupby.iter().map(String::as_str).collect()
    };
    keys.into_iter()
        .map(|k| SortKey {
            key: k.to_string(),
            dir: SortDir::Asc,
            nulls: Nulls::Default,
        })
        .collect()
}

/// A group of resources: each groupby attribute with its value.
pub(crate) type GroupKey = Vec<(String, Value)>;

/// The value of each groupby attribute of a resource, as rendered.
pub(crate) fn group_of(resource: &Value, groupby: &[String]) -> GroupKey {
    groupby
        .iter()
        .map(|k| (k.clone(), resource.get(k).cloned().unwrap_or(Value::Null)))
        .collect()
}

pub(crate) fn group_json(group: &[(String, Value)]) -> Value {
    Value::Object(group.iter().cloned().collect())
}

/// The resource part of an aggregates request.
struct Search<'a> {
    resource_type: &'a Value,
    query: &'a Value,
    groupby: Vec<String>,
    use_history: bool,
}

/// `Metric ['a', 'b'] does not exist`: upstream's message, with the globs
/// sorted as a Python list.
fn no_such_metric(references: &[RefKey]) -> ApiError {
    let mut names: Vec<&str> = references.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let list: Vec<String> = names.iter().map(|n| py_repr(&json!(n))).collect();
    ApiError::not_found(format!("Metric [{}] does not exist", list.join(", ")))
}

/// Index errors of a resource search are the client's fault (400), but for
/// the backend's own.
fn search_error(e: IndexError) -> ApiError {
    match e {
        IndexError::Backend(_) => e.into(),
        other => {
            let api: ApiError = other.into();
            match api.description {
                Value::String(s) => ApiError::bad_request(s),
                d => ApiError::bad_request(d),
            }
        }
    }
}

async fn by_resources(
    state: &AppState,
    creds: &Creds,
    operations: &Node,
    references: &[RefKey],
    q: &AggQuery,
    details: bool,
    search: &Search<'_>,
) -> ApiResult<Response> {
    let rtype = search
        .resource_type
        .as_str()
        .ok_or_else(|| Path::root().key("resource_type").invalid("expected str"))?;
    if state.indexer.get_resource_type(rtype).await?.is_none() {
        return Err(ApiError::bad_request(format!(
            "Resource type {rtype} does not exist"
        )));
    }
    let filter = match search.query {
        Value::String(s) => parse_filter_string(s, &creds.creator())?,
        Value::Object(_) => parse_json_query(search.query, &creds.creator())?,
        _ => {
            return Err(Path::root()
                .key("search")
                .invalid("expected a dictionary or a filter string"));
        }
    };
    // Keystone callers aggregate only over what their project may see.
    let restriction =
        crate::access::visibility::resource_filter(&state.policy, "search resource", creds, rtype)?;
    let filter = crate::access::visibility::restrict(filter, restriction);
    let history = search.use_history && !search.groupby.is_empty();
    let query = ResourceQuery {
        resource_type: rtype.to_string(),
        filter,
        details: false,
        history,
        sort: resource_sort(&search.groupby),
        limit: None,
        marker: None,
    };
    let mut resources = state
        .indexer
        .list_resources(&query)
        .await
        .map_err(search_error)?;
    if history {
        // Only the revisions alive at some point of [start, stop).
        resources.retain(|r| {
            q.start.is_none_or(|s| r.revision_end.is_none_or(|e| e > s))
                && q.stop.is_none_or(|e| r.revision_start < e)
        });
    }
    let mut metric_ids: Vec<Uuid> = resources
        .iter()
        .flat_map(|r| r.metrics.iter().map(|(_, id)| *id))
        .collect();
    metric_ids.sort_unstable();
    metric_ids.dedup();
    let metrics: HashMap<Uuid, Metric> = state
        .indexer
        .get_metrics(&metric_ids)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let rendered: Vec<Value> = resources
        .iter()
        .map(crate::routes::resource::to_json)
        .collect();
    // The first revision of each resource counts from `start`: data usually
    // predates the resource's creation in the index.
    let mut first_revision: HashMap<Uuid, i64> = HashMap::new();
    for r in &resources {
        let e = first_revision.entry(r.id).or_insert(r.revision_start);
        *e = (*e).min(r.revision_start);
    }

    // Resources are sorted by the groupby attributes: groups are runs.
    let mut groups: Vec<(GroupKey, Vec<usize>)> = Vec::new();
    for (i, r) in rendered.iter().enumerate() {
        let key = group_of(r, &search.groupby);
        match groups.last_mut() {
            Some((k, members)) if *k == key => members.push(i),
            _ => groups.push((key, vec![i])),
        }
    }
    if groups.is_empty() {
        groups.push((Vec::new(), Vec::new()));
    }

    let mut bodies: Vec<(GroupKey, String)> = Vec::new();
    for (key, members) in &groups {
        let mut refs: Vec<Reference> = Vec::new();
        let mut shown: Vec<usize> = Vec::new();
        for &i in members {
            let r = &resources[i];
            let window = if history {
                let from = if first_revision.get(&r.id) == Some(&r.revision_start) {
                    q.start
                } else {
                    Some(
                        q.start
                            .map_or(r.revision_start, |s| s.max(r.revision_start)),
                    )
                };
                let to = match (r.revision_end, q.stop) {
                    (Some(e), Some(s)) => Some(e.min(s)),
                    (e, s) => e.or(s),
                };
                vec![(from, to)]
            } else {
                Vec::new()
            };
            let mut used = false;
            for wanted in references {
                for (name, id) in &r.metrics {
                    if !crate::language::fnmatch::fnmatch(name, &wanted.name) {
                        continue;
                    }
                    let Some(m) = metrics.get(id) else { continue };
                    used = true;
                    // Another revision of the same resource in this group:
                    // one series over both windows.
                    if let Some(existing) = refs.iter_mut().find(|x| {
                        x.metric.id == *id && x.lookup == *wanted && x.resource_id == Some(r.id)
                    }) {
                        existing.windows.extend(window.iter().copied());
                        continue;
                    }
                    refs.push(Reference {
                        metric: m.clone(),
                        aggregation: wanted.aggregation.clone(),
                        lookup: wanted.clone(),
                        resource_id: Some(r.id),
                        windows: window.clone(),
                    });
                }
            }
            if used {
                shown.push(i);
            }
        }
        if refs.is_empty() {
            // A group without any matching metric is left out.
            continue;
        }
        let identity = |r: &RefKey| r.clone();
        let output = get_measures(state, &refs, operations, q, &identity)
            .await
            .map_err(ProcError::into_api)?;
        let mut out = String::with_capacity(256);
        out.push_str("{\"measures\": ");
        write_measures_by_resource(&mut out, &refs, &output);
        if details {
            let mut seen = HashSet::new();
            let docs: Vec<Value> = shown
                .iter()
                .filter(|&&i| seen.insert(resources[i].id))
                .map(|&i| rendered[i].clone())
                .collect();
            out.push_str(", \"references\": ");
            out.push_str(&String::from_utf8_lossy(&crate::wire::json::to_vec(
                &Value::Array(docs),
            )));
        }
        out.push('}');
        bodies.push((key.clone(), out));
    }
    if bodies.is_empty() {
        return Err(no_such_metric(references));
    }
    if search.groupby.is_empty() {
        let body = bodies.pop().map(|(_, b)| b).unwrap_or_default();
        return Ok(json_response(body));
    }
    let mut out = String::from("[");
    for (n, (key, body)) in bodies.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"group\": ");
        out.push_str(&String::from_utf8_lossy(&crate::wire::json::to_vec(
            &group_json(key),
        )));
        out.push_str(", \"measures\": ");
        out.push_str(body);
        out.push('}');
    }
    out.push(']');
    Ok(json_response(out))
}

/// `{"aggregated": [...]}` or `{"<resource id>": {"<metric name>": {"<agg>": [...]}}}`.
fn write_measures_by_resource(out: &mut String, refs: &[Reference], output: &Output) {
    let per_ref = match output {
        Output::Aggregated(parts) => {
            out.push_str("{\"aggregated\": ");
            write_parts(out, parts);
            out.push('}');
            return;
        }
        Output::PerReference(p) => p,
    };
    // resource → metric name → aggregation, each in order of first appearance.
    type ByName<'a> = Vec<(&'a str, Vec<usize>)>;
    let mut tree: Vec<(Uuid, ByName)> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let rid = r.resource_id.unwrap_or_default();
        let name = r.metric.name.as_deref().unwrap_or_default();
        let pos = match tree.iter().position(|(id, _)| *id == rid) {
            Some(p) => p,
            None => {
                tree.push((rid, Vec::new()));
                tree.len() - 1
            }
        };
        let metrics = &mut tree[pos].1;
        match metrics.iter_mut().find(|(n, _)| *n == name) {
            Some((_, aggs)) => aggs.push(i),
            None => metrics.push((name, vec![i])),
        }
    }
    out.push('{');
    for (k, (rid, metrics)) in tree.iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        push_key(out, &rid.to_string());
        out.push('{');
        for (n, (name, aggs)) in metrics.iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            push_key(out, name);
            out.push('{');
            let mut written: Vec<&str> = Vec::new();
            for &i in aggs {
                let agg = refs[i].aggregation.as_str();
                if written.contains(&agg) {
                    continue;
                }
                if !written.is_empty() {
                    out.push_str(", ");
                }
                written.push(agg);
                push_key(out, agg);
                write_parts(out, per_ref.get(i).map_or(&[][..], |p| &p[..]));
            }
            out.push('}');
        }
        out.push('}');
    }
    out.push('}');
}

/// A metric reference's id as upstream prints it (lowercase, hyphenated).
fn normalize_id(r: &RefKey) -> RefKey {
    RefKey {
        name: Uuid::parse_str(&r.name).map_or_else(|_| r.name.clone(), |u| u.to_string()),
        aggregation: r.aggregation.clone(),
    }
}

async fn by_metric_ids(
    state: &AppState,
    creds: &Creds,
    operations: &Node,
    references: &[RefKey],
    q: &AggQuery,
    details: bool,
) -> ApiResult<Response> {
    let mut ids = Vec::with_capacity(references.len());
    for r in references {
        match Uuid::parse_str(&r.name) {
            Ok(u) => ids.push(u),
            Err(_) => {
                return Err(ApiError::bad_request(json!({
                    "cause": "Invalid metric references",
                    "reason": "badly formed hexadecimal UUID string",
                    "detail": references.iter().map(|r| json!([r.name, r.aggregation])).collect::<Vec<_>>(),
                })));
            }
        }
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    let metrics = state.indexer.get_metrics(&unique).await?;
    let by_id: HashMap<Uuid, &Metric> = metrics.iter().map(|m| (m.id, m)).collect();
    let mut missing: Vec<String> = Vec::new();
    for id in &ids {
        let s = id.to_string();
        if !by_id.contains_key(id) && !missing.contains(&s) {
            missing.push(s);
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::not_found(json!({
            "cause": "Unknown metrics",
            "reason": "Provided metrics don't exists",
            "detail": missing,
        })));
    }
    for m in &metrics {
        state
            .policy
            .enforce("get metric", creds, &policy_target(m))?;
    }
    let mut refs: Vec<Reference> = Vec::with_capacity(references.len());
    let mut seen = HashSet::new();
    for (r, id) in references.iter().zip(&ids) {
        let lookup = normalize_id(r);
        if !seen.insert(lookup.clone()) {
            continue;
        }
        if let Some(m) = by_id.get(id) {
            refs.push(Reference {
                metric: (*m).clone(),
                aggregation: r.aggregation.clone(),
                lookup,
                resource_id: None,
                windows: Vec::new(),
            });
        }
    }
    let output = get_measures(state, &refs, operations, q, &normalize_id)
        .await
        .map_err(ProcError::into_api)?;
    let mut out = String::with_capacity(256);
    out.push_str("{\"measures\": ");
    write_measures_by_id(&mut out, &refs, &output);
    if details {
        // Each metric once, in UUID order, with its resource (as upstream's
        // indexer lists them with `details=True`).
        let mut shown: Vec<&Metric> = refs.iter().map(|r| &r.metric).collect();
        shown.sort_unstable_by_key(|m| m.id);
        shown.dedup_by_key(|m| m.id);
        let mut docs = Vec::with_capacity(shown.len());
        for m in shown {
            let resource = loaded_resource(state, m).await?;
            docs.push(to_json_with_resource(m, resource));
        }
        let doc = Value::Array(docs);
        out.push_str(", \"references\": ");
        out.push_str(&String::from_utf8_lossy(&crate::wire::json::to_vec(&doc)));
    }
    out.push('}');
    Ok(json_response(out))
}

#[cfg(test)]
mod tests {
    use crate::test_support::TestApi;
    use axum::http::StatusCode;
    use serde_json::json;

    #[tokio::test]
    async fn details_show_each_metric_with_its_resource_as_upstream_loads_it() {
        let api = TestApi::start().await;
        api.policy_60s("p", &["mean"]).await;
        let alone = api.metric_with("p", &[("2024-01-01T00:00:00", 1.0)]).await;
        let rid = "aaaaaaaa-0000-4000-8000-000000000001";
        api.expect(
            StatusCode::CREATED,
            "POST",
            "/v1/resource/generic",
            Some(json!({"id": rid, "project_id": "p1", "metrics": {"cpu": {"archive_policy_name": "p"}}})),
        )
        .await;
        let r = api
            .expect(
                StatusCode::OK,
                "GET",
                &format!("/v1/resource/generic/{rid}"),
                None,
            )
            .await;
        let cpu = r["metrics"]["cpu"].as_str().expect("cpu").to_string();
        let got = api
            .expect(
                StatusCode::OK,
                "POST",
                "/v1/aggregates?details=true",
                Some(json!({"operations": ["metric", [cpu, "mean"], [alone, "mean"]]})),
            )
            .await;
        let refs = got["references"].as_array().expect("references");
        // Each metric once, in UUID order.
        let ids: Vec<&str> = refs.iter().map(|m| m["id"].as_str().expect("id")).collect();
        let mut sorted = vec![alone.as_str(), cpu.as_str()];
        sorted.sort_unstable();
        assert_eq!(ids, sorted);
        for m in refs {
            assert!(m.get("resource_id").is_none(), "{m}");
            assert_eq!(m["archive_policy"]["name"], "p");
            if m["id"] == alone.as_str() {
                assert_eq!(m["resource"], json!(null));
            } else {
                // The resource's own attributes, not its metrics.
                assert_eq!(m["resource"]["id"], rid);
                assert_eq!(m["resource"]["project_id"], "p1");
                assert_eq!(m["resource"]["type"], "generic");
                assert!(m["resource"].get("metrics").is_none(), "{m}");
            }
        }
    }
}
