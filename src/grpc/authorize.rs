//! The `warden.v1.Authorizer` service: Authorize, AuthorizeBatch, GetBundleStatus. Each handler loads
//! the active snapshot once; that snapshot gives the evaluation and the revision in the answer. The
//! engine runs inside `catch_unwind`: a panic is INTERNAL and counted, never an allow.
use super::{convert, status};
use crate::config::MAX_BATCH;
use crate::proto;
use crate::runtime::store::{Active, Store};
use crate::telemetry::decision_log::{self, DecisionLog, Record};
use crate::telemetry::metrics::{self, Rpc};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};
use tonic::{Code, Status};
use warden_core::bundle::Bundle;
use warden_core::engine::{self, Decision, Request, Response};

/// The decision function (the engine; tests substitute one that panics).
pub type Evaluator = fn(&Bundle, &Request) -> Response;

/// The Authorizer service.
#[derive(Clone)]
pub struct AuthorizerService {
    store: Arc<Store>,
    evaluator: Evaluator,
    ids: Arc<DecisionIds>,
    log: Option<DecisionLog>,
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
        use std::fmt::Write as _;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // `format!` without its formatting machinery's guesswork: one allocation of the final size.
        let mut id = String::with_capacity(self.prefix.len() + 17);
        id.push_str(&self.prefix);
        let _ = write!(id, "-{n:08x}");
        id
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Microseconds since `started`, for the decision log.
pub(super) fn latency_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The label value of a decision as the wire carries it.
pub fn proto_decision_label(d: proto::Decision) -> &'static str {
    match d {
        proto::Decision::Allow => "allow",
        proto::Decision::ExplicitDeny => "explicit_deny",
        // `Unspecified` is never answered; counted as the deny it would be.
        proto::Decision::ImplicitDeny | proto::Decision::Unspecified => "implicit_deny",
    }
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

/// What the decision log records of a request before it is answered.
struct LogCtx<'a> {
    request_id: Option<&'a str>,
    principal: String,
    action: String,
    resource: String,
    propagation: Option<decision_log::Propagation>,
}

impl AuthorizerService {
    /// A service answering from `store` with `evaluator` (normally [`engine::authorize`]).
    pub fn new(store: Arc<Store>, evaluator: Evaluator) -> AuthorizerService {
        AuthorizerService { store, evaluator, ids: Arc::new(DecisionIds::new()), log: None }
    }

    /// Also writes every decision to `log`.
    pub fn with_decision_log(mut self, log: DecisionLog) -> AuthorizerService {
        self.log = Some(log);
        self
    }

    pub(super) fn active(&self) -> Result<Arc<Active>, Status> {
        self.store.load().ok_or_else(status::no_bundle)
    }

    #[expect(clippy::too_many_arguments, reason = "one decision-log record: every field of the call")]
    fn record(
        &self,
        ctx: LogCtx<'_>,
        rpc: Rpc,
        decision: &'static str,
        code: Code,
        message: Option<String>,
        determining: &[proto::StatementRef],
        revision: &str,
        started: Instant,
        cached: bool,
        decision_id: String,
    ) {
        let Some(log) = &self.log else { return };
        log.log(Record {
            time: decision_log::now_rfc3339(),
            decision_id,
            request_id: ctx.request_id.map(str::to_owned),
            rpc: rpc.as_str(),
            principal: ctx.principal,
            action: ctx.action,
            resource: ctx.resource,
            decision,
            code: metrics::code_name(code),
            message,
            determining: determining_strings(determining),
            revision: revision.to_owned(),
            latency_us: latency_us(started),
            cached,
            propagation: ctx.propagation,
            http: None,
        });
    }

    /// Records an error answer and returns its status.
    fn fail(&self, ctx: LogCtx<'_>, rpc: Rpc, s: Status, revision: &str, started: Instant) -> Status {
        self.record(
            ctx,
            rpc,
            "error",
            s.code(),
            Some(s.message().to_owned()),
            &[],
            revision,
            started,
            false,
            self.ids.next(),
        );
        s
    }

