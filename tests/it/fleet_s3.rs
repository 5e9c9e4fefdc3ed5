//! Fleet mode, bundles from S3 (SPEC §10, issue 14 item 1), against a local AWS emulator (moto's
//! server mode on loopback, `tests/it/moto.rs`): real `warden serve --bundle s3://…` processes, one
//! bucket. The tests upload with the AWS SDK, ask the replicas over gRPC and read their `/metrics`;
//! the expected revisions and decisions are computed offline from the same bytes.
//! - two replicas serve the bucket and follow each change (a new, a changed, a deleted object) within
//!   one poll, downloading only the changed objects;
//! - a half-written prefix (a file uploaded, `.signatures.json` not yet) and a bad signature never
//!   activate, on either replica; a `.signatures.json` without a verify key is still the completeness
//!   check;
//! - the emulator killed mid-run leaves both replicas serving their last good bundle, the failures
//!   counted; a bucket unreachable (or missing) at start is a clear error;
//! - a key that would leave the cache directory, and an object over the file limit, are refused before
//!   any download;
//! - the whole of fleet mode: two replicas on one bucket and one table answer a shrinking comet admin
//!   list alike, see a revoke on the other within 2 s, and keep both when the emulator dies.
use crate::moto::Moto;
use crate::reload::{bounded, decision, request, status, tcp_channel};
use crate::support::{self, ServeChild};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use ed25519_dalek::SigningKey;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use warden::proto::{self, Decision, authorizer_client::AuthorizerClient};
use warden::runtime::signatures;

const BUCKET: &str = "fleet";
const PREFIX: &str = "team/bundle/";
const URL: &str = "s3://fleet/team/bundle";
/// `--poll-interval` of the replicas.
const POLL: Duration = Duration::from_millis(1000);
/// A change must be answered within one poll and this (a sync, a load, a busy 2-core machine).
const MARGIN: Duration = Duration::from_secs(4);
/// Waits for a replica to start, or for something that takes a few polls.
const WAIT: Duration = Duration::from_secs(30);

const STUDIO_ALICE: &str = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1";
const PRESIGN: &str = "sagemaker:CreatePartnerAppPresignedUrl";
const COMET_APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001";
/// A deny SCP that turns the presign below into an explicit deny.
const DENY_SCP: &str = "organizations/scps/NoPresign.json";

/// Alice (Team1) presigning her team's Comet app: ALLOW on the default bundle.
fn presign() -> proto::AuthorizeRequest {
    let ip = pbjson_types::Value { kind: Some(pbjson_types::value::Kind::StringValue("10.100.10.7".into())) };
    proto::AuthorizeRequest {
        context: Some(std::iter::once(("aws:SourceIp".to_owned(), ip)).collect()),
        ..request(STUDIO_ALICE, PRESIGN, COMET_APP)
    }
}

fn deny_scp(action: &str) -> Vec<u8> {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "NoPresign", "Effect": "Deny", "Action": action, "Resource": "*"}]})
    .to_string()
    .into_bytes()
}

/// The default bundle (`policies/`), as the loader reads it.
fn default_files() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let (files, problems) = warden::runtime::files::read_files(&dir).expect("policies/ reads");
    assert!(problems.is_empty(), "{problems:?}");
    files
}

fn with(files: &[(String, Vec<u8>)], path: &str, bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = files.iter().filter(|(p, _)| p != path).cloned().collect();
    out.push((path.to_owned(), bytes));
    out
}

