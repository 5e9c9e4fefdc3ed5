//! Deliberately broken bundles under `tests/bad-bundles/<case>/`: each has the bundle in `bundle/`
//! and `expected-errors.txt`, the exact problem lines `warden validate <case>/bundle` must print
//! (sorted as printed, without the `N problem(s) found` summary). The >10 MiB file case is generated
//! here rather than committed. Finally, the loader is fed hostile input directly and must return `Err`, never panic.
use crate::support::{self, Output};
use std::path::{Path, PathBuf};

/// The expected problem lines of a case.
const EXPECTED: &str = "expected-errors.txt";
/// `load::MAX_FILE_BYTES` (10 MiB), restated: the limit is part of the contract (SPEC §3.1).
const MAX_FILE_BYTES: usize = 10 << 20;

fn cases_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-bundles")
}

/// Every case directory, sorted by name.
fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_root())
        .expect("tests/bad-bundles exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read_expected(case: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(case.join(EXPECTED))
        .unwrap_or_else(|e| panic!("{}: cannot read {EXPECTED}: {e}", case.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

/// A line diff (longest common subsequence): `  ` common, `- ` expected only, `+ ` printed only.
fn diff(expected: &[String], got: &[String]) -> String {
    let (n, m) = (expected.len(), got.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == got[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < n || j < m {
        if i < n && j < m && expected[i] == got[j] {
            out.push_str(&format!("    {}\n", expected[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("  + {}\n", got[j]));
            j += 1;
        } else {
            out.push_str(&format!("  - {}\n", expected[i]));
            i += 1;
        }
    }
    out
}

/// Checks one run of `warden validate` against the expected problem lines; `Err` explains.
fn check_output(name: &str, out: &Output, expected: &[String]) -> Result<(), String> {
    let mut why = Vec::new();
    if out.code != 1 {
        why.push(format!("exit code {}, expected 1", out.code));
    }
    if !out.stdout.trim().is_empty() {
        why.push(format!("unexpected stdout: {}", out.stdout.trim()));
    }
    let lines: Vec<&str> = out.stderr.lines().collect();
    let want_summary = format!("{} problem{} found", expected.len(), if expected.len() == 1 { "" } else { "s" });
    if lines.last() != Some(&want_summary.as_str()) {
        why.push(format!("last stderr line {:?}, expected {want_summary:?}", lines.last().copied().unwrap_or("")));
    }
    let got = support::problem_lines(&out.stderr);
    if got != expected {
        why.push(format!("problem lines differ (- expected only, + printed only):\n{}", diff(expected, &got)));
    }
    if why.is_empty() { Ok(()) } else { Err(format!("== {name}\n{}", why.join("\n"))) }
}

/// Validates a case's `bundle/` and compares.
fn check_case(case: &Path) -> Result<(), String> {
    let name = case.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
    let expected = read_expected(case);
    if expected.is_empty() {
        return Err(format!("== {name}\n{EXPECTED} lists no problem"));
    }
    let out = support::warden([Path::new("validate"), &case.join("bundle")]);
    check_output(&name, &out, &expected)
}

#[test]
fn every_bad_bundle_prints_exactly_its_expected_errors() {
    let cases: Vec<PathBuf> = case_dirs().into_iter().collect();
    assert!(cases.len() >= 25, "expected at least 25 bad bundles under tests/bad-bundles, found {}", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|c| check_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} bad bundles did not print exactly their {EXPECTED}:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_bad_bundle_is_well_formed() {
    for case in case_dirs() {
        let name = case.display();
        assert!(case.join(EXPECTED).is_file(), "{name}: missing {EXPECTED}");
        let expected = read_expected(&case);
        // Warden sorts problems by (file, field, message), not by the printed line.
        let mut sorted = expected.clone();
        sorted.sort_by(|a, b| {
            let key = |l: &str| l.splitn(3, ": ").map(str::to_owned).collect::<Vec<_>>();
            key(a).cmp(&key(b))
        });
        assert_eq!(expected, sorted, "{name}: {EXPECTED} must be sorted as warden prints it");
        for line in &expected {
            let mut parts = line.splitn(3, ": ");
            let (file, field, msg) = (parts.next(), parts.next(), parts.next());
            assert!(
                file.is_some_and(|f| !f.is_empty())
                    && field.is_some_and(|f| f.starts_with('/'))
                    && msg.is_some_and(|m| !m.is_empty()),
                "{name}: `{line}` is not `path: /field: message`"
            );
        }
    }
}

// --- bundles that load with warnings: tests/warn-bundles/<case>/ ---------------------------------

/// The expected warning lines of a warn-bundle case.
const EXPECTED_WARNINGS: &str = "expected-warnings.txt";

/// Constructs AWS accepts but Access Analyzer flags (SPEC §3.1): `warden validate` prints exactly the
/// case's warnings and exits 0; `--strict` prints them as problems (`path: field: message [rule]`) and
/// exits 1. Regression: these bundles were refused (they were bad bundles).
#[test]
fn warn_bundles_load_with_exactly_their_warnings_and_fail_only_under_strict() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/warn-bundles");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&root).expect("tests/warn-bundles").map(|e| e.expect("entry").path()).collect();
    cases.sort();
    assert!(cases.len() >= 2, "{cases:?}");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        let text = std::fs::read_to_string(case.join(EXPECTED_WARNINGS)).expect("expected-warnings.txt");
        let expected: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
        let n = expected.len();
        let out = support::warden([Path::new("validate"), &case.join("bundle")]);
        let summary = format!("{n} warning{}", if n == 1 { "" } else { "s" });
        let mut got: Vec<String> = out.stderr.lines().map(str::to_owned).collect();
        let last = got.pop();
        if out.code != 0 || got != expected || last.as_deref() != Some(summary.as_str()) {
            failures.push(format!(
                "== {name} (validate)
{}
{}",
                out.dump(),
                diff(&expected, &got)
            ));
        }
        if !out.stdout.trim_end().ends_with(&format!(", {summary})")) {
            failures.push(format!("== {name}: the valid line counts the warnings: {}", out.stdout));
        }
        // --strict: the same findings as problems, exit 1.
        let strict = support::warden([Path::new("validate"), Path::new("--strict"), &case.join("bundle")]);
        let as_problems: Vec<String> = expected.iter().map(|l| l.replacen(": warning: ", ": ", 1)).collect();
        if let Err(e) = check_output(&format!("{name} (validate --strict)"), &strict, &as_problems) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// --- the >10 MiB file, generated rather than committed ---------------------------------------

/// A valid bare policy document padded with spaces to exactly `len` bytes.
fn padded_policy(len: usize) -> Vec<u8> {
    let doc =
        br#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}"#;
    let mut bytes = doc.to_vec();
    assert!(len >= bytes.len());
    bytes.resize(len, b' ');
    bytes
}

#[test]
fn a_file_of_exactly_10_mib_is_accepted() {
    let tmp = support::temp_dir();
    support::write_file(tmp.path(), "iam/policies/Big.json", &padded_policy(MAX_FILE_BYTES));
    let out = support::warden([Path::new("validate"), tmp.path()]);
    assert_eq!(out.code, 0, "{}", out.dump());
}

#[test]
fn a_file_over_10_mib_is_refused() {
    let tmp = support::temp_dir();
    support::write_file(tmp.path(), "iam/policies/Big.json", &padded_policy(MAX_FILE_BYTES + 1));
    let out = support::warden([Path::new("validate"), tmp.path()]);
    let expected = vec![format!(
        "iam/policies/Big.json: /: file of {} bytes exceeds the limit of {MAX_FILE_BYTES}",
        MAX_FILE_BYTES + 1
    )];
    if let Err(e) = check_output("generated >10 MiB file", &out, &expected) {
        panic!("{e}");
    }
}

#[test]
fn a_file_over_10_mib_does_not_hide_other_problems() {
    let tmp = support::temp_dir();
    support::write_file(tmp.path(), "iam/policies/Big.json", &padded_policy(MAX_FILE_BYTES + 1));
    support::write_file(tmp.path(), "iam/policies/Broken.json", b"{\n");
    let out = support::warden([Path::new("validate"), tmp.path()]);
    let expected = vec![
        format!("iam/policies/Big.json: /: file of {} bytes exceeds the limit of {MAX_FILE_BYTES}", MAX_FILE_BYTES + 1),
        "iam/policies/Broken.json: /: malformed JSON: EOF while parsing an object at line 2 column 0".to_owned(),
    ];
    if let Err(e) = check_output("generated >10 MiB file plus a broken file", &out, &expected) {
        panic!("{e}");
    }
}

#[test]
fn a_bundle_over_256_mib_is_refused() {
    // 26 files just under the per-file limit: 260 MiB in all.
    let files: Vec<(String, Vec<u8>)> =
        (0..26).map(|i| (format!("iam/policies/P{i:02}.json"), padded_policy(MAX_FILE_BYTES - 1))).collect();
    match warden::bundle::from_files(files) {
        Ok(_) => panic!("a 260 MiB bundle was accepted; docs/bundle-format.md sets the limit at 256 MiB"),
        Err(problems) => assert!(
            problems.iter().any(|p| p.message.contains("limit")),
            "the problems must name the size limit: {problems:?}"
        ),
    }
}

// --- hostile input straight into the loader -------------------------------------------------

/// Every place a bundle reads JSON from.
const LOCATIONS: &[&str] = &[
    "iam/policies/X.json",
    "iam/roles/X.json",
    "iam/users/X.json",
    "iam/groups/X.json",
    "iam/authorization-details.json",
    "organizations/scps/X.json",
    "sagemaker/partner-apps/X.json",
    "sagemaker/domains/X.json",
    "identity-center/X.json",
    "tests/X.json",
];

/// A small deterministic generator (xorshift64*), so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

/// Loads `files` and demands `Err` without a panic; returns a description of what went wrong.
fn must_fail(what: &str, files: Vec<(String, Vec<u8>)>) -> Option<String> {
    match std::panic::catch_unwind(move || warden::bundle::from_files(files).is_err()) {
        Ok(true) => None,
        Ok(false) => Some(format!("{what}: loaded as a valid bundle")),
        Err(_) => Some(format!("{what}: the loader panicked")),
    }
}

fn one(path: &str, bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    vec![(path.to_owned(), bytes)]
}

#[test]
fn the_loader_never_panics_on_hostile_input() {
    let mut failures = Vec::new();
    let mut check = |what: String, files: Vec<(String, Vec<u8>)>| {
        if let Some(f) = must_fail(&what, files) {
            failures.push(f);
        }
    };
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);

    for loc in LOCATIONS {
        // Random bytes of various lengths.
        for len in [1usize, 2, 7, 64, 1000, 70_000] {
            check(format!("{loc}: {len} random bytes"), one(loc, rng.bytes(len)));
        }
        // Deep nesting far beyond serde_json's own recursion limit.
        let deep_arrays = "[".repeat(100_000) + &"]".repeat(100_000);
        check(format!("{loc}: 100k nested arrays"), one(loc, deep_arrays.into_bytes()));
        let deep_objects = r#"{"a":"#.repeat(100_000) + "1" + &"}".repeat(100_000);
        check(format!("{loc}: 100k nested objects"), one(loc, deep_objects.into_bytes()));
        check(format!("{loc}: 100k unclosed arrays"), one(loc, "[".repeat(100_000).into_bytes()));
        // The nesting limit itself.
        let d129 = "[".repeat(129) + &"]".repeat(129);
        check(format!("{loc}: 129 nested arrays"), one(loc, d129.into_bytes()));
        // Huge arrays of the wrong thing, and of empty objects.
        let huge = format!("[{}1]", "1,".repeat(500_000));
        check(format!("{loc}: an array of 500k numbers"), one(loc, huge.into_bytes()));
        let huge_objs = format!("[{}{{}}]", "{},".repeat(200_000));
        check(format!("{loc}: an array of 200k empty objects"), one(loc, huge_objs.into_bytes()));
        // Over the size limit.
        check(format!("{loc}: 10 MiB + 1"), one(loc, padded_policy(MAX_FILE_BYTES + 1)));
        // Scalars and empties.
        for text in ["", " ", "null", "0", "-1e999", "\"\"", "\u{feff}", "\u{feff}{", "{}{}"] {
            check(format!("{loc}: {text:?}"), one(loc, text.as_bytes().to_vec()));
        }
    }

    // Truncated JSON: every proper prefix of real documents.
    let docs: &[(&str, &str)] = &[
        (
            "iam/policies/P.json",
            r#"{"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/${aws:username}/*", "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}}]}"#,
        ),
        (
            "iam/roles/R.json",
            r#"{"RoleName": "R", "Arn": "arn:aws:iam::111122223333:role/R", "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}, "Tags": [{"Key": "Team", "Value": "Team1"}]}"#,
        ),
        (
            "sagemaker/partner-apps/A.json",
            r#"{"Arn": "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-ABCDEF123456", "Name": "A", "Type": "comet", "ExecutionRoleArn": "arn:aws:iam::111122223333:role/R", "ApplicationConfig": {"AdminUsers": ["alice"]}}"#,
        ),
    ];
    for (path, doc) in docs {
        for cut in 0..doc.len() {
            if doc.is_char_boundary(cut) {
                check(format!("{path}: truncated at byte {cut}"), one(path, doc.as_bytes()[..cut].to_vec()));
            }
        }
        // The same, with every byte flipped to garbage in turn (a sample of positions).
        for pos in (0..doc.len()).step_by(7) {
            let mut b = doc.as_bytes().to_vec();
            b[pos] = 0xff;
            check(format!("{path}: byte {pos} replaced by 0xff"), one(path, b));
        }
    }

    // URL-encoded documents that hide hostile JSON.
    let deep_encoded = "%5B".repeat(100_000) + &"%5D".repeat(100_000);
    let role = format!(
        r#"{{"RoleName": "R", "Arn": "arn:aws:iam::111122223333:role/R", "AssumeRolePolicyDocument": "{deep_encoded}"}}"#
    );
    check("a URL-encoded trust policy nested 100k deep".into(), one("iam/roles/R.json", role.into_bytes()));
    let bad_utf8 =
        r#"{"RoleName": "R", "Arn": "arn:aws:iam::111122223333:role/R", "AssumeRolePolicyDocument": "%FF%FE%7B"}"#;
    check("a URL-encoded trust policy of invalid UTF-8".into(), one("iam/roles/R.json", bad_utf8.into()));

    // Many hostile files at once, and a huge number of tiny ones.
    let many: Vec<(String, Vec<u8>)> = (0..2_000)
        .map(|i| (LOCATIONS[i % LOCATIONS.len()].replace('X', &format!("f{i}")), rng.bytes(i % 97 + 1)))
        .collect();
    check("2000 random files in every location".into(), many);
    let paths: Vec<(String, Vec<u8>)> = [
        "",
        "/",
        "..",
        "../../etc/passwd.json",
        "iam//policies/X.json",
        "iam/policies/",
        "iam/policies/.json",
        "\u{0}.json",
        "iam/policies/é\u{301}.json",
    ]
    .iter()
    .map(|p| ((*p).to_owned(), b"{".to_vec()))
    .collect();
    check("odd paths with broken content".into(), paths);

    assert!(failures.is_empty(), "{} hostile inputs were mishandled:\n{}", failures.len(), failures.join("\n"));
}
