//! The decision log (`--decision-log PATH|-`): one JSON line per decision or error, written by a
//! background task through a bounded channel. When the writer cannot keep up, records are dropped and
//! counted (`warden_decision_log_dropped_total`); a decision never waits for the log. Nothing is
//! sampled away: allows, denies and errors are all logged.
use super::metrics;
use serde::Serialize;
use std::io::Write as _;
use tokio::sync::mpsc;

/// Records waiting for the writer before new ones are dropped.
pub const CHANNEL_CAPACITY: usize = 8192;

/// One decision.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// RFC 3339 time.
    pub time: String,
    /// Returned to the caller too.
    pub decision_id: String,
    /// The caller's `x-request-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `authorize`, `propagate_identity`, `ext_authz_check`.
    pub rpc: &'static str,
    /// Principal ARN (PropagateIdentity: the evidence's IAM principal, else its Identity Center user id).
    pub principal: String,
    /// Action (or the target kind).
    pub action: String,
    /// Resource ARN (or the target).
    pub resource: String,
    /// `allow`, `explicit_deny`, `implicit_deny`, or `error`; ext_authz `Check` also
    /// `propagation_denied`, `bad_request` and `no_route`.
    pub decision: &'static str,
    /// gRPC code name.
    pub code: &'static str,
    /// Error message, for errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Determining statements as `policy#sid`.
    pub determining: Vec<String>,
    /// Bundle revision.
    pub revision: String,
    /// Latency in microseconds.
    pub latency_us: u64,
    /// Answered from the cache.
    pub cached: bool,
    /// PropagateIdentity only: what was propagated, or which check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<Propagation>,
    /// ext_authz `Check` only: the HTTP request Envoy asked about and the answer it got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
}

/// What the decision log records of an ext_authz `Check` (SPEC §9): the HTTP side. Every field that
/// comes from the request is cut to a bound ([`clip`]); the query string is never logged (it may
/// carry tokens), nor is any header value but the principal.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HttpCheck {
    /// The HTTP method (at most [`MAX_METHOD_CHARS`] characters).
    pub method: String,
    /// The host (`:authority`), at most [`MAX_HOST_CHARS`] characters.
    pub host: String,
    /// The path without its query string, at most [`MAX_PATH_CHARS`] characters.
    pub path: String,
    /// The route that matched (absent: none did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The HTTP status Envoy answers with: 200 (let through), 400, 403 or 404; absent when the call
    /// failed (INTERNAL), where Envoy answers its own `status_on_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// Longest HTTP method a line keeps.
pub const MAX_METHOD_CHARS: usize = 32;
/// Longest host a line keeps.
pub const MAX_HOST_CHARS: usize = 256;
/// Longest HTTP path a line keeps.
pub const MAX_PATH_CHARS: usize = 1024;
/// Longest principal or resource a line keeps (IAM's longest ARN).
pub const MAX_ARN_CHARS: usize = 2048;
/// Longest action a line keeps.
pub const MAX_ACTION_CHARS: usize = 256;
/// Longest request id a line keeps.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// `s` cut to `max` characters; a cut value ends with `…` (so a cut is visible). Values from the
/// request (a header, a path) are attacker input: nothing unbounded reaches the log.
pub fn clip(s: String, max: usize) -> String {
    // At most `max` bytes is at most `max` characters: the common case costs nothing.
    if s.len() <= max {
        return s;
    }
    match s.char_indices().nth(max) {
        None => s,
        Some((end, _)) => {
            let mut out = String::with_capacity(end + 3);
            out.push_str(s.get(..end).unwrap_or_default());
            out.push('…');
            out
        }
    }
}

/// [`clip`] of a borrowed value: copies at most `max` characters.
pub fn clip_str(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((end, _)) => {
            let mut out = String::with_capacity(end + 3);
            out.push_str(s.get(..end).unwrap_or_default());
            out.push('…');
            out
        }
    }
}

impl Record {
    /// The record with every field that can come from a request cut to its bound.
    fn bounded(mut self) -> Record {
        self.principal = clip(self.principal, MAX_ARN_CHARS);
        self.resource = clip(self.resource, MAX_ARN_CHARS);
        self.action = clip(self.action, MAX_ACTION_CHARS);
        self.request_id = self.request_id.map(|r| clip(r, MAX_REQUEST_ID_CHARS));
        if let Some(p) = self.propagation.as_mut() {
            p.evidence_principal = clip(std::mem::take(&mut p.evidence_principal), MAX_ARN_CHARS);
        }
        if let Some(h) = self.http.as_mut() {
            h.method = clip(std::mem::take(&mut h.method), MAX_METHOD_CHARS);
            h.host = clip(std::mem::take(&mut h.host), MAX_HOST_CHARS);
            h.path = clip(std::mem::take(&mut h.path), MAX_PATH_CHARS);
        }
        self
    }
}

/// What the decision log records of a PropagateIdentity answer (SPEC §5.6).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Propagation {
    /// The evidence's principal: the IAM principal ARN, else the Identity Center user id.
    pub evidence_principal: String,
    /// `iam`, `identity_center`, or `none`.
    pub evidence_kind: &'static str,
    /// The propagated user name (partner apps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Where it came from (`IDENTITY_CENTER`, `SESSION_TAG`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    /// `ROOT_ADMIN`, `ADMIN` or `USER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_role: Option<&'static str>,
    /// The check that failed (`AUTHORIZE`, `TRUST_ASSUME_ROLE`, `DOMAIN_ASSIGNMENT`, …), for denials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_check: Option<String>,
}

