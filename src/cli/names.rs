//! The name-resolution options: `--resolver`, `-4`, `-6`, checked and turned into the
//! resolver's settings.
//!
//! Two environment variables, for tests only, point the resolver at other files than
//! `/etc/resolv.conf` and `/etc/hosts`: `HEADPROBE_RESOLV_CONF` and `HEADPROBE_HOSTS`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::net::resolve::{Family, Resolver, Settings, MAX_SERVERS};
use crate::run::UsageError;

/// The resolver for `--resolver` servers and the `-4`/`-6` switches; its queries go from
/// `source` (`--interface ADDR`) when given.
pub fn resolver(
    servers: &[String],
    ipv4: bool,
    ipv6: bool,
    source: Option<IpAddr>,
) -> Result<Resolver, UsageError> {
    let family = match (ipv4, ipv6) {
        (true, true) => {
            return Err(UsageError(
                "invalid -4 and -6: choose one (without either, both families are used)".into(),
            ))
        }
        (true, false) => Family::V4,
        (false, true) => Family::V6,
        (false, false) => Family::Any,
    };
    let servers = servers
        .iter()
        .map(|s| {
            parse_server(s).ok_or_else(|| {
                UsageError(format!(
                    "invalid --resolver: '{s}' is not ADDR or ADDR:PORT (an IP address, \
                     IPv6 in brackets as [::1]:53, port 1-65535)"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.len() > MAX_SERVERS {
        return Err(UsageError(format!(
            "invalid --resolver: given {} times, but a lookup rotates over at most {MAX_SERVERS} servers",
            servers.len()
        )));
    }
    let mut settings = Settings {
        servers,
        family,
        source,
        ..Settings::default()
    };
    if let Some(path) = std::env::var_os("HEADPROBE_RESOLV_CONF") {
        settings.resolv_conf = path.into();
    }
    if let Some(path) = std::env::var_os("HEADPROBE_HOSTS") {
        settings.hosts = path.into();
    }
    Ok(Resolver::new(settings))
}

/// `127.0.0.1`, `127.0.0.1:5353`, `::1`, `[::1]`, `[::1]:5353`.
fn parse_server(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| SocketAddr::new(ip.into(), 53));
    }
    match text.parse::<SocketAddr>() {
        Ok(addr) if addr.port() != 0 => Some(addr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        let ok = [
            ("127.0.0.1", "127.0.0.1:53"),
            ("127.0.0.1:5353", "127.0.0.1:5353"),
            ("::1", "[::1]:53"),
            ("[::1]", "[::1]:53"),
            ("[::1]:5353", "[::1]:5353"),
        ];
        for (text, want) in ok {
            assert_eq!(parse_server(text), Some(want.parse().unwrap()), "{text}");
        }
        for bad in [
            "",
            "dns.test",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "[::1",
            "1.2.3",
        ] {
            assert_eq!(parse_server(bad), None, "{bad}");
        }
    }

    #[test]
    fn families() {
        assert!(resolver(&[], true, true, None)
            .unwrap_err()
            .0
            .contains("-4 and -6"));
        assert_eq!(
            resolver(&[], true, false, None).unwrap().family(),
            Family::V4
        );
        assert_eq!(
            resolver(&[], false, true, None).unwrap().family(),
            Family::V6
        );
        let many: Vec<String> = (1..=65).map(|i| format!("127.0.0.1:{i}")).collect();
        let error = resolver(&many, false, false, None).unwrap_err().0;
        assert!(
            error.contains("given 65 times") && error.contains("at most 64"),
            "{error}"
        );
        assert!(resolver(&many[..64], false, false, None).is_ok());
        assert!(resolver(&["x".into()], false, false, None)
            .unwrap_err()
            .0
            .contains("--resolver"));
    }
}
