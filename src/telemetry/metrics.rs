//! Every Warden metric, declared once with its help text and closed label values. The recorder is
//! installed once per process; its histograms need the upkeep task (metrics-rs#467) and explicit
//! buckets (else they render as summaries).
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// Decision latency, seconds {rpc, decision}.
pub const DECISION_DURATION: &str = "warden_decision_duration_seconds";
/// Requests {rpc, code}.
pub const REQUESTS: &str = "warden_requests_total";
/// Panics caught inside evaluation (each answered INTERNAL and deny).
pub const PANICS: &str = "warden_evaluation_panics_total";
/// Bundle reloads {result}.
pub const BUNDLE_RELOADS: &str = "warden_bundle_reloads_total";
/// The active revision {revision} = 1.
pub const BUNDLE_INFO: &str = "warden_bundle_info";
/// When the bundle was last (re)loaded.
pub const BUNDLE_LAST_RELOAD: &str = "warden_bundle_last_reload_timestamp_seconds";
/// Warnings of the active bundle (constructs AWS accepts but Access Analyzer flags; SPEC §3.1).
pub const BUNDLE_WARNINGS: &str = "warden_bundle_warnings";
/// Bundles refused by their `.signatures.json` (a signature that does not verify, files that do not
/// match it, or none with `--bundle-verify-key`; SPEC §10).
pub const BUNDLE_SIGNATURE_FAILURES: &str = "warden_bundle_signature_failures_total";
/// Failed syncs of an S3 bundle {reason}; the last good bundle keeps serving (SPEC §10).
pub const BUNDLE_SYNC_FAILURES: &str = "warden_bundle_sync_failures_total";
/// Objects an S3 sync downloaded (unchanged ones, by ETag, are not).
pub const BUNDLE_SYNC_DOWNLOADS: &str = "warden_bundle_sync_downloads_total";
/// When an S3 sync last succeeded (the bucket's content is at most this old on this replica).
pub const BUNDLE_LAST_SYNC: &str = "warden_bundle_last_sync_success_timestamp_seconds";

/// Decisions answered from the cache.
pub const CACHE_HITS: &str = "warden_cache_hits_total";
/// Of the cache hits, those answered with a kept answer (`grpc::answers`).
pub const CACHE_ANSWER_HITS: &str = "warden_cache_answer_hits_total";
/// Decisions evaluated (not in the cache).
pub const CACHE_MISSES: &str = "warden_cache_misses_total";
/// Decisions in the active snapshot's cache.
pub const CACHE_ENTRIES: &str = "warden_cache_entries";
/// What the active snapshot's cached decisions cost, in bytes (bounded by `--cache-max-bytes`).
pub const CACHE_BYTES: &str = "warden_cache_bytes";
/// Cached decisions evicted to make room for new ones.
pub const CACHE_EVICTIONS: &str = "warden_cache_evictions_total";
/// Decision-log records dropped because the writer could not keep up.
pub const DECISION_LOG_DROPPED: &str = "warden_decision_log_dropped_total";
/// Open connections {listener}.
pub const CONNECTIONS_OPEN: &str = "warden_connections_open";
/// Connections the server closed {listener, reason}.
pub const CONNECTIONS_CLOSED: &str = "warden_connections_closed_total";
/// Reloads of the gRPC listener's TLS files {result}.
pub const TLS_RELOADS: &str = "warden_tls_reloads_total";
/// Answers replaced by RESOURCE_EXHAUSTED because the connection held too many unread ones.
pub const ANSWERS_REFUSED_UNREAD: &str = "warden_answers_refused_unread_total";
/// Failures to read or write the admin state {op}: the state directory, or the table a fleet shares.
pub const STATE_ERRORS: &str = "warden_state_errors_total";
/// Conditional writes of the shared admin state that another replica beat (each one recomputed).
pub const STATE_CONFLICTS: &str = "warden_state_conflicts_total";
/// The version of the shared admin state this replica serves (fleet mode only).
pub const STATE_VERSION: &str = "warden_state_version";

