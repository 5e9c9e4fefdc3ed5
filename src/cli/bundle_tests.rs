//! `warden test`: runs a bundle's own test cases through the same conversion and engine as `serve`;
//! `ext_authz` cases through the same routes and `Check` answers ([`crate::grpc::ext_authz::check`]).
use crate::grpc::ext_authz::{self, CheckHttp, Steps};
use crate::grpc::{convert, status};
use crate::proto;
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use serde_json::Value;
use std::collections::HashMap;
use tonic::Status;
use tonic_types::StatusExt as _;
use warden_core::bundle::{Bundle, TestCase};
use warden_core::engine;
use warden_core::policy::pattern::Glob;

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// The bundle file it came from.
    pub file: String,
    /// How long it took.
    pub elapsed: std::time::Duration,
    /// Why it failed (`None`: passed).
    pub failure: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Every case run, in bundle order.
    pub cases: Vec<CaseResult>,
    /// Cases left out by the `--run` filter.
    pub skipped: usize,
}

impl Report {
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.failure.is_none()).count()
    }

    /// Cases that failed.
    pub fn failed(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| c.failure.is_some())
    }
}

/// Runs the bundle's test cases whose name `filter` accepts (every case without one).
pub fn run(bundle: &Bundle, now_ms: i64, filter: Option<&NameFilter>) -> Report {
    let mut report = Report::default();
    for case in &bundle.tests {
        if filter.is_some_and(|f| !f.accepts(&case.name)) {
            report.skipped += 1;
            continue;
        }
        let started = std::time::Instant::now();
        let failure = run_case(bundle, case, now_ms).err();
        report.cases.push(CaseResult {
            name: case.name.clone(),
            file: case.file.clone(),
            elapsed: started.elapsed(),
            failure,
        });
    }
    report
}

/// `--run PATTERN`: a case runs when its name contains PATTERN or, when PATTERN has a `*` or `?`,
/// matches it whole as a glob (`*` any run of characters, `?` one). Case-sensitive.
#[derive(Debug, Clone)]
pub enum NameFilter {
    /// A plain pattern: names containing it.
    Contains(String),
    /// A pattern with wildcards: names it matches whole.
    Glob(Glob),
}

impl NameFilter {
    /// The filter of `--run PATTERN`.
    pub fn new(pattern: &str) -> NameFilter {
        if pattern.contains(['*', '?']) {
            NameFilter::Glob(Glob::parse(pattern))
        } else {
            NameFilter::Contains(pattern.to_owned())
        }
    }

    /// Whether the case named `name` runs.
    pub fn accepts(&self, name: &str) -> bool {
        match self {
            NameFilter::Contains(p) => name.contains(p.as_str()),
            NameFilter::Glob(g) => g.matches(name),
        }
    }
}

