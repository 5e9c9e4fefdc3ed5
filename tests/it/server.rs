//! The real gRPC server (SPEC §2.1, §2.2, §6, §7): `Running::start` on `127.0.0.1:0` and on a Unix
//! socket in a temp dir, admin HTTP on `127.0.0.1:0`, the default bundle `policies/`. Every test starts
//! its own server and talks to it through the generated tonic clients (Authorizer, Health, reflection)
//! and plain HTTP/1.1 for the admin listener. Metrics are process-wide and other tests run
//! concurrently, so metric assertions compare before/after and ask for "at least".
use crate::support::{self, Sample, http_get, parse_prometheus, sample_sum};
use prost::Message as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_types::StatusExt as _;
use warden::bundle::Bundle;
use warden::config::{BundleSource, ServeConfig};
use warden::engine;
use warden::proto::{self, Decision, authorizer_client::AuthorizerClient};
use warden::server::{AUTHORIZER_SERVICE, Options, Running, load_and_activate};

const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1";
const PRESIGN: &str = "sagemaker:CreatePartnerAppPresignedUrl";
const COMET_APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001";
const FIDDLER_APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-FIDDLERTM002";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const MALLORY: &str = "arn:aws:iam::111122223333:user/mallory";
const CREATE_USER: &str = "iam:CreateUser";
const USER_X: &str = "arn:aws:iam::111122223333:user/x";

/// Every test body runs within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Waits for readiness, a health change, a connection.
const WAIT: Duration = Duration::from_secs(15);

/// Runs a test body, failing it after [`TEST_TIMEOUT`].
async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body).await.unwrap_or_else(|_| panic!("the test took over {TEST_TIMEOUT:?}"));
}

/// Awaits `fut`, panicking with `what` after [`WAIT`].
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

// === the server under test ===

/// A server started by a test: TCP + Unix socket + admin, bundle `policies/` of the crate.
struct Server {
    running: Option<Running>,
    source: BundleSource,
    // Holds the Unix socket; removed after the server.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server; with `options.load_bundle`, waits until the bundle is active and health says
    /// SERVING.
    async fn start(options: Options) -> Server {
        let dir = support::temp_dir();
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let socket = dir.path().join("warden.sock");
        let source = BundleSource::Dir(policies.clone());
        // Through the flag parser, so that fields added later keep their defaults.
        let config = ServeConfig::from_flags(
            Some(policies.to_str().expect("a UTF-8 path")),
            Some("127.0.0.1:0"),
            Some(socket.to_str().expect("a UTF-8 path")),
            Some("127.0.0.1:0"),
            Some(10_000),
        )
        .expect("valid flags");
        assert_eq!(config.bundle, source);
        let running = within("Running::start", Running::start(&config, options))
            .await
            .unwrap_or_else(|e| panic!("Running::start: {e:#}"));
        let server = Server { running: Some(running), source, _dir: dir };
        if options.load_bundle {
            server.wait_ready().await;
        }
        server
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("the server is running")
    }

    fn grpc_addr(&self) -> SocketAddr {
        self.running().grpc_addr.expect("a TCP listener")
    }

    fn uds_path(&self) -> PathBuf {
        self.running().uds.clone().expect("a Unix socket")
    }

    fn admin_addr(&self) -> SocketAddr {
        self.running().admin_addr.expect("an admin listener")
    }

    /// The revision of the active bundle.
    fn revision(&self) -> String {
        let active = self.running().store.load().expect("an active bundle");
        assert!(support::is_revision(&active.bundle.revision), "{}", active.bundle.revision);
        active.bundle.revision.clone()
    }

    /// A channel over TCP.
    async fn tcp(&self) -> Channel {
        tcp_channel(self.grpc_addr()).await
    }

    /// A channel over the Unix socket.
    async fn uds(&self) -> Channel {
        uds_channel(self.uds_path()).await
    }

    async fn authorizer(&self) -> AuthorizerClient<Channel> {
        AuthorizerClient::new(self.tcp().await)
    }

    /// Waits until the store has a bundle and health says SERVING for both names.
    async fn wait_ready(&self) {
        let store = self.running().store.clone();
        within("the bundle to become active", async {
            while store.load().is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        let mut health = HealthClient::new(self.tcp().await);
        for service in ["", AUTHORIZER_SERVICE] {
            within("health SERVING", async {
                while health_status(&mut health, service).await != ServingStatus::Serving {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
        }
    }

    /// Loads and activates the bundle, as `Running::start` does in the background.
    async fn activate(&self) -> bool {
        let r = self.running();
        load_and_activate(&r.store, &r.health, &self.source).await
    }

    /// `Running::shutdown`, bounded.
    async fn shutdown(&mut self) -> bool {
        let running = self.running.take().expect("the server is running");
        tokio::time::timeout(Duration::from_secs(30), running.shutdown()).await.expect("shutdown returns within 30 s")
    }

    /// Scrapes `/metrics`.
    async fn metrics(&self) -> Vec<Sample> {
        let answer = http_get(self.admin_addr(), "/metrics").await;
        assert_eq!(answer.status, 200, "GET /metrics: {answer:?}");
        parse_prometheus(&answer.body)
    }
}

async fn tcp_channel(addr: SocketAddr) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    within("connect over TCP", endpoint.connect()).await.unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

async fn uds_channel(path: PathBuf) -> Channel {
    // The authority is not used for a Unix socket; any valid URI does.
    let endpoint = Endpoint::try_from("http://[::]:50051").expect("endpoint");
    let connect =
        endpoint.connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }));
    within("connect over the Unix socket", connect)
        .await
        .unwrap_or_else(|e| panic!("connect over the Unix socket: {e}"))
}

async fn health_status(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let r = client
        .check(HealthCheckRequest { service: service.to_owned() })
        .await
        .unwrap_or_else(|s| panic!("health Check {service:?}: {s:?}"));
    serving(&r.into_inner())
}

fn serving(r: &HealthCheckResponse) -> ServingStatus {
    ServingStatus::try_from(r.status).unwrap_or_else(|_| panic!("unknown serving status {}", r.status))
}

// === requests and answers ===

fn string_value(s: &str) -> pbjson_types::Value {
    pbjson_types::Value { kind: Some(pbjson_types::value::Kind::StringValue(s.to_owned())) }
}

fn context(pairs: &[(&str, &str)]) -> pbjson_types::Struct {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), string_value(v))).collect()
}

