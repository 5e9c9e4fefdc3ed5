//! Measures Warden's bounds under attack (SPEC §8, issue 9) against a running server, each as a ratio
//! against a baseline measured in the same run:
//! - **worst valid request**: server CPU per call (utime + stime of the server process from
//!   `/proc/PID/stat`, divided by calls) for the worst-case 2,048-character resources against the default
//!   bundle, each call distinct (no cache hits), vs. an ordinary allow request;
//! - **large distinct requests**: server RSS before and after 1,500 distinct ~400 KB `Authorize` requests
//!   (100 context values of 4 KiB), vs. the idle RSS;
//! - **a well-behaved client's latency** (p50/p99 of sequential `Authorize` calls on its own connection)
//!   while each attack runs, vs. the same client on a quiet server.
//!
//! ```text
//! bench/attack.sh                                   # builds, starts the server, runs this, stops it
//! target/release/examples/attack --addr 127.0.0.1:50161 --pid PID
//! ```
//! Traffic goes to loopback only and every phase stops by itself.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a developer tool: a panic is a failed run, reported with its message"
)]
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use warden::proto::{self, authorizer_client::AuthorizerClient};

const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1";
const PRESIGN: &str = "sagemaker:CreatePartnerAppPresignedUrl";
const COMET_APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's /proc/PID/stat");
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// VmRSS of `pid`, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc/PID/status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

fn request(resource: &str, seq: u64, extra: usize) -> proto::AuthorizeRequest {
    let mut ctx: pbjson_types::Struct = [
        ("aws:SourceIp".to_owned(), pbjson_types::Value::from("10.100.10.7".to_owned())),
        ("warden:Seq".to_owned(), pbjson_types::Value::from(seq.to_string())),
    ]
    .into_iter()
    .collect();
    let filler = "x".repeat(4096);
    for i in 0..extra {
        ctx.fields.insert(format!("warden:Filler{i}"), pbjson_types::Value::from(filler.clone()));
    }
    proto::AuthorizeRequest {
        principal: Some(proto::Principal { arn: ALICE.into(), ..proto::Principal::default() }),
        action: PRESIGN.into(),
        resource: resource.into(),
        context: Some(ctx),
        ..proto::AuthorizeRequest::default()
    }
}

async fn client(addr: &str) -> AuthorizerClient<Channel> {
    let ch = Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.expect("connect");
    AuthorizerClient::new(ch).max_encoding_message_size(4 << 20)
}

/// A well-behaved client: sequential calls until `stop`, returning (p50, p99) in microseconds.
async fn bystander(addr: String, stop: Arc<AtomicBool>) -> (f64, f64, usize) {
    let mut c = client(&addr).await;
    let mut lat = Vec::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let t = Instant::now();
        c.authorize(request(COMET_APP, seq % 50, 0)).await.expect("the bystander is answered");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    (q(0.5), q(0.99), lat.len())
}

/// Runs `attack` while a bystander measures; returns the bystander's (p50, p99, calls).
async fn during<F: std::future::Future<Output = ()>>(addr: &str, attack: F) -> (f64, f64, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let b = tokio::spawn(bystander(addr.to_owned(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    attack.await;
    stop.store(true, Ordering::Relaxed);
    b.await.unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let addr = arg("--addr").unwrap_or_else(|| "127.0.0.1:50161".into());
    let pid: u32 = arg("--pid").expect("--pid PID of the server").parse().expect("a pid");
    let calls: u64 = arg("--calls").map_or(2000, |v| v.parse().unwrap());

    // Baseline bystander on a quiet server.
    let quiet = during(&addr, tokio::time::sleep(Duration::from_secs(3))).await;
    println!("bystander, quiet server: p50 {:.0} µs, p99 {:.0} µs ({} calls)", quiet.0, quiet.1, quiet.2);

    // 1. CPU per call: an ordinary allow vs. the worst valid shapes, every call distinct (cache misses).
    let mut c = client(&addr).await;
    let measure = |shape: String, base: u64| {
        let addr = addr.clone();
        async move {
            let mut c = client(&addr).await;
            let before = cpu_seconds(pid);
            for i in 0..calls {
                c.authorize(request(&shape, base + i, 0)).await.expect("answered");
            }
            (cpu_seconds(pid) - before) / calls as f64 * 1e6
        }
    };
    let baseline = measure(COMET_APP.to_owned(), 1_000_000).await;
    println!("server CPU per call, ordinary allow (baseline): {baseline:.1} µs");
    let shapes = [
        (
            "partner-app/app- + 995 × `:a`",
            format!("arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-{}", ":a".repeat(995)),
        ),
        ("2,030 × `:`", format!("arn:aws:sagemaker:{}", ":".repeat(2048 - 18))),
        ("s3 + 1,017 × `a:`", format!("arn:aws:s3:::{}", "a:".repeat(1017))),
        ("1,003 × `a/`", format!("arn:aws:sagemaker:us-east-1:111122223333:{}", "a/".repeat(1003))),
    ];
    let mut worst = 0.0f64;
    for (i, (name, shape)) in shapes.iter().enumerate() {
        let (per_call, by) = {
            let stop = Arc::new(AtomicBool::new(false));
            let b = tokio::spawn(bystander(addr.clone(), stop.clone()));
            let per_call = measure(shape.clone(), 2_000_000 * (i as u64 + 1)).await;
            stop.store(true, Ordering::Relaxed);
            (per_call, b.await.unwrap())
        };
        worst = worst.max(per_call);
        println!(
            "server CPU per call, {name} ({} chars): {per_call:.1} µs = {:.2}× baseline; bystander p99 {:.0} µs",
            shape.len(),
            per_call / baseline,
            by.1
        );
    }
    println!("worst valid request: {worst:.1} µs of server CPU per call (target ≤ 1,000 µs)");

    // 2. RSS after 1,500 distinct ~400 KB requests.
    let idle = rss_mib(pid);
    let by = during(&addr, async {
        for i in 0..1500u64 {
            c.authorize(request(COMET_APP, 10_000_000 + i, 100)).await.expect("a 400 KB request is answered");
        }
    })
    .await;
    let after = rss_mib(pid);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let settled = rss_mib(pid);
    println!(
        "RSS: {idle:.1} MiB before, {after:.1} MiB right after 1,500 distinct ~400 KB requests, {settled:.1} MiB \
         1.5 s later (target ≤ 64 MiB); bystander p99 meanwhile {:.0} µs (target ≤ 5,000 µs)",
        by.1
    );
}
