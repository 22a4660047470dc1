//! The target grammar on arbitrary text: never panics, and what it accepts is safe to put
//! on the wire and on a terminal, and parses back from its canonical URL.
//! Same check as `check_target_grammar` in tests/properties.rs (keep them in step).
#![no_main]

use headprobe::http::{HttpVersion, RequestTemplate};
use headprobe::target::{parse, Defaults};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let with_tls = Defaults {
        https: true,
        ..Defaults::default()
    };
    for defaults in [Defaults::default(), with_tls] {
        let Ok(t) = parse(token, &defaults) else {
            continue;
        };
        let host_header = t.host_header();
        for part in [&host_header, &t.path, &t.host.to_string()] {
            assert!(
                !part.chars().any(|c| c.is_whitespace() || c.is_control()),
                "{token:?} gave {part:?}"
            );
        }
        assert_ne!(t.port, 0, "{token:?}");
        assert!(t.path.starts_with('/'), "{token:?} gave path {:?}", t.path);
        let request = RequestTemplate::new("GET", HttpVersion::Http10, &[]).render(&t);
        assert_eq!(
            request.iter().filter(|&&b| b == b'\n').count(),
            5,
            "{token:?}"
        );
        let url = format!("{}://{host_header}{}", t.scheme.name(), t.path);
        assert_eq!(
            parse(&url, &defaults).as_ref(),
            Ok(&t),
            "{token:?} → {url:?}"
        );
    }
});