pub use crate::config::DecisionLogTarget as Target;

/// The sending side, cheap to clone.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    tx: mpsc::Sender<Record>,
}

impl DecisionLog {
    /// Opens the target and spawns the writer task.
    pub fn spawn(target: &Target) -> std::io::Result<(DecisionLog, tokio::task::JoinHandle<()>)> {
        DecisionLog::spawn_with_capacity(target, CHANNEL_CAPACITY)
    }

    /// Like [`DecisionLog::spawn`] with a chosen channel capacity.
    pub fn spawn_with_capacity(
        target: &Target,
        capacity: usize,
    ) -> std::io::Result<(DecisionLog, tokio::task::JoinHandle<()>)> {
        let mut out = match target {
            Target::Stdout => Sink::Stdout(std::io::stdout()),
            Target::File(p) => Sink::File(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
        };
        let (tx, mut rx) = mpsc::channel::<Record>(capacity.max(1));
        let task = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(64 * 1024);
            let mut failing = false;
            while let Some(first) = rx.blocking_recv() {
                buf.clear();
                let mut records = 0u64;
                let mut rec = Some(first);
                while let Some(r) = rec.take() {
                    if serde_json::to_writer(&mut buf, &r).is_ok() {
                        buf.push(b'\n');
                        records += 1;
                    }
                    if buf.len() < 60 * 1024 {
                        rec = rx.try_recv().ok();
                    }
                }
                match out.write_whole(&buf) {
                    Ok(()) => {
                        if failing {
                            tracing::info!("decision log: writing again");
                            failing = false;
                        }
                    }
                    Err(e) => {
                        // Every record of the batch is dropped (a torn tail was cut off), and counted.
                        metrics::decision_log_dropped_n(records);
                        if !failing {
                            tracing::warn!(error = %e, "decision log: writes fail; records are dropped and counted until a write succeeds");
                            failing = true;
                        }
                    }
                }
            }
        });
        Ok((DecisionLog { tx }, task))
    }

    /// Queues a record; drops and counts it when the writer is behind. Never waits.
    pub fn log(&self, r: Record) {
        if self.tx.try_send(r.bounded()).is_err() {
            metrics::decision_log_dropped();
        }
    }
}

/// Where records go.
enum Sink {
    Stdout(std::io::Stdout),
    File(std::fs::File),
}

impl Sink {
    /// Writes `buf` (whole lines) and flushes; on a failure, a file is cut back to its length before
    /// the write, so no torn line stays behind (a record is written whole or not at all).
    fn write_whole(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout(s) => {
                let mut lock = s.lock();
                lock.write_all(buf).and_then(|()| lock.flush())
            }
            Sink::File(f) => {
                let before = f.metadata()?.len();
                match f.write_all(buf).and_then(|()| f.flush()) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        // Best effort: if even this fails, the next successful write still starts a line.
                        let _ = f.set_len(before);
                        Err(e)
                    }
                }
            }
        }
    }
}

/// The current time as RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_values_and_cuts_long_ones_at_a_character() {
        assert_eq!(clip("GET".to_owned(), 3), "GET");
        assert_eq!(clip("POST".to_owned(), 3), "POS…");
        // Multi-byte characters: cut after 2 characters, not 2 bytes.
        assert_eq!(clip("éééé".to_owned(), 2), "éé…");
        assert_eq!(clip("éé".to_owned(), 2), "éé");
        assert_eq!(clip_str("éééé", 2), "éé…");
        assert_eq!(clip_str("GET", 3), "GET");
        let long = "/a".repeat(10_000);
        assert_eq!(clip(long, MAX_PATH_CHARS).chars().count(), MAX_PATH_CHARS + 1);
    }

    #[test]
    fn a_record_is_bounded_before_it_is_queued() {
        let r = Record {
            time: String::new(),
            decision_id: "d".into(),
            request_id: Some("r".repeat(1000)),
            rpc: "ext_authz_check",
            principal: "p".repeat(70_000),
            action: "a".repeat(1000),
            resource: "x".repeat(5000),
            decision: "bad_request",
            code: "INVALID_ARGUMENT",
            message: None,
            determining: Vec::new(),
            revision: String::new(),
            latency_us: 0,
            cached: false,
            propagation: None,
            http: Some(HttpCheck {
                method: "M".repeat(100),
                host: "h".repeat(1000),
                path: "/".repeat(100_000),
                route: None,
                status: Some(400),
            }),
        }
        .bounded();
        let line = serde_json::to_string(&r).unwrap_or_default();
        assert!(line.len() < 8 * 1024, "{} bytes", line.len());
        let h = r.http.unwrap_or_default();
        assert_eq!(h.path.chars().count(), MAX_PATH_CHARS + 1);
        assert_eq!(h.method.chars().count(), MAX_METHOD_CHARS + 1);
        assert_eq!(r.principal.chars().count(), MAX_ARN_CHARS + 1);
    }
}
