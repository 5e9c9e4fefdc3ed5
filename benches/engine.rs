//! Engine benchmarks (criterion, single thread, uncached): the default bundle's request mix (every
//! `authorize` case of `policies/tests/`), against a baseline measured in the same run: the same
//! engine on a one-statement allow-all bundle (the floor of one decision).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a benchmark: a panic is a failed run, reported with its message"
)]
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use warden::bundle;
use warden::engine::{self, Request};
use warden::grpc::convert;

const NOW_MS: i64 = 1_767_225_600_000;

fn mix(b: &bundle::Bundle) -> Vec<Request> {
    convert::test_case_requests(b, NOW_MS)
}

fn floor_bundle() -> bundle::Bundle {
    let user = serde_json::json!({"UserName": "alice", "Arn": "arn:aws:iam::111122223333:user/alice",
        "UserPolicyList": [{"PolicyName": "All", "PolicyDocument": {"Version": "2012-10-17",
            "Statement": [{"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}]}}]});
    bundle::from_files(vec![("iam/users/alice.json".into(), serde_json::to_vec(&user).unwrap())]).unwrap()
}

fn bench(c: &mut Criterion) {
    let default = warden::runtime::files::read_dir(std::path::Path::new("policies")).expect("default bundle");
    let reqs = mix(&default);
    assert!(reqs.len() >= 40, "request mix too small: {}", reqs.len());
    let floor = floor_bundle();
    let floor_req = Request {
        principal: "arn:aws:iam::111122223333:user/alice".into(),
        action: "sagemaker:CreatePartnerAppPresignedUrl".into(),
        resource: "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-ABCDEF123456".into(),
        now_ms: NOW_MS,
        ..Request::default()
    };
    let mut g = c.benchmark_group("engine");
    g.bench_function("baseline_allow_all_one_statement", |b| {
        b.iter(|| engine::authorize(black_box(&floor), black_box(&floor_req)))
    });
    let n = reqs.len();
    let mut i = 0usize;
    g.bench_function("default_bundle_mix_uncached", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            engine::authorize(black_box(&default), black_box(&reqs[i]))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
