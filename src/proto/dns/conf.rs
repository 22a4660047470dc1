//! `/etc/resolv.conf` and `/etc/hosts` as text, and the search list they imply.
//!
//! Read the way glibc reads them, for the parts a stub needs: `nameserver`, `search` /
//! `domain` and `options ndots:N`; other options (`timeout`, `attempts`, `rotate`) are
//! ignored because the resolver has its own schedule inside `--connect-timeout`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// glibc's limit on `ndots`.
const MAX_NDOTS: u8 = 15;
/// glibc's limit on `nameserver` lines read (MAXNS).
const MAX_NAMESERVERS: usize = 3;

/// What `/etc/resolv.conf` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// In file order, port 53.
    pub nameservers: Vec<SocketAddr>,
    /// Domains appended to names with fewer than `ndots` dots (and tried after others).
    pub search: Vec<String>,
    pub ndots: u8,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
        }
    }
}

impl ResolvConf {
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // A zone index (fe80::1%eth0) cannot be kept in an IpAddr: skip it.
                    // Past the third, glibc (MAXNS) ignores them, and so does this.
                    let ip = words.next().and_then(|w| w.parse::<IpAddr>().ok());
                    if let (Some(ip), true) = (ip, conf.nameservers.len() < MAX_NAMESERVERS) {
                        conf.nameservers.push(SocketAddr::new(ip, 53));
                    }
                }
                // The last of `search` and `domain` wins, as in glibc.
                Some("search") => conf.search = words.map(trim_dot).collect(),
                Some("domain") => conf.search = words.take(1).map(trim_dot).collect(),
                Some("options") => {
                    for option in words {
                        if let Some(n) = option.strip_prefix("ndots:") {
                            if let Ok(n) = n.parse::<u32>() {
                                conf.ndots = n.min(MAX_NDOTS as u32) as u8;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        conf.search.retain(|d| !d.is_empty());
        conf
    }

    /// The names to ask for, in order, for `name` as the user wrote it (RFC 1535 /
    /// glibc `res_search`): a name ending in a dot is asked as is; one with at least
    /// `ndots` dots is asked as is, then with each search domain; a shorter one with each
    /// search domain first, then as is. Candidates too long for DNS are left out.
    pub fn candidates<'a>(&self, name: &'a str) -> Vec<Cow<'a, str>> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![Cow::Borrowed(absolute)];
        }
        let dots = name.bytes().filter(|&b| b == b'.').count();
        let searched = self
            .search
            .iter()
            .map(|domain| Cow::<str>::Owned(format!("{name}.{domain}")))
            .filter(|n| n.len() <= 253);
        if dots >= self.ndots as usize {
            std::iter::once(Cow::Borrowed(name))
                .chain(searched)
                .collect()
        } else {
            searched
                .chain(std::iter::once(Cow::Borrowed(name)))
                .collect()
        }
    }
}

fn trim_dot(domain: &str) -> String {
    domain.trim_end_matches('.').to_string()
}

/// What `/etc/hosts` says: lower-cased name to its addresses in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts(HashMap<String, Vec<IpAddr>>);

impl Hosts {
    pub fn parse(text: &str) -> Hosts {
        let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
                continue;
            };
            for name in words {
                let ips = map.entry(trim_dot(&name.to_ascii_lowercase())).or_default();
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
        }
        Hosts(map)
    }

    /// The addresses for `name` (any case, final dot or not). `localhost` and names under
    /// it are loopback even when the file does not say so (RFC 6761 6.3).
    pub fn get(&self, name: &str) -> Option<Vec<IpAddr>> {
        let name = name.trim_end_matches('.');
        // Asked for every name probed: no copy unless the name has capitals.
        let lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            lower.as_str()
        } else {
            name
        };
        if let Some(ips) = self.0.get(name) {
            return Some(ips.clone());
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return Some(vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ]);
        }
        None
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf() {
        let c = ResolvConf::parse(
            "# comment\nnameserver 127.0.0.53\nnameserver ::1 # trailing\nnameserver fe80::1%eth0\n\
             nameserver bogus\ndomain old.example\nsearch corp.example. lab.example\n\
             options edns0 ndots:2 timeout:1\n",
        );
        assert_eq!(
            c.nameservers,
            [
                "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(c.search, ["corp.example", "lab.example"]);
        assert_eq!(c.ndots, 2);
        assert_eq!(ResolvConf::parse("options ndots:99").ndots, 15);
        let four = "nameserver 127.0.0.1\nnameserver 127.0.0.2\nnameserver 127.0.0.3\nnameserver 127.0.0.4\n";
        let kept: Vec<String> = ResolvConf::parse(four)
            .nameservers
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            kept,
            ["127.0.0.1:53", "127.0.0.2:53", "127.0.0.3:53"],
            "the first three, as glibc"
        );
        assert_eq!(ResolvConf::parse(""), ResolvConf::default());
    }

    #[test]
    fn search_order_follows_ndots() {
        let c = ResolvConf {
            search: vec!["corp.example".into(), "lab.example".into()],
            ndots: 1,
            ..ResolvConf::default()
        };
        assert_eq!(
            c.candidates("www"),
            ["www.corp.example", "www.lab.example", "www"]
        );
        assert_eq!(
            c.candidates("a.b"),
            ["a.b", "a.b.corp.example", "a.b.lab.example"]
        );
        assert_eq!(c.candidates("a.b."), ["a.b"]);
        let long = format!("{}x", "a".repeat(245));
        assert_eq!(c.candidates(&long), vec![long.clone()]);
        assert_eq!(ResolvConf::default().candidates("www"), ["www"]);
    }

    #[test]
    fn hosts() {
        let h = Hosts::parse(
            "127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.1.7 Web.Test web # c\n\
             # 10.0.0.1 commented.test\nnot-an-ip name.test\n127.0.1.8 web.test\n",
        );
        let ips =
            |list: &[&str]| -> Vec<IpAddr> { list.iter().map(|s| s.parse().unwrap()).collect() };
        assert_eq!(h.get("localhost"), Some(ips(&["127.0.0.1", "::1"])));
        assert_eq!(h.get("WEB.test."), Some(ips(&["127.0.1.7", "127.0.1.8"])));
        assert_eq!(h.get("web"), Some(ips(&["127.0.1.7"])));
        assert_eq!(h.get("commented.test"), None);
        assert_eq!(h.get("name.test"), None);
        assert_eq!(
            Hosts::default().get("a.localhost"),
            Some(ips(&["127.0.0.1", "::1"]))
        );
    }
}
