//! Integration tests: the real `headprobe` binary against scripted loopback servers.
//!
//! One test binary. The test modules live under `suite/` because cargo would build every
//! `tests/*.rs` file as a test binary of its own.

mod util;

#[path = "suite/addresses.rs"]
mod addresses;
#[path = "suite/architecture.rs"]
mod architecture;
#[path = "suite/deploy.rs"]
mod deploy;
#[path = "suite/dns.rs"]
mod dns;
#[path = "suite/errors.rs"]
mod errors;
#[path = "suite/expect_header.rs"]
mod expect_header;
#[path = "suite/formats.rs"]
mod formats;
#[path = "suite/harness.rs"]
mod harness;
#[path = "suite/hostile.rs"]
mod hostile;
#[path = "suite/http2.rs"]
mod http2;
#[path = "suite/http2_peers.rs"]
mod http2_peers;
#[path = "suite/http3.rs"]
mod http3;
#[path = "suite/input.rs"]
mod input;
#[path = "suite/messages.rs"]
mod messages;
#[path = "suite/metrics.rs"]
mod metrics;
#[path = "suite/ordered.rs"]
mod ordered;
#[path = "suite/output.rs"]
mod output;
#[path = "suite/process.rs"]
mod process;
#[path = "suite/properties.rs"]
mod properties;
#[path = "suite/proxy_detect.rs"]
mod proxy_detect;
#[path = "suite/proxy_http.rs"]
mod proxy_http;
#[path = "suite/proxy_pool.rs"]
mod proxy_pool;
#[path = "suite/proxy_redaction.rs"]
mod proxy_redaction;
#[path = "suite/proxy_shares.rs"]
mod proxy_shares;
#[path = "suite/proxy_socks.rs"]
mod proxy_socks;
#[path = "suite/racing.rs"]
mod racing;
#[path = "suite/readme.rs"]
mod readme;
#[path = "suite/redirects.rs"]
mod redirects;
#[path = "suite/request.rs"]
mod request;
#[path = "suite/resolver.rs"]
mod resolver;
#[path = "suite/response.rs"]
mod response;
#[path = "suite/resume.rs"]
mod resume;
#[path = "suite/scale.rs"]
mod scale;
#[path = "suite/signals.rs"]
mod signals;
#[path = "suite/targets.rs"]
mod targets;
#[path = "suite/terminal.rs"]
mod terminal;
#[path = "suite/tls.rs"]
mod tls;
