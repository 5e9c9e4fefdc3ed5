//! Bounds on connections (SPEC §7; §8 "Bounds under attack"). tonic and hyper bound the streams of a
//! connection and ping dead peers (see `server::router`), but have no limit on connections, no deadline
//! for the HTTP/2 handshake and no idle timeout (tonic's `max_connection_age` closes busy connections
//! too). This module adds them around the accepted streams, so the listeners keep tonic's and axum's own
//! serve loops (graceful shutdown, per-connection services).
//!
//! - [`Limited`] accepts from a listener and admits a connection only with a permit of the listener's
//!   semaphore. Past the limit the connection is closed at once: the client sees an end of file or a
//!   reset right away, not a hang in the backlog, and can go to another replica. Each gRPC listener (TCP,
//!   Unix socket) has its own pool of `--max-connections`, so that a flood on the TCP port does not lock
//!   same-pod gateways out of the socket (the socket's file mode already limits who can connect); the
//!   admin listener has its own small pool, so `/readyz` and `/metrics` answer while gRPC is saturated.
//!   The permit travels in the [`Guarded`] stream and is released when the server drops the connection.
//!   An accept error other than a connection's own (out of file descriptors, say) pauses accepting for
//!   [`ACCEPT_BACKOFF`] instead of spinning.
//! - [`Guarded`] closes a gRPC connection whose client has not sent the HTTP/2 preface and the SETTINGS
//!   frame that follows it within the handshake timeout (10 s), and a gRPC connection that has had no
//!   open stream for `--idle-timeout`. Open streams are counted by [`TrackLayer`]: tonic puts the
//!   connection's [`ConnInfo`] into every request's extensions, and the layer counts the stream open from
//!   the call until its response body is dropped (an open health `Watch` keeps its connection). The idle
//!   close is an end of file on the read side, after which h2 (no stream being open) ends the connection:
//!   there is no GOAWAY, because tonic keeps hyper's per-connection graceful shutdown to itself. Bytes that
//!   arrive just as the idle timeout fires postpone the close by [`IDLE_RECHECK`], so a call sent at that
//!   moment is served rather than cut.
//! - An admin (HTTP/1) connection with no byte read or written for `admin_idle_timeout` is closed, idle
//!   between requests or stuck on a client that does not read its answer.
//! - [`TrackLayer`] also caps the answers a connection holds for a client that does not read them:
//!   hyper takes an answer's bytes from its body before the client's flow control has room for them, so
//!   unread answers pile up in the server. Once `max_pending_response_bytes` wait on a connection, its
//!   next answers are RESOURCE_EXHAUSTED (`warden_answers_refused_unread_total`). What a connection can
//!   hold in all: see `server::router`.
//! - Refused and closed connections are counted in `warden_connections_closed_total{listener, reason}`,
//!   open ones in `warden_connections_open{listener}`.
use crate::config::ConnectionLimits;
use crate::server::uds_authority::AuthorityFix;
use crate::telemetry::metrics;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::codegen::http;
use tonic::transport::server::{Connected, TcpConnectInfo, UdsConnectInfo};
use tower::{Layer, Service};

/// How long accepting pauses after an error that is not one connection's (EMFILE, ENFILE, ENOMEM).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long an idle close is postponed when the client sends bytes just as it is due.
pub const IDLE_RECHECK: Duration = Duration::from_secs(1);
/// Connections refused in one poll of the accept loop before it yields to other tasks.
const REFUSALS_PER_POLL: usize = 64;
/// At most one "limit reached" warning per listener per this period (refusals are counted regardless).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// When a connection counts as idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// gRPC: no stream open (PINGs and their acknowledgements do not count).
    NoOpenStream,
    /// HTTP/1 admin: no byte read or written.
    NoBytes,
}

