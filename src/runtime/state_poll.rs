//! Fleet mode's poll of the shared admin state (`--state dynamodb://TABLE`,
//! `--state-poll-interval`): every interval a strongly consistent read; a record another replica
//! changed (a revoke, a reload of another bundle) is swapped into the active snapshot, so a change on
//! one replica reaches every replica within one interval plus one read. A failed read keeps the last
//! known state serving; it is counted (`warden_state_errors_total{op="poll"}`) and logged at most
//! every [`LOG_EVERY`]. After a reload that failed on the state, the first good read reloads again.
use crate::runtime::activation::Shared;
use crate::runtime::state::fleet::{RateLimitedLog, Table};
use crate::telemetry::metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// At most one log line about a failing poll per this (each failure is counted).
pub const LOG_EVERY: Duration = Duration::from_secs(30);

/// Starts the poll; abort the task to stop it.
pub fn spawn(shared: Arc<Shared>, table: Arc<dyn Table>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut log = RateLimitedLog::new(LOG_EVERY);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate, and the state was read at start.
        tick.tick().await;
        loop {
            tick.tick().await;
            let before = shared.commits();
            match table.read().await {
                Ok(read) => {
                    log.success(table.name());
                    shared.apply_polled(read, before);
                    if shared.take_state_retry() {
                        tracing::info!(
                            table = table.name(),
                            "the shared admin state is reachable: reloading the bundle"
                        );
                        let outcome = shared.reload().await;
                        tracing::info!(?outcome, "reload after a state failure finished");
                    }
                }
                Err(e) => {
                    metrics::state_error("poll");
                    log.failure(table.name(), &e.to_string());
                }
            }
        }
    })
}
