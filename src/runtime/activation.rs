//! Activation: what reloads, SIGHUP and admin changes share (the store, health, the bundle source,
//! the state directory), and the one path by which a bundle becomes active. The reload watcher and the
//! server both drive it; it imports neither.
use crate::config::BundleSource;
use crate::runtime::files;
use crate::runtime::state::StateDir;
use crate::runtime::store::Store;
use crate::telemetry::metrics;
use anyhow::Result;
use std::sync::Arc;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use warden_core::bundle;
use warden_core::identity::{AdminMemory, RevokeError};

/// The health service name of the Authorizer.
pub const AUTHORIZER_SERVICE: &str = "warden.v1.Authorizer";

/// Sets the health of the overall service and of the Authorizer.
pub async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(AUTHORIZER_SERVICE, status).await;
}

fn load(source: &BundleSource) -> Result<bundle::Bundle, Vec<warden_core::policy::Problem>> {
    match source {
        BundleSource::Dir(d) => files::read_dir(d),
        BundleSource::Embedded => files::embedded(),
    }
}

/// How a bundle source is named in logs and status.
pub fn source_name(source: &BundleSource) -> String {
    match source {
        BundleSource::Dir(d) => d.display().to_string(),
        BundleSource::Embedded => "embedded default bundle".to_owned(),
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
    /// The state directory could not be written; nothing changed.
    #[error("the admin state could not be saved, nothing changed: {0}")]
    State(String),
}

/// What a (re)load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new revision is active.
    Activated(String),
    /// Same content as the active bundle: nothing to do.
    Unchanged(String),
    /// The bundle is invalid; the previous one (if any) keeps serving.
    Rejected(Vec<String>),
    /// The bundle changes the admin users of an app whose admins cannot change.
    AdminChangeRefused(Vec<String>),
}

/// What reloads and admin changes share: the store, health, the bundle source, the state directory.
pub struct Shared {
    /// The active snapshot.
    pub store: Arc<Store>,
    /// Health reporter.
    pub health: HealthReporter,
    /// Bundle source.
    pub source: BundleSource,
    /// State directory, if any (taken at shutdown, which releases its lock).
    pub state: std::sync::Mutex<Option<StateDir>>,
    /// One reload or admin change at a time.
    pub serial: tokio::sync::Mutex<()>,
    /// Admin memory from the state directory, used until the first activation.
    pub initial_admins: AdminMemory,
}

impl Shared {
    /// Loads the bundle off the request path, checks it and activates it (health SERVING), or
    /// records why not; the active bundle keeps serving on failure.
    pub async fn reload(&self) -> ReloadOutcome {
        let _one = self.serial.lock().await;
        let src = self.source.clone();
        let result = tokio::task::spawn_blocking(move || load(&src)).await;
        let bundle = match result {
            Ok(Ok(b)) => b,
            Ok(Err(problems)) => {
                let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                return self.reject("rejected", text);
            }
            Err(e) => return self.reject("rejected", vec![format!("bundle load task failed: {e}")]),
        };
        let current = self.store.load();
        if let Some(a) = &current
            && a.bundle.revision == bundle.revision
        {
            metrics::bundle_reload("unchanged");
            return ReloadOutcome::Unchanged(bundle.revision);
        }
        let base = current.as_ref().map_or_else(|| self.initial_admins.clone(), |a| (*a.admins).clone());
        let admins = match base.transition(&bundle) {
            Ok(m) => m,
            Err(refused) => {
                if let ReloadOutcome::Rejected(r) = self.reject("rejected", refused) {
                    return ReloadOutcome::AdminChangeRefused(r);
                }
                return ReloadOutcome::AdminChangeRefused(Vec::new());
            }
        };
        if let Err(e) = self.save_state(&admins) {
            return self.reject("rejected", vec![format!("{e:#}")]);
        }
        let (act, old) = self.store.activate(Arc::new(bundle), admins, source_name(&self.source));
        // Freeing a large bundle takes a while: not on a runtime worker.
        if let Some(old) = old {
            tokio::task::spawn_blocking(move || drop(old));
        }
        metrics::bundle_reload("activated");
        tracing::info!(revision = %act.revision, previous = ?act.previous, source = %source_name(&self.source), "bundle activated");
        set_health(&self.health, ServingStatus::Serving).await;
        ReloadOutcome::Activated(act.revision)
    }

    fn save_state(&self, admins: &AdminMemory) -> Result<()> {
        let guard = self.state.lock().map_err(|_| anyhow::anyhow!("state directory lock poisoned"))?;
        match guard.as_ref() {
            Some(state) => state.save(admins),
            None => Ok(()),
        }
    }

    /// Releases the state directory (and its lock).
    pub fn release_state(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.take();
        }
    }

    fn reject(&self, result: &'static str, problems: Vec<String>) -> ReloadOutcome {
        for p in &problems {
            tracing::error!(problem = %p, "bundle rejected; the active bundle keeps serving");
        }
        metrics::bundle_reload(result);
        self.store.reject(problems.join("\n"));
        ReloadOutcome::Rejected(problems)
    }

    /// Revokes a remembered admin (persisted first, then swapped in).
    pub async fn revoke_admin(&self, app: &str, user: &str) -> Result<(), AdminChangeError> {
        let _one = self.serial.lock().await;
        let Some(active) = self.store.load() else { return Err(AdminChangeError::NoBundle) };
        let next = active.admins.revoke(app, user)?;
        self.save_state(&next).map_err(|e| AdminChangeError::State(format!("{e:#}")))?;
        self.store.set_admins(next);
        tracing::info!(app, user, "remembered admin revoked");
        Ok(())
    }
}

/// Loads `source` into `store` and reports SERVING: the first activation of a server started with
/// `Options { load_bundle: false }` (no state directory). Prefer `Running::shared.reload()`.
pub async fn load_and_activate(store: &Arc<Store>, health: &HealthReporter, source: &BundleSource) -> bool {
    let shared = Shared {
        store: store.clone(),
        health: health.clone(),
        source: source.clone(),
        state: std::sync::Mutex::new(None),
        serial: tokio::sync::Mutex::new(()),
        initial_admins: AdminMemory::default(),
    };
    matches!(shared.reload().await, ReloadOutcome::Activated(_) | ReloadOutcome::Unchanged(_))
}
