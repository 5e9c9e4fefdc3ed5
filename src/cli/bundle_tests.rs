//! `warden test`: runs a bundle's own test cases through the same conversion and engine as `serve`.
use crate::grpc::convert;
use crate::proto;
use serde_json::Value;
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
    let (code, message, out) = match crate::grpc::propagate::request_from_proto(req, now_ms) {
        Err(e) => ("INVALID_ARGUMENT".to_owned(), format!("{}: {}", e.field, e.rule), None),
        Ok(r) => match warden_core::identity::propagate(bundle, &admins, &r, &engine::authorize) {
            Ok(o) => (
                "OK".to_owned(),
                String::new(),
                Some(crate::grpc::propagate::outcome_to_proto(&o, &bundle.revision, String::new())),
            ),
            Err(e) => {
                let s = crate::grpc::status::error_to_status(&e);
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
        if let Some(det) = expect.get("determining").and_then(Value::as_array) {
            let mut want: Vec<(String, String)> = det
                .iter()
                .map(|d| {
                    (
                        d.get("policy").and_then(Value::as_str).unwrap_or("").to_owned(),
                        d.get("sid").and_then(Value::as_str).unwrap_or("").to_owned(),
                    )
                })
                .collect();
            let mut have: Vec<(String, String)> =
                out.determining.iter().map(|s| (s.policy.clone(), s.sid.clone())).collect();
            want.sort();
            want.dedup();
            have.sort();
            have.dedup();
            if want != have {
                errs.push(format!("determining {have:?}, expected {want:?}"));
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
}
