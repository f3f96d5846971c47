//! One measure: a value at a timestamp, as the write paths carry it from the
//! request to the incoming store and metricd hands it to [`crate::process`].
//!
//! A named struct rather than a `(Timestamp, f64)` pair so that a measure
//! reads the same everywhere (the write paths, the `Incoming` stores, the
//! engine). `#[repr(C)]` and `Copy`: the same 16 bytes as the pair, so
//! vectors of measures cost exactly what vectors of pairs cost. Stored series
//! stay columnar (timestamps and values in separate vectors); a `Measure` is
//! only the shape of incoming points.

use crate::time::Timestamp;

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    /// Nanoseconds since the epoch.
    pub timestamp: Timestamp,
    pub value: f64,
}

impl Measure {
    pub const fn new(timestamp: Timestamp, value: f64) -> Measure {
        Measure { timestamp, value }
    }
}

impl From<(Timestamp, f64)> for Measure {
    fn from((timestamp, value): (Timestamp, f64)) -> Measure {
        Measure { timestamp, value }
    }
}

/// Measures from `(timestamp, value)` pairs (tests and literals).
pub fn measures(points: &[(Timestamp, f64)]) -> Vec<Measure> {
    points.iter().map(|&p| p.into()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measure_is_as_small_as_a_pair() {
        assert_eq!(
            std::mem::size_of::<Measure>(),
            std::mem::size_of::<(Timestamp, f64)>()
        );
        assert_eq!(measures(&[(1, 2.0)]), vec![Measure::new(1, 2.0)]);
    }
}
