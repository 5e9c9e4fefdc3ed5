//! Metrics and the decision log (SPEC §6, issue #5), in a test binary of its own: the Prometheus
//! recorder is global to a process, so here no other test moves the counters and every count can be
//! exact. The tests of this binary also run one at a time (`serial`) for the same reason. Each starts a
//! real server on loopback, makes known calls, and scrapes `/metrics` over HTTP or reads the log file.
#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a panic is a failed run, reported with its message"
)]
#[path = "it/support.rs"]
mod support;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use support::{Sample, http_get, parse_prometheus, sample_sum};
use tonic::transport::{Channel, Endpoint};
use warden::config::ServeConfig;
use warden::proto::{self, Decision, authorizer_client::AuthorizerClient};
use warden::server::{Options, ReloadOutcome, Running};
use warden::telemetry::decision_log::{DecisionLog, Record, Target};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const REPORT: &str = "arn:aws:s3:::reports/q1.csv";
const ALICE_FILE: &str = "iam/users/alice.json";
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(15);

/// SPEC §6: the buckets of `warden_decision_duration_seconds`, 1 µs to 100 ms.
const BUCKETS: [f64; 16] =
    [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 1e-1];

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `body` alone (no other test of this binary at the same time), on its own runtime, bounded.
fn serial<F: std::future::Future<Output = ()>>(body: F) {
    let _one: MutexGuard<'_, ()> = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, body)
            .await
            .unwrap_or_else(|_| panic!("the test took over {TEST_TIMEOUT:?}"));
    });
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// Alice may read reports, may never delete them, and nothing else.
fn alice_json(read_effect: &str) -> String {
    json!({
        "UserName": "alice",
        "Arn": ALICE,
        "UserPolicyList": [{"PolicyName": "Reports", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Sid": "Read", "Effect": read_effect, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"},
            {"Sid": "NeverDelete", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}]}}]
    })
    .to_string()
}

fn request(action: &str, resource: &str) -> proto::AuthorizeRequest {
    proto::AuthorizeRequest {
        principal: Some(proto::Principal { arn: ALICE.to_owned(), ..proto::Principal::default() }),
        action: action.to_owned(),
        resource: resource.to_owned(),
        ..proto::AuthorizeRequest::default()
    }
}

fn allow() -> proto::AuthorizeRequest {
    request("s3:GetObject", REPORT)
}

fn explicit_deny() -> proto::AuthorizeRequest {
    request("s3:DeleteObject", REPORT)
}

fn implicit_deny() -> proto::AuthorizeRequest {
    request("ec2:RunInstances", "*")
}

/// No principal: INVALID_ARGUMENT naming `principal`.
fn invalid() -> proto::AuthorizeRequest {
    proto::AuthorizeRequest { principal: None, ..allow() }
}

fn decision(r: &proto::AuthorizeResponse) -> Decision {
    Decision::try_from(r.decision).unwrap_or_else(|_| panic!("unknown decision {}", r.decision))
}

fn with_request_id<T>(msg: T, id: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("x-request-id", id.parse().expect("ascii metadata"));
    r
}

/// A server on loopback with its admin listener, on a bundle in a temp dir. Poll mode with a one-hour
/// interval: no reload happens unless the test asks for one (`shared.reload()`), so reload counts are
/// exact.
struct Server {
    running: Option<Running>,
    bundle: tempfile::TempDir,
}

