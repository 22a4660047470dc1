//! `-L`: whether a response asks to be followed, and where to. Each hop is a new probe
//! of its own (a new connection, negotiated anew) within the first one's `--timeout`.

use crate::net::hop::Gathered;
use crate::net::options::ProbeOptions;
use crate::proto::location;
use crate::proto::target::{Defaults, Target};
use crate::report::error::{ErrorKind, ProbeError};
use crate::report::record::Hop;

/// What to do after a hop's response.
pub(crate) enum Next {
    /// Probe `target` (at `url`) next; `hop` records the response that pointed there.
    Follow {
        url: String,
        target: Target,
        hop: Box<Hop>,
    },
    /// The chain is longer than `--max-redirs`.
    TooMany(ProbeError),
    /// This response is the answer (not a redirect, or one that cannot be followed).
    Stop,
}

/// The step after `current`'s response in `got`, `followed` hops into the chain.
pub(crate) fn next(
    cfg: &ProbeOptions,
    current: &Target,
    got: &mut Gathered,
    followed: usize,
) -> Next {
    let Some(Redirect {
        status,
        location,
        next: Ok((url, target)),
    }) = redirect(current, got)
    else {
        // No usable Location: this 3xx is the answer.
        return Next::Stop;
    };
    if followed >= cfg.max_redirs {
        return Next::TooMany(ProbeError::new(
            ErrorKind::TooManyRedirects,
            format!(
                "more than {} redirects (--max-redirs); the last pointed to {}",
                cfg.max_redirs,
                String::from_utf8_lossy(&location)
            ),
        ));
    }
    let hop = Hop {
        url: url_of(current),
        status,
        location: String::from_utf8_lossy(&location).into_owned(),
        head: got.head.take(),
    };
    Next::Follow {
        url,
        target,
        hop: Box::new(hop),
    }
}

/// The URL a target asks for, as a browser would show it.
pub(crate) fn url_of(target: &Target) -> String {
    format!(
        "{}://{}{}",
        target.scheme.name(),
        target.host_header(),
        target.path
    )
}

/// A redirect the final response asks for.
struct Redirect {
    status: u16,
    /// The `Location` value as sent.
    location: Vec<u8>,
    /// Its URL and target, or why it cannot be followed (the 3xx is then the answer).
    next: Result<(String, Target), String>,
}

/// The redirect in `got`, if its final response is a 3xx that names a `Location`.
fn redirect(current: &Target, got: &Gathered) -> Option<Redirect> {
    let head = got.head.as_ref()?;
    let block = head.final_block()?;
    let status = block.status.code;
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = head
        .headers(block)
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"location"))
        .map(|(_, value)| value.into_owned())?;
    let next = location::resolve(&url_of(current), &location).and_then(|url| {
        let defaults = Defaults {
            https: true,
            ..Defaults::default()
        };
        let target = crate::proto::target::parse(&url, &defaults)?;
        Ok((url, target))
    });
    Some(Redirect {
        status,
        location,
        next,
    })
}
