//! Fleet mode's shared admin state (SPEC §10, issue 14 item 2) against a local DynamoDB (moto's server
//! mode on loopback): real `warden serve --state dynamodb://TABLE` processes, each on its own copy of
//! the same bundle, answering PropagateIdentity (whose `admin_role` is what the shared state decides).
//! A demotion seen by one replica is remembered by the fleet; a revoke on one replica reaches the
//! other within 2 s; concurrent reloads of different demotions on both lose no update (20 rounds); the
//! emulator killed mid-run leaves both serving their last state, counted; a table missing or
//! unreachable at start is an error naming the flag, the table and the cause.
use crate::moto::Moto;
use crate::propagate::{COMET, COMET_FILE, comet_json, write_bundle};
use crate::reload::write_then_rename;
use crate::support;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use warden::proto::{AdminRole, authorizer_client::AuthorizerClient};

/// Every test body runs within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);
/// Waits for a process, an address, a reload, a poll.
const WAIT: Duration = Duration::from_secs(20);
/// SPEC §10: a revoke on one replica is seen by all within this.
const REVOKE_BOUND: Duration = Duration::from_secs(2);

async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body).await.unwrap_or_else(|_| panic!("the test took over {TEST_TIMEOUT:?}"));
}

/// Polls `check` every 20 ms until it returns `Some`, panicking with `what` after `bound`.
async fn eventually<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(started.elapsed() < bound, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `warden ARGS` with the emulator's environment (blocking; call off the runtime).
fn warden_env(env: &[(&'static str, String)], args: &[&str]) -> support::Output {
    let out = Command::new(support::warden_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run warden");
    support::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn warden_async(env: Vec<(&'static str, String)>, args: Vec<String>) -> support::Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        warden_env(&env, &args)
    })
    .await
    .expect("the warden binary ran")
}

/// Creates the table with `warden state create-table` (what an operator runs once per fleet).
async fn create_table(moto: &Moto, table: &str) {
    let url = format!("dynamodb://{table}");
    let out = warden_async(moto.env(), vec!["state".into(), "create-table".into(), url.clone()]).await;
    assert_eq!(out.code, 0, "create-table:\n{}", out.dump());
    assert!(out.stdout.contains("created"), "{}", out.dump());
    // Again: the table exists with Warden's key schema, which is fine.
    let again = warden_async(moto.env(), vec!["state".into(), "create-table".into(), url]).await;
    assert_eq!(again.code, 0, "create-table of an existing table:\n{}", again.dump());
    assert!(again.stdout.contains("exists already"), "{}", again.dump());
}

/// One `warden serve --state dynamodb://TABLE` process with its own copy of the bundle.
/// The child is killed when the replica is dropped (`support::ServeChild`).
struct Replica {
    name: &'static str,
    child: support::ServeChild,
    grpc: SocketAddr,
    admin: SocketAddr,
    bundle: tempfile::TempDir,
    _logs: tempfile::TempDir,
}

impl Replica {
    /// Starts a replica on `bundle` and waits until it serves a bundle.
    async fn start(name: &'static str, moto: &Moto, table: &str, bundle: tempfile::TempDir) -> Replica {
        let logs = support::temp_dir();
        let log = logs.path().join(format!("{name}.log"));
        let state = format!("dynamodb://{table}");
        let args: Vec<&std::ffi::OsStr> = vec![
            "serve".as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            "--state".as_ref(),
            state.as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--admin-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--admin-token-file".as_ref(),
            support::admin_token_file().as_os_str(),
        ];
        let child = support::ServeChild::spawn_env(logs.path(), args, &moto.env(), &log);
        let mut r = Replica {
            name,
            child,
            grpc: "127.0.0.1:1".parse().expect("addr"),
            admin: "127.0.0.1:1".parse().expect("addr"),
            bundle,
            _logs: logs,
        };
        r.grpc = r.child.logged_addr("gRPC listening (TCP)").await;
        r.admin = r.child.logged_addr("admin HTTP listening").await;
        let admin = r.admin;
        eventually(&format!("{name} ready"), WAIT, || async move {
            (support::http_get(admin, "/readyz").await.status == 200).then_some(())
        })
        .await;
        r
    }

    fn log_text(&self) -> String {
        self.child.log()
    }

    async fn client(&self) -> AuthorizerClient<Channel> {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.grpc)).expect("endpoint");
        AuthorizerClient::new(endpoint.connect().await.unwrap_or_else(|e| panic!("connect {}: {e}", self.name)))
    }

    /// The admin role of `user` on the comet app, and the revision that answered.
    async fn role(&self, user: &str) -> (AdminRole, String) {
        let mut c = self.client().await;
        let r = c
            .propagate_identity(crate::propagate::as_user(COMET, user))
            .await
            .unwrap_or_else(|s| panic!("{}: {user}: {s:?}", self.name))
            .into_inner();
        assert_eq!(r.user_name, user);
        (AdminRole::try_from(r.admin_role).expect("a known admin role"), r.bundle_revision)
    }

    async fn revision(&self) -> String {
        let ready = support::http_get(self.admin, "/readyz").await;
        assert_eq!(ready.status, 200, "{}: {ready:?}", self.name);
        ready.body.trim().strip_prefix("ready ").unwrap_or_default().to_owned()
    }

    /// The remembered admins of the comet app this replica serves (`GET /v1/admins`).
    async fn remembered(&self) -> BTreeSet<String> {
        let body = support::http_get(self.admin, "/v1/admins").await.body;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        serde_json::from_value(v["apps"][COMET]["remembered"].clone()).unwrap_or_default()
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = support::http_get(self.admin, "/metrics").await.body;
        support::sample_sum(&support::parse_prometheus(&text), name, labels)
    }

    /// Writes the comet app's admin list (the watcher reloads it).
    fn write_comet(&self, admins: &[&str]) {
        write_then_rename(&self.bundle.path().join(COMET_FILE), &comet_json(admins));
    }

    /// Writes the comet app's admin list and waits until a revision other than the current one is
    /// active; returns it.
    async fn set_comet(&self, admins: &[&str]) -> String {
        let before = self.revision().await;
        self.write_comet(admins);
        self.wait_revision_change(&before).await
    }

    async fn wait_revision_change(&self, before: &str) -> String {
        eventually(&format!("{} activates a new revision:\n{}", self.name, self.log_text()), WAIT, || async move {
            let now = self.revision().await;
            (now != before).then_some(now)
        })
        .await
    }

    async fn revoke(&self, user: &str) -> (u16, String) {
        let body = serde_json::json!({"app_arn": COMET, "user_name": user}).to_string();
        support::http_post(self.admin, "/v1/admins/revoke", &body).await
    }
}

/// The emulator, a table, and two replicas on copies of the same bundle (comet admins
/// [alice, carol]).
async fn fleet(table: &str) -> (Moto, Replica, Replica) {
    let moto = tokio::task::spawn_blocking(Moto::start).await.expect("moto");
    create_table(&moto, table).await;
    let a = Replica::start("A", &moto, table, write_bundle()).await;
    let b = Replica::start("B", &moto, table, write_bundle()).await;
    assert_eq!(a.revision().await, b.revision().await, "the same bundle, the same revision");
    (moto, a, b)
}

/// SPEC §5.2 across replicas. A's bundle drops carol from the comet list: A answers ADMIN. B, still on
/// the old bundle, answers ROOT_ADMIN with the old revision (each answer follows the one bundle it
/// reports, whose list names carol), while the shared state it polls already remembers her. Once B
/// has the new bundle it answers ADMIN; so does a replica started afterwards on the new bundle that
/// never saw carol listed (with a state directory per replica, it would answer USER).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demotion_on_one_replica_is_remembered_by_the_fleet() {
    bounded(async {
        let table = "fleet-demotion";
        let (moto, a, b) = fleet(table).await;
        let (a, b) = (&a, &b);
        let old = a.revision().await;
        assert_eq!(a.role("carol").await.0, AdminRole::RootAdmin);

        let new = a.set_comet(&["alice"]).await;
        assert_eq!(a.role("carol").await, (AdminRole::Admin, new.clone()), "A: carol was demoted");
        assert_eq!(a.role("alice").await.0, AdminRole::RootAdmin);
        assert_eq!(b.role("carol").await, (AdminRole::RootAdmin, old.clone()), "B's old bundle lists carol");
        eventually("B's copy of the shared state remembers carol", WAIT, || async move {
            b.remembered().await.contains("carol").then_some(())
        })
        .await;

        assert_eq!(b.set_comet(&["alice"]).await, new, "both replicas on the same revision");
        assert_eq!(b.role("carol").await, (AdminRole::Admin, new.clone()), "B: carol is remembered");
        assert_eq!(b.role("dave").await.0, AdminRole::User);

        let c_bundle = write_bundle();
        write_then_rename(&c_bundle.path().join(COMET_FILE), &comet_json(&["alice"]));
        let c = Replica::start("C", &moto, table, c_bundle).await;
        assert_eq!(c.role("carol").await, (AdminRole::Admin, new), "C started after the change: carol is remembered");
        assert_eq!(c.role("alice").await.0, AdminRole::RootAdmin);
        assert_eq!(c.role("dave").await.0, AdminRole::User);

        // CI checks a bundle against the fleet's record: a fiddler list change is refused, naming it.
        let url = format!("dynamodb://{table}");
        let copy = support::copy_to_temp(c.bundle.path(), &|_| false);
        let dir = copy.path().to_str().expect("UTF-8").to_owned();
        let out = warden_async(moto.env(), vec!["validate".into(), dir.clone(), "--state".into(), url.clone()]).await;
        assert_eq!(out.code, 0, "{}", out.dump());
        write_then_rename(
            &copy.path().join(crate::propagate::FIDDLER_FILE),
            &crate::propagate::fiddler_json(&["carol"]),
        );
        let out = warden_async(moto.env(), vec!["validate".into(), dir, "--state".into(), url]).await;
        assert_eq!(out.code, 1, "{}", out.dump());
        assert!(
            out.stderr.contains("ApplicationConfig.AdminUsers") && out.stderr.contains("was [bob], now [carol]"),
            "{}",
            out.dump()
        );
    })
    .await;
}

/// A revoke on B (the admin listener) is answered USER by A within 2 s, measured from the moment the
/// revoke was sent; then a revoke written to the table directly (`warden admins revoke --state`)
/// reaches both within 2 s of the command's exit. `warden admins list --state` shows the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_on_one_replica_reaches_the_other_within_2_s() {
    bounded(async {
        let table = "fleet-revoke";
        let (moto, a, b) = fleet(table).await;
        let (a, b) = (&a, &b);
        let three = ["alice", "carol", "dave"];
        let (ra, rb) = tokio::join!(a.set_comet(&three), b.set_comet(&three));
        assert_eq!(ra, rb);
        let listed = a.set_comet(&["alice"]).await;
        assert_eq!(b.set_comet(&["alice"]).await, listed);
        for r in [a, b] {
            assert_eq!(r.role("carol").await.0, AdminRole::Admin, "{}", r.name);
            assert_eq!(r.role("dave").await.0, AdminRole::Admin, "{}", r.name);
        }

        let sent = Instant::now();
        let (status, body) = b.revoke("carol").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(b.role("carol").await.0, AdminRole::User, "B: at once");
        eventually("A answers USER for carol", REVOKE_BOUND, || async move {
            (a.role("carol").await.0 == AdminRole::User).then_some(())
        })
        .await;
        let took = sent.elapsed();
        eprintln!("a revoke on B was answered by A after {took:?}");
        assert!(took < REVOKE_BOUND, "{took:?}");
        assert_eq!(a.role("dave").await.0, AdminRole::Admin, "only carol was revoked");
        let (status, body) = a.revoke("carol").await;
        assert_eq!(status, 404, "already revoked, by B: {body}");

        let url = format!("dynamodb://{table}");
        let args = |cmd: &[&str]| cmd.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
        let out =
            warden_async(moto.env(), args(&["admins", "revoke", "--state", &url, "--app", COMET, "--user", "dave"]))
                .await;
        assert_eq!(out.code, 0, "{}", out.dump());
        let done = Instant::now();
        for r in [a, b] {
            eventually(&format!("{} answers USER for dave", r.name), REVOKE_BOUND, || async move {
                (r.role("dave").await.0 == AdminRole::User).then_some(())
            })
            .await;
        }
        eprintln!("a revoke in the table was answered by both replicas within {:?}", done.elapsed());
        let out =
            warden_async(moto.env(), args(&["admins", "revoke", "--state", &url, "--app", COMET, "--user", "dave"]))
                .await;
        assert_eq!(out.code, 1, "dave is no longer remembered: {}", out.dump());
        assert!(out.stderr.contains("`dave` is not a remembered admin"), "{}", out.dump());

        let out = warden_async(moto.env(), args(&["admins", "list", "--state", &url])).await;
        assert_eq!(out.code, 0, "{}", out.dump());
        let listed: serde_json::Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.dump()));
        assert_eq!(listed["apps"][COMET]["admin_users"], serde_json::json!(["alice"]), "{listed:#}");
        assert_eq!(listed["apps"][COMET]["remembered"], serde_json::json!([]), "{listed:#}");
        assert!(
            out.stderr.contains(&format!("dynamodb://{table}")) && out.stderr.contains("version "),
            "{}",
            out.dump()
        );
    })
    .await;
}