impl Server {
    async fn start(cache_capacity: Option<usize>, decision_log: Option<&Path>) -> Server {
        let bundle = support::bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow"))]);
        let config = ServeConfig::from_flags(
            Some(utf8(bundle.path())),
            Some("127.0.0.1:0"),
            None,
            Some("127.0.0.1:0"),
            Some(5_000),
        )
        .and_then(|c| c.with_runtime(cache_capacity, Some(3_600_000), decision_log.map(utf8)))
        .expect("valid flags");
        let running = within("Running::start", Running::start(&config, Options::default()))
            .await
            .unwrap_or_else(|e| panic!("Running::start: {e:#}"));
        let mut first = running.first_load.clone();
        let outcome = within("the first load", first.wait_for(Option::is_some)).await.expect("first load").clone();
        assert!(matches!(outcome, Some(ReloadOutcome::Activated(_))), "{outcome:?}");
        Server { running: Some(running), bundle }
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    fn revision(&self) -> String {
        self.running().store.load().expect("an active bundle").bundle.revision.clone()
    }

    async fn client(&self) -> AuthorizerClient<Channel> {
        let addr = self.running().grpc_addr.expect("a TCP listener");
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
        AuthorizerClient::new(within("connect", endpoint.connect()).await.expect("connect"))
    }

    async fn metrics(&self) -> (String, Vec<Sample>) {
        let answer = http_get(self.running().admin_addr.expect("an admin listener"), "/metrics").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let samples = parse_prometheus(&answer.body);
        (answer.body, samples)
    }

    async fn reload(&self) -> ReloadOutcome {
        within("reload", self.running().shared.reload()).await
    }

    async fn shutdown(&mut self) {
        let running = self.running.take().expect("running");
        assert!(within("shutdown", running.shutdown()).await, "drained in time");
    }
}

async fn call(client: &mut AuthorizerClient<Channel>, r: proto::AuthorizeRequest) -> proto::AuthorizeResponse {
    within("Authorize", client.authorize(r)).await.unwrap_or_else(|s| panic!("Authorize: {s:?}")).into_inner()
}

async fn call_err(client: &mut AuthorizerClient<Channel>, r: proto::AuthorizeRequest) -> tonic::Status {
    within("Authorize", client.authorize(r)).await.expect_err("an error")
}

// === metrics ===

/// `# TYPE name kind` lines.
fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, k)| (n.to_owned(), k.trim().to_owned()))
        .collect()
}

/// The label keys each metric may have, and the closed value sets (SPEC §6: low cardinality only).
fn assert_low_cardinality(samples: &[Sample]) {
    let rpcs = [
        "authorize",
        "authorize_batch",
        "get_bundle_status",
        "propagate_identity",
        "health_check",
        "health_watch",
        "reflection_server_reflection_info",
        "unknown",
    ];
    let decisions = ["allow", "explicit_deny", "implicit_deny", "error"];
    let results = ["activated", "unchanged", "rejected"];
    let listeners = ["grpc_tcp", "grpc_uds", "admin"];
    let reasons = ["over_limit", "handshake_timeout", "idle_timeout", "tls_handshake_failed"];
    for s in samples.iter().filter(|s| s.name.starts_with("warden_")) {
        let keys: Vec<&str> = s.labels.keys().map(String::as_str).collect();
        let base = s.name.trim_end_matches("_bucket").trim_end_matches("_count").trim_end_matches("_sum");
        let expected: &[&str] = match base {
            "warden_decision_duration_seconds" if s.name.ends_with("_bucket") => &["decision", "le", "rpc"],
            "warden_decision_duration_seconds" => &["decision", "rpc"],
            "warden_requests_total" => &["code", "rpc"],
            "warden_bundle_reloads_total" | "warden_tls_reloads_total" => &["result"],
            "warden_bundle_info" => &["revision"],
            "warden_build_info" => &["revision", "version"],
            "warden_connections_open" => &["listener"],
            "warden_connections_closed_total" => &["listener", "reason"],
            "warden_state_errors_total" => &["op"],
            "warden_bundle_sync_failures_total" => &["reason"],
            _ => &[],
        };
        assert_eq!(keys, expected, "labels of {s:?}");
        for (k, v) in &s.labels {
            let ok = match k.as_str() {
                "rpc" => rpcs.contains(&v.as_str()),
                "decision" => decisions.contains(&v.as_str()),
                "result" => results.contains(&v.as_str()),
                "listener" => listeners.contains(&v.as_str()),
                "reason" if s.name == "warden_bundle_sync_failures_total" => {
                    warden::telemetry::metrics::SYNC_FAILURE_REASONS.contains(&v.as_str())
                }
                "reason" => reasons.contains(&v.as_str()),
                "op" => ["read", "write", "poll"].contains(&v.as_str()),
                "code" => !v.is_empty() && v.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "revision" if s.name == "warden_build_info" => !v.is_empty(),
                "revision" => support::is_revision(v),
                "version" => v == env!("CARGO_PKG_VERSION"),
                "le" => v == "+Inf" || v.parse::<f64>().is_ok(),
                _ => false,
            };
            assert!(ok, "label {k}={v:?} of {s:?}");
            assert!(!v.contains("arn:") && !v.contains("alice") && !v.contains("s3:"), "an ARN or principal: {s:?}");
        }
    }
}

