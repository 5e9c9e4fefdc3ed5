//! The bundle file reader: the only place a bundle directory is read (sync `std::fs`), plus the default
//! bundle compiled into the binary. Building the bundle from the bytes is `warden_core::bundle`'s.
//!
//! SPEC §3.1 "Only regular files, only inside the bundle": only regular files and directories are read.
//! A FIFO, socket or device is a problem and is never opened (the type comes from `lstat`, and the open
//! itself is `O_NONBLOCK | O_NOFOLLOW` and checked again with `fstat`, so an entry swapped in between
//! cannot block or be followed). A symbolic link is followed only when its canonical target lies inside
//! the bundle root's canonical path (a Kubernetes ConfigMap's `..data` links do); links are resolved after
//! the real tree, so that a second path to something is reported on the link. Every directory and file
//! is read once (by device and inode): loops and second paths are problems. Limits: a file of 10 MiB,
//! 100,000 entries, 256 MiB in all, 8 levels of folders; reads are capped at the limit whatever `stat`
//! said. Loading is thus bounded in time and memory by the limits, whatever is in the directory.
use std::collections::{HashMap, VecDeque};
use std::fs::{Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use warden_core::bundle::{Bundle, BundleFile, from_files, from_read, load};
use warden_core::policy::{Problem, ProblemList};

include!(concat!(env!("OUT_DIR"), "/embedded_policies.rs"));

/// Deepest folder nesting read (the bundle layout needs 2).
pub const MAX_DIR_DEPTH: usize = 8;

/// The default bundle compiled into the binary (`policies/` of the repository).
pub fn embedded_files() -> Vec<(String, Vec<u8>)> {
    EMBEDDED.iter().map(|(p, b)| ((*p).to_owned(), b.to_vec())).collect()
}

/// Loads the embedded default bundle.
pub fn embedded() -> Result<Bundle, Vec<Problem>> {
    from_files(embedded_files())
}

/// Reads every file of a bundle directory (see the module documentation for what is read and what is
/// refused). Hidden names (`..data`, `..2024_…` of Kubernetes ConfigMaps) are skipped, but links through
/// them are followed. Returns the files read and the problems met, so that every problem of the bundle
/// is reported at once; `Err` when the root is not a readable directory or a bundle-wide limit was hit.
pub fn read_files(root: &Path) -> Result<(Vec<BundleFile>, Vec<Problem>), Vec<Problem>> {
    let whole = |message: String| vec![Problem { file: root.display().to_string(), field: String::new(), message }];
    let meta = match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => return Err(whole("cannot read bundle directory: not a directory".to_owned())),
        Err(e) => return Err(whole(format!("cannot read bundle directory: {e}"))),
    };
    let canonical = std::fs::canonicalize(root).map_err(|e| whole(format!("cannot read bundle directory: {e}")))?;
    let mut walk = Walk::new(canonical.clone());
    walk.visited.insert(identity(&meta), ".".to_owned());
    walk.dir(&canonical, "", 0);
    while let Some(link) = walk.links.pop_front() {
        if walk.stopped {
            break;
        }
        walk.link(link);
    }
    if walk.stopped { Err(walk.problems) } else { Ok((walk.files, walk.problems)) }
}

/// Reads and builds the bundle in `root`; every problem (at most [`ProblemList`]'s cap, plus a count of
/// the rest) when it is invalid.
pub fn read_dir(root: &Path) -> Result<Bundle, Vec<Problem>> {
    match read_files(root) {
        Ok((files, problems)) => from_read(files, problems),
        Err(problems) => {
            let mut list = ProblemList::new();
            list.extend(problems);
            Err(list.into_sorted())
        }
    }
}

