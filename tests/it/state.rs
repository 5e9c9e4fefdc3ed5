//! The admin state directory under reloads, shutdown and a killed process (SPEC §3.1, §5.5, §6.1):
//! an empty bundle never rewrites it; once shutdown has begun a revoke answers 503 and changes
//! nothing; an acknowledged revoke survives `kill -9`. Real files, the real server, and (for the kill)
//! the real binary.
use crate::propagate::{
    COMET, COMET_FILE, admin_role, admins_file, client, comet_json, config, read_state, start_active, start_server,
    stop, write_bundle,
};
use crate::support;
use std::path::Path;
use std::time::{Duration, Instant};
use warden::proto;
use warden::server::ReloadOutcome;

const WAIT: Duration = Duration::from_secs(20);

fn revoke_body(user: &str) -> String {
    serde_json::json!({"app_arn": COMET, "user_name": user}).to_string()
}

fn remembered(state: &Path) -> Vec<String> {
    let v = read_state(state);
    serde_json::from_value(v["apps"][COMET]["remembered"].clone()).unwrap_or_else(|e| panic!("{e}: {v:#}"))
}

/// Removes every entry of `dir`, leaving it empty (a half-swapped mount).
fn empty_dir(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("read the bundle directory") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("remove a folder");
        } else {
            std::fs::remove_file(&p).expect("remove a file");
        }
    }
}

/// A bundle directory that is empty, or holds only a README, is rejected: the old revision keeps
/// serving and `admins.json` stays byte for byte what it was (a remembered admin is not forgotten).
/// Going back to the active content is `unchanged` and writes nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_bundle_is_rejected_and_the_state_file_is_left_byte_for_byte() {
    crate::propagate::bounded(async {
        let bundle = write_bundle();
        let state_dir = support::temp_dir();
        let state = state_dir.path();
        let running = start_active(bundle.path(), Some(state)).await;
        support::write_file(bundle.path(), COMET_FILE, comet_json(&["alice"]).as_bytes());
        assert!(matches!(running.shared.reload().await, ReloadOutcome::Activated(_)));
        assert_eq!(remembered(state), ["carol"]);
        let before = std::fs::read(admins_file(state)).expect("admins.json");
        let revision = running.store.load().expect("active").bundle.revision.clone();
        let backup = support::copy_to_temp(bundle.path(), &|_| false);
        let mut c = client(&running).await;

        empty_dir(bundle.path());
        let outcome = running.shared.reload().await;
        let ReloadOutcome::Rejected(problems) = &outcome else { panic!("an empty bundle: {outcome:?}") };
        eprintln!("empty bundle rejected: {problems:?}");
        assert_eq!(std::fs::read(admins_file(state)).expect("admins.json"), before, "admins.json was rewritten");
        let r = crate::propagate::propagate(&mut c, crate::propagate::as_user(COMET, "carol")).await.expect("carol");
        assert_eq!(r.bundle_revision, revision, "the old revision keeps serving");
        assert_eq!(r.admin_role, proto::AdminRole::Admin as i32, "carol is still remembered");

        support::write_file(bundle.path(), "README.md", b"# nothing here yet\n");
        let outcome = running.shared.reload().await;
        assert!(matches!(outcome, ReloadOutcome::Rejected(_)), "a bundle of only a README: {outcome:?}");
        assert_eq!(std::fs::read(admins_file(state)).expect("admins.json"), before, "admins.json was rewritten");

        std::fs::remove_file(bundle.path().join("README.md")).expect("rm README.md");
        support::copy_tree(backup.path(), bundle.path(), &|_| false);
        let outcome = running.shared.reload().await;
        assert_eq!(outcome, ReloadOutcome::Unchanged(revision.clone()));
        assert_eq!(std::fs::read(admins_file(state)).expect("admins.json"), before);
        assert_eq!(admin_role(&mut c, COMET, "carol").await, proto::AdminRole::Admin);
        stop(running).await;
    })
    .await;
}

