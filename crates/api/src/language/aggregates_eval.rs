//! The aggregates processor, shared by `POST /v1/aggregates` and the
//! deprecated `/v1/aggregation` API.
//!
//! It reads every referenced series at every granularity they have in common
//! (one storage batch), aligns the series of each granularity on the union of
//! their timestamps (holes are NaN, or the numeric `fill`), fills or checks
//! the overlap, and evaluates the operations of
//! [`crate::language::aggregates_parse`] on that grid with `carbonara::ops`.
//! The evaluation is CPU work: [`get_measures`] runs it on the blocking pool.

use crate::AppState;
use crate::language::aggregates_parse::{Node, RefKey};
use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::Ctx;
use crate::wire::params::{time_param, timespan_param};
use carbonara::calendar::Sampling;
use carbonara::ops::{self, Grid};
use carbonara::{Method, Timestamp};
use gnocchi_engine::SeriesRef;
use gnocchi_index::Metric;
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

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
pub(crate) fn parse_query(ctx: &Ctx) -> ApiResult<AggQuery> {
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
            } => ApiError::metrics_with_unknown_aggregation(metric, &aggregation),
            ProcError::Unaggregable { reason, detail } => ApiError::unaggregable(reason, detail),
            ProcError::Api(e) => e,
        }
    }
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
    normalize: fn(&RefKey) -> RefKey,
) -> Result<Output, ProcError> {
    if refs.is_empty() {
        return Ok(Output::PerReference(Vec::new()));
    }
    let methods = methods_of(refs)?;
    let granularities = granularities_of(refs, q)?;
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
    // Aligning and evaluating is CPU work proportional to the points read:
    // it runs on the blocking pool, never on the async executor.
    let (refs, operations, q) = (refs.to_vec(), operations.clone(), *q);
    tokio::task::spawn_blocking(move || {
        evaluate(series, &granularities, &refs, &operations, &q, normalize)
    })
    .await
    .map_err(|e| ProcError::Api(ApiError::internal(format!("aggregates evaluation: {e}"))))?
}

/// The method of each reference, or the error naming the first reference
/// whose archive policy does not have its aggregation.
fn methods_of(refs: &[Reference]) -> Result<Vec<Method>, ProcError> {
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
    Ok(methods)
}

/// The granularities to evaluate at, coarsest first: the one asked for, which
/// every reference must have, or those all references have in common.
fn granularities_of(refs: &[Reference], q: &AggQuery) -> Result<Vec<i64>, ProcError> {
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
    Ok(granularities)
}

/// Align the series read (`granularities` × `refs`, in that order) on one
/// grid per granularity, fill or check the overlap, evaluate `operations` on
/// each grid and keep what `q.fill` keeps.
fn evaluate(
    mut series: Vec<carbonara::AggregatedTimeSerie>,
    granularities: &[i64],
    refs: &[Reference],
    operations: &Node,
    q: &AggQuery,
    normalize: fn(&RefKey) -> RefKey,
) -> Result<Output, ProcError> {
    apply_windows(&mut series, refs);
    let mut results = Vec::with_capacity(granularities.len());
    for (gi, &g) in granularities.iter().enumerate() {
        let chunk = &series[gi * refs.len()..(gi + 1) * refs.len()];
        let grid = aligned_grid(chunk, refs, q)?;
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
        results.push(result);
    }
    Ok(output_of(&results, refs.len(), q.fill))
}

/// With history, only the points inside each reference's windows count.
fn apply_windows(series: &mut [carbonara::AggregatedTimeSerie], refs: &[Reference]) {
    for (k, s) in series.iter_mut().enumerate() {
        let r = &refs[k % refs.len()];
        if !r.windows.is_empty() {
            let (ts, vals) =
                ops::window_weighted(&s.timestamps, &s.values, s.granularity, &r.windows);
            s.timestamps = ts;
            s.values = vals;
        }
    }
}

/// One granularity's series on the union of their timestamps, holes filled
/// as `q.fill` says (or the overlap checked, without `fill`).
fn aligned_grid(
    chunk: &[carbonara::AggregatedTimeSerie],
    refs: &[Reference],
    q: &AggQuery,
) -> Result<Grid, ProcError> {
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
        return Err(ProcError::Api(ApiError::too_many_points_to_aggregate(
            inputs.len(),
            union.len(),
            MAX_GRID_CELLS,
        )));
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
    Ok(grid)
}

/// One column of a result as a part, without its non-finite values when
/// `fill` drops them.
fn keep_part(ts: &[Timestamp], vals: &[f64], sampling: Sampling, fill: Fill) -> Part {
    if fill.drops_non_finite() {
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
}

/// The results of every granularity: one aggregated series when any of
/// them was aggregated, else one series per reference.
fn output_of(results: &[Series], ref_count: usize, fill: Fill) -> Output {
    if results.iter().any(|s| s.aggregated) {
        return Output::Aggregated(
            results
                .iter()
                .map(|s| keep_part(&s.grid.timestamps, s.grid.column(0), s.sampling, fill))
                .collect(),
        );
    }
    let mut per_ref: Vec<Vec<Part>> = vec![Vec::new(); ref_count];
    for s in results {
        for (j, &r) in s.cols.iter().enumerate() {
            if let Some(parts) = per_ref.get_mut(r) {
                parts.push(keep_part(
                    &s.grid.timestamps,
                    s.grid.column(j),
                    s.sampling,
                    fill,
                ));
            }
        }
    }
    Output::PerReference(per_ref)
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
    normalize: fn(&RefKey) -> RefKey,
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
        Node::Metric { refs, .. } => Val::Series(select_metrics(refs, ctx)),
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
            Val::Series(s) => Val::Series(rolling(s, *how, *window, ctx)?),
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

/// A `metric` node: the columns of the references it names.
fn select_metrics(refs: &[RefKey], ctx: &EvalCtx) -> Series {
    let wanted: HashSet<RefKey> = refs.iter().map(|r| (ctx.normalize)(r)).collect();
    let cols: Vec<usize> = ctx
        .refs
        .iter()
        .enumerate()
        .filter(|(_, r)| wanted.contains(&r.lookup))
        .map(|(i, _)| i)
        .collect();
    Series {
        sampling: ctx.sampling,
        grid: ctx.grid.select_columns(&cols),
        cols,
        aggregated: false,
    }
}

/// A `rolling` node on its series; a window longer than the series is
/// upstream's unaggregable error.
fn rolling(
    mut s: Series,
    how: ops::Reduction,
    window: usize,
    ctx: &EvalCtx,
) -> Result<Series, ProcError> {
    if window > s.grid.rows() {
        return Err(ProcError::Unaggregable {
            reason: format!(
                "Rolling window '{window}' is greater than serie length '{}'",
                s.grid.rows()
            ),
            detail: lookup_detail(ctx.refs),
        });
    }
    s.grid = ops::rolling(&s.grid, how, window).unwrap_or_default();
    Ok(s)
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
                    nodes[first_i].py_repr(),
                    nodes[i].py_repr()
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
