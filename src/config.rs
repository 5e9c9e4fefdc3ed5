//! The typed configuration of `warden serve`: every flag has a documented default, and every error
//! names the flag and the bad value. Built from the parsed command line (no environment reads).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Flag names, as the user types them.
pub mod flag {
    /// Bundle directory, or `s3://BUCKET/PREFIX`.
    pub const BUNDLE: &str = "--bundle";
    /// Public keys a bundle's `.signatures.json` must verify with.
    pub const BUNDLE_VERIFY_KEY: &str = "--bundle-verify-key";
    /// Where an S3 bundle is synced to.
    pub const BUNDLE_CACHE_DIR: &str = "--bundle-cache-dir";
    /// gRPC TCP listen address.
    pub const LISTEN: &str = "--listen";
    /// gRPC Unix socket path.
    pub const UDS: &str = "--uds";
    /// Admin HTTP listen address.
    pub const ADMIN_LISTEN: &str = "--admin-listen";
    /// Drain time on shutdown.
    pub const SHUTDOWN_GRACE: &str = "--shutdown-grace-ms";
    /// Where remembered state is kept.
    pub const STATE_DIR: &str = "--state-dir";
    /// Remembered state shared by a fleet (`dynamodb://TABLE`).
    pub const STATE: &str = "--state";
    /// How often a fleet replica reads the shared state.
    pub const STATE_POLL_INTERVAL: &str = "--state-poll-interval";
    /// Decision cache size.
    pub const CACHE_CAPACITY: &str = "--cache-capacity";
    /// Decision cache byte budget.
    pub const CACHE_MAX_BYTES: &str = "--cache-max-bytes";
    /// Poll instead of watching.
    pub const POLL_INTERVAL: &str = "--poll-interval";
    /// Decision log target.
    pub const DECISION_LOG: &str = "--decision-log";
    /// Bearer token for mutating admin calls.
    pub const ADMIN_TOKEN_FILE: &str = "--admin-token-file";
    /// Permissions of the Unix socket.
    pub const UDS_MODE: &str = "--uds-mode";
    /// Open connections per gRPC listener.
    pub const MAX_CONNECTIONS: &str = "--max-connections";
    /// Closing connections with no open stream.
    pub const IDLE_TIMEOUT: &str = "--idle-timeout";
    /// The gRPC TCP listener's certificate chain (PEM).
    pub const TLS_CERT: &str = "--tls-cert";
    /// The private key of `--tls-cert` (PEM).
    pub const TLS_KEY: &str = "--tls-key";
    /// The CAs client certificates must chain to (PEM): mTLS.
    pub const TLS_CLIENT_CA: &str = "--tls-client-ca";
}

/// Default gRPC address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default admin address (loopback: metrics are not for the world).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9464";
/// Default drain time.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Largest request message accepted (SPEC §7).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Most requests in one `AuthorizeBatch`.
pub const MAX_BATCH: usize = 100;
/// Open connections per gRPC listener by default (`--max-connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Most `--max-connections` accepted (each connection is a file descriptor).
pub const MAX_MAX_CONNECTIONS: usize = 1 << 20;
/// A gRPC connection with no open stream is closed after this by default (`--idle-timeout`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// A client that has not sent the HTTP/2 preface and its SETTINGS within this is disconnected (SPEC §7).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the bundle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    /// A directory on disk.
    Dir(PathBuf),
    /// The example bundle compiled into the binary (`serve --demo` only: never a silent fall-back).
    Embedded,
    /// A prefix of an S3 bucket, synced into a local cache directory (cargo feature `aws`).
    S3(S3Bundle),
}

/// `--bundle s3://BUCKET/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Bundle {
    /// The bucket.
    pub bucket: String,
    /// The key prefix: empty (the whole bucket) or ending in `/`.
    pub prefix: String,
}

