//! `warden test --format text|json|junit`: how a run of the bundle's cases is printed.
//!
//! - `text` (default): one `FAIL name (file): why` line per failing case, then `N passed, M failed`.
//! - `json`: one JSON document: the bundle, its revision, the counts and every case run.
//! - `junit`: JUnit XML (one `<testsuite>` for the bundle, one `<testcase>` per case run, a `<failure>` in
//!   each failing one) for CI systems. Cases left out by `--run` are not listed (counted in `json`).
use super::bundle_tests::Report;
use std::io::{self, Write};

/// The output formats of `warden test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Failures, then `N passed, M failed`.
    Text,
    /// One JSON document.
    Json,
    /// JUnit XML.
    Junit,
}

/// Writes `report` of the bundle at `src` (revision `revision`) in `format`.
pub fn write(out: &mut impl Write, format: Format, src: &str, revision: &str, report: &Report) -> io::Result<()> {
    match format {
        Format::Text => text(out, report),
        Format::Json => json(out, src, revision, report),
        Format::Junit => junit(out, src, revision, report),
    }
}

fn text(out: &mut impl Write, report: &Report) -> io::Result<()> {
    for c in report.failed() {
        writeln!(out, "FAIL {} ({}): {}", c.name, c.file, c.failure.as_deref().unwrap_or_default())?;
    }
    if report.skipped > 0 {
        writeln!(
            out,
            "{} passed, {} failed, {} not run (--run)",
            report.passed(),
            report.failed().count(),
            report.skipped
        )
    } else {
        writeln!(out, "{} passed, {} failed", report.passed(), report.failed().count())
    }
}

fn json(out: &mut impl Write, src: &str, revision: &str, report: &Report) -> io::Result<()> {
    let cases: Vec<serde_json::Value> = report
        .cases
        .iter()
        .map(|c| {
            let mut v = serde_json::json!({
                "name": c.name,
                "file": c.file,
                "result": if c.failure.is_some() { "fail" } else { "pass" },
                "time_seconds": c.elapsed.as_secs_f64(),
            });
            if let (Some(why), Some(o)) = (&c.failure, v.as_object_mut()) {
                o.insert("message".to_owned(), serde_json::Value::String(why.clone()));
            }
            v
        })
        .collect();
    let doc = serde_json::json!({
        "bundle": src,
        "revision": revision,
        "passed": report.passed(),
        "failed": report.failed().count(),
        "not_run": report.skipped,
        "cases": cases,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)
        .map_err(|e| e.io_error_kind().map_or_else(|| io::Error::other(e), io::Error::from))?;
    writeln!(out)
}

fn junit(out: &mut impl Write, src: &str, revision: &str, report: &Report) -> io::Result<()> {
    let total: f64 = report.cases.iter().map(|c| c.elapsed.as_secs_f64()).sum();
    let (tests, failures) = (report.cases.len(), report.failed().count());
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="warden test" tests="{tests}" failures="{failures}" errors="0" time="{total:.6}">"#
    )?;
    writeln!(
        out,
        r#"  <testsuite name="{}" tests="{tests}" failures="{failures}" errors="0" skipped="0" time="{total:.6}">"#,
        xml(src)
    )?;
    writeln!(out, "    <properties>")?;
    writeln!(out, r#"      <property name="revision" value="{}"/>"#, xml(revision))?;
    writeln!(out, "    </properties>")?;
    for c in &report.cases {
        let head = format!(
            r#"    <testcase name="{}" classname="{}" time="{:.6}""#,
            xml(&c.name),
            xml(&c.file),
            c.elapsed.as_secs_f64()
        );
        match &c.failure {
            None => writeln!(out, "{head}/>")?,
            Some(why) => {
                writeln!(out, "{head}>")?;
                writeln!(out, r#"      <failure message="{}" type="expectation">{}</failure>"#, xml(why), xml(why))?;
                writeln!(out, "    </testcase>")?;
            }
        }
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

/// Text as XML 1.0 attribute or element content: the five markup characters escaped, and characters
/// XML 1.0 cannot carry at all (most control characters) replaced with U+FFFD.
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push_str(&format!("&#{};", u32::from(ch))),
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::bundle_tests::CaseResult;
    use std::time::Duration;

    fn report() -> Report {
        Report {
            cases: vec![
                CaseResult {
                    name: "alice <reads> & \"writes\"".into(),
                    file: "tests/a.json".into(),
                    elapsed: Duration::from_micros(12),
                    failure: None,
                },
                CaseResult {
                    name: "bob".into(),
                    file: "tests/b.json".into(),
                    elapsed: Duration::from_micros(30),
                    failure: Some("decision ALLOW, expected\u{1} EXPLICIT_DENY".into()),
                },
            ],
            skipped: 3,
        }
    }

    #[test]
    fn xml_escapes_markup_and_drops_what_xml_cannot_carry() {
        assert_eq!(xml(r#"a<b>&"c"'"#), "a&lt;b&gt;&amp;&quot;c&quot;&apos;");
        assert_eq!(xml("x\u{0}y\u{1b}z\n"), "x\u{FFFD}y\u{FFFD}z&#10;");
    }

    #[test]
    fn text_lists_failures_then_counts() {
        let mut out = Vec::new();
        write(&mut out, Format::Text, "b", "sha256:x", &report()).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "FAIL bob (tests/b.json): decision ALLOW, expected\u{1} EXPLICIT_DENY\n1 passed, 1 failed, 3 not run (--run)\n"
        );
    }

    #[test]
    fn json_carries_counts_and_every_case_run() {
        let mut out = Vec::new();
        write(&mut out, Format::Json, "b", "sha256:x", &report()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!((v["passed"].as_u64(), v["failed"].as_u64(), v["not_run"].as_u64()), (Some(1), Some(1), Some(3)));
        assert_eq!(v["cases"][1]["result"], "fail");
        assert!(v["cases"][0].get("message").is_none());
    }
}