/// Histogram buckets: 1 µs to 100 ms.
/// Gauge `warden_build_info{version, revision}` = 1.
pub const BUILD_INFO: &str = "warden_build_info";

/// The results `warden_bundle_reloads_total` can carry; each exists at 0 from the start.
pub const RELOAD_RESULTS: [&str; 3] = ["activated", "unchanged", "rejected"];

/// The operations `warden_state_errors_total` counts, each at 0 from the start: `read` (the state
/// read for a reload or a revoke), `write` (writing it; for a table also a write that lost to other
/// replicas every time), `poll` (fleet mode's periodic read).
pub const STATE_OPS: [&str; 3] = ["read", "write", "poll"];
/// The reasons `warden_bundle_sync_failures_total` can carry; each exists at 0 from the start of a
/// server with an S3 bundle.
pub const SYNC_FAILURE_REASONS: [&str; 8] =
    ["unreachable", "throttled", "denied", "no_bucket", "changed", "bounds", "invalid_key", "cache_dir"];

/// The results `warden_tls_reloads_total` can carry; each exists at 0 from the start.
pub const TLS_RELOAD_RESULTS: [&str; 2] = ["activated", "rejected"];

/// Histogram buckets: 1 µs to 100 ms.
pub const DECISION_BUCKETS: &[f64] =
    &[1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 1e-1];

/// The `rpc` label of a decision (`warden_decision_duration_seconds`). Calls are labelled by the
/// server's wire layer from the request path instead (`server::layer::rpc_label`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// Authorize and each AuthorizeBatch item.
    Authorize,
    /// PropagateIdentity.
    PropagateIdentity,
    /// `envoy.service.auth.v3.Authorization/Check`: each `Check` once, labelled by its outcome (its
    /// Authorize and PropagateIdentity steps are not timed under their own rpc).
    ExtAuthzCheck,
}

impl Rpc {
    /// Its place in per-rpc tables.
    fn index(self) -> usize {
        match self {
            Rpc::Authorize => 0,
            Rpc::PropagateIdentity => 1,
            Rpc::ExtAuthzCheck => 2,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Rpc::Authorize => "authorize",
            Rpc::PropagateIdentity => "propagate_identity",
            Rpc::ExtAuthzCheck => "ext_authz_check",
        }
    }
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The cache's metrics, registered once (so they exist from the start, at 0): the per-call `counter!`
/// lookup is a noticeable part of a cache hit.
struct CacheMetrics {
    hits: metrics::Counter,
    answer_hits: metrics::Counter,
    misses: metrics::Counter,
    evictions: metrics::Counter,
    entries: metrics::Gauge,
    bytes: metrics::Gauge,
}

static CACHE_METRICS: OnceLock<CacheMetrics> = OnceLock::new();

/// Installs the recorder (once per process; later calls return the same handle) and describes the
/// metrics. `None` if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(DECISION_DURATION.to_owned()), DECISION_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            register_at_zero();
            let cache = CacheMetrics {
                hits: metrics::counter!(CACHE_HITS),
                answer_hits: metrics::counter!(CACHE_ANSWER_HITS),
                misses: metrics::counter!(CACHE_MISSES),
                evictions: metrics::counter!(CACHE_EVICTIONS),
                entries: metrics::gauge!(CACHE_ENTRIES),
                bytes: metrics::gauge!(CACHE_BYTES),
            };
            cache.entries.set(0.0);
            cache.bytes.set(0.0);
            let _ = CACHE_METRICS.set(cache);
            Some(handle)
        })
        .clone()
}

