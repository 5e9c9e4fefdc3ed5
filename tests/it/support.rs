//! Helpers shared by the integration tests: run the `warden` binary, build bundles in temp dirs.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a run of the binary produced.
#[derive(Debug)]
pub(crate) struct Output {
    /// Exit code (`-1` when killed by a signal).
    pub(crate) code: i32,
    /// Standard output, lossily decoded.
    pub(crate) stdout: String,
    /// Standard error, lossily decoded.
    pub(crate) stderr: String,
}

impl Output {
    /// A readable dump for assertion messages.
    pub(crate) fn dump(&self) -> String {
        format!(
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The `warden` binary Cargo built for these tests.
pub(crate) fn warden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_warden"))
}

/// Runs `warden ARGS` with an empty stdin, in the crate directory.
pub(crate) fn warden<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    warden_stdin(args, "")
}

/// Runs `warden ARGS` with `stdin` as its standard input, in the crate directory.
pub(crate) fn warden_stdin<I, S>(args: I, stdin: &str) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    warden_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, stdin)
}

/// Runs `warden ARGS` in `cwd` with `stdin` as its standard input.
pub(crate) fn warden_in<I, S>(cwd: &Path, args: I, stdin: &str) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut child = Command::new(warden_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the warden binary");
    {
        let mut input = child.stdin.take().expect("child stdin");
        // The child may exit without reading everything (a usage error): ignore a broken pipe.
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("wait for warden");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh temporary directory (removed when dropped).
pub(crate) fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("warden-it-")
        .tempdir()
        .expect("create a temp dir")
}

/// Copies the tree at `src` into `dst` (created if needed), skipping entries whose file name
/// `skip` returns true for. Symlinks are followed.
pub(crate) fn copy_tree(src: &Path, dst: &Path, skip: &dyn Fn(&Path) -> bool) {
    std::fs::create_dir_all(dst).unwrap_or_else(|e| panic!("create {}: {e}", dst.display()));
    let entries = std::fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let from = entry.path();
        if skip(&from) {
            continue;
        }
        let to = dst.join(entry.file_name());
        if from.is_dir() {
            copy_tree(&from, &to, skip);
        } else {
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
        }
    }
}

/// Copies the directory `src` into a new temp dir; returns the temp dir (the copy is its root).
pub(crate) fn copy_to_temp(src: &Path, skip: &dyn Fn(&Path) -> bool) -> tempfile::TempDir {
    let tmp = temp_dir();
    copy_tree(src, tmp.path(), skip);
    tmp
}

/// Writes `files` (`(relative path, content)`) under `root`, creating folders.
pub(crate) fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        write_file(root, rel, content.as_bytes());
    }
}

/// Writes one file under `root`, creating folders.
pub(crate) fn write_file(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes `files` into a new temp dir and returns it.
pub(crate) fn bundle_in_temp(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = temp_dir();
    write_files(tmp.path(), files);
    tmp
}

/// Whether `s` is `sha256:` followed by 64 lower-case hex digits.
pub(crate) fn is_revision(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The `sha256:…` revision printed by a successful `warden validate` (panics with the output if none).
pub(crate) fn revision_in(out: &Output) -> String {
    out.stdout
        .split_whitespace()
        .map(|w| w.trim_end_matches([',', '.', ')']))
        .find(|w| is_revision(w))
        .unwrap_or_else(|| panic!("no `sha256:<64 hex>` revision in the output:\n{}", out.dump()))
        .to_owned()
}

/// The problem lines of `warden validate` stderr (without the `N problem(s) found` summary).
pub(crate) fn problem_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| !l.is_empty() && !is_summary(l))
        .map(str::to_owned)
        .collect()
}

/// Whether `line` is the `N problem(s) found` summary.
pub(crate) fn is_summary(line: &str) -> bool {
    line.split_once(' ')
        .is_some_and(|(n, rest)| n.parse::<usize>().is_ok() && (rest == "problem found" || rest == "problems found"))
}
