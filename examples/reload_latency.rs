//! Time from a policy file write to the first answer from the new revision (issue #5, SPEC §8 "Reload"):
//!
//!     cargo build --release --bin warden --example reload_latency
//!     target/release/examples/reload_latency [--rounds 20] [--poll-interval MS] [--bin target/release/warden]
//!         [--bundle DIR]     # a copy of DIR instead of policies/ (e.g. a gen_bundle output)
//!
//! Starts `warden serve --bundle <temporary copy of policies/>` on free loopback ports (gRPC and admin),
//! waits until it answers, then `--rounds` times: waits a pseudo-random 150–450 ms, rewrites
//! `iam/policies/SageMakerPartnerAppUserPolicy.json` (write a hidden temporary file in the same directory,
//! then rename it over the policy) alternately adding and removing a Deny of the request's action, and
//! calls `Authorize` back to back on one connection (`bench/requests/allow_presign.json`, ALLOW before
//! the first change) until an answer carries a different `bundle_revision`. The latency is from just
//! before the write to that answer; the answer's decision must be the flipped one. Any failed call is
//! counted (there must be none). Prints min / median / p90 / max and one line per round.
#![expect(clippy::indexing_slicing, reason = "a developer tool: a panic is a failed run, reported with its message")]
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use warden::proto::authorizer_client::AuthorizerClient;
use warden::proto::{AuthorizeRequest, Decision};

#[expect(dead_code, reason = "shared with the benches, which use only part of it")]
#[path = "gen_bundle.rs"]
mod gen_bundle;
use gen_bundle::copy_dir;

const POLICY: &str = "iam/policies/SageMakerPartnerAppUserPolicy.json";

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The policy with one more statement: an explicit Deny of the probe request's action.
fn with_deny(original: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut v: serde_json::Value = serde_json::from_slice(original)?;
    let stmts = v
        .pointer_mut("/PolicyDocument/Statement")
        .and_then(serde_json::Value::as_array_mut)
        .ok_or("the policy has no PolicyDocument.Statement array")?;
    stmts.push(serde_json::json!({"Sid": "ReloadProbe", "Effect": "Deny",
        "Action": "sagemaker:CreatePartnerAppPresignedUrl", "Resource": "*"}));
    Ok(serde_json::to_vec_pretty(&v)?)
}

fn write_then_rename(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(".reload-probe.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, target)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Args {
    rounds: usize,
    poll_interval: Option<u64>,
    bin: PathBuf,
    bundle: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args { rounds: 20, poll_interval: None, bin: PathBuf::from("target/release/warden"), bundle: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next();
        match (flag.as_str(), val) {
            ("--rounds", Some(v)) if v.parse::<usize>().is_ok_and(|n| n > 0) => a.rounds = v.parse().unwrap_or(20),
            ("--poll-interval", Some(v)) if v.parse::<u64>().is_ok() => a.poll_interval = v.parse().ok(),
            ("--bin", Some(v)) => a.bin = PathBuf::from(v),
            ("--bundle", Some(v)) => a.bundle = Some(PathBuf::from(v)),
            _ => {
                eprintln!("usage: reload_latency [--rounds N] [--poll-interval MS] [--bin PATH] [--bundle DIR]");
                std::process::exit(64);
            }
        }
    }
    a
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir()?;
    let bundle = tmp.path().join("policies");
    copy_dir(a.bundle.as_deref().unwrap_or(&root.join("policies")), &bundle)?;
    let (grpc_port, admin_port) = (free_port()?, free_port()?);
    let mut cmd = Command::new(&a.bin);
    cmd.arg("serve")
        .arg("--bundle")
        .arg(&bundle)
        .args(["--listen", &format!("127.0.0.1:{grpc_port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("server.log"))?);
    if let Some(ms) = a.poll_interval {
        cmd.args(["--poll-interval", &ms.to_string()]);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", a.bin.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = rt.block_on(measure(&a, &bundle, grpc_port));
    // SIGTERM the server we started (by its pid), then reap it.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait()?;
    if result.is_err() {
        eprintln!("server log:\n{}", std::fs::read_to_string(tmp.path().join("server.log")).unwrap_or_default());
    }
    result?;
    println!("server exit: {status}");
    Ok(())
}

async fn measure(a: &Args, bundle: &Path, port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let req_json =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/requests/allow_presign.json"))?;
    let req: AuthorizeRequest = serde_json::from_str(&req_json)?;
    // Connect and wait until the first bundle is active.
    let started = Instant::now();
    let mut client = loop {
        if started.elapsed() > Duration::from_secs(15) {
            return Err("the server did not answer within 15 s".into());
        }
        if let Ok(mut c) = AuthorizerClient::connect(format!("http://127.0.0.1:{port}")).await
            && c.authorize(req.clone()).await.is_ok()
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let first = client.authorize(req.clone()).await?.into_inner();
    if first.decision() != Decision::Allow {
        return Err(format!("the probe request is not allowed at start: {:?}", first.decision()).into());
    }
    let target = bundle.join(POLICY);
    let dir = target.parent().ok_or("policy path")?.to_path_buf();
    let original = std::fs::read(&target)?;
    let denied = with_deny(&original)?;
    let mut revision = first.bundle_revision;
    let mut lat_ms = Vec::new();
    let (mut failed, mut total_calls, mut wrong) = (0usize, 0usize, 0usize);
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mode =
        a.poll_interval.map_or("inotify watcher (debounce 50 ms)".to_owned(), |ms| format!("--poll-interval {ms}"));
    println!("reload latency, {mode}, {} rounds", a.rounds);
    for round in 0..a.rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 300)).await;
        let deny = round % 2 == 0;
        let expect = if deny { Decision::ExplicitDeny } else { Decision::Allow };
        let t0 = Instant::now();
        write_then_rename(&dir, &target, if deny { &denied } else { &original })?;
        let mut calls = 0usize;
        let answer = loop {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(format!("round {round}: no new revision within 10 s").into());
            }
            calls += 1;
            match client.authorize(req.clone()).await {
                Ok(r) => {
                    let r = r.into_inner();
                    if r.bundle_revision != revision {
                        break r;
                    }
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("round {round}: call failed: {e}");
                }
            }
        };
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        total_calls += calls;
        if answer.decision() != expect {
            wrong += 1;
        }
        println!("round {round:2}: {ms:7.1} ms  {} calls  {:?} (expected {:?})", calls, answer.decision(), expect);
        lat_ms.push(ms);
        revision = answer.bundle_revision;
    }
    // Leave the copy as it started.
    if a.rounds % 2 == 1 {
        write_then_rename(&dir, &target, &original)?;
    }
    let mut s = lat_ms.clone();
    s.sort_by(f64::total_cmp);
    println!(
        "write -> first answer of the new revision ({} rounds): min {:.1} ms, median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        s.len(),
        s[0],
        percentile(&s, 0.5),
        percentile(&s, 0.9),
        s[s.len() - 1]
    );
    println!("calls: {total_calls}, failed: {failed}, wrong decision on the new revision: {wrong}");
    if failed > 0 || wrong > 0 {
        return Err("failed calls or wrong decisions".into());
    }
    Ok(())
}
