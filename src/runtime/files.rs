//! The bundle file reader: the only place a bundle directory is read (sync `std::fs`), plus the default
//! bundle compiled into the binary. Building the bundle from the bytes is `warden_core::bundle`'s.
use std::path::Path;
use warden_core::bundle::{Bundle, BundleFile, from_files, load};
use warden_core::policy::Problem;

include!(concat!(env!("OUT_DIR"), "/embedded_policies.rs"));

/// The default bundle compiled into the binary (`policies/` of the repository).
pub fn embedded_files() -> Vec<(String, Vec<u8>)> {
    EMBEDDED.iter().map(|(p, b)| ((*p).to_owned(), b.to_vec())).collect()
}

/// Loads the embedded default bundle.
pub fn embedded() -> Result<Bundle, Vec<Problem>> {
    from_files(embedded_files())
}

/// Reads every file of a bundle directory: follows symlinks, skips hidden names (`..data`,
/// `..2024_…` of Kubernetes ConfigMaps), refuses files over the size limit without reading them.
/// Returns the files read and the problems met; a file over the size limit is a problem, and the
/// other files are still read (so that every problem of the bundle is reported at once).
pub fn read_files(root: &Path) -> Result<(Vec<BundleFile>, Vec<Problem>), Vec<Problem>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut total = 0usize;
    let meta = std::fs::metadata(root);
    if !meta.as_ref().is_ok_and(std::fs::Metadata::is_dir) {
        let why = match meta {
            Err(e) => e.to_string(),
            Ok(_) => "not a directory".to_owned(),
        };
        return Err(vec![Problem {
            file: root.display().to_string(),
            field: String::new(),
            message: format!("cannot read bundle directory: {why}"),
        }]);
    }
    let mut stack = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, rel, depth)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                problems.push(Problem {
                    file: display(&rel),
                    field: String::new(),
                    message: format!("cannot read directory: {e}"),
                });
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let rel_path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let path = entry.path();
            let Ok(md) = std::fs::metadata(&path) else {
                problems.push(Problem {
                    file: rel_path,
                    field: String::new(),
                    message: "cannot read (dangling symlink?)".into(),
                });
                continue;
            };
            if md.is_dir() {
                if depth >= 8 {
                    problems.push(Problem {
                        file: rel_path,
                        field: String::new(),
                        message: "directories nested too deep".into(),
                    });
                } else {
                    stack.push((path, rel_path, depth + 1));
                }
                continue;
            }
            if md.len() > load::MAX_FILE_BYTES as u64 {
                problems.push(Problem {
                    file: rel_path,
                    field: String::new(),
                    message: format!("file of {} bytes exceeds the limit of {}", md.len(), load::MAX_FILE_BYTES),
                });
                continue;
            }
            total += md.len() as usize;
            if total > load::MAX_BUNDLE_BYTES || out.len() >= load::MAX_FILES {
                problems.push(Problem {
                    file: display(&rel),
                    field: String::new(),
                    message: "the bundle exceeds its size limits".into(),
                });
                return Err(problems);
            }
            match std::fs::read(&path) {
                Ok(b) => out.push((rel_path, b)),
                Err(e) => problems.push(Problem {
                    file: rel_path,
                    field: String::new(),
                    message: format!("cannot read: {e}"),
                }),
            }
        }
    }
    Ok((out, problems))
}

fn display(rel: &str) -> String {
    if rel.is_empty() { ".".to_owned() } else { rel.to_owned() }
}

/// Reads and builds the bundle in `root`.
pub fn read_dir(root: &Path) -> Result<Bundle, Vec<Problem>> {
    let (files, mut problems) = read_files(root)?;
    let built = from_files(files);
    if problems.is_empty() {
        return built;
    }
    if let Err(more) = built {
        problems.extend(more);
    }
    problems.sort();
    problems.dedup();
    Err(problems)
}
