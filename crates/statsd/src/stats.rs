//! What one flush interval accumulates: per (name, kind), one value and the
//! time of its last update. A known name costs a hash lookup and no allocation.

use crate::parse::{Kind, Message};
use carbonara::Timestamp;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Stats {
    counters: HashMap<String, (Timestamp, f64)>,
    gauges: HashMap<String, (Timestamp, f64)>,
    timers: HashMap<String, (Timestamp, f64)>,
}

impl Stats {
    /// Account one message received at `now`.
    pub fn add(&mut self, m: &Message<'_>, now: Timestamp) {
        let (map, value) = match m.kind {
            Kind::Counter => (&mut self.counters, m.value / m.rate.unwrap_or(1.0)),
            Kind::Gauge => (&mut self.gauges, m.value),
            Kind::Timer => (&mut self.timers, m.value),
        };
        match map.get_mut(m.name) {
            Some(slot) => {
                slot.0 = now;
                slot.1 = if m.kind == Kind::Counter {
                    slot.1 + value
                } else {
                    value
                };
            }
            None => {
                map.insert(m.name.to_string(), (now, value));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty() && self.gauges.is_empty() && self.timers.is_empty()
    }

    /// Take everything accumulated: `(metric name, timestamp, value)` with the
    /// metric named `<name>|<type>`, and start a new interval.
    pub fn drain(&mut self) -> Vec<(String, Timestamp, f64)> {
        let mut out =
            Vec::with_capacity(self.counters.len() + self.gauges.len() + self.timers.len());
        for (kind, map) in [
            (Kind::Gauge, &mut self.gauges),
            (Kind::Counter, &mut self.counters),
            (Kind::Timer, &mut self.timers),
        ] {
            for (name, (ts, v)) in map.drain() {
                out.push((metric_name(&name, kind), ts, v));
            }
        }
        out
    }
}

/// `<name>|<type>`; `/` (refused in metric names) becomes `_`.
pub fn metric_name(name: &str, kind: Kind) -> String {
    let mut s = String::with_capacity(name.len() + 3);
    s.extend(name.chars().map(|c| if c == '/' { '_' } else { c }));
    s.push('|');
    s.push_str(kind.suffix());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_message;

    #[test]
    fn counters_sum_with_rate_gauges_and_timers_keep_the_last() {
        let mut s = Stats::default();
        for (line, t) in [
            ("hits:1|c", 1),
            ("hits:2|c|@0.5", 2),
            ("temp:10|g", 3),
            ("temp:12|g", 4),
            ("rt:100|ms", 5),
            ("rt:50|ms", 6),
            ("a/b:1|g", 7),
        ] {
            s.add(&parse_message(line).unwrap(), t);
        }
        let mut out = s.drain();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            out,
            vec![
                ("a_b|g".to_string(), 7, 1.0),
                ("hits|c".to_string(), 2, 5.0),
                ("rt|ms".to_string(), 6, 50.0),
                ("temp|g".to_string(), 4, 12.0),
            ]
        );
        assert!(s.is_empty());
    }
}
