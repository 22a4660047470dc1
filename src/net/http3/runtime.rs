//! quinn on async-std: the small `quinn::Runtime` quinn no longer ships for it (quinn
//! #2348 removed `runtime-async-std`; its `runtime-smol` would bring smol's own global
//! executor, a second hidden thread pool). Tasks go to async-std's executor, timers and
//! the UDP socket to async-io's reactor, which async-std itself runs on.
//!
//! async-io is named here, not only async-std, because quinn's `AsyncTimer` is reset in
//! place (`reset`), which async-io's `Timer::set_at` does and async-std's `sleep` future
//! cannot; and because the socket needs `Async::poll_readable`, a readiness wait that
//! quinn's receive loop polls.
//!
//! The socket reads and writes one datagram per call, without quinn-udp's batches, GSO,
//! GRO or ECN: a probe exchanges a dozen datagrams, and quinn sizes each endpoint's
//! receive buffer by what the socket can take at once (64 KiB x GRO segments x batch,
//! 128 MiB on Linux with GRO on; one probe's endpoint each, so that was most of a run's
//! memory). One datagram at a time, of at most `MAX_DATAGRAM` bytes, makes it 46 KiB,
//! mapped so that only its first page becomes resident (`map_large_buffers`).
//!
//! The socket is the probe's own, connected to the one server address: the kernel then
//! reports an ICMP port unreachable as ECONNREFUSED on it, which QUIC itself never sees
//! (quinn drops such errors). `Socket` hands that to the probe (`Refusals`) and carries
//! on as if the packet were lost.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Waker};
use std::time::Instant;

use async_io::{Async, Timer};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncTimer, AsyncUdpSocket, Runtime, UdpPoller};

/// quinn's runtime: async-std's tasks, async-io's timers and sockets.
#[derive(Debug)]
pub(crate) struct AsyncStd;

impl Runtime for AsyncStd {
    fn new_timer(&self, at: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(QuicTimer(Timer::at(at)))
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        // On the probe's own thread (quinn spawns from the probe's task, inside the
        // thread's `rt::block_on`): its drivers then wake the probe without a hand-over
        // to another thread. Detached: they end by themselves once their connection and
        // endpoint are gone.
        drop(crate::net::rt::spawn_local(future));
    }

    /// `socket` must be connected (see `Socket::new`).
    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let (refusals, _) = async_channel::bounded(1);
        Ok(Arc::new(Socket::new(socket, refusals)?))
    }
}

#[derive(Debug)]
struct QuicTimer(Timer);

impl AsyncTimer for QuicTimer {
    fn reset(mut self: Pin<&mut Self>, at: Instant) {
        self.0.set_at(at);
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

/// Where a socket reports that the server's host answered with port unreachable.
pub(crate) type Refusals = async_channel::Sender<io::Error>;

/// The largest UDP payload a probe's endpoint receives (`EndpointConfig`): what an
/// Ethernet path carries, and more than QUIC's 1200-byte minimum.
pub(crate) const MAX_DATAGRAM: u16 = 1472;

/// The size of the receive buffer quinn's driver gives every endpoint: `MAX_DATAGRAM` x
/// one segment (`max_receive_segments`) x quinn-udp's batch (32 on Linux), zeroed.
const RECV_BUFFER: usize = MAX_DATAGRAM as usize * quinn::udp::BATCH_SIZE;

/// Makes the C allocator map each endpoint's receive buffer on its own pages, so that
/// only what is received into them (one datagram at a time, at its start: see
/// `poll_recv`) becomes resident, and the pages go back to the system with the endpoint.
///
/// quinn zeroes the buffer (`vec![0; n]`); taken from the heap, a reused block is
/// cleared, every page of it made resident: 46 KiB per probe, a third of a run's memory
/// at -c 256. Mapped pages are zero already, and glibc's `calloc` leaves them untouched.
///
/// glibc maps a block only when the heap cannot give it: from a size on (128 KiB by
/// default; lowered here to the buffer's size, so only blocks as large move: quinn's
/// buffers and the rare others), and only when neither a free block nor the heap's top
/// holds it. The top keeps a pad (128 KiB by default) after each growth, room for two
/// buffers, which then came from the heap: 1,735 mappings for 3,000 probes. Without the
/// pad (the heap grows by what is asked): 2,968 (strace -c). Peak RSS at -c 256
/// (`bench/http3`): 34.1 MiB before, 25.2 with the threshold, 21.7 with both; CPU per
/// probe unchanged.
///
/// Elsewhere (other C libraries, other systems) nothing changes but the memory: the
/// buffers are then resident.
pub(crate) fn map_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is thread-safe in glibc.
    unsafe {
        let threshold = libc::c_int::try_from(RECV_BUFFER).unwrap_or(libc::c_int::MAX);
        libc::mallopt(libc::M_MMAP_THRESHOLD, threshold);
        libc::mallopt(libc::M_TOP_PAD, 0);
    }
}

/// A probe's UDP socket, connected to the server, for quinn.
///
/// It also ends the probe's endpoint. quinn keeps an endpoint (its driver task, its
/// receive buffer, the socket) until its connection has drained, three probe timeouts
/// after the close, and a connection still shaking hands (a port that never answers)
/// until its idle timeout, retransmitting all along. A probe needs neither: once it is
/// done (`done`; after its CONNECTION_CLOSE went out, when it closed the connection), the
/// socket fails the endpoint driver's next receive, which ends the driver and frees the
/// endpoint.
pub(crate) struct Socket {
    io: Arc<Async<std::net::UdpSocket>>,
    peer: SocketAddr,
    refusals: Refusals,
    /// `OPEN` or `DONE`.
    state: AtomicU8,
    /// The endpoint driver's waker, from its last receive.
    receiver: Mutex<Option<Waker>>,
    /// Told of the next datagram sent (`watch_sends`).
    sends: Mutex<Option<async_channel::Sender<()>>>,
}

const OPEN: u8 = 0;
const DONE: u8 = 1;

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket").finish_non_exhaustive()
    }
}

