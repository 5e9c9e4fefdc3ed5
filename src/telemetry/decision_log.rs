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
    /// Principal ARN (or evidence principal).
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
        let mut out: Box<dyn std::io::Write + Send> = match target {
            Target::Stdout => Box::new(std::io::stdout()),
            Target::File(p) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
        };
        let (tx, mut rx) = mpsc::channel::<Record>(capacity.max(1));
        let task = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Some(first) = rx.blocking_recv() {
                buf.clear();
                let mut rec = Some(first);
                while let Some(r) = rec.take() {
                    if serde_json::to_writer(&mut buf, &r).is_ok() {
                        buf.push(b'\n');
                    }
                    if buf.len() < 60 * 1024 {
                        rec = rx.try_recv().ok();
                    }
                }
                if out.write_all(&buf).and_then(|()| out.flush()).is_err() {
                    tracing::warn!("decision log: write failed");
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

/// The current time as RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
