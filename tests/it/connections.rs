//! Bounds on connections (SPEC §7, §8 "Bounds under attack"), each against the real server started in
//! process with one limit shortened: `--max-connections`, the 10 s handshake deadline, `--idle-timeout`,
//! HTTP/2 keep-alive, and the streams a client that never reads can hold. Every test also checks that a
//! well-behaved client keeps being answered meanwhile. Raw TCP and raw HTTP/2 (the `h2` crate) play the
//! misbehaving clients; the generated tonic client plays the well-behaved one.
use crate::support::{self, http_get, parse_prometheus, sample_sum};
use prost::Message as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::codegen::{Bytes, http};
use tonic::transport::{Channel, Endpoint};
use warden::config::{ConnectionLimits, ServeConfig};
use warden::proto::{self, Decision, authorizer_client::AuthorizerClient};
use warden::server::{Options, Running};

const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1";
const PRESIGN: &str = "sagemaker:CreatePartnerAppPresignedUrl";
const COMET_APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001";
const AUTHORIZE: &str = "/warden.v1.Authorizer/Authorize";
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Every test body runs within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Waits for a connection, an answer, a close that must happen.
const WAIT: Duration = Duration::from_secs(15);

async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body).await.unwrap_or_else(|_| panic!("the test took over {TEST_TIMEOUT:?}"));
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

// === the server under test ===

/// A server on `127.0.0.1:0`, a Unix socket and admin `127.0.0.1:0`, bundle `policies/`, with `limits`.
struct Server {
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(limits: ConnectionLimits) -> Server {
        let dir = support::temp_dir();
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let socket = dir.path().join("warden.sock");
        let mut config = ServeConfig::from_flags(
            Some(policies.to_str().expect("a UTF-8 path")),
            Some("127.0.0.1:0"),
            Some(socket.to_str().expect("a UTF-8 path")),
            Some("127.0.0.1:0"),
            Some(2_000),
        )
        .expect("valid flags");
        config.connections = limits;
        let running = within("Running::start", Running::start(&config, Options::default()))
            .await
            .unwrap_or_else(|e| panic!("Running::start: {e:#}"));
        let store = running.store.clone();
        within("the bundle to become active", async {
            while store.load().is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        Server { running: Some(running), _dir: dir }
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("the server is running")
    }

    fn grpc(&self) -> SocketAddr {
        self.running().grpc_addr.expect("a TCP listener")
    }

    fn uds(&self) -> PathBuf {
        self.running().uds.clone().expect("a Unix socket")
    }

    fn admin(&self) -> SocketAddr {
        self.running().admin_addr.expect("an admin listener")
    }

    async fn client(&self) -> AuthorizerClient<Channel> {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.grpc())).expect("endpoint");
        AuthorizerClient::new(within("connect over TCP", endpoint.connect()).await.expect("connect"))
    }

    async fn uds_client(&self) -> AuthorizerClient<Channel> {
        let path = self.uds();
        let endpoint = Endpoint::try_from("http://[::]:50051").expect("endpoint");
        let connect = endpoint.connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }));
        AuthorizerClient::new(within("connect over the Unix socket", connect).await.expect("connect"))
    }

    async fn closed_total(&self, listener: &str, reason: &str) -> f64 {
        let answer = http_get(self.admin(), "/metrics").await;
        assert_eq!(answer.status, 200, "GET /metrics: {answer:?}");
        sample_sum(
            &parse_prometheus(&answer.body),
            "warden_connections_closed_total",
            &[("listener", listener), ("reason", reason)],
        )
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            // Connections a test left open may hold the drain: the grace period bounds it.
            within("shutdown", r.shutdown()).await;
        }
    }
}

fn limits() -> ConnectionLimits {
    ConnectionLimits::default()
}

fn allow_request(explain: bool) -> proto::AuthorizeRequest {
    let context: pbjson_types::Struct = [(
        "aws:SourceIp".to_owned(),
        pbjson_types::Value { kind: Some(pbjson_types::value::Kind::StringValue("10.100.10.7".to_owned())) },
    )]
    .into_iter()
    .collect();
    proto::AuthorizeRequest {
        principal: Some(proto::Principal { arn: ALICE.to_owned(), ..proto::Principal::default() }),
        action: PRESIGN.to_owned(),
        resource: COMET_APP.to_owned(),
        context: Some(context),
        explain,
        ..proto::AuthorizeRequest::default()
    }
}

