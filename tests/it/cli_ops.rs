//! The command line for CI and people (SPEC §11, issue 12 item 5): `warden test --format text|json|junit`
//! and `--run`, `eval --cases` exit codes, a closed standard output (exit 141, no panic), `serve
//! --log-format json`, `warden completions`, `warden man`, and clap's typo hints.
use crate::support::{self, Output};
use quick_xml::events::Event;
use serde_json::{Value, json};
use std::io::{BufRead as _, Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

const ALICE_JSON: &str = r#"{"UserName": "alice", "Arn": "arn:aws:iam::111122223333:user/alice",
  "UserPolicyList": [{"PolicyName": "Reads", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
    {"Sid": "S3Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}}]}"#;

fn case(name: &str, action: &str, decision: &str) -> Value {
    json!({"name": name, "authorize": {"principal": {"arn": ALICE}, "action": action, "resource": "arn:aws:s3:::b/k"},
           "expect": {"decision": decision}})
}

/// A bundle with four cases, one failing (`<&"odd"> name` expects the wrong decision).
fn bundle() -> tempfile::TempDir {
    let b = support::bundle_in_temp(&[("iam/users/alice.json", ALICE_JSON)]);
    let cases = json!({"cases": [
        case("alice_reads", "s3:GetObject", "ALLOW"),
        case("alice_cannot_write", "s3:PutObject", "IMPLICIT_DENY"),
        case("alice_cannot_delete", "s3:DeleteObject", "IMPLICIT_DENY"),
        case("<&\"odd\"> name", "s3:PutObject", "ALLOW"),
    ]});
    support::write_file(b.path(), "tests/cases.json", cases.to_string().as_bytes());
    b
}

fn test_cmd(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["test".to_owned(), dir.display().to_string()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    support::warden(args)
}

/// A parsed JUnit document: (testsuites attrs, testsuite attrs, [(testcase attrs, failure message)]).
type Junit = (Vec<(String, String)>, Vec<(String, String)>, Vec<(Vec<(String, String)>, Option<String>)>);

fn attrs(e: &quick_xml::events::BytesStart<'_>) -> Vec<(String, String)> {
    e.attributes()
        .map(|a| {
            let a = a.expect("a well-formed attribute");
            let v = a.unescape_value().expect("an attribute value that unescapes").into_owned();
            (String::from_utf8(a.key.as_ref().to_vec()).expect("UTF-8 name"), v)
        })
        .collect()
}

fn attr<'a>(a: &'a [(String, String)], k: &str) -> &'a str {
    a.iter().find(|(n, _)| n == k).map_or_else(|| panic!("no `{k}` in {a:?}"), |(_, v)| v.as_str())
}

/// Parses JUnit XML with a real XML parser, checking the element structure CI systems read
/// (`testsuites` > `testsuite` > `testcase` > optional `failure`) and nothing else.
fn parse_junit(xml: &str) -> Junit {
    let mut r = quick_xml::Reader::from_str(xml);
    let (mut suites, mut suite, mut cases) = (None, None, Vec::new());
    let mut path: Vec<String> = Vec::new();
    loop {
        match r.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Decl(_) | Event::Text(_) => {}
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).expect("UTF-8");
                match (path.last().map(String::as_str), name.as_str()) {
                    (None, "testsuites") => suites = Some(attrs(&e)),
                    (Some("testsuites"), "testsuite") => suite = Some(attrs(&e)),
                    (Some("testsuite"), "properties") | (Some("properties"), _) => {}
                    (Some("testsuite"), "testcase") => cases.push((attrs(&e), None)),
                    (Some("testcase"), "failure") => {
                        let msg = attr(&attrs(&e), "message").to_owned();
                        cases.last_mut().expect("a failure inside a testcase").1 = Some(msg);
                    }
                    (parent, n) => panic!("unexpected <{n}> inside {parent:?}"),
                }
                path.push(name);
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).expect("UTF-8");
                match (path.last().map(String::as_str), name.as_str()) {
                    (Some("testsuite"), "testcase") => cases.push((attrs(&e), None)),
                    (Some("properties"), "property") => {}
                    (parent, n) => panic!("unexpected <{n}/> inside {parent:?}"),
                }
            }
            Event::End(_) => {
                path.pop();
            }
            other => panic!("unexpected XML event {other:?}"),
        }
    }
    assert!(path.is_empty(), "unclosed elements: {path:?}");
    (suites.expect("<testsuites>"), suite.expect("<testsuite>"), cases)
}

