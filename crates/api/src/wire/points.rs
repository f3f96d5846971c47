//! Points as upstream renders them: `[timestamp, granularity, value]`.

use carbonara::Timestamp;
use carbonara::calendar::Sampling;
use carbonara::time;

/// How a granularity is rendered in measures: seconds as a float (`60.0`), or
/// the letter of a calendar grouping (`"W"`, a JSON string).
pub(crate) fn granularity_token(sampling: Sampling) -> String {
    match sampling {
        Sampling::Fixed(g) => {
            let mut s = String::new();
            crate::wire::json::py_float(crate::wire::json::seconds(g), &mut s);
            s
        }
        Sampling::Calendar(c) => format!("\"{}\"", c.letter()),
    }
}

/// Append `[timestamp, granularity, value]` triples to a JSON array being
/// written (`first`: nothing written in it yet). `granularity` is already
/// rendered (see [`granularity_token`]).
pub(crate) fn write_points(
    out: &mut String,
    first: &mut bool,
    granularity: &str,
    timestamps: &[Timestamp],
    values: &[f64],
) {
    for (ts, v) in timestamps.iter().zip(values) {
        if !*first {
            out.push_str(", ");
        }
        *first = false;
        out.push_str("[\"");
        time::format_measure_timestamp(*ts, out);
        out.push_str("\", ");
        out.push_str(granularity);
        out.push_str(", ");
        crate::wire::json::py_float(*v, out);
        out.push(']');
    }
}
