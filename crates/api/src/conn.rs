//! The accept loop of `vnet serve`: every connection is bounded in time and in number, so idle,
//! slow or silent clients cannot hold the server's file descriptors or block other clients.
//!
//! Why our own loop rather than `axum::serve`: axum's loop never closes an idle or slow
//! connection and accepts without limit, so 200 slow-loris clients stayed open for ever and
//! ~20,000 idle TLS connections exhausted the descriptors. Here:
//!
//! - **TLS handshake timeout** (`--tls-handshake-timeout`): from accept to a finished handshake.
//! - **Header timeout** (`--header-timeout`): a request head must be complete this long after
//!   the connection is ready (first request) or after its first byte arrived (later requests).
//!   Slow-loris clients, which trickle a head byte by byte, are closed when it expires.
//! - **Idle timeout** (`--idle-timeout`): a kept-alive connection with no request in progress
//!   and no bytes arriving is closed after this long.
//! - **Body timeout** (`--body-timeout`): a request body must arrive whole within this long of
//!   its head ([`crate::audit`] answers 408 otherwise), so slow uploads are bounded too.
//! - **Connection cap** (`--max-connections`): at most this many connections are served at
//!   once, always below the descriptor limit (see [`connection_cap`]). When the cap is reached,
//!   the server keeps accepting and makes room by closing idle connections: first those that
//!   never carried a request (what idle and slow-loris floods are made of), then those idle the
//!   longest; a connection in the middle of a request is never closed for room. A connection
//!   accepted at the cap waits (first come, first served, at most 2 s) for a freed slot, and at
//!   most a quarter of the cap may wait (the descriptors above the cap allow it); beyond that, or
//!   when every connection is busy, a new connection is closed at once. Refusing to accept
//!   instead would let a flood of idle connections lock every new client out until the
//!   timeouts ran, and accepting without a cap is what ran the descriptors out.
//!
//! Only HTTP/1.1 is served (the TLS ALPN offers `http/1.1` alone, and an HTTP/2 preface is
//! refused by the HTTP/1 parser): ARM clients speak HTTP/1.1, and not serving HTTP/2 removes its
//! attack surface (stream floods, rapid reset) rather than tuning limits on it.
//!
//! Every request carries the peer's address as `axum::extract::ConnectInfo<SocketAddr>` (the
//! token endpoint's rate limiting reads it).
//!
//! Shutdown ([`run`]'s `shutdown` future): the listener is closed at once, connections finish the
//! request in progress (idle ones close), and after the grace period whatever is left is cut.

use crate::audit::Audit;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio_rustls::TlsAcceptor;

/// Time and number limits on connections (the `vnet serve` options of the same names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    pub tls_handshake_timeout: Duration,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    /// `None`: derived from the descriptor limit ([`connection_cap`]).
    pub max_connections: Option<usize>,
    /// How long in-flight requests may take to finish once shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            tls_handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: None,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Descriptors kept out of the connection cap for everything else the process opens: the two
/// SQLite databases with their WAL and shared-memory files, certificates, the agent's devices
/// and namespaces, logs, the listener, and sockets made while handling requests.
pub const FD_RESERVE: u64 = 256;

/// The default cap never exceeds this, whatever the descriptor limit: each open connection
/// holds buffers (hyper's read buffer, rustls' records; tens of KiB), and a control plane
/// has no use for more simultaneous clients.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (so the cap can be as high as the operator
/// allowed) and returns the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
    }
    r.rlim_cur
}

/// The cap on concurrent connections for a descriptor limit `nofile`: three quarters of what is
/// left after [`FD_RESERVE`] (so accepting one more, or a burst of them while room is made,
/// never runs the process out of descriptors), at most [`DEFAULT_MAX_CONNECTIONS`] unless the
/// operator asks for more, and never more than the descriptor bound.
pub fn connection_cap(nofile: u64, requested: Option<usize>) -> usize {
    let by_fd = (nofile.saturating_sub(FD_RESERVE) / 4 * 3).clamp(8, u32::MAX as u64) as usize;
    match requested {
        Some(n) => n.clamp(1, by_fd),
        None => by_fd.min(DEFAULT_MAX_CONNECTIONS),
    }
}

/// What [`run`] reports when it returns.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Connections open when shutdown began.
    pub open_at_shutdown: usize,
    /// Connections still open when the grace period ran out (cut).
    pub cut: usize,
}

/// Milliseconds on the registry's clock (no value means "none").
const NONE: u64 = u64::MAX;

