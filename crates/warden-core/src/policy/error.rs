//! Problems found while reading policies and bundles: every one is collected (never first-fail) with
//! the file and the field (a JSON pointer) it concerns. Pure.
use std::fmt;

/// One problem: `file: field: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Bundle-relative file path (or a case id).
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

/// Collects problems for one file while walking its JSON.
#[derive(Debug)]
pub struct Problems<'a> {
    file: &'a str,
    out: &'a mut Vec<Problem>,
}

impl<'a> Problems<'a> {
    /// Collects into `out` for `file`.
    pub fn new(file: &'a str, out: &'a mut Vec<Problem>) -> Problems<'a> {
        Problems { file, out }
    }

    /// Records a problem at `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.out.push(Problem { file: self.file.to_owned(), field: field.into(), message: message.into() });
    }

    /// The file.
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// How many problems so far (all files).
    pub fn count(&self) -> usize {
        self.out.len()
    }
}

/// Escapes a JSON-pointer token.
pub fn ptr_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}