fn request(principal: &str, action: &str, resource: &str) -> proto::AuthorizeRequest {
    proto::AuthorizeRequest {
        principal: Some(proto::Principal { arn: principal.to_owned(), ..proto::Principal::default() }),
        action: action.to_owned(),
        resource: resource.to_owned(),
        ..proto::AuthorizeRequest::default()
    }
}

/// Alice (Team1) presigning the Comet app of her team: ALLOW.
fn allow_request() -> proto::AuthorizeRequest {
    proto::AuthorizeRequest {
        context: Some(context(&[("aws:SourceIp", "10.100.10.7")])),
        ..request(ALICE, PRESIGN, COMET_APP)
    }
}

/// Alice presigning another team's Fiddler app: EXPLICIT_DENY by the role's TeamIsolation.
fn explicit_deny_request() -> proto::AuthorizeRequest {
    proto::AuthorizeRequest {
        context: Some(context(&[("aws:SourceIp", "10.100.10.7")])),
        ..request(ALICE, PRESIGN, FIDDLER_APP)
    }
}

/// Bob has no policy allowing `iam:CreateUser`: IMPLICIT_DENY.
fn implicit_deny_request() -> proto::AuthorizeRequest {
    request(BOB, CREATE_USER, USER_X)
}

fn with_request_id<T>(msg: T, id: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("x-request-id", id.parse().expect("ascii metadata"));
    r
}

fn refs(r: &proto::AuthorizeResponse) -> Vec<(&str, &str, &str)> {
    r.determining.iter().map(|s| (s.policy.as_str(), s.sid.as_str(), s.effect.as_str())).collect()
}

fn decision(r: &proto::AuthorizeResponse) -> Decision {
    Decision::try_from(r.decision).unwrap_or_else(|_| panic!("unknown decision {}", r.decision))
}

fn assert_allow(r: &proto::AuthorizeResponse, revision: &str) {
    assert_eq!(decision(r), Decision::Allow, "{r:#?}");
    assert_eq!(
        refs(r),
        [("scp/FullAWSAccess", "#0", "Allow"), ("policy/SageMakerPartnerAppUserPolicy", "#0", "Allow")],
        "{r:#?}"
    );
    assert_common(r, revision);
}

fn assert_explicit_deny(r: &proto::AuthorizeResponse, revision: &str) {
    assert_eq!(decision(r), Decision::ExplicitDeny, "{r:#?}");
    assert_eq!(
        refs(r),
        [("role/SageMakerStudioExecutionRoleTeam1/inline/TeamIsolation", "DenyOtherTeamsPartnerApps", "Deny")],
        "{r:#?}"
    );
    assert_common(r, revision);
}

fn assert_implicit_deny(r: &proto::AuthorizeResponse, revision: &str) {
    assert_eq!(decision(r), Decision::ImplicitDeny, "{r:#?}");
    assert!(r.determining.is_empty(), "implicit deny has no determining statement: {r:#?}");
    assert!(!r.diagnostics.is_empty(), "implicit deny names what lacked an Allow: {r:#?}");
    assert_common(r, revision);
}

fn assert_common(r: &proto::AuthorizeResponse, revision: &str) {
    assert_eq!(r.bundle_revision, revision, "{r:#?}");
    assert!(!r.decision_id.is_empty(), "decision_id: {r:#?}");
    assert!(r.trace.is_empty(), "no trace without explain: {r:#?}");
}

/// INVALID_ARGUMENT whose message names `field` and whose `google.rpc.BadRequest` has a violation of it.
fn assert_invalid_argument(s: &Status, field: &str, what: &str) {
    assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
    assert!(s.message().contains(field), "{what}: the message should name `{field}`: {:?}", s.message());
    let bad = s.get_details_bad_request().unwrap_or_else(|| panic!("{what}: no google.rpc.BadRequest detail in {s:?}"));
    assert!(
        bad.field_violations.iter().any(|v| v.field == field && !v.description.is_empty()),
        "{what}: no described field violation of `{field}`: {bad:?}"
    );
}

/// The three decisions over one channel.
async fn three_decisions(channel: Channel, revision: &str) {
    let mut client = AuthorizerClient::new(channel);
    let allow = client.authorize(allow_request()).await.expect("allow").into_inner();
    assert_allow(&allow, revision);
    let deny = client.authorize(explicit_deny_request()).await.expect("explicit deny").into_inner();
    assert_explicit_deny(&deny, revision);
    let implicit = client.authorize(implicit_deny_request()).await.expect("implicit deny").into_inner();
    assert_implicit_deny(&implicit, revision);
    assert!(implicit.diagnostics.iter().any(|d| d.contains("no identity-based policy allows")), "{implicit:#?}");
    let mut ids = vec![&allow.decision_id, &deny.decision_id, &implicit.decision_id];
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "decision ids are unique: {ids:?}");
    // The status RPC agrees on the revision.
    let status =
        client.get_bundle_status(proto::GetBundleStatusRequest {}).await.expect("GetBundleStatus").into_inner();
    assert_eq!(status.revision, revision);
}