impl S3Bundle {
    /// `s3://BUCKET/PREFIX`, as logged and reported.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// Parses `s3://BUCKET[/PREFIX]`: a bucket name as S3 allows it (3–63 lower-case letters, digits,
    /// `.` and `-`, starting and ending with a letter or digit), and a prefix without empty, `.` or
    /// `..` segments (a trailing `/` is implied: `s3://b/team` means the keys under `team/`).
    pub fn parse(v: &str) -> Result<S3Bundle, ConfigError> {
        let err = |message: String| ConfigError { flag: flag::BUNDLE, message };
        let rest = v.strip_prefix("s3://").ok_or_else(|| err(format!("`{v}` does not start with `s3://`")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !(3..=63).contains(&bucket.len())
            || !bucket.chars().all(ok_char)
            || !edge(bucket.chars().next())
            || !edge(bucket.chars().last())
        {
            return Err(err(format!(
                "`{bucket}` in `{v}` is not an S3 bucket name (3 to 63 lower-case letters, digits, `.` and `-`, \
                 starting and ending with a letter or digit): give `s3://BUCKET/PREFIX`"
            )));
        }
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        if (!prefix.is_empty() || rest.ends_with("//"))
            && prefix.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(err(format!("the prefix `{prefix}` in `{v}` has an empty, `.` or `..` segment")));
        }
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(S3Bundle { bucket: bucket.to_owned(), prefix })
    }
}

/// The bundle source `--bundle` names: `s3://BUCKET/PREFIX` (with the cargo feature `aws`), or a
/// directory (see [`bundle_dir`]).
pub fn bundle_source(flag_value: Option<&str>) -> Result<BundleSource, ConfigError> {
    match flag_value {
        Some(v) if v.starts_with("s3://") => {
            let s3 = S3Bundle::parse(v)?;
            if cfg!(feature = "aws") {
                Ok(BundleSource::S3(s3))
            } else {
                Err(ConfigError {
                    flag: flag::BUNDLE,
                    message: format!(
                        "`{v}`: bundles from S3 need fleet mode, and this binary was built without the cargo feature \
                         `aws`: build it with `cargo build --release --features aws`"
                    ),
                })
            }
        }
        v => bundle_dir(v).map(BundleSource::Dir),
    }
}

/// The shortest `--poll-interval` of an S3 bundle: each poll is a `ListObjectsV2` by every replica.
pub const MIN_S3_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The default `--poll-interval` of an S3 bundle (SPEC §10).
pub const DEFAULT_S3_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// The bundle directory used when none is named: `policies/` in the working directory.
pub const DEFAULT_BUNDLE_DIR: &str = "policies";

/// The bundle directory `--bundle` names, or the default `policies/`, which must then exist: with no
/// `--bundle` and no `policies/`, Warden says so rather than fall back to the embedded example.
pub fn bundle_dir(flag_value: Option<&str>) -> Result<PathBuf, ConfigError> {
    match flag_value {
        Some("") => Err(ConfigError { flag: flag::BUNDLE, message: "must not be empty".into() }),
        Some(d) => Ok(PathBuf::from(d)),
        None => {
            let dir = PathBuf::from(DEFAULT_BUNDLE_DIR);
            if dir.is_dir() {
                return Ok(dir);
            }
            let cwd = std::env::current_dir().map_or_else(|_| ".".to_owned(), |d| d.display().to_string());
            let what = if dir.exists() { "is not a directory" } else { "does not exist" };
            Err(ConfigError {
                flag: flag::BUNDLE,
                message: format!(
                    "not given, and the default bundle directory `{DEFAULT_BUNDLE_DIR}/` {what} in `{cwd}`: give \
                     `--bundle DIR` (or `--demo` to run the embedded example bundle)"
                ),
            })
        }
    }
}

/// `warden serve` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// The bundle.
    pub bundle: BundleSource,
    /// gRPC over TCP (`None`: only the Unix socket).
    pub listen: Option<SocketAddr>,
    /// gRPC over a Unix socket.
    pub uds: Option<PathBuf>,
    /// Admin HTTP (`None`: off).
    pub admin_listen: Option<SocketAddr>,
    /// How long in-flight calls may take to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Where remembered partner-app admins are persisted (`None`: in memory only).
    pub state_dir: Option<PathBuf>,
    /// The DynamoDB table that holds the admin state a fleet shares (`--state dynamodb://TABLE`;
    /// never together with `state_dir`).
    pub state_table: Option<String>,
    /// How often the shared state is read for changes made by other replicas (`--state-poll-interval`).
    pub state_poll_interval: Duration,
    /// Decisions cached per bundle (0: no cache).
    pub cache_capacity: usize,
    /// What the decisions cached per bundle may cost together, in bytes (0: no cache).
    pub cache_max_bytes: usize,
    /// Poll the bundle directory at this interval instead of watching it.
    pub poll_interval: Option<Duration>,
    /// Where decisions are logged.
    pub decision_log: Option<DecisionLogTarget>,
    /// The bearer token mutating admin calls must carry (`None`: mutations are off).
    pub admin_token: Option<AdminToken>,
    /// Permissions of the Unix socket (`--uds-mode`, default `0660`).
    pub uds_mode: u32,
    /// Bounds on connections (`--max-connections`, `--idle-timeout`; the rest are fixed, tests shorten them).
    pub connections: ConnectionLimits,
    /// TLS on the gRPC TCP listener (`None`: plaintext). The Unix socket and the admin listener stay
    /// plaintext.
    pub tls: Option<TlsFiles>,
    /// `--bundle-verify-key` (repeatable): a bundle activates only when its `.signatures.json`
    /// verifies with one of these public keys (PEM), read at start.
    pub bundle_verify_keys: Vec<PathBuf>,
    /// `--bundle-cache-dir`: where an S3 bundle is synced (`None`: `STATE_DIR/bundle-cache` with
    /// `--state-dir`, else a directory of this process under the system's temporary directory).
    pub bundle_cache_dir: Option<PathBuf>,
}

