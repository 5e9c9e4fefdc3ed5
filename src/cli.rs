//! The command line (`warden serve | validate | eval | test | healthcheck`): clap parsing, then the
//! offline tools on the pure engine. Exit codes: 0 success, 1 a check failed (invalid bundle, failing
//! tests, bad input file, a server that is not SERVING), 64 bad usage.
mod bundle_tests;
mod healthcheck;

use crate::grpc::convert;
use crate::proto;
use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use warden_core::bundle::Bundle;
use warden_core::engine;
use warden_core::policy::Problem;

/// The default bundle directory.
pub const DEFAULT_BUNDLE: &str = crate::config::DEFAULT_BUNDLE_DIR;

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "Authorization sidecar (IAM policy decision point) for SageMaker Studio and partner AI apps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum AdminsCommand {
    /// Revoke the ordinary admin rights a user kept after removal from a comet app's admin list.
    Revoke {
        /// The server's admin listener.
        #[arg(long, default_value = crate::config::DEFAULT_ADMIN_LISTEN)]
        admin_addr: String,
        /// The file with the server's admin bearer token (`serve --admin-token-file`).
        #[arg(long)]
        token_file: String,
        /// Partner app ARN.
        #[arg(long)]
        app: String,
        /// User name.
        #[arg(long)]
        user: String,
    },
    /// List the remembered admins (and the last admin list seen) of every partner app.
    List {
        /// The server's admin listener.
        #[arg(long, default_value = crate::config::DEFAULT_ADMIN_LISTEN)]
        admin_addr: String,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sidecar: gRPC (warden.v1.Authorizer, health, reflection) and the admin HTTP listener.
    Serve {
        /// Bundle directory (default: `policies` in the working directory, which must then exist).
        #[arg(long)]
        bundle: Option<String>,
        /// Serve the example bundle compiled into the binary (a demo: no directory is read or watched).
        #[arg(long, conflicts_with = "bundle")]
        demo: bool,
        /// gRPC address (`off` to serve only on `--uds`).
        #[arg(long, default_value = crate::config::DEFAULT_LISTEN)]
        listen: String,
        /// Also serve gRPC on this Unix socket (for same-pod gateways).
        #[arg(long)]
        uds: Option<String>,
        /// Admin HTTP address for /metrics, /healthz, /readyz, /v1/status (`off` to disable).
        #[arg(long, default_value = crate::config::DEFAULT_ADMIN_LISTEN)]
        admin_listen: String,
        /// How long in-flight calls may take to finish after SIGTERM/SIGINT.
        #[arg(long, default_value_t = 10_000)]
        shutdown_grace_ms: u64,
        /// Persist remembered partner-app admins here (the server locks it; atomic writes).
        #[arg(long)]
        state_dir: Option<String>,
        /// File holding the bearer token that mutating admin calls (`POST /v1/admins/revoke`) must
        /// send; without it, admin mutations are off (403). Reads stay open.
        #[arg(long)]
        admin_token_file: Option<String>,
        /// Permissions of the Unix socket, octal.
        #[arg(long, default_value = "0660")]
        uds_mode: String,
        /// Decisions cached per bundle revision (0 disables the cache).
        #[arg(long)]
        cache_capacity: Option<usize>,
        /// Bytes the decisions cached per bundle revision may take together, requests and answers
        /// counted whole (default 32 MiB; 0 disables the cache); decisions not hit lately are evicted.
        #[arg(long, value_name = "BYTES")]
        cache_max_bytes: Option<usize>,
        /// Re-read the bundle directory every MS milliseconds instead of watching it (EFS, NFS).
        #[arg(long, value_name = "MS")]
        poll_interval: Option<u64>,
        /// Write one JSON line per decision to PATH (appended) or `-` (stdout).
        #[arg(long, value_name = "PATH|-")]
        decision_log: Option<String>,
        /// Runtime threads answering requests: 1 serves everything on one thread (a sidecar with one
        /// core); default: one per CPU.
        #[arg(long, value_name = "N")]
        worker_threads: Option<usize>,
        /// Open connections per gRPC listener (TCP and Unix socket each); past it a new connection is
        /// closed at once (default 1024).
        #[arg(long, value_name = "N")]
        max_connections: Option<usize>,
        /// Close a gRPC connection that has had no open call for MS milliseconds (default 300000, 5 min).
        #[arg(long, value_name = "MS")]
        idle_timeout: Option<u64>,
        /// Serve gRPC over TLS on `--listen` with this certificate chain (PEM, leaf first; needs
        /// `--tls-key`). Reloaded when the file changes. The Unix socket stays plaintext.
        #[arg(long, value_name = "FILE")]
        tls_cert: Option<String>,
        /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
        #[arg(long, value_name = "FILE")]
        tls_key: Option<String>,
        /// Require client certificates (mTLS) that chain to a CA in this PEM bundle.
        #[arg(long, value_name = "FILE")]
        tls_client_ca: Option<String>,
    },
    /// Manage the remembered admins of a running server.
    Admins {
        #[command(subcommand)]
        command: AdminsCommand,
    },
    /// Load and check a bundle exactly as `serve` would; print every problem as `path: field: message`.
    Validate {
        /// Bundle directory (default: `policies` in the working directory, which must then exist).
        dir: Option<PathBuf>,
        /// Also check the bundle against the remembered state of a server (`serve --state-dir`): an
        /// admin-list change `serve` would refuse fails here first. Read only: no lock, no write.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Answer requests offline: one AuthorizeRequest (proto JSON), or JSON Lines of cases.
    Eval {
        /// An AuthorizeRequest as proto JSON (`-` for stdin); answered against `--bundle`.
        #[arg(long, conflicts_with_all = ["cases", "propagate"], required_unless_present_any = ["cases", "propagate"])]
        request: Option<String>,
        /// A PropagateIdentityRequest as proto JSON (`-` for stdin); answered against `--bundle`.
        #[arg(long, conflicts_with = "cases")]
        propagate: Option<String>,
        /// Cases in the case format, one JSON object per line (`-` for stdin); policies inline.
        #[arg(long)]
        cases: Option<String>,
        /// Bundle directory for `--request` (default: `policies`, or the embedded default bundle when
        /// there is no such directory).
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
    /// Run the bundle's own test cases (`tests/` in the bundle); print `N passed, M failed`.
    Test {
        /// Bundle directory (default: `policies`).
        dir: Option<PathBuf>,
    },
    /// Ask a running server's gRPC health service: exit 0 when SERVING, 1 otherwise (NOT_SERVING,
    /// unknown service, unreachable, timeout). For container HEALTHCHECK and Kubernetes exec probes.
    Healthcheck {
        /// The server's gRPC address, `HOST:PORT` (default: `127.0.0.1:50051`).
        #[arg(long, value_name = "HOST:PORT", conflicts_with = "uds")]
        addr: Option<String>,
        /// The server's Unix socket instead (`serve --uds`).
        #[arg(long, value_name = "PATH")]
        uds: Option<String>,
        /// The health service to ask about: `""` (the server as a whole) or `warden.v1.Authorizer`.
        #[arg(long, value_name = "NAME", default_value = "")]
        service: String,
        /// Give up (exit 1) when connecting and answering take longer than this.
        #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        timeout_ms: u64,
        /// Connect over TLS (a server with `--tls-cert`), trusting the CAs in this PEM file.
        #[arg(long, value_name = "FILE", conflicts_with = "uds")]
        tls_ca: Option<String>,
        /// Client certificate (PEM) for a server that requires one (`--tls-client-ca`).
        #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
        tls_cert: Option<String>,
        /// The key of `--tls-cert` (PEM).
        #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_cert"])]
        tls_key: Option<String>,
        /// The name the server's certificate must carry (default: the host of `--addr`).
        #[arg(long, value_name = "NAME", requires = "tls_ca")]
        tls_server_name: Option<String>,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 64 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warden: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve {
            bundle,
            demo,
            listen,
            uds,
            admin_listen,
            shutdown_grace_ms,
            state_dir,
            admin_token_file,
            uds_mode,
            cache_capacity,
            cache_max_bytes,
            poll_interval,
            decision_log,
            worker_threads,
            max_connections,
            idle_timeout,
            tls_cert,
            tls_key,
            tls_client_ca,
        } => {
            let source = if demo {
                Ok(crate::config::BundleSource::Embedded)
            } else {
                crate::config::bundle_dir(bundle.as_deref()).map(crate::config::BundleSource::Dir)
            };
            let config = match source
                .and_then(|source| {
                    crate::config::ServeConfig::from_source(
                        source,
                        Some(&listen),
                        uds.as_deref(),
                        Some(&admin_listen),
                        Some(shutdown_grace_ms),
                    )
                })
                .and_then(|c| c.with_state_dir(state_dir.as_deref()))
                .and_then(|c| c.with_admin(admin_token_file.as_deref(), Some(&uds_mode)))
                .and_then(|c| c.with_runtime(cache_capacity, poll_interval, decision_log.as_deref()))
                .and_then(|c| c.with_cache_max_bytes(cache_max_bytes))
                .and_then(|c| c.with_connections(max_connections, idle_timeout))
                .and_then(|c| c.with_tls(tls_cert.as_deref(), tls_key.as_deref(), tls_client_ca.as_deref()))
                .and_then(|c| c.tls.as_ref().map_or(Ok(()), crate::server::tls::check).map(|()| c))
            {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("warden: {e}");
                    return Ok(ExitCode::from(64));
                }
            };
            if worker_threads == Some(0) {
                eprintln!("warden: --worker-threads: must be at least 1");
                return Ok(ExitCode::from(64));
            }
            serve(config, worker_threads)
        }
        Command::Validate { dir, state_dir } => validate(dir.as_deref(), state_dir.as_deref()),
        Command::Eval { request: Some(r), bundle, .. } => eval_request(&r, bundle.as_deref()),
        Command::Eval { propagate: Some(p), bundle, .. } => eval_propagate(&p, bundle.as_deref()),
        Command::Admins { command: AdminsCommand::Revoke { admin_addr, token_file, app, user } } => {
            admins_revoke(&admin_addr, &token_file, &app, &user)
        }
        Command::Admins { command: AdminsCommand::List { admin_addr } } => {
            admin_http(&admin_addr, "GET", "/v1/admins", None, None)
        }
        Command::Eval { cases: Some(c), .. } => eval_cases(&c),
        Command::Eval { .. } => bail!("give `--request FILE` or `--cases FILE`"),
        Command::Test { dir } => test(dir.as_deref()),
        Command::Healthcheck { addr, uds, service, timeout_ms, tls_ca, tls_cert, tls_key, tls_server_name } => {
            let target = match uds {
                Some(p) => healthcheck::Target::Uds(p),
                None => healthcheck::Target::Tcp(addr.unwrap_or_else(|| crate::config::DEFAULT_LISTEN.to_owned())),
            };
            let tls = match tls_ca {
                None => None,
                Some(ca) => {
                    match healthcheck::Tls::read(&ca, tls_cert.as_deref(), tls_key.as_deref(), tls_server_name) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            eprintln!("warden healthcheck: {e}");
                            return Ok(ExitCode::from(64));
                        }
                    }
                }
            };
            Ok(healthcheck::run(&target, &service, std::time::Duration::from_millis(timeout_ms), tls.as_ref()))
        }
    }
}

