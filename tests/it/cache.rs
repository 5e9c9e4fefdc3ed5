//! The decision cache (SPEC §6, §6.1, issue #5, issue 9): a hit after a miss, keyed by the full request,
//! never across revisions, never for decisions that read the time, and bounded by its capacity and its
//! byte budget with eviction — directly with a million distinct requests, and through the server with
//! `--cache-capacity` and with 1,500 distinct 400 KB requests (both measuring RSS, each in a child
//! process of its own so that other tests do not move the number).
use crate::reload::{
    ALICE, REPORT, Sidecar, alice_get, alice_json, authorize, bounded, bundle_in_temp, decision, first_answer_from,
    report_latency, request, revision_of, write_in_place,
};
use crate::support;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime};
use tonic::codegen::http;
use warden::config::ServeConfig;
use warden::engine;
use warden::proto::{self, Decision};
use warden::runtime::cache::DecisionCache;

const ALICE_FILE: &str = "iam/users/alice.json";

fn string_value(s: &str) -> pbjson_types::Value {
    pbjson_types::Value { kind: Some(pbjson_types::value::Kind::StringValue(s.to_owned())) }
}

fn with_source_ip(mut r: proto::AuthorizeRequest, ip: &str) -> proto::AuthorizeRequest {
    r.context = Some(std::iter::once(("aws:SourceIp".to_owned(), string_value(ip))).collect());
    r
}

/// Alice with statements that read the context, resource tags and the clock.
fn conditional_alice() -> String {
    let stmt = |sid: &str, action: &str, condition: serde_json::Value| json!({"Sid": sid, "Effect": "Allow", "Action": action, "Resource": "*", "Condition": condition});
    json!({
        "UserName": "alice",
        "Arn": ALICE,
        "UserPolicyList": [{"PolicyName": "Conditional", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            stmt("FromTheOffice", "s3:GetObject", json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
            stmt("OwnTeam", "s3:PutObject", json!({"StringEquals": {"aws:ResourceTag/Team": "Team1"}})),
            stmt("UntilNextCentury", "s3:ListBucket", json!({"DateLessThan": {"aws:CurrentTime": "2100-01-01T00:00:00Z"}})),
            stmt("UntilEpoch", "s3:DeleteObject", json!({"NumericLessThan": {"aws:EpochTime": "4102444800"}})),
            {"Sid": "NotInThePast", "Effect": "Deny", "Action": "s3:GetObjectTagging", "Resource": "*",
             "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2001-01-01T00:00:00Z"}}},
            {"Sid": "Tagging", "Effect": "Allow", "Action": "s3:GetObjectTagging", "Resource": "*"}
        ]}}]
    })
    .to_string()
}

