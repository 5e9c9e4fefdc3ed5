//! `envoy.service.auth.v3.Authorization/Check` (SPEC §9): Envoy's external authorization. The
//! bundle's `ext-authz/routes.json` maps the HTTP request to an `AuthorizeRequest` (warden-core,
//! [`Routes::map`]); that request goes through the same validation, cache and engine as `Authorize`,
//! and a route's `propagate` block runs `PropagateIdentity` for the partner app. The answer is what
//! Envoy expects: `OkHttpResponse` with headers for the upstream, or `DeniedHttpResponse` (403 deny,
//! 400 malformed, 403/404 no route) with a JSON body; every answer carries its decision id
//! (`x-warden-decision-id`, and `decision_id` in a JSON body). Only a missing bundle (UNAVAILABLE) or
//! an internal fault is a gRPC error.
//!
//! Every `Check` is one decision: one `warden_decision_duration_seconds{rpc="ext_authz_check"}` sample
//! labelled by its outcome ([`Outcome::label`]) and one decision-log line with the HTTP side
//! (`http`: method, host, path without the query, route, status). [`check`] decides through
//! [`Steps`]: the server's (cache, decision ids) here, the engine's directly in `warden test`
//! (`cli::bundle_tests`), so bundle test cases run the same mapping and answers as `serve`.
use super::authorize::{AuthorizerService, determining_strings, fill_propagation, latency_us};
use crate::proto;
use crate::runtime::store::Active;
use crate::telemetry::decision_log::{self, HttpCheck, Propagation, Record};
use crate::telemetry::metrics::{self, Rpc};
use bytes::{BufMut, Bytes, BytesMut};
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption, address};
use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse, check_response::HttpResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::rpc;
use prost::Message;
use std::cell::Cell;
use std::collections::HashMap;
use std::time::Instant;
use tonic::{Code, Status};
use warden_core::bundle::ext_authz::{HttpRequest, MapOutcome, Mapped, Routes, Unmatched};

/// Generated server of `envoy.service.auth.v3.Authorization` (build.rs; message types from
/// `envoy-types`).
#[expect(clippy::allow_attributes, reason = "tonic writes `#[allow]`s into the code it generates")]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/envoy/envoy.service.auth.v3.rs"));
}

/// The encoded `FileDescriptorSet` of `envoy/service/auth/v3/external_auth.proto` (with imports).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("envoy_ext_authz_descriptor");

/// Header carrying the decision id (to the upstream on an allow, to the client on a denial).
pub const DECISION_ID_HEADER: &str = "x-warden-decision-id";

/// The message of a `NO_ROUTE` answer.
const NO_ROUTE_MESSAGE: &str = "no ext-authz route matches this request";

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

/// The HTTP request of a `CheckRequest`, as the routes see it.
#[derive(Debug, Clone, Default)]
pub struct CheckHttp {
    /// `attributes.request.http.method` (else the `:method` header).
    pub method: String,
    /// `attributes.request.http.host` (else `:authority`).
    pub host: String,
    /// `attributes.request.http.path` (else `:path`), with its query string.
    pub path: String,
    /// The request's headers (Envoy sends lower-case names).
    pub headers: HashMap<String, String>,
    /// `attributes.source.address` when it is a socket address.
    pub peer_ip: String,
    /// `attributes.source.principal`: the URI SAN of the peer's verified certificate.
    pub peer_principal: String,
}

impl CheckHttp {
    /// Reads what the routes match on from Envoy's request.
    pub fn of(req: CheckRequest) -> CheckHttp {
        let attrs = req.attributes.unwrap_or_default();
        let http = attrs.request.and_then(|r| r.http).unwrap_or_default();
        let source = attrs.source.unwrap_or_default();
        let peer_ip = match source.address.and_then(|a| a.address) {
            Some(address::Address::SocketAddress(s)) => s.address,
            _ => String::new(),
        };
        let envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest {
            method,
            host,
            path,
            headers,
            ..
        } = http;
        let or_header = |v: String, name: &str| {
            if v.is_empty() { headers.get(name).cloned().unwrap_or_default() } else { v }
        };
        let method = or_header(method, ":method");
        let host = or_header(host, ":authority");
        let path = or_header(path, ":path");
        CheckHttp { method, host, path, headers, peer_ip, peer_principal: source.principal }
    }

