//! statsd messages: `name:value|type[|@rate]`, several per datagram separated
//! by newlines.
//!
//! Upstream's reading, with its crashes turned into errors: a name may hold
//! `:` (the value is after the last one; upstream raises), the rate must be
//! written `@rate` and be positive (upstream drops the first character
//! whatever it is, and divides by zero), the value is a float as Python
//! reads it (`+5` on a gauge is 5, not "add 5": relative gauges are not
//! supported, as upstream).

/// The metric types upstream supports (sets, histograms and the rest are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `c`: summed over the flush interval, each value divided by its sampling rate.
    Counter,
    /// `g`: the last value of the interval.
    Gauge,
    /// `ms`: the last value of the interval (upstream keeps no percentiles).
    Timer,
}

impl Kind {
    /// The suffix of the metric name: `<name>|<suffix>`.
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Counter => "c",
            Kind::Gauge => "g",
            Kind::Timer => "ms",
        }
    }
}

/// One message of a datagram, borrowing its name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Message<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub value: f64,
    /// `Some` only for counters (gauges and timers refuse a rate, as upstream).
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("Invalid number of | in `{0}'")]
    Pipes(String),
    #[error("no `:' between name and value in `{0}'")]
    NoValue(String),
    #[error("empty metric name in `{0}'")]
    EmptyName(String),
    #[error("invalid value in `{0}'")]
    Value(String),
    #[error("Unknown metric type `{0}'")]
    Type(String),
    #[error("invalid sampling `{0}', expected @rate with 0 < rate")]
    Rate(String),
    #[error("Invalid sampling for {0}: should be none")]
    RateNotAllowed(&'static str),
}

/// Parse one message (a line of a datagram, not empty).
pub fn parse_message(line: &str) -> Result<Message<'_>, MessageError> {
    let mut parts = line.split('|');
    let name_value = parts.next().unwrap_or("");
    let Some(kind) = parts.next() else {
        return Err(MessageError::Pipes(line.to_string()));
    };
    let sampling = parts.next();
    if parts.next().is_some() {
        return Err(MessageError::Pipes(line.to_string()));
    }
    let (name, value) = name_value
        .rsplit_once(':')
        .ok_or_else(|| MessageError::NoValue(line.to_string()))?;
    if name.is_empty() {
        return Err(MessageError::EmptyName(line.to_string()));
    }
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|_| MessageError::Value(line.to_string()))?;
    let kind = match kind {
        "c" => Kind::Counter,
        "g" => Kind::Gauge,
        "ms" => Kind::Timer,
        other => return Err(MessageError::Type(other.to_string())),
    };
    let rate = match sampling {
        None => None,
        Some(s) => {
            let rate = s
                .strip_prefix('@')
                .and_then(|r| r.trim().parse::<f64>().ok())
                .filter(|r| r.is_finite() && *r > 0.0)
                .ok_or_else(|| MessageError::Rate(s.to_string()))?;
            if kind != Kind::Counter {
                return Err(MessageError::RateNotAllowed(kind.suffix()));
            }
            Some(rate)
        }
    };
    Ok(Message {
        name,
        kind,
        value,
        rate,
    })
}

/// The messages of a datagram: `Err` for the whole datagram when it is not
/// UTF-8, else one result per non-empty line.
pub fn messages(
    datagram: &[u8],
) -> Result<impl Iterator<Item = Result<Message<'_>, MessageError>>, std::str::Utf8Error> {
    let text = std::str::from_utf8(datagram)?;
    Ok(text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(parse_message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn upstream_types() {
        assert_eq!(
            parse_message("foo:1|c").unwrap(),
            Message {
                name: "foo",
                kind: Kind::Counter,
                value: 1.0,
                rate: None
            }
        );
        assert_eq!(parse_message("foo:2|c|@0.5").unwrap().rate, Some(0.5));
        assert_eq!(parse_message("a.b:-3.5|g").unwrap().value, -3.5);
        assert_eq!(parse_message("t:320|ms").unwrap().kind, Kind::Timer);
        assert_eq!(parse_message("with:colon:4|g").unwrap().name, "with:colon");
    }

    #[test]
    fn refusals() {
        for bad in [
            "foo",
            "foo:1",
            "foo:1|s",
            "foo:1|h",
            "foo:x|c",
            ":1|c",
            "foo|c",
            "foo:1|c|0.5",
            "foo:1|c|@0",
            "foo:1|c|@-1",
            "foo:1|ms|@0.5",
            "foo:1|g|@0.5",
            "a:1|c|@1|x",
        ] {
            assert!(parse_message(bad).is_err(), "{bad} accepted");
        }
        assert!(messages(b"\xff\xfe").is_err());
        let all: Vec<_> = messages(b"a:1|c\n\nb:2|g\r\n").unwrap().collect();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(Result::is_ok));
    }

    proptest! {
        #[test]
        fn random_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(it) = messages(&bytes) {
                for m in it {
                    let _ = m;
                }
            }
        }

        #[test]
        fn printed_messages_parse_back(
            name in "[a-zA-Z0-9._:-]{1,20}",
            value in -1e9f64..1e9,
            kind in prop_oneof![Just(Kind::Counter), Just(Kind::Gauge), Just(Kind::Timer)],
            rate in proptest::option::of(0.001f64..=1.0),
        ) {
            let rate = if kind == Kind::Counter { rate } else { None };
            let mut line = format!("{name}:{value}|{}", kind.suffix());
            if let Some(r) = rate {
                line.push_str(&format!("|@{r}"));
            }
            let m = parse_message(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(m, Message { name: &name, kind, value, rate });
        }
    }
}