/// The bounds of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Open connections at most.
    pub max_connections: usize,
    /// The HTTP/2 preface and SETTINGS must arrive within this (`None`: no handshake to wait for).
    pub handshake_timeout: Option<Duration>,
    /// An idle connection is closed after this.
    pub idle_timeout: Duration,
    /// What idle means.
    pub idle: Idle,
    /// gRPC: answers waiting on a connection's flow control past which new ones are RESOURCE_EXHAUSTED.
    pub max_pending_response_bytes: usize,
}

impl Policy {
    /// A gRPC listener's.
    pub fn grpc(limits: &ConnectionLimits) -> Policy {
        Policy {
            max_connections: limits.max_connections,
            handshake_timeout: Some(limits.handshake_timeout),
            idle_timeout: limits.idle_timeout,
            idle: Idle::NoOpenStream,
            max_pending_response_bytes: limits.max_pending_response_bytes,
        }
    }

    /// The admin listener's.
    pub fn admin(limits: &ConnectionLimits) -> Policy {
        Policy {
            max_connections: limits.admin_max_connections,
            handshake_timeout: None,
            idle_timeout: limits.admin_idle_timeout,
            idle: Idle::NoBytes,
            max_pending_response_bytes: usize::MAX,
        }
    }
}

// === the listeners ===

/// A listener [`Limited`] can accept from.
pub trait Accept: Send + Unpin + 'static {
    /// What the listener accepts.
    type Raw: Send;
    /// The stream served, made from an admitted [`Accept::Raw`].
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The peer address.
    type Addr: Send + std::fmt::Debug;
    /// Accepts the next connection.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Raw, Self::Addr)>>;
    /// Makes the served stream of an admitted connection.
    fn admit(&self, raw: Self::Raw) -> Self::Io;
}

impl Accept for TcpListener {
    type Raw = TcpStream;
    type Io = TcpStream;
    type Addr = SocketAddr;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        TcpListener::poll_accept(self, cx)
    }

    fn admit(&self, raw: TcpStream) -> TcpStream {
        // Without TCP_NODELAY every unary call from grpcio stalls ~40 ms (Nagle + delayed ACK).
        if let Err(e) = raw.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        raw
    }
}

/// The gRPC Unix-socket listener: every admitted stream gets grpc-core's `:authority` rewritten (see
/// `uds_authority`).
#[derive(Debug)]
pub struct UdsListener(pub UnixListener);

impl Accept for UdsListener {
    type Raw = UnixStream;
    type Io = AuthorityFix<UnixStream>;
    type Addr = tokio::net::unix::SocketAddr;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, Self::Addr)>> {
        self.0.poll_accept(cx)
    }

    fn admit(&self, raw: UnixStream) -> AuthorityFix<UnixStream> {
        AuthorityFix::new(raw)
    }
}

/// A listener that admits at most `policy.max_connections` connections at a time, each [`Guarded`].
/// A [`tokio_stream::Stream`] of connections for tonic, an [`axum::serve::Listener`] for axum.
pub struct Limited<L> {
    listener: L,
    permits: Arc<Semaphore>,
    policy: Policy,
    /// `listener` label of the metrics.
    name: &'static str,
    backoff: Option<Pin<Box<Sleep>>>,
    last_warn: Option<Instant>,
}

impl<L: Accept> Limited<L> {
    /// Limits `listener`; `name` labels its metrics and logs.
    pub fn new(listener: L, policy: Policy, name: &'static str) -> Limited<L> {
        Limited {
            listener,
            permits: Arc::new(Semaphore::new(policy.max_connections)),
            policy,
            name,
            backoff: None,
            last_warn: None,
        }
    }