/// What the accept loop knows of one connection, shared with its task.
struct ConnState {
    /// Requests being handled (HTTP/1.1: 0 or 1).
    busy: AtomicU32,
    /// Last progress: ready, request start or end, bytes written to the client.
    last_active: AtomicU64,
    /// When the head of the next request began (first byte, or the connection being ready for
    /// the first request); `NONE` while no head is pending.
    head_since: AtomicU64,
    /// Told to close (room is needed under the cap).
    evict: Notify,
    /// Already told to close (not to be counted again while it goes).
    evicting: AtomicBool,
    /// Requests served so far: connections that never carried one are closed first.
    served: AtomicU32,
    /// Told that a deadline moved (a request ended, or the next head began), so the task's
    /// watchdog recomputes it.
    changed: Notify,
}

struct Registry {
    epoch: Instant,
    next: AtomicU64,
    /// Connections told to close that have not closed yet: the slots about to be freed.
    evicting: AtomicUsize,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Registry {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn register(&self) -> (u64, Arc<ConnState>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        let st = Arc::new(ConnState {
            busy: AtomicU32::new(0),
            last_active: AtomicU64::new(now),
            head_since: AtomicU64::new(NONE),
            evict: Notify::new(),
            evicting: AtomicBool::new(false),
            served: AtomicU32::new(0),
            changed: Notify::new(),
        });
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, st.clone());
        (id, st)
    }

    fn unregister(&self, id: u64) {
        let gone = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(st) = gone {
            self.not_evicting(&st);
        }
    }

