//! `--resolve HOST:PORT:ADDR` entries: addresses pinned for a name and port, which win
//! over `/etc/hosts` and DNS, as curl's option does.

use std::collections::HashMap;
use std::net::IpAddr;

/// Pinned addresses by (lower-cased host, port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins(HashMap<(String, u16), Vec<IpAddr>>);

impl Pins {
    /// Pins `ips` for `host:port` (`host` as `target::normalize_name` gives it); a later
    /// entry for the same pair replaces an earlier one.
    pub fn insert(&mut self, host: &str, port: u16, ips: Vec<IpAddr>) {
        self.0.insert((host.to_ascii_lowercase(), port), ips);
    }

    /// The addresses given for `host:port`, if any; a trailing dot is no difference.
    pub fn get(&self, host: &str, port: u16) -> Option<&[IpAddr]> {
        if self.0.is_empty() {
            return None;
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        self.0
            .get(&(host.to_ascii_lowercase(), port))
            .map(Vec::as_slice)
    }
}