// === through the server ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_identical_request_is_answered_from_the_cache() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        let first = authorize(&mut client, alice_get()).await;
        let second = authorize(&mut client, alice_get()).await;
        assert!(!first.cached, "the first answer is evaluated: {first:#?}");
        assert!(second.cached, "the second identical request is a hit: {second:#?}");
        assert_eq!(decision(&second), Decision::Allow);
        assert_eq!(
            (&first.determining, &first.bundle_revision, &first.diagnostics),
            (&second.determining, &second.bundle_revision, &second.diagnostics),
            "a hit answers exactly what was evaluated"
        );
        assert_ne!(first.decision_id, second.decision_id, "each answer has its own decision id");
        // The decision, and the reply kept at its first hit for the request's bytes.
        assert_eq!(server.cache_len(), 2);
        // `explain` asks for a trace: evaluated every time, never stored.
        let explain = proto::AuthorizeRequest { explain: true, ..alice_get() };
        for _ in 0..2 {
            let r = authorize(&mut client, explain.clone()).await;
            assert!(!r.cached && !r.trace.is_empty(), "explain is never cached: {r:#?}");
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_key_is_the_whole_request_context_and_resource_tags_included() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &conditional_alice())]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        let office = with_source_ip(alice_get(), "10.1.2.3");
        let home = with_source_ip(alice_get(), "192.0.2.7");
        let a = authorize(&mut client, office.clone()).await;
        let b = authorize(&mut client, office).await;
        let c = authorize(&mut client, home.clone()).await;
        let d = authorize(&mut client, home).await;
        let got: Vec<(Decision, bool)> = [&a, &b, &c, &d].iter().map(|r| (decision(r), r.cached)).collect();
        assert_eq!(
            got,
            [
                (Decision::Allow, false),
                (Decision::Allow, true),
                (Decision::ImplicitDeny, false),
                (Decision::ImplicitDeny, true)
            ],
            "the source IP is part of the key"
        );
        let tagged = |team: &str| proto::AuthorizeRequest {
            resource_tags: std::iter::once(("Team".to_owned(), team.to_owned())).collect(),
            ..request(ALICE, "s3:PutObject", REPORT)
        };
        let own = authorize(&mut client, tagged("Team1")).await;
        let other = authorize(&mut client, tagged("Team2")).await;
        let own_again = authorize(&mut client, tagged("Team1")).await;
        assert_eq!((decision(&own), own.cached), (Decision::Allow, false));
        assert_eq!(
            (decision(&other), other.cached),
            (Decision::ImplicitDeny, false),
            "resource tags are part of the key"
        );
        assert_eq!((decision(&own_again), own_again.cached), (Decision::Allow, true));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_never_serves_a_decision_cached_from_the_old_revision() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        authorize(&mut client, alice_get()).await;
        let hit = authorize(&mut client, alice_get()).await;
        assert!(hit.cached && decision(&hit) == Decision::Allow, "{hit:#?}");

        // The same request, now denied: the first answer of the new revision is evaluated afresh.
        let denying = alice_json("Deny", "Read");
        let new = revision_of(&[(ALICE_FILE, &denying)]);
        let written = Instant::now();
        write_in_place(&tmp.path().join(ALICE_FILE), &denying);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &new, written).await;
        report_latency("cache test", took);
        assert_eq!((decision(&r), r.cached), (Decision::ExplicitDeny, false), "{r:#?}");
        let again = authorize(&mut client, alice_get()).await;
        assert_eq!(
            (decision(&again), again.cached, again.bundle_revision.as_str()),
            (Decision::ExplicitDeny, true, new.as_str())
        );
        assert_eq!(server.cache_len(), 2, "the new snapshot has its own cache: a decision and its kept reply");

        // A change that keeps the decision: still a new revision, still not a hit.
        let renamed = alice_json("Deny", "ReadDenied");
        let newer = revision_of(&[(ALICE_FILE, &renamed)]);
        let written = Instant::now();
        write_in_place(&tmp.path().join(ALICE_FILE), &renamed);
        let (r, _) = first_answer_from(&mut client, &alice_get(), &newer, written).await;
        assert!(!r.cached, "never a hit across revisions: {r:#?}");
        assert_eq!(r.determining.first().map(|s| s.sid.as_str()), Some("ReadDenied"), "{r:#?}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_that_read_the_time_are_never_cached() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &conditional_alice())]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        let cases = [
            ("s3:ListBucket", Decision::Allow, "DateLessThan aws:CurrentTime"),
            ("s3:DeleteObject", Decision::Allow, "NumericLessThan aws:EpochTime"),
            ("s3:GetObjectTagging", Decision::ExplicitDeny, "a Deny with DateGreaterThan aws:CurrentTime"),
        ];
        for (action, expected, what) in cases {
            for i in 0..5 {
                let r = authorize(&mut client, request(ALICE, action, REPORT)).await;
                assert_eq!(decision(&r), expected, "{what}: {r:#?}");
                assert!(!r.cached, "{what}: call {i} answered from the cache: {r:#?}");
            }
        }
        assert_eq!(server.cache_len(), 0, "nothing time-dependent is stored");
        // The control: a decision that does not read the time is cached by the same server.
        let office = with_source_ip(alice_get(), "10.1.2.3");
        authorize(&mut client, office.clone()).await;
        assert!(authorize(&mut client, office).await.cached);
        assert_eq!(server.cache_len(), 2, "the decision and its kept reply");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_cache_holds_at_most_cache_capacity_decisions() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let server = Sidecar::start(tmp.path(), Some(100), None).await;
        let mut client = server.client().await;
        let distinct = |i: usize| request(ALICE, "s3:GetObject", &format!("arn:aws:s3:::reports/{i}.csv"));
        for batch in 0..3 {
            let requests = (0..100).map(|i| distinct(batch * 100 + i)).collect();
            let answer = client
                .authorize_batch(proto::AuthorizeBatchRequest { requests })
                .await
                .expect("AuthorizeBatch")
                .into_inner();
            for item in answer.results {
                match item.result {
                    Some(proto::authorize_batch_item::Result::Response(r)) => {
                        assert_eq!((decision(&r), r.cached), (Decision::Allow, false), "{r:#?}");
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(server.cache_len(), 100, "300 distinct decisions, capacity 100");
        // The oldest were evicted to make room for the latest (SPEC §6.1: a full cache still takes new
        // decisions); each answer is right either way.
        let late = authorize(&mut client, distinct(250)).await;
        let early = authorize(&mut client, distinct(7)).await;
        assert_eq!((decision(&late), late.cached), (Decision::Allow, true));
        assert_eq!((decision(&early), early.cached), (Decision::Allow, false));
        assert!(authorize(&mut client, distinct(7)).await.cached, "an evicted decision gets back in");
        assert_eq!(server.cache_len(), 100);
        server.shutdown().await;
    })
    .await;
}

// === directly: a million distinct requests ===

/// Set in the child process that runs the measurement.
const RSS_CHILD: &str = "WARDEN_IT_CACHE_RSS_CHILD";
const MILLION_TEST: &str = "cache::a_million_distinct_requests_stay_within_capacity_and_memory";
const DIRECT_CAPACITY: usize = 10_000;
const DISTINCT: usize = 1_000_000;
/// Allowed RSS growth while a full cache sees a million distinct requests.
const RSS_BOUND_KIB: u64 = 64 * 1024;

/// A `VmRSS:`/`VmHWM:` line of /proc/self/status, in KiB.
fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// The measurement itself (in the child process).
fn million_distinct_requests() {
    let files = vec![(ALICE_FILE.to_owned(), alice_json("Allow", "Read").into_bytes())];
    let bundle = warden::bundle::from_files(files).expect("a valid bundle");
    let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("time").as_millis() as i64;
    let base = engine::Request {
        principal: ALICE.to_owned(),
        action: "s3:getobject".to_owned(),
        now_ms,
        ..engine::Request::default()
    };
    let cache = DecisionCache::new(DIRECT_CAPACITY);
    let rss_before = proc_status_kib("VmRSS:");
    let started = Instant::now();
    let mut req = base.clone();
    for i in 0..DISTINCT {
        req.resource.clear();
        req.resource.push_str("arn:aws:s3:::reports/");
        req.resource.push_str(&i.to_string());
        let (resp, cached) = cache.get_or_evaluate(&bundle, &req, engine::authorize);
        assert!(!cached, "request {i} is new");
        assert_eq!(resp.decision, engine::Decision::Allow, "request {i}");
        if i == DIRECT_CAPACITY {
            assert_eq!(cache.len(), DIRECT_CAPACITY, "full after {DIRECT_CAPACITY} distinct requests");
        }
    }
    let took = started.elapsed();
    let rss_after = proc_status_kib("VmRSS:");
    let hwm = proc_status_kib("VmHWM:");
    assert!(cache.len() <= DIRECT_CAPACITY, "{} entries for a capacity of {DIRECT_CAPACITY}", cache.len());
    assert_eq!(cache.len(), DIRECT_CAPACITY);
    // The last requests are kept, the first were evicted long ago.
    req.resource = format!("arn:aws:s3:::reports/{}", DISTINCT - 1);
    assert!(cache.get_or_evaluate(&bundle, &req, engine::authorize).1, "a late request is a hit");
    req.resource = "arn:aws:s3:::reports/0".to_owned();
    assert!(!cache.get_or_evaluate(&bundle, &req, engine::authorize).1, "an early request was evicted");
    println!(
        "cache: {DISTINCT} distinct requests in {:.2} s ({:.2} µs each), {} entries (capacity {DIRECT_CAPACITY}); \
         VmRSS before {rss_before} KiB, after {rss_after} KiB (growth {} KiB), VmHWM {hwm} KiB",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / DISTINCT as f64,
        cache.len(),
        rss_after.saturating_sub(rss_before),
    );
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_BOUND_KIB,
        "RSS grew from {rss_before} KiB to {rss_after} KiB (bound {RSS_BOUND_KIB} KiB)"
    );
    assert!(hwm.saturating_sub(rss_before) < RSS_BOUND_KIB, "peak RSS {hwm} KiB from {rss_before} KiB");
}