/// Twenty rounds: both replicas start a round on the same list [alice, aN, bN]; then, at the same
/// instant, A's bundle drops aN and B's drops bN. Whichever write lands first, the other replica's
/// conditional write fails, is computed again from the newer record, and goes through: at the end of
/// every round both replicas' shared state remembers every user demoted so far, and each replica
/// answers ADMIN for the user its own bundle dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reloads_on_both_replicas_lose_no_update_20_times() {
    bounded(async {
        let (_moto, a, b) = fleet("fleet-concurrent").await;
        let (a, b) = (&a, &b);
        let mut demoted = BTreeSet::new();
        for round in 0..20 {
            let (ua, ub) = (format!("a{round}"), format!("b{round}"));
            let start = ["alice", ua.as_str(), ub.as_str()];
            let (ra, rb) = tokio::join!(a.set_comet(&start), b.set_comet(&start));
            assert_eq!(ra, rb, "round {round}: the same list, the same revision");

            let (before_a, before_b) = (ra.clone(), rb.clone());
            // At the same instant: A demotes aN, B demotes bN.
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let writes = [(a, vec!["alice", ub.as_str()]), (b, vec!["alice", ua.as_str()])].map(|(r, list)| {
                let (path, text, barrier) = (r.bundle.path().join(COMET_FILE), comet_json(&list), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    write_then_rename(&path, &text);
                })
            });
            for w in writes {
                w.join().expect("writer thread");
            }
            tokio::join!(a.wait_revision_change(&before_a), b.wait_revision_change(&before_b));
            demoted.insert(ua.clone());
            demoted.insert(ub.clone());

            for r in [a, b] {
                let what = format!("round {round}: {} remembers {demoted:?}", r.name);
                let demoted = &demoted;
                eventually(&what, WAIT, || async move {
                    let m = r.remembered().await;
                    demoted.is_subset(&m).then_some(())
                })
                .await;
            }
            assert_eq!(a.role(&ua).await.0, AdminRole::Admin, "round {round}: A dropped {ua}");
            assert_eq!(b.role(&ub).await.0, AdminRole::Admin, "round {round}: B dropped {ub}");
            assert_eq!(a.role(&ub).await.0, AdminRole::RootAdmin, "round {round}: A's bundle lists {ub}");
        }
        let conflicts =
            a.metric("warden_state_conflicts_total", &[]).await + b.metric("warden_state_conflicts_total", &[]).await;
        eprintln!(
            "20 rounds of concurrent reloads: {conflicts} conditional writes lost a race and were computed again"
        );
        assert_eq!(a.metric("warden_state_errors_total", &[]).await, 0.0, "{}", a.log_text());
        assert_eq!(b.metric("warden_state_errors_total", &[]).await, 0.0, "{}", b.log_text());
    })
    .await;
}

