//! The decision cache (dashmap), owned by one active snapshot: a swap replaces it, so an answer is
//! never served from another revision. Keyed by everything evaluation reads (principal, session tags,
//! source identity, action, resource, context, resource tags) — not by time: decisions that read
//! `aws:CurrentTime`/`aws:EpochTime` are never stored.
//!
//! Bounded twice (SPEC §6.1): by entries (`--cache-capacity`) and by bytes (`--cache-max-bytes`), each
//! entry costing its whole stored request, its answer and a fixed overhead ([`entry_cost`]); an entry
//! over 1/[`MAX_ENTRY_FRACTION`] of the byte budget is never stored. When a new decision does not fit,
//! older ones are evicted by CLOCK (second chance): a hit marks its entry, the hand passes over marked
//! entries once (clearing the mark) and evicts the first unmarked one. So a scan of one-off requests
//! replaces other one-offs, while an entry that keeps being hit stays, and a new hot decision always
//! gets in.
//!
//! The same map, bounds and CLOCK also hold **answers**: the encoded reply to a request whose bytes were
//! seen before ([`DecisionCache::answer`], [`DecisionCache::store_answer`]; `grpc::answers` makes and
//! serves them), keyed by the request's bytes, so a byte-identical repeat is answered without decoding,
//! converting or encoding. Both kinds count against one entry bound and one byte budget; an answer costs
//! its request bytes (a copy, never the receive buffer they arrived in), its encoded reply and what it
//! keeps for the decision log.
//!
//! A hit takes the dashmap shard's read lock only, as before, and sets the mark when it is not yet
//! set. Stores and evictions (misses only) take one mutex that guards the CLOCK ring and keeps the
//! entry and byte counts exact: neither bound is exceeded, not even for a moment by concurrent misses.
use crate::telemetry::metrics;
use bytes::Bytes;
use dashmap::DashMap;
use rustc_hash::FxHasher;
use std::any::Any;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::mem::size_of;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use warden_core::bundle::Bundle;
use warden_core::engine::{Request, Response};
use warden_core::policy::Value;

pub use crate::config::{DEFAULT_CACHE_CAPACITY as DEFAULT_CAPACITY, DEFAULT_CACHE_MAX_BYTES as DEFAULT_MAX_BYTES};

/// An entry costing more than `max_bytes / MAX_ENTRY_FRACTION` is never stored: one huge request can
/// neither take the whole budget nor flush every other decision out.
pub const MAX_ENTRY_FRACTION: usize = 16;

/// A cached decision or answer, with its cost and CLOCK mark.
#[derive(Debug)]
struct Entry {
    kind: Kind,
    /// What it counts against the byte budget ([`entry_cost`], [`answer_cost`]).
    cost: usize,
    /// Hit since the CLOCK hand last passed (its second chance).
    referenced: AtomicBool,
}

/// What an entry holds.
enum Kind {
    /// A decision: the request without its time and explain flag, and the answer.
    Decision { request: Request, response: Arc<Response> },
    /// A value of the caller's kept for a key of bytes (an [`Answer`] for an `Authorize` request's
    /// bytes; a `Check` answer for what its route read).
    Kept { key: Bytes, value: Arc<dyn Any + Send + Sync> },
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Decision { request, response } => {
                f.debug_struct("Decision").field("request", request).field("response", response).finish()
            }
            Kind::Kept { key, .. } => f.debug_struct("Kept").field("key_len", &key.len()).finish_non_exhaustive(),
        }
    }
}

impl Entry {
    /// The stored decision, when this entry is the decision of `r`.
    fn decision_for(&self, r: &Request) -> Option<&Arc<Response>> {
        match &self.kind {
            Kind::Decision { request, response } if same(request, r) => Some(response),
            _ => None,
        }
    }

    /// The value of type `T` kept for exactly `k`, if this entry is one.
    fn kept_for<T: Any + Send + Sync>(&self, k: &[u8]) -> Option<Arc<T>> {
        match &self.kind {
            Kind::Kept { key, value } if key.as_ref() == k => value.clone().downcast::<T>().ok(),
            _ => None,
        }
    }
}

/// The encoded reply to one request's bytes, and what the decision log writes of it (the wire format is
/// the caller's: the cache only keeps and bounds the bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The reply, encoded.
    pub encoded: Bytes,
    /// The decision's label (`allow`, `explicit_deny`, `implicit_deny`).
    pub decision: &'static str,
    /// The request's principal, action and resource and the determining statements, when decisions
    /// are logged.
    pub log: Option<AnswerLog>,
}

/// What the decision log records of a request that an [`Answer`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerLog {
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub determining: Vec<String>,
}