/// The files of TLS on the gRPC TCP listener, read at start and again whenever they change
/// (`server::tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--tls-cert`: the certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// `--tls-key`: its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// `--tls-client-ca`: client certificates are required and must chain to one of these CAs (PEM).
    pub client_ca: Option<PathBuf>,
}

/// Bounds on the connections of each listener (SPEC §7, §8 "Bounds under attack"); see
/// `server::connections` for how each is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections per gRPC listener (TCP and Unix socket each); past it a new connection is closed
    /// at accept.
    pub max_connections: usize,
    /// A gRPC connection with no open stream for this long is closed.
    pub idle_timeout: Duration,
    /// A gRPC connection whose client has not sent the HTTP/2 preface and SETTINGS within this is closed.
    pub handshake_timeout: Duration,
    /// HTTP/2 PING sent after this long without a frame from the client.
    pub keepalive_interval: Duration,
    /// A PING not acknowledged within this closes the connection (a dead or stuck peer).
    pub keepalive_timeout: Duration,
    /// Concurrent streams per gRPC connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// Bytes of answers a gRPC connection may hold waiting for its client's flow control; past it, new
    /// answers on that connection are RESOURCE_EXHAUSTED (a client that does not read).
    pub max_pending_response_bytes: usize,
    /// Open connections on the admin HTTP listener, its own pool: `/readyz` and `/metrics` stay
    /// reachable while gRPC is saturated.
    pub admin_max_connections: usize,
    /// An admin connection with no byte read or written for this long is closed.
    pub admin_idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            // Calls in flight on one connection = calls/s x latency: at this stack's ceiling (~115,000
            // calls/s) and 1 ms, about 115. 256 leaves room for bursts; past it a client queues its
            // calls itself instead of the server holding them (and their answers, see
            // `server::connections`) for a client that may not be reading.
            max_concurrent_streams: 256,
            // The largest answer (`max_encoding_message_size`): a client reading normally never has this
            // much waiting (a few answers for at most one window each).
            max_pending_response_bytes: 4 * MAX_MESSAGE_BYTES,
            admin_max_connections: 64,
            admin_idle_timeout: Duration::from_secs(10),
        }
    }
}

/// The admin bearer token (never printed: `Debug` shows its length only).
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(pub Vec<u8>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminToken({} bytes)", self.0.len())
    }
}

/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 16;
/// Default `--uds-mode`: owner and group may connect.
pub const DEFAULT_UDS_MODE: u32 = 0o660;

/// A bad flag value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    /// The flag.
    pub flag: &'static str,
    /// What is wrong, with the value.
    pub message: String,
}

fn addr(flag: &'static str, v: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if v == "off" || v == "none" {
        return Ok(None);
    }
    v.parse::<SocketAddr>().map(Some).map_err(|e| ConfigError {
        flag,
        message: format!("`{v}` is not an address such as `127.0.0.1:50051` (or `off`): {e}"),
    })
}

// === impl ServeConfig ===

impl ServeConfig {
    /// Sets `--admin-token-file` (read now: a token file that cannot be read is a start-up error) and
    /// `--uds-mode` (octal, e.g. `0660`).
    pub fn with_admin(mut self, token_file: Option<&str>, uds_mode: Option<&str>) -> Result<ServeConfig, ConfigError> {
        let err = |flag, message: String| ConfigError { flag, message };
        self.admin_token = match token_file {
            None => None,
            Some("") => return Err(err(flag::ADMIN_TOKEN_FILE, "must not be empty".into())),
            Some(p) => {
                let bytes =
                    std::fs::read(p).map_err(|e| err(flag::ADMIN_TOKEN_FILE, format!("cannot read `{p}`: {e}")))?;
                let token = bytes.trim_ascii().to_vec();
                if token.len() < MIN_ADMIN_TOKEN_BYTES || token.iter().any(|b| !b.is_ascii_graphic()) {
                    return Err(err(
                        flag::ADMIN_TOKEN_FILE,
                        format!("`{p}` must hold one token of at least {MIN_ADMIN_TOKEN_BYTES} printable characters"),
                    ));
                }
                Some(AdminToken(token))
            }
        };
        self.uds_mode = match uds_mode {
            None => DEFAULT_UDS_MODE,
            Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .ok()
                .filter(|v| *v <= 0o777)
                .ok_or_else(|| err(flag::UDS_MODE, format!("`{m}` is not an octal mode such as `0660`")))?,
        };
        Ok(self)
    }