/// The emulator dies with both replicas serving carol as a remembered admin. Both keep answering from
/// their last known state (same revision, carol ADMIN), count each failed poll in
/// `warden_state_errors_total{op="poll"}`, and log it without flooding. A reload on A that cannot
/// write the state does not activate (the old revision keeps answering, the status names the table);
/// a revoke on B answers 500 and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_killed_mid_run_leaves_both_replicas_serving_their_last_state() {
    bounded(async {
        let (mut moto, a, b) = fleet("fleet-outage").await;
        let (a, b) = (&a, &b);
        let rev = a.set_comet(&["alice"]).await;
        assert_eq!(b.set_comet(&["alice"]).await, rev);
        for r in [a, b] {
            assert_eq!(r.role("carol").await, (AdminRole::Admin, rev.clone()), "{}", r.name);
        }

        moto.kill();
        for r in [a, b] {
            eventually(&format!("{} counts failed polls", r.name), WAIT, || async move {
                (r.metric("warden_state_errors_total", &[("op", "poll")]).await >= 2.0).then_some(())
            })
            .await;
            assert_eq!(r.role("carol").await, (AdminRole::Admin, rev.clone()), "{}: last known state", r.name);
            assert_eq!(r.role("alice").await.0, AdminRole::RootAdmin, "{}", r.name);
            assert_eq!(r.role("dave").await.0, AdminRole::User, "{}", r.name);
        }

        // A reload that cannot reach the state: not activated.
        let reads_before = a.metric("warden_state_errors_total", &[("op", "read")]).await;
        a.write_comet(&["bob"]);
        let status = eventually("A's reload fails on the state", WAIT, || async move {
            let body = support::http_get(a.admin, "/v1/status").await.body;
            body.contains("cannot read the admin state").then_some(body)
        })
        .await;
        assert!(status.contains("dynamodb://fleet-outage"), "{status}");
        assert!(status.contains("not activated"), "{status}");
        assert_eq!(a.revision().await, rev, "A keeps the old bundle");
        assert_eq!(a.role("carol").await, (AdminRole::Admin, rev.clone()));
        assert_eq!(a.role("bob").await.0, AdminRole::User, "bob's list was not activated");
        assert!(a.metric("warden_state_errors_total", &[("op", "read")]).await > reads_before);

        let (status, body) = b.revoke("carol").await;
        assert_eq!(status, 500, "{body}");
        assert!(body.contains("nothing changed") && body.contains("dynamodb://fleet-outage"), "{body}");
        assert_eq!(b.role("carol").await.0, AdminRole::Admin, "B: the revoke changed nothing");

        let logged = a.log_text().lines().filter(|l| l.contains("cannot read the shared admin state")).count();
        eprintln!(
            "A logged {logged} poll failures for {} counted",
            a.metric("warden_state_errors_total", &[("op", "poll")]).await
        );
        assert!((1..=2).contains(&logged), "rate-limited logging:\n{}", a.log_text());
    })
    .await;
}