    /// A new decision id (also for answers that are not decisions of the engine, such as an
    /// ext_authz request no route matches).
    pub(super) fn next_decision_id(&self) -> String {
        self.ids.next()
    }

    /// Whether decisions are logged (`--decision-log`).
    pub(super) fn logs(&self) -> bool {
        self.log.is_some()
    }

    /// Writes `r` to the decision log, if there is one.
    pub(super) fn log_record(&self, r: Record) {
        if let Some(log) = &self.log {
            log.log(r);
        }
    }

    /// One Authorize decision against one snapshot, neither timed into
    /// `warden_decision_duration_seconds` nor logged (the caller does both): the answer, or the
    /// status of this request alone. A panic is counted (`warden_evaluation_panics_total`) and INTERNAL.
    pub(super) fn evaluate(
        &self,
        active: &Active,
        req: proto::AuthorizeRequest,
    ) -> Result<proto::AuthorizeResponse, Status> {
        let bundle = &*active.bundle;
        let req = convert::request_from_proto(req, now_ms()).map_err(|e| status::invalid_argument(&e))?;
        let evaluator = self.evaluator;
        let evaluated =
            std::panic::catch_unwind(AssertUnwindSafe(|| active.cache.get_or_evaluate(bundle, &req, evaluator)));
        let Ok((resp, cached)) = evaluated else {
            metrics::panic();
            tracing::error!(target: "warden::decision", principal = %req.principal, action = %req.action, "evaluation panicked; answered INTERNAL");
            return Err(status::internal_panic());
        };
        Ok(convert::response_to_proto(&resp, &bundle.revision, cached, self.ids.next()))
    }

    /// One decision against one snapshot; the error is the gRPC status of this request alone.
    pub(super) fn decide(
        &self,
        active: &Active,
        req: proto::AuthorizeRequest,
        rpc: Rpc,
        request_id: Option<&str>,
    ) -> Result<proto::AuthorizeResponse, Status> {
        let started = Instant::now();
        let ctx = LogCtx {
            request_id,
            principal: req.principal.as_ref().map(|p| p.arn.clone()).unwrap_or_default(),
            action: req.action.clone(),
            resource: req.resource.clone(),
            propagation: None,
        };
        let revision = &active.bundle.revision;
        match self.evaluate(active, req) {
            Ok(out) => {
                let label = proto_decision_label(out.decision());
                metrics::decision(rpc, label, started.elapsed());
                self.record(
                    ctx,
                    rpc,
                    label,
                    Code::Ok,
                    None,
                    &out.determining,
                    revision,
                    started,
                    out.cached,
                    out.decision_id.clone(),
                );
                Ok(out)
            }
            Err(s) => {
                // A panic is a decision (an error); an invalid request is not (SPEC §6, docs/metrics.md).
                if s.code() == Code::Internal {
                    metrics::decision(rpc, "error", started.elapsed());
                }
                Err(self.fail(ctx, rpc, s, revision, started))
            }
        }
    }

    /// One PropagateIdentity answer against one snapshot, neither timed into
    /// `warden_decision_duration_seconds` nor logged (the caller does both).
    pub(super) fn propagate_unlogged(
        &self,
        active: &Active,
        req: proto::PropagateIdentityRequest,
    ) -> Result<proto::PropagateIdentityResponse, Refused> {
        self.propagate_tracked(active, req, &std::cell::Cell::new(false))
    }

