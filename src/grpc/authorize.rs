//! The `warden.v1.Authorizer` service: Authorize, AuthorizeBatch, GetBundleStatus. Each handler loads
//! the active snapshot once; that snapshot gives the evaluation and the revision in the answer. The
//! engine runs inside `catch_unwind`: a panic is INTERNAL and counted, never an allow.
use super::{convert, status};
use crate::bundle::Bundle;
use crate::config::MAX_BATCH;
use crate::engine::{self, Decision, Request, Response};
use crate::proto;
use crate::store::{Active, Store};
use crate::telemetry::metrics::{self, Rpc};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};
use tonic::{Code, Status};

/// The decision function (the engine; tests substitute one that panics).
pub type Evaluator = fn(&Bundle, &Request) -> Response;

/// The Authorizer service.
#[derive(Clone)]
pub struct AuthorizerService {
    store: Arc<Store>,
    evaluator: Evaluator,
    ids: Arc<DecisionIds>,
}

/// Decision ids: unique per process and start time, cheap to make.
#[derive(Debug)]
pub struct DecisionIds {
    prefix: String,
    next: AtomicU64,
}

impl DecisionIds {
    fn new() -> DecisionIds {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let prefix = format!("{:012x}{:04x}", (now as u64) & 0xffff_ffff_ffff, std::process::id() & 0xffff);
        DecisionIds { prefix, next: AtomicU64::new(1) }
    }

    fn next(&self) -> String {
        format!("{}-{:08x}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The label value of a decision.
pub fn decision_label(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "allow",
        Decision::ExplicitDeny => "explicit_deny",
        Decision::ImplicitDeny => "implicit_deny",
    }
}

// === impl AuthorizerService ===

impl AuthorizerService {
    /// A service answering from `store` with `evaluator` (normally [`engine::authorize`]).
    pub fn new(store: Arc<Store>, evaluator: Evaluator) -> AuthorizerService {
        AuthorizerService { store, evaluator, ids: Arc::new(DecisionIds::new()) }
    }

    fn active(&self) -> Result<Arc<Active>, Status> {
        self.store.load().ok_or_else(status::no_bundle)
    }

    /// One decision against one snapshot; the error is the gRPC status of this request alone.
    fn decide(
        &self,
        active: &Active,
        req: proto::AuthorizeRequest,
        rpc: Rpc,
    ) -> Result<proto::AuthorizeResponse, Status> {
        let started = Instant::now();
        let req = convert::request_from_proto(req, now_ms()).map_err(|e| status::invalid_argument(&e))?;
        let bundle = &*active.bundle;
        let evaluator = self.evaluator;
        let resp = std::panic::catch_unwind(AssertUnwindSafe(|| evaluator(bundle, &req))).map_err(|_| {
            metrics::panic();
            metrics::decision(rpc, "error", started.elapsed());
            tracing::error!(target: "warden::decision", principal = %req.principal, action = %req.action, "evaluation panicked; answered INTERNAL");
            status::internal_panic()
        })?;
        metrics::decision(rpc, decision_label(resp.decision), started.elapsed());
        Ok(convert::response_to_proto(&resp, &bundle.revision, false, self.ids.next()))
    }
}

impl AuthorizerService {
    fn propagate(
        &self,
        active: &Active,
        req: proto::PropagateIdentityRequest,
    ) -> Result<proto::PropagateIdentityResponse, Status> {
        let started = Instant::now();
        let req = super::propagate::request_from_proto(req, now_ms()).map_err(|e| status::invalid_argument(&e))?;
        let bundle = &*active.bundle;
        let evaluator = self.evaluator;
        let authorize = |b: &Bundle, r: &Request| evaluator(b, r);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            crate::identity::propagate(bundle, &active.admins, &req, &authorize)
        }))
        .map_err(|_| {
            metrics::panic();
            metrics::decision(Rpc::PropagateIdentity, "error", started.elapsed());
            status::internal_panic()
        })?;
        match result {
            Ok(o) => {
                metrics::decision(Rpc::PropagateIdentity, "allow", started.elapsed());
                Ok(super::propagate::outcome_to_proto(&o, &bundle.revision, self.ids.next()))
            }
            Err(e) => {
                let label = match e.decision.as_ref().map(|d| d.decision) {
                    Some(Decision::ExplicitDeny) => "explicit_deny",
                    Some(Decision::ImplicitDeny) => "implicit_deny",
                    _ => "error",
                };
                metrics::decision(Rpc::PropagateIdentity, label, started.elapsed());
                Err(super::propagate::error_to_status(&e))
            }
        }
    }
}