/// One well-behaved call: ALLOW, and how long it took.
async fn call(client: &mut AuthorizerClient<Channel>) -> Duration {
    let start = Instant::now();
    let r = within("a well-behaved call", client.authorize(allow_request(false)))
        .await
        .unwrap_or_else(|s| panic!("a well-behaved call failed: {s:?}"))
        .into_inner();
    assert_eq!(r.decision(), Decision::Allow, "{r:?}");
    start.elapsed()
}

/// `GET /readyz` every few ms until stopped; counts the answers, panics on one that is not 200.
struct ReadyzPoller {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

impl ReadyzPoller {
    fn start(admin: SocketAddr) -> ReadyzPoller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                let a = http_get(admin, "/readyz").await;
                assert_eq!(a.status, 200, "/readyz while gRPC is under attack: {a:?}");
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            n
        });
        ReadyzPoller { stop, task }
    }

    async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        within("the /readyz poller", self.task).await.expect("/readyz always answered 200")
    }
}

// === raw connections ===

/// How a raw connection ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The server sent its SETTINGS: it is serving the connection.
    Served,
    /// End of file or reset.
    Closed,
    /// Nothing within the wait.
    Silent,
}

/// Reads until the server's first frame, end of file, or `wait`.
async fn fate(s: &mut TcpStream, wait: Duration) -> Fate {
    let mut head = [0u8; 9];
    match tokio::time::timeout(wait, s.read_exact(&mut head)).await {
        Err(_) => Fate::Silent,
        Ok(Err(_)) => Fate::Closed,
        // The server's preface is a SETTINGS frame (type 4).
        Ok(Ok(_)) if head[3] == 4 => Fate::Served,
        Ok(Ok(_)) => panic!("the server's first frame is not SETTINGS: {head:?}"),
    }
}

/// Reads (and drops) everything until end of file or reset; how long that took, or `None` after `wait`.
async fn time_to_close(s: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let start = Instant::now();
    let drain = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(wait, drain).await.ok().map(|()| start.elapsed())
}

/// A TCP connection that sent the client preface (magic and an empty SETTINGS frame).
async fn raw_h2(addr: SocketAddr) -> TcpStream {
    let mut s = within("connect", TcpStream::connect(addr)).await.expect("connect");
    // A connection closed at accept may already refuse the bytes: its fate says so.
    let _ = s.write_all(&[PREFACE, EMPTY_SETTINGS].concat()).await;
    s
}

/// An HTTP/2 client (the `h2` crate) whose connection is driven by a task: it answers PINGs and
/// SETTINGS, and only sends WINDOW_UPDATEs for response data the test reads.
struct H2 {
    send: h2::client::SendRequest<Bytes>,
    conn: tokio::task::JoinHandle<Result<(), h2::Error>>,
}

impl H2 {
    async fn connect(addr: SocketAddr) -> H2 {
        let tcp = within("connect", TcpStream::connect(addr)).await.expect("connect");
        let (send, conn) = within("h2 handshake", h2::client::handshake(tcp)).await.expect("h2 handshake");
        H2 { send, conn: tokio::spawn(conn) }
    }

    /// Opens a call to `path` (once the server allows one more stream) and sends `body`; `end` ends the
    /// request.
    async fn open(
        &mut self,
        path: &str,
        body: Bytes,
        end: bool,
    ) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
        within("a stream slot", std::future::poll_fn(|cx| self.send.poll_ready(cx)))
            .await
            .expect("the connection is open");
        let req = http::Request::post(format!("http://127.0.0.1{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("a request");
        let (resp, mut stream) = self.send.send_request(req, false).expect("send the request headers");
        stream.send_data(body, end).expect("send the request body");
        (resp, stream)
    }

    /// Whether the server ended the connection within `wait`.
    async fn closed_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, &mut self.conn).await.is_ok()
    }
}

/// A gRPC message frame.
fn grpc_frame(msg: &impl prost::Message) -> Bytes {
    let body = msg.encode_to_vec();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&u32::try_from(body.len()).expect("a small message").to_be_bytes());
    out.extend_from_slice(&body);
    Bytes::from(out)
}

/// Reads a whole answer; the `grpc-status` of its trailers.
async fn finish(resp: h2::client::ResponseFuture) -> String {
    let resp = within("the answer headers", resp).await.expect("an answer");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    while let Some(chunk) = within("the answer body", body.data()).await {
        let chunk = chunk.expect("body data");
        body.flow_control().release_capacity(chunk.len()).expect("release capacity");
    }
    let trailers = within("the trailers", body.trailers()).await.expect("trailers").expect("trailers present");
    trailers.get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned()
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let i = (samples.len() * 99).div_ceil(100).saturating_sub(1);
    samples[i]
}