    /// [`AuthorizerService::propagate_unlogged`], setting `reads_time` when a decision it took read
    /// the time (so its answer holds only now).
    pub(super) fn propagate_tracked(
        &self,
        active: &Active,
        req: proto::PropagateIdentityRequest,
        reads_time: &std::cell::Cell<bool>,
    ) -> Result<proto::PropagateIdentityResponse, Refused> {
        let bundle = &*active.bundle;
        let req = match super::propagate::request_from_proto(req, now_ms()) {
            Ok(r) => r,
            Err(e) => {
                return Err(Refused {
                    status: status::invalid_argument(&e),
                    label: None,
                    decision_id: self.ids.next(),
                    determining: Vec::new(),
                    failed_check: None,
                });
            }
        };
        let evaluator = self.evaluator;
        // The authorization steps use the snapshot's decision cache too.
        let authorize = |b: &Bundle, r: &Request| {
            let resp = active.cache.get_or_evaluate(b, r, evaluator).0;
            if resp.reads_time {
                reads_time.set(true);
            }
            (*resp).clone()
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            warden_core::identity::propagate(bundle, &active.admins, &req, &authorize)
        }));
        let Ok(result) = result else {
            metrics::panic();
            return Err(Refused {
                status: status::internal_panic(),
                label: Some("error"),
                decision_id: self.ids.next(),
                determining: Vec::new(),
                failed_check: None,
            });
        };
        match result {
            Ok(o) => Ok(super::propagate::outcome_to_proto(&o, &bundle.revision, self.ids.next())),
            Err(e) => {
                let label = match e.decision.as_ref().map(|d| d.decision) {
                    Some(Decision::ExplicitDeny) => "explicit_deny",
                    Some(Decision::ImplicitDeny) => "implicit_deny",
                    _ => "error",
                };
                let decision_id = self.ids.next();
                let status = super::status::error_to_status(&e, &decision_id, &bundle.revision);
                Err(Refused {
                    status,
                    label: Some(label),
                    decision_id,
                    determining: convert::determining_refs(&e.determining),
                    failed_check: e.check.map(|c| c.as_str().to_owned()),
                })
            }
        }
    }

    pub(super) fn propagate(
        &self,
        active: &Active,
        req: proto::PropagateIdentityRequest,
        rpc: Rpc,
        request_id: Option<&str>,
    ) -> Result<proto::PropagateIdentityResponse, Status> {
        let started = Instant::now();
        let target = match &req.target {
            Some(proto::propagate_identity_request::Target::PartnerApp(p)) => p.arn.clone(),
            Some(proto::propagate_identity_request::Target::StudioProfile(p)) => {
                format!("studio-profile:{}", p.domain_id)
            }
            Some(proto::propagate_identity_request::Target::Job(j)) => format!("job:{}", j.domain_id),
            None => String::new(),
        };
        // The evidence's principal: the IAM principal, else the Identity Center user id.
        let (evidence_principal, evidence_kind) = match req.evidence.as_ref() {
            Some(e) if !e.principal_arn.is_empty() => (e.principal_arn.clone(), "iam"),
            Some(e) => match e.identity_center_user.as_ref().filter(|u| !u.user_id.is_empty()) {
                Some(u) => (u.user_id.clone(), "identity_center"),
                None => (String::new(), "none"),
            },
            None => (String::new(), "none"),
        };
        let mut ctx = LogCtx {
            request_id,
            principal: evidence_principal.clone(),
            action: "PropagateIdentity".into(),
            resource: target,
            propagation: Some(decision_log::Propagation {
                evidence_principal,
                evidence_kind,
                ..decision_log::Propagation::default()
            }),
        };
        let revision = &active.bundle.revision;
        match self.propagate_unlogged(active, req) {
            Ok(out) => {
                metrics::decision(rpc, "allow", started.elapsed());
                if let Some(p) = ctx.propagation.as_mut() {
                    fill_propagation(p, &out);
                }
                self.record(
                    ctx,
                    rpc,
                    "allow",
                    Code::Ok,
                    None,
                    &out.determining,
                    revision,
                    started,
                    false,
                    out.decision_id.clone(),
                );
                Ok(out)
            }
            Err(r) => {
                // An invalid request is not a decision: logged, not timed.
                if let Some(label) = r.label {
                    metrics::decision(rpc, label, started.elapsed());
                }
                if let Some(p) = ctx.propagation.as_mut() {
                    p.failed_check = r.failed_check;
                }
                self.record(
                    ctx,
                    rpc,
                    r.label.unwrap_or("error"),
                    r.status.code(),
                    Some(r.status.message().to_owned()),
                    &r.determining,
                    revision,
                    started,
                    false,
                    r.decision_id,
                );
                Err(r.status)
            }
        }
    }
}