#[test]
fn a_million_distinct_requests_stay_within_capacity_and_memory() {
    if std::env::var_os(RSS_CHILD).is_some() {
        million_distinct_requests();
        return;
    }
    in_child_process(MILLION_TEST, RSS_CHILD, "cache: ");
}

/// Runs the test `name` alone in a fresh process of this binary with `env` set (RSS is per process, and
/// other tests of this binary run concurrently), fails with its output if it fails, and prints its
/// line starting with `marker`.
fn in_child_process(name: &str, env: &str, marker: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let out_dir = support::temp_dir();
    let (stdout, stderr) = (out_dir.path().join("stdout"), out_dir.path().join("stderr"));
    let mut child = std::process::Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(env, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn the test binary");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("child status") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(240) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child running {name} took over 240 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read_to_string(&stdout).unwrap_or_default();
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(status.success(), "child failed ({status}):\n{out}\n{err}");
    let at = out.find(marker).unwrap_or_else(|| panic!("no measurement:\n{out}"));
    eprintln!("{}", out[at..].lines().next().unwrap_or_default());
    assert!(out.contains("1 passed"), "the child ran the test:\n{out}");
}

// === through the server: 1,500 distinct 400 KB requests (SPEC §6.1, §8) ===

/// Set in the child process that runs the 400 KB measurement.
const BIG_CHILD: &str = "WARDEN_IT_CACHE_BIG_CHILD";
const BIG_TEST: &str = "cache::distinct_400_kb_requests_keep_the_cache_within_its_byte_budget_and_rss_flat";
const BIG_REQUESTS: usize = 1_500;
/// 100 context keys of 4,000 bytes each (a value may have 4 KiB, a request 256 keys: SPEC §7).
const BIG_KEYS: usize = 100;
const BIG_VALUE: usize = 4_000;
/// The default `--cache-max-bytes`, 32 MiB.
const DEFAULT_CACHE_BYTES: f64 = 33_554_432.0;

/// A valid ~400 KB request of Alice's (allowed), distinct for each `i`: every context value starts with
/// `i`.
fn big_request(i: usize, filler: &str) -> proto::AuthorizeRequest {
    let context = (0..BIG_KEYS)
        .map(|j| {
            let mut v = format!("{i:06}-{j:03}-");
            v.push_str(&filler[v.len()..]);
            (format!("app:Blob{j:03}"), string_value(&v))
        })
        .collect();
    proto::AuthorizeRequest { context: Some(context), ..alice_get() }
}

/// `warden_cache_bytes`, `warden_cache_entries` and `warden_cache_evictions_total` from `/metrics`.
async fn cache_gauges(admin: std::net::SocketAddr) -> (f64, f64, f64) {
    let answer = support::http_get(admin, "/metrics").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let samples = support::parse_prometheus(&answer.body);
    let get = |name: &str| support::sample_sum(&samples, name, &[]);
    (get("warden_cache_bytes"), get("warden_cache_entries"), get("warden_cache_evictions_total"))
}

/// The measurement itself (in the child process): the server with the default cache, 1,500 distinct
/// 400 KB requests over one connection. On the cache bounded by entries only, RSS grew by ≈ 575 MiB.
fn big_distinct_requests() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let dir = tmp.path().to_str().expect("a UTF-8 temp path");
        let config = ServeConfig::from_flags(Some(dir), Some("127.0.0.1:0"), None, Some("127.0.0.1:0"), Some(5_000))
            .and_then(|c| c.with_runtime(None, Some(3_600_000), None))
            .expect("valid flags");
        let server = Sidecar::start_with(&config).await;
        let admin = server.running().admin_addr.expect("an admin listener");
        let mut client = server.client().await;
        let filler = "f".repeat(BIG_VALUE);
        let size = prost::Message::encoded_len(&big_request(0, &filler));
        assert!((400_000..450_000).contains(&size), "a 400 KB request: {size} bytes");
        assert!(authorize(&mut client, alice_get()).await.bundle_revision.starts_with("sha256:"), "warmed up");
        let rss_before = proc_status_kib("VmRSS:");
        let started = Instant::now();
        let mut peak = 0.0f64;
        for i in 0..BIG_REQUESTS {
            let r = authorize(&mut client, big_request(i, &filler)).await;
            assert_eq!((decision(&r), r.cached), (Decision::Allow, false), "request {i}: {:?}", r.diagnostics);
            if i % 50 == 49 {
                let (bytes, _, _) = cache_gauges(admin).await;
                assert!(bytes <= DEFAULT_CACHE_BYTES, "after {} requests: warden_cache_bytes {bytes}", i + 1);
                peak = peak.max(bytes);
            }
        }
        let took = started.elapsed();
        let rss_after = proc_status_kib("VmRSS:");
        let (bytes, entries, evictions) = cache_gauges(admin).await;
        println!(
            "big: {BIG_REQUESTS} distinct {size}-byte requests in {:.2} s; VmRSS before {rss_before} KiB, after \
             {rss_after} KiB (growth {} KiB); cache {entries} entries, {bytes} bytes (peak {peak}), {evictions} \
             evictions",
            took.as_secs_f64(),
            rss_after.saturating_sub(rss_before),
        );
        assert!(
            rss_after.saturating_sub(rss_before) < RSS_BOUND_KIB,
            "RSS grew from {rss_before} KiB to {rss_after} KiB (bound {RSS_BOUND_KIB} KiB)"
        );
        assert!(bytes <= DEFAULT_CACHE_BYTES, "warden_cache_bytes {bytes}");
        assert!(bytes > DEFAULT_CACHE_BYTES / 2.0, "the budget is used, not left empty: {bytes}");
        assert_eq!(entries, server.cache_len() as f64, "warden_cache_entries");
        assert!(
            entries > 50.0 && entries < 100.0,
            "{entries} entries of ≈ {size} bytes in {DEFAULT_CACHE_BYTES} bytes"
        );
        // Every decision stored (the warm-up's too) is held or was evicted.
        assert_eq!(evictions, (BIG_REQUESTS + 1) as f64 - entries, "each request beyond the budget evicted one");
        // The latest decisions are kept; the first were evicted.
        let last = authorize(&mut client, big_request(BIG_REQUESTS - 1, &filler)).await;
        let first = authorize(&mut client, big_request(0, &filler)).await;
        assert_eq!((last.cached, first.cached), (true, false));
        server.shutdown().await;
    }));
}

