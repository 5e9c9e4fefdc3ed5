//! Activation: what reloads, SIGHUP and admin changes share (the store, health, the bundle source,
//! the state directory), and the one path by which a bundle becomes active. The reload watcher and the
//! server both drive it; it imports neither. An S3 bundle is synced into a local tree first
//! (`runtime::s3`), which is then read like any bundle directory; a bundle directory's
//! `.signatures.json` is checked (`runtime::signatures`) before anything is built.
use crate::config::BundleSource;
use crate::runtime::files;
use crate::runtime::signatures::{self, VerifyKey};
use crate::runtime::state::fleet::{self, UpdateError};
use crate::runtime::state::{StateDir, StateStore};
use crate::runtime::store::Store;
use crate::telemetry::metrics;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use warden_core::bundle;
use warden_core::identity::{AdminMemory, RevokeError};
use warden_core::policy::Problem;

/// The health service name of the Authorizer.
pub const AUTHORIZER_SERVICE: &str = "warden.v1.Authorizer";

/// Sets the health of the overall service and of the Authorizer.
pub async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(AUTHORIZER_SERVICE, status).await;
}

/// What a reload found on disk, before anything is compiled.
enum Read {
    /// The same content as the active bundle.
    Unchanged(String),
    /// The same content as the last rejected bundle.
    StillRejected(String),
    /// New content, built (or not): the key that names it for the next comparison, and the result.
    Built { key: String, built: Result<Box<bundle::Bundle>, Vec<Problem>> },
}

/// What a reload reads: a bundle directory (for an S3 bundle, the tree just synced), or the example
/// compiled into the binary.
#[derive(Debug, Clone)]
enum Input {
    Dir(PathBuf),
    Embedded,
}

/// Reads the bundle's files, computes their revision and compares it with the active revision and
/// with the key of the last rejected content; checks `.signatures.json` (and the verify keys), then
/// builds (compiles and validates) only new content. The key of the content includes a digest of
/// `.signatures.json`, so that a bundle rejected for its signature is checked again once that file
/// changes. Blocking: file I/O, hashing, building.
fn read_and_build(input: &Input, keys: &[VerifyKey], active: Option<&str>, last_rejected: Option<&str>) -> Read {
    let dir = match input {
        Input::Dir(d) => d,
        // The example compiled into the binary never changes: built, then compared.
        Input::Embedded => {
            return match files::embedded() {
                Ok(b) if active == Some(b.revision.as_str()) => Read::Unchanged(b.revision),
                Ok(b) => Read::Built { key: b.revision.clone(), built: Ok(Box::new(b)) },
                Err(problems) => Read::Built { key: "embedded".to_owned(), built: Err(problems) },
            };
        }
    };
    let (mut found, mut problems) = match files::read_files(dir) {
        Ok(r) => r,
        // Nothing could be read (no directory): the problems themselves name the content.
        Err(problems) => {
            let key = format!("unreadable {}", digest_of_problems(&problems));
            if last_rejected == Some(key.as_str()) {
                return Read::StillRejected(key);
            }
            return Read::Built { key, built: Err(problems) };
        }
    };
    let manifest = match files::read_manifest(dir) {
        Ok(m) => m,
        Err(p) => {
            problems.push(p);
            None
        }
    };
    // The revision is over the files in path order, as `from_files` computes it.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let revision = bundle::revision_of(&found);
    // The active content was checked against its signatures when it was activated.
    if problems.is_empty() && active == Some(revision.as_str()) {
        return Read::Unchanged(revision);
    }
    // A file that could not be read is not in `found`: its problem is part of what was found.
    let mut key = if problems.is_empty() { revision } else { format!("{revision} {}", digest_of_problems(&problems)) };
    if let Some(m) = &manifest {
        key.push_str(&format!(" signatures:{}", bundle::revision_of(&[(String::new(), m.clone())])));
    }
    if last_rejected == Some(key.as_str()) {
        return Read::StillRejected(key);
    }
    // Nothing is built from files that their signatures refuse.
    let refused = signatures::check(&found, manifest.as_deref(), keys);
    if !refused.is_empty() {
        crate::telemetry::metrics::bundle_signature_failure();
        problems.extend(refused);
        problems.sort();
        problems.dedup();
        return Read::Built { key, built: Err(problems) };
    }
    let built = match bundle::from_files(found) {
        Ok(b) if problems.is_empty() => Ok(Box::new(b)),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            problems.sort();
            problems.dedup();
            Err(problems)
        }
    };
    Read::Built { key, built }
}

