//! `envoy.service.auth.v3.Authorization/Check` (SPEC §9): Envoy's external authorization. The
//! bundle's `ext-authz/routes.json` maps the HTTP request to an `AuthorizeRequest` (warden-core,
//! [`Routes::map`]); that request goes through the same validation, cache, engine, metrics
//! (`rpc="ext_authz_check"`) and decision log as `Authorize`, and a route's `propagate` block runs
//! `PropagateIdentity` for the partner app. The answer is what Envoy expects: `OkHttpResponse` with
//! headers for the upstream, or `DeniedHttpResponse` (403 deny, 400 malformed) with a JSON body.
//! Only a missing bundle (UNAVAILABLE) or an internal fault is a gRPC error.
use super::authorize::AuthorizerService;
use crate::proto;
use crate::telemetry::metrics::{self, Rpc};
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption, address};
use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse, check_response::HttpResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::rpc;
use std::time::Instant;
use tonic::{Code, Status};
use warden_core::bundle::ext_authz::{HttpRequest, MapOutcome, Mapped, Unmatched};

/// Generated server of `envoy.service.auth.v3.Authorization` (build.rs; message types from
/// `envoy-types`).
#[expect(clippy::allow_attributes, reason = "tonic writes `#[allow]`s into the code it generates")]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/envoy/envoy.service.auth.v3.rs"));
}

/// The encoded `FileDescriptorSet` of `envoy/service/auth/v3/external_auth.proto` (with imports).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("envoy_ext_authz_descriptor");

/// Header carrying the decision id to the upstream.
pub const DECISION_ID_HEADER: &str = "x-warden-decision-id";

/// The ext_authz service: a view of the Authorizer service.
#[derive(Clone)]
pub struct ExtAuthzService {
    inner: AuthorizerService,
}

impl ExtAuthzService {
    /// Answers from the same store, cache, ids and decision log as `inner`.
    pub fn new(inner: AuthorizerService) -> ExtAuthzService {
        ExtAuthzService { inner }
    }
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue { key: key.to_owned(), value: value.to_owned(), ..HeaderValue::default() }),
        ..HeaderValueOption::default()
    }
}

fn rpc_status(code: Code, message: impl Into<String>) -> Option<rpc::Status> {
    Some(rpc::Status { code: code as i32, message: message.into(), details: Vec::new() })
}

fn ok(headers: Vec<HeaderValueOption>) -> CheckResponse {
    CheckResponse {
        status: rpc_status(Code::Ok, ""),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse { headers, ..OkHttpResponse::default() })),
        ..CheckResponse::default()
    }
}

fn denied(code: Code, http: i32, body: &serde_json::Value, message: &str) -> CheckResponse {
    CheckResponse {
        status: rpc_status(code, message),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: http }),
            headers: vec![header("content-type", "application/json")],
            body: body.to_string(),
        })),
        ..CheckResponse::default()
    }
}

fn determining_json(d: &[proto::StatementRef]) -> serde_json::Value {
    d.iter().map(|s| serde_json::json!({"policy": s.policy, "sid": s.sid, "effect": s.effect})).collect()
}

/// A request message built from a mapped HTTP request.
fn authorize_request(m: &Mapped) -> proto::AuthorizeRequest {
    let context = pbjson_types::Struct {
        fields: m
            .context
            .iter()
            .map(|(k, v)| {
                (k.clone(), pbjson_types::Value { kind: Some(pbjson_types::value::Kind::StringValue(v.clone())) })
            })
            .collect(),
    };
    proto::AuthorizeRequest {
        principal: Some(proto::Principal {
            arn: m.principal_arn.clone(),
            session_tags: m.session_tags.iter().cloned().collect(),
            ..proto::Principal::default()
        }),
        action: m.action.clone(),
        resource: m.resource.clone(),
        context: Some(context),
        ..proto::AuthorizeRequest::default()
    }
}