fn describe() {
    metrics::describe_histogram!(
        DECISION_DURATION,
        metrics::Unit::Seconds,
        "Time to answer one decision, by rpc and decision."
    );
    metrics::describe_counter!(REQUESTS, "gRPC requests answered, by rpc and status code.");
    metrics::describe_counter!(PANICS, "Panics caught inside evaluation; each was answered INTERNAL, never allow.");
    metrics::describe_counter!(BUNDLE_RELOADS, "Bundle loads, by result (activated, unchanged, rejected).");
    metrics::describe_gauge!(BUNDLE_LAST_RELOAD, "Unix time of the last bundle load attempt.");
    metrics::describe_gauge!(
        BUNDLE_WARNINGS,
        "Warnings of the active bundle: constructs AWS accepts but IAM Access Analyzer flags (0 without a bundle)."
    );
    metrics::describe_counter!(
        BUNDLE_SIGNATURE_FAILURES,
        "Bundles refused by their .signatures.json (bad signature, files not matching it, or missing with \
         --bundle-verify-key); the last good bundle keeps serving."
    );
    metrics::describe_counter!(
        BUNDLE_SYNC_FAILURES,
        "Failed syncs of an S3 bundle, by reason; the last good bundle keeps serving."
    );
    metrics::describe_counter!(BUNDLE_SYNC_DOWNLOADS, "Objects downloaded by S3 bundle syncs (changed ETags only).");
    metrics::describe_gauge!(BUNDLE_LAST_SYNC, "Unix time of the last successful S3 bundle sync.");
    metrics::describe_counter!(CACHE_HITS, "Decisions answered from the decision cache.");
    metrics::describe_counter!(
        CACHE_ANSWER_HITS,
        "Cache hits answered with a kept answer: an Authorize reply kept for byte-identical request bytes, a Check allow kept for what its route read (also in warden_cache_hits_total)."
    );
    metrics::describe_counter!(CACHE_MISSES, "Decisions evaluated because they were not cached.");
    metrics::describe_gauge!(CACHE_ENTRIES, "Decisions held by the active bundle's cache.");
    metrics::describe_gauge!(BUILD_INFO, "The version and source revision of this build (value 1).");
    metrics::describe_gauge!(
        CACHE_BYTES,
        metrics::Unit::Bytes,
        "Bytes the active bundle's cached decisions take (requests and answers), at most --cache-max-bytes."
    );
    metrics::describe_counter!(CACHE_EVICTIONS, "Cached decisions evicted to make room for new ones.");
    metrics::describe_counter!(
        DECISION_LOG_DROPPED,
        "Decision-log records dropped because the log writer could not keep up."
    );
    metrics::describe_gauge!(CONNECTIONS_OPEN, "Open connections, by listener (grpc_tcp, grpc_uds, admin).");
    metrics::describe_counter!(
        CONNECTIONS_CLOSED,
        "Connections the server closed, by listener and reason (over_limit: at accept, handshake_timeout, \
         idle_timeout, tls_handshake_failed)."
    );
    metrics::describe_counter!(
        TLS_RELOADS,
        "Changed TLS files of the gRPC listener, by result (activated; rejected: the previous certificate keeps serving)."
    );
    metrics::describe_counter!(
        STATE_ERRORS,
        "Failures to read or write the admin state (state directory or shared table), by op (read, write, poll); \
         the last known state keeps serving."
    );
    metrics::describe_counter!(
        STATE_CONFLICTS,
        "Writes of the shared admin state that another replica changed first; each was computed again."
    );
    metrics::describe_gauge!(STATE_VERSION, "The version of the shared admin state this replica serves (fleet mode).");
    metrics::describe_counter!(
        ANSWERS_REFUSED_UNREAD,
        "Answers replaced by RESOURCE_EXHAUSTED because their connection already held too many unread ones."
    );
}

/// Every counter whose label sets are known in advance exists from the start with value 0, so an
/// `increase()` alert sees the first event (a series that appears with 1 has no increase).
fn register_at_zero() {
    for r in RELOAD_RESULTS {
        metrics::counter!(BUNDLE_RELOADS, "result" => r).absolute(0);
    }
    for r in TLS_RELOAD_RESULTS {
        metrics::counter!(TLS_RELOADS, "result" => r).absolute(0);
    }
    metrics::counter!(PANICS).absolute(0);
    for op in STATE_OPS {
        metrics::counter!(STATE_ERRORS, "op" => op).absolute(0);
    }
    metrics::counter!(STATE_CONFLICTS).absolute(0);
    metrics::counter!(BUNDLE_SIGNATURE_FAILURES).absolute(0);
    metrics::counter!(DECISION_LOG_DROPPED).absolute(0);
    metrics::counter!(CACHE_HITS).absolute(0);
    metrics::counter!(CACHE_ANSWER_HITS).absolute(0);
    metrics::counter!(CACHE_MISSES).absolute(0);
    metrics::gauge!(CACHE_ENTRIES).set(0.0);
    metrics::gauge!(BUNDLE_WARNINGS).set(0.0);
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "revision" => env!("WARDEN_GIT_REVISION"))
        .set(1.0);
    process_collector().describe();
    process_collector().collect();
}