/// A digest of problem texts (the revision function over one pseudo-file).
fn digest_of_problems(problems: &[Problem]) -> String {
    let text: String = problems.iter().map(|p| format!("{p}\n")).collect();
    bundle::revision_of(&[(String::new(), text.into_bytes())])
}

/// How a bundle source is named in logs and status.
pub fn source_name(source: &BundleSource) -> String {
    match source {
        BundleSource::Dir(d) => d.display().to_string(),
        BundleSource::Embedded => "embedded default bundle".to_owned(),
        BundleSource::S3(s) => s.url(),
    }
}

/// Why an admin change (a revoke) was not made.
#[derive(Debug, thiserror::Error)]
pub enum AdminChangeError {
    /// No bundle is active yet.
    #[error("no bundle is active")]
    NoBundle,
    /// The app or the remembered admin is not known.
    #[error(transparent)]
    Revoke(#[from] RevokeError),
    /// Shutdown has begun: nothing changes any more.
    #[error("the server is shutting down: nothing was changed")]
    ShuttingDown,
    /// The state directory or table could not be read or written; nothing changed.
    #[error("the admin state could not be saved, nothing changed: {0}")]
    State(String),
}

/// What a (re)load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new revision is active.
    Activated(String),
    /// Same content as the active bundle: nothing to do (and the last reload error is cleared).
    Unchanged(String),
    /// Same content as the last rejected bundle: not validated, logged or counted again. Holds the
    /// key of that content (its revision, with a digest of the problems met reading it, if any).
    StillRejected(String),
    /// The bundle is invalid; the previous one (if any) keeps serving.
    Rejected(Vec<String>),
    /// The bundle changes the admin users of an app whose admins cannot change.
    AdminChangeRefused(Vec<String>),
    /// An S3 bundle could not be synced (the message); the active bundle keeps serving.
    SyncFailed(String),
    /// Shutdown has begun: nothing was read or changed.
    ShuttingDown,
}

/// What reloads and admin changes share: the store, health, the bundle source, the state directory.
pub struct Shared {
    /// The active snapshot.
    pub store: Arc<Store>,
    /// Health reporter.
    pub health: HealthReporter,
    /// Bundle source.
    pub source: BundleSource,
    /// One reload or admin change at a time, and what they share.
    serial: tokio::sync::Mutex<Serial>,
    /// Admin memory from the state directory, used until the first activation.
    pub initial_admins: AdminMemory,
    /// Admin-state changes this server made and swapped in (reloads, revokes): a poll of the shared
    /// state applies what it read only if none happened since the read began (it might be older).
    commits: AtomicU64,
    /// Held around each such swap and around applying a poll (never across an await).
    commit_lock: Mutex<()>,
    /// The last reload failed because the shared state could not be read or written: the next
    /// successful poll reloads again (a watched directory sends no new event for the same content).
    state_retry: AtomicBool,
    /// `--bundle-verify-key`: a bundle activates only when its `.signatures.json` verifies with one.
    verify_keys: Vec<VerifyKey>,
    /// The syncer of an S3 bundle; its lock is held from the sync until the tree has been read (a
    /// sync never holds the serial lock: a slow download does not hold up a revoke).
    #[cfg(feature = "aws")]
    s3: Option<tokio::sync::Mutex<crate::runtime::s3::Syncer>>,
}

/// Why the admin memory for a new bundle could not be computed or saved.
enum NextAdmins {
    /// The bundle changes admins that cannot change (SPEC §5.5).
    Refused(Vec<String>),
    /// The state could not be read or written.
    State(String),
}

