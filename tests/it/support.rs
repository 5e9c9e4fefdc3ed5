//! Helpers shared by the integration tests: run the `warden` binary, build bundles in temp dirs.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a run of the binary produced.
#[derive(Debug)]
pub(crate) struct Output {
    /// Exit code (`-1` when killed by a signal).
    pub(crate) code: i32,
    /// Standard output, lossily decoded.
    pub(crate) stdout: String,
    /// Standard error, lossily decoded.
    pub(crate) stderr: String,
}

impl Output {
    /// A readable dump for assertion messages.
    pub(crate) fn dump(&self) -> String {
        format!("exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
}

/// The `warden` binary Cargo built for these tests.
pub(crate) fn warden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_warden"))
}

/// Runs `warden ARGS` with an empty stdin, in the crate directory.
pub(crate) fn warden<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    warden_stdin(args, "")
}

/// Runs `warden ARGS` with `stdin` as its standard input, in the crate directory.
pub(crate) fn warden_stdin<I, S>(args: I, stdin: &str) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    warden_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, stdin)
}

/// Runs `warden ARGS` in `cwd` with `stdin` as its standard input.
pub(crate) fn warden_in<I, S>(cwd: &Path, args: I, stdin: &str) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut child = Command::new(warden_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the warden binary");
    {
        let mut input = child.stdin.take().expect("child stdin");
        // The child may exit without reading everything (a usage error): ignore a broken pipe.
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("wait for warden");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A run of the binary that was given a time limit.
#[derive(Debug)]
pub(crate) struct Timed {
    /// What it printed (`code` is `-1` when it was killed).
    pub(crate) out: Output,
    /// How long it ran.
    pub(crate) elapsed: std::time::Duration,
    /// Whether it was still running at the limit and had to be killed.
    pub(crate) killed: bool,
}

/// Runs `warden ARGS` (empty stdin, in the crate directory) and kills it if it is still running after
/// `limit`: a test of a hang fails instead of hanging. At most 16 MiB of each output stream is kept.
pub(crate) fn warden_timed<I, S>(limit: std::time::Duration, args: I) -> Timed
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use std::io::Read;
    const KEEP: u64 = 16 << 20;
    let started = std::time::Instant::now();
    let mut child = Command::new(warden_bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the warden binary");
    let drain = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stream {
                let _ = s.take(KEEP).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the warden binary") {
            break status;
        }
        if started.elapsed() >= limit {
            killed = true;
            let _ = child.kill();
            break child.wait().expect("wait for the killed warden binary");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let out = Output {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    Timed { out, elapsed, killed }
}

/// A fresh temporary directory (removed when dropped).
pub(crate) fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("warden-it-").tempdir().expect("create a temp dir")
}

/// Copies the tree at `src` into `dst` (created if needed), skipping entries whose file name
/// `skip` returns true for. Symlinks are followed.
pub(crate) fn copy_tree(src: &Path, dst: &Path, skip: &dyn Fn(&Path) -> bool) {
    std::fs::create_dir_all(dst).unwrap_or_else(|e| panic!("create {}: {e}", dst.display()));
    let entries = std::fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let from = entry.path();
        if skip(&from) {
            continue;
        }
        let to = dst.join(entry.file_name());
        if from.is_dir() {
            copy_tree(&from, &to, skip);
        } else {
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
        }
    }
}

/// Copies the directory `src` into a new temp dir; returns the temp dir (the copy is its root).
pub(crate) fn copy_to_temp(src: &Path, skip: &dyn Fn(&Path) -> bool) -> tempfile::TempDir {
    let tmp = temp_dir();
    copy_tree(src, tmp.path(), skip);
    tmp
}

/// Writes `files` (`(relative path, content)`) under `root`, creating folders.
pub(crate) fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        write_file(root, rel, content.as_bytes());
    }
}

/// Writes one file under `root`, creating folders.
pub(crate) fn write_file(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes `files` into a new temp dir and returns it.
pub(crate) fn bundle_in_temp(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = temp_dir();
    write_files(tmp.path(), files);
    tmp
}

/// Whether `s` is `sha256:` followed by 64 lower-case hex digits.
pub(crate) fn is_revision(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The `sha256:…` revision printed by a successful `warden validate` (panics with the output if none).
pub(crate) fn revision_in(out: &Output) -> String {
    out.stdout
        .split_whitespace()
        .map(|w| w.trim_end_matches([',', '.', ')']))
        .find(|w| is_revision(w))
        .unwrap_or_else(|| panic!("no `sha256:<64 hex>` revision in the output:\n{}", out.dump()))
        .to_owned()
}

/// The problem lines of `warden validate` stderr (without the `N problem(s) found` summary).
pub(crate) fn problem_lines(stderr: &str) -> Vec<String> {
    stderr.lines().filter(|l| !l.is_empty() && !is_summary(l)).map(str::to_owned).collect()
}

/// Whether `line` is the `N problem(s) found` summary.
pub(crate) fn is_summary(line: &str) -> bool {
    line.split_once(' ')
        .is_some_and(|(n, rest)| n.parse::<usize>().is_ok() && (rest == "problem found" || rest == "problems found"))
}

/// An HTTP/1.1 answer of the admin listener.
#[derive(Debug)]
pub(crate) struct HttpAnswer {
    /// Status code.
    pub(crate) status: u16,
    /// Response headers, names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    /// Body (de-chunked), lossily decoded.
    pub(crate) body: String,
}

impl HttpAnswer {
    /// The first header named `name` (lower-case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// `GET path` over a fresh loopback connection (`Connection: close`); panics on I/O errors and after
/// 10 s. Enough HTTP for `/metrics`, `/healthz`, `/readyz` and `/v1/status`.
pub(crate) async fn http_get(addr: std::net::SocketAddr, path: &str) -> HttpAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect to the admin listener {addr}: {e}"));
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write the HTTP request");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read the HTTP response");
        raw
    };
    let raw = tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} on {addr} took over 10 s"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in the answer to GET {path}: {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad HTTP status line `{status_line}`"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpAnswer { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).unwrap_or_else(|_| panic!("bad chunk size `{size_text}`"));
        rest = &rest[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[..size.min(rest.len())]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// Metric name (with `_bucket`, `_sum`, `_count` suffixes as written).
    pub(crate) name: String,
    /// Labels.
    pub(crate) labels: std::collections::BTreeMap<String, String>,
    /// Value (`+Inf`, `-Inf` and `NaN` parsed as such).
    pub(crate) value: f64,
}