    fn as_request(&self) -> HttpRequest<'_> {
        HttpRequest {
            method: &self.method,
            host: &self.host,
            path: &self.path,
            headers: Some(&self.headers),
            peer_ip: &self.peer_ip,
            peer_principal: &self.peer_principal,
        }
    }

    /// The HTTP side of the decision-log line: bounded, and the path without its query string.
    fn log_view(&self, route: Option<String>, status: Option<u16>) -> HttpCheck {
        let path = self.path.split(['?', '#']).next().unwrap_or("");
        HttpCheck {
            method: decision_log::clip_str(&self.method, decision_log::MAX_METHOD_CHARS),
            host: decision_log::clip_str(&self.host, decision_log::MAX_HOST_CHARS),
            path: decision_log::clip_str(path, decision_log::MAX_PATH_CHARS),
            route,
            status,
        }
    }
}

/// What a `Check` needs decided, by the server (its cache and decision ids) or by `warden test` (the
/// engine directly).
pub trait Steps {
    /// One Authorize decision; the error is this request's status (INVALID_ARGUMENT for a request
    /// Authorize refuses).
    fn authorize(&self, req: proto::AuthorizeRequest) -> Result<proto::AuthorizeResponse, Status>;
    /// One PropagateIdentity answer; a denial's status carries `warden.v1.PropagateIdentityDenial`.
    fn propagate(&self, req: proto::PropagateIdentityRequest) -> Result<proto::PropagateIdentityResponse, Status>;
    /// A decision id for an answer the engine did not give (no route, a malformed request).
    fn decision_id(&self) -> String;
}

/// How a `Check` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Let through (200 at Envoy): the engine allowed, and the propagation (if any) answered.
    Allow,
    /// 403: an explicit deny.
    ExplicitDeny,
    /// 403: no statement allows.
    ImplicitDeny,
    /// 403 (400 for a malformed propagation request): the route's `propagate` step refused.
    PropagationDenied,
    /// 400: the route matched but the request is malformed (no principal, an ARN Authorize refuses).
    BadRequest,
    /// No route matches: what `unmatched` says (403 by default, 404, or let through).
    NoRoute,
}

impl Outcome {
    /// The `decision` of the JSON body and of `warden test` expectations.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "ALLOW",
            Outcome::ExplicitDeny => "EXPLICIT_DENY",
            Outcome::ImplicitDeny => "IMPLICIT_DENY",
            Outcome::PropagationDenied => "PROPAGATION_DENIED",
            Outcome::BadRequest => "BAD_REQUEST",
            Outcome::NoRoute => "NO_ROUTE",
        }
    }

    /// The `decision` label of `warden_decision_duration_seconds` and of the decision-log line.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::ExplicitDeny => "explicit_deny",
            Outcome::ImplicitDeny => "implicit_deny",
            Outcome::PropagationDenied => "propagation_denied",
            Outcome::BadRequest => "bad_request",
            Outcome::NoRoute => "no_route",
        }
    }
}

/// One `Check` answered: the response and what its metrics and decision-log line record.
#[derive(Debug, Clone)]
pub struct Checked {
    /// What Envoy gets.
    pub response: CheckResponse,
    /// How it ended.
    pub outcome: Outcome,
    /// `response.status.code`.
    pub code: Code,
    /// The HTTP status Envoy answers with (200: the request goes through).
    pub http_status: u16,
    /// Why, for an answer that is not an allow.
    pub message: Option<String>,
    /// The id the answer carries.
    pub decision_id: String,
    /// The route that matched.
    pub route: Option<String>,
    /// The mapped principal, action and resource (empty when no route matched).
    pub principal: String,
    /// The mapped action.
    pub action: String,
    /// The mapped resource.
    pub resource: String,
    /// The determining statements of the decision (of the propagation's denial, for one).
    pub determining: Vec<proto::StatementRef>,
    /// Answered from the decision cache.
    pub cached: bool,
    /// The route's `propagate` step, when it ran.
    pub propagation: Option<Propagation>,
}

impl Checked {
    fn new(outcome: Outcome, code: Code, http_status: u16, response: CheckResponse, decision_id: String) -> Checked {
        Checked {
            response,
            outcome,
            code,
            http_status,
            message: None,
            decision_id,
            route: None,
            principal: String::new(),
            action: String::new(),
            resource: String::new(),
            determining: Vec::new(),
            cached: false,
            propagation: None,
        }
    }

    fn mapped(mut self, m: &Mapped) -> Checked {
        self.route = Some(m.route.clone());
        self.principal = m.principal_arn.clone();
        self.action = m.action.clone();
        self.resource = m.resource.clone();
        self
    }

    fn message(mut self, message: impl Into<String>) -> Checked {
        self.message = Some(message.into());
        self
    }

    /// The headers the answer sets: for the upstream on an allow, for the client on a denial.
    pub fn headers(&self) -> HashMap<String, String> {
        let list: &[HeaderValueOption] = match &self.response.http_response {
            Some(HttpResponse::OkResponse(ok)) => ok.headers.as_slice(),
            Some(HttpResponse::DeniedResponse(d)) => d.headers.as_slice(),
            _ => &[],
        };
        list.iter().filter_map(|h| h.header.as_ref()).map(|h| (h.key.clone(), h.value.clone())).collect()
    }

