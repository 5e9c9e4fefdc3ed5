//! Issue 10 item 1 (SPEC §3.1 "Only regular files, only inside the bundle", "An empty bundle is not a
//! policy"): bundle directories with entries that hung, flooded or fooled the loader — a FIFO, a socket,
//! a symbolic link to `/dev/zero`, eight links to `.`, links that leave the root or loop, a hard link,
//! an empty directory, a file over 10 MiB, a flood of problems — and the Kubernetes ConfigMap layout that
//! must keep loading. Each runs the real `warden validate` under a time limit (killed if it overruns):
//! it must exit within 2 s, name each bad entry, and print a bounded number of lines. The last two run
//! the real server: an emptied directory or a FIFO is a rejected reload, and the last good bundle serves.
use crate::reload;
use crate::support::{self, Output};
use std::path::Path;
use std::time::Duration;

/// How long `warden validate` may take on any of these bundles.
const LIMIT: Duration = Duration::from_secs(2);
/// When a run that overran is killed (so that a hang fails the test instead of hanging it).
const KILL_AFTER: Duration = Duration::from_secs(5);
/// `MAX_FILE_BYTES` (10 MiB), restated: the limit is part of the contract (SPEC §3.1).
const MAX_FILE_BYTES: usize = 10 << 20;

const READ_POLICY: &str =
    r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}"#;
const ALICE: &str = r#"{"UserName": "alice", "Arn": "arn:aws:iam::111122223333:user/alice",
  "AttachedManagedPolicies": [{"PolicyName": "Read", "PolicyArn": "arn:aws:iam::111122223333:policy/Read"}]}"#;
const SCP_FULL: &str = r#"{"Version": "2012-10-17", "Statement": [{"Sid": "FullAWSAccess", "Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;

/// A valid bundle of one managed policy, in a new temp dir.
fn valid_bundle() -> tempfile::TempDir {
    support::bundle_in_temp(&[("iam/policies/Read.json", READ_POLICY)])
}

/// `warden validate DIR`, which must finish within [`LIMIT`].
fn validate_within_limit(dir: &Path) -> Output {
    let t = support::warden_timed(KILL_AFTER, [Path::new("validate"), dir]);
    assert!(
        !t.killed && t.elapsed < LIMIT,
        "`warden validate {}` ran for {:?} (killed: {}); the limit is {LIMIT:?}\n{}",
        dir.display(),
        t.elapsed,
        t.killed,
        t.out.dump()
    );
    t.out
}

/// Exit 1, every `expected` line printed exactly, and at most `max_lines` lines on stderr.
fn assert_rejected(out: &Output, expected: &[String], max_lines: usize) {
    assert_eq!(out.code, 1, "expected exit code 1:\n{}", out.dump());
    let got = support::problem_lines(&out.stderr);
    for line in expected {
        assert!(got.contains(line), "missing problem line\n  {line}\n{}", out.dump());
    }
    let lines = out.stderr.lines().count();
    assert!(lines <= max_lines, "{lines} lines on stderr, at most {max_lines} expected:\n{}", out.dump());
}

fn symlink(target: impl AsRef<Path>, link: &Path) {
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent).expect("create the link's folder");
    }
    std::os::unix::fs::symlink(target.as_ref(), link)
        .unwrap_or_else(|e| panic!("symlink {} -> {}: {e}", link.display(), target.as_ref().display()));
}

fn mkfifo(path: &Path) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the FIFO's folder");
    }
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

#[test]
fn issue_010_a_fifo_anywhere_is_refused_without_hanging() {
    let b = valid_bundle();
    mkfifo(&b.path().join("iam/policies/pipe.json"));
    mkfifo(&b.path().join("tests/fifo"));
    // A link to a FIFO inside the bundle is followed, and then refused for what it reaches.
    symlink("pipe.json", &b.path().join("iam/policies/to-pipe.json"));
    let out = validate_within_limit(b.path());
    let expected = [
        "iam/policies/pipe.json: /: not a regular file (fifo)".to_owned(),
        "iam/policies/to-pipe.json: /: not a regular file (fifo)".to_owned(),
        "tests/fifo: /: not a regular file (fifo)".to_owned(),
    ];
    assert_rejected(&out, &expected, 4);
}

#[test]
fn issue_010_a_socket_is_refused() {
    let b = valid_bundle();
    let _listener = std::os::unix::net::UnixListener::bind(b.path().join("iam/policies/sock.json"))
        .expect("bind a Unix socket in the bundle");
    let out = validate_within_limit(b.path());
    assert_rejected(&out, &["iam/policies/sock.json: /: not a regular file (socket)".to_owned()], 2);
}

#[test]
fn issue_010_a_symlink_to_dev_zero_is_refused_without_reading_it() {
    let b = valid_bundle();
    symlink("/dev/zero", &b.path().join("iam/policies/zero.json"));
    let out = validate_within_limit(b.path());
    let expected = ["iam/policies/zero.json: /: symbolic link leads outside the bundle (to `/dev/zero`)".to_owned()];
    assert_rejected(&out, &expected, 2);
}