fn count(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    sample_sum(samples, name, labels)
}

/// The cache's metrics exist from the start (SPEC §6.1). Called on the first scrape of the tests that
/// count them: whichever of them runs first in this process sees a recorder no call has touched yet.
fn assert_cache_metrics_exist(samples: &[Sample]) {
    for name in [
        "warden_cache_hits_total",
        "warden_cache_answer_hits_total",
        "warden_cache_misses_total",
        "warden_cache_evictions_total",
        "warden_cache_entries",
        "warden_cache_bytes",
    ] {
        assert!(samples.iter().any(|s| s.name == name), "{name} is not rendered from the start");
    }
}

#[test]
fn metrics_have_the_spec_names_labels_buckets_and_exact_counts() {
    serial(async {
        let mut server = Server::start(None, None).await;
        let old = server.revision();
        let (_, before) = server.metrics().await;
        assert_cache_metrics_exist(&before);
        let mut client = server.client().await;
        for _ in 0..3 {
            assert_eq!(decision(&call(&mut client, allow()).await), Decision::Allow);
        }
        for _ in 0..2 {
            assert_eq!(decision(&call(&mut client, explicit_deny()).await), Decision::ExplicitDeny);
        }
        assert_eq!(decision(&call(&mut client, implicit_deny()).await), Decision::ImplicitDeny);
        for _ in 0..2 {
            assert_eq!(call_err(&mut client, invalid()).await.code(), tonic::Code::InvalidArgument);
        }
        within(
            "batch",
            client.authorize_batch(proto::AuthorizeBatchRequest { requests: vec![allow(), implicit_deny()] }),
        )
        .await
        .expect("AuthorizeBatch");
        within("status", client.get_bundle_status(proto::GetBundleStatusRequest {})).await.expect("GetBundleStatus");
        let (text, after) = server.metrics().await;
        let delta = |name: &str, labels: &[(&str, &str)]| count(&after, name, labels) - count(&before, name, labels);

        // Requests by rpc and code: exactly the calls made.
        let requests = "warden_requests_total";
        assert_eq!(delta(requests, &[("rpc", "authorize"), ("code", "OK")]), 6.0);
        assert_eq!(delta(requests, &[("rpc", "authorize"), ("code", "INVALID_ARGUMENT")]), 2.0);
        assert_eq!(delta(requests, &[("rpc", "authorize_batch"), ("code", "OK")]), 1.0);
        assert_eq!(delta(requests, &[("rpc", "get_bundle_status"), ("code", "OK")]), 1.0);
        assert_eq!(delta(requests, &[]), 10.0, "nothing else was counted");
        // Decisions (each batch item is one, under rpc="authorize").
        let hist = "warden_decision_duration_seconds_count";
        assert_eq!(delta(hist, &[("rpc", "authorize"), ("decision", "allow")]), 4.0);
        assert_eq!(delta(hist, &[("rpc", "authorize"), ("decision", "explicit_deny")]), 2.0);
        assert_eq!(delta(hist, &[("rpc", "authorize"), ("decision", "implicit_deny")]), 2.0);
        assert_eq!(delta(hist, &[]), 8.0, "invalid requests are not decisions");
        // The cache: allow m h h (+ h in the batch), deny m h, implicit m (+ h in the batch). The first
        // hit of allow and of deny also keeps the encoded reply for the request's bytes, so the third
        // allow is answered from it (a hit like the others); the batch is not.
        assert_eq!(delta("warden_cache_misses_total", &[]), 3.0);
        assert_eq!(delta("warden_cache_hits_total", &[]), 5.0);
        assert_eq!(delta("warden_cache_answer_hits_total", &[]), 1.0);
        assert_eq!(count(&after, "warden_cache_entries", &[]), 5.0, "3 decisions and 2 kept replies");
        assert_eq!(count(&after, "warden_bundle_info", &[("revision", &old)]), 1.0);

        // The histogram: explicit buckets 1 µs … 100 ms and +Inf, cumulative, by rpc and decision.
        let kinds = types(&text);
        assert_eq!(kinds.get("warden_decision_duration_seconds").map(String::as_str), Some("histogram"), "{kinds:?}");
        for d in ["allow", "explicit_deny", "implicit_deny"] {
            let buckets: Vec<&Sample> = after
                .iter()
                .filter(|s| {
                    s.name == "warden_decision_duration_seconds_bucket"
                        && s.labels["rpc"] == "authorize"
                        && s.labels["decision"] == d
                })
                .collect();
            let les: Vec<f64> = buckets
                .iter()
                .map(|b| if b.labels["le"] == "+Inf" { f64::INFINITY } else { b.labels["le"].parse().expect("le") })
                .collect();
            let mut expected = BUCKETS.to_vec();
            expected.push(f64::INFINITY);
            assert_eq!(les, expected, "{d}: bucket bounds");
            let counts: Vec<f64> = buckets.iter().map(|b| b.value).collect();
            assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{d}: cumulative {counts:?}");
            let total = count(&after, hist, &[("rpc", "authorize"), ("decision", d)]);
            assert_eq!(counts.last().copied(), Some(total), "{d}: +Inf equals _count");
            let sum = count(&after, "warden_decision_duration_seconds_sum", &[("rpc", "authorize"), ("decision", d)]);
            assert!(sum > 0.0 && sum < total, "{d}: _sum {sum} s for {total} decisions");
        }

        // Reloads, asked for explicitly: activated, unchanged, rejected, activated.
        let path = server.bundle.path().join(ALICE_FILE);
        let t0 = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("time").as_secs_f64();
        std::fs::write(&path, alice_json("Deny")).expect("write");
        let new = match server.reload().await {
            ReloadOutcome::Activated(r) => r,
            other => panic!("{other:?}"),
        };
        let (_, activated) = server.metrics().await;
        assert_eq!(count(&activated, "warden_cache_entries", &[]), 0.0, "a new snapshot starts with an empty cache");
        assert_eq!(count(&activated, "warden_cache_bytes", &[]), 0.0, "a new snapshot starts with an empty cache");
        assert!(matches!(server.reload().await, ReloadOutcome::Unchanged(_)));
        std::fs::write(&path, "{ not json").expect("write");
        assert!(matches!(server.reload().await, ReloadOutcome::Rejected(_)));
        std::fs::write(&path, alice_json("Allow")).expect("write");
        assert_eq!(server.reload().await, ReloadOutcome::Activated(old.clone()));
        let t1 = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("time").as_secs_f64();
        let (_, reloaded) = server.metrics().await;
        let delta = |name: &str, labels: &[(&str, &str)]| count(&reloaded, name, labels) - count(&after, name, labels);
        let reloads = "warden_bundle_reloads_total";
        assert_eq!(delta(reloads, &[("result", "activated")]), 2.0);
        assert_eq!(delta(reloads, &[("result", "unchanged")]), 1.0);
        assert_eq!(delta(reloads, &[("result", "rejected")]), 1.0);
        assert_eq!(delta(requests, &[]), 0.0, "reloads are not requests");
        // (Other tests of this binary leave their servers' revisions behind in the process-wide
        // recorder; a real process has one server.)
        let info: Vec<&Sample> = reloaded.iter().filter(|s| s.name == "warden_bundle_info").collect();
        assert!(info.iter().all(|s| s.value == 1.0 || s.value == 0.0), "{info:?}");
        assert_eq!(count(&reloaded, "warden_bundle_info", &[("revision", &old)]), 1.0, "the active revision: {info:?}");
        assert_eq!(count(&reloaded, "warden_bundle_info", &[("revision", &new)]), 0.0, "the replaced one: {info:?}");
        let last = count(&reloaded, "warden_bundle_last_reload_timestamp_seconds", &[]);
        assert!(last >= t0.floor() && last <= t1.ceil(), "last reload at {last}, between {t0} and {t1}");

        // Decision-log drops: a writer with room for 1 record, flooded with 10,000.
        let log_dir = support::temp_dir();
        let log_path = log_dir.path().join("decisions.jsonl");
        let (log, task) = DecisionLog::spawn_with_capacity(&Target::File(log_path.clone()), 1).expect("open the log");
        let flood = Instant::now();
        for i in 0..10_000u32 {
            log.log(record(i));
        }
        let flooded = flood.elapsed();
        drop(log);
        within("the log writer to finish", task).await.expect("log writer");
        let written = std::fs::read_to_string(&log_path).expect("read the log").lines().count() as f64;
        let (text_after_drops, dropped) = server.metrics().await;
        let lost = count(&dropped, "warden_decision_log_dropped_total", &[])
            - count(&reloaded, "warden_decision_log_dropped_total", &[]);
        eprintln!(
            "decision log flood: {written} written, {lost} dropped, 10,000 queued in {:.2} ms",
            flooded.as_secs_f64() * 1e3
        );
        assert!(lost > 0.0, "a flooded writer drops records");
        assert_eq!(written + lost, 10_000.0, "every record is either written or counted as dropped");

        // Every name of SPEC §6, with its type, and nothing with a high-cardinality label.
        let kinds = types(&text_after_drops);
        for (name, kind) in [
            ("warden_decision_duration_seconds", "histogram"),
            ("warden_requests_total", "counter"),
            ("warden_cache_hits_total", "counter"),
            ("warden_cache_answer_hits_total", "counter"),
            ("warden_cache_misses_total", "counter"),
            ("warden_cache_entries", "gauge"),
            ("warden_cache_bytes", "gauge"),
            ("warden_cache_evictions_total", "counter"),
            ("warden_bundle_reloads_total", "counter"),
            ("warden_bundle_info", "gauge"),
            ("warden_bundle_last_reload_timestamp_seconds", "gauge"),
            ("warden_bundle_warnings", "gauge"),
            ("warden_decision_log_dropped_total", "counter"),
            ("warden_connections_open", "gauge"),
        ] {
            assert_eq!(kinds.get(name).map(String::as_str), Some(kind), "# TYPE of {name}: {kinds:?}");
        }
        assert_low_cardinality(&dropped);
        server.shutdown().await;
    });
}