#[test]
fn distinct_400_kb_requests_keep_the_cache_within_its_byte_budget_and_rss_flat() {
    if std::env::var_os(BIG_CHILD).is_some() {
        big_distinct_requests();
        return;
    }
    in_child_process(BIG_TEST, BIG_CHILD, "big: ");
}

/// Concurrent misses on a nearly full cache never overfill it. Regression: each miss used to check
/// `len < capacity` and then insert, so several could pass the check together (capacity 1 held 2 or 3).
#[test]
fn concurrent_misses_never_overfill_the_cache() {
    const THREADS: usize = 4;
    let files = vec![(ALICE_FILE.to_owned(), alice_json("Allow", "Read").into_bytes())];
    let bundle = warden::bundle::from_files(files).expect("a valid bundle");
    for round in 0..5_000 {
        let cache = DecisionCache::new(1);
        let barrier = std::sync::Barrier::new(THREADS);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (cache, barrier, bundle) = (&cache, &barrier, &bundle);
                s.spawn(move || {
                    let req = engine::Request {
                        principal: ALICE.to_owned(),
                        action: "s3:getobject".to_owned(),
                        resource: format!("arn:aws:s3:::reports/{t}"),
                        ..engine::Request::default()
                    };
                    barrier.wait();
                    cache.get_or_evaluate(bundle, &req, engine::authorize);
                });
            }
        });
        assert!(cache.len() <= 1, "round {round}: {} entries in a cache of capacity 1", cache.len());
    }
}