    /// A connection told to close has closed (or began a request and stays).
    fn not_evicting(&self, st: &ConnState) {
        if st.evicting.swap(false, Ordering::Relaxed) {
            self.evicting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Tells up to `n` connections without a request in progress to close — first those that
    /// never carried a request (what idle and slow-loris floods are made of), then those idle
    /// the longest — and returns how many were told.
    fn evict_idle(&self, n: usize) -> usize {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let mut idle: Vec<((bool, u64), &Arc<ConnState>)> = conns
            .values()
            .filter(|c| c.busy.load(Ordering::Relaxed) == 0 && !c.evicting.load(Ordering::Relaxed))
            .map(|c| {
                let served = c.served.load(Ordering::Relaxed) > 0;
                ((served, c.last_active.load(Ordering::Relaxed)), c)
            })
            .collect();
        let n = n.min(idle.len());
        if n == 0 {
            return 0;
        }
        if n < idle.len() {
            idle.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
        }
        for (_, c) in &idle[..n] {
            c.evicting.store(true, Ordering::Relaxed);
            self.evicting.fetch_add(1, Ordering::Relaxed);
            // notify_one stores a permit, so a task not waiting yet still sees it.
            c.evict.notify_one();
        }
        n
    }
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Registered {
    reg: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.reg.unregister(self.id);
    }
}

/// A socket that tells its [`ConnState`] when bytes move: a read while no request is in
/// progress starts the header timer; a write is progress (a client reading its answer).
struct Tracked<T> {
    inner: T,
    st: Arc<ConnState>,
    reg: Arc<Registry>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let st = &self.st;
            if st.busy.load(Ordering::Relaxed) == 0 && st.head_since.load(Ordering::Relaxed) == NONE
            {
                st.head_since.store(self.reg.now(), Ordering::Relaxed);
                st.changed.notify_one();
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.st.last_active.store(self.reg.now(), Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The phases of shutdown, sent to every connection task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    /// Finish the request in progress, then close.
    Draining,
    /// The grace period is over: close now.
    Cut,
}

/// Accepts connections on `listener` (TLS when `tls` is given) and serves `router` on them until
/// `shutdown` completes; then drains (see the module documentation) and returns.
pub async fn run<F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: axum::Router,
    audit: Arc<Audit>,
    limits: ConnLimits,
    cap: usize,
    shutdown: F,
) -> Summary
where
    F: Future<Output = ()>,
{
    let cap = cap.clamp(1, u32::MAX as usize);
    let reg = Arc::new(Registry {
        epoch: Instant::now(),
        next: AtomicU64::new(0),
        evicting: AtomicUsize::new(0),
        conns: Mutex::new(HashMap::new()),
    });
    let slots = Arc::new(Semaphore::new(cap));
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let limits = Arc::new(limits);
    let mut last_full_warning: Option<Instant> = None;
    // Accepted sockets waiting for a slot, at most `headroom` (a quarter of the cap: the
    // descriptors above the cap allow it), and evictions not yet matched by a waiter.
    let waiting = Arc::new(AtomicUsize::new(0));
    let headroom = (cap / 4).max(1);
    let batch = cap / 16 + 1;
    tokio::pin!(shutdown);
    loop {
        let (sock, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // A slot now, or a place in the (bounded) queue for the next one freed.
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                if waiting.load(Ordering::Relaxed) >= headroom {
                    tracing::debug!(%peer, "connection refused: the cap is reached and room is not being made fast enough");
                    drop(sock);
                    continue;
                }
                // Full: close idle connections, a batch at a time so a flood does not make
                // every accept scan the registry, whenever the waiters outnumber the slots
                // already being freed.
                let wanted = waiting.load(Ordering::Relaxed) + 1;
                let freeing = reg.evicting.load(Ordering::Relaxed);
                if wanted > freeing {
                    let told = reg.evict_idle(batch.max(wanted - freeing));
                    let warn =
                        last_full_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
                    if warn {
                        last_full_warning = Some(Instant::now());
                        tracing::warn!(
                            cap,
                            closing_idle = told,
                            "connection cap reached: closing the longest-idle connections"
                        );
                    }
                    if told == 0 && freeing == 0 {
                        tracing::debug!(%peer, "connection refused: every connection is busy");
                        drop(sock);
                        continue;
                    }
                }
                waiting.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        let _ = sock.set_nodelay(true);
        let reg_t = reg.clone();
        let (limits_t, router_t, audit_t, phase_t) = (
            limits.clone(),
            router.clone(),
            audit.clone(),
            phase_rx.clone(),
        );
        let tls = tls.clone();
        let slots_w = slots.clone();
        let waiting_w = waiting.clone();
        tokio::spawn(async move {
            let _slot = match permit {
                Some(p) => p,
                None => {
                    // Waits for an evicted connection's slot (the semaphore is first come, first
                    // served); the socket is not served, nor registered, before it has one.
                    let r =
                        tokio::time::timeout(Duration::from_secs(2), slots_w.acquire_owned()).await;
                    waiting_w.fetch_sub(1, Ordering::Relaxed);
                    match r {
                        Ok(Ok(p)) => p,
                        _ => return,
                    }
                }
            };
            let (id, st) = reg_t.register();
            let _registered = Registered {
                reg: reg_t.clone(),
                id,
            };
            let task = Connection {
                reg: reg_t,
                st,
                peer,
                limits: limits_t,
                router: router_t,
                audit: audit_t,
                phase: phase_t,
            };
            task.serve(sock, tls).await;
        });
    }
    // Stop accepting: from here on the port refuses connections.
    drop(listener);
    let open = cap - slots.available_permits();
    let _ = phase_tx.send(Phase::Draining);
    let all = cap as u32;
    let drained = tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all))
        .await
        .is_ok();
    let mut cut = 0;
    if !drained {
        cut = cap - slots.available_permits();
        let _ = phase_tx.send(Phase::Cut);
        // Let the tasks see it and close their sockets.
        let _ = tokio::time::timeout(Duration::from_secs(1), slots.acquire_many(all)).await;
    }
    Summary {
        open_at_shutdown: open,
        cut,
    }
}

/// One connection's task.
struct Connection {
    reg: Arc<Registry>,
    st: Arc<ConnState>,
    peer: SocketAddr,
    limits: Arc<ConnLimits>,
    router: axum::Router,
    audit: Arc<Audit>,
    phase: watch::Receiver<Phase>,
}

impl Connection {
    async fn serve(mut self, sock: TcpStream, tls: Option<TlsAcceptor>) {
        let io = Tracked {
            inner: sock,
            st: self.st.clone(),
            reg: self.reg.clone(),
        };
        match tls {
            None => self.http(io).await,
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(self.limits.tls_handshake_timeout, acceptor.accept(io));
                let peer = self.peer;
                let stream = tokio::select! {
                    r = handshake => match r {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    },
                    _ = self.st.evict.notified() => return,
                    _ = self.phase.wait_for(|p| *p != Phase::Running) => return,
                };
                self.http(stream).await
            }
        }
    }

    /// Serves HTTP/1.1 on a ready stream, closing it when a deadline passes.
    async fn http<I>(&mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let st = self.st.clone();
        let reg = self.reg.clone();
        let now = reg.now();
        st.last_active.store(now, Ordering::Relaxed);
        st.head_since.store(now, Ordering::Relaxed);
        let peer = self.peer;
        let router = self.router.clone();
        let audit = self.audit.clone();
        let body_timeout = self.limits.body_timeout;
        let svc_st = st.clone();
        let svc_reg = reg.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let busy = Busy::begin(svc_st.clone(), svc_reg.clone());
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            let audit = audit.clone();
            async move {
                let _busy = busy;
                let deadline = tokio::time::Instant::now() + body_timeout;
                Ok::<_, Infallible>(audit.handle(req, router, Some(deadline)).await)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            // Our own header deadline (below) is the one that counts; hyper's is a backstop
            // for pipelined requests, whose bytes arrive while another request is in progress.
            .header_read_timeout(self.limits.header_timeout + self.limits.idle_timeout)
            .max_buf_size(64 * 1024)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let limits = self.limits.clone();
        let mut phase = self.phase.clone();
        if *phase.borrow_and_update() != Phase::Running {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            let (deadline, _) = next_deadline(&st, &reg, &limits);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if let (d, Some(why)) = next_deadline(&st, &reg, &limits) {
                        if d <= tokio::time::Instant::now() {
                            tracing::debug!(%peer, reason = why, "closing connection");
                            return;
                        }
                    }
                }
                _ = st.changed.notified() => {}
                _ = st.evict.notified() => {
                    if st.busy.load(Ordering::Relaxed) == 0 {
                        tracing::debug!(%peer, "closing idle connection to make room under the connection cap");
                        return;
                    }
                    // A request began meanwhile: it stays, and may be chosen again later.
                    reg.not_evicting(&st);
                }
                r = phase.changed() => {
                    let now = if r.is_ok() { *phase.borrow_and_update() } else { Phase::Cut };
                    match now {
                        Phase::Running => {}
                        Phase::Draining => conn.as_mut().graceful_shutdown(),
                        Phase::Cut => return,
                    }
                }
            }
        }
    }
}