fn record(i: u32) -> Record {
    Record {
        time: warden::telemetry::decision_log::now_rfc3339(),
        decision_id: format!("flood-{i}"),
        request_id: None,
        rpc: "authorize",
        principal: ALICE.to_owned(),
        action: "s3:GetObject".to_owned(),
        resource: REPORT.to_owned(),
        decision: "allow",
        code: "OK",
        message: None,
        determining: vec!["user/alice/inline/Reports#Read".to_owned()],
        revision: "sha256:0".to_owned(),
        latency_us: 1,
        cached: false,
        propagation: None,
        http: None,
    }
}

#[test]
fn cache_entries_gauge_stays_within_cache_capacity() {
    serial(async {
        let mut server = Server::start(Some(100), None).await;
        let (_, before) = server.metrics().await;
        assert_cache_metrics_exist(&before);
        let mut client = server.client().await;
        let distinct = |i: usize| request("s3:GetObject", &format!("arn:aws:s3:::reports/{i}.csv"));
        for batch in 0..3 {
            let requests = (0..100).map(|i| distinct(batch * 100 + i)).collect();
            within("batch", client.authorize_batch(proto::AuthorizeBatchRequest { requests })).await.expect("batch");
        }
        // The latest are kept, the oldest were evicted (and an evicted decision gets back in).
        assert!(call(&mut client, distinct(299)).await.cached);
        assert!(!call(&mut client, distinct(3)).await.cached);
        let (_, after) = server.metrics().await;
        assert_eq!(count(&after, "warden_cache_entries", &[]), 100.0, "301 decisions stored, capacity 100");
        let delta = |name: &str| count(&after, name, &[]) - count(&before, name, &[]);
        assert_eq!(delta("warden_cache_misses_total"), 301.0);
        assert_eq!(delta("warden_cache_hits_total"), 1.0);
        // One per entry stored into a full cache: 301 decisions, and the reply kept at the hit on 299.
        assert_eq!(delta("warden_cache_evictions_total"), 202.0, "one per entry stored into a full cache");
        let bytes = count(&after, "warden_cache_bytes", &[]);
        let held = server.running().store.load().expect("an active bundle").cache.bytes() as f64;
        assert_eq!(bytes, held, "warden_cache_bytes is what the cache counts");
        assert!(bytes > 100.0 * 100.0 && bytes <= 33_554_432.0, "100 small decisions: {bytes} bytes");
        server.shutdown().await;
    });
}

