//! Hostile input (issue 9, SPEC §4.1, §7, §8): one test per attack measured on the old code. Each starts
//! the real server on 127.0.0.1:0, sends the attack through a real gRPC client, and asserts the status,
//! a bound on its cost, and that nothing was allowed. CPU bounds are process CPU time (user + system,
//! from `/proc/self/stat`) around the attack: other tests of this binary run concurrently, so the bounds
//! are generous (the old code took seconds; the benchmark in BENCHMARKS.md measures the real figures).
use crate::support::{self, parse_prometheus, sample_sum};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use warden::config::ServeConfig;
use warden::proto::{self, Decision, authorizer_client::AuthorizerClient};
use warden::server::{Options, Running};

const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1";
const PRESIGN: &str = "sagemaker:CreatePartnerAppPresignedUrl";
const COMET_APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001";

async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(90), body).await.expect("the test finishes within 90 s");
}

/// A started server on the default bundle.
struct Server {
    running: Running,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = support::temp_dir();
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let config = ServeConfig::from_flags(
            Some(policies.to_str().expect("a UTF-8 path")),
            Some("127.0.0.1:0"),
            None,
            Some("127.0.0.1:0"),
            Some(5_000),
        )
        .expect("valid flags");
        let running = Running::start(&config, Options::default()).await.expect("the server starts");
        let store = running.store.clone();
        tokio::time::timeout(Duration::from_secs(30), async {
            while store.load().is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the bundle becomes active");
        Server { running, _dir: dir }
    }

    async fn channel(&self) -> Channel {
        let addr = self.running.grpc_addr.expect("a TCP listener");
        Endpoint::from_shared(format!("http://{addr}")).expect("endpoint").connect().await.expect("connects")
    }

    async fn client(&self) -> AuthorizerClient<Channel> {
        AuthorizerClient::new(self.channel().await).max_encoding_message_size(8 << 20)
    }

    async fn metrics(&self) -> Vec<support::Sample> {
        let answer = support::http_get(self.running.admin_addr.expect("admin"), "/metrics").await;
        parse_prometheus(&answer.body)
    }
}

/// User + system CPU time of this process.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // CLK_TCK is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn request(principal: &str, action: &str, resource: &str) -> proto::AuthorizeRequest {
    proto::AuthorizeRequest {
        principal: Some(proto::Principal { arn: principal.to_owned(), ..proto::Principal::default() }),
        action: action.to_owned(),
        resource: resource.to_owned(),
        context: Some(
            [("aws:SourceIp".to_owned(), pbjson_types::Value::from("10.100.10.7".to_owned()))].into_iter().collect(),
        ),
        ..proto::AuthorizeRequest::default()
    }
}

fn decision(r: &proto::AuthorizeResponse) -> Decision {
    Decision::try_from(r.decision).expect("a known decision")
}

/// The session of another partition, and a role ARN with another path, are not the bundle's role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_9_principals_match_exactly_on_partition_and_path() {
    bounded(async {
        let server = Server::start().await;
        let mut client = server.client().await;
        // The control: the `aws` partition's session is allowed.
        let r = client.authorize(request(ALICE, PRESIGN, COMET_APP)).await.expect("answered").into_inner();
        assert_eq!(decision(&r), Decision::Allow, "{r:?}");
        let other = [
            "arn:aws-cn:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1",
            "arn:aws-us-gov:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1",
            "arn:aws:iam::111122223333:role/other/path/SageMakerStudioExecutionRoleTeam1",
            "arn:aws-cn:iam::111122223333:role/SageMakerStudioExecutionRoleTeam1",
            "arn:aws:sts::444455556666:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1",
        ];
        for p in other {
            let r = client.authorize(request(p, PRESIGN, COMET_APP)).await.expect("answered").into_inner();
            assert_eq!(decision(&r), Decision::ImplicitDeny, "{p}: {r:?}");
            assert!(r.diagnostics.iter().any(|d| d.contains("not in the bundle")), "{p}: {r:?}");
        }
    })
    .await;
}