    /// Sets `--state-dir`.
    pub fn with_state_dir(mut self, dir: Option<&str>) -> Result<ServeConfig, ConfigError> {
        self.state_dir = match dir {
            Some("") => return Err(ConfigError { flag: flag::STATE_DIR, message: "must not be empty".into() }),
            Some(d) => Some(PathBuf::from(d)),
            None => None,
        };
        Ok(self)
    }

    /// Sets `--state` (`dynamodb://TABLE`, needs the cargo feature `aws`; not with `--state-dir`) and
    /// `--state-poll-interval` (milliseconds, only with `--state`).
    pub fn with_state(mut self, url: Option<&str>, poll_interval_ms: Option<u64>) -> Result<ServeConfig, ConfigError> {
        let err = |flag, message: String| ConfigError { flag, message };
        self.state_table = match url {
            None => None,
            Some(url) => Some(state_table(url)?),
        };
        if self.state_table.is_some() && self.state_dir.is_some() {
            return Err(err(
                flag::STATE,
                "cannot be used with --state-dir: the admin state is one replica's directory or one fleet's table,                  not both"
                    .into(),
            ));
        }
        match poll_interval_ms {
            None => {}
            Some(_) if self.state_table.is_none() => {
                return Err(err(flag::STATE_POLL_INTERVAL, "is only for --state dynamodb://TABLE".into()));
            }
            Some(ms) if (100..=60_000).contains(&ms) => self.state_poll_interval = Duration::from_millis(ms),
            Some(ms) => return Err(err(flag::STATE_POLL_INTERVAL, format!("{ms} ms is outside 100–60000"))),
        }
        Ok(self)
    }

    /// Sets `--cache-capacity`, `--poll-interval` and `--decision-log`.
    pub fn with_runtime(
        mut self,
        cache_capacity: Option<usize>,
        poll_interval_ms: Option<u64>,
        decision_log: Option<&str>,
    ) -> Result<ServeConfig, ConfigError> {
        if let Some(c) = cache_capacity {
            if c > 100_000_000 {
                return Err(ConfigError {
                    flag: flag::CACHE_CAPACITY,
                    message: format!("{c} is over the limit of 100000000"),
                });
            }
            self.cache_capacity = c;
        }
        self.poll_interval = match poll_interval_ms {
            None => None,
            Some(ms) if (10..=3_600_000).contains(&ms) => Some(Duration::from_millis(ms)),
            Some(ms) => {
                return Err(ConfigError {
                    flag: flag::POLL_INTERVAL,
                    message: format!("{ms} ms is outside 10–3600000"),
                });
            }
        };
        self.decision_log = match decision_log {
            None => None,
            Some("") => return Err(ConfigError { flag: flag::DECISION_LOG, message: "must be a path or `-`".into() }),
            Some("-") => Some(DecisionLogTarget::Stdout),
            Some(p) => Some(DecisionLogTarget::File(PathBuf::from(p))),
        };
        Ok(self)
    }

    /// Sets `--bundle-verify-key` and `--bundle-cache-dir`, and checks them (and `--poll-interval`)
    /// against the bundle source: call it after [`ServeConfig::with_runtime`]. The key files are
    /// read by `runtime::signatures::load_verify_keys`.
    pub fn with_bundle_checks(
        mut self,
        verify_keys: &[String],
        cache_dir: Option<&str>,
    ) -> Result<ServeConfig, ConfigError> {
        let err = |flag, message: String| ConfigError { flag, message };
        if verify_keys.iter().any(String::is_empty) {
            return Err(err(flag::BUNDLE_VERIFY_KEY, "must not be empty".into()));
        }
        if !verify_keys.is_empty() && self.bundle == BundleSource::Embedded {
            return Err(err(
                flag::BUNDLE_VERIFY_KEY,
                "does not apply to `--demo` (the embedded example bundle is not signed)".into(),
            ));
        }
        self.bundle_verify_keys = verify_keys.iter().map(PathBuf::from).collect();
        self.bundle_cache_dir = match cache_dir {
            None => None,
            Some("") => return Err(err(flag::BUNDLE_CACHE_DIR, "must not be empty".into())),
            Some(_) if !matches!(self.bundle, BundleSource::S3(_)) => {
                return Err(err(flag::BUNDLE_CACHE_DIR, "is only for `--bundle s3://BUCKET/PREFIX`".into()));
            }
            Some(d) => Some(PathBuf::from(d)),
        };
        if matches!(self.bundle, BundleSource::S3(_))
            && let Some(every) = self.poll_interval
            && every < MIN_S3_POLL_INTERVAL
        {
            return Err(err(
                flag::POLL_INTERVAL,
                format!(
                    "{} ms is under the {} ms minimum of an S3 bundle (each poll lists the prefix, on every replica)",
                    every.as_millis(),
                    MIN_S3_POLL_INTERVAL.as_millis()
                ),
            ));
        }
        Ok(self)
    }