/// SPEC §3.1: the warnings of the active bundle are counted in `warden_bundle_warnings` (no label) and
/// shown in the bundle status; a reload to a bundle without warnings sets it back to 0.
#[test]
fn bundle_warnings_gauge_counts_the_active_bundle_s_warnings() {
    serial(async {
        let mut server = Server::start(None, None).await;
        let warned = support::bundle_in_temp(&[(
            "iam/policies/Warned.json",
            r#"{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:${aws:PrincipalAccount}:key/*"},
                {"Effect": "Allow", "Action": "s3:PutObjectTagging", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:TagKeys": ["Team"]}, "StringLike": {"aws:TagKeys": "T*"}}}]}"#,
        )]);
        let path = server.bundle.path().join("iam/policies/Warned.json");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::copy(warned.path().join("iam/policies/Warned.json"), &path).expect("copy");
        assert!(matches!(server.reload().await, ReloadOutcome::Activated(_)));
        let (text, samples) = server.metrics().await;
        assert_eq!(count(&samples, "warden_bundle_warnings", &[]), 3.0, "{text}");
        assert_low_cardinality(&samples);
        let status = warden::grpc::authorize::bundle_status(&server.running().store);
        assert_eq!(status.warnings, 3);
        std::fs::remove_file(&path).expect("remove");
        assert!(matches!(server.reload().await, ReloadOutcome::Activated(_)));
        let (_, samples) = server.metrics().await;
        assert_eq!(count(&samples, "warden_bundle_warnings", &[]), 0.0);
        assert_eq!(warden::grpc::authorize::bundle_status(&server.running().store).warnings, 0);
        server.shutdown().await;
    });
}

/// Only the active revision has a `warden_bundle_info` series. Regression: each activation used to
/// leave the series of the revision it replaced behind (set to 0, never removed), one more series per
/// revision ever active: the unbounded-series pitfall of STYLE §4.3 (linkerd2#12916).
#[test]
fn bundle_info_keeps_only_the_active_revision() {
    serial(async {
        let mut server = Server::start(None, None).await;
        let path = server.bundle.path().join(ALICE_FILE);
        let mut revisions = BTreeSet::from([server.revision()]);
        for i in 0..20 {
            let text = alice_json("Allow").replace("NeverDelete", &format!("NeverDelete{i}"));
            std::fs::write(&path, text).expect("write");
            match server.reload().await {
                ReloadOutcome::Activated(r) => revisions.insert(r),
                other => panic!("{other:?}"),
            };
        }
        let (_, samples) = server.metrics().await;
        let info: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == "warden_bundle_info" && revisions.contains(&s.labels["revision"]))
            .collect();
        let active = server.revision();
        assert_eq!(info.len(), 1, "one series, the active revision {active}; got {} series", info.len());
        assert_eq!((info[0].labels["revision"].as_str(), info[0].value), (active.as_str(), 1.0));
        server.shutdown().await;
    });
}

