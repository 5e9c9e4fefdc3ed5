//! Hot reload (SPEC §6, issue #5) on real temporary directories with the real watcher: edits in place,
//! write-then-rename, deletions, new folders, bursts, broken files, the Kubernetes ConfigMap `..data`
//! symlink swap, a bundle directory that is itself a swapped symlink (git-sync), poll mode, SIGHUP on the
//! real binary, reloads under load, and changes written right after an activation or right after
//! start-up (both once lost by the watcher). Each test starts its own server on `127.0.0.1:0` and talks
//! gRPC to it. Revisions are computed offline from the same file contents, so a test knows which
//! revision each change must produce and what it must decide.
//!
//! Helpers here are also used by `cache.rs`.
use crate::support;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tonic::transport::{Channel, Endpoint};
use warden::config::ServeConfig;
use warden::proto::{self, Decision, authorizer_client::AuthorizerClient};
use warden::server::{Options, ReloadOutcome, Running};

pub(crate) const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
pub(crate) const REPORT: &str = "arn:aws:s3:::reports/q1.csv";
const ALICE_FILE: &str = "iam/users/alice.json";

/// Every test body runs within this.
pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// Waits for a server, a connection, a status change.
pub(crate) const WAIT: Duration = Duration::from_secs(15);
/// A change must be answered within this (the target is 300 ms; generous for a busy CI machine).
pub(crate) const RELOAD_BOUND: Duration = Duration::from_secs(3);

/// Runs a test body, failing it after [`TEST_TIMEOUT`].
pub(crate) async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body).await.unwrap_or_else(|_| panic!("the test took over {TEST_TIMEOUT:?}"));
}

/// Awaits `fut`, panicking with `what` after [`WAIT`].
pub(crate) async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

// === bundles ===

/// Alice's user file: one inline policy `Reports` with one statement on `s3:GetObject`.
pub(crate) fn alice_json(effect: &str, sid: &str) -> String {
    json!({
        "UserName": "alice",
        "Arn": ALICE,
        "UserPolicyList": [{"PolicyName": "Reports", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Sid": sid, "Effect": effect, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"}]}}]
    })
    .to_string()
}

fn scp_json(sid: &str, effect: &str, action: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": effect, "Action": action, "Resource": "*"}]})
        .to_string()
}

/// The revision (and a check that it loads) of a bundle made of `files`, computed offline.
pub(crate) fn revision_of(files: &[(&str, &str)]) -> String {
    let owned = files.iter().map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec())).collect();
    warden::bundle::from_files(owned).unwrap_or_else(|p| panic!("the test bundle is invalid: {p:?}")).revision
}

/// A bundle directory `bundle/` inside a temp dir of its own. The watcher also watches the bundle's
/// parent: that is then private to the test, not the shared temp dir where other tests create files.
pub(crate) struct TempBundle {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl TempBundle {
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

/// Writes `files` into a new [`TempBundle`].
pub(crate) fn bundle_in_temp(files: &[(&str, &str)]) -> TempBundle {
    let tmp = support::temp_dir();
    let dir = tmp.path().join("bundle");
    support::write_files(&dir, files);
    TempBundle { _tmp: tmp, dir }
}

/// Alice reads a report.
pub(crate) fn alice_get() -> proto::AuthorizeRequest {
    request(ALICE, "s3:GetObject", REPORT)
}

pub(crate) fn request(principal: &str, action: &str, resource: &str) -> proto::AuthorizeRequest {
    proto::AuthorizeRequest {
        principal: Some(proto::Principal { arn: principal.to_owned(), ..proto::Principal::default() }),
        action: action.to_owned(),
        resource: resource.to_owned(),
        ..proto::AuthorizeRequest::default()
    }
}

pub(crate) fn decision(r: &proto::AuthorizeResponse) -> Decision {
    Decision::try_from(r.decision).unwrap_or_else(|_| panic!("unknown decision {}", r.decision))
}

/// Writes `bytes` to `path` by truncating and rewriting the file (what most editors do).
pub(crate) fn write_in_place(path: &Path, bytes: &str) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes `bytes` to a hidden file next to `path` (hidden names are not part of a bundle), then
/// renames it over `path`: the atomic way.
pub(crate) fn write_then_rename(path: &Path, bytes: &str) {
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename {} over {}: {e}", tmp.display(), path.display()));
}

// === the server under test ===

/// A server started by a test on `127.0.0.1:0`, admin listener off, with the bundle in `dir`.
pub(crate) struct Sidecar {
    running: Option<Running>,
    addr: SocketAddr,
}

impl Sidecar {
    /// Starts a server on `bundle` and waits for its first activation. `poll_ms`: poll mode instead
    /// of the watcher.
    pub(crate) async fn start(bundle: &Path, cache_capacity: Option<usize>, poll_ms: Option<u64>) -> Sidecar {
        let config = ServeConfig::from_flags(Some(utf8(bundle)), Some("127.0.0.1:0"), None, Some("off"), Some(5_000))
            .and_then(|c| c.with_runtime(cache_capacity, poll_ms, None))
            .expect("valid flags");
        Sidecar::start_with(&config).await
    }

    /// Starts a server with `config` and waits for its first activation.
    pub(crate) async fn start_with(config: &ServeConfig) -> Sidecar {
        let running = within("Running::start", Running::start(config, Options::default()))
            .await
            .unwrap_or_else(|e| panic!("Running::start: {e:#}"));
        let mut first = running.first_load.clone();
        let outcome = within("the first bundle load", first.wait_for(Option::is_some))
            .await
            .expect("the first load reports its outcome")
            .clone();
        assert!(matches!(outcome, Some(ReloadOutcome::Activated(_))), "first load: {outcome:?}");
        let addr = running.grpc_addr.expect("a TCP listener");
        Sidecar { running: Some(running), addr }
    }

    pub(crate) fn running(&self) -> &Running {
        self.running.as_ref().expect("the server is running")
    }

    /// The revision of the active bundle, from the store.
    pub(crate) fn revision(&self) -> String {
        self.running().store.load().expect("an active bundle").bundle.revision.clone()
    }

    /// The number of decisions in the active snapshot's cache.
    pub(crate) fn cache_len(&self) -> usize {
        self.running().store.load().expect("an active bundle").cache.len()
    }

    pub(crate) async fn client(&self) -> AuthorizerClient<Channel> {
        AuthorizerClient::new(tcp_channel(self.addr).await)
    }