/// What reloads and admin changes share, behind the serial lock.
#[derive(Debug, Default)]
struct Serial {
    /// The key of the last rejected content ([`ReloadOutcome::StillRejected`]); cleared by an
    /// activation (the admin state it was checked against changed) and by `unchanged` (the content
    /// on disk went back to the active one, so a later rejection is news again).
    last_rejected: Option<String>,
    /// The state directory or table, if any (dropped when shutdown begins, which releases the
    /// directory's lock).
    state: Option<StateStore>,
    /// Set when shutdown begins: from then on reloads and admin changes change nothing.
    shutting_down: bool,
}

/// Why a bundle that built is still not a policy: it has nothing to decide with. An empty directory
/// (a half-swapped mount), or one holding only documents or test cases, would forget every remembered
/// admin if activated. `validate` applies the same check.
pub fn empty_bundle_problem(b: &bundle::Bundle, source: &str) -> Option<String> {
    let c = &b.counts;
    let objects =
        c.policies + c.users + c.groups + c.roles + c.scps + c.partner_apps + c.domains + c.identity_center_users;
    (objects == 0).then(|| {
        format!(
            "{source}: the bundle has no policy objects (no IAM, SCP, SageMaker or Identity Center file): an empty \
             or half-swapped bundle is not a policy"
        )
    })
}

/// Logs the warnings of a bundle about to be activated, one event each (the kept ones; the count of
/// the others in one more): constructs AWS accepts but Access Analyzer flags (SPEC §3.1).
fn log_warnings(w: &warden_core::policy::Warnings, source: &str) {
    for x in w.kept() {
        tracing::warn!(warning = %x, rule = x.rule.code(), source, "bundle warning; the bundle is accepted");
    }
    if w.left_out() > 0 {
        tracing::warn!(more = w.left_out(), source, "more bundle warnings than are listed");
    }
}

/// Writes the admin state, fsync'd, on a blocking thread; returns once it is on disk. A failure is
/// counted (`warden_state_errors_total{op="write"}`).
async fn save_state(state: Arc<StateDir>, admins: &AdminMemory) -> Result<()> {
    let admins = admins.clone();
    let saved = tokio::task::spawn_blocking(move || state.save(&admins))
        .await
        .map_err(|e| anyhow::anyhow!("the state write task failed: {e}"))
        .and_then(|r| r);
    if saved.is_err() {
        metrics::state_error("write");
    }
    saved
}

impl Shared {
    /// Creates what reloads and admin changes share.
    pub fn new(
        store: Arc<Store>,
        health: HealthReporter,
        source: BundleSource,
        state: Option<StateStore>,
        initial_admins: AdminMemory,
    ) -> Shared {
        Shared {
            store,
            health,
            source,
            serial: tokio::sync::Mutex::new(Serial { last_rejected: None, state, shutting_down: false }),
            initial_admins,
            commits: AtomicU64::new(0),
            commit_lock: Mutex::new(()),
            state_retry: AtomicBool::new(false),
            verify_keys: Vec::new(),
            #[cfg(feature = "aws")]
            s3: None,
        }
    }

