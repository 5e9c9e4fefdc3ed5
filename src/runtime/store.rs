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
    /// Which admin memory this is: a new number for every snapshot the store makes (an activation or
    /// a revoke), so that what was kept for one memory is never taken for another's.
    pub admins_version: u64,
}

/// The last reload attempt, for status.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// When the last attempt finished.
    pub at: Option<SystemTime>,
    /// Its error, if it failed: the first [`STATUS_PROBLEMS`] problems, one per line (each cut at
    /// [`STATUS_PROBLEM_CHARS`] characters), then a line with the count when there were more.
    pub error: Option<String>,
    /// How many problems it had (all of them, not only those in `error`).
    pub problems: usize,
}

/// Problems kept in the status of a failed reload (every one is logged).
pub const STATUS_PROBLEMS: usize = 100;
/// Characters kept of one problem in the status.
pub const STATUS_PROBLEM_CHARS: usize = 1024;

/// The status text of a failed reload: small whatever the number or size of its problems.
fn status_text(problems: &[String], total: usize) -> String {
    let mut text = String::new();
    for p in problems.iter().take(STATUS_PROBLEMS) {
        if !text.is_empty() {
            text.push('\n');
        }
        match p.char_indices().nth(STATUS_PROBLEM_CHARS) {
            Some((cut, _)) => {
                text.push_str(p.get(..cut).unwrap_or_default());
                text.push('…');
            }
            None => text.push_str(p),
        }
    }
    if total > STATUS_PROBLEMS {
        text.push_str(&format!(
            "\n({total} problems in all; the first {STATUS_PROBLEMS} are shown, the log has the rest)"
        ));
    }
    text
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
    /// The last `Active::admins_version` given.
    admins_versions: std::sync::atomic::AtomicU64,
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
        let admins_version = self.next_admins_version();
        let active = Active {
            bundle,
            admins,
            cache,
            activated_at: now,
            previous_revision: previous.clone(),
            source,
            admins_version,
        };
        let old = self.active.swap(Some(Arc::new(active)));
        self.reload.store(Arc::new(ReloadStatus { at: Some(now), error: None, problems: 0 }));
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
            admins_version: self.next_admins_version(),
        })));
        true
    }

    fn next_admins_version(&self) -> u64 {
        self.admins_versions.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// Records a failed load (its first problems and their count); the active bundle (if any) keeps
    /// serving.
    /// `total` counts every problem, including those a long list sums up in one line.
    pub fn reject(&self, problems: &[String], total: usize) {
        self.reload.store(Arc::new(ReloadStatus {
            at: Some(SystemTime::now()),
            error: Some(status_text(problems, total)),
            problems: total,
        }));
    }

    /// Records a reload that found the active content: whatever failed before is over.
    pub fn unchanged(&self) {
        self.reload.store(Arc::new(ReloadStatus { at: Some(SystemTime::now()), error: None, problems: 0 }));
    }

    /// The last reload attempt.
    pub fn reload_status(&self) -> Arc<ReloadStatus> {
        self.reload.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_of_a_failed_reload_stays_small() {
        let store = Store::new();
        let long = "x".repeat(100_000);
        let problems: Vec<String> = (0..150_000)
            .map(|i| if i < 3 { format!("f{i}.json: /: {long}") } else { format!("f{i}.json: /: x") })
            .collect();
        store.reject(&problems, problems.len());
        let s = store.reload_status();
        let text = s.error.clone().unwrap_or_default();
        assert_eq!(s.problems, 150_000);
        assert_eq!(text.lines().count(), STATUS_PROBLEMS + 1);
        assert!(text.len() < (STATUS_PROBLEMS + 1) * (STATUS_PROBLEM_CHARS * 4 + 1), "{} bytes", text.len());
        assert!(text.lines().next().is_some_and(|l| l.starts_with("f0.json: /: xxx") && l.ends_with('…')));
        assert!(text.ends_with("(150000 problems in all; the first 100 are shown, the log has the rest)"));

        store.reject(&["one: problem".to_owned()], 1);
        assert_eq!(store.reload_status().error.as_deref(), Some("one: problem"));
        store.unchanged();
        assert_eq!((store.reload_status().error.clone(), store.reload_status().problems), (None, 0));
    }
}
