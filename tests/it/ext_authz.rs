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
        assert!(body["message"].as_str().is_some_and(|m| m.contains("principal")), "{body}");
    }

    // No route: 403 (the default of `unmatched`).
    for (method, path) in [("GET", "/nowhere"), ("HEAD", FIDDLER_PATH)] {
        let none = check(ch, check_request(method, path, &[("x-amzn-principal-arn", BOB_LAUNCH)], "")).await;
        let (code, http, body) = denial_of(&none);
        assert_eq!((code, http), (tonic::Code::PermissionDenied as i32, 403), "{body}");
        assert_eq!(body["decision"], "NO_ROUTE");
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