    fn warn(&mut self, message: &str, error: Option<&io::Error>) {
        let now = Instant::now();
        if self.last_warn.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
            return;
        }
        self.last_warn = Some(now);
        match error {
            Some(e) => tracing::warn!(listener = self.name, error = %e, "{message}"),
            None => tracing::warn!(listener = self.name, max = self.policy.max_connections, "{message}"),
        }
    }

    /// The next admitted connection; refused ones are closed on the way.
    fn poll_conn(&mut self, cx: &mut Context<'_>) -> Poll<(Guarded<L::Io>, L::Addr)> {
        let mut refused = 0;
        loop {
            if let Some(b) = self.backoff.as_mut() {
                ready!(b.as_mut().poll(cx));
                self.backoff = None;
            }
            match ready!(self.listener.poll_accept(cx)) {
                Ok((raw, addr)) => match self.permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        return Poll::Ready((
                            Guarded::new(self.listener.admit(raw), permit, self.policy, self.name),
                            addr,
                        ));
                    }
                    Err(_) => {
                        // Dropping the stream closes it: the client sees EOF (or a reset if it already sent).
                        drop(raw);
                        metrics::connection_closed(self.name, "over_limit");
                        tracing::debug!(listener = self.name, peer = ?addr, "connection refused: at the limit");
                        self.warn("connection limit reached: new connections are closed at accept", None);
                        refused += 1;
                        if refused >= REFUSALS_PER_POLL {
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                    }
                },
                Err(e) if is_connection_error(&e) => {
                    tracing::debug!(listener = self.name, error = %e, "accept: connection failed");
                }
                Err(e) => {
                    self.warn("accept failed; pausing accepts", Some(&e));
                    self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
            }
        }
    }
}

/// An error of one connection (the next accept may well succeed), not of the listener or the process.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

impl<L: Accept> tokio_stream::Stream for Limited<L> {
    type Item = Result<Guarded<L::Io>, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_conn(cx).map(|(io, _)| Some(Ok(io)))
    }
}

impl axum::serve::Listener for Limited<TcpListener> {
    type Io = Guarded<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        std::future::poll_fn(|cx| self.poll_conn(cx)).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// File descriptors beyond the connections: listeners, bundle files, the state and decision-log files,
/// the watcher, stdio.
const FD_HEADROOM: usize = 64;

/// Warns when `connections` connections (every listener's limit added up) cannot all be open under the
/// process's open-file limit: accepting then fails with EMFILE before the limits are reached, on every
/// listener, the admin one included.
pub fn warn_if_over_fd_limit(connections: usize) {
    let Some(limit) = std::fs::read_to_string("/proc/self/limits").ok().as_deref().and_then(open_files_limit) else {
        return;
    };
    let needed = connections.saturating_add(FD_HEADROOM);
    if needed > limit {
        tracing::warn!(
            needed,
            limit,
            "{}: the connection limits need about {needed} file descriptors but the open-file limit is {limit}: \
             raise it (`ulimit -n`, LimitNOFILE=) or lower the flag",
            crate::config::flag::MAX_CONNECTIONS
        );
    }
}

/// The soft "Max open files" of a `/proc/PID/limits` text (`None`: unlimited or unreadable).
fn open_files_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

// === the connection ===

/// One connection's open streams, shared by its [`Guarded`] stream and the [`TrackLayer`] of its calls.
#[derive(Debug)]
pub struct Conn {
    open: AtomicUsize,
    origin: Instant,
    /// When the last stream closed (or the connection opened), in ms since `origin`.
    idle_since_ms: AtomicU64,
    /// Bytes of answers waiting to be handed to h2 (see [`Tracked`]).
    pending: AtomicUsize,
    /// Past this many pending bytes, new answers are RESOURCE_EXHAUSTED.
    max_pending: usize,
}

impl Conn {
    fn new(max_pending: usize) -> Conn {
        Conn {
            open: AtomicUsize::new(0),
            origin: Instant::now(),
            idle_since_ms: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            max_pending,
        }
    }

    fn stream_opened(self: Arc<Self>) -> StreamGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        StreamGuard(self)
    }

    /// Whether a stream is open, else since when none is.
    fn idle_since(&self) -> Option<Instant> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.origin + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire)))
    }
}

/// Counts one stream open while it lives.
#[derive(Debug)]
pub struct StreamGuard(Arc<Conn>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            let ms = u64::try_from(self.0.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.0.idle_since_ms.store(ms, Ordering::Release);
        }
    }
}