/// Reads `.signatures.json` at the root of the bundle directory `root` (`Ok(None)`: there is none),
/// with the safeguards of the bundle reader: a regular file, or a symbolic link (a ConfigMap key) whose
/// target is inside the bundle; opened without blocking or following a link; at most
/// [`signatures::MAX_MANIFEST_BYTES`](crate::runtime::signatures::MAX_MANIFEST_BYTES) read.
pub fn read_manifest(root: &Path) -> Result<Option<Vec<u8>>, Problem> {
    use crate::runtime::signatures::{FILE, MAX_MANIFEST_BYTES};
    let refuse = |message: String| Problem { file: FILE.to_owned(), field: String::new(), message };
    let path = root.join(FILE);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refuse(format!("cannot read: {e}"))),
    };
    let path = if meta.file_type().is_symlink() {
        let root = std::fs::canonicalize(root).map_err(|e| refuse(format!("cannot read bundle directory: {e}")))?;
        let target = std::fs::canonicalize(&path).map_err(|e| refuse(format!("cannot resolve symbolic link: {e}")))?;
        if !target.starts_with(&root) {
            return Err(refuse(format!("symbolic link leads outside the bundle (to `{}`)", target.display())));
        }
        target
    } else {
        path
    };
    let opened = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(&path);
    let file = opened.map_err(|e| refuse(format!("cannot read: {e}")))?;
    let len = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        Ok(m) => return Err(refuse(format!("not a regular file ({})", special_kind(m.file_type())))),
        Err(e) => return Err(refuse(format!("cannot read: {e}"))),
    };
    let limit = MAX_MANIFEST_BYTES as u64;
    let bytes = read_capped(file, len, limit).map_err(|e| refuse(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(refuse(format!("larger than the limit of {limit} bytes")));
    }
    Ok(Some(bytes))
}

/// A device and inode: what a file or directory is, whatever path leads to it.
fn identity(m: &Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// What an entry that is neither a regular file, a directory nor a symbolic link is.
fn special_kind(t: std::fs::FileType) -> &'static str {
    if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "unknown kind"
    }
}

/// `dir/name` as a bundle-relative path.
fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() { name.to_owned() } else { format!("{rel}/{name}") }
}

/// A symbolic link met in a folder, resolved after the real tree: its path, bundle-relative path and
/// folder depth.
type Link = (PathBuf, String, usize);

/// One read of a bundle directory.
struct Walk {
    /// Canonical path of the bundle root.
    root: PathBuf,
    files: Vec<BundleFile>,
    problems: Vec<Problem>,
    /// What was read already, by (device, inode), with the bundle-relative path it was read as.
    visited: HashMap<(u64, u64), String>,
    links: VecDeque<Link>,
    /// Directory entries seen (hidden ones included: reading them takes time too).
    entries: usize,
    /// Bytes read.
    bytes: usize,
    /// A bundle-wide limit was hit: stop.
    stopped: bool,
}

impl Walk {
    fn new(root: PathBuf) -> Walk {
        Walk {
            root,
            files: Vec::new(),
            problems: Vec::new(),
            visited: HashMap::new(),
            links: VecDeque::new(),
            entries: 0,
            bytes: 0,
            stopped: false,
        }
    }

    fn problem(&mut self, rel: &str, message: impl Into<String>) {
        let file = if rel.is_empty() { ".".to_owned() } else { rel.to_owned() };
        self.problems.push(Problem { file, field: String::new(), message: message.into() });
    }

    /// Marks `m` as read as `rel`; false (and a problem) when it was read already.
    fn first_visit(&mut self, m: &Metadata, rel: &str) -> bool {
        match self.visited.get(&identity(m)) {
            Some(first) => {
                let message = format!("a second path to `{first}`: every file and directory is read once");
                self.problem(rel, message);
                false
            }
            None => {
                self.visited.insert(identity(m), rel.to_owned());
                true
            }
        }
    }

