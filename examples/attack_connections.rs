//! Bounds under attack, connections (SPEC §8: RSS ≤ 256 MiB with 2,000 open connections including 8 that
//! never read, a well-behaved client's p99 under 5 ms meanwhile):
//!
//!     cargo build --release --bin warden --example attack_connections
//!     SERVER_CPU=0 taskset -c 1 target/release/examples/attack_connections [--bin target/release/warden]
//!         [--max-connections N] [--idle 1992] [--non-readers 8] [--streams 1000] [--answer batch|authorize]
//!         [--calls 5000]
//!
//! Starts `warden serve` on free loopback ports (under `taskset -c $SERVER_CPU` when that is set;
//! `--max-connections N` is passed on only when given, so an older binary can be measured too), then:
//! 1. one well-behaved client (tonic, one connection) warms up and measures `Authorize` latency on the quiet
//!    server (`--calls` calls back to back);
//! 2. `--non-readers` HTTP/2 clients each open up to `--streams` calls and never read an answer (no
//!    WINDOW_UPDATE; their connections still answer PINGs): `AuthorizeBatch` of 100 `explain` requests
//!    (about 84 KB answers) or one `Authorize` with `explain` (about 0.8 KB). Streams past the server's
//!    limit (256 per connection) wait in the client; each call is classified once no new answer came
//!    for 5 s: answered and held unread by the server, RESOURCE_EXHAUSTED, or still waiting;
//! 3. `--idle` more HTTP/2 connections complete their handshake and stay idle;
//! 4. the well-behaved client measures again while all of that stays open, and `/readyz` is asked.
//!
//! Reports the server's VmRSS (and VmHWM) at each step, its CPU use while the latency is measured, how
//! many connections were admitted, and the server's connection metrics; then SIGTERMs the server.
//! Loopback only; ends on its own (every wait is bounded). Results: bench/attack-connections.md.
#![expect(clippy::indexing_slicing, reason = "a developer tool: a panic is a failed run, reported with its message")]
use prost::Message as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::codegen::{Bytes, http};
use warden::proto::authorizer_client::AuthorizerClient;
use warden::proto::{self, AuthorizeRequest};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    bin: PathBuf,
    max_connections: Option<usize>,
    idle: usize,
    non_readers: usize,
    streams: usize,
    batch: bool,
    calls: usize,
}

fn args() -> Args {
    let mut a = Args {
        bin: PathBuf::from("target/release/warden"),
        max_connections: None,
        idle: 1992,
        non_readers: 8,
        streams: 1000,
        batch: true,
        calls: 5000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next();
        let n = val.as_deref().and_then(|v| v.parse::<usize>().ok());
        match (flag.as_str(), val.as_deref(), n) {
            ("--bin", Some(v), _) => a.bin = PathBuf::from(v),
            ("--max-connections", _, Some(n)) => a.max_connections = Some(n),
            ("--idle", _, Some(n)) => a.idle = n,
            ("--non-readers", _, Some(n)) => a.non_readers = n,
            ("--streams", _, Some(n)) => a.streams = n,
            ("--answer", Some("batch"), _) => a.batch = true,
            ("--answer", Some("authorize"), _) => a.batch = false,
            ("--calls", _, Some(n)) if n > 0 => a.calls = n,
            _ => {
                eprintln!(
                    "usage: attack_connections [--bin PATH] [--max-connections N] [--idle N] [--non-readers N] \
                     [--streams N] [--answer batch|authorize] [--calls N]"
                );
                std::process::exit(64);
            }
        }
    }
    a
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// VmRSS and VmHWM of `pid`, MiB.
fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

/// User + system CPU of `pid` so far, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the `(comm)` field: state is field 3; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn request(explain: bool) -> Result<AuthorizeRequest, Error> {
    let json = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/requests/allow_presign.json"),
    )?;
    let mut r: AuthorizeRequest = serde_json::from_str(&json)?;
    r.explain = explain;
    Ok(r)
}

fn grpc_frame(msg: &impl prost::Message) -> Result<Bytes, Error> {
    let body = msg.encode_to_vec();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&u32::try_from(body.len())?.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(Bytes::from(out))
}

/// Latency percentiles of `n` sequential `Authorize` calls, ms: (p50, p99, max); and failed calls.
async fn latency(
    client: &mut AuthorizerClient<tonic::transport::Channel>,
    req: &AuthorizeRequest,
    n: usize,
) -> ((f64, f64, f64), usize) {
    let mut ms = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        let t = Instant::now();
        match tokio::time::timeout(Duration::from_secs(5), client.authorize(req.clone())).await {
            Ok(Ok(_)) => ms.push(t.elapsed().as_secs_f64() * 1e3),
            _ => failed += 1,
        }
    }
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return ((f64::NAN, f64::NAN, f64::NAN), failed);
    }
    let at = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    ((at(0.5), at(0.99), ms[ms.len() - 1]), failed)
}