    /// Sets `--cache-max-bytes`.
    pub fn with_cache_max_bytes(mut self, max_bytes: Option<usize>) -> Result<ServeConfig, ConfigError> {
        if let Some(b) = max_bytes {
            if b > MAX_CACHE_MAX_BYTES {
                return Err(ConfigError {
                    flag: flag::CACHE_MAX_BYTES,
                    message: format!("{b} is over the limit of {MAX_CACHE_MAX_BYTES} (64 GiB)"),
                });
            }
            self.cache_max_bytes = b;
        }
        Ok(self)
    }

    /// Sets `--max-connections` and `--idle-timeout` (milliseconds).
    pub fn with_connections(
        mut self,
        max_connections: Option<usize>,
        idle_timeout_ms: Option<u64>,
    ) -> Result<ServeConfig, ConfigError> {
        match max_connections {
            None => {}
            Some(n) if (1..=MAX_MAX_CONNECTIONS).contains(&n) => self.connections.max_connections = n,
            Some(n) => {
                return Err(ConfigError {
                    flag: flag::MAX_CONNECTIONS,
                    message: format!("{n} is outside 1–{MAX_MAX_CONNECTIONS}"),
                });
            }
        }
        match idle_timeout_ms {
            None => {}
            Some(ms) if (1_000..=86_400_000).contains(&ms) => {
                self.connections.idle_timeout = Duration::from_millis(ms);
            }
            Some(ms) => {
                return Err(ConfigError {
                    flag: flag::IDLE_TIMEOUT,
                    message: format!("{ms} ms is outside 1000–86400000 (1 s to 24 h)"),
                });
            }
        }
        Ok(self)
    }

    /// Sets `--tls-cert`, `--tls-key` (both or neither) and `--tls-client-ca` (only with the other two).
    /// Only the flags are checked here; the files are read and checked by `server::tls::load`.
    pub fn with_tls(
        mut self,
        cert: Option<&str>,
        key: Option<&str>,
        client_ca: Option<&str>,
    ) -> Result<ServeConfig, ConfigError> {
        let path = |flag: &'static str, v: Option<&str>| match v {
            Some("") => Err(ConfigError { flag, message: "must not be empty".into() }),
            v => Ok(v.map(PathBuf::from)),
        };
        let (cert, key, client_ca) =
            (path(flag::TLS_CERT, cert)?, path(flag::TLS_KEY, key)?, path(flag::TLS_CLIENT_CA, client_ca)?);
        self.tls = match (cert, key, client_ca) {
            (None, None, None) => None,
            (Some(cert), Some(key), client_ca) => Some(TlsFiles { cert, key, client_ca }),
            (Some(_), None, _) => {
                return Err(ConfigError { flag: flag::TLS_KEY, message: "is required with --tls-cert".into() });
            }
            (None, Some(_), _) => {
                return Err(ConfigError { flag: flag::TLS_CERT, message: "is required with --tls-key".into() });
            }
            (None, None, Some(_)) => {
                return Err(ConfigError {
                    flag: flag::TLS_CLIENT_CA,
                    message: "needs --tls-cert and --tls-key (client certificates are checked only over TLS)".into(),
                });
            }
        };
        if self.tls.is_some() && self.listen.is_none() {
            return Err(ConfigError {
                flag: flag::TLS_CERT,
                message: "TLS is for the TCP listener, and --listen is `off` (the Unix socket stays plaintext)".into(),
            });
        }
        Ok(self)
    }

    /// Validates raw flag values; the bundle is what `--bundle` names (see [`bundle_source`]), or
    /// `policies/` (see [`bundle_dir`]).
    pub fn from_flags(
        bundle: Option<&str>,
        listen: Option<&str>,
        uds: Option<&str>,
        admin_listen: Option<&str>,
        shutdown_grace_ms: Option<u64>,
    ) -> Result<ServeConfig, ConfigError> {
        let bundle = bundle_source(bundle)?;
        ServeConfig::from_source(bundle, listen, uds, admin_listen, shutdown_grace_ms)
    }

    /// Validates raw flag values, with the bundle source given (`serve --demo`: the embedded example).
    pub fn from_source(
        bundle: BundleSource,
        listen: Option<&str>,
        uds: Option<&str>,
        admin_listen: Option<&str>,
        shutdown_grace_ms: Option<u64>,
    ) -> Result<ServeConfig, ConfigError> {
        let uds = match uds {
            Some("") => {
                return Err(ConfigError { flag: flag::UDS, message: "must not be empty".into() });
            }
            Some(p) => Some(PathBuf::from(p)),
            None => None,
        };
        let listen = addr(flag::LISTEN, listen.unwrap_or(DEFAULT_LISTEN))?;
        if listen.is_none() && uds.is_none() {
            return Err(ConfigError {
                flag: flag::LISTEN,
                message: "is `off` and no `--uds` is given: nothing to serve on".into(),
            });
        }
        let admin_listen = addr(flag::ADMIN_LISTEN, admin_listen.unwrap_or(DEFAULT_ADMIN_LISTEN))?;
        let shutdown_grace = match shutdown_grace_ms {
            None => DEFAULT_SHUTDOWN_GRACE,
            Some(ms) if ms <= 600_000 => Duration::from_millis(ms),
            Some(ms) => {
                return Err(ConfigError {
                    flag: flag::SHUTDOWN_GRACE,
                    message: format!("{ms} ms is over the 600000 ms limit"),
                });
            }
        };
        Ok(ServeConfig {
            bundle,
            listen,
            uds,
            admin_listen,
            shutdown_grace,
            state_dir: None,
            state_table: None,
            state_poll_interval: DEFAULT_STATE_POLL_INTERVAL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            admin_token: None,
            uds_mode: DEFAULT_UDS_MODE,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            poll_interval: None,
            decision_log: None,
            connections: ConnectionLimits::default(),
            tls: None,
            bundle_verify_keys: Vec::new(),
            bundle_cache_dir: None,
        })
    }
}

