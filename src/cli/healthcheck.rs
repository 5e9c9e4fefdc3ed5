//! `warden healthcheck`: a gRPC health client (`grpc.health.v1.Health/Check`) for a container's
//! HEALTHCHECK and Kubernetes exec probes. Exit 0 when the service is SERVING; exit 1 when it is not
//! (NOT_SERVING, unknown service, unreachable, no answer in time). Prints one line either way. It needs
//! nothing but the binary itself (no shell, no grpcurl), so it runs in a `scratch` image. With
//! `--tls-ca` it speaks TLS to a server started with `--tls-cert` (and, for mTLS, presents
//! `--tls-cert`/`--tls-key` of its own).
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `HOST:PORT` (or a full `http://…` URI).
    Tcp(String),
    /// A Unix socket path.
    Uds(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(a) => f.write_str(a),
            Target::Uds(p) => write!(f, "unix:{p}"),
        }
    }
}

/// TLS towards the server: the CA to trust, an optional client identity, the name to check.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// PEM CA certificates the server's certificate must chain to.
    pub ca: Vec<u8>,
    /// PEM certificate chain and key to present (a server with `--tls-client-ca`).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the server's certificate must carry (default: the host of the address).
    pub server_name: Option<String>,
}

impl Tls {
    /// Reads the files of `--tls-ca`, `--tls-cert` and `--tls-key`; an error names the flag.
    pub fn read(ca: &str, cert: Option<&str>, key: Option<&str>, server_name: Option<String>) -> Result<Tls, String> {
        let read = |flag: &str, p: &str| std::fs::read(p).map_err(|e| format!("{flag}: cannot read `{p}`: {e}"));
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((read("--tls-cert", c)?, read("--tls-key", k)?)),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key: give both or neither".to_owned()),
        };
        Ok(Tls { ca: read("--tls-ca", ca)?, identity, server_name })
    }

    fn config(&self) -> ClientTlsConfig {
        let mut c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca));
        if let Some((cert, key)) = &self.identity {
            c = c.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.server_name {
            c = c.domain_name(name.clone());
        }
        c
    }
}

/// What the health service said, or why it said nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `SERVING`.
    Serving,
    /// Any other serving status (`NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN`), by name.
    NotServing(&'static str),
    /// The server has no such service (`NOT_FOUND`).
    UnknownService,
    /// The call failed with another gRPC status.
    Failed(String),
    /// No connection could be made.
    Unreachable(String),
    /// No answer within the timeout.
    TimedOut(Duration),
}

/// Asks `target` about `service` within `timeout`; prints one line (stdout when SERVING, stderr
/// otherwise) and returns the exit code.
pub fn run(target: &Target, service: &str, timeout: Duration, tls: Option<&Tls>) -> ExitCode {
    let verdict = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(check(target, service, timeout, tls)),
        Err(e) => Verdict::Failed(format!("cannot start the runtime: {e}")),
    };
    let head = format!("warden healthcheck: {target} service {service:?}");
    match verdict {
        Verdict::Serving => {
            // The verdict is the exit code; a closed standard output does not change it.
            let _ = writeln!(std::io::stdout().lock(), "{head}: SERVING");
            ExitCode::SUCCESS
        }
        Verdict::NotServing(s) => fail(&head, s),
        Verdict::UnknownService => fail(&head, "SERVICE_UNKNOWN (the server has no such service)"),
        Verdict::Failed(e) => fail(&head, &format!("health check failed: {e}")),
        Verdict::Unreachable(e) => fail(&head, &format!("unreachable: {e}")),
        Verdict::TimedOut(t) => fail(&head, &format!("no answer within {} ms", t.as_millis())),
    }
}

fn fail(head: &str, what: &str) -> ExitCode {
    eprintln!("{head}: {what}");
    ExitCode::from(1)
}

/// One `Health/Check` call, bounded as a whole (connect and answer) by `timeout`; over TLS with `tls`
/// (TCP only).
pub async fn check(target: &Target, service: &str, timeout: Duration, tls: Option<&Tls>) -> Verdict {
    let call = async {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = match target {
            Target::Tcp(a) if a.contains("://") => Endpoint::from_shared(a.clone()),
            Target::Tcp(a) => Endpoint::from_shared(format!("{scheme}://{a}")),
            Target::Uds(p) => Endpoint::from_shared(format!("unix:{p}")),
        };
        let endpoint = match (endpoint, tls) {
            (Ok(e), None) => e,
            (Ok(e), Some(t)) => match e.tls_config(t.config()) {
                Ok(e) => e,
                Err(e) => return Verdict::Failed(format!("TLS settings: {}", chain(&e))),
            },
            (Err(e), _) => return Verdict::Unreachable(format!("`{target}` is not an address: {}", chain(&e))),
        };
        let endpoint = endpoint.connect_timeout(timeout);
        let channel = match endpoint.connect().await {
            Ok(c) => c,
            Err(e) => return Verdict::Unreachable(chain(&e)),
        };
        let request = HealthCheckRequest { service: service.to_owned() };
        match HealthClient::new(channel).check(request).await {
            Ok(resp) => match resp.into_inner().status() {
                ServingStatus::Serving => Verdict::Serving,
                other => Verdict::NotServing(other.as_str_name()),
            },
            Err(s) if s.code() == tonic::Code::NotFound => Verdict::UnknownService,
            Err(s) => Verdict::Failed(format!("{:?}: {}", s.code(), s.message())),
        }
    };
    tokio::time::timeout(timeout, call).await.unwrap_or(Verdict::TimedOut(timeout))
}

/// An error and its sources, joined by `: ` (tonic's own message is only "transport error"); a
/// source that repeats the message before it (hyper and tonic wrap the same cause) is said once.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