#[test]
fn test_format_junit_is_xml_a_ci_parser_reads() {
    let b = bundle();
    let out = test_cmd(b.path(), &["--format", "junit"]);
    assert_eq!(out.code, 1, "one case fails:\n{}", out.dump());
    let (suites, suite, cases) = parse_junit(&out.stdout);
    for a in [&suites, &suite] {
        assert_eq!((attr(a, "tests"), attr(a, "failures"), attr(a, "errors")), ("4", "1", "0"), "{a:?}");
        assert!(attr(a, "time").parse::<f64>().is_ok_and(|t| t >= 0.0), "{a:?}");
    }
    let names: Vec<&str> = cases.iter().map(|(a, _)| attr(a, "name")).collect();
    assert_eq!(names, ["alice_reads", "alice_cannot_write", "alice_cannot_delete", "<&\"odd\"> name"]);
    assert!(cases.iter().all(|(a, _)| attr(a, "classname") == "tests/cases.json"));
    let failed: Vec<(&str, &str)> =
        cases.iter().filter_map(|(a, f)| f.as_deref().map(|m| (attr(a, "name"), m))).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "<&\"odd\"> name");
    assert!(failed[0].1.contains("expected ALLOW"), "{failed:?}");
}

#[test]
fn test_format_json_is_one_document_with_counts_and_cases() {
    let b = bundle();
    let out = test_cmd(b.path(), &["--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.dump());
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", out.dump()));
    assert_eq!((v["passed"].as_u64(), v["failed"].as_u64(), v["not_run"].as_u64()), (Some(3), Some(1), Some(0)));
    assert!(v["revision"].as_str().is_some_and(support::is_revision), "{v}");
    let results: Vec<(&str, &str)> = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or(""), c["result"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        results,
        [
            ("alice_reads", "pass"),
            ("alice_cannot_write", "pass"),
            ("alice_cannot_delete", "pass"),
            ("<&\"odd\"> name", "fail")
        ]
    );
    assert!(v["cases"][3]["message"].as_str().is_some_and(|m| m.contains("expected ALLOW")), "{v}");
}

#[test]
fn test_run_selects_cases_by_substring_or_glob() {
    let b = bundle();
    let out = test_cmd(b.path(), &["--run", "cannot"]);
    assert_eq!(out.code, 0, "{}", out.dump());
    assert_eq!(out.stdout.trim(), "2 passed, 0 failed, 2 not run (--run)", "{}", out.dump());

    let out = test_cmd(b.path(), &["--run", "alice_*_write", "--format", "junit"]);
    assert_eq!(out.code, 0, "{}", out.dump());
    let (_, _, cases) = parse_junit(&out.stdout);
    assert_eq!(cases.len(), 1);

    let out = test_cmd(b.path(), &["--run", "odd"]);
    assert_eq!(out.code, 1, "the one selected case fails:\n{}", out.dump());

    let out = test_cmd(b.path(), &["--run", "nobody"]);
    assert_eq!(out.code, 1, "a filter that selects nothing is a failure, not a green run:\n{}", out.dump());
    assert!(out.stderr.contains("no test case name matches `nobody`"), "{}", out.dump());
}

#[test]
fn the_default_bundle_passes_in_every_format() {
    for format in ["text", "json", "junit"] {
        let out = support::warden(["test", "policies", "--format", format]);
        assert_eq!(out.code, 0, "--format {format}:\n{}", out.dump());
    }
}

#[test]
fn eval_cases_exits_0_when_no_row_is_an_error() {
    let line = r#"{"id": "ok", "policies": {"identity": []}, "request": {"principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}}"#;
    let out = support::warden_stdin(["eval", "--cases", "-"], line);
    assert_eq!(out.code, 0, "{}", out.dump());
    let out = support::warden_stdin(["eval", "--cases", "-"], &format!("{line}\n{{\"id\": \"x\"}}\n"));
    assert_eq!(out.code, 1, "one row is `Error`:\n{}", out.dump());
    assert_eq!(out.stdout.lines().count(), 2, "every row is still answered:\n{}", out.dump());
    assert!(out.stderr.contains("1 of the cases answered `Error`"), "{}", out.dump());
}

/// Runs `warden ARGS` with `stdin`, reads `keep` bytes of its output and closes the pipe; returns the
/// exit code and standard error.
fn with_closed_stdout(args: &[&str], stdin: Vec<u8>, keep: usize) -> (i32, String) {
    let mut child = Command::new(support::warden_bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn warden");
    let mut input = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut head = vec![0u8; keep];
    stdout.read_exact(&mut head).expect("the first bytes of the output");
    drop(stdout);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "warden did not exit after its output was closed");
        std::thread::sleep(Duration::from_millis(20));
    };
    feeder.join().expect("feeder");
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    (status.code().unwrap_or(-1), err)
}

#[test]
fn a_closed_standard_output_ends_the_run_quietly_with_141() {
    // `warden eval --cases - | head -1`: far more output than a pipe holds.
    let line = r#"{"id": "ok", "policies": {"identity": []}, "request": {"principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}}"#;
    let input = format!("{line}\n").repeat(20_000).into_bytes();
    let (code, err) = with_closed_stdout(&["eval", "--cases", "-"], input, 10);
    assert_eq!(code, 141, "stderr: {err}");
    assert!(!err.contains("panicked"), "no panic: {err}");
    assert!(err.is_empty(), "nothing is reported for a reader that went away: {err}");

    // `warden test --format junit | head -1` on a bundle with many cases.
    let b = support::bundle_in_temp(&[("iam/users/alice.json", ALICE_JSON)]);
    let cases: Vec<Value> = (0..5_000).map(|i| case(&format!("c{i}"), "s3:GetObject", "ALLOW")).collect();
    support::write_file(b.path(), "tests/cases.json", json!({"cases": cases}).to_string().as_bytes());
    let dir = b.path().display().to_string();
    let (code, err) = with_closed_stdout(&["test", &dir, "--format", "junit"], Vec::new(), 10);
    assert_eq!(code, 141, "stderr: {err}");
    assert!(!err.contains("panicked"), "no panic: {err}");
}

#[test]
fn completions_and_man_page_come_from_the_command_definition() {
    for (shell, marker) in [("bash", "_warden()"), ("zsh", "#compdef warden"), ("fish", "complete -c warden")] {
        let out = support::warden(["completions", shell]);
        assert_eq!(out.code, 0, "{shell}:\n{}", out.dump());
        assert!(out.stdout.contains(marker), "{shell}: no `{marker}`:\n{}", out.dump());
        for sub in ["serve", "validate", "healthcheck"] {
            assert!(out.stdout.contains(sub), "{shell}: `{sub}` not completed");
        }
    }
    let out = support::warden(["completions", "tcsh"]);
    assert_eq!(out.code, 64, "{}", out.dump());

    let out = support::warden(["man"]);
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(out.stdout.contains(".TH warden 1"), "{}", out.dump());
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(out.stdout.contains(section), "no `{section}`:\n{}", out.dump());
    }
    assert!(out.stdout.contains("warden\\-serve"), "subcommands are listed:\n{}", out.dump());
}