/// How often a replica reads the shared admin state by default (`--state-poll-interval`): a revoke on
/// one replica reaches every other within this plus one read (SPEC §10: within 2 s).
pub const DEFAULT_STATE_POLL_INTERVAL: Duration = Duration::from_millis(1000);

/// The table a `--state` URL names: `dynamodb://TABLE`, TABLE a DynamoDB table name (3–255 of
/// `a-z A-Z 0-9 _ - .`). Fleet mode needs the cargo feature `aws`: without it, the error says so.
pub fn state_table(url: &str) -> Result<String, ConfigError> {
    let err = |message: String| ConfigError { flag: flag::STATE, message };
    let Some(table) = url.strip_prefix("dynamodb://") else {
        return Err(err(format!("`{url}` is not `dynamodb://TABLE` (the only shared state store)")));
    };
    let valid = (3..=255).contains(&table.len())
        && table.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid {
        return Err(err(format!(
            "`{table}` is not a DynamoDB table name (3–255 characters of a-z, A-Z, 0-9, `_`, `-`, `.`)"
        )));
    }
    if !cfg!(feature = "aws") {
        return Err(err(format!(
            "`{url}` needs fleet mode, and this warden was built without the cargo feature `aws` (build it with              `cargo build --release --features aws`)"
        )));
    }
    Ok(table.to_owned())
}

/// Where the log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionLogTarget {
    /// Standard output.
    Stdout,
    /// A file (appended).
    File(PathBuf),
}

