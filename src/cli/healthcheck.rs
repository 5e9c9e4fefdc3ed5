//! `warden healthcheck`: a gRPC health client (`grpc.health.v1.Health/Check`) for a container's
//! HEALTHCHECK and Kubernetes exec probes. Exit 0 when the service is SERVING; exit 1 when it is not
//! (NOT_SERVING, unknown service, unreachable, no answer in time). Prints one line either way. It needs
//! nothing but the binary itself (no shell, no grpcurl), so it runs in a `scratch` image.
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;
use tonic::transport::Endpoint;
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
pub fn run(target: &Target, service: &str, timeout: Duration) -> ExitCode {
    let verdict = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(check(target, service, timeout)),
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

/// One `Health/Check` call, bounded as a whole (connect and answer) by `timeout`.
pub async fn check(target: &Target, service: &str, timeout: Duration) -> Verdict {
    let call = async {
        let endpoint = match target {
            Target::Tcp(a) if a.contains("://") => Endpoint::from_shared(a.clone()),
            Target::Tcp(a) => Endpoint::from_shared(format!("http://{a}")),
            Target::Uds(p) => Endpoint::from_shared(format!("unix:{p}")),
        };
        let endpoint = match endpoint {
            Ok(e) => e.connect_timeout(timeout),
            Err(e) => return Verdict::Unreachable(format!("`{target}` is not an address: {}", chain(&e))),
        };
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