// === the decision log ===

/// `policy#sid` as the decision log writes a statement reference.
fn statement(s: &proto::StatementRef) -> String {
    if s.sid.starts_with('#') { format!("{}{}", s.policy, s.sid) } else { format!("{}#{}", s.policy, s.sid) }
}

#[test]
fn the_decision_log_has_one_json_line_per_decision_with_every_field() {
    serial(async {
        let dir = support::temp_dir();
        let path = dir.path().join("decisions.jsonl");
        let mut server = Server::start(None, Some(&path)).await;
        let revision = server.revision();
        let mut client = server.client().await;
        let mut answers: Vec<(Option<&str>, proto::AuthorizeResponse)> = Vec::new();
        for (id, req) in [
            ("req-allow-1", allow()),
            ("req-allow-2", allow()),
            // Answered from the reply kept for the bytes of the same request: logged all the same.
            ("req-allow-3", allow()),
            ("req-deny", explicit_deny()),
            ("req-implicit", implicit_deny()),
        ] {
            let r = within("Authorize", client.authorize(with_request_id(req, id))).await.expect("Authorize");
            answers.push((Some(id), r.into_inner()));
        }
        let s = within("Authorize", client.authorize(with_request_id(invalid(), "req-invalid")))
            .await
            .expect_err("invalid");
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        let batch = proto::AuthorizeBatchRequest {
            requests: vec![explicit_deny(), proto::AuthorizeRequest { action: String::new(), ..allow() }],
        };
        let b = within("batch", client.authorize_batch(with_request_id(batch, "req-batch"))).await.expect("batch");
        match &b.get_ref().results[0].result {
            Some(proto::authorize_batch_item::Result::Response(r)) => answers.push((Some("req-batch"), r.clone())),
            other => panic!("{other:?}"),
        }
        answers.push((None, call(&mut client, implicit_deny()).await));
        within("status", client.get_bundle_status(proto::GetBundleStatusRequest {})).await.expect("status");
        drop(client);
        // Shutdown waits for the writer to finish the file.
        server.shutdown().await;

        let text = std::fs::read_to_string(&path).expect("read the decision log");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect();
        // 7 answered decisions + the invalid call + the invalid batch item; GetBundleStatus is no decision.
        assert_eq!(lines.len(), 9, "{text}");
        let required = [
            "time",
            "decision_id",
            "rpc",
            "principal",
            "action",
            "resource",
            "decision",
            "code",
            "determining",
            "revision",
            "latency_us",
            "cached",
        ];
        for l in &lines {
            for k in required {
                assert!(l.get(k).is_some(), "no `{k}` in {l}");
            }
            let time = l["time"].as_str().expect("time");
            assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "RFC 3339 time: {l}");
            assert_eq!(l["revision"], revision.as_str(), "{l}");
            assert_eq!(l["rpc"], "authorize", "{l}");
            assert!(l["latency_us"].is_u64(), "{l}");
            assert!(!l["decision_id"].as_str().unwrap_or_default().is_empty(), "{l}");
        }
        let ids: BTreeSet<&str> = lines.iter().filter_map(|l| l["decision_id"].as_str()).collect();
        assert_eq!(ids.len(), lines.len(), "decision ids are unique");
        // Each answered decision: its line carries the id returned to the caller and agrees with it.
        for (request_id, r) in &answers {
            let l = lines
                .iter()
                .find(|l| l["decision_id"] == r.decision_id.as_str())
                .unwrap_or_else(|| panic!("no line with decision_id {}: {text}", r.decision_id));
            let want = match decision(r) {
                Decision::Allow => "allow",
                Decision::ExplicitDeny => "explicit_deny",
                Decision::ImplicitDeny => "implicit_deny",
                Decision::Unspecified => panic!("{r:?}"),
            };
            assert_eq!(l["decision"], want, "{l}");
            assert_eq!(l["code"], "OK", "{l}");
            assert_eq!(l["principal"], ALICE, "{l}");
            assert_eq!(l["cached"], r.cached, "{l}");
            let det: Vec<String> = r.determining.iter().map(statement).collect();
            assert_eq!(l["determining"], json!(det), "{l}");
            match request_id {
                Some(id) => assert_eq!(l["request_id"], *id, "{l}"),
                None => assert!(l.get("request_id").is_none_or(Value::is_null), "no x-request-id: {l}"),
            }
        }
        let allow_lines: Vec<&Value> = lines.iter().filter(|l| l["decision"] == "allow").collect();
        assert_eq!(allow_lines.len(), 3);
        let cached: Vec<Option<bool>> = allow_lines.iter().map(|l| l["cached"].as_bool()).collect();
        assert_eq!(cached, [Some(false), Some(true), Some(true)]);
        for l in &allow_lines {
            assert_eq!(l["action"], "s3:GetObject", "{l}");
            assert_eq!(l["resource"], REPORT, "{l}");
            assert_eq!(l["determining"], json!(["user/alice/inline/Reports#Read"]), "{l}");
        }
        let deny = lines.iter().find(|l| l["request_id"] == "req-deny").expect("the deny");
        assert_eq!(deny["determining"], json!(["user/alice/inline/Reports#NeverDelete"]), "{deny}");
        // Errors are logged too, with their code and message.
        let errors: Vec<&Value> = lines.iter().filter(|l| l["decision"] == "error").collect();
        assert_eq!(errors.len(), 2, "{text}");
        let bad = errors.iter().find(|l| l["request_id"] == "req-invalid").expect("the invalid call");
        assert_eq!(bad["code"], "INVALID_ARGUMENT", "{bad}");
        assert!(bad["message"].as_str().is_some_and(|m| m.contains("principal")), "{bad}");
        let item = errors.iter().find(|l| l["request_id"] == "req-batch").expect("the invalid batch item");
        assert_eq!(item["code"], "INVALID_ARGUMENT", "{item}");
        assert!(item["message"].as_str().is_some_and(|m| m.contains("action")), "{item}");
    });
}