fn serve(config: crate::config::ServeConfig, worker_threads: Option<usize>) -> Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
    let rt = match worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
        None => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    }
    .context("starting the runtime")?;
    rt.block_on(crate::server::run(config))?;
    Ok(ExitCode::SUCCESS)
}

fn print_problems(problems: &[Problem]) {
    for p in problems {
        eprintln!("{p}");
    }
    // A long list ends with one problem that counts those left out: the total includes them.
    print_total(warden_core::policy::error::total(problems));
}

fn print_lines(problems: &[String]) {
    for p in problems {
        eprintln!("{p}");
    }
    print_total(problems.len());
}

fn print_total(total: usize) {
    eprintln!("{total} problem{} found", if total == 1 { "" } else { "s" });
}

/// Loads a bundle directory, or the embedded default when no directory was named and `policies/`
/// does not exist.
fn load_bundle(dir: Option<&Path>) -> std::result::Result<(Bundle, String), Vec<Problem>> {
    match dir {
        Some(d) => crate::runtime::files::read_dir(d).map(|b| (b, d.display().to_string())),
        None if Path::new(DEFAULT_BUNDLE).is_dir() => {
            crate::runtime::files::read_dir(Path::new(DEFAULT_BUNDLE)).map(|b| (b, DEFAULT_BUNDLE.to_owned()))
        }
        None => crate::runtime::files::embedded().map(|b| (b, "embedded default bundle".to_owned())),
    }
}