impl Socket {
    /// `socket` must be connected (its peer is every datagram's source and goal).
    pub(crate) fn new(socket: std::net::UdpSocket, refusals: Refusals) -> io::Result<Socket> {
        Ok(Socket {
            peer: socket.peer_addr()?,
            io: Arc::new(Async::new(socket)?),
            refusals,
            state: AtomicU8::new(OPEN),
            receiver: Mutex::new(None),
            sends: Mutex::new(None),
        })
    }

    /// A receiver told when the next datagram has been sent: after the connection was
    /// closed, that one carries the CONNECTION_CLOSE.
    pub(crate) fn watch_sends(&self) -> async_channel::Receiver<()> {
        let (tx, rx) = async_channel::bounded(1);
        *self.sends.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// The probe is done with the connection: the endpoint ends now.
    pub(crate) fn done(&self) {
        if self
            .state
            .compare_exchange(OPEN, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.wake_receiver();
        }
    }

    fn wake_receiver(&self) {
        self.state.store(DONE, Ordering::Release);
        let waker = self
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// An ICMP error the kernel reported on the socket: refused goes to the probe.
    fn refused(&self, e: io::Error) {
        let _ = self.refusals.try_send(e);
    }
}

impl AsyncUdpSocket for Socket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable {
            io: Arc::clone(&self.io),
            wait: None,
        })
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        // One datagram: max_transmit_segments is 1, so quinn never asks for GSO.
        let sent = self.io.get_ref().send(transmit.contents).map(drop);
        if sent.is_ok() {
            if let Some(tx) = self.sends.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = tx.try_send(());
            }
        }
        match sent {
            Err(e) if is_refusal(&e) => {
                // The datagram is lost, as far as QUIC knows; the probe learns why.
                self.refused(e);
                Ok(())
            }
            other => other,
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(meta)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        *self.receiver.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        loop {
            if self.state.load(Ordering::Acquire) == DONE {
                // Ends the endpoint driver (quinn ends it on any receive error but a
                // reset), and with it the endpoint.
                return Poll::Ready(Err(io::Error::other("the probe is done")));
            }
            ready!(self.io.poll_readable(cx))?;
            match self.io.get_ref().recv(buf) {
                Ok(len) => {
                    *meta = RecvMeta::default();
                    meta.addr = self.peer;
                    meta.len = len;
                    meta.stride = len;
                    return Poll::Ready(Ok(1));
                }
                Err(e) if is_refusal(&e) => self.refused(e),
                // WouldBlock: readiness was stale; wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

fn is_refusal(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionRefused
}

/// Waits for the socket to be writable, for one of quinn's tasks (each has its own, so
/// each keeps its own waker).
struct Writable {
    io: Arc<Async<std::net::UdpSocket>>,
    wait: Option<Pin<Box<async_io::WritableOwned<std::net::UdpSocket>>>>,
}

impl fmt::Debug for Writable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writable").finish_non_exhaustive()
    }
}

impl UdpPoller for Writable {
    fn poll_writable(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let io = Arc::clone(&self.io);
        let wait = self
            .wait
            .get_or_insert_with(|| Box::pin(io.writable_owned()));
        let done = ready!(wait.as_mut().poll(cx));
        self.wait = None;
        Poll::Ready(done)
    }
}