    /// The decision-log line of this answer; the response is left in `self`.
    fn record(&mut self, http: &CheckHttp, request_id: Option<String>, revision: &str, started: Instant) -> Record {
        Record {
            time: decision_log::now_rfc3339(),
            decision_id: self.decision_id.clone(),
            request_id,
            rpc: Rpc::ExtAuthzCheck.as_str(),
            principal: std::mem::take(&mut self.principal),
            action: std::mem::take(&mut self.action),
            resource: std::mem::take(&mut self.resource),
            decision: self.outcome.label(),
            code: metrics::code_name(self.code),
            message: self.message.take(),
            determining: determining_strings(&self.determining),
            revision: revision.to_owned(),
            latency_us: latency_us(started),
            cached: self.cached,
            propagation: self.propagation.take(),
            http: Some(http.log_view(self.route.take(), Some(self.http_status))),
        }
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

fn denied(code: Code, http: u16, body: &serde_json::Value, message: &str, decision_id: &str) -> CheckResponse {
    CheckResponse {
        status: rpc_status(code, message),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: i32::from(http) }),
            headers: vec![header("content-type", "application/json"), header(DECISION_ID_HEADER, decision_id)],
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

/// A 400 for a request a route matched but that is malformed.
fn bad_request(m_route: &str, message: &str, revision: &str, decision_id: String) -> Checked {
    let body = serde_json::json!({
        "decision": Outcome::BadRequest.as_str(),
        "message": message,
        "route": m_route,
        "decision_id": decision_id,
        "bundle_revision": revision,
    });
    let response = denied(Code::InvalidArgument, 400, &body, message, &decision_id);
    Checked::new(Outcome::BadRequest, Code::InvalidArgument, 400, response, decision_id).message(message)
}

/// Answers one `Check` against `routes` (the bundle's, if it has a routes file) of bundle `revision`.
/// `Err` only for a fault that is the gRPC call's (INTERNAL: a panic while evaluating).
pub fn check(routes: Option<&Routes>, revision: &str, http: &CheckHttp, steps: &impl Steps) -> Result<Checked, Status> {
    check_mapped(map(routes, http), revision, steps)
}

/// What the routes make of `http` (no routes file: nothing matches, denied).
fn map(routes: Option<&Routes>, http: &CheckHttp) -> MapOutcome {
    routes.map_or(MapOutcome::Unmatched(Unmatched::Deny), |r| r.map(&http.as_request()))
}

/// [`check`] once the routes have mapped the request.
fn check_mapped(outcome: MapOutcome, revision: &str, steps: &impl Steps) -> Result<Checked, Status> {
    let m = match outcome {
        MapOutcome::Mapped(m) => m,
        MapOutcome::Unmatched(u) => {
            let id = steps.decision_id();
            let body = serde_json::json!({
                "decision": Outcome::NoRoute.as_str(),
                "message": NO_ROUTE_MESSAGE,
                "decision_id": id,
                "bundle_revision": revision,
            });
            let (code, status, response) = match u {
                Unmatched::Allow => (Code::Ok, 200, ok(vec![header(DECISION_ID_HEADER, &id)])),
                Unmatched::Deny => {
                    (Code::PermissionDenied, 403, denied(Code::PermissionDenied, 403, &body, NO_ROUTE_MESSAGE, &id))
                }
                Unmatched::NotFound => (Code::NotFound, 404, denied(Code::NotFound, 404, &body, NO_ROUTE_MESSAGE, &id)),
            };
            return Ok(Checked::new(Outcome::NoRoute, code, status, response, id).message(NO_ROUTE_MESSAGE));
        }
        MapOutcome::BadRequest { route, message } => {
            let mut c = bad_request(&route, &message, revision, steps.decision_id());
            c.route = Some(route);
            return Ok(c);
        }
    };
    let answer = match steps.authorize(authorize_request(&m)) {
        Ok(a) => a,
        Err(s) if s.code() == Code::InvalidArgument || s.code() == Code::ResourceExhausted => {
            return Ok(bad_request(&m.route, s.message(), revision, steps.decision_id()).mapped(&m));
        }
        Err(s) => return Err(s),
    };
    let decision = answer.decision();
    if decision != proto::Decision::Allow {
        let outcome =
            if decision == proto::Decision::ExplicitDeny { Outcome::ExplicitDeny } else { Outcome::ImplicitDeny };
        let body = serde_json::json!({
            "decision": outcome.as_str(),
            "decision_id": answer.decision_id,
            "bundle_revision": answer.bundle_revision,
            "route": m.route,
            "action": m.action,
            "determining": determining_json(&answer.determining),
        });
        let msg = format!("{} by Warden (decision {})", outcome.as_str(), answer.decision_id);
        let response = denied(Code::PermissionDenied, 403, &body, &msg, &answer.decision_id);
        let mut c = Checked::new(outcome, Code::PermissionDenied, 403, response, answer.decision_id).mapped(&m);
        c.determining = answer.determining;
        c.cached = answer.cached;
        return Ok(c.message(msg));
    }
    let mut headers = vec![header(DECISION_ID_HEADER, &answer.decision_id)];
    let mut propagation = None;
    if let Some((channel, app_arn)) = &m.propagate {
        let mut p =
            Propagation { evidence_principal: m.principal_arn.clone(), evidence_kind: "iam", ..Propagation::default() };
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
        match steps.propagate(preq) {
            Ok(out) => {
                fill_propagation(&mut p, &out);
                headers.push(header("x-sagemaker-partner-app-user", &out.user_name));
                headers.push(header("x-sagemaker-partner-app-user-source", out.source().as_str_name()));
                headers.push(header("x-warden-admin-role", out.admin_role().as_str_name()));
            }
            Err(s) if s.code() == Code::Internal || s.code() == Code::Unavailable => return Err(s),
            Err(s) => {
                let (code, http) = if s.code() == Code::InvalidArgument {
                    (Code::InvalidArgument, 400)
                } else {
                    (Code::PermissionDenied, 403)
                };
                let denial = super::status::denial_of(&s);
                p.failed_check = denial.as_ref().map(|d| d.check.clone());
                let id = denial
                    .as_ref()
                    .map(|d| d.decision_id.clone())
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(|| steps.decision_id());
                let body = serde_json::json!({
                    "decision": Outcome::PropagationDenied.as_str(),
                    "code": metrics::code_name(s.code()),
                    "message": s.message(),
                    "check": p.failed_check,
                    "decision_id": id,
                    "bundle_revision": revision,
                    "route": m.route,
                });
                let response = denied(code, http, &body, s.message(), &id);
                let mut c = Checked::new(Outcome::PropagationDenied, code, http, response, id).mapped(&m);
                c.determining = denial.map(|d| d.determining).unwrap_or(answer.determining);
                c.cached = answer.cached;
                c.propagation = Some(p);
                return Ok(c.message(s.message()));
            }
        }
        propagation = Some(p);
    }
    let mut c = Checked::new(Outcome::Allow, Code::Ok, 200, ok(headers), answer.decision_id).mapped(&m);
    c.determining = answer.determining;
    c.cached = answer.cached;
    c.propagation = propagation;
    Ok(c)
}

/// An allow kept for what its route read ([`kept_key`]): answered again, with a new decision id, to a
/// request the routes map to the same thing while the snapshot and its admin memory last. Kept only
/// when every decision it took came from the decision cache and none read the time.
struct KeptCheck {
    checked: Checked,
    /// Its reply ready to be written, when it has the usual shape.
    wire: Option<KeptWire>,
}

/// The wire form of a kept allow: the reply without its `ok_response`, and the `OkHttpResponse` without
/// its first header (the decision id's), so that an answer writes its own id and copies the rest.
struct KeptWire {
    head: Bytes,
    ok_rest: Bytes,
}

impl KeptWire {
    /// The wire form of `r`, when it is an allow whose first header is the decision id and that has no
    /// `dynamic_metadata` (prost writes fields in tag order: `status` 1, `ok_response` 3, then
    /// `dynamic_metadata` 4; in `OkHttpResponse` the `headers`, 2, come first).
    fn of(r: &CheckResponse) -> Option<KeptWire> {
        let Some(HttpResponse::OkResponse(ok)) = &r.http_response else { return None };
        if r.dynamic_metadata.is_some() || ok.headers.first()?.header.as_ref()?.key != DECISION_ID_HEADER {
            return None;
        }
        let head = CheckResponse { http_response: None, ..r.clone() }.encode_to_vec();
        let mut rest = ok.clone();
        rest.headers.remove(0);
        Some(KeptWire { head: Bytes::from(head), ok_rest: Bytes::from(rest.encode_to_vec()) })
    }

    /// The reply with the decision id `id`, as a gRPC message (frame head and message): byte for byte
    /// prost's encoding of the whole reply.
    fn framed(&self, id: &str) -> Bytes {
        use prost::encoding::{encode_varint, encoded_len_varint};
        // HeaderValueOption { header (1): HeaderValue { key (1), value (2) } }, written directly.
        let field = |n: usize| 1 + encoded_len_varint(n as u64) + n;
        let key = DECISION_ID_HEADER.as_bytes();
        let value_len = if id.is_empty() { 0 } else { field(id.len()) };
        let inner_len = field(key.len()) + value_len;
        let header_len = field(inner_len);
        let ok_len = 1 + encoded_len_varint(header_len as u64) + header_len + self.ok_rest.len();
        let len = self.head.len() + 1 + encoded_len_varint(ok_len as u64) + ok_len;
        let mut buf = BytesMut::with_capacity(5 + len);
        buf.put_u8(0);
        buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        buf.put_slice(&self.head);
        buf.put_u8((3 << 3) | 2); // CheckResponse.ok_response
        encode_varint(ok_len as u64, &mut buf);
        buf.put_u8((2 << 3) | 2); // OkHttpResponse.headers
        encode_varint(header_len as u64, &mut buf);
        buf.put_u8((1 << 3) | 2); // HeaderValueOption.header
        encode_varint(inner_len as u64, &mut buf);
        buf.put_u8((1 << 3) | 2); // HeaderValue.key
        encode_varint(key.len() as u64, &mut buf);
        buf.put_slice(key);
        if !id.is_empty() {
            buf.put_u8((2 << 3) | 2); // HeaderValue.value
            encode_varint(id.len() as u64, &mut buf);
            buf.put_slice(id.as_bytes());
        }
        buf.put_slice(&self.ok_rest);
        buf.freeze()
    }
}

/// A `Check` answer: the reply, or (in front of tonic) the reply already framed for the wire.
pub(super) enum Answered {
    Reply(Box<CheckResponse>),
    Framed(Bytes),
}

/// The key of what a `Check` answer depends on besides the snapshot: the mapped request (route,
/// principal, session tags, action, resource, context, the propagation's channel and app) and the
/// admin memory's version. Length-prefixed, so no two different requests share a key.
fn kept_key(m: &Mapped, admins_version: u64) -> Vec<u8> {
    fn put(k: &mut Vec<u8>, s: &str) {
        k.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
        k.extend_from_slice(s.as_bytes());
    }
    let Mapped { route, principal_arn, session_tags, action, resource, context, propagate } = m;
    let mut k = Vec::with_capacity(
        64 + route.len()
            + principal_arn.len()
            + action.len()
            + resource.len()
            + 16 * (session_tags.len() + context.len()),
    );
    k.push(b'C');
    k.extend_from_slice(&admins_version.to_le_bytes());
    put(&mut k, route);
    put(&mut k, principal_arn);
    put(&mut k, action);
    put(&mut k, resource);
    for list in [session_tags, context] {
        k.extend_from_slice(&u32::try_from(list.len()).unwrap_or(u32::MAX).to_le_bytes());
        for (a, b) in list {
            put(&mut k, a);
            put(&mut k, b);
        }
    }
    match propagate {
        Some((channel, app)) => {
            put(&mut k, "propagate");
            put(&mut k, channel);
            put(&mut k, app);
        }
        None => put(&mut k, ""),
    }
    k
}

/// Whether an allow is kept in `active` for what the routes make of `http` (tests).
#[cfg(test)]
pub(super) fn kept_for_test(active: &Active, http: &CheckHttp) -> bool {
    match map(active.bundle.ext_authz.as_deref(), http) {
        MapOutcome::Mapped(m) => active.cache.kept::<KeptCheck>(&kept_key(&m, active.admins_version)).is_some(),
        _ => false,
    }
}

/// What a kept allow costs against the cache's byte budget (`runtime::cache::kept_cost`): its key and
/// every string and list it holds. Destructured by name, so a new field is costed before it builds.
fn kept_check_cost(key: &[u8], c: &Checked, wire: Option<&KeptWire>) -> usize {
    let wire_heap = wire.map_or(0, |w| vec_heap::<u8>(w.head.len()) + vec_heap::<u8>(w.ok_rest.len()));
    use crate::runtime::cache::{kept_cost, text_heap, vec_heap};
    let Checked {
        response,
        outcome: _,
        code: _,
        http_status: _,
        message,
        decision_id,
        route,
        principal,
        action,
        resource,
        determining,
        cached: _,
        propagation,
    } = c;
    // Only allows are kept: their headers are all the response holds besides the status.
    let headers: &[HeaderValueOption] = match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => &ok.headers,
        _ => &[],
    };
    let response_heap = vec_heap::<HeaderValueOption>(headers.len())
        + headers
            .iter()
            .filter_map(|h| h.header.as_ref())
            .map(|h| text_heap(&h.key) + text_heap(&h.value) + vec_heap::<u8>(h.raw_value.len()))
            .sum::<usize>()
        + response.status.as_ref().map_or(0, |s| text_heap(&s.message));
    let determining_heap = vec_heap::<proto::StatementRef>(determining.len())
        + determining
            .iter()
            .map(|d| text_heap(&d.policy) + text_heap(&d.sid) + text_heap(&d.effect) + text_heap(&d.file))
            .sum::<usize>();
    let propagation_heap = propagation.as_ref().map_or(0, |p| {
        text_heap(&p.evidence_principal)
            + p.user_name.as_deref().map_or(0, text_heap)
            + p.failed_check.as_deref().map_or(0, text_heap)
    });
    kept_cost::<KeptCheck>(
        key,
        wire_heap
            + response_heap
            + message.as_deref().map_or(0, text_heap)
            + text_heap(decision_id)
            + route.as_deref().map_or(0, text_heap)
            + text_heap(principal)
            + text_heap(action)
            + text_heap(resource)
            + determining_heap
            + propagation_heap,
    )
}

impl Checked {
    /// The response of this answer (an allow) with the decision id `id` in its header.
    fn response_with_id(&self, id: &str) -> CheckResponse {
        let mut r = self.response.clone();
        if let Some(HttpResponse::OkResponse(ok)) = &mut r.http_response {
            for h in ok.headers.iter_mut().filter_map(|h| h.header.as_mut()) {
                if h.key == DECISION_ID_HEADER {
                    id.clone_into(&mut h.value);
                }
            }
        }
        r
    }
}

/// The server's steps: the snapshot's decision cache and the service's decision ids; nothing is
/// timed or logged here (the `Check` is, once).
struct Served<'a> {
    svc: &'a AuthorizerService,
    active: &'a Active,
    /// Whether a decision the propagation took read the time.
    reads_time: Cell<bool>,
}

