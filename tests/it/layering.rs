//! The evaluator stays pure (unit-test files excepted): `policy`, `engine` (and `bundle`, apart from its one `read_files`) use no
//! tokio, tonic, sockets or file I/O.
use std::path::{Path, PathBuf};

fn sources(module: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = vec![root.join(format!("{module}.rs"))];
    let mut stack = vec![root.join(module)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && !p.file_stem().and_then(|n| n.to_str()).is_some_and(|n| n == "tests" || n.ends_with("_tests"))
            {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn pure_modules_use_no_async_network_or_grpc() {
    let banned = [
        "tokio",
        "tonic",
        "crate::grpc",
        "crate::server",
        "crate::reload",
        "crate::proto",
        "TcpStream",
        "TcpListener",
        "UdpSocket",
    ];
    let mut hits = Vec::new();
    for module in ["policy", "engine", "bundle"] {
        for file in sources(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            for b in banned {
                if text.contains(b) {
                    hits.push(format!("{}: mentions `{b}`", file.display()));
                }
            }
        }
    }
    assert!(hits.is_empty(), "{}", hits.join("\n"));
}

#[test]
fn policy_and_engine_do_no_file_io() {
    let mut hits = Vec::new();
    for module in ["policy", "engine"] {
        for file in sources(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            for b in ["std::fs", "File::", "SystemTime::now", "Instant::now"] {
                if text.contains(b) {
                    hits.push(format!("{}: mentions `{b}`", file.display()));
                }
            }
        }
    }
    assert!(hits.is_empty(), "{}", hits.join("\n"));
}

#[test]
fn bundle_reads_files_in_one_place_only() {
    let mut count = 0;
    for file in sources("bundle") {
        let text = std::fs::read_to_string(&file).unwrap();
        count += text.matches("std::fs::read(").count();
        if !file.ends_with("bundle.rs") {
            assert!(!text.contains("std::fs"), "{} uses std::fs", file.display());
        }
    }
    assert_eq!(count, 1, "bundle reads files in exactly one function");
}
