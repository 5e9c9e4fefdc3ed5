//! Envoy ext_authz v3 (`envoy.service.auth.v3.Authorization/Check`, SPEC §9) through the real server
//! with the default bundle's `ext-authz/routes.json`, over TCP and the Unix socket, with envoy-types'
//! own client: an ALLOW with the propagated headers, a 403 with its JSON body, 400s, an unmatched
//! route, reflection.
use crate::propagate::{bounded, within};
use crate::reload::tcp_channel;
use crate::support;
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use std::collections::HashMap;
use std::path::Path;
use tokio_stream::StreamExt as _;
use tonic::transport::{Channel, Endpoint};
use warden::config::ServeConfig;
use warden::server::{Options, Running};

const FIDDLER_PATH: &str = "/apps/app-FIDDLERTM002/api/v1/projects?page=2";
const BOB_LAUNCH: &str = "arn:aws:sts::111122223333:assumed-role/PartnerAppLauncherSessionTagRole/bob-launch";

async fn start() -> (Running, tempfile::TempDir) {
    let dir = support::temp_dir();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let socket = dir.path().join("warden.sock");
    let config = ServeConfig::from_flags(
        Some(policies.to_str().expect("utf-8")),
        Some("127.0.0.1:0"),
        Some(socket.to_str().expect("utf-8")),
        Some("127.0.0.1:0"),
        Some(10_000),
    )
    .expect("valid flags");
    let running = within("start", Running::start(&config, Options::default())).await.expect("server starts");
    within("first load", async {
        while running.store.load().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    (running, dir)
}

async fn uds(path: std::path::PathBuf) -> Channel {
    let endpoint = Endpoint::try_from("http://[::]:50051").expect("endpoint");
    let connect =
        endpoint.connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }));
    within("connect over the Unix socket", connect).await.expect("connect over the Unix socket")
}

fn check_request(method: &str, path: &str, headers: &[(&str, &str)], principal: &str) -> CheckRequest {
    let headers: HashMap<String, String> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: "10.100.10.7".into(),
                        ..SocketAddress::default()
                    })),
                }),
                principal: principal.into(),
                ..Peer::default()
            }),
            request: Some(Request {
                http: Some(HttpRequest {
                    method: method.into(),
                    host: "gateway.example.com".into(),
                    path: path.into(),
                    headers,
                    ..HttpRequest::default()
                }),
                ..Request::default()
            }),
            ..AttributeContext::default()
        }),
    }
}

async fn check(ch: &Channel, req: CheckRequest) -> CheckResponse {
    AuthorizationClient::new(ch.clone()).check(req).await.expect("Check answers").into_inner()
}

fn headers_of(r: &CheckResponse) -> HashMap<String, String> {
    match &r.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            ok.headers.iter().filter_map(|h| h.header.as_ref()).map(|h| (h.key.clone(), h.value.clone())).collect()
        }
        other => panic!("not an OK response: {other:?} ({:?})", r.status),
    }
}

/// (grpc code, http status, JSON body) of a denied response.
fn denial_of(r: &CheckResponse) -> (i32, i32, serde_json::Value) {
    match &r.http_response {
        Some(HttpResponse::DeniedResponse(d)) => {
            let ct = d.headers.iter().filter_map(|h| h.header.as_ref()).find(|h| h.key == "content-type");
            assert_eq!(ct.map(|h| h.value.as_str()), Some("application/json"));
            let body = serde_json::from_str(&d.body).expect("a JSON body");
            (r.status.as_ref().map_or(0, |s| s.code), d.status.as_ref().map_or(0, |s| s.code), body)
        }
        other => panic!("not a denied response: {other:?}"),
    }
}