/// Parses the Prometheus text exposition format (comments skipped); panics on a malformed line.
pub(crate) fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, mut rest) = match line.find(['{', ' ']) {
            Some(i) => (&line[..i], &line[i..]),
            None => panic!("metric line without a value: `{line}`"),
        };
        let mut labels = std::collections::BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            let mut end = None;
            loop {
                // label name
                let mut key = String::new();
                for (i, c) in chars.by_ref() {
                    match c {
                        '=' => break,
                        '}' => {
                            end = Some(i);
                            break;
                        }
                        ',' | ' ' => {}
                        c => key.push(c),
                    }
                }
                if end.is_some() {
                    break;
                }
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "label `{key}` without a quoted value: `{line}`");
                let mut value = String::new();
                let mut escaped = false;
                for (_, c) in chars.by_ref() {
                    match (escaped, c) {
                        (true, 'n') => {
                            value.push('\n');
                            escaped = false;
                        }
                        (true, c) => {
                            value.push(c);
                            escaped = false;
                        }
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        (false, c) => value.push(c),
                    }
                }
                labels.insert(key, value);
                if let Some(&(i, '}')) = chars.peek() {
                    end = Some(i);
                    break;
                }
            }
            let end = end.unwrap_or_else(|| panic!("unterminated labels: `{line}`"));
            rest = &inner[end + 1..];
        }
        let value_text = rest.split_whitespace().next().unwrap_or_else(|| panic!("no value: `{line}`"));
        let value = match value_text {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value `{v}` in `{line}`")),
        };
        out.push(Sample { name: name.to_owned(), labels, value });
    }
    out
}

/// The sum of the samples named `name` whose labels include every `(key, value)` of `labels`
/// (0 when there is none: a counter not yet incremented is not rendered).
pub(crate) fn sample_sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
        .sum::<f64>()
        + 0.0 // an empty sum is -0.0
}

/// `POST path` with a JSON body over a fresh loopback connection (`Connection: close`); returns
/// (status, body). Panics on I/O errors and after 10 s.
/// The admin bearer token of the servers the tests start (`--admin-token-file`).
pub(crate) const ADMIN_TOKEN: &str = "propagate-tests-admin-token-0123456789";

/// A token file holding [`ADMIN_TOKEN`], written once per test process.
pub(crate) fn admin_token_file() -> &'static Path {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let p = std::env::temp_dir().join(format!("warden-test-admin-token-{}", std::process::id()));
        std::fs::write(&p, format!("{ADMIN_TOKEN}\n")).expect("write the token file");
        p
    })
}

/// POSTs JSON with the test admin token ([`ADMIN_TOKEN`]).
pub(crate) async fn http_post(addr: std::net::SocketAddr, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("write the request");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read the response");
        String::from_utf8_lossy(&raw).into_owned()
    };
    let raw = tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("POST {path} on {addr} took over 10 s"));
    let status = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// A `warden serve` child process whose log (stderr, no colours) goes to a file. Killed with SIGKILL
/// (by its own id) when dropped, so a failing test leaves no server behind.
pub(crate) struct ServeChild {
    /// The process.
    pub(crate) child: std::process::Child,
    log: PathBuf,
}

impl ServeChild {
    /// Starts `warden ARGS` in `cwd`, logging at `info` into `log`.
    pub(crate) fn spawn<I, S>(cwd: &Path, args: I, log: &Path) -> ServeChild
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let child = Command::new(warden_bin())
            .args(args)
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .env("WARDEN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn warden");
        ServeChild { child, log: log.to_path_buf() }
    }

    /// [`ServeChild::spawn`] with extra environment variables (e.g. an AWS emulator's).
    pub(crate) fn spawn_env<I, S>(cwd: &Path, args: I, env: &[(&str, String)], log: &Path) -> ServeChild
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let child = Command::new(warden_bin())
            .args(args)
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .env("WARDEN_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn warden");
        ServeChild { child, log: log.to_path_buf() }
    }

    /// What the process logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address logged on the line that contains `what` (e.g. `admin HTTP listening`), waiting up
    /// to 20 s for it; panics with the log if the process exits first.
    pub(crate) async fn logged_addr(&mut self, what: &str) -> std::net::SocketAddr {
        let started = std::time::Instant::now();
        loop {
            let log = self.log();
            let found = log
                .lines()
                .filter(|l| l.contains(what))
                .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("addr=")).and_then(|a| a.parse().ok()));
            if let Some(addr) = found {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("warden exited with {status} before logging `{what}`:\n{log}");
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(20), "no `{what}` logged after 20 s:\n{log}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Waits up to `bound` for the process to exit; `None` if it still runs.
    pub(crate) async fn exit_within(&mut self, bound: std::time::Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("child status") {
                return Some(s);
            }
            if started.elapsed() > bound {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL (`kill -9`), then reap it.
    pub(crate) fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