impl Steps for Served<'_> {
    fn authorize(&self, req: proto::AuthorizeRequest) -> Result<proto::AuthorizeResponse, Status> {
        self.svc.evaluate(self.active, req)
    }

    fn propagate(&self, req: proto::PropagateIdentityRequest) -> Result<proto::PropagateIdentityResponse, Status> {
        self.svc.propagate_tracked(self.active, req, &self.reads_time).map_err(|r| r.status)
    }

    fn decision_id(&self) -> String {
        self.svc.next_decision_id()
    }
}

impl ExtAuthzService {
    /// One `Check`, timed, counted and logged: what the tonic handler answers and what
    /// `grpc::answers` answers in front of tonic.
    pub(super) fn check_inner(
        &self,
        req: CheckRequest,
        grpc_request_id: Option<String>,
    ) -> Result<CheckResponse, Status> {
        match self.check_answer(req, grpc_request_id, false)? {
            Answered::Reply(r) => Ok(*r),
            // Not asked for; decoded back all the same.
            Answered::Framed(b) => CheckResponse::decode(b.get(5..).unwrap_or_default())
                .map_err(|e| Status::internal(format!("a kept reply does not decode: {e}"))),
        }
    }

    /// [`ExtAuthzService::check_inner`]; a kept allow comes `Framed` when `framed` asks for it.
    pub(super) fn check_answer(
        &self,
        req: CheckRequest,
        grpc_request_id: Option<String>,
        framed: bool,
    ) -> Result<Answered, Status> {
        let started = Instant::now();
        let active = self.inner.active()?;
        let http = CheckHttp::of(req);
        let revision = &active.bundle.revision;
        let outcome = map(active.bundle.ext_authz.as_deref(), &http);
        let key = match &outcome {
            MapOutcome::Mapped(m) => Some(kept_key(m, active.admins_version)),
            _ => None,
        };
        let logs = self.inner.logs();
        let request_id = || http.headers.get("x-request-id").cloned().or(grpc_request_id);
        // The allow kept for what this route read: the same answer with an id of its own (the rest of
        // the kept answer is copied only for the decision log).
        if let Some(kept) = key.as_deref().and_then(|k| active.cache.kept::<KeptCheck>(k)) {
            let id = self.inner.next_decision_id();
            let answered = match (&kept.wire, framed) {
                (Some(w), true) => Answered::Framed(w.framed(&id)),
                _ => Answered::Reply(Box::new(kept.checked.response_with_id(&id))),
            };
            metrics::decision(Rpc::ExtAuthzCheck, Outcome::Allow.label(), started.elapsed());
            if logs {
                let mut c = kept.checked.clone();
                c.decision_id = id;
                let record = c.record(&http, request_id(), revision, started);
                self.inner.log_record(record);
            }
            return Ok(answered);
        }
        let steps = Served { svc: &self.inner, active: &active, reads_time: Cell::new(false) };
        let checked = check_mapped(outcome, revision, &steps);
        if let (Some(k), Ok(c)) = (&key, &checked)
            && c.outcome == Outcome::Allow
            && c.cached
            && !steps.reads_time.get()
        {
            let wire = KeptWire::of(&c.response);
            let cost = kept_check_cost(k, c, wire.as_ref());
            active.cache.keep(k, KeptCheck { checked: c.clone(), wire }, cost);
        }
        let label = checked.as_ref().map_or("error", |c| c.outcome.label());
        metrics::decision(Rpc::ExtAuthzCheck, label, started.elapsed());
        match checked {
            Ok(mut c) => {
                if logs {
                    let record = c.record(&http, request_id(), revision, started);
                    self.inner.log_record(record);
                }
                Ok(Answered::Reply(Box::new(c.response)))
            }
            Err(s) => {
                if logs {
                    self.inner.log_record(Record {
                        time: decision_log::now_rfc3339(),
                        decision_id: self.inner.next_decision_id(),
                        request_id: request_id(),
                        rpc: Rpc::ExtAuthzCheck.as_str(),
                        principal: String::new(),
                        action: String::new(),
                        resource: String::new(),
                        decision: "error",
                        code: metrics::code_name(s.code()),
                        message: Some(s.message().to_owned()),
                        determining: Vec::new(),
                        revision: revision.clone(),
                        latency_us: latency_us(started),
                        cached: false,
                        propagation: None,
                        // A gRPC error: Envoy answers its `status_on_error`.
                        http: Some(http.log_view(None, None)),
                    });
                }
                Err(s)
            }
        }
    }
}