async fn scenario(ch: &Channel, revision: &str) {
    // ALLOW, with the propagated identity for the upstream.
    let allow = check(
        ch,
        check_request(
            "GET",
            FIDDLER_PATH,
            &[("x-amzn-principal-arn", BOB_LAUNCH), ("x-amzn-session-tag-sagemakerpartnerappuser", "bob")],
            "",
        ),
    )
    .await;
    assert_eq!(allow.status.as_ref().map(|s| s.code), Some(0), "{allow:?}");
    let h = headers_of(&allow);
    assert!(h.get("x-warden-decision-id").is_some_and(|v| !v.is_empty()), "{h:?}");
    assert_eq!(h.get("x-sagemaker-partner-app-user").map(String::as_str), Some("bob"));
    assert_eq!(h.get("x-sagemaker-partner-app-user-source").map(String::as_str), Some("SESSION_TAG"));
    assert_eq!(h.get("x-warden-admin-role").map(String::as_str), Some("ROOT_ADMIN"));

    // A deny: 403 with a JSON body naming the decision, its id and the revision.
    let deny = check(
        ch,
        check_request("GET", FIDDLER_PATH, &[("x-amzn-principal-arn", "arn:aws:iam::111122223333:user/nobody")], ""),
    )
    .await;
    let (code, http, body) = denial_of(&deny);
    assert_eq!((code, http), (tonic::Code::PermissionDenied as i32, 403), "{body}");
    assert_eq!(body["decision"], "IMPLICIT_DENY", "{body}");
    assert_eq!(body["bundle_revision"], revision);
    assert_eq!(body["route"], "partner-app-api");
    assert!(body["decision_id"].as_str().is_some_and(|s| !s.is_empty()), "{body}");
    assert!(body["determining"].is_array(), "{body}");

    // Malformed: no principal header; a principal that is not an ARN (Authorize's validation).
    for headers in [vec![], vec![("x-amzn-principal-arn", "not-an-arn")]] {
        let bad = check(ch, check_request("GET", FIDDLER_PATH, &headers, "")).await;
        let (code, http, body) = denial_of(&bad);
        assert_eq!((code, http), (tonic::Code::InvalidArgument as i32, 400), "{body}");
        assert_eq!(body["decision"], "BAD_REQUEST");
        assert_eq!(body["route"], "partner-app-api");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("principal")), "{body}");
        decision_id_of(&bad);
    }

    // No route: 403 (the default of `unmatched`).
    for (method, path) in [("GET", "/nowhere"), ("HEAD", FIDDLER_PATH)] {
        let none = check(ch, check_request(method, path, &[("x-amzn-principal-arn", BOB_LAUNCH)], "")).await;
        let (code, http, body) = denial_of(&none);
        assert_eq!((code, http), (tonic::Code::PermissionDenied as i32, 403), "{body}");
        assert_eq!(body["decision"], "NO_ROUTE");
        decision_id_of(&none);
    }

    // The peer certificate's URI SAN as the principal (mTLS at Envoy): an unknown role is denied.
    let cert =
        check(ch, check_request("GET", "/ops/apps/app-FIDDLERTM002", &[], "arn:aws:iam::111122223333:role/NoSuchRole"))
            .await;
    let (_, http, body) = denial_of(&cert);
    assert_eq!(http, 403, "{body}");
    assert_eq!(body["route"], "ops-describe-app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext_authz_check_over_tcp_and_the_unix_socket() {
    bounded(async {
        let (running, _dir) = start().await;
        let revision = running.store.load().expect("active").bundle.revision.clone();
        let tcp = tcp_channel(running.grpc_addr.expect("tcp")).await;
        scenario(&tcp, &revision).await;
        let sock = uds(running.uds.clone().expect("uds")).await;
        scenario(&sock, &revision).await;
        running.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext_authz_is_in_reflection() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    bounded(async {
        let (running, _dir) = start().await;
        let ch = tcp_channel(running.grpc_addr.expect("tcp")).await;
        let mut client = ServerReflectionClient::new(ch);
        let reqs = [
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("envoy.service.auth.v3.Authorization".into()),
        ];
        let stream = tokio_stream::iter(
            reqs.into_iter().map(|m| ServerReflectionRequest { host: String::new(), message_request: Some(m) }),
        );
        let mut answers = client.server_reflection_info(stream).await.expect("reflection").into_inner();
        let Some(Ok(list)) = answers.next().await else { panic!("no list answer") };
        let Some(MessageResponse::ListServicesResponse(l)) = list.message_response else { panic!("{list:?}") };
        assert!(l.service.iter().any(|s| s.name == "envoy.service.auth.v3.Authorization"), "{l:?}");
        let Some(Ok(file)) = answers.next().await else { panic!("no file answer") };
        let Some(MessageResponse::FileDescriptorResponse(f)) = file.message_response else { panic!("{file:?}") };
        assert!(!f.file_descriptor_proto.is_empty());
        running.shutdown().await;
    })
    .await;
}

// === decision log, metrics and reloads of Check (the real binary: its own log and /metrics) ===

const DEEPCHECKS_PATH: &str = "/apps/app-DEEPCHECKS01/api/v1/evaluations";

/// A `warden serve` child on `bundle` with a decision log; (child, gRPC address, admin address).
async fn serve_child(
    tmp: &Path,
    bundle: &Path,
    log: &Path,
) -> (support::ServeChild, std::net::SocketAddr, std::net::SocketAddr) {
    let args: Vec<String> = vec![
        "serve".into(),
        "--bundle".into(),
        bundle.to_str().expect("utf-8").into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--admin-listen".into(),
        "127.0.0.1:0".into(),
        "--decision-log".into(),
        log.to_str().expect("utf-8").into(),
    ];
    let mut child = support::ServeChild::spawn(tmp, &args, &tmp.join("serve.log"));
    let admin = child.logged_addr("admin HTTP listening").await;
    let grpc = child.logged_addr("gRPC listening (TCP)").await;
    let started = std::time::Instant::now();
    while support::http_get(admin, "/readyz").await.status != 200 {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "not ready:\n{}", child.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (child, grpc, admin)
}

/// The JSON lines of the decision log once it holds `n` of them (waits up to 10 s).
async fn log_lines(log: &Path, n: usize) -> Vec<serde_json::Value> {
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
        if lines.len() >= n || started.elapsed() > std::time::Duration::from_secs(10) {
            assert_eq!(lines.len(), n, "decision-log lines:\n{text}");
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn with_request_id(mut req: CheckRequest, id: &str) -> CheckRequest {
    if let Some(h) = req.attributes.as_mut().and_then(|a| a.request.as_mut()).and_then(|r| r.http.as_mut()) {
        h.headers.insert("x-request-id".into(), id.into());
    }
    req
}

/// The decision id an answer carries: `x-warden-decision-id` on every answer, and the JSON body's
/// `decision_id` (the same) on a denial.
fn decision_id_of(r: &CheckResponse) -> String {
    let headers = match &r.http_response {
        Some(HttpResponse::OkResponse(ok)) => &ok.headers,
        Some(HttpResponse::DeniedResponse(d)) => &d.headers,
        other => panic!("no http_response: {other:?}"),
    };
    let id = headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == "x-warden-decision-id")
        .map(|h| h.value.clone())
        .unwrap_or_else(|| panic!("no x-warden-decision-id: {r:?}"));
    assert!(!id.is_empty(), "{r:?}");
    if let Some(HttpResponse::DeniedResponse(_)) = &r.http_response {
        let (_, _, body) = denial_of(r);
        assert_eq!(body["decision_id"].as_str(), Some(id.as_str()), "the body names the header's id: {body}");
    }
    id
}

/// SPEC §6 and §9, issue 13 item 1: every `Check` — allowed, denied, refused by propagation, malformed,
/// unmatched — is one decision-log line (`rpc: ext_authz_check`, the route, the bounded HTTP method
/// and path without its query, the HTTP status, the decision id the answer carried, the revision) and
/// one `warden_decision_duration_seconds{rpc="ext_authz_check"}` sample labelled by its outcome; the
/// Authorize and PropagateIdentity steps inside it are not counted or logged a second time. Calls are
/// counted in `warden_requests_total{rpc="ext_authz_check"}` by gRPC code, undecodable bytes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_is_one_decision_log_line_and_one_timed_decision() {
    use crate::support::{parse_prometheus, sample_sum};
    bounded(async {
        let tmp = support::temp_dir();
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let log = tmp.path().join("decisions.jsonl");
        let (_child, grpc, admin) = serve_child(tmp.path(), &policies, &log).await;
        let revision = support::http_get(admin, "/readyz").await.body.trim().trim_start_matches("ready ").to_owned();
        assert!(support::is_revision(&revision), "{revision}");
        let ch = tcp_channel(grpc).await;
        let tagged = [("x-amzn-principal-arn", BOB_LAUNCH), ("x-amzn-session-tag-sagemakerpartnerappuser", "bob")];
        let long_path = format!("/nowhere/{}", "a".repeat(100_000));
        let long_id = "r".repeat(10_000);
        // (request, decision label, HTTP status, route, logged path)
        let calls: Vec<(CheckRequest, &str, u64, Option<&str>, String)> = vec![
            (
                with_request_id(check_request("GET", FIDDLER_PATH, &tagged, ""), "req-allow"),
                "allow",
                200,
                Some("partner-app-api"),
                "/apps/app-FIDDLERTM002/api/v1/projects".into(),
            ),
            (
                check_request(
                    "GET",
                    FIDDLER_PATH,
                    &[("x-amzn-principal-arn", "arn:aws:iam::111122223333:user/nobody")],
                    "",
                ),
                "implicit_deny",
                403,
                Some("partner-app-api"),
                "/apps/app-FIDDLERTM002/api/v1/projects".into(),
            ),
            (
                check_request("POST", DEEPCHECKS_PATH, &[("x-amzn-principal-arn", BOB_LAUNCH)], ""),
                "propagation_denied",
                403,
                Some("partner-app-api"),
                DEEPCHECKS_PATH.into(),
            ),
            (
                check_request("GET", FIDDLER_PATH, &[], ""),
                "bad_request",
                400,
                Some("partner-app-api"),
                "/apps/app-FIDDLERTM002/api/v1/projects".into(),
            ),
            (
                check_request("GET", FIDDLER_PATH, &[("x-amzn-principal-arn", "not-an-arn")], ""),
                "bad_request",
                400,
                Some("partner-app-api"),
                "/apps/app-FIDDLERTM002/api/v1/projects".into(),
            ),
            (
                check_request("GET", "/nowhere?token=secret-value", &[("x-amzn-principal-arn", BOB_LAUNCH)], ""),
                "no_route",
                403,
                None,
                "/nowhere".into(),
            ),
            (
                with_request_id(check_request("GET", &long_path, &[], ""), &long_id),
                "no_route",
                403,
                None,
                format!("{}…", &long_path[..1024]),
            ),
        ];
        let mut ids = Vec::new();
        for (req, ..) in &calls {
            ids.push(decision_id_of(&check(&ch, req.clone()).await));
        }
        let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "every answer has its own decision id: {ids:?}");

        // Bytes that are not a CheckRequest: a gRPC error, counted, not a decision.
        let mut raw = tonic::client::Grpc::new(ch.clone());
        raw.ready().await.expect("ready");
        let s = raw
            .unary(
                tonic::Request::new(vec![0xff_u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
                tonic::codegen::http::uri::PathAndQuery::from_static("/envoy.service.auth.v3.Authorization/Check"),
                crate::hostile::RawCodec,
            )
            .await
            .expect_err("garbage is refused");
        assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");

        let lines = log_lines(&log, calls.len()).await;
        for (line, ((_, label, status, route, path), id)) in lines.iter().zip(calls.iter().zip(&ids)) {
            assert_eq!(line["rpc"], "ext_authz_check", "{line}");
            assert_eq!(line["decision"], *label, "{line}");
            assert_eq!(line["decision_id"].as_str(), Some(id.as_str()), "{line}");
            assert_eq!(line["revision"].as_str(), Some(revision.as_str()), "{line}");
            assert!(line["http"]["method"].as_str().is_some_and(|m| m == "GET" || m == "POST"), "{line}");
            assert_eq!(line["http"]["status"].as_u64(), Some(*status), "{line}");
            assert_eq!(line["http"]["route"].as_str(), *route, "{line}");
            assert_eq!(line["http"]["host"], "gateway.example.com", "{line}");
            let head: String = line.to_string().chars().take(300).collect();
            assert_eq!(line["http"]["path"].as_str(), Some(path.as_str()), "{head}");
            let text = line.to_string();
            assert!(!text.contains("secret-value"), "the query string is not logged: {text}");
            assert!(text.len() < 4096, "a line is bounded: {} bytes", text.len());
        }
        let line = |label: &str| lines.iter().find(|l| l["decision"] == label).expect(label);
        let allow = line("allow");
        assert_eq!(allow["principal"], BOB_LAUNCH);
        assert_eq!(allow["action"], "sagemaker:CallPartnerAppApi");
        assert_eq!(allow["resource"], "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-FIDDLERTM002");
        assert_eq!(allow["request_id"], "req-allow");
        assert_eq!(allow["code"], "OK");
        assert_eq!(allow["propagation"]["user_name"], "bob", "{allow}");
        assert_eq!(allow["propagation"]["admin_role"], "ROOT_ADMIN", "{allow}");
        assert!(allow["determining"].as_array().is_some_and(|d| !d.is_empty()), "{allow}");
        let refused = line("propagation_denied");
        assert_eq!(refused["propagation"]["failed_check"], "PARTNER_APP_IDENTITY", "{refused}");
        assert_eq!(refused["code"], "PERMISSION_DENIED", "{refused}");
        let bad = line("bad_request");
        assert_eq!(bad["code"], "INVALID_ARGUMENT", "{bad}");
        assert!(bad["message"].as_str().is_some_and(|m| m.contains("missing principal header")), "{bad}");
        let long = lines.last().expect("the long-path line");
        assert_eq!(long["request_id"].as_str().map(|r| r.chars().count()), Some(129), "request ids are bounded");

        let m = parse_prometheus(&support::http_get(admin, "/metrics").await.body);
        let timed = |rpc: &str, decision: Option<&str>| {
            let mut labels = vec![("rpc", rpc)];
            labels.extend(decision.map(|d| ("decision", d)));
            sample_sum(&m, "warden_decision_duration_seconds_count", &labels)
        };
        for (label, n) in [
            ("allow", 1.0),
            ("implicit_deny", 1.0),
            ("propagation_denied", 1.0),
            ("bad_request", 2.0),
            ("no_route", 2.0),
        ] {
            assert_eq!(timed("ext_authz_check", Some(label)), n, "decision={label}");
        }
        assert_eq!(timed("ext_authz_check", None), calls.len() as f64, "one timed decision per Check");
        assert_eq!(timed("authorize", None), 0.0, "the Authorize step of a Check is not counted again");
        assert_eq!(timed("propagate_identity", None), 0.0, "nor its PropagateIdentity step");
        let calls_counted =
            |code: &str| sample_sum(&m, "warden_requests_total", &[("rpc", "ext_authz_check"), ("code", code)]);
        assert_eq!(calls_counted("OK"), calls.len() as f64, "every answered Check is a gRPC OK");
        assert_eq!(calls_counted("INVALID_ARGUMENT"), 1.0, "the undecodable call");
    })
    .await;
}

/// A Check answered with the route it matched, or `NO_ROUTE`: (HTTP status, decision, route).
async fn route_of(ch: &Channel, path: &str) -> (i32, String, String) {
    let r = check(ch, check_request("GET", path, &[("x-amzn-principal-arn", BOB_LAUNCH)], "")).await;
    let (_, http, body) = denial_of(&r);
    (http, body["decision"].as_str().unwrap_or("").to_owned(), body["route"].as_str().unwrap_or("").to_owned())
}

/// SPEC §9: `ext-authz/routes.json` reloads with the bundle. In a served bundle directory, a route
/// added to the file answers after the watcher's reload; a broken routes file (an unknown placeholder)
/// is rejected — counted in `warden_bundle_reloads_total{result="rejected"}`, named in `/v1/status` —
/// and the last good routes keep answering; the fix is picked up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_reload_with_the_bundle_and_a_broken_routes_file_keeps_the_last_good_ones() {
    use crate::reload::{RELOAD_BOUND, write_then_rename};
    use crate::support::{parse_prometheus, sample_sum};
    bounded(async {
        let tmp = support::temp_dir();
        let bundle = tmp.path().join("bundle");
        support::copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"), &bundle, &|_| false);
        let log = tmp.path().join("decisions.jsonl");
        let (child, grpc, admin) = serve_child(tmp.path(), &bundle, &log).await;
        let ch = tcp_channel(grpc).await;
        let rejected =
            |text: &str| sample_sum(&parse_prometheus(text), "warden_bundle_reloads_total", &[("result", "rejected")]);
        let readyz = move || async move { support::http_get(admin, "/readyz").await.body };
        assert_eq!(route_of(&ch, "/ping/now").await, (403, "NO_ROUTE".into(), String::new()));

        let routes_path = bundle.join("ext-authz/routes.json");
        let original = std::fs::read_to_string(&routes_path).expect("routes.json");
        let mut doc: serde_json::Value = serde_json::from_str(&original).expect("JSON");
        let ping = serde_json::json!({
            "name": "ping",
            "match": {"path_template": "/ping/{what}", "methods": ["GET"]},
            "principal": {"header": "x-amzn-principal-arn"},
            "action": "s3:GetObject",
            "resource": "arn:aws:s3:::ping-{account}/{what}"
        });
        doc["routes"].as_array_mut().expect("routes").insert(0, ping);
        let before = readyz().await;
        write_then_rename(&routes_path, &serde_json::to_string_pretty(&doc).expect("JSON"));
        let written = std::time::Instant::now();
        loop {
            let (http, decision, route) = route_of(&ch, "/ping/now").await;
            if route == "ping" {
                assert_eq!((http, decision.as_str()), (403, "IMPLICIT_DENY"));
                break;
            }
            assert!(written.elapsed() < RELOAD_BOUND, "the new route does not answer:\n{}", child.log());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let good = readyz().await;
        assert_ne!(good, before, "a new revision");

        // Broken: an unknown placeholder in the new route's resource.
        let rejected_before = rejected(&support::http_get(admin, "/metrics").await.body);
        doc["routes"][0]["resource"] = serde_json::json!("arn:aws:s3:::ping-{acount}/{what}");
        write_then_rename(&routes_path, &serde_json::to_string_pretty(&doc).expect("JSON"));
        let written = std::time::Instant::now();
        let status = loop {
            let status = support::http_get(admin, "/v1/status").await.body;
            if status.contains("ext-authz/routes.json") {
                break status;
            }
            assert!(written.elapsed() < RELOAD_BOUND, "the broken routes file was not rejected:\n{}", child.log());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(status.contains("/routes/0/resource") && status.contains("{acount}"), "{status}");
        assert_eq!(rejected(&support::http_get(admin, "/metrics").await.body), rejected_before + 1.0);
        assert_eq!(readyz().await, good, "the last good bundle keeps serving");
        assert_eq!(route_of(&ch, "/ping/now").await.2, "ping", "its routes still answer");

        // Fixed (back to the original file): the route is gone again.
        write_then_rename(&routes_path, &original);
        let written = std::time::Instant::now();
        while route_of(&ch, "/ping/now").await.1 != "NO_ROUTE" {
            assert!(written.elapsed() < RELOAD_BOUND, "the restored routes do not answer:\n{}", child.log());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(readyz().await, before, "the original revision again");
    })
    .await;
}

/// `warden test` runs the default bundle's `ext_authz` cases (`policies/tests/ext_authz.json`) offline
/// through the routes and the same `Check` as the server, and they can fail: wrong expectations of the
/// outcome, a header and the HTTP status are each reported.
#[test]
fn warden_test_runs_ext_authz_cases_and_a_wrong_expectation_fails() {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let file = policies.join("tests/ext_authz.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("ext_authz.json")).expect("JSON");
    let n = doc["cases"].as_array().expect("cases").len();
    assert!(n >= 10, "{n} cases");
    let run = |dir: &Path| support::warden([Path::new("test"), dir, Path::new("--run"), Path::new("ext_authz_")]);
    let out = run(&policies);
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(out.stdout.contains(&format!("{n} passed, 0 failed")), "{}", out.dump());

    let copy = support::copy_to_temp(&policies, &|_| false);
    let cases = doc["cases"].as_array_mut().expect("cases");
    let allow = cases.iter_mut().find(|c| c["expect"]["decision"] == "ALLOW").expect("an ALLOW case");
    allow["expect"]["decision"] = serde_json::json!("IMPLICIT_DENY");
    let allow_name = allow["name"].as_str().expect("name").to_owned();
    let user = cases
        .iter_mut()
        .find(|c| c["expect"]["headers"]["x-sagemaker-partner-app-user"].is_string())
        .expect("a case expecting a propagated user");
    user["expect"]["headers"]["x-sagemaker-partner-app-user"] = serde_json::json!("mallory");
    let no_route = cases.iter_mut().find(|c| c["expect"]["decision"] == "NO_ROUTE").expect("a NO_ROUTE case");
    no_route["expect"]["status"] = serde_json::json!(404);
    support::write_file(copy.path(), "tests/ext_authz.json", doc.to_string().as_bytes());
    let out = run(copy.path());
    assert_eq!(out.code, 1, "{}", out.dump());
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains(&allow_name), "{text}");
    assert!(text.contains("decision ALLOW, expected IMPLICIT_DENY"), "{text}");
    assert!(text.contains("header `x-sagemaker-partner-app-user` `bob`, expected `mallory`"), "{text}");
    assert!(text.contains("HTTP status 403, expected 404"), "{text}");
}