fn run_case(bundle: &Bundle, case: &TestCase, now_ms: i64) -> Result<(), String> {
    if let Some(req) = case.body.get("ext_authz") {
        return run_ext_authz(bundle, case, req, now_ms);
    }
    let Some(req) = case.body.get("authorize") else {
        return run_propagate(bundle, case, now_ms);
    };
    let req: proto::AuthorizeRequest =
        serde_json::from_value(req.clone()).map_err(|e| format!("`authorize` is not an AuthorizeRequest: {e}"))?;
    let req = convert::request_from_proto(req, now_ms).map_err(|e| format!("invalid request: {e}"))?;
    let resp = engine::authorize(bundle, &req);
    let expect = case.body.get("expect").cloned().unwrap_or(Value::Null);
    let want = expect.get("decision").and_then(Value::as_str).unwrap_or("");
    let got = convert::decision_to_proto(resp.decision).as_str_name();
    let mut errs = Vec::new();
    if want != got {
        errs.push(format!("decision {got}, expected {want}"));
    }
    if let Some(det) = expect.get("determining").and_then(Value::as_array) {
        let mut want_refs: Vec<(String, String)> = det
            .iter()
            .map(|d| {
                (
                    d.get("policy").and_then(Value::as_str).unwrap_or("").to_owned(),
                    d.get("sid").and_then(Value::as_str).unwrap_or("").to_owned(),
                )
            })
            .collect();
        let mut got_refs: Vec<(String, String)> =
            resp.determining.iter().map(|s| (s.policy.to_string(), s.sid.to_string())).collect();
        want_refs.sort();
        want_refs.dedup();
        got_refs.sort();
        got_refs.dedup();
        if want_refs != got_refs {
            let fmt = |v: &[(String, String)]| v.iter().map(|(p, s)| format!("{p}#{s}")).collect::<Vec<_>>().join(", ");
            errs.push(format!("determining [{}], expected [{}]", fmt(&got_refs), fmt(&want_refs)));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        if !resp.diagnostics.is_empty() {
            errs.push(format!("diagnostics: {}", resp.diagnostics.join("; ")));
        }
        Err(errs.join("; "))
    }
}

/// The remembered admins a case starts from: the bundle's lists, plus `remembered_admins`.
fn admins_for(bundle: &Bundle, case: &TestCase) -> Result<warden_core::identity::AdminMemory, String> {
    let mut m = warden_core::identity::AdminMemory::default().transition(bundle).map_err(|e| e.join("; "))?;
    for r in case.body.get("remembered_admins").and_then(Value::as_array).into_iter().flatten() {
        let app = r.get("app_arn").and_then(Value::as_str).ok_or("`remembered_admins` entries need `app_arn`")?;
        let user = r.get("user_name").and_then(Value::as_str).ok_or("`remembered_admins` entries need `user_name`")?;
        let a = m.apps.get_mut(app).ok_or_else(|| format!("`remembered_admins`: app `{app}` is not in the bundle"))?;
        a.remembered.insert(user.to_owned());
    }
    Ok(m)
}

fn run_propagate(bundle: &Bundle, case: &TestCase, now_ms: i64) -> Result<(), String> {
    let req = case.body.get("propagate").cloned().unwrap_or(Value::Null);
    let req: proto::PropagateIdentityRequest =
        serde_json::from_value(req).map_err(|e| format!("`propagate` is not a PropagateIdentityRequest: {e}"))?;
    let admins = admins_for(bundle, case)?;
    // The answer as a client sees it: the code, the message, the response or the status's details.
    let mut details: Option<(Option<tonic_types::ErrorInfo>, Option<proto::PropagateIdentityDenial>)> = None;
    let (code, message, out) = match crate::grpc::propagate::request_from_proto(req, now_ms) {
        Err(e) => ("INVALID_ARGUMENT".to_owned(), format!("{}: {}", e.field, e.rule), None),
        Ok(r) => match warden_core::identity::propagate(bundle, &admins, &r, &engine::authorize) {
            Ok(o) => (
                "OK".to_owned(),
                String::new(),
                Some(crate::grpc::propagate::outcome_to_proto(&o, &bundle.revision, String::new())),
            ),
            Err(e) => {
                let s = crate::grpc::status::error_to_status(&e, "", &bundle.revision);
                details = Some((s.get_details_error_info(), crate::grpc::status::denial_of(&s)));
                (crate::telemetry::metrics::code_name(s.code()).to_owned(), s.message().to_owned(), None)
            }
        },
    };
    let expect = case.body.get("expect").cloned().unwrap_or(Value::Null);
    let mut errs = Vec::new();
    let want_code = expect.get("code").and_then(Value::as_str).unwrap_or("OK");
    if code != want_code {
        errs.push(format!("code {code} ({message}), expected {want_code}"));
    }
    if let Some(m) = expect.get("message_contains").and_then(Value::as_str)
        && !message.contains(m)
    {
        errs.push(format!("message `{message}` does not contain `{m}`"));
    }
    if let Some(out) = &out {
        let got = serde_json::to_value(out).unwrap_or(Value::Null);
        for key in ["userName", "source", "adminRole", "trustVerified"] {
            if let Some(want) = expect.get(key) {
                let g = got.get(key).cloned().unwrap_or(match key {
                    "trustVerified" => Value::Bool(false),
                    _ => Value::Null,
                });
                if &g != want {
                    errs.push(format!("{key} {g}, expected {want}"));
                }
            }
        }
        let pick = |path: &[&str]| path.iter().try_fold(&got, |v, k| v.get(*k)).cloned().unwrap_or(Value::Null);
        for (key, path) in [
            ("profileName", &["profile", "name"][..]),
            ("profileArn", &["profile", "arn"][..]),
            ("executionRoleArn", &["profile", "executionRoleArn"][..]),
            ("jobExecutionRoleArn", &["job", "executionRoleArn"][..]),
            ("effectiveMaxRuntimeSeconds", &["job", "effectiveMaxRuntimeSeconds"][..]),
            ("onBehalfOfUserId", &["job", "userIdentity", "onBehalfOf", "userId"][..]),
        ] {
            if let Some(want) = expect.get(key) {
                let g = pick(path);
                if &g != want {
                    errs.push(format!("{key} {g}, expected {want}"));
                }
            }
        }
        check_determining(&expect, &out.determining, &mut errs);
    }
    if let Some(want) = expect.get("errorInfo") {
        match &details {
            None => errs.push(format!("expected an ErrorInfo detail, got {code}")),
            Some((info, denial)) => {
                let (reason, metadata) =
                    info.as_ref().map(|i| (i.reason.clone(), i.metadata.clone())).unwrap_or_default();
                if let Some(r) = want.get("reason").and_then(Value::as_str)
                    && r != reason
                {
                    errs.push(format!("ErrorInfo reason `{reason}`, expected `{r}`"));
                }
                for (k, v) in want.get("metadata").and_then(Value::as_object).into_iter().flatten() {
                    let got = metadata.get(k).map(String::as_str);
                    if got != v.as_str() {
                        errs.push(format!("ErrorInfo metadata `{k}` {got:?}, expected {v}"));
                    }
                }
                if let Some(d) = denial {
                    check_determining(&expect, &d.determining, &mut errs);
                } else {
                    errs.push("no warden.v1.PropagateIdentityDenial detail".to_owned());
                }
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
}

/// `determining`: `[{policy, sid, check?}]`, compared as a set; `check` (`AUTHORIZE`, …) is compared
/// when the expectation gives it. An answer listing a (check, statement) pair twice fails.
fn check_determining(expect: &Value, got: &[proto::StatementRef], errs: &mut Vec<String>) {
    let Some(det) = expect.get("determining").and_then(Value::as_array) else {
        return;
    };
    let with_check = det.iter().any(|d| d.get("check").is_some());
    let key = |policy: &str, sid: &str, check: &str| {
        if with_check { format!("{policy}#{sid} ({check})") } else { format!("{policy}#{sid}") }
    };
    let mut want: Vec<String> = det
        .iter()
        .map(|d| {
            let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            key(&s("policy"), &s("sid"), &s("check"))
        })
        .collect();
    let full: Vec<String> =
        got.iter().map(|s| format!("{}#{} ({})", s.policy, s.sid, s.check().as_str_name())).collect();
    for (i, f) in full.iter().enumerate() {
        if full.iter().skip(i + 1).any(|g| g == f) {
            errs.push(format!("determining lists {f} twice"));
        }
    }
    let mut have: Vec<String> = got.iter().map(|s| key(&s.policy, &s.sid, s.check().as_str_name())).collect();
    want.sort();
    want.dedup();
    have.sort();
    have.dedup();
    if want != have {
        errs.push(format!("determining {have:?}, expected {want:?}"));
    }
}

/// The steps of a `Check` offline: the engine without a cache, decision ids empty.
struct Offline<'a> {
    bundle: &'a Bundle,
    admins: warden_core::identity::AdminMemory,
    now_ms: i64,
}

impl Steps for Offline<'_> {
    fn authorize(&self, req: proto::AuthorizeRequest) -> Result<proto::AuthorizeResponse, Status> {
        let req = convert::request_from_proto(req, self.now_ms).map_err(|e| status::invalid_argument(&e))?;
        let resp = engine::authorize(self.bundle, &req);
        Ok(convert::response_to_proto(&resp, &self.bundle.revision, false, String::new()))
    }

    fn propagate(&self, req: proto::PropagateIdentityRequest) -> Result<proto::PropagateIdentityResponse, Status> {
        let req =
            crate::grpc::propagate::request_from_proto(req, self.now_ms).map_err(|e| status::invalid_argument(&e))?;
        match warden_core::identity::propagate(self.bundle, &self.admins, &req, &engine::authorize) {
            Ok(o) => Ok(crate::grpc::propagate::outcome_to_proto(&o, &self.bundle.revision, String::new())),
            Err(e) => Err(status::error_to_status(&e, "", &self.bundle.revision)),
        }
    }

    fn decision_id(&self) -> String {
        String::new()
    }
}

/// The `CheckRequest` Envoy would send for a case's `ext_authz` request (validated with the bundle).
fn check_request(req: &Value) -> CheckRequest {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    let headers: HashMap<String, String> = req
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
        .collect();
    let peer = req.get("peer");
    let address = s(peer.and_then(|p| p.get("address")));
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: (!address.is_empty()).then(|| Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address,
                        ..SocketAddress::default()
                    })),
                }),
                principal: s(peer.and_then(|p| p.get("principal"))),
                ..Peer::default()
            }),
            request: Some(Request {
                http: Some(HttpRequest {
                    method: s(req.get("method")),
                    host: s(req.get("host")),
                    path: s(req.get("path")),
                    headers,
                    ..HttpRequest::default()
                }),
                ..Request::default()
            }),
            ..AttributeContext::default()
        }),
    }
}