/// The cache of one snapshot.
#[derive(Debug)]
pub struct DecisionCache {
    map: DashMap<u64, Entry, rustc_hash::FxBuildHasher>,
    capacity: usize,
    max_bytes: usize,
    /// Entries and bytes held; written only under `ring`, read anywhere.
    len: AtomicUsize,
    bytes: AtomicUsize,
    evictions: AtomicU64,
    /// The CLOCK: every key of `map` exactly once, in insertion order; the hand is the front.
    ring: Mutex<VecDeque<u64>>,
}

// === costs ===

/// The heap an allocation of `n` bytes takes (glibc malloc: `n` plus an 8-byte header, rounded up to
/// 16, at least 32 bytes); nothing for `n == 0`, which does not allocate.
const fn heap(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let chunk = (n + 8).next_multiple_of(16);
    if chunk < 32 { 32 } else { chunk }
}

/// What every entry costs besides its strings and lists: its slot in the dashmap (key, entry and
/// control byte, doubled: a table grows to twice its size and may be half full), the `Arc<Response>`
/// allocation (two counts and the response) and its key in the CLOCK ring (doubled likewise).
pub const ENTRY_OVERHEAD: usize =
    2 * (size_of::<(u64, Entry)>() + 1) + heap(2 * size_of::<usize>() + size_of::<Response>()) + 2 * size_of::<u64>();

fn string_bytes(s: &str) -> usize {
    heap(s.len())
}

/// A `Vec` of `n` items of type `T` (a clone allocates exactly `n`).
fn vec_bytes<T>(n: usize) -> usize {
    heap(n * size_of::<T>())
}

fn strings_bytes(v: &[String]) -> usize {
    vec_bytes::<String>(v.len()) + v.iter().map(|s| string_bytes(s)).sum::<usize>()
}

fn pairs_bytes(v: &[(String, String)]) -> usize {
    vec_bytes::<(String, String)>(v.len()) + v.iter().map(|(k, v)| string_bytes(k) + string_bytes(v)).sum::<usize>()
}

/// The heap the stored copy of `r` takes: every field evaluation reads. Destructured by name, so a new
/// field of `Request` stops the build until it is costed (and keyed: see [`key_hash`] and [`same`]).
fn request_bytes(r: &Request) -> usize {
    let Request {
        principal,
        session_tags,
        source_identity,
        action,
        resource,
        context,
        resource_tags,
        now_ms: _,
        explain: _,
    } = r;
    let context_bytes = vec_bytes::<(String, Value)>(context.len())
        + context
            .iter()
            .map(|(k, v)| {
                string_bytes(k)
                    + match v {
                        Value::One(s) => string_bytes(s),
                        Value::Many(vs) => strings_bytes(vs),
                    }
            })
            .sum::<usize>();
    string_bytes(principal)
        + pairs_bytes(session_tags)
        + source_identity.as_deref().map_or(0, string_bytes)
        + string_bytes(action)
        + string_bytes(resource)
        + context_bytes
        + pairs_bytes(resource_tags)
}

/// The heap an answer takes (its statement references point into the bundle: counted as pointers).
fn response_bytes(r: &Response) -> usize {
    let Response { decision: _, determining, diagnostics, trace, reads_time: _, unmet } = r;
    vec_bytes::<warden_core::engine::StatementRef>(determining.len())
        + strings_bytes(diagnostics)
        + strings_bytes(trace)
        + unmet
            .iter()
            .map(|u| {
                std::mem::size_of::<warden_core::engine::Unmet>()
                    + u.policy.len()
                    + u.sid.len()
                    + u.operator.len()
                    + u.key.len()
                    + strings_bytes(&u.policy_values)
                    + u.request_values.as_deref().map_or(0, strings_bytes)
            })
            .sum::<usize>()
}

/// What caching `req` with the answer `resp` counts against the byte budget: the whole stored request,
/// the answer, and [`ENTRY_OVERHEAD`].
pub fn entry_cost(req: &Request, resp: &Response) -> usize {
    ENTRY_OVERHEAD + request_bytes(req) + response_bytes(resp)
}

/// What keeping a value of type `T` whose own heap is `value_heap` bytes for the key `key` counts
/// against the byte budget: the copy of the key, the `Arc<T>` (two counts and the value), the value's
/// heap, and [`ENTRY_OVERHEAD`].
pub fn kept_cost<T>(key: &[u8], value_heap: usize) -> usize {
    ENTRY_OVERHEAD + heap(key.len()) + heap(2 * size_of::<usize>() + size_of::<T>()) + value_heap
}

/// What keeping `answer` for the request bytes `raw` counts against the byte budget ([`kept_cost`]:
/// the encoded reply and the log fields are its heap).
pub fn answer_cost(raw: &[u8], answer: &Answer) -> usize {
    let Answer { encoded, decision: _, log } = answer;
    let log_bytes = log.as_ref().map_or(0, |l| {
        let AnswerLog { principal, action, resource, determining } = l;
        string_bytes(principal) + string_bytes(action) + string_bytes(resource) + strings_bytes(determining)
    });
    kept_cost::<Answer>(raw, heap(encoded.len()) + log_bytes)
}

