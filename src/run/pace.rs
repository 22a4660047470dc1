//! `--rate`: new connections spaced 1/N s apart across the whole run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cancel::Cancel;
use crate::net::rt;

/// Time lost waiting for a slot is not made up with a burst, so the rate is never
/// exceeded.
pub struct Pace {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pace {
    pub fn new(rate: f64) -> Pace {
        // Config caps how slow a rate may be, so the interval always fits a Duration.
        let interval = (rate > 0.0)
            .then(|| Duration::try_from_secs_f64(1.0 / rate).ok())
            .flatten();
        Pace {
            interval,
            next: Mutex::new(Instant::now()),
        }
    }

    pub fn is_paced(&self) -> bool {
        self.interval.is_some()
    }

    /// Waits for the next connection's start time; false when the run was cancelled.
    pub async fn wait(&self, cancel: &Cancel) -> bool {
        let Some(interval) = self.interval else {
            return true;
        };
        let start = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + interval;
            start
        };
        let now = Instant::now();
        if start <= now {
            return true;
        }
        cancel.guard(rt::sleep(start - now)).await.is_some()
    }
}
