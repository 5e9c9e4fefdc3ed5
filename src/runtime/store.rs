//! The active bundle: an atomically swapped snapshot (arc-swap). A request loads it once and uses that
//! one snapshot for its evaluation and the revision it reports. Also keeps the status operators see.
use crate::runtime::cache::DecisionCache;
use arc_swap::{ArcSwap, ArcSwapOption};
use std::sync::Arc;
use std::time::SystemTime;
use warden_core::bundle::Bundle;
use warden_core::identity::AdminMemory;

/// One activated bundle.
#[derive(Debug)]
pub struct Active {
    /// The bundle.
    pub bundle: Arc<Bundle>,
    /// Remembered partner-app admins, consistent with `bundle`.
    pub admins: Arc<AdminMemory>,
    /// Decisions computed against this bundle (replaced with it).
    pub cache: Arc<DecisionCache>,
    /// When it was activated.
    pub activated_at: SystemTime,
    /// The revision it replaced.
    pub previous_revision: Option<String>,
    /// Where it came from (a directory, or the embedded default).
    pub source: String,
}

/// The last reload attempt, for status.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// When the last attempt finished.
    pub at: Option<SystemTime>,
    /// Its error, if it failed (every problem, one per line).
    pub error: Option<String>,
}

/// What `activate` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The new revision.
    pub revision: String,
    /// The previous one.
    pub previous: Option<String>,
}

/// The store of the active bundle.
#[derive(Debug, Default)]
pub struct Store {
    active: ArcSwapOption<Active>,
    reload: ArcSwap<ReloadStatus>,
    cache_capacity: usize,
    cache_max_bytes: usize,
}

// === impl Store ===

impl Store {
    /// An empty store: no bundle yet (RPCs answer UNAVAILABLE); each activated bundle gets a decision
    /// cache of the default capacity and byte budget.
    pub fn new() -> Store {
        Store::with_cache_limits(crate::runtime::cache::DEFAULT_CAPACITY, crate::runtime::cache::DEFAULT_MAX_BYTES)
    }

    /// An empty store whose bundles get caches of at most `capacity` decisions costing at most
    /// `max_bytes` together (either 0: no cache).
    pub fn with_cache_limits(capacity: usize, max_bytes: usize) -> Store {
        Store { cache_capacity: capacity, cache_max_bytes: max_bytes, ..Store::default() }
    }

    /// The active snapshot, loaded once per request.
    pub fn load(&self) -> Option<Arc<Active>> {
        self.active.load_full()
    }

    /// Swaps in a new bundle (with the admin memory computed for it) atomically. The replaced snapshot
    /// is returned, so that the caller can free a large bundle off the request path.
    pub fn activate(
        &self,
        bundle: Arc<Bundle>,
        admins: AdminMemory,
        source: String,
    ) -> (Activation, Option<Arc<Active>>) {
        let previous = self.active.load().as_ref().map(|a| a.bundle.revision.clone());
        let revision = bundle.revision.clone();
        let now = SystemTime::now();
        let admins = Arc::new(admins);
        let cache = Arc::new(DecisionCache::with_limits(self.cache_capacity, self.cache_max_bytes));
        crate::telemetry::metrics::cache_size(0, 0);
        let active = Active { bundle, admins, cache, activated_at: now, previous_revision: previous.clone(), source };
        let old = self.active.swap(Some(Arc::new(active)));
        self.reload.store(Arc::new(ReloadStatus { at: Some(now), error: None }));
        (Activation { revision, previous }, old)
    }

    /// Replaces the admin memory of the active bundle (an operator revoked a remembered admin).
    pub fn set_admins(&self, admins: AdminMemory) -> bool {
        let Some(cur) = self.active.load_full() else { return false };
        self.active.store(Some(Arc::new(Active {
            bundle: cur.bundle.clone(),
            admins: Arc::new(admins),
            cache: cur.cache.clone(),
            activated_at: cur.activated_at,
            previous_revision: cur.previous_revision.clone(),
            source: cur.source.clone(),
        })));
        true
    }

    /// Records a failed load; the active bundle (if any) keeps serving.
    pub fn reject(&self, error: String) {
        self.reload.store(Arc::new(ReloadStatus { at: Some(SystemTime::now()), error: Some(error) }));
    }

    /// The last reload attempt.
    pub fn reload_status(&self) -> Arc<ReloadStatus> {
        self.reload.load_full()
    }
}