/// Revokes sent while the server shuts down: each one either answers 200 and is in `admins.json`,
/// or answers 503 and changed nothing. Once shutdown has begun, every revoke is 503 (it used to
/// answer 200 while the state directory was already released: acknowledged, never written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revokes_once_shutdown_has_begun_answer_503_and_change_nothing() {
    crate::propagate::bounded(async {
        let users: [&'static str; 4] = ["carol", "dave", "erin", "frank"];
        let bundle = write_bundle();
        support::write_file(
            bundle.path(),
            COMET_FILE,
            comet_json(&["alice", "carol", "dave", "erin", "frank"]).as_bytes(),
        );
        let state_dir = support::temp_dir();
        let state = state_dir.path();
        let running = start_active(bundle.path(), Some(state)).await;
        support::write_file(bundle.path(), COMET_FILE, comet_json(&["alice"]).as_bytes());
        assert!(matches!(running.shared.reload().await, ReloadOutcome::Activated(_)));
        assert_eq!(remembered(state), users);

        // An admin listener of our own on the server's shared state: it outlives the server's own.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let admin = listener.local_addr().expect("addr");
        let app = warden::server::admin::router(
            running.store.clone(),
            None,
            running.shared.clone(),
            Some(warden::config::AdminToken(support::ADMIN_TOKEN.as_bytes().to_vec())),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let shared = running.shared.clone();

        // Three revokes racing the shutdown (sent 0, 5 and 10 ms after the start, the shutdown at 5 ms).
        let racing: Vec<_> = users[..3]
            .iter()
            .enumerate()
            .map(|(i, &user)| {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
                    (user, support::http_post(admin, "/v1/admins/revoke", &revoke_body(user)).await)
                })
            })
            .collect();
        let shutdown = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            stop(running).await;
        });
        let mut answers = Vec::new();
        for r in racing {
            answers.push(r.await.expect("revoke task"));
        }
        shutdown.await.expect("shutdown task");
        eprintln!("revokes racing the shutdown: {:?}", answers.iter().map(|(u, (s, _))| (*u, *s)).collect::<Vec<_>>());
        let after = remembered(state);
        for (user, (status, body)) in &answers {
            match status {
                200 => assert!(!after.iter().any(|u| u == user), "{user}: 200 but still in admins.json: {after:?}"),
                503 => assert!(after.iter().any(|u| u == user), "{user}: 503 but removed from admins.json: {after:?}"),
                s => panic!("{user}: unexpected answer {s}: {body}"),
            }
        }

        // After shutdown: 503, naming why, and nothing changes (file or memory).
        let before = std::fs::read(admins_file(state)).expect("admins.json");
        let (status, body) = support::http_post(admin, "/v1/admins/revoke", &revoke_body("frank")).await;
        assert_eq!(status, 503, "a revoke after shutdown: {body}");
        assert!(body.contains("shutting down"), "{body}");
        assert_eq!(std::fs::read(admins_file(state)).expect("admins.json"), before, "admins.json changed");
        assert!(shared.store.load().expect("active").admins.is_remembered(COMET, "frank"), "memory changed");
        // A reload after shutdown does not write the state either.
        support::write_file(bundle.path(), COMET_FILE, comet_json(&["bob"]).as_bytes());
        let outcome = shared.reload().await;
        assert!(!matches!(outcome, ReloadOutcome::Activated(_)), "a reload after shutdown: {outcome:?}");
        assert_eq!(std::fs::read(admins_file(state)).expect("admins.json"), before, "admins.json changed");
        support::write_file(bundle.path(), COMET_FILE, comet_json(&["alice"]).as_bytes());

        // A new server agrees with the file.
        let running = start_server(&config(bundle.path(), Some(state))).await;
        let mut first = running.first_load.clone();
        crate::propagate::within("first load", first.wait_for(Option::is_some)).await.expect("first load");
        let mut c = client(&running).await;
        for user in users {
            let want = if after.iter().any(|u| u == user) { proto::AdminRole::Admin } else { proto::AdminRole::User };
            assert_eq!(admin_role(&mut c, COMET, user).await, want, "{user}");
        }
        stop(running).await;
    })
    .await;
}

/// `warden serve` with a state directory and both listeners on ephemeral ports.
fn serve(cwd: &Path, bundle: &Path, state: &Path, log: &str) -> support::ServeChild {
    let args: Vec<&std::ffi::OsStr> = vec![
        "serve".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--admin-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--admin-token-file".as_ref(),
        support::admin_token_file().as_os_str(),
    ];
    support::ServeChild::spawn(cwd, args, &cwd.join(log))
}

async fn wait_ready(child: &mut support::ServeChild, admin: std::net::SocketAddr) {
    let started = Instant::now();
    while support::http_get(admin, "/readyz").await.status != 200 {
        assert!(started.elapsed() < WAIT, "not ready after {WAIT:?}:\n{}", child.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A revoke answered 200 is on disk: the real binary is killed with SIGKILL right after the answer
/// (no graceful shutdown), restarted on the same state directory, and the user is still revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_revoke_survives_kill_9() {
    crate::propagate::bounded(async {
        let bundle = write_bundle();
        let work = support::temp_dir();
        let state = work.path().join("state");
        let mut child = serve(work.path(), bundle.path(), &state, "serve-1.log");
        let admin = child.logged_addr("admin HTTP listening").await;
        wait_ready(&mut child, admin).await;

        // carol leaves comet's admin list: the watcher reloads, she is remembered.
        support::write_file(bundle.path(), COMET_FILE, comet_json(&["alice"]).as_bytes());
        let started = Instant::now();
        while std::fs::read(admins_file(&state)).map_or(true, |_| remembered(&state) != ["carol"]) {
            assert!(started.elapsed() < WAIT, "carol never remembered:\n{}", child.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let (status, body) = support::http_post(admin, "/v1/admins/revoke", &revoke_body("carol")).await;
        assert_eq!(status, 200, "{body}");
        child.kill_9();
        assert_eq!(remembered(&state), Vec::<String>::new(), "the acknowledged revoke is on disk");

        let mut child = serve(work.path(), bundle.path(), &state, "serve-2.log");
        let admin = child.logged_addr("admin HTTP listening").await;
        let grpc = child.logged_addr("gRPC listening (TCP)").await;
        wait_ready(&mut child, admin).await;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut c = proto::authorizer_client::AuthorizerClient::new(channel);
        assert_eq!(admin_role(&mut c, COMET, "carol").await, proto::AdminRole::User, "carol stays revoked");
        assert_eq!(admin_role(&mut c, COMET, "alice").await, proto::AdminRole::RootAdmin);
        child.kill_9();
    })
    .await;
}
