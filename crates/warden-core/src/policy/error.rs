//! Problems found while reading policies and bundles: every one is collected (never first-fail) with
//! the file and the field (a JSON pointer) it concerns, up to [`MAX_PROBLEMS`] (the rest are counted, so
//! that no input yields millions of lines). Also the warnings: constructs AWS IAM accepts but IAM
//! Access Analyzer flags (SPEC §3.1), which never refuse a bundle. Pure.
use std::fmt;

/// Most problems kept; the others are counted and summed up in one last problem.
pub const MAX_PROBLEMS: usize = 1_000;

/// How the summing-up problem's message starts (`… and N more problems …`).
const MORE: &str = "… and ";

/// One problem: `file: field: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Bundle-relative file path (or a case id); `.` is the bundle directory itself.
    pub file: String,
    /// JSON pointer of the field, e.g. `/Statement/0/Condition/StringEqualz`; empty for the whole file.
    pub field: String,
    /// Lower-case, one-line message.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = if self.field.is_empty() { "/" } else { &self.field };
        write!(f, "{}: {}: {}", self.file, field, self.message)
    }
}

/// The rule behind a [`Warning`]: a construct AWS IAM accepts (so Warden loads it) but IAM Access
/// Analyzer flags. Each has a stable snake_case code, for logs and `validate` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WarningRule {
    /// A plain (unqualified) operator on a known multivalued key (`StringEquals` on `aws:TagKeys`;
    /// Access Analyzer "Missing qualifier"). It never matches a request that gives the key as a list.
    MissingQualifier,
    /// A policy variable in the partition, service, region or account of a `Resource`/`NotResource`
    /// ARN (AWS's own managed policies put `${aws:PrincipalAccount}` in the account). It is
    /// substituted like one in the resource part.
    VariableOutsideResource,
}

impl WarningRule {
    /// Every rule.
    pub const ALL: [WarningRule; 2] = [WarningRule::MissingQualifier, WarningRule::VariableOutsideResource];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            WarningRule::MissingQualifier => "missing_qualifier",
            WarningRule::VariableOutsideResource => "variable_outside_resource",
        }
    }

    fn slot(self) -> usize {
        match self {
            WarningRule::MissingQualifier => 0,
            WarningRule::VariableOutsideResource => 1,
        }
    }
}