// === 1. decisions over TCP and over the Unix socket ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_answers_allow_explicit_deny_and_implicit_deny_over_tcp() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        three_decisions(server.tcp().await, &server.revision()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_answers_allow_explicit_deny_and_implicit_deny_over_unix_socket() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        three_decisions(server.uds().await, &server.revision()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_status_answer_over_unix_socket() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let channel = server.uds().await;
        let mut health = HealthClient::new(channel.clone());
        assert_eq!(health_status(&mut health, AUTHORIZER_SERVICE).await, ServingStatus::Serving);
        let status = AuthorizerClient::new(channel)
            .get_bundle_status(proto::GetBundleStatusRequest {})
            .await
            .expect("GetBundleStatus over the socket")
            .into_inner();
        assert_eq!(status.revision, server.revision());
    })
    .await;
}

// === 2. AuthorizeBatch ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_batch_answers_in_order_and_a_bad_item_fails_alone() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let revision = server.revision();
        let no_principal = proto::AuthorizeRequest { principal: None, ..allow_request() };
        let bad_arn = proto::AuthorizeRequest {
            principal: Some(proto::Principal { arn: "alice".into(), ..proto::Principal::default() }),
            ..allow_request()
        };
        let no_action = proto::AuthorizeRequest { action: String::new(), ..allow_request() };
        let bad_resource =
            proto::AuthorizeRequest { resource: "partner-app/app-COMETTEAM001".into(), ..allow_request() };
        let requests = vec![
            allow_request(),
            no_principal,
            explicit_deny_request(),
            bad_arn,
            implicit_deny_request(),
            no_action,
            bad_resource,
            allow_request(),
        ];
        let batch = server
            .authorizer()
            .await
            .authorize_batch(proto::AuthorizeBatchRequest { requests })
            .await
            .expect("AuthorizeBatch")
            .into_inner();
        assert_eq!(batch.bundle_revision, revision);
        assert_eq!(batch.results.len(), 8, "{batch:#?}");
        let response = |i: usize| match &batch.results[i].result {
            Some(proto::authorize_batch_item::Result::Response(r)) => r.clone(),
            other => panic!("item {i}: expected a response, got {other:?}"),
        };
        let error = |i: usize| match &batch.results[i].result {
            Some(proto::authorize_batch_item::Result::Error(e)) => e.clone(),
            other => panic!("item {i}: expected an error, got {other:?}"),
        };
        assert_allow(&response(0), &revision);
        assert_explicit_deny(&response(2), &revision);
        assert_implicit_deny(&response(4), &revision);
        assert_allow(&response(7), &revision);
        for (i, field) in [(1, "principal"), (3, "principal.arn"), (5, "action"), (6, "resource")] {
            let e = error(i);
            assert_eq!(e.code, "INVALID_ARGUMENT", "item {i}: {e:?}");
            assert_eq!(e.field, field, "item {i}: {e:?}");
            assert!(e.message.contains(field), "item {i}: {e:?}");
        }
        // Every answered item has its own decision id.
        let mut ids: Vec<String> = [0, 2, 4, 7].into_iter().map(|i| response(i).decision_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4, "{ids:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_batch_of_100_is_answered_and_of_101_is_refused_naming_requests() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let mut client = server.authorizer().await;
        let hundred = client
            .authorize_batch(proto::AuthorizeBatchRequest { requests: vec![allow_request(); 100] })
            .await
            .expect("a batch of 100")
            .into_inner();
        assert_eq!(hundred.results.len(), 100);
        for item in &hundred.results {
            match &item.result {
                Some(proto::authorize_batch_item::Result::Response(r)) => assert_allow(r, &server.revision()),
                other => panic!("expected a response, got {other:?}"),
            }
        }
        let s = client
            .authorize_batch(proto::AuthorizeBatchRequest { requests: vec![allow_request(); 101] })
            .await
            .expect_err("a batch of 101 is refused");
        match s.code() {
            Code::InvalidArgument => assert_invalid_argument(&s, "requests", "batch of 101"),
            Code::ResourceExhausted => assert!(s.message().contains("requests"), "{s:?}"),
            _ => panic!("a batch of 101: expected INVALID_ARGUMENT or RESOURCE_EXHAUSTED, got {s:?}"),
        }
    })
    .await;
}

