//! The admin surface and the Unix socket (issue 10 items 6 and 8, SPEC §7): mutations need the bearer
//! token of `--admin-token-file` and a JSON body, are off without a token file, and reads stay open;
//! `--uds` never deletes a file that is not a socket, never takes a live server's socket, replaces a
//! stale one, and creates the socket with `--uds-mode`.
use crate::support::{self, http_get};
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::Duration;
use warden::config::ServeConfig;
use warden::server::{Options, Running};

const TOKEN: &str = "admin-surface-test-token-0123456789abcdef";
const COMET: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001";

async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(60), body).await.expect("the test finishes within 60 s");
}

fn config(uds: Option<&Path>, token_file: Option<&Path>, uds_mode: Option<&str>) -> ServeConfig {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    ServeConfig::from_flags(
        Some(policies.to_str().expect("UTF-8")),
        Some("127.0.0.1:0"),
        uds.map(|p| p.to_str().expect("UTF-8")),
        Some("127.0.0.1:0"),
        Some(2_000),
    )
    .and_then(|c| c.with_admin(token_file.map(|p| p.to_str().expect("UTF-8")), uds_mode))
    .expect("valid flags")
}

async fn start(config: &ServeConfig) -> Running {
    let running = Running::start(config, Options::default()).await.expect("the server starts");
    let store = running.store.clone();
    tokio::time::timeout(Duration::from_secs(30), async {
        while store.load().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the bundle becomes active");
    running
}

/// One raw HTTP/1.1 request; returns the status and body.
async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned())
}

fn revoke_body() -> String {
    serde_json::json!({"app_arn": COMET, "user_name": "carol"}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_admin_mutations_are_off_without_a_token_file() {
    bounded(async {
        let running = start(&config(None, None, None)).await;
        let admin = running.admin_addr.expect("admin");
        let (status, body) = http(
            admin,
            "POST",
            "/v1/admins/revoke",
            &[("Content-Type", "application/json"), ("Authorization", &format!("Bearer {TOKEN}"))],
            &revoke_body(),
        )
        .await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("--admin-token-file"), "{body}");
        // Reads stay open.
        for path in ["/metrics", "/healthz", "/readyz", "/v1/status", "/v1/admins"] {
            assert_eq!(http_get(admin, path).await.status, 200, "GET {path}");
        }
        running.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_admin_mutations_need_the_bearer_token_and_json() {
    bounded(async {
        let dir = support::temp_dir();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write token");
        let running = start(&config(None, Some(&token_file), None)).await;
        let admin = running.admin_addr.expect("admin");
        let before = running.store.load().expect("active").admins.clone();
        let json = ("Content-Type", "application/json");
        let bearer = format!("Bearer {TOKEN}");
        let wrong = format!("Bearer {}x", &TOKEN[..TOKEN.len() - 1]);
        let cases: [(&[(&str, &str)], u16); 5] = [
            (&[json], 401),
            (&[json, ("Authorization", &wrong)], 401),
            (&[json, ("Authorization", "Basic YWRtaW46YWRtaW4=")], 401),
            (&[("Authorization", &bearer)], 415),
            (&[("Content-Type", "text/plain"), ("Authorization", &bearer)], 415),
        ];
        for (headers, want) in cases {
            let (status, body) = http(admin, "POST", "/v1/admins/revoke", headers, &revoke_body()).await;
            assert_eq!(status, want, "{headers:?}: {body}");
        }
        assert_eq!(running.store.load().expect("active").admins, before, "nothing changed");
        // With the token and JSON, the call reaches the state: carol is not a remembered admin (404).
        let (status, body) =
            http(admin, "POST", "/v1/admins/revoke", &[json, ("Authorization", &bearer)], &revoke_body()).await;
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("carol"), "{body}");
        // `warden admins list` reads the remembered admins.
        let out = support::warden(["admins", "list", "--admin-addr", &admin.to_string()]);
        assert_eq!(out.code, 0, "{}", out.dump());
        let listed: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert!(listed["apps"].get(COMET).is_some(), "{listed}");
        running.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_a_bad_token_file_is_a_start_up_error() {
    let dir = support::temp_dir();
    let short = dir.path().join("short");
    std::fs::write(&short, "abc").expect("write");
    let base = ServeConfig::from_flags(None, Some("127.0.0.1:0"), None, Some("off"), None).expect("flags");
    for (file, want) in [(short.to_str().expect("UTF-8"), "at least 16"), ("/nonexistent/token", "cannot read")] {
        let e = base.clone().with_admin(Some(file), None).expect_err(file);
        assert_eq!(e.flag, "--admin-token-file");
        assert!(e.message.contains(want), "{e}");
    }
    let e = base.with_admin(None, Some("0999")).expect_err("not octal");
    assert_eq!(e.flag, "--uds-mode");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_uds_never_deletes_a_file_nor_takes_a_live_socket() {
    bounded(async {
        let dir = support::temp_dir();
        // A regular file at the path: refused, named, intact.
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, b"precious").expect("write");
        let e = Running::start(&config(Some(&file), None, None), Options::default()).await.err().expect("refused");
        let msg = format!("{e:#}");
        assert!(msg.contains("--uds") && msg.contains("not a socket") && msg.contains("not-a-socket"), "{msg}");
        assert_eq!(std::fs::read(&file).expect("still there"), b"precious");

        // A live server's socket: refused, and the first server keeps serving on it.
        let sock = dir.path().join("warden.sock");
        let first = start(&config(Some(&sock), None, Some("0600"))).await;
        let mode = std::fs::symlink_metadata(&sock).expect("socket").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "--uds-mode applied");
        let e = Running::start(&config(Some(&sock), None, None), Options::default()).await.err().expect("refused");
        let msg = format!("{e:#}");
        assert!(msg.contains("another server is listening"), "{msg}");
        assert!(std::fs::symlink_metadata(&sock).expect("still there").file_type().is_socket());
        assert!(std::os::unix::net::UnixStream::connect(&sock).is_ok(), "the first server still answers");
        first.shutdown().await;

        // A stale socket (nobody listening) is replaced; the default mode is 0660.
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
        assert!(std::fs::symlink_metadata(&stale).is_ok(), "the stale socket file stays behind");
        let second = start(&config(Some(&stale), None, None)).await;
        let mode = std::fs::symlink_metadata(&stale).expect("socket").permissions().mode() & 0o777;
        assert_eq!(mode, 0o660, "default --uds-mode");
        second.shutdown().await;
    })
    .await;
}