    /// The admin memory for `bundle` and, in fleet mode, its version in the table: computed from the
    /// state (the table's newest record; else the active memory, or the state directory's before the
    /// first activation) and saved, before anything is activated.
    async fn next_admins(
        &self,
        state: Option<&StateStore>,
        current: Option<&crate::runtime::store::Active>,
        bundle: &bundle::Bundle,
    ) -> Result<(AdminMemory, Option<u64>), NextAdmins> {
        match state {
            Some(StateStore::Table(table)) => {
                // A replica that has served nothing yet adds nobody to a list: it may be a late
                // starter on an older bundle, and must not undo a demotion the fleet has recorded.
                let active = current.map_or(bundle, |a| &*a.bundle);
                let change = |v: &fleet::Versioned| v.memory.transition_after(Some(active), bundle);
                match fleet::update(&**table, fleet::RETRY, &bundle.revision, change).await {
                    Ok(u) => {
                        if u.written {
                            tracing::info!(
                                table = table.name(),
                                version = u.version,
                                conflicts = u.conflicts,
                                "shared admin state written"
                            );
                        }
                        Ok((u.memory, Some(u.version)))
                    }
                    Err(UpdateError::Refused(refused)) => Err(NextAdmins::Refused(refused)),
                    Err(e) => {
                        self.state_retry.store(true, Ordering::SeqCst);
                        Err(NextAdmins::State(format!("{e}; the bundle is not activated (retried at the next poll)")))
                    }
                }
            }
            Some(StateStore::Dir(dir)) => {
                let base = current.map_or_else(|| self.initial_admins.clone(), |a| (*a.admins).clone());
                let admins = base.transition(bundle).map_err(NextAdmins::Refused)?;
                save_state(dir.clone(), &admins).await.map_err(|e| NextAdmins::State(format!("{e:#}")))?;
                Ok((admins, None))
            }
            None => {
                let base = current.map_or_else(|| self.initial_admins.clone(), |a| (*a.admins).clone());
                base.transition(bundle).map(|m| (m, None)).map_err(NextAdmins::Refused)
            }
        }
    }

    /// Sets the `--bundle-verify-key` keys.
    pub fn with_verify_keys(mut self, keys: Vec<VerifyKey>) -> Shared {
        self.verify_keys = keys;
        self
    }

    /// Sets the syncer of an S3 bundle (`source` must be `BundleSource::S3`).
    #[cfg(feature = "aws")]
    pub fn with_s3(mut self, syncer: crate::runtime::s3::Syncer) -> Shared {
        self.s3 = Some(tokio::sync::Mutex::new(syncer));
        self
    }

    /// Syncs an S3 bundle, then reloads from the synced tree (the sync's lock held meanwhile: the
    /// tree is not replaced while it is read). A failed sync is logged, counted (by the syncer) and
    /// kept in the status; the active bundle keeps serving.
    #[cfg(feature = "aws")]
    async fn reload_s3(&self) -> ReloadOutcome {
        let Some(s3) = &self.s3 else {
            return self.reject("rejected", vec![format!("{}: no S3 client was set up", source_name(&self.source))]);
        };
        let mut syncer = s3.lock().await;
        if self.serial.lock().await.shutting_down {
            return ReloadOutcome::ShuttingDown;
        }
        match syncer.sync().await {
            Ok((tree, downloads)) => {
                if downloads > 0 {
                    tracing::info!(source = %syncer.url(), downloads, "bundle synced from S3");
                }
                self.reload_from(Input::Dir(tree)).await
            }
            Err(e) => {
                tracing::error!(error = %e, reason = e.reason.label(), "S3 bundle sync failed; the active bundle keeps serving");
                self.store.reject(&[format!("sync failed: {e}")], 1);
                ReloadOutcome::SyncFailed(e.to_string())
            }
        }
    }

    /// How many admin-state changes this server has swapped in (see [`Shared::apply_polled`]).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Whether the last reload failed on the shared state (and clears it): the poll then reloads.
    pub fn take_state_retry(&self) -> bool {
        self.state_retry.swap(false, Ordering::SeqCst)
    }

    /// Applies the shared state a poll read, unless this server swapped in a change of its own since
    /// the read began (`commits_before`, from [`Shared::commits`]): what was read may then be older
    /// than what is active, and the next poll reads again. Returns whether the active memory changed.
    /// Nothing is applied before the first activation (the first reload reads the table itself).
    pub fn apply_polled(&self, read: fleet::Versioned, commits_before: u64) -> bool {
        let _commit = self.commit_lock.lock().unwrap_or_else(PoisonError::into_inner);
        if self.commits.load(Ordering::SeqCst) != commits_before {
            return false;
        }
        let Some(active) = self.store.load() else { return false };
        metrics::state_version(read.version);
        if *active.admins == read.memory {
            return false;
        }
        tracing::info!(version = read.version, "admin state changed by another replica: applied");
        self.store.set_admins(read.memory)
    }