/// The standard `process_*` metrics (CPU seconds, resident and virtual memory, open and max file
/// descriptors, start time, threads), read from `/proc` at each scrape.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Refreshes the `process_*` metrics; called before each scrape.
pub fn collect_process() {
    if HANDLE.get().is_some_and(Option::is_some) {
        process_collector().collect();
    }
}

/// Runs the recorder's upkeep forever (drains histogram samples); spawn it once.
pub async fn upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// Counts one answered call (by the server's wire layer, the only caller: `rpc` is derived from the
/// request path there).
pub fn request_label(rpc: &str, code: tonic::Code) {
    metrics::counter!(REQUESTS, "rpc" => rpc.to_owned(), "code" => code_name(code)).increment(1);
}

/// Every `decision` label a decision gets.
const DECISION_LABELS: [&str; 7] =
    ["allow", "explicit_deny", "implicit_deny", "error", "propagation_denied", "bad_request", "no_route"];

/// The histogram of each (rpc, decision), registered at its first use once Warden's recorder is
/// installed: the per-call `histogram!` lookup (a key built, hashed and looked up) costs a tenth of a
/// cached answer.
static DECISION_HISTOGRAMS: [[OnceLock<metrics::Histogram>; DECISION_LABELS.len()]; 3] =
    [const { [const { OnceLock::new() }; DECISION_LABELS.len()] }; 3];

/// Records one decision's latency.
pub fn decision(rpc: Rpc, decision: &'static str, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let slot = match HANDLE.get() {
        Some(Some(_)) => DECISION_LABELS
            .iter()
            .position(|l| *l == decision)
            .and_then(|i| DECISION_HISTOGRAMS.get(rpc.index())?.get(i)),
        // No recorder of Warden's yet (tools, tests): nothing to keep a handle of.
        _ => None,
    };
    match slot {
        Some(h) => h
            .get_or_init(|| metrics::histogram!(DECISION_DURATION, "rpc" => rpc.as_str(), "decision" => decision))
            .record(secs),
        None => metrics::histogram!(DECISION_DURATION, "rpc" => rpc.as_str(), "decision" => decision).record(secs),
    }
}

/// Counts a caught panic.
pub fn panic() {
    metrics::counter!(PANICS).increment(1);
}

/// Records a bundle load outcome (`activated`, `unchanged`, `rejected`) and its time.
pub fn bundle_reload(result: &'static str) {
    metrics::counter!(BUNDLE_RELOADS, "result" => result).increment(1);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!(BUNDLE_LAST_RELOAD).set(now);
}

/// Counts a bundle refused by its `.signatures.json`.
pub fn bundle_signature_failure() {
    metrics::counter!(BUNDLE_SIGNATURE_FAILURES).increment(1);
}

/// Makes the S3 sync metrics exist at 0 (a server with an S3 bundle, at start).
pub fn bundle_sync_at_zero() {
    for r in SYNC_FAILURE_REASONS {
        metrics::counter!(BUNDLE_SYNC_FAILURES, "reason" => r).absolute(0);
    }
    metrics::counter!(BUNDLE_SYNC_DOWNLOADS).absolute(0);
}

/// Counts a failed S3 sync (`reason`: one of [`SYNC_FAILURE_REASONS`]).
pub fn bundle_sync_failure(reason: &'static str) {
    metrics::counter!(BUNDLE_SYNC_FAILURES, "reason" => reason).increment(1);
}

/// Records a successful S3 sync that downloaded `downloads` objects.
pub fn bundle_sync_success(downloads: u64) {
    metrics::counter!(BUNDLE_SYNC_DOWNLOADS).increment(downloads);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!(BUNDLE_LAST_SYNC).set(now);
}