/// The heap a `String` of this text takes (for callers' [`kept_cost`]).
pub fn text_heap(s: &str) -> usize {
    string_bytes(s)
}

/// The heap of a `Vec` of `n` items of type `T` (for callers' [`kept_cost`]).
pub fn vec_heap<T>(n: usize) -> usize {
    vec_bytes::<T>(n)
}

// === keys ===

/// What evaluation reads of a request, hashed (time and `explain` left out). Destructured by name, so
/// a new field of `Request` stops the build until it is keyed.
fn key_hash(r: &Request) -> u64 {
    let Request {
        principal,
        session_tags,
        source_identity,
        action,
        resource,
        context,
        resource_tags,
        now_ms: _,
        explain: _,
    } = r;
    let mut h = FxHasher::default();
    principal.hash(&mut h);
    session_tags.hash(&mut h);
    source_identity.hash(&mut h);
    action.hash(&mut h);
    resource.hash(&mut h);
    context.hash(&mut h);
    resource_tags.hash(&mut h);
    h.finish()
}

/// The key of the value kept for the bytes `key` (a distinct hash domain from [`key_hash`]; a
/// collision across the two, or between kept values of different types, is a miss like any other).
fn raw_hash(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write_u8(0xa5);
    h.write(key);
    h.finish()
}

/// Whether two requests are the same to evaluation: every field but the time and `explain`.
fn same(a: &Request, b: &Request) -> bool {
    let Request {
        principal,
        session_tags,
        source_identity,
        action,
        resource,
        context,
        resource_tags,
        now_ms: _,
        explain: _,
    } = a;
    *principal == b.principal
        && *action == b.action
        && *resource == b.resource
        && *session_tags == b.session_tags
        && *source_identity == b.source_identity
        && *context == b.context
        && *resource_tags == b.resource_tags
}

// === impl DecisionCache ===

impl DecisionCache {
    /// An empty cache holding at most `capacity` decisions (0 disables it) in the default byte budget.
    pub fn new(capacity: usize) -> DecisionCache {
        DecisionCache::with_limits(capacity, DEFAULT_MAX_BYTES)
    }

    /// An empty cache holding at most `capacity` decisions costing at most `max_bytes` together
    /// (either 0 disables it).
    pub fn with_limits(capacity: usize, max_bytes: usize) -> DecisionCache {
        DecisionCache {
            map: DashMap::with_hasher(rustc_hash::FxBuildHasher),
            capacity,
            max_bytes,
            len: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            evictions: AtomicU64::new(0),
            ring: Mutex::new(VecDeque::new()),
        }
    }

    /// Number of cached decisions.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the cached decisions cost together ([`entry_cost`]), never over the byte budget.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Decisions evicted to make room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// The largest entry stored ([`entry_cost`]): a fraction of the byte budget.
    pub fn max_entry_bytes(&self) -> usize {
        self.max_bytes / MAX_ENTRY_FRACTION
    }

    fn enabled(&self) -> bool {
        self.capacity > 0 && self.max_bytes > 0
    }

    /// The cached answer to `req`, if any (a lookup like any other: it counts as a use).
    pub fn get(&self, req: &Request) -> Option<Arc<Response>> {
        let e = self.map.get(&key_hash(req))?;
        let r = e.decision_for(req)?.clone();
        mark(&e);
        Some(r)
    }

    /// The answer kept for the request bytes `raw`, if any ([`DecisionCache::kept`]).
    pub fn answer(&self, raw: &[u8]) -> Option<Arc<Answer>> {
        self.kept::<Answer>(raw)
    }

    /// Keeps `answer` for the request bytes `raw` ([`DecisionCache::keep`], at [`answer_cost`]).
    pub fn store_answer(&self, raw: &[u8], answer: Answer) {
        let cost = answer_cost(raw, &answer);
        self.keep(raw, answer, cost);
    }

    /// The value of type `T` kept for exactly the bytes `key`, if any: a cache hit like a decision's
    /// (counted in `warden_cache_hits_total` and `warden_cache_answer_hits_total`). Nothing is counted
    /// on a miss: the request then goes on to [`DecisionCache::get_or_evaluate`], which counts it.
    pub fn kept<T: Any + Send + Sync>(&self, key: &[u8]) -> Option<Arc<T>> {
        if !self.enabled() {
            return None;
        }
        let e = self.map.get(&raw_hash(key))?;
        let v = e.kept_for::<T>(key)?;
        mark(&e);
        metrics::cache_answer_hit();
        Some(v)
    }