impl fmt::Display for WarningRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One warning: `file: field: warning: message [rule]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    /// Bundle-relative file path (or a case id).
    pub file: String,
    /// JSON pointer of the field, e.g. `/Statement/8/Condition/StringEquals/aws:TagKeys`.
    pub field: String,
    /// The rule.
    pub rule: WarningRule,
    /// Lower-case, one-line message.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = if self.field.is_empty() { "/" } else { &self.field };
        write!(f, "{}: {}: warning: {} [{}]", self.file, field, self.message, self.rule)
    }
}

impl Warning {
    /// The same finding as a problem (`validate --strict`).
    pub fn to_problem(&self) -> Problem {
        Problem {
            file: self.file.clone(),
            field: self.field.clone(),
            message: format!("{} [{}]", self.message, self.rule),
        }
    }
}

/// Every warning of a bundle: the first [`MAX_PROBLEMS`] kept, all counted (in all and per rule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warnings {
    kept: Vec<Warning>,
    per_rule: [usize; WarningRule::ALL.len()],
}

impl Warnings {
    /// Adds a warning (counted only, once [`MAX_PROBLEMS`] are kept).
    pub fn push(&mut self, w: Warning) {
        if let Some(n) = self.per_rule.get_mut(w.rule.slot()) {
            *n += 1;
        }
        if self.kept.len() < MAX_PROBLEMS {
            self.kept.push(w);
        }
    }

    /// How many warnings there are (kept or counted).
    pub fn total(&self) -> usize {
        self.per_rule.iter().sum()
    }

    /// How many warnings of `rule` there are.
    pub fn count(&self, rule: WarningRule) -> usize {
        self.per_rule.get(rule.slot()).copied().unwrap_or(0)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// The warnings kept, in the order [`Warnings::sort`] left them.
    pub fn kept(&self) -> &[Warning] {
        &self.kept
    }

    /// How many warnings were counted but not kept.
    pub fn left_out(&self) -> usize {
        self.total().saturating_sub(self.kept.len())
    }

    /// Sorts the kept warnings by (file, field, rule, message).
    pub fn sort(&mut self) {
        self.kept.sort();
    }
}

/// Every problem of a bundle: the first [`MAX_PROBLEMS`] kept, the others only counted; and its
/// warnings, apart (they never make a bundle fail).
#[derive(Debug, Default)]
pub struct ProblemList {
    kept: Vec<Problem>,
    more: usize,
    warnings: Warnings,
}

impl ProblemList {
    /// An empty list.
    pub fn new() -> ProblemList {
        ProblemList::default()
    }

    /// Adds a problem (counted only, once [`MAX_PROBLEMS`] are kept).
    pub fn push(&mut self, p: Problem) {
        if self.kept.len() < MAX_PROBLEMS {
            self.kept.push(p);
        } else {
            self.more += 1;
        }
    }

    /// Adds every problem of `ps`.
    pub fn extend(&mut self, ps: impl IntoIterator<Item = Problem>) {
        for p in ps {
            self.push(p);
        }
    }

    /// How many problems were added (kept or counted).
    pub fn len(&self) -> usize {
        self.kept.len() + self.more
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The problems kept so far, in the order they were found.
    pub fn kept(&self) -> &[Problem] {
        &self.kept
    }

    /// The warnings so far.
    pub fn warnings(&self) -> &Warnings {
        &self.warnings
    }

    /// Takes the warnings out, sorted.
    pub fn take_warnings(&mut self) -> Warnings {
        let mut w = std::mem::take(&mut self.warnings);
        w.sort();
        w
    }

    /// The problems kept, sorted by (file, field, message) without repeats, followed by one problem that
    /// counts the others when some were only counted.
    pub fn into_sorted(self) -> Vec<Problem> {
        let ProblemList { mut kept, more, warnings: _ } = self;
        kept.sort();
        kept.dedup();
        if more > 0 {
            kept.push(Problem {
                file: ".".into(),
                field: String::new(),
                message: format!("{MORE}{more} more problems (only the first {MAX_PROBLEMS} are listed)"),
            });
        }
        kept
    }
}

/// How many problems `problems` stands for: its length, plus the count of the one that sums up
/// problems left out (see [`ProblemList::into_sorted`]).
pub fn total(problems: &[Problem]) -> usize {
    // Anywhere in the list: callers may sort it after the summary was appended.
    let more = problems
        .iter()
        .find(|p| p.file == "." && p.field.is_empty() && p.message.starts_with(MORE))
        .and_then(|p| p.message.strip_prefix(MORE))
        .and_then(|rest| rest.split_once(" more problems"))
        .and_then(|(n, _)| n.parse::<usize>().ok());
    match more {
        Some(n) => problems.len() - 1 + n,
        None => problems.len(),
    }
}

/// Collects problems for one file while walking its JSON.
#[derive(Debug)]
pub struct Problems<'a> {
    file: &'a str,
    out: &'a mut ProblemList,
    /// Keys reported misspelt or misplaced: (pointer of the object they belong in, the key, the cause).
    causes: Vec<(String, String, String)>,
}

impl<'a> Problems<'a> {
    /// Collects into `out` for `file`.
    pub fn new(file: &'a str, out: &'a mut ProblemList) -> Problems<'a> {
        Problems { file, out, causes: Vec::new() }
    }

    /// Records a problem at `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.out.push(Problem { file: self.file.to_owned(), field: field.into(), message: message.into() });
    }

    /// Records a warning at `field`: the construct is accepted (it does not count as a problem).
    pub fn warn(&mut self, field: impl Into<String>, rule: WarningRule, message: impl Into<String>) {
        self.out.warnings.push(Warning {
            file: self.file.to_owned(),
            field: field.into(),
            rule,
            message: message.into(),
        });
    }

    /// Remembers that the object at `at` has the key `written` where `meant` was probably meant, so that
    /// a problem about `meant` being absent is reported as its consequence ([`Problems::missing`]).
    pub fn misspelt(&mut self, at: &str, meant: &str, written: &str) {
        self.causes.push((at.to_owned(), meant.to_owned(), format!("because of the misspelt `{written}`")));
    }

    /// Remembers that `key`, which belongs in the object at `at`, was found at the pointer `found`, so
    /// that a problem about `key` being absent there is reported as its consequence.
    pub fn misplaced(&mut self, at: &str, key: &str, found: &str) {
        self.causes.push((at.to_owned(), key.to_owned(), format!("because of the misplaced `{found}`")));
    }

    /// ` (because of the misspelt `X`)` when a misspelling or misplacement of one of `keys` of the object
    /// at `at` was reported, else nothing: for problems that follow from a key being absent.
    pub fn because_of(&self, at: &str, keys: &[&str]) -> String {
        self.causes
            .iter()
            .find(|(a, meant, _)| a == at && keys.iter().any(|k| k == meant))
            .map(|(_, _, cause)| format!(" ({cause})"))
            .unwrap_or_default()
    }

    /// Records that the object at `at` lacks one of `keys`: marked as a consequence when a misspelling
    /// or misplacement of one of them was reported ([`Problems::because_of`]).
    pub fn missing(&mut self, at: &str, keys: &[&str], message: impl Into<String>) {
        let message = format!("{}{}", message.into(), self.because_of(at, keys));
        self.push(at, message);
    }

    /// The file.
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// How many problems so far (all files, kept or counted).
    pub fn count(&self) -> usize {
        self.out.len()
    }
}

