//! `[amqp1d] url`, read as upstream's proton reads it:
//! `[amqp://][user:password@]host[:port]/address`. The address is the
//! path after the one slash that ends the host, so upstream's default
//! `localhost:5672/u/collectd/telemetry` listens to `u/collectd/telemetry`
//! and `host:5672//collectd/telemetry` to `/collectd/telemetry` (the address
//! collectd's amqp1 plugin sends to: `/<Address>/<Instance>`).

/// Where to connect and what to listen to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `amqp://[user:password@]host:port`, what the AMQP client opens.
    pub connect: String,
    /// The source address of the receiving link.
    pub address: String,
    /// With user and password the client authenticates with SASL PLAIN,
    /// without them with SASL ANONYMOUS.
    pub has_credentials: bool,
}

impl BrokerUrl {
    /// `connect` without the password, for logs.
    pub fn connect_for_log(&self) -> String {
        let rest = self.connect.trim_start_matches("amqp://");
        match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                format!("amqp://{user}:***@{host}")
            }
            None => self.connect.clone(),
        }
    }
}

/// The port of AMQP without TLS.
pub const DEFAULT_PORT: u16 = 5672;

/// Parses `url`; the error says what is wrong with it.
pub fn parse(url: &str) -> Result<BrokerUrl, String> {
    let rest = match url.split_once("://") {
        None => url,
        Some(("amqp", rest)) => rest,
        Some(("amqps", _)) => {
            return Err("amqps (TLS) is not supported; use a TLS-terminating proxy".into());
        }
        Some((scheme, _)) => return Err(format!("unknown scheme `{scheme}'")),
    };
    let (authority, address) = rest.split_once('/').unwrap_or((rest, ""));
    if address.is_empty() {
        return Err("no address to listen to (the path after host:port)".into());
    }
    let (credentials, hostport) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, authority),
    };
    if credentials.is_some_and(|c| !c.contains(':')) {
        return Err("credentials must be user:password".into());
    }
    let (host, port) = match hostport.rsplit_once(':') {
        // An IPv6 literal without a port, `[::1]`, has colons but no port.
        Some((h, p)) if !p.contains(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("invalid port `{p}'"))?,
        ),
        _ => (hostport, DEFAULT_PORT),
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let userinfo = credentials.map(|c| format!("{c}@")).unwrap_or_default();
    Ok(BrokerUrl {
        connect: format!("amqp://{userinfo}{host}:{port}"),
        address: address.to_string(),
        has_credentials: credentials.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_default_listens_to_its_path() {
        let u = parse("localhost:5672/u/collectd/telemetry").unwrap();
        assert_eq!(u.connect, "amqp://localhost:5672");
        assert_eq!(u.address, "u/collectd/telemetry");
        assert!(!u.has_credentials);
    }

    #[test]
    fn a_second_slash_starts_the_address() {
        let u = parse("127.0.0.1:5674//collectd/telemetry").unwrap();
        assert_eq!(u.address, "/collectd/telemetry");
    }

    #[test]
    fn scheme_credentials_and_default_port() {
        let u = parse("amqp://guest:secret@broker/q").unwrap();
        assert_eq!(u.connect, "amqp://guest:secret@broker:5672");
        assert_eq!(u.address, "q");
        assert!(u.has_credentials);
        assert_eq!(u.connect_for_log(), "amqp://guest:***@broker:5672");
        assert_eq!(parse("[::1]:5673/q").unwrap().connect, "amqp://[::1]:5673");
        assert_eq!(parse("[::1]/q").unwrap().connect, "amqp://[::1]:5672");
    }

    #[test]
    fn what_cannot_be_listened_to_is_refused() {
        for bad in [
            "localhost:5672",
            "localhost:5672/",
            "amqps://h/q",
            "http://h/q",
            "h:notaport/q",
            ":5672/q",
            "user@h/q",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
