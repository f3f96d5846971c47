//! Query parameters shared by the read endpoints: timestamps (`start`,
//! `stop`), timespans (`granularity`), `resample`, and the clock they are
//! read against.

use crate::wire::error::{ApiError, ApiResult};
use crate::wire::http::Ctx;
use carbonara::Timestamp;
use carbonara::calendar::Sampling;
use carbonara::time;

/// The wall clock, in nanoseconds since the Epoch (0 before it).
pub(crate) fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// `start`/`stop`: any timestamp format; 400 naming the parameter otherwise.
pub(crate) fn time_param(ctx: &Ctx, name: &str) -> ApiResult<Option<Timestamp>> {
    let Some(v) = ctx.param(name) else {
        return Ok(None);
    };
    time::parse_timestamp(v, now())
        .map(Some)
        .map_err(|_| ApiError::argument(name, "Must be a datetime or a timestamp"))
}

/// `resample` of `GET .../measures`, checked first as upstream does: a
/// timespan or a calendar grouping `Y|H|Q|M|W`; ignored when empty; 400 with
/// a plain-string description when there is no granularity or it does not
/// parse.
pub(crate) fn resample_param(ctx: &Ctx) -> ApiResult<Option<Sampling>> {
    let Some(resample) = ctx.param("resample").filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if ctx.param("granularity").is_none_or(str::is_empty) {
        return Err(ApiError::resample_without_granularity());
    }
    parse_resample(resample).map(Some)
}

/// A `resample` value: a calendar grouping, or a positive timespan; 400 with
/// upstream's plain-string description otherwise.
pub(crate) fn parse_resample(resample: &str) -> ApiResult<Sampling> {
    if let Some(cal) = Sampling::calendar(resample) {
        return Ok(cal);
    }
    match time::parse_timespan(resample) {
        Ok(ns) if ns > 0 => Ok(Sampling::Fixed(ns)),
        Ok(_) => Err(ApiError::bad_request("Timespan must be positive")),
        Err(_) => Err(ApiError::bad_request(unparsable_timespan(resample))),
    }
}

/// Why upstream's `utils.to_timespan` refuses a timespan that does not parse:
/// a NaN is a float to Python, and fails only at `int(nan * 10e8)`, with
/// Python's own message; anything else is `Unable to parse timespan`.
/// (Python's `float()` also takes `_` between digits, which no NaN spelling has.)
fn unparsable_timespan(v: &str) -> &'static str {
    if v.trim().parse::<f64>().is_ok_and(f64::is_nan) {
        "cannot convert float NaN to integer"
    } else {
        "Unable to parse timespan"
    }
}

/// A granularity-like parameter (`granularity`, `resample`).
pub(crate) fn timespan_param(ctx: &Ctx, name: &str) -> ApiResult<Option<i64>> {
    let Some(v) = ctx.param(name) else {
        return Ok(None);
    };
    match time::parse_timespan(v) {
        Ok(ns) if ns > 0 => Ok(Some(ns)),
        Ok(_) => Err(ApiError::argument(name, "Timespan must be positive")),
        Err(_) => Err(ApiError::argument(name, unparsable_timespan(v))),
    }
}