async fn http_get(addr: &str, path: &str) -> Result<String, Error> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).await?;
        Ok::<_, Error>(raw)
    };
    tokio::time::timeout(Duration::from_secs(5), exchange).await.map_err(|_| "GET took over 5 s")?
}

/// An HTTP/2 connection driven by a task (it answers PINGs), and the calls opened on it.
struct H2Conn {
    send: h2::client::SendRequest<Bytes>,
    conn: tokio::task::JoinHandle<Result<(), h2::Error>>,
    calls: Vec<h2::client::ResponseFuture>,
    heads: Vec<http::Response<h2::RecvStream>>,
}

async fn h2_connect(addr: &str) -> Result<H2Conn, Error> {
    let tcp = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await??;
    let (send, conn) = tokio::time::timeout(Duration::from_secs(5), h2::client::handshake(tcp)).await??;
    Ok(H2Conn { send, conn: tokio::spawn(conn), calls: Vec::new(), heads: Vec::new() })
}

async fn first_call(c: &mut H2Conn, req: &AuthorizeRequest) -> Result<(), Error> {
    let (resp, mut stream) = c.send.send_request(post("/warden.v1.Authorizer/Authorize")?, false)?;
    stream.send_data(grpc_frame(req)?, true)?;
    let mut body = tokio::time::timeout(Duration::from_secs(5), resp).await??.into_body();
    while let Some(chunk) = body.data().await {
        body.flow_control().release_capacity(chunk?.len())?;
    }
    Ok(())
}