/// The revision and the decision on [`presign`] of a bundle made of `files`, computed offline.
fn offline(files: &[(String, Vec<u8>)]) -> (String, Decision) {
    let bundle = warden::bundle::from_files(files.to_vec()).unwrap_or_else(|p| panic!("invalid test bundle: {p:?}"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let r = warden::grpc::convert::request_from_proto(presign(), now).unwrap();
    let resp = warden::engine::authorize(&bundle, &r);
    let p = warden::grpc::convert::response_to_proto(&resp, &bundle.revision, false, String::new());
    (bundle.revision.clone(), decision(&p))
}

// === the bucket ===

/// An S3 client of the emulator (no environment or profile read).
fn s3_client(moto: &Moto) -> aws_sdk_s3::Client {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "moto"))
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .http_client(http)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn create_bucket(s3: &aws_sdk_s3::Client) {
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket: {}", DisplayErrorContext(&e)));
}

/// Puts `bytes` at `PREFIX + path`.
async fn put(s3: &aws_sdk_s3::Client, path: &str, bytes: Vec<u8>) {
    let key = format!("{PREFIX}{path}");
    s3.put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {}", DisplayErrorContext(&e)));
}

async fn delete(s3: &aws_sdk_s3::Client, path: &str) {
    let key = format!("{PREFIX}{path}");
    s3.delete_object().bucket(BUCKET).key(&key).send().await.unwrap_or_else(|e| panic!("delete {key}: {e}"));
}

async fn upload(s3: &aws_sdk_s3::Client, files: &[(String, Vec<u8>)]) {
    for (path, bytes) in files {
        put(s3, path, bytes.clone()).await;
    }
}

// === the replicas ===

/// A `warden serve --bundle s3://fleet/team/bundle` process.
struct Replica {
    name: &'static str,
    child: ServeChild,
    admin: SocketAddr,
    client: AuthorizerClient<Channel>,
}

impl Replica {
    /// Starts a replica polling every [`POLL`]; `own_cache`: with `--bundle-cache-dir` (else the
    /// default, a directory of the process under the temporary directory).
    async fn start(tmp: &Path, name: &'static str, env: &[(&str, String)], own_cache: bool, extra: &[&str]) -> Replica {
        let cache = tmp.join(format!("{name}-cache"));
        let mut args: Vec<String> =
            ["serve", "--bundle", URL, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        args.extend(["--poll-interval".to_owned(), POLL.as_millis().to_string()]);
        if own_cache {
            args.extend(["--bundle-cache-dir".to_owned(), cache.display().to_string()]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut child = ServeChild::spawn_env(tmp, &args, env, &tmp.join(format!("{name}.log")));
        let grpc = child.logged_addr("gRPC listening (TCP)").await;
        let admin = child.logged_addr("admin HTTP listening").await;
        let client = AuthorizerClient::new(tcp_channel(grpc).await);
        Replica { name, child, admin, client }
    }

    /// Asks until [`presign`] is answered `want` from `revision`; panics after `bound` from `since`
    /// with the last answer and the log. Returns the time since `since`.
    async fn answers(&mut self, want: Decision, revision: &str, since: Instant, bound: Duration) -> Duration {
        loop {
            let last = match self.client.authorize(presign()).await {
                Ok(r) => {
                    let r = r.into_inner();
                    if r.bundle_revision == revision && decision(&r) == want {
                        return since.elapsed();
                    }
                    format!("{:?} from {}", decision(&r), r.bundle_revision)
                }
                Err(s) => format!("{s:?}"),
            };
            assert!(
                since.elapsed() < bound,
                "replica {}: not {want:?} from {revision} within {bound:?}; last answer {last}\n{}",
                self.name,
                self.child.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every answer for `hold` is `want` from `revision`.
    async fn holds(&mut self, want: Decision, revision: &str, hold: Duration) {
        let started = Instant::now();
        while started.elapsed() < hold {
            let r =
                self.client.authorize(presign()).await.unwrap_or_else(|s| panic!("{}: {s:?}", self.name)).into_inner();
            assert_eq!(
                (decision(&r), r.bundle_revision.as_str()),
                (want, revision),
                "replica {}: the active bundle changed\n{}",
                self.name,
                self.child.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let m = support::http_get(self.admin, "/metrics").await;
        support::sample_sum(&support::parse_prometheus(&m.body), name, labels)
    }

    /// Waits until the metric reaches `at_least`; returns its value.
    async fn metric_reaches(&self, name: &str, labels: &[(&str, &str)], at_least: f64) -> f64 {
        let started = Instant::now();
        loop {
            let v = self.metric(name, labels).await;
            if v >= at_least {
                return v;
            }
            assert!(
                started.elapsed() < WAIT,
                "replica {}: {name}{labels:?} = {v} after {WAIT:?}\n{}",
                self.name,
                self.child.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn last_error(&mut self) -> String {
        status(&mut self.client).await.last_reload_error
    }
}

const DOWNLOADS: &str = "warden_bundle_sync_downloads_total";
const SIGNATURE_FAILURES: &str = "warden_bundle_signature_failures_total";
const SYNC_FAILURES: &str = "warden_bundle_sync_failures_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_the_bucket_and_follow_each_change_within_one_poll_fetching_only_what_changed() {
    bounded(async {
        let moto = Moto::start();
        let s3 = s3_client(&moto);
        create_bucket(&s3).await;
        let files = default_files();
        let (r0, allow) = offline(&files);
        assert_eq!(allow, Decision::Allow, "the premise: the default bundle allows the presign");
        upload(&s3, &files).await;
        // Folder markers and hidden keys are not bundle files, and are not downloaded.
        s3.put_object()
            .bucket(BUCKET)
            .key(format!("{PREFIX}iam/"))
            .body(ByteStream::from_static(b""))
            .send()
            .await
            .unwrap();
        put(&s3, ".git/HEAD", b"ref: refs/heads/main\n".to_vec()).await;
        let tmp = support::temp_dir();
        let env = moto.env();
        let mut a = Replica::start(tmp.path(), "a", &env, true, &[]).await;
        let mut b = Replica::start(tmp.path(), "b", &env, false, &[]).await;
        let start = Instant::now();
        for r in [&mut a, &mut b] {
            r.answers(Decision::Allow, &r0, start, WAIT).await;
        }
        // The first sync fetched each file once; later polls fetch nothing.
        tokio::time::sleep(2 * POLL).await;
        let n = files.len() as f64;
        for r in [&a, &b] {
            assert_eq!(r.metric(DOWNLOADS, &[]).await, n, "replica {}", r.name);
        }

        // A new object: both deny within one poll, having fetched that object only.
        let added = with(&files, DENY_SCP, deny_scp(PRESIGN));
        let (r1, deny) = offline(&added);
        assert_eq!(deny, Decision::ExplicitDeny);
        let at = Instant::now();
        put(&s3, DENY_SCP, deny_scp(PRESIGN)).await;
        for r in [&mut a, &mut b] {
            let took = r.answers(Decision::ExplicitDeny, &r1, at, POLL + MARGIN).await;
            eprintln!("replica {}: a new object answered after {took:?}", r.name);
        }
        for r in [&a, &b] {
            assert_eq!(r.metric(DOWNLOADS, &[]).await, n + 1.0, "replica {}: only the new object", r.name);
        }

        // A changed object (the SCP now denies something else): allowed again, one more download.
        let changed = with(&files, DENY_SCP, deny_scp("sagemaker:DeleteApp"));
        let (r2, allow) = offline(&changed);
        assert_eq!(allow, Decision::Allow);
        let at = Instant::now();
        put(&s3, DENY_SCP, deny_scp("sagemaker:DeleteApp")).await;
        for r in [&mut a, &mut b] {
            let took = r.answers(Decision::Allow, &r2, at, POLL + MARGIN).await;
            eprintln!("replica {}: a changed object answered after {took:?}", r.name);
            assert_eq!(r.metric(DOWNLOADS, &[]).await, n + 2.0, "replica {}", r.name);
        }

        // A deleted object: the first revision again, nothing downloaded.
        let at = Instant::now();
        delete(&s3, DENY_SCP).await;
        for r in [&mut a, &mut b] {
            r.answers(Decision::Allow, &r0, at, POLL + MARGIN).await;
            assert_eq!(r.metric(DOWNLOADS, &[]).await, n + 2.0, "replica {}", r.name);
            assert_eq!(r.metric(SYNC_FAILURES, &[]).await, 0.0, "replica {}", r.name);
        }
        // The replicas' caches hold exactly the bundle (plus nothing hidden that was skipped).
        let cached = warden::runtime::files::read_files(&only_tree(&tmp.path().join("a-cache"))).unwrap().0;
        assert_eq!(cached.len(), files.len());
        assert!(!only_tree(&tmp.path().join("a-cache")).join(".git").exists());
        // Replica b's default cache directory is its own, under the temporary directory, removed when
        // it exits.
        let pid = b.child.child.id();
        let default_cache = std::env::temp_dir().join(format!("warden-bundle-cache-{pid}"));
        assert_eq!(warden::runtime::files::read_files(&only_tree(&default_cache)).unwrap().0.len(), files.len());
        let term = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        assert!(term.success());
        let exit = b.child.exit_within(WAIT).await.expect("replica b exits after SIGTERM");
        assert!(exit.success(), "{exit}\n{}", b.child.log());
        assert!(!default_cache.exists(), "{} is left behind", default_cache.display());
    })
    .await;
}

/// The one complete tree in a cache directory.
fn only_tree(cache: &Path) -> std::path::PathBuf {
    let trees: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("tree-"))
        .collect();
    assert_eq!(trees.len(), 1, "{trees:?}");
    trees[0].clone()
}

/// Writes the public key of `key` into `dir/name` and returns its path.
fn public_key_file(dir: &Path, name: &str, key: &SigningKey) -> String {
    let (_, public) = signatures::key_pair_pem(key).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, public).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_prefix_or_a_bad_signature_never_activates_on_either_replica() {
    bounded(async {
        let moto = Moto::start();
        let s3 = s3_client(&moto);
        create_bucket(&s3).await;
        let tmp = support::temp_dir();
        let key = SigningKey::from_bytes(&[42u8; 32]);
        let other = SigningKey::from_bytes(&[43u8; 32]);
        let public = public_key_file(tmp.path(), "pub.pem", &key);
        let files = default_files();
        let (r0, _) = offline(&files);
        // The uploader: the files, then `.signatures.json` last.
        upload(&s3, &files).await;
        put(&s3, signatures::FILE, signatures::sign(&files, &key).to_json()).await;
        let env = moto.env();
        let verify = ["--bundle-verify-key", public.as_str()];
        let mut a = Replica::start(tmp.path(), "a", &env, true, &verify).await;
        let mut b = Replica::start(tmp.path(), "b", &env, true, &verify).await;
        let start = Instant::now();
        for r in [&mut a, &mut b] {
            r.answers(Decision::Allow, &r0, start, WAIT).await;
            assert_eq!(r.metric(SIGNATURE_FAILURES, &[]).await, 0.0);
        }
        let added = with(&files, DENY_SCP, deny_scp(PRESIGN));
        let (r1, _) = offline(&added);

        // 1. Half-written: the new file is there, `.signatures.json` does not list it yet.
        put(&s3, DENY_SCP, deny_scp(PRESIGN)).await;
        for r in [&mut a, &mut b] {
            r.holds(Decision::Allow, &r0, 3 * POLL).await;
            let e = r.last_error().await;
            assert!(e.contains(&format!("{DENY_SCP}: /: not listed in `.signatures.json`")), "replica {}: {e}", r.name);
            // Refused once, not at every poll.
            assert_eq!(r.metric(SIGNATURE_FAILURES, &[]).await, 1.0, "replica {}", r.name);
        }

        // 2. A complete list signed with another key.
        put(&s3, signatures::FILE, signatures::sign(&added, &other).to_json()).await;
        for r in [&mut a, &mut b] {
            r.holds(Decision::Allow, &r0, 3 * POLL).await;
            let e = r.last_error().await;
            assert!(
                e.contains(".signatures.json: /signature: the signature does not verify"),
                "replica {}: {e}",
                r.name
            );
            assert!(e.contains(&signatures::key_id(&other.verifying_key())), "names the signing key: {e}");
            assert_eq!(r.metric(SIGNATURE_FAILURES, &[]).await, 2.0, "replica {}", r.name);
        }

        // 3. The list edited to match, under the old signature.
        let mut forged = signatures::sign(&files, &key);
        forged.files = signatures::sign(&added, &key).files;
        put(&s3, signatures::FILE, forged.to_json()).await;
        for r in [&mut a, &mut b] {
            r.holds(Decision::Allow, &r0, 3 * POLL).await;
            assert!(r.last_error().await.contains("/signature: the signature does not verify"));
            assert_eq!(r.metric(SIGNATURE_FAILURES, &[]).await, 3.0, "replica {}", r.name);
        }

        // 4. The uploader finishes: the signed list. Both deny within one poll.
        let at = Instant::now();
        put(&s3, signatures::FILE, signatures::sign(&added, &key).to_json()).await;
        for r in [&mut a, &mut b] {
            let took = r.answers(Decision::ExplicitDeny, &r1, at, POLL + MARGIN).await;
            eprintln!("replica {}: the signed change answered after {took:?}", r.name);
            assert_eq!(r.last_error().await, "");
        }

        // 5. `.signatures.json` deleted: the active content was verified when it was activated, and it
        // has not changed; it keeps serving. Any change from now on needs a signed list.
        delete(&s3, signatures::FILE).await;
        for r in [&mut a, &mut b] {
            r.holds(Decision::ExplicitDeny, &r1, 3 * POLL).await;
            assert_eq!(r.last_error().await, "", "replica {}", r.name);
        }
        delete(&s3, DENY_SCP).await;
        for r in [&mut a, &mut b] {
            r.holds(Decision::ExplicitDeny, &r1, 3 * POLL).await;
            let e = r.last_error().await;
            assert!(e.contains(".signatures.json: /: missing: with --bundle-verify-key"), "replica {}: {e}", r.name);
            assert_eq!(r.metric(SIGNATURE_FAILURES, &[]).await, 4.0, "replica {}", r.name);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_verify_key_a_signatures_file_is_still_the_completeness_check() {
    bounded(async {
        let moto = Moto::start();
        let s3 = s3_client(&moto);
        create_bucket(&s3).await;
        let tmp = support::temp_dir();
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let files = default_files();
        let (r0, _) = offline(&files);
        upload(&s3, &files).await;
        put(&s3, signatures::FILE, signatures::sign(&files, &key).to_json()).await;
        let mut a = Replica::start(tmp.path(), "a", &moto.env(), true, &[]).await;
        a.answers(Decision::Allow, &r0, Instant::now(), WAIT).await;
        // A file changed before the list: not activated.
        put(&s3, "organizations/scps/FullAWSAccess.json", deny_scp(PRESIGN)).await;
        a.holds(Decision::Allow, &r0, 3 * POLL).await;
        let e = a.last_error().await;
        assert!(e.contains("organizations/scps/FullAWSAccess.json: /: its sha256"), "{e}");
        assert_eq!(a.metric(SIGNATURE_FAILURES, &[]).await, 1.0);
        // The list follows (signed by any key: without --bundle-verify-key only the list is checked).
        let changed = with(&files, "organizations/scps/FullAWSAccess.json", deny_scp(PRESIGN));
        let (r1, deny) = offline(&changed);
        assert_eq!(deny, Decision::ExplicitDeny);
        let at = Instant::now();
        put(&s3, signatures::FILE, signatures::sign(&changed, &SigningKey::from_bytes(&[8u8; 32])).to_json()).await;
        a.answers(Decision::ExplicitDeny, &r1, at, POLL + MARGIN).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_killed_mid_run_leaves_both_replicas_serving_their_last_good_bundle() {
    bounded(async {
        let mut moto = Moto::start();
        let s3 = s3_client(&moto);
        create_bucket(&s3).await;
        let files = default_files();
        let (r0, _) = offline(&files);
        upload(&s3, &files).await;
        let tmp = support::temp_dir();
        let env = moto.env();
        let mut a = Replica::start(tmp.path(), "a", &env, true, &[]).await;
        let mut b = Replica::start(tmp.path(), "b", &env, true, &[]).await;
        let start = Instant::now();
        for r in [&mut a, &mut b] {
            r.answers(Decision::Allow, &r0, start, WAIT).await;
            assert_eq!(r.metric(SYNC_FAILURES, &[("reason", "unreachable")]).await, 0.0);
        }
        moto.kill();
        for r in [&mut a, &mut b] {
            // Counted (each failed sync once), logged, in the status; the bundle keeps serving.
            r.metric_reaches(SYNC_FAILURES, &[("reason", "unreachable")], 2.0).await;
            r.holds(Decision::Allow, &r0, 2 * POLL).await;
            let st = status(&mut r.client).await;
            assert_eq!(st.revision, r0);
            assert!(
                st.last_reload_error.starts_with("sync failed: s3://fleet/team/bundle/: ListObjectsV2 failed"),
                "{st:#?}"
            );
            assert_eq!(support::http_get(r.admin, "/readyz").await.status, 200, "replica {} stays ready", r.name);
            assert!(r.child.log().contains("S3 bundle sync failed; the active bundle keeps serving"));
            assert!(r.child.child.try_wait().unwrap().is_none(), "replica {} still runs", r.name);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_unreachable_or_missing_at_start_is_a_clear_error() {
    bounded(async {
        let tmp = support::temp_dir();
        // Missing: the emulator answers, the bucket does not exist.
        let moto = Moto::start();
        let args = ["serve", "--bundle", URL, "--listen", "127.0.0.1:0", "--admin-listen", "off"];
        let mut child = ServeChild::spawn_env(tmp.path(), args, &moto.env(), &tmp.path().join("missing.log"));
        let status = child.exit_within(WAIT).await.unwrap_or_else(|| panic!("still running:\n{}", child.log()));
        let log = child.log();
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(log.contains("--bundle: the first sync failed"), "{log}");
        assert!(log.contains("s3://fleet/team/bundle/: ListObjectsV2 failed: the bucket does not exist"), "{log}");
        assert!(!log.contains("gRPC listening"), "nothing was served:\n{log}");

        // Unreachable: nothing listens on the endpoint any more.
        let mut moto = moto;
        let env = moto.env();
        moto.kill();
        let started = Instant::now();
        let mut child = ServeChild::spawn_env(tmp.path(), args, &env, &tmp.path().join("unreachable.log"));
        let status = child.exit_within(WAIT).await.unwrap_or_else(|| panic!("still running:\n{}", child.log()));
        let log = child.log();
        eprintln!("an unreachable bucket refused the start after {:?}", started.elapsed());
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(log.contains("--bundle: the first sync failed"), "{log}");
        assert!(log.contains("s3://fleet/team/bundle/: ListObjectsV2 failed"), "{log}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_leaving_the_cache_dir_or_an_object_over_the_limit_is_refused_before_any_download() {
    bounded(async {
        let moto = Moto::start();
        let s3 = s3_client(&moto);
        create_bucket(&s3).await;
        let files = default_files();
        let (r0, _) = offline(&files);
        upload(&s3, &files).await;
        let tmp = support::temp_dir();
        let mut a = Replica::start(tmp.path(), "a", &moto.env(), true, &[]).await;
        a.answers(Decision::Allow, &r0, Instant::now(), WAIT).await;
        let n = a.metric(DOWNLOADS, &[]).await;
        assert_eq!(n, files.len() as f64);

        put(&s3, "../escape.json", b"{}".to_vec()).await;
        a.metric_reaches(SYNC_FAILURES, &[("reason", "invalid_key")], 1.0).await;
        a.holds(Decision::Allow, &r0, POLL).await;
        let e = a.last_error().await;
        assert!(e.contains("the key `team/bundle/../escape.json` has a `..` segment: it would leave the cache"), "{e}");
        assert!(!tmp.path().join("a-cache/escape.json").exists() && !tmp.path().join("escape.json").exists());
        delete(&s3, "../escape.json").await;

        put(&s3, "iam/policies/Huge.json", vec![b' '; 10 * 1024 * 1024 + 1]).await;
        a.metric_reaches(SYNC_FAILURES, &[("reason", "bounds")], 1.0).await;
        a.holds(Decision::Allow, &r0, POLL).await;
        let e = a.last_error().await;
        assert!(e.contains("`team/bundle/iam/policies/Huge.json`: 10485761 bytes (listed) exceed the limit"), "{e}");
        assert_eq!(a.metric(DOWNLOADS, &[]).await, n, "nothing was downloaded");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_of_more_than_one_page_is_listed_whole() {
    bounded(async {
        let moto = Moto::start();
        let s3 = s3_client(&moto);
        create_bucket(&s3).await;
        // 1,200 notes (read, hashed into the revision, never parsed) and the bundle: more than the
        // 1,000 keys of one ListObjectsV2 page, the bundle's own files on the second page.
        let mut files = default_files();
        files.extend((0..1200).map(|i| (format!("aaa-notes/n{i:04}.md"), format!("note {i}\n").into_bytes())));
        let mut puts = tokio::task::JoinSet::new();
        for chunk in files.chunks(files.len().div_ceil(16)) {
            let (s3, chunk) = (s3.clone(), chunk.to_vec());
            puts.spawn(async move { upload(&s3, &chunk).await });
        }
        while let Some(done) = puts.join_next().await {
            done.unwrap();
        }
        let (r0, allow) = offline(&files);
        assert_eq!(allow, Decision::Allow);
        let tmp = support::temp_dir();
        let mut a = Replica::start(tmp.path(), "a", &moto.env(), true, &[]).await;
        a.answers(Decision::Allow, &r0, Instant::now(), WAIT).await;
        assert_eq!(a.metric(DOWNLOADS, &[]).await, files.len() as f64);
    })
    .await;
}

// === one bucket and one table: the whole fleet mode ===

/// The comet app's admin role of `user` on replica `r`, and the revision that answered.
async fn comet_role(r: &mut Replica, user: &str) -> (proto::AdminRole, String) {
    let a = r
        .client
        .propagate_identity(crate::propagate::as_user(crate::propagate::COMET, user))
        .await
        .unwrap_or_else(|s| panic!("replica {}: {user}: {s:?}", r.name))
        .into_inner();
    (proto::AdminRole::try_from(a.admin_role).expect("a known admin role"), a.bundle_revision)
}

/// Asks until `user` is `want` from `revision` on `r`; returns the time since `since`.
async fn comet_role_becomes(
    r: &mut Replica,
    user: &str,
    want: proto::AdminRole,
    revision: &str,
    since: Instant,
    bound: Duration,
) -> Duration {
    loop {
        let got = match r.client.propagate_identity(crate::propagate::as_user(crate::propagate::COMET, user)).await {
            Ok(a) => {
                let a = a.into_inner();
                if a.admin_role == want as i32 && a.bundle_revision == revision {
                    return since.elapsed();
                }
                format!("{:?} from {}", proto::AdminRole::try_from(a.admin_role), a.bundle_revision)
            }
            // Not ready yet (UNAVAILABLE before the first bundle) or not yet the answer: ask again.
            Err(s) => format!("{s:?}"),
        };
        assert!(
            since.elapsed() < bound,
            "replica {}: {user} is {got:?}, not {want:?} from {revision}, {bound:?} after the change\n{}",
            r.name,
            r.child.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SPEC §10 end to end: two replicas on one bucket (`--bundle s3://…`) and one table (`--state
/// dynamodb://…`). A shrinking comet admin list uploaded once reaches both within one poll, and both
/// then answer the demoted user ADMIN from the same revision; a revoke on B is answered by A within
/// 2 s; the emulator killed leaves both serving that bundle and that state, the failures counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_one_bucket_one_table_two_replicas_answer_alike() {
    use proto::AdminRole::{Admin, RootAdmin, User};
    bounded(async {
        let mut moto = Moto::start();
        let s3 = s3_client(&moto);
        create_bucket(&s3).await;
        let env = moto.env();
        let table_env = env.clone();
        let created = tokio::task::spawn_blocking(move || {
            std::process::Command::new(support::warden_bin())
                .args(["state", "create-table", "dynamodb://fleet-both"])
                .envs(table_env.iter().map(|(k, v)| (*k, v.as_str())))
                .output()
                .expect("run warden state create-table")
        })
        .await
        .expect("create-table ran");
        assert!(created.status.success(), "create-table: {}", String::from_utf8_lossy(&created.stderr));

        // The PropagateIdentity test bundle: comet admins [alice, carol].
        let dir = crate::propagate::write_bundle();
        let (files, problems) = warden::runtime::files::read_files(dir.path()).expect("the test bundle reads");
        assert!(problems.is_empty(), "{problems:?}");
        upload(&s3, &files).await;
        let r0 = warden::bundle::from_files(files.clone()).expect("valid").revision.clone();

        let tmp = support::temp_dir();
        let token = support::admin_token_file().display().to_string();
        let extra = ["--state", "dynamodb://fleet-both", "--state-poll-interval", "500", "--admin-token-file", &token];
        let mut a = Replica::start(tmp.path(), "a", &env, true, &extra).await;
        let mut b = Replica::start(tmp.path(), "b", &env, true, &extra).await;
        let start = Instant::now();
        for r in [&mut a, &mut b] {
            comet_role_becomes(r, "carol", RootAdmin, &r0, start, WAIT).await;
        }

        // The list shrinks to [alice], once, in the bucket: both replicas load it within one poll and
        // both remember carol as an ordinary admin (the table holds one memory for the fleet).
        let shrunk = with(&files, crate::propagate::COMET_FILE, crate::propagate::comet_json(&["alice"]).into_bytes());
        let r1 = warden::bundle::from_files(shrunk.clone()).expect("valid").revision.clone();
        let changed = Instant::now();
        put(&s3, crate::propagate::COMET_FILE, crate::propagate::comet_json(&["alice"]).into_bytes()).await;
        for r in [&mut a, &mut b] {
            let took = comet_role_becomes(r, "carol", Admin, &r1, changed, POLL + MARGIN).await;
            eprintln!("replica {}: carol ADMIN from the new bundle {took:?} after the upload", r.name);
            assert_eq!(comet_role(r, "alice").await, (RootAdmin, r1.clone()));
        }

        // A revoke on B: A answers USER within 2 s.
        let body = serde_json::json!({"app_arn": crate::propagate::COMET, "user_name": "carol"}).to_string();
        let (code, answer) = support::http_post(b.admin, "/v1/admins/revoke", &body).await;
        assert_eq!(code, 200, "revoke on b: {answer}");
        let revoked = Instant::now();
        let seen = comet_role_becomes(&mut a, "carol", User, &r1, revoked, Duration::from_secs(2)).await;
        eprintln!("replica a: the revoke on b answered {seen:?} later");
        assert_eq!(comet_role(&mut b, "carol").await, (User, r1.clone()));

        // The emulator dies: both keep the bundle and the state they had, and count the failures.
        moto.kill();
        for r in [&mut a, &mut b] {
            r.metric_reaches(SYNC_FAILURES, &[("reason", "unreachable")], 1.0).await;
            r.metric_reaches("warden_state_errors_total", &[("op", "poll")], 1.0).await;
            assert_eq!(comet_role(r, "carol").await, (User, r1.clone()), "replica {}", r.name);
            assert_eq!(comet_role(r, "alice").await, (RootAdmin, r1.clone()), "replica {}", r.name);
            assert_eq!(support::http_get(r.admin, "/readyz").await.status, 200, "replica {} stays ready", r.name);
        }
        drop(dir);
    })
    .await;
}