    /// Reads the folder at `path` (bundle-relative `rel`, `depth` folders deep): regular files and
    /// folders now, links queued.
    fn dir(&mut self, path: &Path, rel: &str, depth: usize) {
        let iter = match std::fs::read_dir(path) {
            Ok(it) => it,
            Err(e) => return self.problem(rel, format!("cannot read directory: {e}")),
        };
        let mut entries = Vec::new();
        for entry in iter {
            self.entries += 1;
            if self.entries > load::MAX_FILES {
                self.problem("", format!("more than {} files and folders: the limit of a bundle", load::MAX_FILES));
                self.stopped = true;
                return;
            }
            match entry {
                Ok(e) => entries.push(e),
                Err(e) => self.problem(rel, format!("cannot read directory: {e}")),
            }
        }
        entries.sort_by_cached_key(std::fs::DirEntry::file_name);
        for entry in entries {
            if self.stopped {
                return;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let rel = join(rel, &name);
            let path = entry.path();
            // `lstat`: the entry itself, never what a link points at.
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    self.problem(&rel, format!("cannot read: {e}"));
                    continue;
                }
            };
            let kind = meta.file_type();
            if kind.is_symlink() {
                self.links.push_back((path, rel, depth));
            } else {
                self.entry(&path, &rel, depth, &meta);
            }
        }
    }

    /// A regular file, folder or special file at `path` (no link), whose `lstat` is `meta`.
    fn entry(&mut self, path: &Path, rel: &str, depth: usize, meta: &Metadata) {
        let kind = meta.file_type();
        if kind.is_dir() {
            if depth >= MAX_DIR_DEPTH {
                self.problem(rel, format!("folders nested deeper than {MAX_DIR_DEPTH} levels"));
            } else if self.first_visit(meta, rel) {
                self.dir(path, rel, depth + 1);
            }
        } else if kind.is_file() {
            if self.first_visit(meta, rel) {
                self.file(path, rel, meta.len());
            }
        } else {
            self.problem(rel, format!("not a regular file ({})", special_kind(kind)));
        }
    }

    /// Follows a link when its canonical target is inside the bundle root.
    fn link(&mut self, (path, rel, depth): Link) {
        let target = match std::fs::canonicalize(&path) {
            Ok(t) => t,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return self.problem(&rel, "symbolic link loop"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let to = std::fs::read_link(&path).map(|t| t.display().to_string()).unwrap_or_default();
                return self.problem(&rel, format!("symbolic link to nothing (`{to}`)"));
            }
            Err(e) => return self.problem(&rel, format!("cannot resolve symbolic link: {e}")),
        };
        if !target.starts_with(&self.root) {
            return self.problem(&rel, format!("symbolic link leads outside the bundle (to `{}`)", target.display()));
        }
        // The canonical path has no link in it: `lstat` sees the target itself.
        match std::fs::symlink_metadata(&target) {
            Ok(meta) => self.entry(&target, &rel, depth, &meta),
            Err(e) => self.problem(&rel, format!("cannot read: {e}")),
        }
    }

    /// Reads the regular file at `path` (no link), of `len` bytes according to `lstat`.
    fn file(&mut self, path: &Path, rel: &str, len: u64) {
        let limit = load::MAX_FILE_BYTES as u64;
        if len > limit {
            return self.problem(rel, format!("file of {len} bytes exceeds the limit of {limit}"));
        }
        // Non-blocking and without following a link: an entry swapped for a FIFO or a link since the
        // `lstat` above neither blocks the load nor leads elsewhere; `fstat` then says what was opened.
        let opened = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(path);
        let file = match opened {
            Ok(f) => f,
            Err(e) => return self.problem(rel, format!("cannot read: {e}")),
        };
        let len = match file.metadata() {
            Ok(m) if m.is_file() => m.len(),
            Ok(m) => return self.problem(rel, format!("not a regular file ({})", special_kind(m.file_type()))),
            Err(e) => return self.problem(rel, format!("cannot read: {e}")),
        };
        let bytes = match read_capped(file, len, limit) {
            Ok(b) => b,
            Err(e) => return self.problem(rel, format!("cannot read: {e}")),
        };
        if bytes.len() as u64 > limit {
            return self.problem(rel, format!("file grew past the limit of {limit} bytes while it was read"));
        }
        self.bytes += bytes.len();
        if self.bytes > load::MAX_BUNDLE_BYTES {
            self.problem(
                "",
                format!("the files exceed {} bytes in all: the limit of a bundle", load::MAX_BUNDLE_BYTES),
            );
            self.stopped = true;
            return;
        }
        self.files.push((rel.to_owned(), bytes));
    }
}

/// Reads at most `limit + 1` bytes: enough to tell that a file is over `limit`, never more, whatever
/// its size said (`len`, from `fstat`, only sizes the buffer).
fn read_capped(file: impl Read, len: u64, limit: u64) -> std::io::Result<Vec<u8>> {
    let cap = usize::try_from(len.min(limit).saturating_add(1)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(cap);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_stops_one_byte_past_the_limit_whatever_the_source() {
        // An endless source (like `/dev/zero`, or a file growing under the reader).
        let bytes = read_capped(std::io::repeat(0), 0, 1_000).unwrap_or_default();
        assert_eq!(bytes.len(), 1_001);
        let bytes = read_capped(&b"short"[..], 5, 1_000).unwrap_or_default();
        assert_eq!(bytes, b"short");
    }

    #[test]
    fn a_special_file_opened_by_mistake_is_named() {
        let kind = std::fs::symlink_metadata("/dev/null").map(|m| special_kind(m.file_type())).unwrap_or("");
        assert_eq!(kind, "character device");
    }
}