/// The peer of a connection, as tonic describes it.
#[derive(Debug, Clone)]
pub enum Peer {
    /// A TCP peer.
    Tcp(TcpConnectInfo),
    /// A Unix-socket peer.
    Uds(UdsConnectInfo),
}

impl From<TcpConnectInfo> for Peer {
    fn from(i: TcpConnectInfo) -> Peer {
        Peer::Tcp(i)
    }
}

impl From<UdsConnectInfo> for Peer {
    fn from(i: UdsConnectInfo) -> Peer {
        Peer::Uds(i)
    }
}

/// What tonic puts into the extensions of every request of a [`Guarded`] connection. [`TrackLayer`]
/// takes it out and puts the peer back as tonic's own type (so `Request::remote_addr` keeps working).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer.
    pub peer: Peer,
    conn: Arc<Conn>,
}

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    Handshake,
    Idle,
}

impl Closed {
    fn label(self) -> &'static str {
        match self {
            Closed::Handshake => "handshake_timeout",
            Closed::Idle => "idle_timeout",
        }
    }
}

/// What the timer says.
enum Due {
    Nothing,
    Close(Closed),
}

/// The client side of the HTTP/2 handshake (RFC 9113 §3.4): the 24-byte magic, then a SETTINGS frame
/// (a 9-byte head whose first 3 bytes are the payload length, then the payload). Only counted; h2
/// checks the bytes.
#[derive(Debug, Default)]
struct Preface {
    read: usize,
    len: usize,
}

impl Preface {
    const MAGIC: usize = 24;
    const HEAD: usize = 9;

    fn advance(&mut self, bytes: &[u8]) {
        let skip = Self::MAGIC.saturating_sub(self.read);
        let take = (Self::MAGIC + 3).saturating_sub(self.read);
        for &b in bytes.iter().take(take).skip(skip) {
            self.len = (self.len << 8) | usize::from(b);
        }
        self.read = self.read.saturating_add(bytes.len());
    }

    fn done(&self) -> bool {
        self.read >= Self::MAGIC + Self::HEAD + self.len
    }
}

/// An admitted connection: holds its permit, enforces the handshake deadline and the idle timeout.
pub struct Guarded<IO> {
    io: IO,
    conn: Arc<Conn>,
    policy: Policy,
    name: &'static str,
    /// The client's handshake, until it is complete (`None` from the start without one to wait for).
    preface: Option<Preface>,
    /// The next deadline: the handshake's, then the idle timeout's.
    timer: Pin<Box<Sleep>>,
    /// Idle::NoBytes: the last read or write.
    last_io: Instant,
    closed: Option<Closed>,
    _permit: OwnedSemaphorePermit,
}

impl<IO> Guarded<IO> {
    fn new(io: IO, permit: OwnedSemaphorePermit, policy: Policy, name: &'static str) -> Guarded<IO> {
        let now = Instant::now();
        let first = now + policy.handshake_timeout.unwrap_or(policy.idle_timeout);
        metrics::connection_opened(name);
        Guarded {
            io,
            conn: Arc::new(Conn::new(policy.max_pending_response_bytes)),
            policy,
            name,
            preface: policy.handshake_timeout.map(|_| Preface::default()),
            timer: Box::pin(tokio::time::sleep_until(first)),
            last_io: now,
            closed: None,
            _permit: permit,
        }
    }