#[test]
fn typos_get_a_hint_and_exit_64() {
    let out = support::warden(["serv"]);
    assert_eq!(out.code, 64, "{}", out.dump());
    assert!(out.stderr.contains("a similar subcommand exists: 'serve'"), "{}", out.dump());
    let out = support::warden(["serve", "--listn", "127.0.0.1:0"]);
    assert_eq!(out.code, 64, "{}", out.dump());
    assert!(out.stderr.contains("a similar argument exists: '--listen'"), "{}", out.dump());
    let out = support::warden(["test", "policies", "--format", "xml"]);
    assert_eq!(out.code, 64, "{}", out.dump());
    assert!(out.stderr.contains("[possible values: text, json, junit]"), "{}", out.dump());
}

#[test]
fn serve_log_format_json_writes_one_json_object_per_line() {
    let mut child = Command::new(support::warden_bin())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--admin-listen", "off", "--log-format", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("WARDEN_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn warden serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !lines.iter().any(|l: &String| l.contains("gRPC listening")) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(l);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.iter().any(|l| l.contains("gRPC listening")), "no start-up line: {lines:?}");
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string() && v["target"].is_string(), "{v}");
        assert!(v["fields"]["message"].is_string(), "{v}");
    }
    let listening: Value =
        serde_json::from_str(lines.iter().find(|l| l.contains("gRPC listening")).expect("line")).expect("JSON");
    assert_eq!(listening["level"], "INFO");
    assert!(listening["fields"]["addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{listening}");
}

/// The README's numbers about the default bundle are what the binary prints (it quotes `warden test
/// policies`): a change to `policies/` that leaves the README behind fails here.
#[test]
fn the_readme_quotes_the_default_bundles_test_count() {
    let out = support::warden(["test", "policies"]);
    assert_eq!(out.code, 0, "{}", out.dump());
    let actual = out.stdout.lines().last().unwrap_or("").to_owned();
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README");
    let quoted: Vec<&str> = readme
        .match_indices(" passed, 0 failed")
        .map(|(i, _)| {
            let start = readme[..i].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |p| p + 1);
            &readme[start..i + " passed, 0 failed".len()]
        })
        .collect();
    assert!(!quoted.is_empty(), "the README quotes `warden test policies`");
    for q in quoted {
        assert_eq!(q, actual, "README.md quotes `{q}`; `warden test policies` prints `{actual}`");
    }
}