// === the tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_closes_the_extra_ones_at_accept_and_admits_again_when_some_leave() {
    bounded(async {
        let server = Server::start(ConnectionLimits { max_connections: 50, ..limits() }).await;
        let addr = server.grpc();
        let refused_before = server.closed_total("grpc_tcp", "over_limit").await;
        // A well-behaved client connected first: 1 of the 50.
        let mut client = server.client().await;
        call(&mut client).await;
        let readyz = ReadyzPoller::start(server.admin());

        let mut conns = Vec::new();
        for _ in 0..59 {
            conns.push(raw_h2(addr).await);
        }
        let mut served = Vec::new();
        let mut closed = 0;
        for mut c in conns {
            let start = Instant::now();
            match fate(&mut c, Duration::from_secs(5)).await {
                Fate::Served => served.push(c),
                Fate::Closed => {
                    closed += 1;
                    assert!(start.elapsed() < Duration::from_secs(2), "refused only after {:?}", start.elapsed());
                }
                Fate::Silent => panic!("a connection was neither served nor closed within 5 s"),
            }
        }
        assert_eq!((served.len(), closed), (49, 10), "49 raw + the client = 50 served, 10 closed");
        // Meanwhile the connected client is answered, and so are /readyz (the admin listener's own pool)
        // and the Unix socket (its own pool).
        call(&mut client).await;
        assert_eq!(http_get(server.admin(), "/readyz").await.status, 200);
        call(&mut server.uds_client().await).await;
        // And a new one is refused.
        assert_eq!(fate(&mut raw_h2(addr).await, WAIT).await, Fate::Closed);

        // Five leave: five new ones are served (once the server has seen them go), then no more.
        served.truncate(served.len() - 5);
        for i in 0..5 {
            within("a freed slot to be admitted", async {
                loop {
                    let mut c = raw_h2(addr).await;
                    if fate(&mut c, WAIT).await == Fate::Served {
                        served.push(c);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
            assert_eq!(served.len(), 44 + i + 1);
        }
        assert_eq!(fate(&mut raw_h2(addr).await, WAIT).await, Fate::Closed, "the limit still holds");
        call(&mut client).await;
        let refused = server.closed_total("grpc_tcp", "over_limit").await - refused_before;
        assert!(refused >= 12.0, "refusals counted: {refused}");
        let polls = readyz.finish().await;
        assert!(polls >= 1, "/readyz answered {polls} times");
        drop(served);
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listener_has_its_own_limit_and_closes_idle_connections() {
    bounded(async {
        let idle = Duration::from_secs(1);
        let server =
            Server::start(ConnectionLimits { admin_max_connections: 4, admin_idle_timeout: idle, ..limits() }).await;
        let before =
            (server.closed_total("admin", "over_limit").await, server.closed_total("admin", "idle_timeout").await);
        // Four silent admin connections take every slot; a fifth is closed at once, long before the idle
        // timeout.
        let mut silent = Vec::new();
        for _ in 0..4 {
            silent.push(within("connect", TcpStream::connect(server.admin())).await.expect("connect"));
        }
        let start = Instant::now();
        let mut fifth = within("connect", TcpStream::connect(server.admin())).await.expect("connect");
        let t = time_to_close(&mut fifth, idle).await;
        assert!(t.is_some(), "a fifth admin connection is closed at accept");
        assert!(start.elapsed() < idle / 2, "closed only after {:?}", start.elapsed());
        // gRPC is not affected.
        call(&mut server.client().await).await;
        // The silent ones are closed after the admin idle timeout, and /readyz answers again.
        for s in &mut silent {
            time_to_close(s, WAIT).await.expect("an idle admin connection is closed");
            let t = start.elapsed();
            assert!(t >= idle - Duration::from_millis(100) && t < idle * 3, "closed after {t:?}");
        }
        assert_eq!(http_get(server.admin(), "/readyz").await.status, 200);
        let after =
            (server.closed_total("admin", "over_limit").await, server.closed_total("admin", "idle_timeout").await);
        assert!(after.0 >= before.0 + 1.0 && after.1 >= before.1 + 4.0, "closes counted: {before:?} -> {after:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_timeout_closes_a_connection_that_does_not_send_the_preface() {
    bounded(async {
        let timeout = Duration::from_millis(300);
        let server = Server::start(ConnectionLimits { handshake_timeout: timeout, ..limits() }).await;
        let addr = server.grpc();
        let mut client = server.client().await;

        // Sends nothing.
        let start = Instant::now();
        let mut silent = within("connect", TcpStream::connect(addr)).await.expect("connect");
        time_to_close(&mut silent, WAIT).await.expect("a silent connection is closed");
        let t = start.elapsed();
        assert!(t >= timeout - Duration::from_millis(50) && t < Duration::from_secs(3), "closed after {t:?}");

        // Trickles the preface, one byte every 50 ms: the deadline is on the whole handshake.
        let mut slow = within("connect", TcpStream::connect(addr)).await.expect("connect");
        let start = Instant::now();
        let closed_in_time = async {
            for b in PREFACE {
                if slow.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            time_to_close(&mut slow, WAIT).await
        };
        closed_in_time.await.expect("a slow handshake is cut");
        let t = start.elapsed();
        assert!(t < Duration::from_millis(50) * PREFACE.len() as u32, "closed only after {t:?}");

        // A connection past its handshake stays, well beyond the deadline, and is answered.
        let mut h2 = H2::connect(addr).await;
        tokio::time::sleep(timeout * 4).await;
        assert!(!h2.conn.is_finished(), "a connection that completed its handshake was closed");
        let (resp, _) = h2.open(AUTHORIZE, grpc_frame(&allow_request(false)), true).await;
        assert_eq!(finish(resp).await, "0");
        call(&mut client).await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_a_connection_without_open_streams_only() {
    bounded(async {
        let idle = Duration::from_millis(300);
        let server = Server::start(ConnectionLimits { idle_timeout: idle, ..limits() }).await;
        let addr = server.grpc();
        let closed_before = server.closed_total("grpc_tcp", "idle_timeout").await;

        // One call, then nothing: closed about `idle` after the call ended.
        let mut quiet = H2::connect(addr).await;
        let (resp, _) = quiet.open(AUTHORIZE, grpc_frame(&allow_request(false)), true).await;
        assert_eq!(finish(resp).await, "0");
        let start = Instant::now();
        assert!(quiet.closed_within(WAIT).await, "an idle connection is closed");
        let t = start.elapsed();
        assert!(t >= idle - Duration::from_millis(50) && t < Duration::from_secs(3), "closed after {t:?}");

        // A stream open for 4 idle timeouts (its request not finished) keeps the connection.
        let mut busy = H2::connect(addr).await;
        let frame = grpc_frame(&allow_request(false));
        let (head, tail) = frame.split_at(10);
        let (resp, mut stream) = busy.open(AUTHORIZE, Bytes::copy_from_slice(head), false).await;
        assert!(!busy.closed_within(idle * 4).await, "a connection with an open stream was closed as idle");
        stream.send_data(Bytes::copy_from_slice(tail), true).expect("finish the request");
        assert_eq!(finish(resp).await, "0");
        // Then, idle, it goes too.
        assert!(busy.closed_within(WAIT).await, "the connection is closed once idle");

        // A client that keeps calling is never idle; the tonic client reconnects after an idle close.
        let mut client = server.client().await;
        for _ in 0..10 {
            call(&mut client).await;
            tokio::time::sleep(idle / 3).await;
        }
        tokio::time::sleep(idle * 3).await;
        call(&mut client).await;
        let closed = server.closed_total("grpc_tcp", "idle_timeout").await - closed_before;
        assert!(closed >= 3.0, "idle closes counted: {closed}");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_closes_a_connection_whose_peer_does_not_answer_pings() {
    bounded(async {
        let server = Server::start(ConnectionLimits {
            keepalive_interval: Duration::from_millis(200),
            keepalive_timeout: Duration::from_millis(200),
            ..limits()
        })
        .await;
        let addr = server.grpc();
        // Completes the handshake, then reads nothing and acknowledges nothing.
        let mut dead = raw_h2(addr).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t = time_to_close(&mut dead, Duration::from_millis(500)).await;
        assert!(t.is_some(), "a peer that does not answer PINGs is disconnected");
        // A peer whose connection answers PINGs stays and is answered.
        let mut live = H2::connect(addr).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!live.conn.is_finished(), "a live idle peer was disconnected");
        let (resp, _) = live.open(AUTHORIZE, grpc_frame(&allow_request(false)), true).await;
        assert_eq!(finish(resp).await, "0");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_hold_bounded_memory_and_others_keep_their_latency() {
    bounded(async {
        // 1 MiB instead of 4 MiB: the same bound with fewer calls (a debug build evaluates slowly).
        let max_pending = 1 << 20;
        let server = Server::start(ConnectionLimits { max_pending_response_bytes: max_pending, ..limits() }).await;
        let addr = server.grpc();
        let max_streams = limits().max_concurrent_streams as usize;
        let mut client = server.client().await;
        // The largest ordinary answer: a batch of 100 explained decisions, about 84 KB.
        let batch = proto::AuthorizeBatchRequest { requests: vec![allow_request(true); 100] };
        let start = Instant::now();
        let answer_len = client.authorize_batch(batch.clone()).await.expect("a batch").into_inner().encoded_len();
        let batch_time = start.elapsed();
        let body = grpc_frame(&batch);
        let mut attackers = Vec::new();
        for _ in 0..8 {
            let mut h2 = H2::connect(addr).await;
            let (resp, _) = h2.open(AUTHORIZE, grpc_frame(&allow_request(false)), true).await;
            assert_eq!(finish(resp).await, "0");
            assert_eq!(h2.send.current_max_send_streams(), max_streams, "SETTINGS_MAX_CONCURRENT_STREAMS");
            attackers.push((h2, Vec::new()));
        }
        for _ in 0..50 {
            call(&mut client).await;
        }
        let rss_before = vm_rss_kib();

        // 8 clients each send 120 batches and never read an answer: 80 MB of answers.
        const CALLS: usize = 120;
        for (h2, calls) in &mut attackers {
            for _ in 0..CALLS {
                calls.push(h2.open("/warden.v1.Authorizer/AuthorizeBatch", body.clone(), true).await.0);
            }
        }
        // Every call is answered (headers need no flow control): held, or refused. The answers are kept
        // unread (dropping one would cancel its stream and free what the server holds for it).
        let (mut held, mut refused, mut unread) = (vec![0usize; 8], 0usize, Vec::new());
        for (i, (_, calls)) in attackers.iter_mut().enumerate() {
            for resp in calls.iter_mut() {
                let head = within("an answer's headers", resp).await.expect("an answer");
                match head.headers().get("grpc-status").map(|v| v.to_str().unwrap_or("?").to_owned()) {
                    None => held[i] += 1,
                    Some(code) if code == "8" => refused += 1,
                    Some(code) => panic!("an attacker's call answered {code}: {head:?}"),
                }
                unread.push(head);
            }
        }
        let mut latencies = Vec::new();
        for _ in 0..300 {
            latencies.push(call(&mut client).await);
        }
        let rss_after = vm_rss_kib();
        let grown_mib = rss_after.saturating_sub(rss_before) / 1024;
        let p99 = p99(latencies);
        eprintln!(
            "8 x {CALLS} batches of {answer_len} bytes never read: held {held:?}, refused {refused}; RSS {} -> {} MiB \
             (+{grown_mib} MiB); well-behaved p99 {p99:?}; one batch took {batch_time:?}",
            rss_before / 1024,
            rss_after / 1024
        );
        // Held: what fits under the cap, plus the answers finishing as it filled (one per worker
        // thread), plus those h2 sent within the client's 64 KiB window.
        for h in &held {
            assert!(*h <= max_pending / answer_len + 1 + 2 + 2, "answers held on one connection: {h}");
        }
        assert!(refused >= 8 * (CALLS - max_pending / answer_len - 5), "answers refused: {refused}");
        // 8 x (1 MiB + 3 answers + 121 streams) is about 20 MiB; unbounded, 80 MB of answers alone.
        assert!(grown_mib < 48, "RSS grew by {grown_mib} MiB");
        assert!(p99 < Duration::from_millis(50), "well-behaved p99 {p99:?} while 8 clients do not read");
        drop((unread, attackers));
        server.stop().await;
    })
    .await;
}

#[test]
fn serve_refuses_bad_connection_flags_naming_them() {
    for (args, flag) in [
        (["serve", "--max-connections", "0"], "--max-connections"),
        (["serve", "--idle-timeout", "999"], "--idle-timeout"),
    ] {
        let out = support::warden(args);
        assert_eq!(out.code, 64, "{}", out.dump());
        assert!(out.stderr.contains(&format!("warden: {flag}: ")), "{}", out.dump());
    }
}
