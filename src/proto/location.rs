//! Where a redirect points: a `Location` value resolved against the URL that answered
//! it (RFC 3986 §5.2), as curl does: surrounding whitespace trimmed, inner spaces and
//! non-ASCII bytes percent-encoded, the fragment dropped, dot segments removed.

/// Why a `Location` cannot be followed; the 3xx then ends the chain.
pub type Unusable = String;

/// Resolves `location` against `base` (an absolute `http(s)://authority/path?query`
/// URL). The result is an absolute http or https URL without fragment.
pub fn resolve(base: &str, location: &[u8]) -> Result<String, Unusable> {
    let location = location.trim_ascii();
    if location.is_empty() {
        return Err("the Location header is empty".into());
    }
    if location.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err("the Location header holds control characters".into());
    }
    let location = encode(location);
    let location = location.split('#').next().unwrap_or_default();
    let (base_scheme, base_rest) = base
        .split_once("://")
        .ok_or_else(|| format!("'{base}' is not an absolute URL"))?;
    let (base_authority, base_path_query) = split_authority(base_rest);
    let (base_path, base_query) = split_query(base_path_query);

    if let Some((scheme, rest)) = scheme_of(location) {
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "the Location '{location}' is not an http or https URL"
            ));
        }
        let rest = rest
            .strip_prefix("//")
            .ok_or_else(|| format!("the Location '{location}' has a scheme but no host"))?;
        let (authority, path_query) = split_authority(rest);
        if authority.is_empty() {
            return Err(format!("the Location '{location}' has no host"));
        }
        let (path, query) = split_query(path_query);
        return Ok(join(&scheme, authority, &remove_dots(path), query));
    }
    if let Some(rest) = location.strip_prefix("//") {
        let (authority, path_query) = split_authority(rest);
        if authority.is_empty() {
            return Err(format!("the Location '{location}' has no host"));
        }
        let (path, query) = split_query(path_query);
        return Ok(join(base_scheme, authority, &remove_dots(path), query));
    }
    let (path, query) = split_query(location);
    let path = if path.is_empty() {
        // `?q` or nothing but a fragment: the base path, with the new query if any.
        return Ok(join(
            base_scheme,
            base_authority,
            base_path,
            query.or(base_query),
        ));
    } else if path.starts_with('/') {
        remove_dots(path)
    } else {
        // Merge: the base path up to its last '/', then the reference.
        let dir = match base_path.rfind('/') {
            Some(i) => &base_path[..=i],
            None => "/",
        };
        remove_dots(&format!("{dir}{path}"))
    };
    Ok(join(base_scheme, base_authority, &path, query))
}

/// `scheme:` at the start (RFC 3986 §3.1), if any.
fn scheme_of(reference: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = reference.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some((scheme, rest))
}

/// `authority` and what follows it (path and query), from what comes after `//`.
fn split_authority(rest: &str) -> (&str, &str) {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    rest.split_at(end)
}

fn split_query(path_query: &str) -> (&str, Option<&str>) {
    match path_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_query, None),
    }
}

fn join(scheme: &str, authority: &str, path: &str, query: Option<&str>) -> String {
    let path = if path.is_empty() { "/" } else { path };
    match query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    }
}

/// RFC 3986 §5.2.4, on a path that starts with '/' (or is empty).
fn remove_dots(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut joined = String::with_capacity(path.len());
    for seg in &out {
        joined.push('/');
        joined.push_str(seg);
    }
    if trailing_slash || joined.is_empty() {
        joined.push('/');
    }
    joined
}

/// Spaces and bytes outside ASCII percent-encoded, as curl sends them.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b == b' ' || !b.is_ascii() {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3986 §5.4.1 normal examples (those an http base can meet) and curl's habits.
    #[test]
    fn resolves_like_rfc_3986() {
        let base = "http://a/b/c/d;p?q";
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("https://x:8443/p?q#f", "https://x:8443/p?q"),
            ("HTTP://x", "http://x/"),
            ("http://[::1]:8080/v6", "http://[::1]:8080/v6"),
            ("  /spaced path  ", "http://a/spaced%20path"),
            ("/caf\u{e9}", "http://a/caf%C3%A9"),
        ];
        for (location, want) in cases {
            assert_eq!(
                resolve(base, location.as_bytes()).as_deref(),
                Ok(want),
                "{location}"
            );
        }
    }

    #[test]
    fn unusable_locations_are_reasons_not_panics() {
        let base = "http://a/b";
        for bad in [
            &b""[..],
            b"   ",
            b"ftp://a/b",
            b"mailto:x@y",
            b"/a\x00b",
            b"/a\r\nSet-Cookie: x",
            b"http:/nohost",
            b"http:///path",
            b"//",
        ] {
            assert!(
                resolve(base, bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
