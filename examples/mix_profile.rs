//! Per-request latency of the default bundle's test requests (uncached, single thread), slowest
//! first: `cargo run --release --example mix_profile` (`ONLY=name` filters, `N=iterations`). A tool for
//! finding where engine time goes; the numbers of record come from `cargo bench --bench engine`.
#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a developer tool: a panic is a failed run, reported with its message"
)]
use warden::{engine, grpc::convert, proto};

fn main() {
    let b = warden::runtime::files::read_dir(std::path::Path::new("policies")).expect("default bundle");
    let only = std::env::var("ONLY").ok();
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let mut rows = vec![];
    for t in &b.tests {
        if only.as_ref().is_some_and(|f| !t.name.contains(f.as_str())) {
            continue;
        }
        let Some(r) = t.body.get("authorize") else { continue };
        let r: proto::AuthorizeRequest = serde_json::from_value(r.clone()).expect("request");
        let Ok(r) = convert::request_from_proto(r, 1_767_225_600_000) else {
            continue;
        };
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(engine::authorize(&b, std::hint::black_box(&r)));
        }
        rows.push((t0.elapsed().as_nanos() as f64 / n as f64, t.name.clone()));
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    if rows.is_empty() {
        return;
    }
    let mean = rows.iter().map(|r| r.0).sum::<f64>() / rows.len() as f64;
    let mut sorted: Vec<f64> = rows.iter().map(|r| r.0).collect();
    sorted.sort_by(f64::total_cmp);
    println!("{} requests: mean {mean:.0} ns, median {:.0} ns", rows.len(), sorted[sorted.len() / 2]);
    for (ns, name) in rows.iter().take(10) {
        println!("{ns:8.0} ns  {name}");
    }
}