/// Escapes a JSON-pointer token.
pub fn ptr_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(i: usize) -> Problem {
        Problem { file: format!("f{i:05}.json"), field: String::new(), message: "bad".into() }
    }

    #[test]
    fn problems_past_the_cap_are_counted_in_one_last_problem() {
        let mut list = ProblemList::new();
        list.extend((0..MAX_PROBLEMS + 42).map(problem));
        assert_eq!(list.len(), MAX_PROBLEMS + 42);
        let out = list.into_sorted();
        assert_eq!(out.len(), MAX_PROBLEMS + 1);
        assert_eq!(
            out.last().map(ToString::to_string).as_deref(),
            Some(".: /: … and 42 more problems (only the first 1000 are listed)")
        );
        assert_eq!(total(&out), MAX_PROBLEMS + 42);
    }

    #[test]
    fn warnings_are_not_problems_and_are_counted_per_rule_past_the_cap() {
        let mut list = ProblemList::new();
        let mut p = Problems::new("f.json", &mut list);
        for i in 0..MAX_PROBLEMS + 5 {
            p.warn(format!("/Statement/{i}"), WarningRule::MissingQualifier, "plain operator");
        }
        p.warn("/Statement/0/Resource", WarningRule::VariableOutsideResource, "variable");
        assert_eq!(p.count(), 0, "a warning is not a problem");
        assert!(list.is_empty());
        let w = list.take_warnings();
        assert_eq!(w.total(), MAX_PROBLEMS + 6);
        assert_eq!(w.count(WarningRule::MissingQualifier), MAX_PROBLEMS + 5);
        assert_eq!(w.count(WarningRule::VariableOutsideResource), 1);
        assert_eq!(w.kept().len(), MAX_PROBLEMS);
        assert_eq!(w.left_out(), 6);
        assert_eq!(
            w.kept().first().map(ToString::to_string).as_deref(),
            Some("f.json: /Statement/0: warning: plain operator [missing_qualifier]")
        );
        assert!(list.take_warnings().is_empty(), "taken out");
    }

    #[test]
    fn under_the_cap_nothing_is_summed_up() {
        let mut list = ProblemList::new();
        list.extend((0..3).map(problem));
        let out = list.into_sorted();
        assert_eq!(out.len(), 3);
        assert_eq!(total(&out), 3);
    }

    #[test]
    fn a_missing_key_after_a_misspelling_is_its_consequence() {
        let mut list = ProblemList::new();
        let mut p = Problems::new("f.json", &mut list);
        p.misspelt("/Statement/0", "Action", "Actoin");
        p.missing("/Statement/0", &["Action", "NotAction"], "missing `Action` or `NotAction`");
        p.missing("/Statement/1", &["Action", "NotAction"], "missing `Action` or `NotAction`");
        let msgs: Vec<String> = list.into_sorted().into_iter().map(|p| p.message).collect();
        assert_eq!(
            msgs,
            ["missing `Action` or `NotAction` (because of the misspelt `Actoin`)", "missing `Action` or `NotAction`"]
        );
    }
}