// === 3. SPEC §7: bad input and faults ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_invalid_argument_naming_the_field() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let mut client = server.authorizer().await;
        let principal = |arn: &str| Some(proto::Principal { arn: arn.to_owned(), ..proto::Principal::default() });
        let cases: Vec<(&str, proto::AuthorizeRequest, &str)> = vec![
            ("missing principal", proto::AuthorizeRequest { principal: None, ..allow_request() }, "principal"),
            (
                "empty principal arn",
                proto::AuthorizeRequest { principal: principal(""), ..allow_request() },
                "principal.arn",
            ),
            (
                "malformed principal ARN",
                proto::AuthorizeRequest { principal: principal("arn:aws:iam::111122223333"), ..allow_request() },
                "principal.arn",
            ),
            (
                "principal ARN that is no identity (a bucket)",
                proto::AuthorizeRequest { principal: principal("arn:aws:s3:::my-bucket"), ..allow_request() },
                "principal.arn",
            ),
            ("empty action", proto::AuthorizeRequest { action: String::new(), ..allow_request() }, "action"),
            (
                "action without a service prefix",
                proto::AuthorizeRequest { action: "CreatePartnerAppPresignedUrl".into(), ..allow_request() },
                "action",
            ),
            ("empty resource", proto::AuthorizeRequest { resource: String::new(), ..allow_request() }, "resource"),
            (
                "malformed resource",
                proto::AuthorizeRequest { resource: "partner-app/app-COMETTEAM001".into(), ..allow_request() },
                "resource",
            ),
        ];
        for (what, req, field) in cases {
            let s = client.authorize(req).await.expect_err(what);
            assert_invalid_argument(&s, field, what);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_principal_is_implicit_deny_with_a_diagnostic_not_an_error() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let r = server
            .authorizer()
            .await
            .authorize(request(MALLORY, CREATE_USER, USER_X))
            .await
            .expect("an unknown principal is not an error")
            .into_inner();
        assert_implicit_deny(&r, &server.revision());
        assert!(r.diagnostics.iter().any(|d| d.contains(MALLORY) && d.contains("not in the bundle")), "{r:#?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_over_1_mib_is_resource_exhausted() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let mut client = AuthorizerClient::new(server.tcp().await)
            .max_encoding_message_size(16 << 20)
            .max_decoding_message_size(16 << 20);
        let big = "x".repeat(2 << 20);
        let req = proto::AuthorizeRequest {
            context: Some(context(&[("aws:SourceIp", "10.100.10.7"), ("aws:UserAgent", &big)])),
            ..allow_request()
        };
        let s = client.authorize(req).await.expect_err("a 2 MiB request is refused");
        assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
        assert!(s.message().contains("1048576"), "the message names the limit: {s:?}");
        // The connection still serves.
        let r = client.authorize(allow_request()).await.expect("after the refusal").into_inner();
        assert_allow(&r, &server.revision());
        // Just under the limit is served: 240 context values of 4,096 bytes (each value's own limit).
        let value = "x".repeat(4096);
        let keys: Vec<String> = (0..240).map(|i| format!("warden:Filler{i}")).collect();
        let mut pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), value.as_str())).collect();
        pairs.push(("aws:SourceIp", "10.100.10.7"));
        let req = proto::AuthorizeRequest { context: Some(context(&pairs)), ..allow_request() };
        let r = client.authorize(req).await.expect("a request under 1 MiB").into_inner();
        assert_allow(&r, &server.revision());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_256_context_keys_is_invalid_argument_naming_context() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let mut client = server.authorizer().await;
        let keys = |n: usize| -> pbjson_types::Struct {
            let mut c: pbjson_types::Struct = (1..n).map(|i| (format!("warden:Key{i}"), string_value("v"))).collect();
            c.fields.insert("aws:SourceIp".into(), string_value("10.100.10.7"));
            c
        };
        let ok = client
            .authorize(proto::AuthorizeRequest { context: Some(keys(256)), ..allow_request() })
            .await
            .expect("256 context keys are accepted")
            .into_inner();
        assert_allow(&ok, &server.revision());
        let s = client
            .authorize(proto::AuthorizeRequest { context: Some(keys(257)), ..allow_request() })
            .await
            .expect_err("257 context keys are refused");
        assert_invalid_argument(&s, "context", "257 context keys");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_bundle_rpcs_are_unavailable_and_not_ready_until_activated() {
    bounded(async {
        let mut server = Server::start(Options { load_bundle: false, ..Options::default() }).await;
        let channel = server.tcp().await;
        let mut client = AuthorizerClient::new(channel.clone());
        let mut health = HealthClient::new(channel);
        let s = client.authorize(allow_request()).await.expect_err("no bundle");
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
        let s = client
            .authorize_batch(proto::AuthorizeBatchRequest { requests: vec![allow_request()] })
            .await
            .expect_err("no bundle");
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
        for service in ["", AUTHORIZER_SERVICE] {
            assert_eq!(
                health_status(&mut health, service).await,
                ServingStatus::NotServing,
                "health {service:?} before activation"
            );
        }
        let ready = http_get(server.admin_addr(), "/readyz").await;
        assert_eq!(ready.status, 503, "{ready:?}");
        let live = http_get(server.admin_addr(), "/healthz").await;
        assert_eq!(live.status, 200, "the process is alive without a bundle: {live:?}");
        let status: serde_json::Value =
            serde_json::from_str(&http_get(server.admin_addr(), "/v1/status").await.body).expect("JSON");
        assert!(status.get("revision").is_none_or(|r| r == ""), "no revision before activation: {status}");

        assert!(server.activate().await, "the default bundle activates");
        for service in ["", AUTHORIZER_SERVICE] {
            assert_eq!(
                health_status(&mut health, service).await,
                ServingStatus::Serving,
                "health {service:?} after activation"
            );
        }
        let ready = http_get(server.admin_addr(), "/readyz").await;
        assert_eq!(ready.status, 200, "{ready:?}");
        assert!(ready.body.contains(&server.revision()), "{ready:?}");
        let r = client.authorize(allow_request()).await.expect("after activation").into_inner();
        assert_allow(&r, &server.revision());
        assert!(server.shutdown().await);
    })
    .await;
}