    /// Polls the timer; re-arms it while nothing is due.
    fn poll_due(&mut self, cx: &mut Context<'_>) -> Due {
        if let Some(c) = self.closed {
            return Due::Close(c);
        }
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Due::Nothing;
            }
            let now = Instant::now();
            if self.preface.is_some() {
                return Due::Close(Closed::Handshake);
            }
            let since = match self.policy.idle {
                Idle::NoOpenStream => self.conn.idle_since(),
                Idle::NoBytes => Some(self.last_io),
            };
            let next = match since {
                // Busy: look again one timeout from now (a stream's end cannot reach this timer).
                None => now + self.policy.idle_timeout,
                Some(t) if t + self.policy.idle_timeout <= now => return Due::Close(Closed::Idle),
                Some(t) => t + self.policy.idle_timeout,
            };
            self.timer.as_mut().reset(next);
        }
    }

    fn close(&mut self, why: Closed) {
        if self.closed.is_none() {
            self.closed = Some(why);
            metrics::connection_closed(self.name, why.label());
            tracing::debug!(listener = self.name, reason = why.label(), "closing a connection");
        }
    }

    /// Notes bytes read.
    fn on_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || (self.preface.is_none() && self.policy.idle == Idle::NoOpenStream) {
            return;
        }
        if let Some(p) = self.preface.as_mut() {
            p.advance(bytes);
            if p.done() {
                self.preface = None;
                // From the handshake deadline to the idle timeout (the next poll registers the timer).
                let idle_due = self.conn.origin + self.policy.idle_timeout;
                self.timer.as_mut().reset(idle_due);
            }
        }
        if self.policy.idle == Idle::NoBytes {
            self.last_io = Instant::now();
        }
    }

    /// Checks the deadlines before a write: a handshake that timed out, an admin connection idle too
    /// long (its client may not read what is written, so reads are not polled).
    fn check_write(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.preface.is_none() && self.policy.idle == Idle::NoOpenStream && self.closed.is_none() {
            return Ok(());
        }
        match self.poll_due(cx) {
            Due::Nothing => Ok(()),
            Due::Close(why) => {
                self.close(why);
                Err(closed_error(why, &self.policy))
            }
        }
    }

    fn on_write(&mut self, n: usize) {
        if n > 0 && self.policy.idle == Idle::NoBytes {
            self.last_io = Instant::now();
        }
    }
}

fn closed_error(why: Closed, policy: &Policy) -> io::Error {
    let message = match why {
        Closed::Handshake => {
            format!("no HTTP/2 preface and SETTINGS within {:?}", policy.handshake_timeout.unwrap_or_default())
        }
        Closed::Idle => format!("idle for {:?}", policy.idle_timeout),
    };
    io::Error::new(io::ErrorKind::TimedOut, message)
}