/// A PropagateIdentity that did not answer: its status and what the decision log records of it.
pub(super) struct Refused {
    /// The gRPC status of the call.
    pub status: Status,
    /// The `decision` label (`explicit_deny`, `implicit_deny`, `error`); `None` for an invalid request,
    /// which is not a decision.
    pub label: Option<&'static str>,
    /// The id of this answer (also in the status's details, for denials).
    pub decision_id: String,
    /// The determining statements of a denial.
    pub determining: Vec<proto::StatementRef>,
    /// The check that failed (`AUTHORIZE`, `PARTNER_APP_IDENTITY`, …).
    pub failed_check: Option<String>,
}

/// Fills the decision-log `propagation` of an answer.
pub(super) fn fill_propagation(p: &mut decision_log::Propagation, out: &proto::PropagateIdentityResponse) {
    p.user_name = Some(out.user_name.clone()).filter(|u| !u.is_empty());
    p.source = (out.source != 0).then(|| out.source().as_str_name());
    p.admin_role = (out.admin_role != 0).then(|| out.admin_role().as_str_name());
}

/// Determining statements as the decision log writes them: `policy#sid` (`policy#0` for a statement
/// without a Sid, whose id already starts with `#`).
pub(super) fn determining_strings(determining: &[proto::StatementRef]) -> Vec<String> {
    determining
        .iter()
        .map(
            |s| {
                if s.sid.starts_with('#') {
                    format!("{}{}", s.policy, s.sid)
                } else {
                    format!("{}#{}", s.policy, s.sid)
                }
            },
        )
        .collect()
}

fn finish<T>(request_id: Option<String>, r: Result<T, Status>) -> Result<tonic::Response<T>, Status> {
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
        // The request's bytes, when the answers layer saw them whole: the reply is kept for them.
        let raw = request.extensions().get::<super::answers::RawAuthorize>().map(|r| r.0.clone());
        let req = request.into_inner();
        let r = self.active().and_then(|active| {
            let log = (raw.is_some() && self.logs()).then(|| {
                let principal = req.principal.as_ref().map(|p| p.arn.clone()).unwrap_or_default();
                (principal, req.action.clone(), req.resource.clone())
            });
            let out = self.decide(&active, req, Rpc::Authorize, id.as_deref())?;
            if let Some(raw) = &raw {
                super::answers::remember(&active.cache, raw, &out, log);
            }
            Ok(out)
        });
        finish(id, r)
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
                    let result = match self.decide(&active, item, Rpc::Authorize, id.as_deref()) {
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
        finish(id, r)
    }

    async fn propagate_identity(
        &self,
        request: tonic::Request<proto::PropagateIdentityRequest>,
    ) -> Result<tonic::Response<proto::PropagateIdentityResponse>, Status> {
        let id = request_id(&request);
        let r = self
            .active()
            .and_then(|active| self.propagate(&active, request.into_inner(), Rpc::PropagateIdentity, id.as_deref()));
        finish(id, r)
    }

    async fn get_bundle_status(
        &self,
        request: tonic::Request<proto::GetBundleStatusRequest>,
    ) -> Result<tonic::Response<proto::BundleStatus>, Status> {
        let id = request_id(&request);
        finish(id, Ok(bundle_status(&self.store)))
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
        last_reload_problems: u32::try_from(reload.problems).unwrap_or(u32::MAX),
        last_reload_at: reload.at.map(timestamp),
        ..proto::BundleStatus::default()
    };
    if let Some(a) = store.load() {
        let c = a.bundle.counts;
        s.revision = a.bundle.revision.clone();
        s.activated_at = Some(timestamp(a.activated_at));
        s.previous_revision = a.previous_revision.clone().unwrap_or_default();
        s.source = a.source.clone();
        s.warnings = count(a.bundle.warnings.total());
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
