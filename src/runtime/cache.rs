//! The decision cache (dashmap), owned by one active snapshot: a swap replaces it, so an answer is
//! never served from another revision. Keyed by everything evaluation reads (principal, session tags,
//! source identity, action, resource, context, resource tags) — not by time: decisions that read
//! `aws:CurrentTime`/`aws:EpochTime` are never stored. Bounded: when full, new entries are not stored
//! (memory stays flat under an endless stream of distinct requests).
use crate::telemetry::metrics;
use dashmap::DashMap;
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use warden_core::bundle::Bundle;
use warden_core::engine::{Request, Response};

pub use crate::config::DEFAULT_CACHE_CAPACITY as DEFAULT_CAPACITY;

/// A cached request: the request without its time and explain flag, and the answer.
#[derive(Debug)]
struct Entry {
    request: Request,
    response: Arc<Response>,
}

/// The cache of one snapshot.
#[derive(Debug)]
pub struct DecisionCache {
    map: DashMap<u64, Entry, rustc_hash::FxBuildHasher>,
    capacity: usize,
    len: AtomicUsize,
}

/// What evaluation reads of a request, hashed (time and `explain` left out).
fn key_hash(r: &Request) -> u64 {
    let mut h = FxHasher::default();
    r.principal.hash(&mut h);
    r.session_tags.hash(&mut h);
    r.source_identity.hash(&mut h);
    r.action.hash(&mut h);
    r.resource.hash(&mut h);
    r.context.hash(&mut h);
    r.resource_tags.hash(&mut h);
    h.finish()
}

fn same(a: &Request, b: &Request) -> bool {
    a.principal == b.principal
        && a.action == b.action
        && a.resource == b.resource
        && a.session_tags == b.session_tags
        && a.source_identity == b.source_identity
        && a.context == b.context
        && a.resource_tags == b.resource_tags
}

impl DecisionCache {
    /// An empty cache holding at most `capacity` decisions (0 disables it).
    pub fn new(capacity: usize) -> DecisionCache {
        DecisionCache { map: DashMap::with_hasher(rustc_hash::FxBuildHasher), capacity, len: AtomicUsize::new(0) }
    }

    /// Takes one slot if the cache is not full.
    fn reserve(&self) -> bool {
        self.len.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < self.capacity).then_some(n + 1)).is_ok()
    }

    /// Number of cached decisions.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached answer to `req`, if any.
    pub fn get(&self, req: &Request) -> Option<Arc<Response>> {
        let e = self.map.get(&key_hash(req))?;
        same(&e.request, req).then(|| e.response.clone())
    }

    /// Answers `req` from the cache or with `evaluate` (storing the answer when it does not depend on
    /// time and there is room). Returns the answer and whether it came from the cache.
    pub fn get_or_evaluate(
        &self,
        bundle: &Bundle,
        req: &Request,
        evaluate: impl FnOnce(&Bundle, &Request) -> Response,
    ) -> (Arc<Response>, bool) {
        if self.capacity == 0 || req.explain {
            return (Arc::new(evaluate(bundle, req)), false);
        }
        let k = key_hash(req);
        if let Some(e) = self.map.get(&k)
            && same(&e.request, req)
        {
            metrics::cache_hit();
            return (e.response.clone(), true);
        }
        metrics::cache_miss();
        let resp = Arc::new(evaluate(bundle, req));
        // Reserve a slot first, so concurrent misses can never overfill the cache.
        if !resp.reads_time && self.reserve() {
            let mut stored = req.clone();
            stored.now_ms = 0;
            if self.map.insert(k, Entry { request: stored, response: resp.clone() }).is_some() {
                // Replaced an entry (same key, or a hash collision): give the slot back.
                self.len.fetch_sub(1, Ordering::Relaxed);
            }
            metrics::cache_entries(self.len());
        }
        (resp, false)
    }
}
