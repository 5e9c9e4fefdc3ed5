//! `warden healthcheck` (the container HEALTHCHECK and Kubernetes exec probe): the real binary against
//! the real server started in-process on `127.0.0.1:0` and a Unix socket. Exit 0 only for SERVING;
//! 1 for NOT_SERVING (no bundle yet), an unknown service, a closed port and a peer that never answers;
//! 64 for bad usage. One line of output either way.
use crate::support::{self, Output};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use warden::config::ServeConfig;
use warden::server::{AUTHORIZER_SERVICE, Options, ReloadOutcome, Running};

/// Every test body runs within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A server with TCP, a Unix socket and the default bundle `policies/`; with `load_bundle`, returns
/// once the first load is activated (health SERVING).
async fn start(options: Options) -> (Running, tempfile::TempDir) {
    let dir = support::temp_dir();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let socket = dir.path().join("warden.sock");
    let config = ServeConfig::from_flags(
        Some(policies.to_str().expect("a UTF-8 path")),
        Some("127.0.0.1:0"),
        Some(socket.to_str().expect("a UTF-8 path")),
        Some("off"),
        Some(10_000),
    )
    .expect("valid flags");
    let running = Running::start(&config, options).await.unwrap_or_else(|e| panic!("Running::start: {e:#}"));
    if options.load_bundle {
        let mut first = running.first_load.clone();
        let outcome = first.wait_for(Option::is_some).await.expect("the first load reports").clone();
        assert!(matches!(outcome, Some(ReloadOutcome::Activated(_))), "first load: {outcome:?}");
    }
    (running, dir)
}

/// `warden healthcheck ARGS`, off the runtime (the binary is a blocking child process).
async fn healthcheck(args: Vec<String>) -> (Output, Duration) {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = support::warden(std::iter::once("healthcheck".to_owned()).chain(args));
        (out, started.elapsed())
    })
    .await
    .expect("the healthcheck run")
}

fn tcp_args(addr: SocketAddr, extra: &[&str]) -> Vec<String> {
    ["--addr".to_owned(), addr.to_string()].into_iter().chain(extra.iter().map(|s| (*s).to_owned())).collect()
}

fn uds_args(path: &Path, extra: &[&str]) -> Vec<String> {
    ["--uds".to_owned(), path.display().to_string()].into_iter().chain(extra.iter().map(|s| (*s).to_owned())).collect()
}

/// Exactly one non-empty line of output in all.
fn one_line(out: &Output) -> String {
    let lines: Vec<&str> = out.stdout.lines().chain(out.stderr.lines()).filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of output expected:\n{}", out.dump());
    lines[0].to_owned()
}

async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body).await.unwrap_or_else(|_| panic!("the test took over {TEST_TIMEOUT:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_serving_over_tcp_and_the_unix_socket() {
    bounded(async {
        let (running, _dir) = start(Options::default()).await;
        let addr = running.grpc_addr.expect("a TCP listener");
        let socket: PathBuf = running.uds.clone().expect("a Unix socket");
        for (args, shown) in [
            (tcp_args(addr, &[]), format!("{addr} service \"\"")),
            (tcp_args(addr, &["--service", AUTHORIZER_SERVICE]), format!("{addr} service \"{AUTHORIZER_SERVICE}\"")),
            (uds_args(&socket, &[]), format!("unix:{} service \"\"", socket.display())),
            (
                uds_args(&socket, &["--service", AUTHORIZER_SERVICE, "--timeout-ms", "5000"]),
                format!("unix:{} service \"{AUTHORIZER_SERVICE}\"", socket.display()),
            ),
        ] {
            let (out, _) = healthcheck(args.clone()).await;
            assert_eq!(out.code, 0, "{args:?}:\n{}", out.dump());
            assert_eq!(one_line(&out), format!("warden healthcheck: {shown}: SERVING"), "{args:?}");
            assert!(out.stderr.is_empty(), "{args:?}:\n{}", out.dump());
        }
        assert!(running.shutdown().await, "the server drains");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_1_for_an_unknown_service() {
    bounded(async {
        let (running, _dir) = start(Options::default()).await;
        let addr = running.grpc_addr.expect("a TCP listener");
        let (out, _) = healthcheck(tcp_args(addr, &["--service", "nosuch.v1.Service"])).await;
        assert_eq!(out.code, 1, "{}", out.dump());
        let line = one_line(&out);
        assert!(line.contains("service \"nosuch.v1.Service\": SERVICE_UNKNOWN"), "{line}");
        assert!(out.stdout.is_empty(), "failures go to stderr:\n{}", out.dump());
        assert!(running.shutdown().await, "the server drains");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_1_while_no_bundle_is_active() {
    bounded(async {
        let (running, _dir) = start(Options { load_bundle: false, ..Options::default() }).await;
        let addr = running.grpc_addr.expect("a TCP listener");
        for service in ["", AUTHORIZER_SERVICE] {
            let (out, _) = healthcheck(tcp_args(addr, &["--service", service])).await;
            assert_eq!(out.code, 1, "{service:?}: {}", out.dump());
            assert!(one_line(&out).ends_with(": NOT_SERVING"), "{service:?}: {}", out.dump());
        }
        assert!(running.shutdown().await, "the server drains");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_1_on_a_closed_port_and_a_missing_socket() {
    bounded(async {
        // A port that was just free: bind, note it, close.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("local addr");
        let (out, took) = healthcheck(tcp_args(addr, &[])).await;
        assert_eq!(out.code, 1, "{}", out.dump());
        let line = one_line(&out);
        assert!(line.starts_with(&format!("warden healthcheck: {addr} service \"\": unreachable: ")), "{line}");
        assert!(took < Duration::from_secs(10), "a refused connection answers at once, took {took:?}");

        let dir = support::temp_dir();
        let missing = dir.path().join("no.sock");
        let (out, _) = healthcheck(uds_args(&missing, &[])).await;
        assert_eq!(out.code, 1, "{}", out.dump());
        assert!(one_line(&out).contains(": unreachable: "), "{}", out.dump());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_gives_up_after_its_timeout_on_a_peer_that_never_answers() {
    bounded(async {
        // The kernel completes the TCP handshake into the backlog; nothing ever speaks HTTP/2.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().expect("local addr");
        let (out, took) = healthcheck(tcp_args(addr, &["--timeout-ms", "300"])).await;
        assert_eq!(out.code, 1, "{}", out.dump());
        assert!(one_line(&out).ends_with(": no answer within 300 ms"), "{}", out.dump());
        assert!(took >= Duration::from_millis(300), "gave up early: {took:?}");
        assert!(took < Duration::from_secs(10), "the timeout bounds the run: {took:?}");
        drop(silent);
    })
    .await;
}

#[test]
fn healthcheck_bad_usage_exits_64() {
    for args in [
        vec!["healthcheck", "--addr", "127.0.0.1:1", "--uds", "/tmp/x.sock"],
        vec!["healthcheck", "--timeout-ms", "0"],
        vec!["healthcheck", "--timeout-ms", "soon"],
    ] {
        let out = support::warden(&args);
        assert_eq!(out.code, 64, "{args:?}:\n{}", out.dump());
    }
}