fn post(path: &str) -> Result<http::Request<()>, Error> {
    Ok(http::Request::post(format!("http://127.0.0.1{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())?)
}

fn main() -> Result<(), Error> {
    let a = args();
    let tmp = tempfile::tempdir()?;
    let (grpc_port, admin_port) = (free_port()?, free_port()?);
    let mut cmd = match std::env::var("SERVER_CPU") {
        Ok(cpu) if !cpu.is_empty() => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu]).arg(&a.bin);
            c
        }
        _ => Command::new(&a.bin),
    };
    cmd.arg("serve")
        .args(["--listen", &format!("127.0.0.1:{grpc_port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("server.log"))?);
    if let Some(n) = a.max_connections {
        cmd.args(["--max-connections", &n.to_string()]);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", a.bin.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let result = rt.block_on(measure(&a, child.id(), grpc_port, admin_port));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait()?;
    drop(rt);
    if result.is_err() {
        eprintln!("server log:\n{}", std::fs::read_to_string(tmp.path().join("server.log")).unwrap_or_default());
    }
    result?;
    println!("server exit after SIGTERM: {status}");
    Ok(())
}

async fn measure(a: &Args, pid: u32, grpc_port: u16, admin_port: u16) -> Result<(), Error> {
    let addr = format!("127.0.0.1:{grpc_port}");
    let admin = format!("127.0.0.1:{admin_port}");
    let req = request(false)?;
    let started = Instant::now();
    let mut client = loop {
        if started.elapsed() > Duration::from_secs(15) {
            return Err("the server did not answer within 15 s".into());
        }
        if let Ok(mut c) = AuthorizerClient::connect(format!("http://{addr}")).await
            && c.authorize(req.clone()).await.is_ok()
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "warden serve{} (pid {pid}); attack: {} non-readers x up to {} {} calls, {} idle connections",
        a.max_connections.map(|n| format!(" --max-connections {n}")).unwrap_or_default(),
        a.non_readers,
        a.streams,
        if a.batch { "AuthorizeBatch(100 x explain)" } else { "Authorize(explain)" },
        a.idle
    );
    let _ = latency(&mut client, &req, 1000).await;
    let cpu0 = cpu_seconds(pid);
    let t = Instant::now();
    let ((p50, p99, max), failed) = latency(&mut client, &req, a.calls).await;
    let busy = (cpu_seconds(pid) - cpu0) / t.elapsed().as_secs_f64() * 100.0;
    let (rss0, _) = rss(pid);
    println!(
        "quiet:            RSS {rss0:6.1} MiB; well-behaved Authorize p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms, \
         {failed} failed (server CPU {busy:.0} % meanwhile)"
    );

    // The clients that never read.
    let (path, body, answer_len) = if a.batch {
        let batch = proto::AuthorizeBatchRequest { requests: vec![request(true)?; 100] };
        let len = client.authorize_batch(batch.clone()).await?.into_inner().encoded_len();
        ("/warden.v1.Authorizer/AuthorizeBatch", grpc_frame(&batch)?, len)
    } else {
        let r = request(true)?;
        let len = client.authorize(r.clone()).await?.into_inner().encoded_len();
        ("/warden.v1.Authorizer/Authorize", grpc_frame(&r)?, len)
    };
    let mut readers_refused = 0;
    let mut attackers = Vec::new();
    for _ in 0..a.non_readers {
        // One call read to its end first: the client then knows the server's SETTINGS (its stream limit).
        let Ok(mut c) = h2_connect(&addr).await else {
            readers_refused += 1;
            continue;
        };
        match first_call(&mut c, &req).await {
            Ok(()) => attackers.push(c),
            Err(_) => readers_refused += 1,
        }
    }
    let t = Instant::now();
    eprintln!("opening the non-readers' calls");
    for c in &mut attackers {
        for _ in 0..a.streams {
            // h2 queues the streams past the server's MAX_CONCURRENT_STREAMS in the client (counted as
            // waiting below); should it make `poll_ready` wait instead, stop opening after 2 s.
            let ready = std::future::poll_fn(|cx| c.send.poll_ready(cx));
            let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(2), ready).await else {
                break;
            };
            let Ok((resp, mut stream)) = c.send.send_request(post(path)?, false) else {
                break;
            };
            if stream.send_data(body.clone(), true).is_err() {
                break;
            }
            c.calls.push(resp);
        }
    }
    eprintln!("waiting for the headers of their {} answers", attackers.iter().map(|c| c.calls.len()).sum::<usize>());
    // Every call the server accepted gets its answer's headers (they need no flow control): held unread,
    // or RESOURCE_EXHAUSTED. The others wait in the client for a stream slot that never frees (h2 queues
    // them past the server's MAX_CONCURRENT_STREAMS); after 5 s without a new answer, the rest are taken
    // as waiting. The heads are kept: dropping one would cancel its stream.
    let (mut held, mut refused, mut waiting) = (0usize, 0usize, 0usize);
    let mut other = std::collections::BTreeMap::<String, usize>::new();
    let mut patience = Duration::from_secs(5);
    for c in &mut attackers {
        for resp in std::mem::take(&mut c.calls) {
            match tokio::time::timeout(patience, resp).await {
                Ok(Ok(head)) => {
                    match head.headers().get("grpc-status").map(|v| v.to_str().unwrap_or("?").to_owned()) {
                        None => held += 1,
                        Some(code) if code == "8" => refused += 1,
                        Some(code) => *other.entry(format!("grpc-status {code}")).or_default() += 1,
                    }
                    c.heads.push(head);
                }
                Ok(Err(e)) => *other.entry(format!("{e}")).or_default() += 1,
                Err(_) => {
                    waiting += 1;
                    patience = Duration::from_millis(1);
                }
            }
        }
        patience = Duration::from_secs(5);
    }
    let opened = held + refused + waiting + other.values().sum::<usize>();
    let (rss1, _) = rss(pid);
    println!(
        "non-readers:      RSS {rss1:6.1} MiB; {} connections ({readers_refused} refused), {opened} calls sent, {:.1} s until no more answers came: \
         {held} answered and held unread ({answer_len} bytes each), {refused} RESOURCE_EXHAUSTED, {waiting} waiting \
         in the client for a stream slot, other: {other:?}",
        attackers.len(),
        t.elapsed().as_secs_f64()
    );

    // The idle connections.
    let mut idle = Vec::with_capacity(a.idle);
    let mut idle_failed = 0;
    for _ in 0..a.idle {
        match h2_connect(&addr).await {
            Ok(c) => idle.push(c),
            Err(_) => idle_failed += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let closed = idle.iter().filter(|c| c.conn.is_finished()).count() + idle_failed;
    let attackers_alive = attackers.iter().filter(|c| !c.conn.is_finished()).count();
    let (rss2, _) = rss(pid);
    println!(
        "idle connections: RSS {rss2:6.1} MiB; {} of {} admitted, {closed} closed by the server; non-readers still connected: {attackers_alive}",
        a.idle - closed,
        a.idle
    );

    let cpu0 = cpu_seconds(pid);
    let t = Instant::now();
    let ((p50, p99, max), failed) = latency(&mut client, &req, a.calls).await;
    let busy = (cpu_seconds(pid) - cpu0) / t.elapsed().as_secs_f64() * 100.0;
    let readyz = http_get(&admin, "/readyz").await.map(|r| r.lines().next().unwrap_or_default().to_owned());
    let (rss3, hwm) = rss(pid);
    println!(
        "under attack:     RSS {rss3:6.1} MiB (peak {hwm:.1} MiB); well-behaved Authorize p50 {p50:.3} ms, p99 {p99:.3} ms, \
         max {max:.3} ms, {failed} failed (server CPU {busy:.0} % meanwhile); /readyz: {}",
        readyz.unwrap_or_else(|e| format!("error: {e}"))
    );
    if let Ok(m) = http_get(&admin, "/metrics").await {
        for line in m
            .lines()
            .filter(|l| l.starts_with("warden_connections_") || l.starts_with("warden_answers_refused_unread_total"))
        {
            println!("  {line}");
        }
    }
    drop((idle, attackers));
    Ok(())
}