fn panicking_evaluator(_: &Bundle, _: &engine::Request) -> engine::Response {
    panic!("deliberate panic inside evaluation (tests/it/server.rs)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_evaluation_is_internal_and_counted_and_never_an_allow() {
    bounded(async {
        let server = Server::start(Options { evaluator: panicking_evaluator, load_bundle: true }).await;
        let panics = |m: &[Sample]| sample_sum(m, "warden_evaluation_panics_total", &[]);
        let before = panics(&server.metrics().await);
        let mut client = server.authorizer().await;
        let s = client.authorize(allow_request()).await.expect_err("a panic is never an answer");
        assert_eq!(s.code(), Code::Internal, "{s:?}");
        // In a batch the panicking item fails alone, as INTERNAL.
        let batch = client
            .authorize_batch(proto::AuthorizeBatchRequest { requests: vec![allow_request(), explicit_deny_request()] })
            .await
            .expect("the batch call itself succeeds")
            .into_inner();
        assert_eq!(batch.results.len(), 2);
        for item in &batch.results {
            match &item.result {
                Some(proto::authorize_batch_item::Result::Error(e)) => assert_eq!(e.code, "INTERNAL", "{e:?}"),
                other => panic!("expected an INTERNAL item error, got {other:?}"),
            }
        }
        // The server survived.
        let status =
            client.get_bundle_status(proto::GetBundleStatusRequest {}).await.expect("the server still answers");
        assert_eq!(status.into_inner().revision, server.revision());
        let after = panics(&server.metrics().await);
        assert!(after >= before + 3.0, "panics counted: before {before}, after {after}");
        let internal =
            sample_sum(&server.metrics().await, "warden_requests_total", &[("rpc", "authorize"), ("code", "INTERNAL")]);
        assert!(internal >= 1.0, "INTERNAL answers are counted: {internal}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_request_id_is_echoed_on_success_and_on_errors() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let mut client = server.authorizer().await;
        let echoed =
            |md: &tonic::metadata::MetadataMap| md.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let ok = client.authorize(with_request_id(allow_request(), "req-ok-1")).await.expect("allow");
        assert_eq!(echoed(ok.metadata()).as_deref(), Some("req-ok-1"));
        let bad =
            client.authorize(with_request_id(request("", PRESIGN, COMET_APP), "req-bad-2")).await.expect_err("invalid");
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert_eq!(echoed(bad.metadata()).as_deref(), Some("req-bad-2"), "{bad:?}");
        let batch = client
            .authorize_batch(with_request_id(
                proto::AuthorizeBatchRequest { requests: vec![allow_request()] },
                "req-batch-3",
            ))
            .await
            .expect("batch");
        assert_eq!(echoed(batch.metadata()).as_deref(), Some("req-batch-3"));
        let status = client
            .get_bundle_status(with_request_id(proto::GetBundleStatusRequest {}, "req-status-4"))
            .await
            .expect("status");
        assert_eq!(echoed(status.metadata()).as_deref(), Some("req-status-4"));
        // No id sent, none echoed.
        let none = client.authorize(allow_request()).await.expect("allow");
        assert_eq!(echoed(none.metadata()), None);

        // UNAVAILABLE (no bundle) and INTERNAL (a panic) echo too.
        let cold = Server::start(Options { load_bundle: false, ..Options::default() }).await;
        let s = cold
            .authorizer()
            .await
            .authorize(with_request_id(allow_request(), "req-cold-5"))
            .await
            .expect_err("no bundle");
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(echoed(s.metadata()).as_deref(), Some("req-cold-5"), "{s:?}");
        let panicky = Server::start(Options { evaluator: panicking_evaluator, load_bundle: true }).await;
        let s = panicky
            .authorizer()
            .await
            .authorize(with_request_id(allow_request(), "req-panic-6"))
            .await
            .expect_err("panic");
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(echoed(s.metadata()).as_deref(), Some("req-panic-6"), "{s:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_request_id_is_echoed_when_a_request_over_1_mib_is_refused() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let mut client = AuthorizerClient::new(server.tcp().await).max_encoding_message_size(16 << 20);
        let big = "x".repeat(2 << 20);
        let req = proto::AuthorizeRequest { context: Some(context(&[("aws:UserAgent", &big)])), ..allow_request() };
        let s = client.authorize(with_request_id(req, "req-big-7")).await.expect_err("too large");
        assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
        let echoed = s.metadata().get("x-request-id").and_then(|v| v.to_str().ok());
        assert_eq!(echoed, Some("req-big-7"), "{s:?}");
    })
    .await;
}

// === 4. health transitions ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_before_activation_serving_after_and_not_serving_during_shutdown() {
    bounded(async {
        let mut server = Server::start(Options { load_bundle: false, ..Options::default() }).await;
        let mut health = HealthClient::new(server.tcp().await);
        let mut watch = health
            .watch(HealthCheckRequest { service: AUTHORIZER_SERVICE.to_owned() })
            .await
            .expect("Watch")
            .into_inner();
        let mut next = async || {
            let m = within("a health Watch message", watch.message())
                .await
                .expect("the Watch stream")
                .expect("a Watch message");
            serving(&m)
        };
        assert_eq!(next().await, ServingStatus::NotServing, "before activation");
        assert!(server.activate().await);
        assert_eq!(next().await, ServingStatus::Serving, "after activation");
        assert_eq!(health_status(&mut health, "").await, ServingStatus::Serving);

        let running = server.running.take().expect("running");
        let shutdown = tokio::spawn(running.shutdown());
        assert_eq!(next().await, ServingStatus::NotServing, "during shutdown");
        // A Watch is a call in flight: the client ends it, and then the server drains.
        drop(watch);
        drop(health);
        let drained = within("shutdown", shutdown).await.expect("the shutdown task");
        assert!(drained, "shutdown drained once the Watch ended");
    })
    .await;
}

// === 5. reflection ===

/// One reflection test per protocol version (`v1`, `v1alpha`): the generated types have the same
/// shape in both modules.
macro_rules! reflection_test {
    ($name:ident, $version:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
            use tonic_reflection::pb::$version::{ServerReflectionRequest, ServerReflectionResponse};

            bounded(async {
                let server = Server::start(Options::default()).await;
                let asks = vec![
                    MessageRequest::ListServices(String::new()),
                    MessageRequest::FileContainingSymbol("warden.v1.Authorizer".into()),
                    MessageRequest::FileContainingSymbol("warden.v1.AuthorizeRequest".into()),
                    MessageRequest::FileByFilename("google/protobuf/struct.proto".into()),
                    MessageRequest::FileContainingSymbol("grpc.health.v1.Health".into()),
                ];
                let n = asks.len();
                let requests: Vec<ServerReflectionRequest> = asks
                    .into_iter()
                    .map(|m| ServerReflectionRequest { host: String::new(), message_request: Some(m) })
                    .collect();
                let mut client = ServerReflectionClient::new(server.tcp().await);
                let mut stream = client
                    .server_reflection_info(tokio_stream::iter(requests))
                    .await
                    .expect("ServerReflectionInfo")
                    .into_inner();
                let mut answers: Vec<ServerReflectionResponse> = Vec::new();
                while answers.len() < n {
                    let m = within("a reflection answer", stream.message())
                        .await
                        .expect("the reflection stream")
                        .expect("one answer per request");
                    answers.push(m);
                }
                let files = |i: usize| -> Vec<prost_types::FileDescriptorProto> {
                    match &answers[i].message_response {
                        Some(MessageResponse::FileDescriptorResponse(f)) => f
                            .file_descriptor_proto
                            .iter()
                            .map(|b| {
                                prost_types::FileDescriptorProto::decode(b.as_slice()).expect("a FileDescriptorProto")
                            })
                            .collect(),
                        other => panic!("answer {i}: expected file descriptors, got {other:?}"),
                    }
                };

                let services: Vec<String> = match &answers[0].message_response {
                    Some(MessageResponse::ListServicesResponse(l)) => {
                        l.service.iter().map(|s| s.name.clone()).collect()
                    }
                    other => panic!("expected a service list, got {other:?}"),
                };
                for want in ["warden.v1.Authorizer", "grpc.health.v1.Health"] {
                    assert!(services.iter().any(|s| s == want), "`{want}` listed: {services:?}");
                }

                let warden_file = |i: usize| {
                    files(i)
                        .into_iter()
                        .find(|f| f.package() == "warden.v1")
                        .unwrap_or_else(|| panic!("answer {i}: no warden.v1 file"))
                };
                let f = warden_file(1);
                assert_eq!(f.name(), "warden/v1/warden.proto");
                let svc = f.service.iter().find(|s| s.name() == "Authorizer").expect("service Authorizer in the file");
                let methods: Vec<&str> = svc.method.iter().map(|m| m.name()).collect();
                for m in ["Authorize", "AuthorizeBatch", "GetBundleStatus"] {
                    assert!(methods.contains(&m), "method {m}: {methods:?}");
                }
                assert!(
                    f.dependency.iter().any(|d| d == "google/protobuf/struct.proto"),
                    "imports struct.proto: {:?}",
                    f.dependency
                );

                let f = warden_file(2);
                let msg =
                    f.message_type.iter().find(|m| m.name() == "AuthorizeRequest").expect("message AuthorizeRequest");
                let fields: Vec<&str> = msg.field.iter().map(|x| x.name()).collect();
                for x in ["principal", "action", "resource", "context", "resource_tags", "explain"] {
                    assert!(fields.contains(&x), "field {x}: {fields:?}");
                }
                let context = msg.field.iter().find(|x| x.name() == "context").expect("context");
                assert_eq!(context.type_name(), ".google.protobuf.Struct");

                let structs = files(3);
                let s = structs
                    .iter()
                    .find(|f| f.name() == "google/protobuf/struct.proto")
                    .expect("struct.proto is served");
                assert!(s.message_type.iter().any(|m| m.name() == "Struct"), "message Struct");

                let health = files(4);
                assert!(
                    health
                        .iter()
                        .any(|f| f.package() == "grpc.health.v1" && f.service.iter().any(|s| s.name() == "Health")),
                    "the health service is described"
                );
            })
            .await;
        }
    };
}

reflection_test!(reflection_v1_lists_and_describes_the_services, v1);
reflection_test!(reflection_v1alpha_lists_and_describes_the_services, v1alpha);

// === 6. admin HTTP and metrics ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_decision_histogram_has_buckets_from_1us_to_100ms_by_rpc_and_decision() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let mut client = server.authorizer().await;
        client.authorize(allow_request()).await.expect("allow");
        client.authorize(explicit_deny_request()).await.expect("deny");
        client.authorize(implicit_deny_request()).await.expect("implicit deny");
        let answer = http_get(server.admin_addr(), "/metrics").await;
        assert_eq!(answer.status, 200);
        assert!(answer.header("content-type").is_some_and(|c| c.starts_with("text/plain")), "{:?}", answer.headers);
        assert!(
            answer.body.contains("# TYPE warden_decision_duration_seconds histogram"),
            "a histogram, not a summary"
        );
        let samples = parse_prometheus(&answer.body);
        for decision in ["allow", "explicit_deny", "implicit_deny"] {
            let buckets: Vec<&Sample> = samples
                .iter()
                .filter(|s| {
                    s.name == "warden_decision_duration_seconds_bucket"
                        && s.labels.get("rpc").map(String::as_str) == Some("authorize")
                        && s.labels.get("decision").map(String::as_str) == Some(decision)
                })
                .collect();
            assert!(!buckets.is_empty(), "no buckets for decision {decision}");
            for b in &buckets {
                let keys: Vec<&str> = b.labels.keys().map(String::as_str).collect();
                assert_eq!(keys, ["decision", "le", "rpc"], "{b:?}");
            }
            let bounds: Vec<f64> = buckets
                .iter()
                .map(|b| match b.labels["le"].as_str() {
                    "+Inf" => f64::INFINITY,
                    le => le.parse().unwrap_or_else(|_| panic!("le `{le}`")),
                })
                .collect();
            assert_eq!(bounds.first().copied(), Some(1e-6), "{bounds:?}");
            assert_eq!(bounds.iter().rev().nth(1).copied(), Some(0.1), "{bounds:?}");
            assert_eq!(bounds.last().copied(), Some(f64::INFINITY), "{bounds:?}");
            assert!(bounds.windows(2).all(|w| w[0] < w[1]), "increasing: {bounds:?}");
            let counts: Vec<f64> = buckets.iter().map(|b| b.value).collect();
            assert!(counts.windows(2).all(|w| w[0] <= w[1]), "cumulative: {counts:?}");
            let count = sample_sum(
                &samples,
                "warden_decision_duration_seconds_count",
                &[("rpc", "authorize"), ("decision", decision)],
            );
            assert!(count >= 1.0, "{decision}: count {count}");
            assert_eq!(counts.last().copied(), Some(count), "+Inf bucket equals the count");
            let sum = samples.iter().any(|s| {
                s.name == "warden_decision_duration_seconds_sum"
                    && s.labels.get("decision").map(String::as_str) == Some(decision)
            });
            assert!(sum, "a _sum for {decision}");
        }
        // Low cardinality: no principal, action or resource in any label.
        for s in &samples {
            for v in s.labels.values() {
                assert!(!v.contains("arn:") && !v.contains(':') || v.starts_with("sha256:"), "{s:?}");
            }
        }
        let info = sample_sum(&samples, "warden_bundle_info", &[("revision", &server.revision())]);
        assert_eq!(info, 1.0, "warden_bundle_info of the active revision");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_requests_total_counts_calls_by_rpc_and_code() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let count = |m: &[Sample], rpc: &str, code: &str| {
            sample_sum(m, "warden_requests_total", &[("rpc", rpc), ("code", code)])
        };
        let before = server.metrics().await;
        let mut client = server.authorizer().await;
        for _ in 0..5 {
            client.authorize(allow_request()).await.expect("allow");
        }
        client.authorize(request("", PRESIGN, COMET_APP)).await.expect_err("invalid");
        client
            .authorize_batch(proto::AuthorizeBatchRequest { requests: vec![allow_request(), allow_request()] })
            .await
            .expect("batch");
        client.get_bundle_status(proto::GetBundleStatusRequest {}).await.expect("status");
        let after = server.metrics().await;
        let grew = |rpc: &str, code: &str| count(&after, rpc, code) - count(&before, rpc, code);
        assert!(grew("authorize", "OK") >= 5.0, "authorize OK grew by {}", grew("authorize", "OK"));
        assert!(grew("authorize", "INVALID_ARGUMENT") >= 1.0);
        assert!(grew("authorize_batch", "OK") >= 1.0);
        assert!(grew("get_bundle_status", "OK") >= 1.0);
        // Each batch item is a decision under rpc="authorize" in the histogram.
        let decisions = |m: &[Sample]| {
            sample_sum(m, "warden_decision_duration_seconds_count", &[("rpc", "authorize"), ("decision", "allow")])
        };
        assert!(decisions(&after) - decisions(&before) >= 7.0);
    })
    .await;
}