#[test]
fn issue_010_eight_symlinks_to_the_root_are_eight_problems() {
    let b = valid_bundle();
    for i in 1..=8 {
        symlink(".", &b.path().join(format!("l{i}")));
    }
    let out = validate_within_limit(b.path());
    let expected: Vec<String> =
        (1..=8).map(|i| format!("l{i}: /: a second path to `.`: every file and directory is read once")).collect();
    assert_rejected(&out, &expected, 9);
}

#[test]
fn issue_010_symlinks_that_leave_the_bundle_are_refused() {
    let b = valid_bundle();
    let outside = support::bundle_in_temp(&[("P.json", READ_POLICY), ("users/alice.json", ALICE)]);
    let outside_root = outside.path().canonicalize().expect("canonical temp dir");
    let root_parent = b.path().canonicalize().expect("canonical temp dir").parent().expect("a parent").to_path_buf();
    symlink(outside_root.join("P.json"), &b.path().join("iam/policies/Outside.json"));
    symlink(outside_root.join("users"), &b.path().join("iam/users"));
    symlink("../../..", &b.path().join("iam/groups/up"));
    let out = validate_within_limit(b.path());
    let expected = [
        format!("iam/groups/up: /: symbolic link leads outside the bundle (to `{}`)", root_parent.display()),
        format!(
            "iam/policies/Outside.json: /: symbolic link leads outside the bundle (to `{}`)",
            outside_root.join("P.json").display()
        ),
        format!("iam/users: /: symbolic link leads outside the bundle (to `{}`)", outside_root.join("users").display()),
    ];
    assert_rejected(&out, &expected, 4);
}

#[test]
fn issue_010_symlink_loops_and_second_paths_are_refused() {
    let b = valid_bundle();
    let root = b.path();
    symlink("b.json", &root.join("iam/policies/a.json"));
    symlink("a.json", &root.join("iam/policies/b.json"));
    symlink("me.json", &root.join("iam/policies/me.json"));
    // A folder link back up to `iam`, and a hard link: both reach what was already read.
    symlink("..", &root.join("iam/roles/up"));
    std::fs::hard_link(root.join("iam/policies/Read.json"), root.join("iam/policies/Read2.json")).expect("hard link");
    let out = validate_within_limit(root);
    let expected = [
        "iam/policies/Read2.json: /: a second path to `iam/policies/Read.json`: every file and directory is read once"
            .to_owned(),
        "iam/policies/a.json: /: symbolic link loop".to_owned(),
        "iam/policies/b.json: /: symbolic link loop".to_owned(),
        "iam/policies/me.json: /: symbolic link loop".to_owned(),
        "iam/roles/up: /: a second path to `iam`: every file and directory is read once".to_owned(),
    ];
    assert_rejected(&out, &expected, 6);
}

/// The layout the kubelet writes for a ConfigMap or projected volume: the content in a hidden
/// timestamped folder, `..data` linking to it, and visible names linking through `..data`.
#[test]
fn issue_010_a_configmap_layout_with_links_through_data_loads() {
    let files = [
        ("iam/policies/Read.json", READ_POLICY),
        ("iam/users/alice.json", ALICE),
        ("organizations/scps/FullAWSAccess.json", SCP_FULL),
    ];
    let plain = support::bundle_in_temp(&files);
    let want = support::revision_in(&validate_within_limit(plain.path()));

    let tmp = support::temp_dir();
    let mount = tmp.path();
    support::write_files(
        &mount.join("..2026_01_01_12_00_00.000000001"),
        &[("iam/policies/Read.json", READ_POLICY), ("iam/users/alice.json", ALICE), ("FullAWSAccess.json", SCP_FULL)],
    );
    symlink("..2026_01_01_12_00_00.000000001", &mount.join("..data"));
    symlink("..data/iam", &mount.join("iam"));
    symlink("../../..data/FullAWSAccess.json", &mount.join("organizations/scps/FullAWSAccess.json"));
    let out = validate_within_limit(mount);
    assert_eq!(out.code, 0, "a ConfigMap mount must load:\n{}", out.dump());
    assert_eq!(support::revision_in(&out), want, "the same files, the same revision");
}

#[test]
fn issue_010_an_empty_directory_is_not_a_bundle() {
    let empty = support::temp_dir();
    let out = validate_within_limit(empty.path());
    assert_rejected(&out, &[".: /: the bundle has no files: a half-swapped mount?".to_owned()], 2);

    // Only ignored files (notes, hidden entries) is no bundle either.
    let notes = support::bundle_in_temp(&[("README.md", "# notes"), (".git/config.json", "{}")]);
    let out = validate_within_limit(notes.path());
    assert_rejected(&out, &[".: /: the bundle has no files: a half-swapped mount?".to_owned()], 2);
}

