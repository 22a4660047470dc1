//! The runtime, named once: blocking on a future with the reactor, and timers. Moving
//! from async-std/async-io to another runtime starts here.

use std::future::Future;
use std::time::Duration;

/// Runs `future` to completion on this thread, driving the I/O reactor while idle.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    async_io::block_on(future)
}

/// Waits `duration`.
pub async fn sleep(duration: Duration) {
    async_io::Timer::after(duration).await;
}