    /// `Running::shutdown`, bounded.
    pub(crate) async fn shutdown(mut self) {
        let running = self.running.take().expect("the server is running");
        assert!(within("shutdown", running.shutdown()).await, "shutdown drained in time");
    }
}

pub(crate) async fn tcp_channel(addr: SocketAddr) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    within("connect over TCP", endpoint.connect()).await.unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// One Authorize call that must succeed.
pub(crate) async fn authorize(
    client: &mut AuthorizerClient<Channel>,
    req: proto::AuthorizeRequest,
) -> proto::AuthorizeResponse {
    within("Authorize", client.authorize(req)).await.unwrap_or_else(|s| panic!("Authorize failed: {s:?}")).into_inner()
}

pub(crate) async fn status(client: &mut AuthorizerClient<Channel>) -> proto::BundleStatus {
    within("GetBundleStatus", client.get_bundle_status(proto::GetBundleStatusRequest {}))
        .await
        .unwrap_or_else(|s| panic!("GetBundleStatus failed: {s:?}"))
        .into_inner()
}

/// Calls Authorize with `req` until an answer comes from `revision`; returns that answer and the time
/// since `since`. Panics after [`RELOAD_BOUND`] with the last answer and the bundle status.
pub(crate) async fn first_answer_from(
    client: &mut AuthorizerClient<Channel>,
    req: &proto::AuthorizeRequest,
    revision: &str,
    since: Instant,
) -> (proto::AuthorizeResponse, Duration) {
    loop {
        let r = authorize(client, req.clone()).await;
        if r.bundle_revision == revision {
            return (r, since.elapsed());
        }
        if since.elapsed() > RELOAD_BOUND {
            let s = status(client).await;
            panic!("revision {revision} not answered within {RELOAD_BOUND:?}; last answer {r:#?}; status {s:#?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Prints a measured reload latency (shown with `--nocapture`).
pub(crate) fn report_latency(what: &str, d: Duration) {
    eprintln!("reload latency [{what}]: {:.1} ms from the write to the first answer of the new revision", ms(d));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// === 1. the watcher: in place, rename, delete, new folder ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_in_place_is_answered_by_the_new_revision() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let old = revision_of(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let denying = alice_json("Deny", "Read");
        let new = revision_of(&[(ALICE_FILE, &denying)]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        assert_eq!(server.revision(), old, "the offline revision is the server's");
        let mut client = server.client().await;
        assert_eq!(decision(&authorize(&mut client, alice_get()).await), Decision::Allow);

        let written = Instant::now();
        write_in_place(&tmp.path().join(ALICE_FILE), &denying);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &new, written).await;
        report_latency("edit in place", took);
        assert_eq!(decision(&r), Decision::ExplicitDeny, "{r:#?}");
        assert!(took < RELOAD_BOUND);
        let s = status(&mut client).await;
        assert_eq!((s.revision.as_str(), s.previous_revision.as_str()), (new.as_str(), old.as_str()), "{s:#?}");
        assert!(s.last_reload_error.is_empty(), "{s:#?}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_then_rename_is_answered_by_the_new_revision() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let denying = alice_json("Deny", "Read");
        let new = revision_of(&[(ALICE_FILE, &denying)]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;

        let written = Instant::now();
        write_then_rename(&tmp.path().join(ALICE_FILE), &denying);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &new, written).await;
        report_latency("write then rename", took);
        assert_eq!(decision(&r), Decision::ExplicitDeny, "{r:#?}");
        // And back again: the watch survives the replaced inode.
        let allowing = alice_json("Allow", "ReadAgain");
        let newer = revision_of(&[(ALICE_FILE, &allowing)]);
        let written = Instant::now();
        write_then_rename(&tmp.path().join(ALICE_FILE), &allowing);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &newer, written).await;
        report_latency("write then rename, again", took);
        assert_eq!(decision(&r), Decision::Allow, "{r:#?}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_file_is_answered_by_the_new_revision() {
    bounded(async {
        let alice = alice_json("Allow", "Read");
        let full = scp_json("FullAWSAccess", "Allow", "*");
        let no_get = scp_json("NoGet", "Deny", "s3:GetObject");
        let (full_path, no_get_path) = ("organizations/scps/FullAWSAccess.json", "organizations/scps/NoGet.json");
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice), (full_path, &full), (no_get_path, &no_get)]);
        let new = revision_of(&[(ALICE_FILE, &alice), (full_path, &full)]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        let before = authorize(&mut client, alice_get()).await;
        assert_eq!(decision(&before), Decision::ExplicitDeny, "the SCP denies: {before:#?}");

        let written = Instant::now();
        std::fs::remove_file(tmp.path().join(no_get_path)).expect("remove the SCP");
        let (r, took) = first_answer_from(&mut client, &alice_get(), &new, written).await;
        report_latency("delete a file", took);
        assert_eq!(decision(&r), Decision::Allow, "without the deny SCP: {r:#?}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_folder_is_watched_and_answered_by_the_new_revision() {
    bounded(async {
        let alice = alice_json("Allow", "Read");
        let full = scp_json("FullAWSAccess", "Allow", "*");
        let no_get = scp_json("NoGet", "Deny", "s3:GetObject");
        let (full_path, no_get_path) = ("organizations/scps/FullAWSAccess.json", "organizations/scps/NoGet.json");
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice)]);
        let with_scps = revision_of(&[(ALICE_FILE, &alice), (full_path, &full), (no_get_path, &no_get)]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        assert_eq!(decision(&authorize(&mut client, alice_get()).await), Decision::Allow);

        // `organizations/` and `organizations/scps/` do not exist yet.
        let written = Instant::now();
        support::write_files(tmp.path(), &[(full_path, &full), (no_get_path, &no_get)]);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &with_scps, written).await;
        report_latency("new folder", took);
        assert_eq!(decision(&r), Decision::ExplicitDeny, "{r:#?}");

        // A change inside the new folder is seen too: the new folder is watched.
        let allow_get = scp_json("NoGet", "Deny", "s3:DeleteObject");
        let newer = revision_of(&[(ALICE_FILE, &alice), (full_path, &full), (no_get_path, &allow_get)]);
        let written = Instant::now();
        write_in_place(&tmp.path().join(no_get_path), &allow_get);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &newer, written).await;
        report_latency("a file in the new folder", took);
        assert_eq!(decision(&r), Decision::Allow, "{r:#?}");
        server.shutdown().await;
    })
    .await;
}

// === 2. bursts and broken files ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100_writes_activates_exactly_once() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        let path = tmp.path().join(ALICE_FILE);
        // A burst is writes closer together than the 50 ms debounce; if this (busy) machine stalls the
        // writer longer than that between two writes, it was not one burst: try again.
        for attempt in 0..3 {
            let old = server.revision();
            let last = alice_json("Deny", &format!("Attempt{attempt}Burst99"));
            let new = revision_of(&[(ALICE_FILE, &last)]);
            let written = Instant::now();
            let mut previous = written;
            let mut max_gap = Duration::ZERO;
            for i in 0..100 {
                let effect = if i % 2 == 0 { "Allow" } else { "Deny" };
                write_in_place(&path, &alice_json(effect, &format!("Attempt{attempt}Burst{i}")));
                max_gap = max_gap.max(previous.elapsed());
                previous = Instant::now();
            }
            let burst = written.elapsed();
            let (r, took) = first_answer_from(&mut client, &alice_get(), &new, written).await;
            report_latency("burst of 100 writes", took);
            eprintln!("burst of 100 writes: {:.1} ms to write, longest gap {:.2} ms", ms(burst), ms(max_gap));
            assert_eq!(decision(&r), Decision::ExplicitDeny, "{r:#?}");
            if max_gap >= Duration::from_millis(40) {
                eprintln!("the writer stalled for {:.1} ms within the burst: trying again", ms(max_gap));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let s = status(&mut client).await;
            // One activation: the new revision replaced the one before the burst directly; no
            // intermediate content was ever active.
            assert_eq!(s.previous_revision, old, "an intermediate revision was activated: {s:#?}");
            assert!(s.last_reload_error.is_empty(), "{s:#?}");
            // And nothing more happens once the burst is over.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let later = status(&mut client).await;
            assert_eq!(
                (later.revision.as_str(), later.previous_revision.as_str(), later.activated_at),
                (new.as_str(), old.as_str(), s.activated_at),
                "no further activation after the burst"
            );
            server.shutdown().await;
            return;
        }
        panic!("the writer stalled within each of 3 bursts: the machine is too busy to tell");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_is_rejected_naming_it_and_the_old_revision_answers_until_it_is_fixed() {
    bounded(async {
        let alice = alice_json("Allow", "Read");
        let old = revision_of(&[(ALICE_FILE, &alice)]);
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice)]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        let path = tmp.path().join(ALICE_FILE);

        // An unknown Effect.
        let broken = alice_json("Permit", "Read");
        write_in_place(&path, &broken);
        let written = Instant::now();
        let s = loop {
            let s = status(&mut client).await;
            if !s.last_reload_error.is_empty() {
                break s;
            }
            assert!(written.elapsed() < RELOAD_BOUND, "no reload error after {RELOAD_BOUND:?}: {s:#?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        eprintln!("rejected after {:.1} ms: {}", ms(written.elapsed()), s.last_reload_error);
        assert!(s.last_reload_error.contains(ALICE_FILE), "the error names the file: {s:#?}");
        assert!(s.last_reload_error.contains("Effect"), "the error names the field: {s:#?}");
        assert_eq!(s.revision, old, "the old revision stays active: {s:#?}");
        // The old revision keeps answering, and decides as before.
        for _ in 0..20 {
            let r = authorize(&mut client, alice_get()).await;
            assert_eq!((r.bundle_revision.as_str(), decision(&r)), (old.as_str(), Decision::Allow), "{r:#?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Malformed JSON is rejected the same way.
        let first_error = s.last_reload_error.clone();
        write_in_place(&path, r#"{"UserName": "alice", "#);
        let written = Instant::now();
        let s = loop {
            let s = status(&mut client).await;
            if s.last_reload_error != first_error {
                break s;
            }
            assert!(written.elapsed() < RELOAD_BOUND, "no new reload error after {RELOAD_BOUND:?}: {s:#?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        eprintln!("rejected: {}", s.last_reload_error);
        assert!(s.last_reload_error.contains(ALICE_FILE), "{s:#?}");
        assert_eq!(s.revision, old, "{s:#?}");
        assert_eq!(authorize(&mut client, alice_get()).await.bundle_revision, old);

        let fixed = alice_json("Deny", "Read");
        let new = revision_of(&[(ALICE_FILE, &fixed)]);
        let written = Instant::now();
        write_in_place(&path, &fixed);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &new, written).await;
        report_latency("fixed after a rejection", took);
        assert_eq!(decision(&r), Decision::ExplicitDeny, "{r:#?}");
        let s = status(&mut client).await;
        assert!(s.last_reload_error.is_empty(), "a successful activation clears the error: {s:#?}");
        assert_eq!(s.previous_revision, old, "{s:#?}");
        server.shutdown().await;
    })
    .await;
}

// === 3. the Kubernetes ConfigMap symlink swap ===

#[cfg(unix)]
fn symlink(target: &str, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", link.display()));
}

/// What the kubelet does on a ConfigMap update: a new `..<timestamp>` folder, a `..data_tmp` symlink
/// to it renamed over `..data` (atomic), then the old folder removed.
#[cfg(unix)]
fn configmap_swap(dir: &Path, from: &str, to: &str, files: &[(&str, &str)]) {
    support::write_files(&dir.join(to), files);
    symlink(to, &dir.join("..data_tmp"));
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("rename ..data_tmp over ..data");
    std::fs::remove_dir_all(dir.join(from)).expect("remove the old timestamped folder");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_configmap_data_symlink_swap_is_answered_by_the_new_revision() {
    bounded(async {
        let tmp = support::temp_dir();
        // The mount point: top-level symlinks into `..data`, which points at a timestamped folder.
        let dir = tmp.path().join("bundle");
        let v1 = alice_json("Allow", "Read");
        let v1_files = [(ALICE_FILE, v1.as_str())];
        support::write_files(&dir.join("..2026_01_01_v1"), &v1_files);
        symlink("..2026_01_01_v1", &dir.join("..data"));
        symlink("..data/iam", &dir.join("iam"));
        let server = Sidecar::start(&dir, None, None).await;
        assert_eq!(server.revision(), revision_of(&v1_files), "the hidden folders are not part of the bundle");
        let mut client = server.client().await;
        assert_eq!(decision(&authorize(&mut client, alice_get()).await), Decision::Allow);

        let v2 = alice_json("Deny", "Read");
        let v2_files = [(ALICE_FILE, v2.as_str())];
        let written = Instant::now();
        configmap_swap(&dir, "..2026_01_01_v1", "..2026_01_01_v2", &v2_files);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &revision_of(&v2_files), written).await;
        report_latency("ConfigMap ..data swap", took);
        assert_eq!(decision(&r), Decision::ExplicitDeny, "{r:#?}");

        // A second swap: the watch was not lost with the first target (flagd#42, opa#2588).
        let v3 = alice_json("Allow", "ReadAgain");
        let v3_files = [(ALICE_FILE, v3.as_str())];
        let written = Instant::now();
        configmap_swap(&dir, "..2026_01_01_v2", "..2026_01_01_v3", &v3_files);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &revision_of(&v3_files), written).await;
        report_latency("ConfigMap ..data swap, again", took);
        assert_eq!(decision(&r), Decision::Allow, "{r:#?}");
        server.shutdown().await;
    })
    .await;
}

// === 4. poll mode and SIGHUP ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_mode_without_the_watcher_picks_up_a_change() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let server = Sidecar::start(tmp.path(), None, Some(100)).await;
        let mut client = server.client().await;
        let denying = alice_json("Deny", "Read");
        let new = revision_of(&[(ALICE_FILE, &denying)]);
        let written = Instant::now();
        write_then_rename(&tmp.path().join(ALICE_FILE), &denying);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &new, written).await;
        report_latency("poll every 100 ms", took);
        assert_eq!(decision(&r), Decision::ExplicitDeny, "{r:#?}");
        server.shutdown().await;
    })
    .await;
}

/// The `warden serve` child process, killed (SIGKILL) if the test panics.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("run kill -{sig}: {e}"));
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

async fn uds_channel(path: PathBuf) -> Result<Channel, tonic::transport::Error> {
    Endpoint::try_from("http://[::]:50051")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_real_binary() {
    bounded(async {
        let tmp = support::temp_dir();
        let dir = tmp.path().join("bundle");
        let alice = alice_json("Allow", "Read");
        support::write_files(&dir, &[(ALICE_FILE, &alice)]);
        let old = revision_of(&[(ALICE_FILE, &alice)]);
        let socket = tmp.path().join("warden.sock");
        let log_path = tmp.path().join("stderr.log");
        let log = std::fs::File::create(&log_path).expect("create the log file");
        // Poll mode with a one-hour interval: no watcher, and no poll within the test.
        let child = std::process::Command::new(support::warden_bin())
            .args(["serve", "--bundle", utf8(&dir), "--listen", "off", "--uds", utf8(&socket)])
            .args(["--admin-listen", "off", "--poll-interval", "3600000"])
            .env_remove("WARDEN_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn warden serve");
        let mut child = Child(child);
        let pid = child.0.id();
        let server_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

        // Wait until it answers from the bundle.
        let started = Instant::now();
        let mut client = loop {
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!("warden serve exited early with {status}:\n{}", server_log());
            }
            if let Ok(ch) = uds_channel(socket.clone()).await {
                let mut c = AuthorizerClient::new(ch);
                if let Ok(r) = c.authorize(alice_get()).await {
                    assert_eq!(r.get_ref().bundle_revision, old);
                    break c;
                }
            }
            assert!(started.elapsed() < WAIT, "warden serve not answering after {WAIT:?}:\n{}", server_log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        };

        let denying = alice_json("Deny", "Read");
        let new = revision_of(&[(ALICE_FILE, &denying)]);
        write_then_rename(&dir.join(ALICE_FILE), &denying);
        // Without a signal, nothing changes.
        let quiet = Instant::now();
        while quiet.elapsed() < Duration::from_millis(300) {
            let r = authorize(&mut client, alice_get()).await;
            assert_eq!((r.bundle_revision.as_str(), decision(&r)), (old.as_str(), Decision::Allow), "{r:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sent = Instant::now();
        signal(pid, "HUP");
        let (r, took) = first_answer_from(&mut client, &alice_get(), &new, sent).await;
        eprintln!("SIGHUP: {:.1} ms from the signal to the first answer of the new revision", ms(took));
        assert_eq!(decision(&r), Decision::ExplicitDeny, "{r:#?}");
        assert!(took < Duration::from_secs(2), "SIGHUP answered after {took:?}");
        let st = status(&mut client).await;
        assert_eq!(st.previous_revision, old, "{st:#?}");
        assert!(child.0.try_wait().expect("child status").is_none(), "SIGHUP must not stop the server");

        // SIGTERM: a clean exit.
        drop(client);
        signal(pid, "TERM");
        let stopping = Instant::now();
        let status = loop {
            if let Some(s) = child.0.try_wait().expect("child status") {
                break s;
            }
            assert!(stopping.elapsed() < WAIT, "warden serve did not exit after SIGTERM:\n{}", server_log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "exit after SIGTERM: {status}\n{}", server_log());
        assert!(server_log().contains("SIGHUP"), "the reload is logged:\n{}", server_log());
    })
    .await;
}

// === 5. reloads under load ===

const STUDIO_ALICE: &str = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1";
const PRESIGN: &str = "sagemaker:CreatePartnerAppPresignedUrl";
const COMET_APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001";
const USER_POLICY: &str = "iam/policies/SageMakerPartnerAppUserPolicy.json";

/// Alice (Team1) presigning her team's Comet app: ALLOW on the default bundle.
fn presign_request() -> proto::AuthorizeRequest {
    let ip = pbjson_types::Value { kind: Some(pbjson_types::value::Kind::StringValue("10.100.10.7".into())) };
    proto::AuthorizeRequest {
        context: Some(std::iter::once(("aws:SourceIp".to_owned(), ip)).collect()),
        ..request(STUDIO_ALICE, PRESIGN, COMET_APP)
    }
}

/// The decision and determining statements a bundle directory gives `req`, computed offline.
fn offline_answer(dir: &Path, req: &proto::AuthorizeRequest) -> (String, (Decision, Vec<proto::StatementRef>)) {
    let bundle = warden::runtime::files::read_dir(dir).unwrap_or_else(|p| panic!("{}: {p:?}", dir.display()));
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("time").as_millis() as i64;
    let r = warden::grpc::convert::request_from_proto(req.clone(), now).expect("a valid request");
    let resp = warden::engine::authorize(&bundle, &r);
    let p = warden::grpc::convert::response_to_proto(&resp, &bundle.revision, false, String::new());
    (bundle.revision.clone(), (decision(&p), p.determining))
}

/// What the client tasks saw.
#[derive(Default)]
struct Seen {
    calls: u64,
    failures: Vec<String>,
    inconsistent: Vec<String>,
    by_revision: BTreeMap<String, u64>,
    /// Changes of revision between two successive answers of one client.
    switches: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_no_call_and_every_answer_matches_its_revision() {
    bounded(async {
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let live_tmp = support::temp_dir();
        let live = live_tmp.path().join("bundle");
        support::copy_tree(&policies, &live, &|_| false);
        // Variant A is the default bundle; B turns statement 0 of the user policy into a Deny.
        let a_text = std::fs::read_to_string(live.join(USER_POLICY)).expect("read the user policy");
        let mut doc: serde_json::Value = serde_json::from_str(&a_text).expect("JSON");
        doc["PolicyDocument"]["Statement"][0]["Effect"] = json!("Deny");
        let b_text = serde_json::to_string_pretty(&doc).expect("JSON");
        let b_dir = support::copy_to_temp(&live, &|_| false);
        support::write_file(b_dir.path(), USER_POLICY, b_text.as_bytes());
        let req = presign_request();
        let (rev_a, answer_a) = offline_answer(&live, &req);
        let (rev_b, answer_b) = offline_answer(b_dir.path(), &req);
        assert_eq!(answer_a.0, Decision::Allow, "{answer_a:?}");
        assert_eq!(answer_b.0, Decision::ExplicitDeny, "{answer_b:?}");
        let expected: Arc<BTreeMap<String, (Decision, Vec<proto::StatementRef>)>> =
            Arc::new([(rev_a.clone(), answer_a), (rev_b.clone(), answer_b)].into_iter().collect());

        let server = Sidecar::start(&live, None, None).await;
        assert_eq!(server.revision(), rev_a);
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..4 {
            let mut client = server.client().await;
            let (stop, expected, req) = (stop.clone(), expected.clone(), req.clone());
            clients.push(tokio::spawn(async move {
                let mut seen = Seen::default();
                let mut last = String::new();
                while !stop.load(Ordering::Relaxed) {
                    seen.calls += 1;
                    match tokio::time::timeout(Duration::from_secs(5), client.authorize(req.clone())).await {
                        Err(_) => seen.failures.push("a call took over 5 s".into()),
                        Ok(Err(s)) => seen.failures.push(format!("{s:?}")),
                        Ok(Ok(r)) => {
                            let r = r.into_inner();
                            *seen.by_revision.entry(r.bundle_revision.clone()).or_default() += 1;
                            if !last.is_empty() && last != r.bundle_revision {
                                seen.switches += 1;
                            }
                            last.clone_from(&r.bundle_revision);
                            match expected.get(&r.bundle_revision) {
                                None => seen.inconsistent.push(format!("unknown revision: {r:?}")),
                                Some((d, det)) if (decision(&r), &r.determining) != (*d, det) => {
                                    seen.inconsistent.push(format!("expected {d:?} {det:?}, got {r:?}"));
                                }
                                Some(_) => {}
                            }
                        }
                    }
                }
                seen
            }));
        }

        // Flip the file between the two variants every 50 ms for 10 s (write-then-rename).
        let path = live.join(USER_POLICY);
        let started = Instant::now();
        let mut flips = 0u32;
        while started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            flips += 1;
            write_then_rename(&path, if flips % 2 == 1 { &b_text } else { &a_text });
        }
        // The server settles on what is on disk.
        let last = if flips % 2 == 1 { &rev_b } else { &rev_a };
        let mut probe = server.client().await;
        let (_, settled) = first_answer_from(&mut probe, &req, last, Instant::now()).await;
        stop.store(true, Ordering::Relaxed);
        let mut total = Seen::default();
        for c in clients {
            let s = within("a client task to stop", c).await.expect("client task");
            total.calls += s.calls;
            total.failures.extend(s.failures);
            total.inconsistent.extend(s.inconsistent);
            total.switches = total.switches.max(s.switches);
            for (rev, n) in s.by_revision {
                *total.by_revision.entry(rev).or_default() += n;
            }
        }
        let revisions: BTreeSet<&String> = total.by_revision.keys().collect();
        eprintln!(
            "reload under load: {} calls, {} failed, {} inconsistent, {} flips in {:.1} s, answers by revision \
             {:?} (A = {rev_a}, B = {rev_b}), settled {:.1} ms after the last flip, up to {} revision switches seen by one client",
            total.calls,
            total.failures.len(),
            total.inconsistent.len(),
            flips,
            started.elapsed().as_secs_f64(),
            total.by_revision,
            ms(settled),
            total.switches,
        );
        assert!(total.failures.is_empty(), "failed calls: {:?}", &total.failures[..total.failures.len().min(5)]);
        assert!(
            total.inconsistent.is_empty(),
            "answers inconsistent with their revision: {:?}",
            &total.inconsistent[..total.inconsistent.len().min(5)]
        );
        assert_eq!(revisions.len(), 2, "both revisions answered during the flips: {:?}", total.by_revision);
        assert!(total.calls >= 200, "the clients made too few calls: {}", total.calls);
        server.shutdown().await;
    })
    .await;
}

// === 6. changes the watcher must not lose ===

/// Writes `count` successive changes, each as soon as the previous one is active (seen in the store),
/// and fails naming the first change that is not active within [`RELOAD_BOUND`].
async fn successive_changes(server: &Sidecar, dir: &Path, count: usize) {
    let path = dir.join(ALICE_FILE);
    let store = server.running().store.clone();
    for i in 0..count {
        let text = alice_json(if i % 2 == 0 { "Deny" } else { "Allow" }, &format!("Change{i}"));
        let want = revision_of(&[(ALICE_FILE, &text)]);
        write_in_place(&path, &text);
        let written = Instant::now();
        while store.load().expect("an active bundle").bundle.revision != want {
            assert!(
                written.elapsed() < RELOAD_BOUND,
                "change {i}, written right after the previous activation, was never loaded (waited {RELOAD_BOUND:?})"
            );
            tokio::task::yield_now().await;
        }
    }
}

/// Regression: the watcher used to unwatch the whole tree and watch it afresh after every reload; a
/// change written in between raised no event and was never loaded. A writer that saves again right
/// after an activation (two quick deploys) hit that gap within a few dozen changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_written_right_after_an_activation_is_not_lost() {
    bounded(async {
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        successive_changes(&server, tmp.path(), 100).await;
        server.shutdown().await;
    })
    .await;
}

/// Regression: the watcher used to be armed by a task spawned next to the first load; a change written
/// after the first load read the directory but before the watch existed raised no event, and the ready
/// server stayed on stale content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_written_right_after_the_first_activation_is_not_lost() {
    bounded(async {
        for start in 0..30 {
            let tmp = bundle_in_temp(&[(ALICE_FILE, &alice_json("Allow", "Read"))]);
            let config =
                ServeConfig::from_flags(Some(utf8(tmp.path())), Some("127.0.0.1:0"), None, Some("off"), Some(5_000))
                    .expect("valid flags");
            let running = within("Running::start", Running::start(&config, Options::default()))
                .await
                .unwrap_or_else(|e| panic!("Running::start: {e:#}"));
            let mut first = running.first_load.clone();
            within("the first load", first.wait_for(Option::is_some)).await.expect("first load");
            let text = alice_json("Deny", "Read");
            let want = revision_of(&[(ALICE_FILE, &text)]);
            write_in_place(&tmp.path().join(ALICE_FILE), &text);
            let written = Instant::now();
            while running.store.load().expect("an active bundle").bundle.revision != want {
                assert!(written.elapsed() < RELOAD_BOUND, "start {start}: the change written at readiness was lost");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(within("shutdown", running.shutdown()).await);
        }
    })
    .await;
}

/// git-sync and similar tools publish a new checkout and swap a symlink to it: here the bundle
/// directory itself is that symlink (`current -> rev-1`, then `rev-2`). The watches on the old target
/// must move to the new one, with no change lost meanwhile.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_directory_that_is_a_swapped_symlink_is_followed_to_its_new_target() {
    bounded(async {
        let tmp = support::temp_dir();
        let v1 = alice_json("Allow", "Read");
        support::write_files(&tmp.path().join("rev-1"), &[(ALICE_FILE, &v1)]);
        let current = tmp.path().join("current");
        symlink("rev-1", &current);
        let server = Sidecar::start(&current, None, None).await;
        assert_eq!(server.revision(), revision_of(&[(ALICE_FILE, &v1)]));
        let mut client = server.client().await;

        let v2 = alice_json("Deny", "Read");
        support::write_files(&tmp.path().join("rev-2"), &[(ALICE_FILE, &v2)]);
        let written = Instant::now();
        symlink("rev-2", &tmp.path().join("current.tmp"));
        std::fs::rename(tmp.path().join("current.tmp"), &current).expect("rename the symlink over `current`");
        let (r, took) = first_answer_from(&mut client, &alice_get(), &revision_of(&[(ALICE_FILE, &v2)]), written).await;
        report_latency("bundle directory symlink swap", took);
        assert_eq!(decision(&r), Decision::ExplicitDeny, "{r:#?}");
        // The old target is gone; edits inside the new one are seen, right away and repeatedly.
        std::fs::remove_dir_all(tmp.path().join("rev-1")).expect("remove the old checkout");
        successive_changes(&server, &current, 20).await;
        server.shutdown().await;
    })
    .await;
}

// === 7. the watch follows the path, not the inode (SPEC §6.1) ===

/// A deny SCP next to the allow-all one: alice's read becomes an explicit deny.
fn deny_get_scps() -> [(&'static str, String); 2] {
    [
        ("organizations/scps/FullAWSAccess.json", scp_json("FullAWSAccess", "Allow", "*")),
        ("organizations/scps/NoGet.json", scp_json("NoGet", "Deny", "s3:GetObject")),
    ]
}

/// Adds the deny SCP into `dir` (one write each, in place) and requires the server to answer the new
/// revision, an explicit deny, within 1 s of the write, with no signal.
async fn added_deny_scp_is_enforced_within_1s(
    client: &mut AuthorizerClient<Channel>,
    dir: &Path,
    alice: &str,
    what: &str,
) {
    let scps = deny_get_scps();
    let files = [(ALICE_FILE, alice), (scps[0].0, scps[0].1.as_str()), (scps[1].0, scps[1].1.as_str())];
    let want = revision_of(&files);
    let written = Instant::now();
    support::write_files(dir, &[(scps[0].0, scps[0].1.as_str()), (scps[1].0, scps[1].1.as_str())]);
    let (r, took) = first_answer_from(client, &alice_get(), &want, written).await;
    report_latency(what, took);
    assert_eq!(decision(&r), Decision::ExplicitDeny, "{what}: {r:#?}");
    assert!(took < Duration::from_secs(1), "{what}: the deny SCP was enforced only after {took:?}");
}

/// `mv bundle bundle.old && mv bundle.new bundle`: the watch must move to the new directory. Once it
/// did not (it stayed on the old inode): a deny SCP added to the new directory went unenforced, a
/// stale ALLOW, until SIGHUP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_directory_renamed_away_and_replaced_is_followed() {
    bounded(async {
        let allow = alice_json("Allow", "Read");
        let tmp = bundle_in_temp(&[(ALICE_FILE, &allow)]);
        let dir = tmp.path().to_path_buf();
        let parent = dir.parent().expect("a parent").to_path_buf();
        let server = Sidecar::start(&dir, None, None).await;
        let mut client = server.client().await;
        assert_eq!(decision(&authorize(&mut client, alice_get()).await), Decision::Allow);

        // 1. Swap in a directory with other content: the swap itself is seen.
        let v2 = alice_json("Allow", "ReadV2");
        support::write_files(&parent.join("bundle.new"), &[(ALICE_FILE, &v2)]);
        let written = Instant::now();
        std::fs::rename(&dir, parent.join("bundle.old")).expect("mv bundle bundle.old");
        std::fs::rename(parent.join("bundle.new"), &dir).expect("mv bundle.new bundle");
        let (r, took) = first_answer_from(&mut client, &alice_get(), &revision_of(&[(ALICE_FILE, &v2)]), written).await;
        report_latency("directory rename swap", took);
        assert_eq!(decision(&r), Decision::Allow, "{r:#?}");
        // 2. An edit inside the new directory is seen too.
        added_deny_scp_is_enforced_within_1s(&mut client, &dir, &v2, "deny SCP added after a rename swap").await;

        // 3. Swap in a copy with the same content (nothing to reload), wait, then edit the new one.
        let v3 = alice_json("Allow", "ReadV3");
        std::fs::remove_dir_all(parent.join("bundle.old")).expect("rm -r bundle.old");
        support::write_files(&parent.join("bundle.new"), &[(ALICE_FILE, &v3)]);
        std::fs::rename(&dir, parent.join("bundle.old")).expect("mv bundle bundle.old");
        std::fs::rename(parent.join("bundle.new"), &dir).expect("mv bundle.new bundle");
        let (r, _) =
            first_answer_from(&mut client, &alice_get(), &revision_of(&[(ALICE_FILE, &v3)]), Instant::now()).await;
        assert_eq!(decision(&r), Decision::Allow, "{r:#?}");
        let copy = parent.join("bundle.copy");
        support::copy_tree(&dir, &copy, &|_| false);
        std::fs::rename(&dir, parent.join("bundle.old2")).expect("mv bundle bundle.old2");
        std::fs::rename(&copy, &dir).expect("mv bundle.copy bundle");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.revision(), revision_of(&[(ALICE_FILE, &v3)]), "same content, same revision");
        added_deny_scp_is_enforced_within_1s(&mut client, &dir, &v3, "deny SCP added after a same-content swap").await;
        server.shutdown().await;
    })
    .await;
}

/// `rm -r bundle && mkdir bundle && …`: while the directory is missing the old revision keeps
/// serving (the reload is rejected); once it is re-created, it and every later edit in it are seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_directory_deleted_and_recreated_is_followed() {
    bounded(async {
        let allow = alice_json("Allow", "Read");
        let old = revision_of(&[(ALICE_FILE, &allow)]);
        let tmp = bundle_in_temp(&[(ALICE_FILE, &allow)]);
        let dir = tmp.path().to_path_buf();
        let server = Sidecar::start(&dir, None, None).await;
        let mut client = server.client().await;

        std::fs::remove_dir_all(&dir).expect("rm -r bundle");
        let removed = Instant::now();
        let s = loop {
            let s = status(&mut client).await;
            if !s.last_reload_error.is_empty() {
                break s;
            }
            assert!(removed.elapsed() < RELOAD_BOUND, "removing the bundle directory was not noticed: {s:#?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(s.revision, old, "the old revision keeps serving: {s:#?}");
        assert_eq!(authorize(&mut client, alice_get()).await.bundle_revision, old);

        let v2 = alice_json("Allow", "ReadV2");
        let written = Instant::now();
        support::write_files(&dir, &[(ALICE_FILE, &v2)]);
        let (r, took) = first_answer_from(&mut client, &alice_get(), &revision_of(&[(ALICE_FILE, &v2)]), written).await;
        report_latency("re-created bundle directory", took);
        assert_eq!(decision(&r), Decision::Allow, "{r:#?}");
        assert!(status(&mut client).await.last_reload_error.is_empty(), "the activation clears the error");
        added_deny_scp_is_enforced_within_1s(&mut client, &dir, &v2, "deny SCP added after delete + re-create").await;

        // At once this time (`rm -r bundle && mkdir bundle && cp …`, within one debounce): the path
        // names the same thing before and after the batch, but not the same directory.
        let v3 = alice_json("Allow", "ReadV3");
        let written = Instant::now();
        std::fs::remove_dir_all(&dir).expect("rm -r bundle");
        support::write_files(&dir, &[(ALICE_FILE, &v3)]);
        let (_, took) = first_answer_from(&mut client, &alice_get(), &revision_of(&[(ALICE_FILE, &v3)]), written).await;
        report_latency("bundle directory deleted and re-created at once", took);
        added_deny_scp_is_enforced_within_1s(&mut client, &dir, &v3, "deny SCP added after a quick re-create").await;
        // Removing the SCPs again, then a series of edits, each seen.
        std::fs::remove_dir_all(dir.join("organizations")).expect("rm -r organizations");
        first_answer_from(&mut client, &alice_get(), &revision_of(&[(ALICE_FILE, &v3)]), Instant::now()).await;
        successive_changes(&server, &dir, 5).await;
        server.shutdown().await;
    })
    .await;
}

/// The bundle path is a symlink (`ln -sfn new bundle.tmp && mv -T bundle.tmp bundle`), retargeted;
/// then the directory it names is itself replaced by a rename (the link unchanged, its target path
/// unchanged, the inode new). Each time, edits in whatever the path names are seen.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_bundle_path_is_followed_through_retargets_and_replaced_targets() {
    bounded(async {
        let tmp = support::temp_dir();
        let releases = tmp.path().join("releases");
        let v1 = alice_json("Allow", "V1");
        support::write_files(&releases.join("a"), &[(ALICE_FILE, &v1)]);
        let bundle = tmp.path().join("bundle");
        symlink("releases/a", &bundle);
        let server = Sidecar::start(&bundle, None, None).await;
        let mut client = server.client().await;

        // 1. Retarget the link atomically.
        let v2 = alice_json("Allow", "V2");
        support::write_files(&releases.join("b"), &[(ALICE_FILE, &v2)]);
        let written = Instant::now();
        symlink("releases/b", &tmp.path().join("bundle.tmp"));
        std::fs::rename(tmp.path().join("bundle.tmp"), &bundle).expect("mv -T bundle.tmp bundle");
        let (_, took) = first_answer_from(&mut client, &alice_get(), &revision_of(&[(ALICE_FILE, &v2)]), written).await;
        report_latency("symlink retarget", took);
        added_deny_scp_is_enforced_within_1s(&mut client, &bundle, &v2, "deny SCP added after a symlink retarget")
            .await;

        // 2. Replace the target directory itself (`mv releases/b releases/b.old && mv releases/c releases/b`).
        let v3 = alice_json("Allow", "V3");
        support::write_files(&releases.join("c"), &[(ALICE_FILE, &v3)]);
        let written = Instant::now();
        std::fs::rename(releases.join("b"), releases.join("b.old")).expect("mv releases/b releases/b.old");
        std::fs::rename(releases.join("c"), releases.join("b")).expect("mv releases/c releases/b");
        let (_, took) = first_answer_from(&mut client, &alice_get(), &revision_of(&[(ALICE_FILE, &v3)]), written).await;
        report_latency("target replaced behind the symlink", took);
        added_deny_scp_is_enforced_within_1s(&mut client, &bundle, &v3, "deny SCP added after the target was replaced")
            .await;
        server.shutdown().await;
    })
    .await;
}

// === 8. compare before compiling; status stays small (SPEC §6.1) ===

/// A reload that finds the active content again (a broken edit reverted) is `unchanged` and clears
/// the last reload error; nothing is activated again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverting_to_the_active_content_clears_the_last_reload_error() {
    bounded(async {
        let alice = alice_json("Allow", "Read");
        let old = revision_of(&[(ALICE_FILE, &alice)]);
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice)]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        let activated_at = status(&mut client).await.activated_at;
        let path = tmp.path().join(ALICE_FILE);

        write_in_place(&path, &alice_json("Permit", "Read"));
        let written = Instant::now();
        loop {
            let s = status(&mut client).await;
            if !s.last_reload_error.is_empty() {
                break;
            }
            assert!(written.elapsed() < RELOAD_BOUND, "the broken edit was not rejected: {s:#?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        write_in_place(&path, &alice);
        let written = Instant::now();
        let s = loop {
            let s = status(&mut client).await;
            if s.last_reload_error.is_empty() {
                break s;
            }
            assert!(
                written.elapsed() < RELOAD_BOUND,
                "reverting to the active content did not clear the error within {RELOAD_BOUND:?}: {s:#?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(s.revision, old, "{s:#?}");
        assert_eq!(s.activated_at, activated_at, "the same content is not activated again: {s:#?}");
        server.shutdown().await;
    })
    .await;
}

/// `count` statements with an unknown `Effect`, each one problem, in one managed policy file.
fn broken_statements(count: usize) -> String {
    let statement = r#"{"Effect":"X","Action":"a:b","Resource":"*"}"#;
    let mut s = String::with_capacity(count * (statement.len() + 1) + 64);
    s.push_str(r#"{"Version":"2012-10-17","Statement":["#);
    for i in 0..count {
        if i > 0 {
            s.push(',');
        }
        s.push_str(statement);
    }
    s.push_str("]}");
    s
}

/// A reload with over 100,000 problems: `GetBundleStatus` once failed with OUT_OF_RANGE (a status
/// larger than the message limit). It keeps the first 100 problems and the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_102000_problems_keeps_the_status_small() {
    bounded(async {
        let alice = alice_json("Allow", "Read");
        let old = revision_of(&[(ALICE_FILE, &alice)]);
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice)]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        // Three files of 34,000 problems each, each under the per-file size limit; written as hidden
        // files and renamed into place, so no reload sees half a file.
        let text = broken_statements(34_000);
        std::fs::create_dir_all(tmp.path().join("iam/policies")).expect("mkdir iam/policies");
        for i in 0..3 {
            write_then_rename(&tmp.path().join(format!("iam/policies/Broken{i}.json")), &text);
        }
        let written = Instant::now();
        let s = loop {
            let s = status(&mut client).await;
            if s.last_reload_error.contains("102000") {
                break s;
            }
            assert!(written.elapsed() < Duration::from_secs(60), "no rejection of 102000 problems: {s:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let size = prost::Message::encoded_len(&s);
        let lines: Vec<&str> = s.last_reload_error.lines().collect();
        eprintln!("status after 102000 problems: {size} bytes, {} lines, last: {:?}", lines.len(), lines.last());
        assert_eq!(s.revision, old, "the old revision keeps serving");
        assert_eq!(lines.len(), 101, "the first 100 problems and one line with the count");
        // The loader lists its first 1,000 problems and one line summing up the rest; the status keeps
        // the first 100 of those lines and the count of all.
        assert!(
            lines[..100]
                .iter()
                .all(|l| (l.contains("iam/policies/Broken") && l.contains("Effect")) || l.contains("more problems")),
            "{lines:?}"
        );
        assert!(lines[100].contains("102000"), "the count: {:?}", lines[100]);
        assert!(size < 64 * 1024, "the status is {size} bytes");
        assert_eq!(authorize(&mut client, alice_get()).await.bundle_revision, old);
        server.shutdown().await;
    })
    .await;
}

/// Poll mode over a broken bundle: the same broken content is one rejection (validated, logged and
/// counted once), not one per interval. The real binary, so its log and `/metrics` are its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_bundle_polled_20_times_is_rejected_once() {
    bounded(async {
        let tmp = support::temp_dir();
        let dir = tmp.path().join("bundle");
        let alice = alice_json("Allow", "Read");
        support::write_files(&dir, &[(ALICE_FILE, &alice)]);
        let log = tmp.path().join("serve.log");
        let args = ["serve", "--bundle", utf8(&dir), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"];
        let mut child = support::ServeChild::spawn(tmp.path(), args.iter().chain(&["--poll-interval", "50"]), &log);
        let admin = child.logged_addr("admin HTTP listening").await;
        let rejected = |text: &str| {
            support::sample_sum(
                &support::parse_prometheus(text),
                "warden_bundle_reloads_total",
                &[("result", "rejected")],
            )
        };
        let started = Instant::now();
        let before = loop {
            let r = support::http_get(admin, "/readyz").await;
            if r.status == 200 {
                break rejected(&support::http_get(admin, "/metrics").await.body);
            }
            assert!(started.elapsed() < WAIT, "not ready after {WAIT:?}:\n{}", child.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        };

        write_then_rename(&dir.join(ALICE_FILE), &alice_json("Permit", "Read"));
        // 1 s: 20 polls of the same broken content.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let metrics = support::http_get(admin, "/metrics").await.body;
        let logged = child.log().lines().filter(|l| l.contains("bundle rejected")).count();
        eprintln!("20 polls of a broken bundle: {} rejections counted, {logged} logged", rejected(&metrics) - before);
        assert_eq!(rejected(&metrics) - before, 1.0, "rejections counted:\n{metrics}");
        assert_eq!(logged, 1, "rejections logged:\n{}", child.log());
        let status = support::http_get(admin, "/v1/status").await.body;
        assert!(status.contains("Effect"), "the status keeps the error: {status}");

        // Fixed: activated at the next poll.
        let fixed = alice_json("Deny", "Read");
        write_then_rename(&dir.join(ALICE_FILE), &fixed);
        let want = revision_of(&[(ALICE_FILE, &fixed)]);
        let written = Instant::now();
        while !support::http_get(admin, "/readyz").await.body.contains(&want) {
            assert!(written.elapsed() < RELOAD_BOUND, "the fix was not activated:\n{}", child.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Issue 10: a FIFO and a link to `/dev/zero` dropped into a served bundle: the reload is rejected
/// without hanging (the reload lock is not wedged), the old revision keeps serving, and the next good
/// edit (the hazards removed, a new Sid) is picked up by the watcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_a_fifo_in_a_served_bundle_is_rejected_and_the_next_good_edit_reloads() {
    bounded(async {
        let alice = alice_json("Allow", "Read");
        let old = revision_of(&[(ALICE_FILE, &alice)]);
        let tmp = bundle_in_temp(&[(ALICE_FILE, &alice)]);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;
        let fifo = tmp.path().join("iam/policies/pipe.json");
        std::fs::create_dir_all(fifo.parent().expect("parent")).expect("mkdir");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
        assert!(made.success(), "mkfifo");
        std::os::unix::fs::symlink("/dev/zero", tmp.path().join("iam/policies/zero.json")).expect("symlink");
        let started = Instant::now();
        let s = loop {
            let s = status(&mut client).await;
            if s.last_reload_error.contains("pipe.json") {
                break s;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no rejection naming the FIFO: {s:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(s.last_reload_error.contains("zero.json"), "{}", s.last_reload_error);
        assert_eq!(s.revision, old, "the old revision keeps serving");
        assert_eq!(authorize(&mut client, alice_get()).await.bundle_revision, old);
        // The next good edit: hazards gone, a new Sid.
        std::fs::remove_file(&fifo).expect("rm fifo");
        std::fs::remove_file(tmp.path().join("iam/policies/zero.json")).expect("rm link");
        let edited = alice_json("Allow", "ReadAgain");
        write_then_rename(&tmp.path().join(ALICE_FILE), &edited);
        let new = revision_of(&[(ALICE_FILE, &edited)]);
        let started = Instant::now();
        while authorize(&mut client, alice_get()).await.bundle_revision != new {
            assert!(started.elapsed() < Duration::from_secs(10), "the good edit was not picked up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.shutdown().await;
    })
    .await;
}