/// (A file of exactly 10 MiB is read: `bad_bundles::a_file_of_exactly_10_mib_is_accepted`.)
#[test]
fn issue_010_a_file_over_10_mib_is_refused_without_reading_it() {
    let b = valid_bundle();
    let mut big = READ_POLICY.as_bytes().to_vec();
    big.resize(MAX_FILE_BYTES + 1, b' ');
    support::write_file(b.path(), "iam/policies/Big.json", &big);
    let out = validate_within_limit(b.path());
    let expected = [format!(
        "iam/policies/Big.json: /: file of {} bytes exceeds the limit of {MAX_FILE_BYTES}",
        MAX_FILE_BYTES + 1
    )];
    assert_rejected(&out, &expected, 2);
}

#[test]
fn issue_010_a_flood_of_problems_is_capped() {
    // 5,000 malformed actions: 5,000 problems, of which the first 1,000 are listed.
    let actions: Vec<String> = (0..5_000).map(|i| format!("\"bad{i:04}\"")).collect();
    let doc = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": [{}], "Resource": "*"}}]}}"#,
        actions.join(", ")
    );
    let b = support::bundle_in_temp(&[("iam/policies/Flood.json", &doc)]);
    let out = validate_within_limit(b.path());
    let expected = [
        "iam/policies/Flood.json: /Statement/0/Action/0: malformed action `bad0000`: expected `*` or `service:action`"
            .to_owned(),
        ".: /: … and 4000 more problems (only the first 1000 are listed)".to_owned(),
    ];
    assert_rejected(&out, &expected, 1_002);
    assert_eq!(out.stderr.lines().last(), Some("5000 problems found"), "{}", out.dump());
}

// --- the same rules on reload: `serve` keeps the last good bundle ---------------------------

/// Waits until the server reports a reload error; returns it.
async fn next_reload_error(
    client: &mut warden::proto::authorizer_client::AuthorizerClient<tonic::transport::Channel>,
) -> warden::proto::BundleStatus {
    let since = std::time::Instant::now();
    loop {
        let s = reload::status(client).await;
        if !s.last_reload_error.is_empty() {
            return s;
        }
        assert!(since.elapsed() < reload::RELOAD_BOUND, "no reload error after {:?}: {s:#?}", reload::RELOAD_BOUND);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `body` on a runtime of its own thread and fails if it has not finished within `limit`: a server
/// wedged by a blocking read must fail the test, not hang it (the old reader blocked the runtime's
/// threads, so a timeout inside the runtime never fired).
fn on_own_runtime<F, Fut>(limit: Duration, body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(body())));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the server test did not finish within {limit:?}: the reload is wedged"),
    }
}

#[test]
fn issue_010_serve_keeps_the_last_good_bundle_when_the_directory_empties() {
    on_own_runtime(Duration::from_secs(60), || async {
        let alice = reload::alice_json("Allow", "Read");
        let tmp = reload::bundle_in_temp(&[("iam/users/alice.json", &alice)]);
        let server = reload::Sidecar::start(tmp.path(), None, None).await;
        let old = server.revision();
        let mut client = server.client().await;
        // A half-swapped mount: the files are gone for a moment.
        std::fs::remove_dir_all(tmp.path().join("iam")).expect("empty the bundle directory");
        let s = next_reload_error(&mut client).await;
        assert!(s.last_reload_error.contains("the bundle has no files"), "{s:#?}");
        assert_eq!(s.revision, old, "the last good bundle keeps serving: {s:#?}");
        let r = reload::authorize(&mut client, reload::alice_get()).await;
        assert_eq!((r.bundle_revision.as_str(), reload::decision(&r)), (old.as_str(), warden::proto::Decision::Allow));
        server.shutdown().await;
    });
}

#[test]
fn issue_010_a_fifo_does_not_wedge_the_reload() {
    on_own_runtime(Duration::from_secs(60), || async {
        let alice = reload::alice_json("Allow", "Read");
        let tmp = reload::bundle_in_temp(&[("iam/users/alice.json", &alice)]);
        let server = reload::Sidecar::start(tmp.path(), None, None).await;
        let old = server.revision();
        let mut client = server.client().await;
        mkfifo(&tmp.path().join("iam/users/pipe.json"));
        let s = next_reload_error(&mut client).await;
        assert!(s.last_reload_error.contains("iam/users/pipe.json"), "{s:#?}");
        assert!(s.last_reload_error.contains("not a regular file (fifo)"), "{s:#?}");
        assert_eq!(s.revision, old, "{s:#?}");
        // The next edit is still picked up: the reload is not stuck on the FIFO.
        std::fs::remove_file(tmp.path().join("iam/users/pipe.json")).expect("remove the FIFO");
        let fixed = reload::alice_json("Deny", "Read");
        let new = reload::revision_of(&[("iam/users/alice.json", &fixed)]);
        let written = std::time::Instant::now();
        reload::write_in_place(&tmp.path().join("iam/users/alice.json"), &fixed);
        let (r, _) = reload::first_answer_from(&mut client, &reload::alice_get(), &new, written).await;
        assert_eq!(reload::decision(&r), warden::proto::Decision::ExplicitDeny, "{r:#?}");
        server.shutdown().await;
    });
}
