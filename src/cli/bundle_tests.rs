//! `warden test`: runs a bundle's own test cases through the same conversion and engine as `serve`.
use crate::bundle::{Bundle, TestCase};
use crate::engine;
use crate::grpc::convert;
use crate::proto;
use serde_json::Value;

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Cases that passed.
    pub passed: usize,
    /// One line per failing case.
    pub failures: Vec<String>,
}

/// Runs every test case of the bundle.
pub fn run(bundle: &Bundle, now_ms: i64) -> Report {
    let mut report = Report::default();
    for case in &bundle.tests {
        match run_case(bundle, case, now_ms) {
            Ok(()) => report.passed += 1,
            Err(why) => report.failures.push(format!("{} ({}): {why}", case.name, case.file)),
        }
    }
    report
}

fn run_case(bundle: &Bundle, case: &TestCase, now_ms: i64) -> Result<(), String> {
    let Some(req) = case.body.get("authorize") else {
        return Err("`propagate` cases are not supported by this version of warden".into());
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
        let mut got_refs: Vec<(String, String)> = resp
            .determining
            .iter()
            .map(|s| (s.policy.to_string(), s.sid.to_string()))
            .collect();
        want_refs.sort();
        want_refs.dedup();
        got_refs.sort();
        got_refs.dedup();
        if want_refs != got_refs {
            let fmt = |v: &[(String, String)]| v.iter().map(|(p, s)| format!("{p}#{s}")).collect::<Vec<_>>().join(", ");
            errs.push(format!(
                "determining [{}], expected [{}]",
                fmt(&got_refs),
                fmt(&want_refs)
            ));
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
