//! The fleet's shared admin state logic in the real server with a table held in memory (no AWS, no
//! cargo feature): what a replica does when the table fails and recovers, and with changes other
//! replicas write. `fleet_state.rs` runs the same paths against DynamoDB in the emulator.
use crate::propagate::{
    COMET, COMET_FILE, admin_role, bounded, client, comet_json, config, stop, within, write_bundle,
};
use crate::reload::write_then_rename;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden::identity::AdminMemory;
use warden::proto::AdminRole;
use warden::runtime::state::fleet::{BoxFuture, Table, TableError, Versioned};
use warden::server::{Options, ReloadOutcome, Running};

/// A table in memory that can be made unreachable.
#[derive(Default)]
struct MemoryTable {
    record: Mutex<Versioned>,
    down: AtomicBool,
}

impl MemoryTable {
    fn record(&self) -> Versioned {
        self.record.lock().unwrap().clone()
    }

    /// Another replica's write.
    fn write_as_another_replica(&self, memory: AdminMemory) {
        let mut r = self.record.lock().unwrap();
        r.version += 1;
        r.memory = memory;
    }
}

impl Table for MemoryTable {
    fn name(&self) -> &str {
        "memory://fleet"
    }
    fn read(&self) -> BoxFuture<'_, Result<Versioned, TableError>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err(TableError::Failed("the table is down".into()));
            }
            Ok(self.record())
        })
    }
    fn write<'a>(
        &'a self,
        read_version: u64,
        memory: &'a AdminMemory,
        _revision: &'a str,
    ) -> BoxFuture<'a, Result<u64, TableError>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err(TableError::Failed("the table is down".into()));
            }
            let mut r = self.record.lock().unwrap();
            if r.version != read_version {
                return Err(TableError::Conflict);
            }
            r.version += 1;
            r.memory = memory.clone();
            Ok(r.version)
        })
    }
}

async fn start(bundle: &std::path::Path, table: Arc<MemoryTable>) -> Running {
    let mut c = config(bundle, None);
    c.state_poll_interval = Duration::from_millis(100);
    let running = within("start", Running::start_with_table(&c, Options::default(), table)).await.expect("start");
    let mut first = running.first_load.clone();
    let outcome = within("first load", first.wait_for(Option::is_some)).await.expect("open").clone();
    assert!(matches!(outcome, Some(ReloadOutcome::Activated(_))), "{outcome:?}");
    running
}

fn revision(running: &Running) -> String {
    running.store.load().expect("active").bundle.revision.clone()
}

/// The table goes down: a reload that cannot write the state is rejected (the old revision keeps
/// answering, nothing is remembered); the table comes back: the first good poll reloads, the new
/// revision activates and the demotion is in the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_cannot_write_the_shared_state_activates_at_the_first_good_poll() {
    bounded(async {
        let bundle = write_bundle();
        let table = Arc::new(MemoryTable::default());
        let running = start(bundle.path(), table.clone()).await;
        let old = revision(&running);
        assert_eq!(table.record().version, 1, "the first activation recorded the lists");
        let mut c = client(&running).await;

        table.down.store(true, Ordering::SeqCst);
        write_then_rename(&bundle.path().join(COMET_FILE), &comet_json(&["alice"]));
        let outcome = running.shared.reload().await;
        let ReloadOutcome::Rejected(problems) = &outcome else { panic!("{outcome:?}") };
        assert!(
            problems.iter().any(|p| p.contains("memory://fleet: cannot read the admin state: the table is down")),
            "{problems:?}"
        );
        assert_eq!(revision(&running), old);
        assert_eq!(admin_role(&mut c, COMET, "carol").await, AdminRole::RootAdmin, "the old bundle answers");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(revision(&running), old, "no activation while the table is down");

        table.down.store(false, Ordering::SeqCst);
        let healed = Instant::now();
        while revision(&running) == old {
            assert!(healed.elapsed() < Duration::from_secs(5), "not reloaded after the table came back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(admin_role(&mut c, COMET, "carol").await, AdminRole::Admin);
        assert!(table.record().memory.is_remembered(COMET, "carol"));
        stop(running).await;
    })
    .await;
}

/// Another replica's write (a revoke) is applied at the next poll; a revoke here goes to the table,
/// against its newest record (a user another replica already revoked is 404 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replicas_write_is_applied_at_the_next_poll() {
    bounded(async {
        let bundle = write_bundle();
        write_then_rename(&bundle.path().join(COMET_FILE), &comet_json(&["alice", "carol", "dave"]));
        let table = Arc::new(MemoryTable::default());
        let running = start(bundle.path(), table.clone()).await;
        write_then_rename(&bundle.path().join(COMET_FILE), &comet_json(&["alice"]));
        assert!(matches!(running.shared.reload().await, ReloadOutcome::Activated(_)));
        let mut c = client(&running).await;
        assert_eq!(admin_role(&mut c, COMET, "carol").await, AdminRole::Admin);
        assert_eq!(admin_role(&mut c, COMET, "dave").await, AdminRole::Admin);

        let revoked = table.record().memory.revoke(COMET, "carol").expect("remembered");
        table.write_as_another_replica(revoked);
        let written = Instant::now();
        while admin_role(&mut c, COMET, "carol").await != AdminRole::User {
            assert!(written.elapsed() < Duration::from_secs(2), "another replica's revoke not applied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let e = running.shared.revoke_admin(COMET, "carol").await.expect_err("already revoked elsewhere");
        assert!(e.to_string().contains("not a remembered admin"), "{e}");
        let before = table.record().version;
        running.shared.revoke_admin(COMET, "dave").await.expect("dave is remembered");
        assert_eq!(table.record().version, before + 1);
        assert!(!table.record().memory.is_remembered(COMET, "dave"));
        assert_eq!(admin_role(&mut c, COMET, "dave").await, AdminRole::User);

        table.down.store(true, Ordering::SeqCst);
        let e = running.shared.revoke_admin(COMET, "nobody").await.expect_err("the table is down");
        assert!(e.to_string().contains("nothing changed") && e.to_string().contains("the table is down"), "{e}");
        stop(running).await;
    })
    .await;
}

/// Without the cargo feature `aws`, fleet mode is refused at once as a usage error that says so.
#[cfg(not(feature = "aws"))]
#[test]
fn without_the_aws_feature_fleet_mode_is_a_usage_error_that_says_so() {
    for args in [
        &["serve", "--demo", "--state", "dynamodb://warden-state"][..],
        &["state", "create-table", "dynamodb://warden-state"][..],
        &["admins", "list", "--state", "dynamodb://warden-state"][..],
    ] {
        let out = crate::support::warden(args);
        assert_eq!(out.code, 64, "{args:?}: {}", out.dump());
        assert!(out.stderr.contains("--state: `dynamodb://warden-state` needs fleet mode"), "{}", out.dump());
        assert!(out.stderr.contains("built without the cargo feature `aws`"), "{}", out.dump());
    }
}