/// 40,000 session tags took 39 s (quadratic duplicate checks); now refused at once, naming the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_9_forty_thousand_session_tags_are_refused_in_bounded_time() {
    bounded(async {
        let server = Server::start().await;
        let mut client = server.client().await;
        let mut req = request(ALICE, PRESIGN, COMET_APP);
        let tags: HashMap<String, String> = (0..40_000).map(|i| (format!("k{i}"), "v".into())).collect();
        req.principal.as_mut().expect("principal").session_tags = tags;
        let cpu = process_cpu();
        let t = Instant::now();
        let s = client.authorize(req).await.expect_err("refused");
        let (wall, spent) = (t.elapsed(), process_cpu().saturating_sub(cpu));
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        assert!(s.message().contains("principal.session_tags"), "{s:?}");
        assert!(s.message().contains("40000 session tags exceed the limit of 50"), "{s:?}");
        // The old code took 39 s; decoding 40,000 map entries in a debug build is most of what is left.
        assert!(wall < Duration::from_secs(10) && spent < Duration::from_secs(3), "{wall:?} wall, {spent:?} CPU");
        // 50 tags with 128-character keys and 256-character values are fine.
        let mut req = request(ALICE, PRESIGN, COMET_APP);
        req.principal.as_mut().expect("principal").session_tags =
            (0..50).map(|i| (format!("{i:0>128}"), "v".repeat(256))).collect();
        let r = client.authorize(req).await.expect("50 tags at their limits").into_inner();
        assert_ne!(decision(&r), Decision::Unspecified);
    })
    .await;
}

/// A 64 KB resource full of `:` cost 7.4 s of CPU; resources are ARNs of at most 2,048 characters,
/// and the worst valid one is decided in bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_9_colon_heavy_resources_cost_bounded_cpu() {
    bounded(async {
        let server = Server::start().await;
        let mut client = server.client().await;
        let huge = format!("arn:aws:sagemaker:{}", ":a".repeat(32 * 1024));
        let s = client.authorize(request(ALICE, PRESIGN, &huge)).await.expect_err("over the ARN limit");
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        assert!(s.message().contains("resource") && s.message().contains("2048"), "{s:?}");
        assert!(s.message().len() < 600, "the message quotes at most 128 characters: {}", s.message().len());
        // The worst valid shapes: 2,048 characters, many `:` and `/`, against the default bundle.
        let shapes = [
            format!("arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-{}", ":a".repeat(995)),
            format!("arn:aws:sagemaker:{}", ":".repeat(2048 - 18)),
            format!("arn:aws:s3:::{}", "a:".repeat(1017)),
            format!("arn:aws:sagemaker:us-east-1:111122223333:{}", "a/".repeat(1003)),
        ];
        let cpu = process_cpu();
        for resource in &shapes {
            assert!(resource.len() <= 2048, "{}", resource.len());
            for _ in 0..10 {
                // Decided (the first shape is even allowed: `partner-app/app-*` crosses `:` in the
                // resource part, as in IAM); what matters here is the cost.
                let r = client.authorize(request(ALICE, PRESIGN, resource)).await.expect("decided").into_inner();
                assert_ne!(decision(&r), Decision::Unspecified, "{resource}");
            }
        }
        let spent = process_cpu().saturating_sub(cpu);
        // 40 decisions (10 of each shape; the cache answers repeats).
        assert!(spent < Duration::from_secs(2), "40 worst-case calls took {spent:?} of CPU");
    })
    .await;
}

/// Bytes that do not decode were INTERNAL and uncounted; now INVALID_ARGUMENT, counted — on every
/// unary method of every service Warden implements (ext_authz `Check` included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_9_undecodable_bytes_are_invalid_argument_and_counted() {
    bounded(async {
        let server = Server::start().await;
        for (path, rpc) in [
            ("/warden.v1.Authorizer/Authorize", "authorize"),
            ("/warden.v1.Authorizer/AuthorizeBatch", "authorize_batch"),
            ("/warden.v1.Authorizer/PropagateIdentity", "propagate_identity"),
            ("/envoy.service.auth.v3.Authorization/Check", "ext_authz_check"),
        ] {
            let count = |m: &[support::Sample]| {
                sample_sum(m, "warden_requests_total", &[("rpc", rpc), ("code", "INVALID_ARGUMENT")])
            };
            let before = count(&server.metrics().await);
            let mut grpc = tonic::client::Grpc::new(server.channel().await);
            grpc.ready().await.expect("ready");
            // A raw codec that sends arbitrary bytes as the request message.
            let codec = RawCodec;
            let garbage = vec![0xff_u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
            let s = grpc
                .unary(tonic::Request::new(garbage), PathAndQuery::from_static(path), codec)
                .await
                .expect_err("garbage is refused");
            assert_eq!(s.code(), Code::InvalidArgument, "{path}: {s:?}");
            assert!(s.message().contains("does not decode"), "{path}: {s:?}");
            let after = count(&server.metrics().await);
            assert!(after >= before + 1.0, "{path} counted: before {before}, after {after}");
        }
    })
    .await;
}

/// Sends and receives raw bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf as _;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}