impl<IO> Drop for Guarded<IO> {
    fn drop(&mut self) {
        metrics::connection_dropped(self.name);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let due = this.poll_due(cx);
        let before = buf.filled().len();
        match due {
            Due::Nothing => {}
            Due::Close(Closed::Handshake) => {
                this.close(Closed::Handshake);
                return Poll::Ready(Err(closed_error(Closed::Handshake, &this.policy)));
            }
            Due::Close(Closed::Idle) if this.closed.is_some() => return Poll::Ready(Ok(())),
            Due::Close(Closed::Idle) => {
                // Due: close unless the client is sending right now.
                match Pin::new(&mut this.io).poll_read(cx, buf) {
                    Poll::Ready(Ok(())) if buf.filled().len() > before => {
                        this.timer.as_mut().reset(Instant::now() + IDLE_RECHECK);
                        this.on_read(buf.filled().get(before..).unwrap_or_default());
                        return Poll::Ready(Ok(()));
                    }
                    Poll::Pending => {
                        this.close(Closed::Idle);
                        // End of file: h2 and hyper end the connection.
                        return Poll::Ready(Ok(()));
                    }
                    other => return other,
                }
            }
        }
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.on_read(buf.filled().get(before..).unwrap_or_default());
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_write(cx)?;
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.on_write(n);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_write(cx)?;
        let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        this.on_write(n);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_write(cx)?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO> Connected for Guarded<IO>
where
    IO: Connected,
    IO::ConnectInfo: Into<Peer>,
{
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        ConnInfo { peer: self.io.connect_info().into(), conn: self.conn.clone() }
    }
}

// === the layer ===

/// Counts each call's stream open on its connection (see the module docs) until the response body is
/// dropped, and caps the answers a connection holds for a client that does not read them: past
/// `max_pending_response_bytes` of answers waiting on the connection's flow control, a new answer is
/// replaced by RESOURCE_EXHAUSTED. Inside [`layer::WireLayer`](super::layer::WireLayer), which counts
/// the call with the code the client gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackLayer;

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

/// The service of [`TrackLayer`].
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Track<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let guard = req.extensions_mut().remove::<ConnInfo>().map(|info| {
            match info.peer {
                Peer::Tcp(i) => req.extensions_mut().insert(i).map(drop),
                Peer::Uds(i) => req.extensions_mut().insert(i).map(drop),
            };
            info.conn.stream_opened()
        });
        TrackFuture { inner: self.inner.call(req), guard }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Track`].
    #[derive(Debug)]
    pub struct TrackFuture<F> {
        #[pin]
        inner: F,
        guard: Option<StreamGuard>,
    }
}

impl<F, E> Future for TrackFuture<F>
where
    F: Future<Output = Result<http::Response<tonic::body::Body>, E>>,
{
    type Output = Result<http::Response<tonic::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = ready!(this.inner.poll(cx))?;
        let Some(guard) = this.guard.take() else {
            return Poll::Ready(Ok(resp));
        };
        let conn = &guard.0;
        let pending = conn.pending.load(Ordering::Acquire);
        if pending >= conn.max_pending {
            // The answer is dropped here: a client that does not read gets nothing more to hold.
            drop(resp);
            metrics::answer_refused_unread();
            let status = tonic::Status::resource_exhausted(format!(
                "{pending} bytes of earlier answers on this connection are waiting for the client to read them \
                 (limit {})",
                conn.max_pending
            ));
            return Poll::Ready(Ok(status.into_http()));
        }
        Poll::Ready(Ok(resp.map(|body| tonic::body::Body::new(Tracked { inner: body, guard, pending: 0 }))))
    }
}

/// A response body that keeps its stream counted open, and counts the data it yielded as pending on
/// the connection until hyper polls it again (hyper polls a body for its next frame only once the
/// previous one is handed to h2, which may wait for the client's flow control).
#[derive(Debug)]
struct Tracked {
    inner: tonic::body::Body,
    guard: StreamGuard,
    /// Bytes of the last data frame, counted pending on the connection.
    pending: usize,
}

impl Tracked {
    fn release(&mut self) {
        if self.pending > 0 {
            self.guard.0.pending.fetch_sub(self.pending, Ordering::AcqRel);
            self.pending = 0;
        }
    }
}

impl Body for Tracked {
    type Data = <tonic::body::Body as Body>::Data;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.release();
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let n = data.len();
            self.pending = n;
            self.guard.0.pending.fetch_add(n, Ordering::AcqRel);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::{Preface, open_files_limit};

    #[test]
    fn open_files_limit_is_the_soft_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(open_files_limit(text), Some(1024));
        assert_eq!(open_files_limit(&text.replace("1024 ", "unlimited ")), None);
        assert_eq!(open_files_limit("nothing"), None);
    }

    #[test]
    fn preface_is_magic_then_one_settings_frame() {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend_from_slice(&[0, 0, 12, 4, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0; 12]);
        // Whole, and byte by byte.
        let mut p = Preface::default();
        p.advance(&bytes);
        assert!(p.done());
        let mut p = Preface::default();
        for (i, b) in bytes.iter().enumerate() {
            assert!(!p.done(), "done after {i} bytes");
            p.advance(std::slice::from_ref(b));
        }
        assert!(p.done());
        assert_eq!(p.len, 12);
        // An empty SETTINGS frame.
        let mut p = Preface::default();
        p.advance(&bytes[..24]);
        p.advance(&[0, 0, 0, 4, 0, 0, 0, 0]);
        assert!(!p.done());
        p.advance(&[0]);
        assert!(p.done());
    }
}