    /// Keeps `value` for the bytes `key` (copied: the entry never holds the buffer they came in) at
    /// `cost` ([`kept_cost`]), evicting older entries to make room, unless it is over the entry size
    /// limit or already kept.
    pub fn keep<T: Any + Send + Sync>(&self, key: &[u8], value: T, cost: usize) {
        if !self.enabled() {
            return;
        }
        let k = raw_hash(key);
        self.insert(
            k,
            cost,
            |e| e.kept_for::<T>(key).is_some(),
            || Kind::Kept { key: Bytes::copy_from_slice(key), value: Arc::new(value) },
        );
    }

    /// Answers `req` from the cache or with `evaluate` (storing the answer when it does not depend on
    /// time and is not too large, evicting older answers to make room). Returns the answer and whether
    /// it came from the cache.
    pub fn get_or_evaluate(
        &self,
        bundle: &Bundle,
        req: &Request,
        evaluate: impl FnOnce(&Bundle, &Request) -> Response,
    ) -> (Arc<Response>, bool) {
        if !self.enabled() || req.explain {
            return (Arc::new(evaluate(bundle, req)), false);
        }
        let k = key_hash(req);
        if let Some(e) = self.map.get(&k)
            && let Some(r) = e.decision_for(req)
        {
            let r = r.clone();
            mark(&e);
            metrics::cache_hit();
            return (r, true);
        }
        metrics::cache_miss();
        let resp = Arc::new(evaluate(bundle, req));
        if !resp.reads_time {
            self.store(k, req, &resp);
        }
        (resp, false)
    }

    /// Stores an answer under `k`, evicting until both bounds hold with it.
    fn store(&self, k: u64, req: &Request, resp: &Arc<Response>) {
        let cost = entry_cost(req, resp);
        self.insert(
            k,
            cost,
            |e| e.decision_for(req).is_some(),
            || {
                let mut stored = req.clone();
                stored.now_ms = 0;
                Kind::Decision { request: stored, response: resp.clone() }
            },
        );
    }

    /// Stores the entry `make` builds under `k` at `cost`, evicting until both bounds hold with it;
    /// nothing when it is over the entry size limit or `kept` says the map already holds it (another
    /// miss on the same request stored it meanwhile).
    fn insert(&self, k: u64, cost: usize, kept: impl Fn(&Entry) -> bool, make: impl FnOnce() -> Kind) {
        if cost > self.max_entry_bytes() {
            return;
        }
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if self.map.get(&k).is_some_and(|e| kept(&e)) {
            return;
        }
        let evicted = self.make_room(&mut ring, cost);
        let entry = Entry { kind: make(), cost, referenced: AtomicBool::new(false) };
        match self.map.insert(k, entry) {
            // A hash collision with another request (or an entry of the other kind): replaced in its
            // ring slot.
            Some(old) => {
                self.bytes.fetch_sub(old.cost, Ordering::Relaxed);
            }
            None => {
                ring.push_back(k);
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.bytes.fetch_add(cost, Ordering::Relaxed);
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
            metrics::cache_evictions(evicted);
        }
        metrics::cache_size(self.len(), self.bytes());
    }

    /// Evicts (CLOCK) until one more entry of `cost` bytes fits; returns how many were evicted. Called
    /// with the ring locked.
    fn make_room(&self, ring: &mut VecDeque<u64>, cost: usize) -> u64 {
        let mut evicted = 0;
        // One turn of the hand clears every mark set before it started; after that the entry under the
        // hand goes whatever its mark (hits racing with the hand cannot keep it turning).
        let mut chances = ring.len();
        while self.len() + 1 > self.capacity || self.bytes() + cost > self.max_bytes {
            let Some(victim) = ring.pop_front() else { break };
            let mut kept = false;
            let removed = self.map.remove_if(&victim, |_, e| {
                // Under the shard's write lock: no hit can set the mark between the load and the store,
                // and an unmarked entry (the common case in a scan) costs no locked instruction.
                kept = chances > 0 && e.referenced.load(Ordering::Relaxed);
                if kept {
                    e.referenced.store(false, Ordering::Relaxed);
                }
                !kept
            });
            chances = chances.saturating_sub(1);
            if kept {
                ring.push_back(victim);
            } else if let Some((_, e)) = removed {
                self.len.fetch_sub(1, Ordering::Relaxed);
                self.bytes.fetch_sub(e.cost, Ordering::Relaxed);
                crate::runtime::memory::released(e.cost);
                evicted += 1;
            }
        }
        evicted
    }
}

impl Drop for DecisionCache {
    /// A replaced snapshot's cache frees everything it held: worth a trim (see `runtime::memory`).
    fn drop(&mut self) {
        crate::runtime::memory::released(self.bytes());
    }
}

/// Gives a hit entry its second chance (a load first: the flag's cache line stays shared while set).
fn mark(e: &Entry) {
    if !e.referenced.load(Ordering::Relaxed) {
        e.referenced.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