/// When a connection must next be looked at, and what closes it then (`None`: a request is in
/// progress, whose body has its own deadline; look again later).
fn next_deadline(
    st: &ConnState,
    reg: &Registry,
    limits: &ConnLimits,
) -> (tokio::time::Instant, Option<&'static str>) {
    let now_ms = reg.now();
    let now = tokio::time::Instant::now();
    let at = |ms: u64| now + Duration::from_millis(ms.saturating_sub(now_ms));
    if st.busy.load(Ordering::Relaxed) > 0 {
        return (now + limits.idle_timeout, None);
    }
    let head = st.head_since.load(Ordering::Relaxed);
    if head != NONE {
        let due = head.saturating_add(limits.header_timeout.as_millis() as u64);
        return (
            at(due),
            Some("request head not received within the header timeout"),
        );
    }
    let due = st
        .last_active
        .load(Ordering::Relaxed)
        .saturating_add(limits.idle_timeout.as_millis() as u64);
    (at(due), Some("idle timeout"))
}

/// A request in progress on a connection: counted from the service call to the response (also
/// if the response future is dropped).
struct Busy {
    st: Arc<ConnState>,
    reg: Arc<Registry>,
}

impl Busy {
    fn begin(st: Arc<ConnState>, reg: Arc<Registry>) -> Busy {
        st.busy.fetch_add(1, Ordering::Relaxed);
        st.served.fetch_add(1, Ordering::Relaxed);
        st.head_since.store(NONE, Ordering::Relaxed);
        st.last_active.store(reg.now(), Ordering::Relaxed);
        Busy { st, reg }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.st.last_active.store(self.reg.now(), Ordering::Relaxed);
        self.st.busy.fetch_sub(1, Ordering::Relaxed);
        self.st.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_stays_below_the_descriptor_limit() {
        assert_eq!(connection_cap(1024, None), 576);
        assert_eq!(connection_cap(1_048_576, None), DEFAULT_MAX_CONNECTIONS);
        // An operator's cap is honoured, but never beyond what the descriptors allow.
        assert_eq!(connection_cap(1_048_576, Some(50_000)), 50_000);
        assert_eq!(connection_cap(1024, Some(50_000)), 576);
        assert_eq!(connection_cap(0, None), 8);
        assert_eq!(connection_cap(1024, Some(0)), 1);
    }

    #[test]
    fn eviction_picks_the_longest_idle_and_spares_busy_ones() {
        let reg = Registry {
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            evicting: AtomicUsize::new(0),
            conns: Mutex::new(HashMap::new()),
        };
        let mut states = vec![];
        for t in [50u64, 10, 30, 20, 40] {
            let (_, st) = reg.register();
            st.last_active.store(t, Ordering::Relaxed);
            states.push(st);
        }
        // The longest idle (10) is busy: it is spared. The one at 20 has served requests: it
        // goes after those that never did (30, 40, 50).
        states[1].busy.store(1, Ordering::Relaxed);
        states[3].served.store(3, Ordering::Relaxed);
        assert_eq!(reg.evict_idle(2), 2);
        let told: Vec<bool> = states
            .iter()
            .map(|s| {
                let n = s.evict.notified();
                tokio::pin!(n);
                // A stored permit makes the future ready at once.
                let waker = futures_noop_waker();
                let mut cx = Context::from_waker(&waker);
                n.as_mut().poll(&mut cx).is_ready()
            })
            .collect();
        assert_eq!(told, vec![false, false, true, false, true]);
        // Those already told are not counted again.
        assert_eq!(reg.evict_idle(10), 2);
    }

    fn futures_noop_waker() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }
}