/// Sets `warden_bundle_warnings` to the warnings of the bundle just activated.
pub fn bundle_warnings(n: usize) {
    metrics::gauge!(BUNDLE_WARNINGS).set(n as f64);
}

/// `warden_bundle_info{revision} 1` for the active revision only, appended to the exporter's text at
/// scrape time (a gauge per revision would leave one series behind for every revision ever active).
pub fn bundle_info_text(revision: Option<&str>) -> String {
    let mut out = format!("# HELP {BUNDLE_INFO} The active bundle revision (value 1).\n# TYPE {BUNDLE_INFO} gauge\n");
    if let Some(r) = revision {
        let escaped = r.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str(&format!("{BUNDLE_INFO}{{revision=\"{escaped}\"}} 1\n"));
    }
    out
}

/// The gRPC code name used as a label (`OK`, `INVALID_ARGUMENT`, …).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Counts a cache hit.
pub fn cache_hit() {
    // Without Warden's recorder (benchmarks, offline tools) there is nothing to count into.
    if let Some(m) = CACHE_METRICS.get() {
        m.hits.increment(1);
    }
}

/// Counts a cache hit answered with a kept encoded answer (also a hit).
pub fn cache_answer_hit() {
    if let Some(m) = CACHE_METRICS.get() {
        m.hits.increment(1);
        m.answer_hits.increment(1);
    }
}

/// Counts a cache miss.
pub fn cache_miss() {
    if let Some(m) = CACHE_METRICS.get() {
        m.misses.increment(1);
    }
}

/// Counts `n` evicted decisions.
pub fn cache_evictions(n: u64) {
    if let Some(m) = CACHE_METRICS.get() {
        m.evictions.increment(n);
    }
}

/// Sets the number of cached decisions and what they cost in bytes.
pub fn cache_size(entries: usize, bytes: usize) {
    if let Some(m) = CACHE_METRICS.get() {
        m.entries.set(entries as f64);
        m.bytes.set(bytes as f64);
    }
}

/// Counts a dropped decision-log record.
pub fn decision_log_dropped() {
    decision_log_dropped_n(1);
}

/// Counts `n` decision-log records dropped at once (a failed write of a batch).
pub fn decision_log_dropped_n(n: u64) {
    metrics::counter!(DECISION_LOG_DROPPED).increment(n);
}

/// Counts an admitted connection open.
pub fn connection_opened(listener: &'static str) {
    metrics::gauge!(CONNECTIONS_OPEN, "listener" => listener).increment(1.0);
}

/// Counts an admitted connection gone.
pub fn connection_dropped(listener: &'static str) {
    metrics::gauge!(CONNECTIONS_OPEN, "listener" => listener).decrement(1.0);
}

/// Counts a connection the server closed: refused at accept, or timed out.
pub fn connection_closed(listener: &'static str, reason: &'static str) {
    metrics::counter!(CONNECTIONS_CLOSED, "listener" => listener, "reason" => reason).increment(1);
}

/// Counts a reload of changed TLS files (`activated` or `rejected`).
pub fn tls_reload(result: &'static str) {
    metrics::counter!(TLS_RELOADS, "result" => result).increment(1);
}

/// Counts an answer replaced by RESOURCE_EXHAUSTED: its connection held too many unread answers.
pub fn answer_refused_unread() {
    metrics::counter!(ANSWERS_REFUSED_UNREAD).increment(1);
}

/// Counts a failure to read or write the admin state (`op`: one of [`STATE_OPS`]).
pub fn state_error(op: &'static str) {
    metrics::counter!(STATE_ERRORS, "op" => op).increment(1);
}

/// Counts a conditional write of the shared admin state that another replica beat.
pub fn state_conflict() {
    metrics::counter!(STATE_CONFLICTS).increment(1);
}

/// Sets the version of the shared admin state this replica serves.
pub fn state_version(version: u64) {
    metrics::gauge!(STATE_VERSION).set(version as f64);
}