fn finish<T>(rpc: Rpc, request_id: Option<String>, r: Result<T, Status>) -> Result<tonic::Response<T>, Status> {
    let code = r.as_ref().map_or_else(Status::code, |_| Code::Ok);
    metrics::request(rpc, code);
    let echo = |md: &mut tonic::metadata::MetadataMap| {
        if let Some(id) = request_id.as_deref().and_then(|v| v.parse().ok()) {
            md.insert("x-request-id", id);
        }
    };
    match r {
        Ok(v) => {
            let mut resp = tonic::Response::new(v);
            echo(resp.metadata_mut());
            Ok(resp)
        }
        Err(mut s) => {
            echo(s.metadata_mut());
            Err(s)
        }
    }
}

fn request_id<T>(req: &tonic::Request<T>) -> Option<String> {
    req.metadata().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[tonic::async_trait]
impl proto::authorizer_server::Authorizer for AuthorizerService {
    async fn authorize(
        &self,
        request: tonic::Request<proto::AuthorizeRequest>,
    ) -> Result<tonic::Response<proto::AuthorizeResponse>, Status> {
        let id = request_id(&request);
        let r = self.active().and_then(|active| self.decide(&active, request.into_inner(), Rpc::Authorize));
        finish(Rpc::Authorize, id, r)
    }

    async fn authorize_batch(
        &self,
        request: tonic::Request<proto::AuthorizeBatchRequest>,
    ) -> Result<tonic::Response<proto::AuthorizeBatchResponse>, Status> {
        let id = request_id(&request);
        let proto::AuthorizeBatchRequest { requests } = request.into_inner();
        let r = (|| {
            if requests.len() > MAX_BATCH {
                return Err(status::invalid_argument(&engine::RequestError::new(
                    "requests",
                    format!("{} requests exceed the batch limit of {MAX_BATCH}", requests.len()),
                )));
            }
            // One snapshot for the whole batch.
            let active = self.active()?;
            let results = requests
                .into_iter()
                .map(|item| {
                    let result = match self.decide(&active, item, Rpc::Authorize) {
                        Ok(resp) => proto::authorize_batch_item::Result::Response(resp),
                        Err(s) => {
                            let field = tonic_types::StatusExt::get_details_bad_request(&s)
                                .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
                                .unwrap_or_default();
                            proto::authorize_batch_item::Result::Error(proto::ItemError {
                                code: metrics::code_name(s.code()).to_owned(),
                                message: s.message().to_owned(),
                                field,
                            })
                        }
                    };
                    proto::AuthorizeBatchItem { result: Some(result) }
                })
                .collect();
            Ok(proto::AuthorizeBatchResponse { results, bundle_revision: active.bundle.revision.clone() })
        })();
        finish(Rpc::AuthorizeBatch, id, r)
    }

    async fn propagate_identity(
        &self,
        request: tonic::Request<proto::PropagateIdentityRequest>,
    ) -> Result<tonic::Response<proto::PropagateIdentityResponse>, Status> {
        let id = request_id(&request);
        let r = self.active().and_then(|active| self.propagate(&active, request.into_inner()));
        finish(Rpc::PropagateIdentity, id, r)
    }

    async fn get_bundle_status(
        &self,
        request: tonic::Request<proto::GetBundleStatusRequest>,
    ) -> Result<tonic::Response<proto::BundleStatus>, Status> {
        let id = request_id(&request);
        finish(Rpc::GetBundleStatus, id, Ok(bundle_status(&self.store)))
    }
}

fn timestamp(t: SystemTime) -> pbjson_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    pbjson_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The status of the store, as the proto message (also served as JSON on `/v1/status`).
pub fn bundle_status(store: &Store) -> proto::BundleStatus {
    let reload = store.reload_status();
    let mut s = proto::BundleStatus {
        last_reload_error: reload.error.clone().unwrap_or_default(),
        last_reload_at: reload.at.map(timestamp),
        ..proto::BundleStatus::default()
    };
    if let Some(a) = store.load() {
        let c = a.bundle.counts;
        s.revision = a.bundle.revision.clone();
        s.activated_at = Some(timestamp(a.activated_at));
        s.previous_revision = a.previous_revision.clone().unwrap_or_default();
        s.source = a.source.clone();
        s.counts = Some(proto::ObjectCounts {
            policies: count(c.policies),
            statements: count(c.statements),
            users: count(c.users),
            groups: count(c.groups),
            roles: count(c.roles),
            scps: count(c.scps),
            partner_apps: count(c.partner_apps),
            domains: count(c.domains),
            identity_center_users: count(c.identity_center_users),
            tests: count(c.tests),
        });
    }
    s
}