    /// Without the cargo feature `aws` there is no S3 bundle (the flag is refused at start).
    #[cfg(not(feature = "aws"))]
    async fn reload_s3(&self) -> ReloadOutcome {
        self.reject(
            "rejected",
            vec![format!(
                "{}: this binary was built without the cargo feature `aws` (`cargo build --release --features aws`)",
                source_name(&self.source)
            )],
        )
    }

    /// Reads the bundle off the request path and compares its revision before compiling anything:
    /// the active content is `unchanged` (which clears the last reload error), the last rejected
    /// content is not validated, logged or counted again. New content is built, checked and
    /// activated (health SERVING), or rejected with every problem recorded; the active bundle keeps
    /// serving on failure. The admin state is written (off the runtime, before the activation) only
    /// for a bundle that passed validation; once shutdown has begun, nothing is done.
    pub async fn reload(&self) -> ReloadOutcome {
        match &self.source {
            BundleSource::Dir(d) => self.reload_from(Input::Dir(d.clone())).await,
            BundleSource::Embedded => self.reload_from(Input::Embedded).await,
            BundleSource::S3(_) => self.reload_s3().await,
        }
    }

    /// [`Shared::reload`] of what `input` holds.
    async fn reload_from(&self, input: Input) -> ReloadOutcome {
        let mut serial = self.serial.lock().await;
        if serial.shutting_down {
            return ReloadOutcome::ShuttingDown;
        }
        self.state_retry.store(false, Ordering::SeqCst);
        let current = self.store.load();
        let active = current.as_ref().map(|a| a.bundle.revision.clone());
        let last_rejected = serial.last_rejected.clone();
        let keys = self.verify_keys.clone();
        let result = tokio::task::spawn_blocking(move || {
            read_and_build(&input, &keys, active.as_deref(), last_rejected.as_deref())
        })
        .await;
        let (key, bundle) = match result {
            Ok(Read::Unchanged(revision)) => {
                serial.last_rejected = None;
                self.store.unchanged();
                metrics::bundle_reload("unchanged");
                return ReloadOutcome::Unchanged(revision);
            }
            Ok(Read::StillRejected(key)) => {
                tracing::debug!(content = %key, "same content as the last rejected bundle: not validated again");
                return ReloadOutcome::StillRejected(key);
            }
            Ok(Read::Built { key, built: Ok(b) }) => match empty_bundle_problem(&b, &source_name(&self.source)) {
                None => (key, b),
                Some(problem) => {
                    serial.last_rejected = Some(key);
                    return self.reject("rejected", vec![problem]);
                }
            },
            Ok(Read::Built { key, built: Err(problems) }) => {
                serial.last_rejected = Some(key);
                // The loader lists at most its first problems and sums up the rest in one: count them all.
                let total = warden_core::policy::error::total(&problems);
                let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                return self.reject_counted("rejected", text, total);
            }
            Err(e) => return self.reject("rejected", vec![format!("bundle load task failed: {e}")]),
        };
        let state = serial.state.clone();
        let (admins, version) = match self.next_admins(state.as_ref(), current.as_deref(), &bundle).await {
            Ok(next) => next,
            Err(NextAdmins::Refused(refused)) => {
                serial.last_rejected = Some(key);
                if let ReloadOutcome::Rejected(r) = self.reject("rejected", refused) {
                    return ReloadOutcome::AdminChangeRefused(r);
                }
                return ReloadOutcome::AdminChangeRefused(Vec::new());
            }
            // Not remembered as rejected: the content is fine, the disk or the table may recover.
            Err(NextAdmins::State(e)) => return self.reject("rejected", vec![e]),
        };
        serial.last_rejected = None;
        log_warnings(&bundle.warnings, &source_name(&self.source));
        let warnings = bundle.warnings.total();
        let (act, old) = {
            let _commit = self.commit_lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.commits.fetch_add(1, Ordering::SeqCst);
            self.store.activate(Arc::from(bundle), admins, source_name(&self.source))
        };
        if let Some(v) = version {
            metrics::state_version(v);
        }
        // Freeing a large bundle takes a while: not on a runtime worker.
        if let Some(old) = old {
            tokio::task::spawn_blocking(move || drop(old));
        }
        metrics::bundle_reload("activated");
        metrics::bundle_warnings(warnings);
        tracing::info!(revision = %act.revision, previous = ?act.previous, source = %source_name(&self.source), warnings, "bundle activated");
        set_health(&self.health, ServingStatus::Serving).await;
        ReloadOutcome::Activated(act.revision)
    }