/// Calls `path` with an empty message through a raw tonic client; returns the error status.
async fn call_raw(channel: Channel, path: &'static str) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    within("the raw client to be ready", grpc.ready()).await.expect("ready");
    let codec = tonic_prost::ProstCodec::<proto::GetBundleStatusRequest, proto::BundleStatus>::default();
    let s = grpc
        .unary(
            with_request_id(proto::GetBundleStatusRequest {}, "req-unknown-8"),
            PathAndQuery::from_static(path),
            codec,
        )
        .await
        .expect_err("an unknown method is an error");
    let echoed = s.metadata().get("x-request-id").and_then(|v| v.to_str().ok());
    assert_eq!(echoed, Some("req-unknown-8"), "x-request-id echoed by an unknown method: {s:?}");
    s
}

fn unknown_count(m: &[Sample]) -> f64 {
    sample_sum(m, "warden_requests_total", &[("rpc", "unknown")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_an_unknown_service_under_rpc_unknown() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let before = unknown_count(&server.metrics().await);
        let s = call_raw(server.tcp().await, "/warden.v2.Nope/Authorize").await;
        assert_eq!(s.code(), Code::Unimplemented, "{s:?}");
        let after = server.metrics().await;
        assert!(unknown_count(&after) >= before + 1.0, "before {before}, after {after:?}");
        assert!(sample_sum(&after, "warden_requests_total", &[("rpc", "unknown"), ("code", "UNIMPLEMENTED")]) >= 1.0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_an_unknown_method_of_the_authorizer_under_rpc_unknown() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let before = unknown_count(&server.metrics().await);
        let s = call_raw(server.tcp().await, "/warden.v1.Authorizer/Nope").await;
        assert_eq!(s.code(), Code::Unimplemented, "{s:?}");
        let after = unknown_count(&server.metrics().await);
        assert!(after >= before + 1.0, "before {before}, after {after}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_healthz_readyz_and_status_json() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let revision = server.revision();
        let live = http_get(server.admin_addr(), "/healthz").await;
        assert_eq!(live.status, 200, "{live:?}");
        let ready = http_get(server.admin_addr(), "/readyz").await;
        assert_eq!(ready.status, 200, "{ready:?}");
        let answer = http_get(server.admin_addr(), "/v1/status").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(
            answer.header("content-type").is_some_and(|c| c.starts_with("application/json")),
            "{:?}",
            answer.headers
        );
        let status: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
        assert_eq!(status["revision"], revision.as_str(), "{status}");
        let counts = status["counts"].as_object().unwrap_or_else(|| panic!("counts: {status}"));
        for key in ["policies", "statements", "roles", "scps"] {
            let n = counts.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0);
            assert!(n > 0, "counts.{key} of the default bundle: {status}");
        }
        // The same as GetBundleStatus.
        let grpc = server
            .authorizer()
            .await
            .get_bundle_status(proto::GetBundleStatusRequest {})
            .await
            .expect("GetBundleStatus")
            .into_inner();
        let counts = grpc.counts.expect("counts");
        assert_eq!(status["counts"]["policies"].as_u64(), Some(u64::from(counts.policies)));
        assert_eq!(grpc.revision, revision);
        assert!(grpc.activated_at.is_some());
        assert!(grpc.last_reload_error.is_empty(), "{grpc:?}");
        let missing = http_get(server.admin_addr(), "/nope").await;
        assert_eq!(missing.status, 404);
    })
    .await;
}

// === 7. graceful shutdown ===

/// How many calls entered [`slow_evaluator`] (only the shutdown test uses it).
static SLOW_ENTERED: AtomicUsize = AtomicUsize::new(0);
/// How many calls left [`slow_evaluator`].
static SLOW_FINISHED: AtomicUsize = AtomicUsize::new(0);

fn slow_evaluator(bundle: &Bundle, req: &engine::Request) -> engine::Response {
    SLOW_ENTERED.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    let r = engine::authorize(bundle, req);
    SLOW_FINISHED.fetch_add(1, Ordering::SeqCst);
    r
}

// Enough workers that all 16 slow calls (each blocking a worker for 300 ms) are in flight at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 24)]
async fn graceful_shutdown_finishes_every_in_flight_call_then_refuses_connections() {
    bounded(async {
        let mut server = Server::start(Options { evaluator: slow_evaluator, load_bundle: true }).await;
        let revision = server.revision();
        let grpc_addr = server.grpc_addr();
        let uds = server.uds_path();
        let admin = server.admin_addr();
        let tcp = AuthorizerClient::new(server.tcp().await);
        let unix = AuthorizerClient::new(server.uds().await);
        let entered = SLOW_ENTERED.load(Ordering::SeqCst);
        let calls: Vec<_> = (0..16)
            .map(|i| {
                let mut client = if i % 2 == 0 { tcp.clone() } else { unix.clone() };
                let allow = i % 4 < 2;
                tokio::spawn(async move {
                    let req = if allow { allow_request() } else { explicit_deny_request() };
                    (allow, client.authorize(req).await)
                })
            })
            .collect();
        within("16 calls to be inside the evaluator", async {
            while SLOW_ENTERED.load(Ordering::SeqCst) < entered + 16 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
        let finished_at_shutdown = SLOW_FINISHED.load(Ordering::SeqCst);
        let drained = server.shutdown().await;
        for call in calls {
            let (allow, answer) = within("an in-flight call", call).await.expect("the call task");
            let r = answer.unwrap_or_else(|s| panic!("an in-flight call was lost: {s:?}")).into_inner();
            if allow {
                assert_allow(&r, &revision);
            } else {
                assert_explicit_deny(&r, &revision);
            }
        }
        assert!(drained, "shutdown reports that every call finished within the grace period");
        assert!(
            finished_at_shutdown < entered + 16,
            "at least one call was still inside the evaluator when shutdown began"
        );

        // Stopped accepting: no new connections on any listener.
        assert!(tokio::net::TcpStream::connect(grpc_addr).await.is_err(), "the gRPC TCP listener is closed");
        assert!(tokio::net::TcpStream::connect(admin).await.is_err(), "the admin listener is closed");
        assert!(tokio::net::UnixStream::connect(&uds).await.is_err(), "the Unix socket is closed");
        assert!(!uds.exists(), "the socket file is removed");
        let mut old = tcp.clone();
        let s = within("a call after shutdown", old.authorize(allow_request()))
            .await
            .expect_err("no answer after shutdown");
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    })
    .await;
}

/// Issue 8: calls are counted by the wire layer from the request path and `grpc-status`, so an RPC
/// no list names (here Health/Check, and the OK read from the trailers) is counted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_8_every_rpc_is_counted_from_its_path_and_grpc_status() {
    bounded(async {
        let server = Server::start(Options::default()).await;
        let ok = |m: &[Sample], rpc: &str| sample_sum(m, "warden_requests_total", &[("rpc", rpc), ("code", "OK")]);
        let before = server.metrics().await;
        let mut health = HealthClient::new(server.tcp().await);
        for _ in 0..3 {
            health_status(&mut health, "").await;
        }
        let mut client = server.authorizer().await;
        client.get_bundle_status(proto::GetBundleStatusRequest {}).await.expect("GetBundleStatus");
        let after = server.metrics().await;
        // At least: other tests of this binary share the process-wide recorder.
        assert!(ok(&after, "health_check") - ok(&before, "health_check") >= 3.0, "{after:?}");
        assert!(ok(&after, "get_bundle_status") - ok(&before, "get_bundle_status") >= 1.0, "{after:?}");
    })
    .await;
}