/// Issue 10: counters whose label sets are known exist from the start (an `increase()` alert sees the
/// first rejected reload), with `warden_build_info` and the standard `process_*` metrics.
#[test]
fn issue_10_counters_exist_from_the_start_with_build_info_and_process_metrics() {
    serial(async {
        let server = Server::start(None, None).await;
        let (text, samples) = server.metrics().await;
        for result in ["activated", "unchanged", "rejected"] {
            assert!(
                samples.iter().any(|s| s.name == "warden_bundle_reloads_total"
                    && s.labels.get("result").map(String::as_str) == Some(result)),
                "warden_bundle_reloads_total{{result={result:?}}} exists: {text}"
            );
        }
        assert_eq!(count(&samples, "warden_bundle_warnings", &[]), 0.0, "a bundle without warnings: {text}");
        // TLS reloads, even with TLS off: a dashboard or alert needs no special case.
        for result in ["activated", "rejected"] {
            assert!(
                samples.iter().any(|s| s.name == "warden_tls_reloads_total"
                    && s.labels.get("result").map(String::as_str) == Some(result)
                    && s.value == 0.0),
                "warden_tls_reloads_total{{result={result:?}}} exists at 0: {text}"
            );
        }
        // Admin state failures, even without a state: an alert on them needs no special case.
        for op in ["read", "write", "poll"] {
            assert!(
                samples.iter().any(|s| s.name == "warden_state_errors_total"
                    && s.labels.get("op").map(String::as_str) == Some(op)
                    && s.value == 0.0),
                "warden_state_errors_total{{op={op:?}}} exists at 0: {text}"
            );
        }
        for name in [
            "warden_state_conflicts_total",
            "warden_bundle_warnings",
            "warden_evaluation_panics_total",
            "warden_bundle_signature_failures_total",
            "warden_decision_log_dropped_total",
            "warden_cache_hits_total",
            "warden_cache_answer_hits_total",
            "warden_cache_misses_total",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(samples.iter().any(|s| s.name == name), "{name} exists from the start: {text}");
        }
        let info: Vec<&Sample> = samples.iter().filter(|s| s.name == "warden_build_info").collect();
        assert_eq!(info.len(), 1, "{text}");
        assert_eq!(info[0].value, 1.0);
        assert_eq!(info[0].labels.get("version").map(String::as_str), Some(env!("CARGO_PKG_VERSION")));
        let rev = &info[0].labels["revision"];
        assert!(rev == "unknown" || (rev.len() == 12 && rev.bytes().all(|b| b.is_ascii_hexdigit())), "{rev}");
        assert!(count(&samples, "process_resident_memory_bytes", &[]) > 1e6, "a real RSS");
    });
}