/// An `ext_authz` case: the request through the routes and the same `Check` as `serve`; `expect`
/// gives the outcome (`decision`) and optionally the HTTP `status`, the `route`, `headers` the
/// answer sets (a value, or null: absent), `message_contains` and `determining`.
fn run_ext_authz(bundle: &Bundle, case: &TestCase, req: &Value, now_ms: i64) -> Result<(), String> {
    let http = CheckHttp::of(check_request(req));
    let steps = Offline { bundle, admins: admins_for(bundle, case)?, now_ms };
    let c = ext_authz::check(bundle.ext_authz.as_deref(), &bundle.revision, &http, &steps)
        .map_err(|s| format!("Check failed: {} {}", crate::telemetry::metrics::code_name(s.code()), s.message()))?;
    let expect = case.body.get("expect").cloned().unwrap_or(Value::Null);
    let mut errs = Vec::new();
    let message = c.response.status.as_ref().map(|s| s.message.clone()).unwrap_or_default();
    let want = expect.get("decision").and_then(Value::as_str).unwrap_or("");
    if c.outcome.as_str() != want {
        let why = if message.is_empty() { String::new() } else { format!(" ({message})") };
        errs.push(format!("decision {}{why}, expected {want}", c.outcome.as_str()));
    }
    if let Some(want) = expect.get("status").and_then(Value::as_u64)
        && u64::from(c.http_status) != want
    {
        errs.push(format!("HTTP status {}, expected {want}", c.http_status));
    }
    if let Some(want) = expect.get("route").and_then(Value::as_str)
        && c.route.as_deref() != Some(want)
    {
        errs.push(format!("route {:?}, expected `{want}`", c.route));
    }
    let headers = c.headers();
    for (k, want) in expect.get("headers").and_then(Value::as_object).into_iter().flatten() {
        let got = headers.get(k).map(String::as_str);
        if got != want.as_str() {
            let shown = |v: Option<&str>| v.map_or_else(|| "absent".to_owned(), |v| format!("`{v}`"));
            errs.push(format!("header `{k}` {}, expected {}", shown(got), shown(want.as_str())));
        }
    }
    if let Some(m) = expect.get("message_contains").and_then(Value::as_str)
        && !message.contains(m)
    {
        errs.push(format!("message `{message}` does not contain `{m}`"));
    }
    check_determining(&expect, &c.determining, &mut errs);
    if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
}