#[tonic::async_trait]
impl pb::authorization_server::Authorization for ExtAuthzService {
    async fn check(&self, request: tonic::Request<CheckRequest>) -> Result<tonic::Response<CheckResponse>, Status> {
        let id = request.metadata().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.check_inner(request.into_inner(), id).map(tonic::Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_allow_is_written_byte_for_byte_as_prost_writes_it() {
        let response = ok(vec![
            header(DECISION_ID_HEADER, "first-id"),
            header("x-sagemaker-partner-app-user", "bob"),
            header("x-sagemaker-partner-app-user-source", "SESSION_TAG"),
            header("x-warden-admin-role", "ADMIN"),
        ]);
        let c = Checked::new(Outcome::Allow, Code::Ok, 200, response, "first-id".into());
        let wire = KeptWire::of(&c.response).expect("the usual shape");
        let long = "f".repeat(300);
        for id in ["0123456789ab0001-00000002", "", long.as_str()] {
            let want = c.response_with_id(id).encode_to_vec();
            let got = wire.framed(id);
            assert_eq!(got.get(5..), Some(want.as_slice()), "id {id:?}");
            let len = u32::try_from(want.len()).unwrap().to_be_bytes();
            assert_eq!(got.get(..5), Some([0, len[0], len[1], len[2], len[3]].as_slice()));
        }
        // Any other shape has no wire form (and is answered from the kept reply instead).
        let no_id_first = ok(vec![header("x-sagemaker-partner-app-user", "bob"), header(DECISION_ID_HEADER, "i")]);
        assert!(KeptWire::of(&no_id_first).is_none());
        assert!(KeptWire::of(&ok(vec![])).is_none());
        let with_metadata =
            CheckResponse { dynamic_metadata: Some(Default::default()), ..ok(vec![header(DECISION_ID_HEADER, "i")]) };
        assert!(KeptWire::of(&with_metadata).is_none());
        let deny = denied(Code::PermissionDenied, 403, &serde_json::json!({}), "no", "i");
        assert!(KeptWire::of(&deny).is_none());
    }

    /// Steps that allow or deny everything and count what they were asked.
    struct Fake {
        decision: proto::Decision,
        authorized: Cell<usize>,
        ids: Cell<usize>,
    }

    impl Steps for Fake {
        fn authorize(&self, req: proto::AuthorizeRequest) -> Result<proto::AuthorizeResponse, Status> {
            self.authorized.set(self.authorized.get() + 1);
            if req.principal.as_ref().is_some_and(|p| !p.arn.starts_with("arn:")) {
                return Err(Status::invalid_argument("invalid request: principal.arn: not an ARN"));
            }
            Ok(proto::AuthorizeResponse {
                decision: self.decision as i32,
                decision_id: "engine-id".into(),
                ..proto::AuthorizeResponse::default()
            })
        }

        fn propagate(&self, _: proto::PropagateIdentityRequest) -> Result<proto::PropagateIdentityResponse, Status> {
            Err(Status::internal("not used by these routes"))
        }

        fn decision_id(&self) -> String {
            self.ids.set(self.ids.get() + 1);
            format!("id-{}", self.ids.get())
        }
    }

    fn routes(unmatched: &str) -> Routes {
        let file = serde_json::json!({"region": "us-east-1", "account": "111122223333", "unmatched": unmatched,
            "routes": [{"name": "get", "match": {"path_template": "/b/{key}", "methods": ["GET"]},
                        "principal": {"header": "x-p"}, "action": "s3:GetObject",
                        "resource": "arn:aws:s3:::b/{key}"}]});
        let files = vec![(warden_core::bundle::ext_authz::ROUTES_FILE.to_owned(), file.to_string().into_bytes())];
        let bundle = warden_core::bundle::from_files(files).unwrap();
        (*bundle.ext_authz.unwrap()).clone()
    }

    fn http(method: &str, path: &str, principal: Option<&str>) -> CheckHttp {
        let mut headers = HashMap::new();
        if let Some(p) = principal {
            headers.insert("x-p".to_owned(), p.to_owned());
        }
        CheckHttp { method: method.into(), host: "h".into(), path: path.into(), headers, ..CheckHttp::default() }
    }

    fn fake(decision: proto::Decision) -> Fake {
        Fake { decision, authorized: Cell::new(0), ids: Cell::new(0) }
    }

    #[test]
    fn unmatched_answers_as_configured_each_with_its_own_decision_id() {
        for (unmatched, code, status) in
            [("deny", Code::PermissionDenied, 403), ("not_found", Code::NotFound, 404), ("allow", Code::Ok, 200)]
        {
            let steps = fake(proto::Decision::Allow);
            let c = check(Some(&routes(unmatched)), "rev", &http("GET", "/other", Some("arn:x")), &steps).unwrap();
            assert_eq!((c.outcome, c.code, c.http_status), (Outcome::NoRoute, code, status), "{unmatched}");
            assert_eq!(c.decision_id, "id-1");
            assert_eq!(c.headers().get(DECISION_ID_HEADER).map(String::as_str), Some("id-1"), "{unmatched}");
            assert_eq!(steps.authorized.get(), 0, "no route: nothing is evaluated");
            assert_eq!(c.route, None);
        }
        // No routes file at all: 403.
        let c = check(None, "rev", &http("GET", "/b/k", None), &fake(proto::Decision::Allow)).unwrap();
        assert_eq!((c.outcome, c.http_status), (Outcome::NoRoute, 403));
    }

    #[test]
    fn each_outcome_has_its_status_label_and_route() {
        let r = routes("deny");
        let steps = fake(proto::Decision::Allow);
        let c =
            check(Some(&r), "rev", &http("GET", "/b/k?x=1", Some("arn:aws:iam::111122223333:user/a")), &steps).unwrap();
        assert_eq!((c.outcome.label(), c.http_status, c.decision_id.as_str()), ("allow", 200, "engine-id"));
        assert_eq!(c.resource, "arn:aws:s3:::b/k");
        assert_eq!(c.route.as_deref(), Some("get"));

        let c = check(Some(&r), "rev", &http("GET", "/b/k", Some("x")), &steps).unwrap();
        assert_eq!((c.outcome.label(), c.http_status, c.code), ("bad_request", 400, Code::InvalidArgument));
        assert!(c.message.as_deref().is_some_and(|m| m.contains("not an ARN")), "{c:?}");
        assert_eq!(c.route.as_deref(), Some("get"));
        assert_eq!(c.decision_id, "id-1", "a 400 gets an id of its own");

        let c = check(Some(&r), "rev", &http("GET", "/b/k", None), &steps).unwrap();
        assert_eq!((c.outcome.label(), c.http_status), ("bad_request", 400));
        assert_eq!(c.route.as_deref(), Some("get"), "the route whose principal is missing");

        for (d, label) in
            [(proto::Decision::ImplicitDeny, "implicit_deny"), (proto::Decision::ExplicitDeny, "explicit_deny")]
        {
            let c = check(Some(&r), "rev", &http("GET", "/b/k", Some("arn:aws:iam::1:user/a")), &fake(d)).unwrap();
            assert_eq!((c.outcome.label(), c.http_status, c.code), (label, 403, Code::PermissionDenied));
            let Some(HttpResponse::DeniedResponse(denied)) = &c.response.http_response else { panic!("{c:?}") };
            let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
            assert_eq!(body["decision_id"], "engine-id");
            assert_eq!(body["route"], "get");
        }
    }

    #[test]
    fn the_log_view_drops_the_query_and_is_bounded() {
        let h = http("GET", &format!("/b/{}?token=secret", "k".repeat(5000)), None);
        let v = h.log_view(Some("get".into()), Some(403));
        assert!(!v.path.contains("secret"));
        assert_eq!(v.path.chars().count(), decision_log::MAX_PATH_CHARS + 1);
        assert!(v.path.ends_with('…'));
    }
}