/// `warden validate [DIR] [--state-dir DIR]`: the checks of a reload, without the embedded fall-back
/// of the offline tools: with no DIR, `policies/` in the working directory must exist.
fn validate(dir: Option<&Path>, state_dir: Option<&Path>) -> Result<ExitCode> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None if Path::new(DEFAULT_BUNDLE).is_dir() => PathBuf::from(DEFAULT_BUNDLE),
        None => {
            let cwd = std::env::current_dir().map_or_else(|_| ".".to_owned(), |d| d.display().to_string());
            let what = if Path::new(DEFAULT_BUNDLE).exists() { "is not a directory" } else { "does not exist" };
            eprintln!(
                "warden: no bundle directory given, and the default `{DEFAULT_BUNDLE}/` {what} in `{cwd}`: name one \
                 (`warden validate DIR`)"
            );
            return Ok(ExitCode::from(1));
        }
    };
    // The state first: a state directory that cannot be read is an error whatever the bundle.
    let memory = match state_dir.map(crate::runtime::state::read_only).transpose() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("warden: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    let src = dir.display().to_string();
    let checked = crate::runtime::files::read_dir(&dir).map(|b| {
        // What a reload would still refuse: an empty bundle, and (against the server's state) an
        // admin-list change (SPEC §5.5).
        let mut problems: Vec<String> =
            crate::runtime::activation::empty_bundle_problem(&b, &src).into_iter().collect();
        if let Some(Err(refused)) = memory.as_ref().map(|m| m.transition(&b)) {
            problems.extend(refused);
        }
        (b, problems)
    });
    match checked {
        Ok((_, refused)) if !refused.is_empty() => {
            print_lines(&refused);
            Ok(ExitCode::from(1))
        }
        Ok((b, _)) => {
            let c = b.counts;
            println!(
                "{src}: valid, revision {} ({} policies, {} statements, {} users, {} groups, {} roles, {} SCPs, {} partner apps, {} domains, {} tests)",
                b.revision,
                c.policies,
                c.statements,
                c.users,
                c.groups,
                c.roles,
                c.scps,
                c.partner_apps,
                c.domains,
                c.tests
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            print_problems(&problems);
            Ok(ExitCode::from(1))
        }
    }
}

fn read_input(arg: &str) -> Result<String> {
    let mut s = String::new();
    if arg == "-" {
        std::io::stdin().read_to_string(&mut s).context("reading stdin")?;
    } else {
        s = std::fs::read_to_string(arg).with_context(|| format!("reading `{arg}`"))?;
    }
    Ok(s)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn eval_request(arg: &str, dir: Option<&Path>) -> Result<ExitCode> {
    let text = read_input(arg)?;
    let req: proto::AuthorizeRequest =
        serde_json::from_str(&text).with_context(|| format!("`{arg}` is not an AuthorizeRequest in proto JSON"))?;
    let (bundle, _) = match load_bundle(dir) {
        Ok(b) => b,
        Err(problems) => {
            print_problems(&problems);
            return Ok(ExitCode::from(1));
        }
    };
    let req = match convert::request_from_proto(req, now_ms()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warden: invalid request: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let resp = engine::authorize(&bundle, &req);
    let out = convert::response_to_proto(&resp, &bundle.revision, false, String::new());
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn eval_propagate(arg: &str, dir: Option<&Path>) -> Result<ExitCode> {
    let text = read_input(arg)?;
    let req: proto::PropagateIdentityRequest = serde_json::from_str(&text)
        .with_context(|| format!("`{arg}` is not a PropagateIdentityRequest in proto JSON"))?;
    let (bundle, _) = match load_bundle(dir) {
        Ok(b) => b,
        Err(problems) => {
            print_problems(&problems);
            return Ok(ExitCode::from(1));
        }
    };
    let req = match crate::grpc::propagate::request_from_proto(req, now_ms()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warden: INVALID_ARGUMENT: invalid request: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    // Offline there is no server state: remembered admins start from the bundle's own lists.
    let admins = warden_core::identity::AdminMemory::default().transition(&bundle).unwrap_or_default();
    match warden_core::identity::propagate(&bundle, &admins, &req, &engine::authorize) {
        Ok(o) => {
            let out = crate::grpc::propagate::outcome_to_proto(&o, &bundle.revision, String::new());
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let s = crate::grpc::status::error_to_status(&e);
            eprintln!("warden: {}: {}", crate::telemetry::metrics::code_name(s.code()), s.message());
            Ok(ExitCode::from(1))
        }
    }
}

/// `warden admins revoke`: `POST /v1/admins/revoke` on the admin listener, with the bearer token.
fn admins_revoke(addr: &str, token_file: &str, app: &str, user: &str) -> Result<ExitCode> {
    let token =
        std::fs::read_to_string(token_file).with_context(|| format!("--token-file: cannot read `{token_file}`"))?;
    let body = serde_json::json!({"app_arn": app, "user_name": user}).to_string();
    admin_http(addr, "POST", "/v1/admins/revoke", Some(token.trim()), Some(&body))
}

/// One HTTP/1.1 call to the admin listener (loopback); prints the body, exit 0 on 200, else 1.
fn admin_http(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Result<ExitCode> {
    use std::io::Read as _;
    let mut stream =
        std::net::TcpStream::connect(addr).with_context(|| format!("--admin-addr: cannot connect to `{addr}`"))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    write!(stream, "{head}\r\n{body}")?;
    let mut resp = String::new();
    stream.read_to_string(&mut resp)?;
    let status = resp.split_whitespace().nth(1).unwrap_or("");
    let text = resp.split("\r\n\r\n").nth(1).unwrap_or("").trim();
    if status == "200" {
        println!("{text}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("warden: {method} {path} failed (HTTP {status}): {text}");
        Ok(ExitCode::from(1))
    }
}

fn eval_cases(arg: &str) -> Result<ExitCode> {
    let reader: Box<dyn BufRead> = if arg == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(arg).with_context(|| format!("opening `{arg}`"))?))
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let now = now_ms();
    let mut reader = reader;
    let mut buf = Vec::new();
    let mut n = 0usize;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).with_context(|| format!("reading line {}", n + 1))? == 0 {
            break;
        }
        n += 1;
        let Ok(line) = std::str::from_utf8(&buf) else {
            let record =
                serde_json::json!({"id": "", "decision": "Error", "error": format!("line {n}: not UTF-8 text")});
            writeln!(out, "{record}")?;
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let record = match warden_core::policy::json::parse_strict(line) {
            Err(e) => {
                serde_json::json!({"id": "", "decision": "Error", "error": format!("line {n}: malformed JSON: {e}")})
            }
            Ok(v) => {
                let o = engine::simulate(&v, now);
                match o.result {
                    Ok(r) => serde_json::json!({
                        "id": o.id,
                        "decision": r.decision.as_str(),
                        "determining": r.determining.iter().map(|s| serde_json::json!({
                            "policy": &*s.policy, "sid": &*s.sid, "effect": s.effect.as_str()
                        })).collect::<Vec<_>>(),
                        "diagnostics": r.diagnostics,
                    }),
                    Err(e) => serde_json::json!({"id": o.id, "decision": "Error", "error": e}),
                }
            }
        };
        writeln!(out, "{record}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn test(dir: Option<&Path>) -> Result<ExitCode> {
    let (bundle, src) = match load_bundle(dir) {
        Ok(b) => b,
        Err(problems) => {
            print_problems(&problems);
            return Ok(ExitCode::from(1));
        }
    };
    let report = bundle_tests::run(&bundle, now_ms());
    for f in &report.failures {
        println!("FAIL {f}");
    }
    if bundle.tests.is_empty() {
        println!("{src}: the bundle has no test cases (tests/*.json)");
    }
    println!("{} passed, {} failed", report.passed, report.failures.len());
    Ok(if report.failures.is_empty() && !bundle.tests.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
