//! Runtime benchmarks of issue #5 (criterion, single thread), each against a baseline of the same run:
//!
//! - `cache`: `DecisionCache::get_or_evaluate` on a warm cache over the default bundle's request mix
//!   (every `authorize` case of `policies/tests/`, cycled), against the uncached `engine::authorize`
//!   of the same mix.
//! - `load`: `bundle::read_dir` of a generated 10,000-policy bundle (`examples/gen_bundle.rs`: the
//!   default bundle plus 10,000 policies), against loading the default bundle (the loaded bundle is
//!   dropped outside the timing; the drop of the large bundle is timed apart and printed).
//! - `big_bundle`: the same uncached request mix on the generated bundle, against the default bundle.
//!
//! `cargo bench --bench runtime` (`WARDEN_GEN_N` changes the number of generated policies).
#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a benchmark: a panic is a failed run, reported with its message"
)]
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;
use warden::bundle;
use warden::engine::{self, Request};
use warden::grpc::convert;
use warden::runtime::cache::DecisionCache;

#[expect(dead_code, reason = "shared with the benches, which use only part of it")]
#[path = "../examples/gen_bundle.rs"]
mod gen_bundle;

const NOW_MS: i64 = 1_767_225_600_000;

fn mix(b: &bundle::Bundle) -> Vec<Request> {
    convert::test_case_requests(b, NOW_MS)
}

fn bench(c: &mut Criterion) {
    let default_dir = Path::new("policies");
    let default = warden::runtime::files::read_dir(default_dir).expect("default bundle");
    let reqs = mix(&default);
    assert!(reqs.len() >= 40, "request mix too small: {}", reqs.len());
    let n = reqs.len();

    // 1. Cached vs uncached decisions over the mix.
    let cache = DecisionCache::new(cache_capacity());
    for r in &reqs {
        cache.get_or_evaluate(&default, r, engine::authorize);
    }
    let cached = reqs.iter().filter(|r| cache.get_or_evaluate(&default, r, engine::authorize).1).count();
    eprintln!("runtime: mix of {n} requests, {cached} answered from the warm cache (others read the time)");
    let mut g = c.benchmark_group("cache");
    let mut i = 0usize;
    g.bench_function("baseline_default_mix_uncached", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            engine::authorize(black_box(&default), black_box(&reqs[i]))
        })
    });
    let mut i = 0usize;
    g.bench_function("default_mix_cached_warm", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            cache.get_or_evaluate(black_box(&default), black_box(&reqs[i]), engine::authorize)
        })
    });
    g.finish();

    // 2. Loading a 10,000-policy bundle vs the default one.
    let gen_n: usize = std::env::var("WARDEN_GEN_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let big_dir = tmp.path().join("bundle");
    gen_bundle::generate(default_dir, &big_dir, gen_n).expect("generating the large bundle");
    let rss_before = rss_kib();
    let big = warden::runtime::files::read_dir(&big_dir).expect("generated bundle is valid");
    eprintln!(
        "runtime: generated bundle: {} policies, {} statements, {} roles, {} users, {} SCPs; RSS +{} MiB",
        big.counts.policies,
        big.counts.statements,
        big.counts.roles,
        big.counts.users,
        big.counts.scps,
        rss_kib().saturating_sub(rss_before) / 1024
    );
    // Dropping a large bundle is not free either (the server drops the replaced one): timed apart.
    let mut drops: Vec<f64> = (0..5)
        .map(|_| {
            let b = warden::runtime::files::read_dir(&big_dir).expect("generated bundle");
            let t = std::time::Instant::now();
            drop(black_box(b));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    drops.sort_by(f64::total_cmp);
    eprintln!(
        "runtime: dropping the generated bundle: median {:.1} ms (min {:.1}, max {:.1}, 5 runs)",
        drops[2], drops[0], drops[4]
    );
    let mut g = c.benchmark_group("load");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    // The loaded bundle is dropped outside the timed section (`iter_with_large_drop`).
    g.bench_function("baseline_default_bundle", |b| {
        b.iter_with_large_drop(|| warden::runtime::files::read_dir(black_box(default_dir)).expect("default bundle"))
    });
    g.measurement_time(Duration::from_secs(5));
    g.bench_function(format!("generated_{gen_n}_policies"), |b| {
        b.iter_with_large_drop(|| warden::runtime::files::read_dir(black_box(&big_dir)).expect("generated bundle"))
    });
    g.finish();

    // 3. The same mix on the large bundle vs the default one (uncached).
    let big_reqs = mix(&big);
    assert_eq!(big_reqs.len(), n, "the generated bundle carries the default tests");
    for (r, q) in reqs.iter().zip(&big_reqs) {
        assert_eq!(
            engine::authorize(&default, r).decision,
            engine::authorize(&big, q).decision,
            "the generated policies must not change the mix's decisions"
        );
    }
    let mut g = c.benchmark_group("big_bundle");
    let mut i = 0usize;
    g.bench_function("baseline_default_bundle_mix", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            engine::authorize(black_box(&default), black_box(&reqs[i]))
        })
    });
    let mut i = 0usize;
    g.bench_function(format!("generated_{gen_n}_policies_mix"), |b| {
        b.iter(|| {
            i = (i + 1) % n;
            engine::authorize(black_box(&big), black_box(&big_reqs[i]))
        })
    });
    g.finish();
}

fn cache_capacity() -> usize {
    warden::runtime::cache::DEFAULT_CAPACITY
}

/// Resident memory of this process (KiB), 0 if unknown.
fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

criterion_group!(benches, bench);
criterion_main!(benches);