/// Decisions a snapshot's cache holds at most (`--cache-capacity`).
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;
/// What a snapshot's cached decisions may cost together (`--cache-max-bytes`): 32 MiB.
pub const DEFAULT_CACHE_MAX_BYTES: usize = 32 << 20;
/// The largest `--cache-max-bytes`: 64 GiB.
pub const MAX_CACHE_MAX_BYTES: usize = 64 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback() {
        let c = ServeConfig::from_flags(Some("policies"), None, None, None, None).unwrap();
        assert_eq!(c.listen, Some("127.0.0.1:50051".parse().unwrap()));
        assert_eq!(c.admin_listen, Some("127.0.0.1:9464".parse().unwrap()));
    }

    #[test]
    fn errors_name_the_flag() {
        let e = ServeConfig::from_flags(Some("b"), Some("localhost"), None, None, None).unwrap_err();
        assert_eq!(e.flag, "--listen");
        assert!(e.to_string().contains("`localhost`"));
        let e = ServeConfig::from_flags(Some("b"), None, None, Some("x:y"), None).unwrap_err();
        assert_eq!(e.flag, "--admin-listen");
        let e = ServeConfig::from_flags(Some("b"), Some("off"), None, None, None).unwrap_err();
        assert_eq!(e.flag, "--listen");
        let e = ServeConfig::from_flags(Some(""), None, None, None, None).unwrap_err();
        assert_eq!(e.flag, "--bundle");
    }

    #[test]
    fn cache_max_bytes_defaults_to_32_mib_and_is_bounded() {
        let c = ServeConfig::from_flags(Some("policies"), None, None, None, None).unwrap();
        assert_eq!(c.cache_max_bytes, 33_554_432);
        assert_eq!(c.clone().with_cache_max_bytes(None).unwrap().cache_max_bytes, 33_554_432);
        assert_eq!(c.clone().with_cache_max_bytes(Some(0)).unwrap().cache_max_bytes, 0);
        assert_eq!(c.clone().with_cache_max_bytes(Some(1 << 20)).unwrap().cache_max_bytes, 1 << 20);
        let e = c.with_cache_max_bytes(Some(MAX_CACHE_MAX_BYTES + 1)).unwrap_err();
        assert_eq!(e.flag, "--cache-max-bytes");
        assert!(e.to_string().contains("68719476737"), "{e}");
    }

    #[test]
    fn state_flags_name_the_flag_and_the_rule() {
        let c = ServeConfig::from_flags(Some("policies"), None, None, None, None).unwrap();
        assert_eq!((c.state_table.as_deref(), c.state_poll_interval), (None, Duration::from_secs(1)));
        for (url, says) in [
            ("s3://bucket", "is not `dynamodb://TABLE`"),
            ("dynamodb://", "is not a DynamoDB table name"),
            ("dynamodb://ab", "is not a DynamoDB table name"),
            ("dynamodb://a/b", "is not a DynamoDB table name"),
            ("dynamodb://warden state", "is not a DynamoDB table name"),
        ] {
            let e = c.clone().with_state(Some(url), None).unwrap_err();
            assert_eq!(e.flag, "--state", "{url}");
            assert!(e.to_string().contains(says), "{url}: {e}");
        }
        let e = c.clone().with_state(None, Some(500)).unwrap_err();
        assert_eq!(e.flag, "--state-poll-interval");
        assert!(e.to_string().contains("only for --state"), "{e}");
        let r = c.clone().with_state(Some("dynamodb://warden-state_1.prod"), Some(500));
        if cfg!(feature = "aws") {
            let s = r.unwrap();
            assert_eq!(s.state_table.as_deref(), Some("warden-state_1.prod"));
            assert_eq!(s.state_poll_interval, Duration::from_millis(500));
            let e = s.clone().with_state(Some("dynamodb://t12"), Some(50)).unwrap_err();
            assert_eq!(e.flag, "--state-poll-interval");
            assert!(e.to_string().contains("50 ms is outside 100–60000"), "{e}");
            let e = c.with_state_dir(Some("/var/lib/warden")).unwrap().with_state(Some("dynamodb://t12"), None);
            let e = e.unwrap_err();
            assert_eq!(e.flag, "--state");
            assert!(e.to_string().contains("cannot be used with --state-dir"), "{e}");
        } else {
            let e = r.unwrap_err();
            assert_eq!(e.flag, "--state");
            assert!(e.to_string().contains("built without the cargo feature `aws`"), "{e}");
        }
    }

    #[test]
    fn connection_flags() {
        let c = ServeConfig::from_flags(Some("policies"), None, None, None, None).unwrap();
        assert_eq!(c.connections.max_connections, 1024);
        assert_eq!(c.connections.idle_timeout, Duration::from_secs(300));
        assert_eq!(c.connections.handshake_timeout, Duration::from_secs(10));
        let c = c.with_connections(Some(50), Some(1_000)).unwrap();
        assert_eq!(c.connections.max_connections, 50);
        assert_eq!(c.connections.idle_timeout, Duration::from_secs(1));
        let e = c.clone().with_connections(Some(0), None).unwrap_err();
        assert_eq!(e.flag, "--max-connections");
        assert!(e.to_string().contains("0 is outside"), "{e}");
        let e = c.with_connections(None, Some(999)).unwrap_err();
        assert_eq!(e.flag, "--idle-timeout");
        assert!(e.to_string().contains("999 ms"), "{e}");
    }

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        for (url, bucket, prefix) in [
            ("s3://my-bucket/team/bundle", "my-bucket", "team/bundle/"),
            ("s3://my-bucket/team/bundle/", "my-bucket", "team/bundle/"),
            ("s3://my.bucket.1", "my.bucket.1", ""),
            ("s3://abc/", "abc", ""),
        ] {
            let s = S3Bundle::parse(url).unwrap();
            assert_eq!((s.bucket.as_str(), s.prefix.as_str()), (bucket, prefix), "{url}");
        }
        for (url, says) in [
            ("s3://", "is not an S3 bucket name"),
            ("s3://ab/x", "is not an S3 bucket name"),
            ("s3://My-Bucket/x", "is not an S3 bucket name"),
            ("s3://-bucket/x", "is not an S3 bucket name"),
            ("s3://bucket_1/x", "is not an S3 bucket name"),
            ("s3://bucket/a//b", "empty, `.` or `..` segment"),
            ("s3://bucket/a/../b", "empty, `.` or `..` segment"),
            ("s3://bucket//", "empty, `.` or `..` segment"),
        ] {
            let e = S3Bundle::parse(url).unwrap_err();
            assert_eq!(e.flag, "--bundle");
            assert!(e.to_string().contains(says), "{url}: {e}");
        }
        let source = bundle_source(Some("s3://bucket/p"));
        if cfg!(feature = "aws") {
            assert_eq!(source.unwrap(), BundleSource::S3(S3Bundle { bucket: "bucket".into(), prefix: "p/".into() }));
        } else {
            let e = source.unwrap_err();
            assert!(e.to_string().contains("built without the cargo feature `aws`"), "{e}");
            assert!(e.to_string().contains("--features aws"), "{e}");
        }
        assert_eq!(bundle_source(Some("some/dir")).unwrap(), BundleSource::Dir("some/dir".into()));
    }

    #[test]
    fn bundle_check_flags_fit_the_source() {
        let dir = ServeConfig::from_flags(Some("policies"), None, None, None, None).unwrap();
        let c = dir.clone().with_bundle_checks(&["a.pem".into(), "b.pem".into()], None).unwrap();
        assert_eq!(c.bundle_verify_keys, vec![PathBuf::from("a.pem"), PathBuf::from("b.pem")]);
        let e = dir.clone().with_bundle_checks(&[], Some("/tmp/c")).unwrap_err();
        assert_eq!(e.flag, "--bundle-cache-dir");
        let e = dir.with_bundle_checks(&[String::new()], None).unwrap_err();
        assert_eq!(e.flag, "--bundle-verify-key");
        let demo = ServeConfig::from_source(BundleSource::Embedded, None, None, None, None).unwrap();
        let e = demo.with_bundle_checks(&["a.pem".into()], None).unwrap_err();
        assert!(e.to_string().contains("--demo"), "{e}");
        let s3 = BundleSource::S3(S3Bundle { bucket: "bucket".into(), prefix: String::new() });
        let s3 = ServeConfig::from_source(s3, None, None, None, None).unwrap();
        let c = s3.clone().with_bundle_checks(&[], Some("/var/cache/warden")).unwrap();
        assert_eq!(c.bundle_cache_dir, Some(PathBuf::from("/var/cache/warden")));
        let fast = s3.clone().with_runtime(None, Some(500), None).unwrap();
        let e = fast.with_bundle_checks(&[], None).unwrap_err();
        assert_eq!(e.flag, "--poll-interval");
        assert!(e.to_string().contains("500 ms is under the 1000 ms minimum"), "{e}");
        assert!(s3.with_runtime(None, Some(1_000), None).unwrap().with_bundle_checks(&[], None).is_ok());
    }

    #[test]
    fn tls_flags_come_as_cert_and_key_with_an_optional_client_ca() {
        let c = ServeConfig::from_flags(Some("policies"), None, None, None, None).unwrap();
        assert_eq!(c.tls, None);
        assert_eq!(c.clone().with_tls(None, None, None).unwrap().tls, None);
        let t = c.clone().with_tls(Some("c.pem"), Some("k.pem"), None).unwrap().tls.unwrap();
        assert_eq!((t.cert, t.key, t.client_ca), ("c.pem".into(), "k.pem".into(), None));
        let t = c.clone().with_tls(Some("c.pem"), Some("k.pem"), Some("ca.pem")).unwrap().tls.unwrap();
        assert_eq!(t.client_ca, Some("ca.pem".into()));
        for (cert, key, ca, flag, says) in [
            (Some("c.pem"), None, None, "--tls-key", "is required with --tls-cert"),
            (None, Some("k.pem"), None, "--tls-cert", "is required with --tls-key"),
            (None, None, Some("ca.pem"), "--tls-client-ca", "needs --tls-cert and --tls-key"),
            (Some("c.pem"), None, Some("ca.pem"), "--tls-key", "is required"),
            (Some(""), Some("k.pem"), None, "--tls-cert", "must not be empty"),
            (Some("c.pem"), Some(""), None, "--tls-key", "must not be empty"),
            (Some("c.pem"), Some("k.pem"), Some(""), "--tls-client-ca", "must not be empty"),
        ] {
            let e = c.clone().with_tls(cert, key, ca).unwrap_err();
            assert_eq!(e.flag, flag, "{cert:?} {key:?} {ca:?}: {e}");
            assert!(e.to_string().starts_with(flag) && e.to_string().contains(says), "{e}");
        }
        // TLS is for TCP: with only the Unix socket there is nothing to put it on.
        let uds_only = ServeConfig::from_flags(Some("policies"), Some("off"), Some("w.sock"), None, None).unwrap();
        let e = uds_only.with_tls(Some("c.pem"), Some("k.pem"), None).unwrap_err();
        assert_eq!(e.flag, "--tls-cert");
        assert!(e.to_string().contains("--listen is `off`"), "{e}");
    }
}