/// A table that does not exist, or a DynamoDB endpoint that does not answer, at start: `warden serve`
/// exits non-zero with an error naming `--state`, the table and the cause (and how to create the
/// table). Flags that cannot work together are usage errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_missing_or_unreachable_at_start_is_a_clear_error() {
    bounded(async {
        let moto = tokio::task::spawn_blocking(Moto::start).await.expect("moto");
        let bundle = write_bundle();
        let dir = bundle.path().to_str().expect("UTF-8").to_owned();
        let serve = |table: &str| -> Vec<String> {
            [
                "serve",
                "--bundle",
                &dir,
                "--state",
                &format!("dynamodb://{table}"),
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "off",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
        };

        let started = Instant::now();
        let out = warden_async(moto.env(), serve("no-such-table")).await;
        eprintln!("a missing table at start: {:?}\n{}", started.elapsed(), out.stderr);
        assert_eq!(out.code, 1, "{}", out.dump());
        for needle in ["--state", "dynamodb://no-such-table", "ResourceNotFoundException", "warden state create-table"]
        {
            assert!(out.stderr.contains(needle), "`{needle}` in:\n{}", out.dump());
        }

        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let mut env = moto.env();
        for (k, v) in &mut env {
            if *k == "AWS_ENDPOINT_URL" {
                *v = format!("http://127.0.0.1:{closed}");
            }
        }
        let started = Instant::now();
        let out = warden_async(env, serve("fleet-state")).await;
        let took = started.elapsed();
        eprintln!("an unreachable endpoint at start: {took:?}\n{}", out.stderr);
        assert_eq!(out.code, 1, "{}", out.dump());
        for needle in ["--state", "dynamodb://fleet-state", "cannot read the admin state at start", "GetItem"] {
            assert!(out.stderr.contains(needle), "`{needle}` in:\n{}", out.dump());
        }
        assert!(took < Duration::from_secs(30), "gave up after {took:?}");

        let mut args = serve("fleet-state");
        args.extend(["--state-dir".to_owned(), dir.clone()]);
        let out = warden_async(moto.env(), args).await;
        assert_eq!(out.code, 64, "{}", out.dump());
        assert!(out.stderr.contains("--state: cannot be used with --state-dir"), "{}", out.dump());
        let mut args = serve("fleet-state");
        args[4] = "s3://bucket/state".into();
        let out = warden_async(moto.env(), args).await;
        assert_eq!(out.code, 64, "{}", out.dump());
        assert!(out.stderr.contains("is not `dynamodb://TABLE`"), "{}", out.dump());
    })
    .await;
}
