//! The layering rules, kept by the compiler's inputs rather than by convention:
//! - `warden-core` depends (transitively) on none of tokio, tonic, prost, axum, hyper, notify, metrics
//!   (read from `cargo metadata`, so adding one to its `Cargo.toml` fails here);
//! - the core does no file, clock or socket I/O;
//! - the root crate's modules import one way, `cli → server → grpc → runtime → core`, and the module
//!   pairs that used to import each other (`reload ↔ server`, `policy::document ↔ policy::index`) don't.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const BANNED_IN_CORE: [&str; 7] = ["tokio", "tonic", "prost", "axum", "hyper", "notify", "metrics"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn is_test_file(p: &Path) -> bool {
    p.file_stem().and_then(|n| n.to_str()).is_some_and(|n| n == "tests" || n.ends_with("_tests"))
}

/// The non-test part of a source file (everything before a trailing `#[cfg(test)]` module).
fn production_text(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The names of the packages `package` depends on through normal (non-dev, non-build) edges,
/// transitively, from `cargo metadata`.
fn normal_dependency_closure(package: &str) -> BTreeSet<String> {
    // Only the host's dependencies: `cargo metadata` for every platform needs crates that were never
    // downloaded (it runs offline, after the build fetched what this machine needs).
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline", "--filter-platform", &host, "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: BTreeMap<&str, &serde_json::Value> =
        meta["resolve"]["nodes"].as_array().unwrap().iter().map(|n| (n["id"].as_str().unwrap(), n)).collect();
    let start = names.iter().find(|(_, n)| **n == package).map(|(id, _)| *id).expect("package in metadata");
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(names[dep_id].to_owned()) {
                stack.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn core_depends_on_no_async_wire_or_telemetry_crate() {
    let closure = normal_dependency_closure("warden-core");
    assert!(closure.contains("serde_json"), "the closure is read correctly: {closure:?}");
    let hits: Vec<&String> = closure
        .iter()
        .filter(|name| BANNED_IN_CORE.iter().any(|b| *name == b || name.starts_with(&format!("{b}-"))))
        .collect();
    assert!(hits.is_empty(), "warden-core must stay pure, but depends on {hits:?}");
}

#[test]
fn core_does_no_io_and_reads_no_clock() {
    let mut hits = Vec::new();
    for file in rust_files(&root().join("crates/warden-core/src")) {
        if is_test_file(&file) {
            continue;
        }
        let text = production_text(&file);
        for b in [
            "std::fs",
            "File::",
            "SystemTime::now",
            "Instant::now",
            "Utc::now",
            "TcpStream",
            "TcpListener",
            "UdpSocket",
            "std::env::var",
        ] {
            if text.contains(b) {
                hits.push(format!("{}: mentions `{b}`", file.display()));
            }
        }
    }
    assert!(hits.is_empty(), "{}", hits.join("\n"));
}

/// The top-level module a file of the root crate belongs to (`src/grpc/convert.rs` → `grpc`).
fn top_module(file: &Path) -> String {
    let rel = file.strip_prefix(root().join("src")).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The crate-internal modules a file imports (`crate::runtime::store` → `runtime`).
fn imports(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

#[test]
fn root_crate_modules_import_one_way() {
    // Rank: a module may import only modules of a lower rank (and itself). `config`, `proto` and
    // `telemetry` are leaves that any layer above them may use.
    let rank: BTreeMap<&str, u8> = [
        ("config", 0),
        ("proto", 0),
        ("telemetry", 1),
        // The AWS SDK configuration (feature `aws`): a leaf used by the runtime's S3 and DynamoDB stores.
        ("aws", 1),
        ("runtime", 2),
        ("grpc", 3),
        ("server", 4),
        ("cli", 5),
        ("main", 6),
        ("lib", 6),
    ]
    .into_iter()
    .collect();
    let mut hits = Vec::new();
    for file in rust_files(&root().join("src")) {
        let from = top_module(&file);
        let Some(&r) = rank.get(from.as_str()) else {
            hits.push(format!("{}: module `{from}` has no rank in this test", file.display()));
            continue;
        };
        let text = production_text(&file);
        for to in imports(&text, "crate::") {
            let Some(&t) = rank.get(to.as_str()) else { continue };
            // The generated code of `proto` names the codec in `grpc::codec`: one layer, two modules.
            let generated_pair = matches!((from.as_str(), to.as_str()), ("proto", "grpc") | ("grpc", "proto"));
            if to != from && t >= r && !generated_pair {
                hits.push(format!("{}: `{from}` imports `{to}`", file.display()));
            }
        }
    }
    assert!(hits.is_empty(), "{}", hits.join("\n"));
}

#[test]
fn runtime_modules_do_not_import_the_server() {
    // The old cycle: `reload` imported `server::Shared` while `server` spawned `reload`.
    for file in rust_files(&root().join("src/runtime")) {
        let text = production_text(&file);
        for banned in ["crate::server", "crate::grpc", "crate::cli"] {
            assert!(!text.contains(banned), "{} mentions `{banned}`", file.display());
        }
    }
}

#[test]
fn policy_modules_have_no_import_cycle() {
    // Module graph inside `policy`: an edge a → b when `policy/a.rs` names `policy::b` or `super::b`.
    let dir = root().join("crates/warden-core/src/policy");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&dir) {
        if is_test_file(&file) {
            continue;
        }
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = production_text(&file);
        let mut to = imports(&text, "crate::policy::");
        to.extend(imports(&text, "super::"));
        to.remove(&name);
        graph.entry(name).or_default().extend(to);
    }
    assert!(graph.contains_key("document") && graph.contains_key("index"), "{graph:?}");
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(1) => {
                let at = path.iter().position(|p| p == n).unwrap();
                let mut cycle = path[at..].to_vec();
                cycle.push(n.to_owned());
                return Some(cycle);
            }
            Some(_) => return None,
            None => {}
        }
        state.insert(n.to_owned(), 1);
        path.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            if g.contains_key(m)
                && let Some(c) = visit(m, g, state, path)
            {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if let Some(cycle) = visit(n, &graph, &mut state, &mut Vec::new()) {
            panic!("import cycle in policy: {}", cycle.join(" → "));
        }
    }
}