impl ExtAuthzService {
    fn check_inner(&self, req: CheckRequest, grpc_request_id: Option<String>) -> Result<CheckResponse, Status> {
        let started = Instant::now();
        let active = self.inner.active()?;
        let revision = active.bundle.revision.clone();
        let attrs = req.attributes.unwrap_or_default();
        let http = attrs.request.and_then(|r| r.http).unwrap_or_default();
        let source = attrs.source.unwrap_or_default();
        let peer_ip = match source.address.and_then(|a| a.address) {
            Some(address::Address::SocketAddress(s)) => s.address,
            _ => String::new(),
        };
        let request_id = http.headers.get("x-request-id").cloned().or(grpc_request_id);
        let host = if http.host.is_empty() {
            http.headers.get(":authority").cloned().unwrap_or_default()
        } else {
            http.host.clone()
        };
        let path = if http.path.is_empty() {
            http.headers.get(":path").cloned().unwrap_or_default()
        } else {
            http.path.clone()
        };
        let method = if http.method.is_empty() {
            http.headers.get(":method").cloned().unwrap_or_default()
        } else {
            http.method.clone()
        };
        let hreq = HttpRequest {
            method: &method,
            host: &host,
            path: &path,
            headers: Some(&http.headers),
            peer_ip: &peer_ip,
            peer_principal: &source.principal,
        };
        let outcome = match active.bundle.ext_authz.as_ref() {
            Some(routes) => routes.map(&hreq),
            None => MapOutcome::Unmatched(Unmatched::Deny),
        };
        let m = match outcome {
            MapOutcome::Mapped(m) => m,
            MapOutcome::Unmatched(u) => {
                metrics::decision(Rpc::ExtAuthzCheck, "unmatched", started.elapsed());
                return Ok(match u {
                    Unmatched::Allow => ok(Vec::new()),
                    Unmatched::Deny | Unmatched::NotFound => {
                        let (code, http) =
                            if u == Unmatched::Deny { (Code::PermissionDenied, 403) } else { (Code::NotFound, 404) };
                        let body = serde_json::json!({
                            "decision": "NO_ROUTE",
                            "message": "no ext-authz route matches this request",
                            "bundle_revision": revision,
                        });
                        denied(code, http, &body, "no ext-authz route matches this request")
                    }
                });
            }
            MapOutcome::BadRequest(msg) => {
                metrics::decision(Rpc::ExtAuthzCheck, "error", started.elapsed());
                let body = serde_json::json!({"decision": "BAD_REQUEST", "message": msg, "bundle_revision": revision});
                return Ok(denied(Code::InvalidArgument, 400, &body, &msg));
            }
        };
        let answer = match self.inner.decide(&active, authorize_request(&m), Rpc::ExtAuthzCheck, request_id.as_deref())
        {
            Ok(a) => a,
            Err(s) if s.code() == Code::InvalidArgument || s.code() == Code::ResourceExhausted => {
                let body = serde_json::json!({
                    "decision": "BAD_REQUEST", "message": s.message(), "route": m.route, "bundle_revision": revision,
                });
                return Ok(denied(Code::InvalidArgument, 400, &body, s.message()));
            }
            Err(s) => return Err(s),
        };
        if answer.decision() != proto::Decision::Allow {
            let body = serde_json::json!({
                "decision": answer.decision().as_str_name(),
                "decision_id": answer.decision_id,
                "bundle_revision": answer.bundle_revision,
                "route": m.route,
                "action": m.action,
                "determining": determining_json(&answer.determining),
            });
            let msg = format!("{} by Warden (decision {})", answer.decision().as_str_name(), answer.decision_id);
            return Ok(denied(Code::PermissionDenied, 403, &body, &msg));
        }
        let mut headers = vec![header(DECISION_ID_HEADER, &answer.decision_id)];
        if let Some((channel, app_arn)) = &m.propagate {
            let preq = proto::PropagateIdentityRequest {
                target: Some(proto::propagate_identity_request::Target::PartnerApp(proto::PartnerAppTarget {
                    arn: app_arn.clone(),
                    ..proto::PartnerAppTarget::default()
                })),
                channel: proto::Channel::from_str_name(channel).unwrap_or(proto::Channel::Sdk) as i32,
                evidence: Some(proto::Evidence {
                    principal_arn: m.principal_arn.clone(),
                    session_tags: m.session_tags.iter().cloned().collect(),
                    ..proto::Evidence::default()
                }),
            };
            match self.inner.propagate(&active, preq, Rpc::ExtAuthzCheck, request_id.as_deref()) {
                Ok(p) => {
                    headers.push(header("x-sagemaker-partner-app-user", &p.user_name));
                    headers.push(header("x-sagemaker-partner-app-user-source", p.source().as_str_name()));
                    headers.push(header("x-warden-admin-role", p.admin_role().as_str_name()));
                }
                Err(s) if s.code() == Code::Internal || s.code() == Code::Unavailable => return Err(s),
                Err(s) => {
                    let (code, http) = if s.code() == Code::InvalidArgument {
                        (Code::InvalidArgument, 400)
                    } else {
                        (Code::PermissionDenied, 403)
                    };
                    let denial = super::status::denial_of(&s);
                    let body = serde_json::json!({
                        "decision": "PROPAGATION_DENIED",
                        "code": metrics::code_name(s.code()),
                        "message": s.message(),
                        "check": denial.as_ref().map(|d| d.check.clone()),
                        "decision_id": denial.as_ref().map(|d| d.decision_id.clone()),
                        "bundle_revision": revision,
                        "route": m.route,
                    });
                    return Ok(denied(code, http, &body, s.message()));
                }
            }
        }
        Ok(ok(headers))
    }
}

#[tonic::async_trait]
impl pb::authorization_server::Authorization for ExtAuthzService {
    async fn check(&self, request: tonic::Request<CheckRequest>) -> Result<tonic::Response<CheckResponse>, Status> {
        let id = request.metadata().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.check_inner(request.into_inner(), id).map(tonic::Response::new)
    }
}
