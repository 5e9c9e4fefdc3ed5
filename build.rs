//! Compiles `proto/warden/v1/warden.proto` in pure Rust (protox; no system protoc), writes the
//! encoded descriptor set for server reflection, and generates the tonic/prost code.
use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=policies");
    embed_policies()?;
    git_revision();
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_file("warden/v1/warden.proto")?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // prost-build never writes the descriptor set on the fds path, so it is written here.
    let descriptor = compiler.encode_file_descriptor_set();
    fs::write(out.join("warden_descriptor.bin"), &descriptor)?;
    let fds = compiler.file_descriptor_set();
    // Well-known types come from pbjson-types so that every message has the proto3 JSON mapping
    // (`warden eval` reads and writes requests and responses as JSON).
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Undecodable requests are INVALID_ARGUMENT (src/grpc/codec.rs), not tonic-prost's INTERNAL.
        .codec_path("crate::grpc::codec::WardenCodec")
        .extern_path(".google.protobuf.Struct", "::pbjson_types::Struct")
        .extern_path(".google.protobuf.Value", "::pbjson_types::Value")
        .extern_path(".google.protobuf.ListValue", "::pbjson_types::ListValue")
        .extern_path(".google.protobuf.Timestamp", "::pbjson_types::Timestamp")
        .compile_fds(fds)?;
    pbjson_build::Builder::new().register_descriptors(&descriptor)?.build(&[".warden.v1"])?;
    envoy_ext_authz(&out)?;
    Ok(())
}

/// Envoy's `envoy.service.auth.v3.Authorization` (SPEC §9): the descriptor set for reflection and the
/// server trait, compiled from the protos vendored under `proto/third_party` (copied from the
/// `envoy-types` crate, Apache-2.0). Every message type is `envoy-types`' own (extern paths): only the
/// service is generated here, so that it uses Warden's codec (undecodable bytes: INVALID_ARGUMENT).
fn envoy_ext_authz(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut compiler = protox::Compiler::new(["proto/third_party"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_file("envoy/service/auth/v3/external_auth.proto")?;
    fs::write(out.join("envoy_ext_authz_descriptor.bin"), compiler.encode_file_descriptor_set())?;
    let dir = out.join("envoy");
    fs::create_dir_all(&dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&dir)
        .codec_path("crate::grpc::codec::WardenCodec")
        .extern_path(".envoy", "::envoy_types::pb::envoy")
        .extern_path(".google", "::envoy_types::pb::google")
        .extern_path(".udpa", "::envoy_types::pb::udpa")
        .extern_path(".validate", "::envoy_types::pb::validate")
        .extern_path(".xds", "::envoy_types::pb::xds")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

/// Writes `$OUT_DIR/embedded_policies.rs`: the default bundle `policies/` as (path, bytes) pairs.
fn embed_policies() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("policies");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        if !dir.is_dir() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", dir.display());
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                println!("cargo:rerun-if-changed={}", path.display());
                let rel = path.strip_prefix(&root)?.to_string_lossy().replace('\\', "/");
                files.push((rel, path.display().to_string()));
            }
        }
    }
    files.sort();
    let mut out =
        String::from("/// The default bundle, embedded at build time.\npub static EMBEDDED: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in files {
        out.push_str(&format!("    ({rel:?}, include_bytes!({abs:?})),\n"));
    }
    out.push_str("];\n");
    fs::write(PathBuf::from(env::var("OUT_DIR")?).join("embedded_policies.rs"), out)?;
    Ok(())
}

/// `WARDEN_GIT_REVISION` for `warden_build_info`: the commit being built (12 hex digits), or `unknown` outside a git checkout (a source tarball, a container build context).
fn git_revision() {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let rev = match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(r) if !r.is_empty() => r,
        _ => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=WARDEN_GIT_REVISION={rev}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
}
