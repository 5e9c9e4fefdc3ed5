//! The command line (`warden serve | validate | eval | test | healthcheck | admins | state | bundle | completions |
//! man`):
//! clap parsing, then the offline tools on the pure engine. Exit codes: 0 success, 1 a check failed
//! (invalid bundle, failing tests, a case answered `Error`, bad input file, a server that is not
//! SERVING), 64 bad usage, 141 standard output closed early (`warden … | head`: the convention of a
//! process ended by SIGPIPE; nothing more is written, nothing is reported).
//!
//! Nothing here prints with `println!`, which panics when standard output is a closed pipe: output goes
//! through `writeln!` and the error reaches [`main`] (`clippy::print_stdout` is denied below).
#![deny(clippy::print_stdout)]
mod bundle_tests;
mod fleet;
mod healthcheck;
mod report;

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

/// `println!` that returns the write error instead of panicking (see the module doc).
macro_rules! say {
    ($($t:tt)*) => {
        writeln!(std::io::stdout().lock(), $($t)*)
    };
}

// After `say!`: textual macro scope.
mod signing;

/// Exit code when standard output was closed under us (128 + SIGPIPE, as a shell reports a process
/// that SIGPIPE ended).
pub const EXIT_CLOSED_PIPE: u8 = 141;

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
        #[arg(long, required_unless_present = "state")]
        token_file: Option<String>,
        /// Revoke in the table a fleet shares (`dynamodb://TABLE`, as `serve --state`) instead of through
        /// a server: every replica applies it at its next poll. Needs AWS credentials allowed to read and
        /// write the table.
        #[arg(long, value_name = "URL", conflicts_with_all = ["admin_addr", "token_file"])]
        state: Option<String>,
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
        /// Read the table a fleet shares (`dynamodb://TABLE`, as `serve --state`) instead of a server.
        #[arg(long, value_name = "URL", conflicts_with = "admin_addr")]
        state: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum StateCommand {
    /// Create the DynamoDB table a fleet shares its admin state in (partition key `pk`, string;
    /// on-demand capacity) and wait until it is active; a table that exists with that key schema is
    /// fine. Uses the standard AWS credential chain and `AWS_ENDPOINT_URL`.
    CreateTable {
        /// `dynamodb://TABLE`, as `serve --state` takes it.
        url: String,
    },
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Write DIR/.signatures.json: the sha256 of every bundle file and an Ed25519 signature over them
    /// (see docs/fleet.md). Upload it last: a replica activates a prefix only once the files match it.
    Sign {
        /// The private key: PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` (or `bundle keygen`)
        /// writes it.
        #[arg(long, value_name = "KEY.pem")]
        key: PathBuf,
        /// The bundle directory.
        dir: PathBuf,
    },
    /// Make an Ed25519 key pair: the private key for `bundle sign` (PKCS#8 PEM, mode 0600) and the
    /// public key for `serve --bundle-verify-key` (PEM). Existing files are never overwritten.
    Keygen {
        /// Where to write the private key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Where to write the public key.
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once per process; boxing `serve`'s flags buys nothing")]
enum Command {
    /// Run the sidecar: gRPC (warden.v1.Authorizer, health, reflection) and the admin HTTP listener.
    Serve {
        /// Bundle directory (default: `policies` in the working directory, which must then exist), or
        /// `s3://BUCKET/PREFIX` (a build with the cargo feature `aws`): the prefix is synced into
        /// `--bundle-cache-dir` every `--poll-interval` (default 10 s), only changed objects fetched.
        #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
        bundle: Option<String>,
        /// Activate a bundle only when its `.signatures.json` verifies with this Ed25519 public key
        /// (PEM, `openssl pkey -pubout`) and its files match it exactly. Repeat for several keys (any
        /// one verifies: key rotation).
        #[arg(long, value_name = "PUB.pem")]
        bundle_verify_key: Vec<String>,
        /// Where an S3 bundle is synced (locked: one server per directory). Default:
        /// `STATE_DIR/bundle-cache` with `--state-dir`, else a directory of this process under the
        /// system's temporary directory, removed at exit.
        #[arg(long, value_name = "DIR")]
        bundle_cache_dir: Option<String>,
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
        /// Keep remembered partner-app admins in a DynamoDB table every replica of a fleet shares,
        /// `dynamodb://TABLE` (conditional writes; needs a build with the cargo feature `aws`; not with
        /// `--state-dir`). The table must exist: `warden state create-table dynamodb://TABLE`.
        #[arg(long, value_name = "URL")]
        state: Option<String>,
        /// Read the shared state (`--state`) every MS milliseconds for changes other replicas made
        /// (default 1000: a revoke on one replica is applied by every other within about a second).
        #[arg(long, value_name = "MS")]
        state_poll_interval: Option<u64>,
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
        /// Re-read the bundle directory every MS milliseconds instead of watching it (EFS, NFS); for
        /// an S3 bundle, sync it every MS milliseconds (default 10000, at least 1000).
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
        /// Log lines on stderr as human-readable text, or as one JSON object per line (for log shippers).
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
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
    /// Sign bundles (`bundle sign`) and make signing keys (`bundle keygen`).
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
    /// Manage the remembered admins of a running server (or of a fleet's table).
    Admins {
        #[command(subcommand)]
        command: AdminsCommand,
    },
    /// The admin state a fleet shares (`serve --state dynamodb://TABLE`).
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Load and check a bundle exactly as `serve` would; print every problem as `path: field: message`.
    Validate {
        /// Bundle directory (default: `policies` in the working directory, which must then exist).
        dir: Option<PathBuf>,
        /// Also check the bundle against the remembered state of a server (`serve --state-dir`): an
        /// admin-list change `serve` would refuse fails here first. Read only: no lock, no write.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Also check the bundle against the admin state a fleet shares (`serve --state
        /// dynamodb://TABLE`; read only). Needs AWS credentials allowed `dynamodb:GetItem` on the table.
        #[arg(long, value_name = "URL", conflicts_with = "state_dir")]
        state: Option<String>,
        /// Treat warnings (constructs AWS accepts but IAM Access Analyzer flags) as problems: exit 1
        /// when there is any.
        #[arg(long)]
        strict: bool,
        /// Require the bundle's `.signatures.json` to verify with this public key (PEM), as `serve
        /// --bundle-verify-key` does; repeatable. Without it a `.signatures.json` that is present is
        /// still checked against the files.
        #[arg(long, value_name = "PUB.pem")]
        bundle_verify_key: Vec<PathBuf>,
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
        /// How to print the results: `text`, `json` (one document), or `junit` (XML for CI systems).
        #[arg(long, value_enum, default_value = "text")]
        format: report::Format,
        /// Run only the cases whose name contains PATTERN, or matches it whole when it has `*` or `?`.
        #[arg(long, value_name = "PATTERN")]
        run: Option<String>,
    },
    /// Print a shell completion script (`warden completions bash > /etc/bash_completion.d/warden`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `warden man > warden.1 && man ./warden.1`).
    Man,
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
        Err(e) if closed_pipe(&e) => ExitCode::from(EXIT_CLOSED_PIPE),
        Err(e) => {
            eprintln!("warden: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Whether `e` is a write to a standard output whose reader went away.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// `serve --log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (the message and its values).
    Json,
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve {
            bundle,
            bundle_verify_key,
            bundle_cache_dir,
            demo,
            listen,
            uds,
            admin_listen,
            shutdown_grace_ms,
            state_dir,
            state,
            state_poll_interval,
            admin_token_file,
            uds_mode,
            cache_capacity,
            cache_max_bytes,
            poll_interval,
            decision_log,
            worker_threads,
            max_connections,
            idle_timeout,
            log_format,
            tls_cert,
            tls_key,
            tls_client_ca,
        } => {
            let source = if demo {
                Ok(crate::config::BundleSource::Embedded)
            } else {
                crate::config::bundle_source(bundle.as_deref())
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
                .and_then(|c| c.with_state(state.as_deref(), state_poll_interval))
                .and_then(|c| c.with_admin(admin_token_file.as_deref(), Some(&uds_mode)))
                .and_then(|c| c.with_runtime(cache_capacity, poll_interval, decision_log.as_deref()))
                .and_then(|c| c.with_bundle_checks(&bundle_verify_key, bundle_cache_dir.as_deref()))
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
            // The keys are read again at start; a bad key file is a usage error, found here first.
            if let Err(e) = crate::runtime::signatures::load_verify_keys(&config.bundle_verify_keys) {
                eprintln!("warden: {e}");
                return Ok(ExitCode::from(64));
            }
            if worker_threads == Some(0) {
                eprintln!("warden: --worker-threads: must be at least 1");
                return Ok(ExitCode::from(64));
            }
            serve(config, worker_threads, log_format)
        }
        Command::Validate { dir, state_dir, state, strict, bundle_verify_key } => {
            let keys = match crate::runtime::signatures::load_verify_keys(&bundle_verify_key) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("warden: {e}");
                    return Ok(ExitCode::from(64));
                }
            };
            validate(dir.as_deref(), state_dir.as_deref(), state.as_deref(), strict, &keys)
        }
        Command::Bundle { command: BundleCommand::Sign { key, dir } } => signing::sign(&key, &dir),
        Command::Bundle { command: BundleCommand::Keygen { key, public_key } } => signing::keygen(&key, &public_key),
        Command::Eval { request: Some(r), bundle, .. } => eval_request(&r, bundle.as_deref()),
        Command::Eval { propagate: Some(p), bundle, .. } => eval_propagate(&p, bundle.as_deref()),
        Command::Admins { command: AdminsCommand::Revoke { state: Some(url), app, user, .. } } => {
            fleet::revoke(&url, &app, &user)
        }
        Command::Admins { command: AdminsCommand::Revoke { admin_addr, token_file, app, user, .. } } => {
            admins_revoke(&admin_addr, token_file.as_deref().unwrap_or_default(), &app, &user)
        }
        Command::Admins { command: AdminsCommand::List { state: Some(url), .. } } => fleet::list(&url),
        Command::Admins { command: AdminsCommand::List { admin_addr, .. } } => {
            admin_http(&admin_addr, "GET", "/v1/admins", None, None)
        }
        Command::State { command: StateCommand::CreateTable { url } } => fleet::create_table(&url),
        Command::Eval { cases: Some(c), .. } => eval_cases(&c),
        Command::Eval { .. } => bail!("give `--request FILE` or `--cases FILE`"),
        Command::Test { dir, format, run } => test(dir.as_deref(), format, run.as_deref()),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "warden", &mut out);
            std::io::stdout().lock().write_all(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out)?;
            std::io::stdout().lock().write_all(&out)?;
            Ok(ExitCode::SUCCESS)
        }
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

fn serve(config: crate::config::ServeConfig, worker_threads: Option<usize>, log_format: LogFormat) -> Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match log_format {
        LogFormat::Text => logs.with_ansi(ansi).try_init(),
        LogFormat::Json => logs.json().with_current_span(false).try_init(),
    };
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

/// Prints the warnings of a bundle that loaded, one per line, then `N warning(s)` (nothing when
/// there are none).
fn print_warnings(w: &warden_core::policy::Warnings) {
    if w.is_empty() {
        return;
    }
    for x in w.kept() {
        eprintln!("{x}");
    }
    if w.left_out() > 0 {
        eprintln!("… and {} more warnings (only the first {} are listed)", w.left_out(), w.kept().len());
    }
    let total = w.total();
    eprintln!("{total} warning{}", if total == 1 { "" } else { "s" });
}

/// `warden validate --strict`: the warnings as problems (`path: field: message [rule]`).
fn strict_problems(w: &warden_core::policy::Warnings) -> Vec<Problem> {
    let mut out: Vec<Problem> = w.kept().iter().map(warden_core::policy::Warning::to_problem).collect();
    if w.left_out() > 0 {
        out.push(Problem {
            file: ".".into(),
            field: String::new(),
            message: format!("… and {} more problems (only the first {} are listed)", w.left_out(), out.len()),
        });
    }
    out
}

/// `warden validate [DIR] [--state-dir DIR | --state URL] [--strict] [--bundle-verify-key PUB.pem]`: the checks of a
/// reload, without the embedded fall-back of the offline tools: with no DIR, `policies/` in the
/// working directory must exist. Warnings are printed and do not fail the bundle, unless `strict`.
fn validate(
    dir: Option<&Path>,
    state_dir: Option<&Path>,
    state: Option<&str>,
    strict: bool,
    keys: &[crate::runtime::signatures::VerifyKey],
) -> Result<ExitCode> {
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
    // The state first: a state directory or table that cannot be read is an error whatever the bundle.
    let memory = match (state_dir.map(crate::runtime::state::read_only).transpose(), state) {
        (Err(e), _) => {
            eprintln!("warden: {e:#}");
            return Ok(ExitCode::from(1));
        }
        (Ok(m), None) => m,
        (Ok(_), Some(url)) => match fleet::read_memory(url) {
            Ok(m) => Some(m),
            Err(code) => return Ok(code),
        },
    };
    // As a reload: nothing is built from files that their `.signatures.json` (or the keys) refuse.
    let refused = crate::runtime::signatures::check_dir(&dir, keys);
    if !refused.is_empty() {
        print_problems(&refused);
        return Ok(ExitCode::from(1));
    }
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
        Ok((b, _)) if strict && !b.warnings.is_empty() => {
            print_problems(&strict_problems(&b.warnings));
            Ok(ExitCode::from(1))
        }
        Ok((b, _)) => {
            print_warnings(&b.warnings);
            let c = b.counts;
            say!(
                "{src}: valid, revision {} ({} policies, {} statements, {} users, {} groups, {} roles, {} SCPs, {} partner apps, {} domains, {} tests{})",
                b.revision,
                c.policies,
                c.statements,
                c.users,
                c.groups,
                c.roles,
                c.scps,
                c.partner_apps,
                c.domains,
                c.tests,
                match b.warnings.total() {
                    0 => String::new(),
                    1 => ", 1 warning".to_owned(),
                    n => format!(", {n} warnings"),
                }
            )?;
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
    say!("{}", serde_json::to_string_pretty(&out)?)?;
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
            say!("{}", serde_json::to_string_pretty(&out)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let s = crate::grpc::status::error_to_status(&e, "", &bundle.revision);
            let check = e.check.map(|c| format!(" [{}]", c.as_str())).unwrap_or_default();
            eprintln!("warden: {}{check}: {}", crate::telemetry::metrics::code_name(s.code()), s.message());
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
        say!("{text}")?;
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
    let mut errors = 0usize;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).with_context(|| format!("reading line {}", n + 1))? == 0 {
            break;
        }
        n += 1;
        let Ok(line) = std::str::from_utf8(&buf) else {
            let record =
                serde_json::json!({"id": "", "decision": "Error", "error": format!("line {n}: not UTF-8 text")});
            errors += 1;
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
        if record.get("decision").and_then(serde_json::Value::as_str) == Some("Error") {
            errors += 1;
        }
        writeln!(out, "{record}")?;
    }
    out.flush()?;
    if errors > 0 {
        eprintln!("warden: {errors} of the cases answered `Error` (see their `error`)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `warden test [DIR] [--format F] [--run PATTERN]`: exit 0 when every case run passed and at least one
/// ran; 1 when one failed, when the bundle has no cases, or when `--run` selected none.
fn test(dir: Option<&Path>, format: report::Format, run: Option<&str>) -> Result<ExitCode> {
    let (bundle, src) = match load_bundle(dir) {
        Ok(b) => b,
        Err(problems) => {
            print_problems(&problems);
            return Ok(ExitCode::from(1));
        }
    };
    let filter = run.map(bundle_tests::NameFilter::new);
    let report = bundle_tests::run(&bundle, now_ms(), filter.as_ref());
    if bundle.tests.is_empty() {
        eprintln!("warden: {src}: the bundle has no test cases (tests/*.json)");
    } else if report.cases.is_empty() {
        eprintln!("warden: --run: no test case name matches `{}`", run.unwrap_or_default());
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    report::write(&mut out, format, &src, &bundle.revision, &report)?;
    out.flush()?;
    Ok(if report.failed().count() == 0 && !report.cases.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