    /// Shutdown begins: waits for a reload or admin change under way, then makes every later one
    /// change nothing (a revoke answers 503, a reload does nothing) and releases the state directory
    /// (and its lock).
    pub async fn begin_shutdown(&self) {
        let mut serial = self.serial.lock().await;
        serial.shutting_down = true;
        serial.state = None;
    }

    fn reject(&self, result: &'static str, problems: Vec<String>) -> ReloadOutcome {
        let total = problems.len();
        self.reject_counted(result, problems, total)
    }

    /// [`Shared::reject`] of a list that stands for `total` problems.
    fn reject_counted(&self, result: &'static str, problems: Vec<String>, total: usize) -> ReloadOutcome {
        for p in &problems {
            tracing::error!(problem = %p, "bundle rejected; the active bundle keeps serving");
        }
        metrics::bundle_reload(result);
        self.store.reject(&problems, total);
        ReloadOutcome::Rejected(problems)
    }

    /// Revokes a remembered admin: written and fsync'd first (off the runtime), then swapped in, so a
    /// revoke that returns `Ok` is durable. Once shutdown has begun: `ShuttingDown`, nothing changed.
    /// Run it on a task of its own where the caller may be cancelled (a dropped HTTP connection), or
    /// the state on disk can get ahead of the memory.
    pub async fn revoke_admin(&self, app: &str, user: &str) -> Result<(), AdminChangeError> {
        let serial = self.serial.lock().await;
        if serial.shutting_down {
            return Err(AdminChangeError::ShuttingDown);
        }
        let Some(active) = self.store.load() else { return Err(AdminChangeError::NoBundle) };
        let (next, version) = match serial.state.clone() {
            Some(StateStore::Table(table)) => {
                // Against the table's newest record, not this replica's copy of it.
                let u = fleet::update(&*table, fleet::RETRY, "revoke", |v| v.memory.revoke(app, user)).await.map_err(
                    |e| match e {
                        UpdateError::Refused(r) => AdminChangeError::Revoke(r),
                        e => AdminChangeError::State(e.to_string()),
                    },
                )?;
                (u.memory, Some(u.version))
            }
            Some(StateStore::Dir(dir)) => {
                let next = active.admins.revoke(app, user)?;
                save_state(dir, &next).await.map_err(|e| AdminChangeError::State(format!("{e:#}")))?;
                (next, None)
            }
            None => (active.admins.revoke(app, user)?, None),
        };
        {
            let _commit = self.commit_lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.commits.fetch_add(1, Ordering::SeqCst);
            self.store.set_admins(next);
        }
        if let Some(v) = version {
            metrics::state_version(v);
        }
        tracing::info!(app, user, version, "remembered admin revoked");
        Ok(())
    }
}

/// Loads `source` into `store` and reports SERVING: the first activation of a server started with
/// `Options { load_bundle: false }` (no state directory). Prefer `Running::shared.reload()`.
pub async fn load_and_activate(store: &Arc<Store>, health: &HealthReporter, source: &BundleSource) -> bool {
    let shared = Shared::new(store.clone(), health.clone(), source.clone(), None, AdminMemory::default());
    matches!(shared.reload().await, ReloadOutcome::Activated(_) | ReloadOutcome::Unchanged(_))
}