// === repeated requests answered from their bytes (issue 13) ===

/// One Authorize call over a raw HTTP/2 connection (the `h2` crate): the request message sent in the
/// given pieces (one DATA frame each, the last ending the stream). Returns the answer's headers, its
/// DATA concatenated and its trailers.
async fn raw_authorize(
    send: &mut h2::client::SendRequest<bytes::Bytes>,
    pieces: &[bytes::Bytes],
    request_id: &str,
) -> (http::HeaderMap, Vec<u8>, http::HeaderMap) {
    let wait = Duration::from_secs(10);
    tokio::time::timeout(wait, std::future::poll_fn(|cx| send.poll_ready(cx)))
        .await
        .expect("a stream slot in time")
        .expect("the connection is open");
    let req = http::Request::post("http://127.0.0.1/warden.v1.Authorizer/Authorize")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-request-id", request_id)
        .body(())
        .expect("a request");
    let (resp, mut stream) = send.send_request(req, false).expect("send the headers");
    for (i, p) in pieces.iter().enumerate() {
        stream.send_data(p.clone(), i + 1 == pieces.len()).expect("send a piece");
    }
    let resp = tokio::time::timeout(wait, resp).await.expect("an answer in time").expect("an answer");
    let (parts, mut body) = resp.into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = tokio::time::timeout(wait, body.data()).await.expect("data in time") {
        let chunk = chunk.expect("body data");
        body.flow_control().release_capacity(chunk.len()).expect("release capacity");
        data.extend_from_slice(&chunk);
    }
    let trailers = tokio::time::timeout(wait, body.trailers()).await.expect("trailers in time").expect("trailers");
    (parts.headers, data, trailers.expect("trailers present"))
}

