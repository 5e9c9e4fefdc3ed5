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
    /// `authorize`, `propagate_identity`.
    pub rpc: &'static str,
    /// Principal ARN (PropagateIdentity: the evidence's IAM principal, else its Identity Center user id).
    pub principal: String,
    /// Action (or the target kind).
    pub action: String,
    /// Resource ARN (or the target).
    pub resource: String,
    /// `allow`, `explicit_deny`, `implicit_deny`, or `error`.
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
    pub failed_check: Option<&'static str>,
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
        if self.tx.try_send(r).is_err() {
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