fn grpc_message(msg: &impl prost::Message) -> bytes::Bytes {
    let body = msg.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
    out.extend_from_slice(&body);
    bytes::Bytes::from(out)
}

fn reply_of(data: &[u8]) -> proto::AuthorizeResponse {
    prost::Message::decode(data.get(5..).expect("a gRPC frame")).expect("an AuthorizeResponse")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_is_answered_from_its_bytes_with_the_same_headers_trailers_and_reply() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let tcp =
            tokio::net::TcpStream::connect(server.running().grpc_addr.expect("a TCP listener")).await.expect("connect");
        let (mut send, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(conn);
        let whole = grpc_message(&alice_get());
        let mut answers = Vec::new();
        for i in 0..4 {
            answers.push(raw_authorize(&mut send, std::slice::from_ref(&whole), &format!("req-{i}")).await);
        }
        let replies: Vec<proto::AuthorizeResponse> = answers.iter().map(|(_, d, _)| reply_of(d)).collect();
        let cached: Vec<bool> = replies.iter().map(|r| r.cached).collect();
        assert_eq!(cached, [false, true, true, true], "{replies:#?}");
        // The first hit kept the encoded reply next to the decision: the real server's request bodies
        // arrive whole (one DATA frame that ends the stream), so the layer saw the bytes.
        let active = server.running().store.load().expect("a bundle");
        assert_eq!(active.cache.len(), 2, "the decision and the reply kept for the request's bytes");
        // The second answer went through tonic (a decision-cache hit), the third and fourth came from the
        // kept reply: the same headers (but each call's own x-request-id), trailers and bytes (but the id).
        let (h1, d1, t1) = &answers[1];
        for (i, (h, d, t)) in answers.iter().enumerate().skip(2) {
            let mut h = h.clone();
            assert_eq!(
                h.remove("x-request-id").as_ref().and_then(|v| v.to_str().ok()),
                Some(format!("req-{i}").as_str())
            );
            let mut h1 = h1.clone();
            h1.remove("x-request-id");
            assert_eq!(h, h1, "headers");
            assert_eq!(t, t1, "trailers");
            let mut r = reply_of(d);
            assert_ne!(r.decision_id, replies[1].decision_id);
            r.decision_id.clone_from(&replies[1].decision_id);
            assert_eq!(grpc_message(&r), bytes::Bytes::from(d1.clone()), "the same reply but for its decision id");
        }
        // A message split over two DATA frames is decoded by tonic as before.
        let (a, b) = (whole.slice(..9), whole.slice(9..));
        let (_, d, t) = raw_authorize(&mut send, &[a, b], "req-split").await;
        assert_eq!(t.get("grpc-status").and_then(|v| v.to_str().ok()), Some("0"));
        let r = reply_of(&d);
        assert_eq!((decision(&r), r.cached), (Decision::Allow, true));
    })
    .await;
}
