//! The decision cache alone: keys, costs, both bounds, CLOCK eviction, concurrency. Answers come from
//! counting stand-in evaluators, so each test knows exactly which calls were evaluated.
use super::*;
use std::collections::HashSet;
use std::sync::atomic::AtomicUsize;
use warden_core::engine::Decision;
use warden_core::policy::MapContext;

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

fn req(resource: &str) -> Request {
    Request {
        principal: ALICE.to_owned(),
        action: "s3:getobject".to_owned(),
        resource: resource.to_owned(),
        ..Request::default()
    }
}

fn one_off(i: usize) -> Request {
    req(&format!("arn:aws:s3:::cold/{i}"))
}

fn answer(decision: Decision) -> Response {
    Response {
        decision,
        determining: Vec::new(),
        diagnostics: Vec::new(),
        trace: Vec::new(),
        reads_time: false,
        unmet: Vec::new(),
    }
}

fn allow(_: &Bundle, _: &Request) -> Response {
    answer(Decision::Allow)
}

/// Looks `r` up and stores it on a miss; whether it was a hit.
fn hit(c: &DecisionCache, r: &Request) -> bool {
    c.get_or_evaluate(&Bundle::default(), r, allow).1
}

/// Whether `r` is cached, without counting as a use (no CLOCK mark).
fn holds(c: &DecisionCache, r: &Request) -> bool {
    c.map.get(&key_hash(r)).is_some_and(|e| e.decision_for(r).is_some())
}

/// Every internal invariant: the ring has each key of the map once, the counts are exact, both bounds
/// hold. Only meaningful when no other thread is storing.
fn check(c: &DecisionCache) {
    let ring = c.ring.lock().unwrap();
    let keys: HashSet<u64> = ring.iter().copied().collect();
    assert_eq!(keys.len(), ring.len(), "a key twice in the ring");
    assert_eq!(ring.len(), c.map.len(), "ring and map differ");
    assert!(keys.iter().all(|k| c.map.contains_key(k)), "a ring key not in the map");
    assert_eq!(c.len(), c.map.len(), "entry count");
    assert_eq!(c.bytes(), c.map.iter().map(|e| e.cost).sum::<usize>(), "byte count");
    assert!(c.len() <= c.capacity, "{} entries, capacity {}", c.len(), c.capacity);
    assert!(c.bytes() <= c.max_bytes, "{} bytes, budget {}", c.bytes(), c.max_bytes);
}

/// A request with every field evaluation reads set.
fn full() -> Request {
    Request {
        principal: ALICE.to_owned(),
        session_tags: vec![("Team".to_owned(), "Team1".to_owned())],
        source_identity: Some("alice-laptop".to_owned()),
        action: "s3:getobject".to_owned(),
        resource: "arn:aws:s3:::reports/q1.csv".to_owned(),
        context: MapContext::from_pairs(&[("aws:SourceIp", "10.1.2.3")]),
        resource_tags: vec![("Project".to_owned(), "Atlas".to_owned())],
        now_ms: 1_767_225_600_000,
        explain: false,
    }
}

/// `full()` changed in one field evaluation reads, for each such field (destructured by name: a new
/// field of `Request` stops the build here until it is listed).
fn one_field_changed() -> Vec<(&'static str, Request)> {
    let Request {
        principal: _,
        session_tags: _,
        source_identity: _,
        action: _,
        resource: _,
        context: _,
        resource_tags: _,
        now_ms: _,
        explain: _,
    } = full();
    let f = full;
    vec![
        ("principal", Request { principal: "arn:aws:iam::111122223333:user/bob".to_owned(), ..f() }),
        ("session_tags value", Request { session_tags: vec![("Team".to_owned(), "Team2".to_owned())], ..f() }),
        ("session_tags key", Request { session_tags: vec![("Tean".to_owned(), "Team1".to_owned())], ..f() }),
        ("session_tags none", Request { session_tags: Vec::new(), ..f() }),
        ("source_identity", Request { source_identity: Some("alice-phone".to_owned()), ..f() }),
        ("source_identity none", Request { source_identity: None, ..f() }),
        ("action", Request { action: "s3:putobject".to_owned(), ..f() }),
        ("resource", Request { resource: "arn:aws:s3:::reports/q2.csv".to_owned(), ..f() }),
        ("context value", Request { context: MapContext::from_pairs(&[("aws:SourceIp", "192.0.2.7")]), ..f() }),
        ("context key", Request { context: MapContext::from_pairs(&[("aws:SourceVpc", "10.1.2.3")]), ..f() }),
        ("context none", Request { context: MapContext::default(), ..f() }),
        ("resource_tags value", Request { resource_tags: vec![("Project".to_owned(), "Borealis".to_owned())], ..f() }),
        ("resource_tags none", Request { resource_tags: Vec::new(), ..f() }),
    ]
}

// === keys ===

#[test]
fn a_hit_answers_exactly_what_was_evaluated() {
    let c = DecisionCache::new(10);
    let evaluated = AtomicUsize::new(0);
    let deny = |_: &Bundle, _: &Request| {
        evaluated.fetch_add(1, Ordering::Relaxed);
        Response { diagnostics: vec!["no Allow".to_owned()], ..answer(Decision::ImplicitDeny) }
    };
    let r = full();
    let (first, cached) = c.get_or_evaluate(&Bundle::default(), &r, deny);
    assert!(!cached);
    let (second, cached) = c.get_or_evaluate(&Bundle::default(), &r, deny);
    assert!(cached);
    assert!(Arc::ptr_eq(&first, &second), "the stored answer itself");
    assert_eq!(evaluated.load(Ordering::Relaxed), 1);
    assert_eq!(c.get(&r).map(|a| a.decision), Some(Decision::ImplicitDeny));
    // The time is not part of the key (time-dependent answers are never stored).
    let later = Request { now_ms: r.now_ms + 60_000, ..full() };
    assert!(hit(&c, &later), "a decision that did not read the time holds at any time");
    check(&c);
}

#[test]
fn the_key_is_every_field_evaluation_reads() {
    let c = DecisionCache::new(100);
    let evaluated = AtomicUsize::new(0);
    let count = |_: &Bundle, _: &Request| {
        evaluated.fetch_add(1, Ordering::Relaxed);
        answer(Decision::Allow)
    };
    assert!(!c.get_or_evaluate(&Bundle::default(), &full(), count).1);
    for (field, r) in one_field_changed() {
        let before = evaluated.load(Ordering::Relaxed);
        let (_, cached) = c.get_or_evaluate(&Bundle::default(), &r, count);
        assert!(!cached, "a request differing only in {field} was answered from the cache");
        assert_eq!(evaluated.load(Ordering::Relaxed), before + 1, "{field}: evaluated");
        assert!(c.get_or_evaluate(&Bundle::default(), &r, count).1, "{field}: then cached itself");
    }
    assert!(c.get_or_evaluate(&Bundle::default(), &full(), count).1, "the original is still cached");
    assert_eq!(c.len(), one_field_changed().len() + 1);
    check(&c);
}

#[test]
fn explain_and_time_dependent_answers_are_never_stored() {
    let c = DecisionCache::new(10);
    let explain = Request { explain: true, ..full() };
    let traced = |_: &Bundle, _: &Request| Response { trace: vec!["step".to_owned()], ..answer(Decision::Allow) };
    for _ in 0..2 {
        let (a, cached) = c.get_or_evaluate(&Bundle::default(), &explain, traced);
        assert!(!cached && a.trace.len() == 1);
    }
    let timed = |_: &Bundle, _: &Request| Response { reads_time: true, ..answer(Decision::Allow) };
    for _ in 0..2 {
        assert!(!c.get_or_evaluate(&Bundle::default(), &full(), timed).1);
    }
    assert!(c.is_empty() && c.bytes() == 0);
    check(&c);
}

#[test]
fn a_disabled_cache_stores_nothing() {
    for c in [DecisionCache::with_limits(0, DEFAULT_MAX_BYTES), DecisionCache::with_limits(DEFAULT_CAPACITY, 0)] {
        assert!(!hit(&c, &full()));
        assert!(!hit(&c, &full()));
        assert!(c.is_empty() && c.bytes() == 0);
    }
}

// === costs ===

#[test]
fn an_entry_costs_its_whole_request_its_answer_and_a_fixed_overhead() {
    let resp = answer(Decision::Allow);
    let base = entry_cost(&full(), &resp);
    assert!(base > ENTRY_OVERHEAD + 100, "{base}: the overhead and the request's strings");
    assert!(entry_cost(&Request::default(), &resp) == ENTRY_OVERHEAD, "an empty request costs the overhead");
    let big = "x".repeat(1_000);
    let mut grown = vec![
        ("principal", Request { principal: big.clone(), ..full() }),
        ("session tag", Request { session_tags: vec![("Team".to_owned(), big.clone())], ..full() }),
        ("source identity", Request { source_identity: Some(big.clone()), ..full() }),
        ("action", Request { action: big.clone(), ..full() }),
        ("resource", Request { resource: big.clone(), ..full() }),
        ("context value", Request { context: MapContext::from_pairs(&[("aws:SourceIp", &big)]), ..full() }),
        ("context key", Request { context: MapContext::from_pairs(&[(&big, "10.1.2.3")]), ..full() }),
        ("resource tag", Request { resource_tags: vec![(big.clone(), "Atlas".to_owned())], ..full() }),
    ];
    let mut list = full();
    list.context.insert("app:list", Value::Many(vec![big.clone(); 3]));
    grown.push(("context list", list));
    for (field, r) in &grown {
        let cost = entry_cost(r, &resp);
        // 1,000 bytes more, less the short string replaced (under 48 bytes).
        assert!(cost >= base + 1_000 - 48, "{field}: {cost} vs {base}");
        assert!(cost <= base + 3 * 1_100 + 64, "{field}: {cost} vs {base}: counted about once");
    }
    let long = Response { diagnostics: vec![big.clone(), big], ..answer(Decision::ImplicitDeny) };
    assert!(entry_cost(&full(), &long) >= base + 2_000, "the answer's diagnostics count");
    // Many small strings cost their allocations, not just their characters.
    let mut many = full();
    many.context.insert("app:list", Value::Many(vec!["a".to_owned(); 1_000]));
    assert!(entry_cost(&many, &resp) >= base + 1_000 * (size_of::<String>() + 32));
}

#[test]
fn an_entry_over_a_sixteenth_of_the_budget_is_never_stored() {
    let max_bytes = 64 * 1024;
    let c = DecisionCache::with_limits(100, max_bytes);
    assert_eq!(c.max_entry_bytes(), 4 * 1024);
    let sized = |n: usize| {
        let mut r = full();
        r.context.insert("app:blob", Value::One("x".repeat(n)));
        r
    };
    let resp = answer(Decision::Allow);
    let room = c.max_entry_bytes() - entry_cost(&sized(0), &resp);
    let around = room - 64..room + 64;
    let over = around.clone().map(sized).find(|r| entry_cost(r, &resp) > c.max_entry_bytes()).unwrap();
    let fits = around.rev().map(sized).find(|r| entry_cost(r, &resp) <= c.max_entry_bytes()).unwrap();
    assert!(entry_cost(&fits, &resp) + 16 >= c.max_entry_bytes(), "just under the limit");
    assert!(!hit(&c, &over) && !hit(&c, &over), "over 1/16 of the budget: evaluated every time");
    assert!(c.is_empty());
    assert!(!hit(&c, &fits) && hit(&c, &fits), "at most 1/16: stored");
    assert_eq!(c.len(), 1);
    check(&c);
}

// === bounds and eviction ===

#[test]
fn the_entry_bound_holds_and_evicts_the_oldest_unused() {
    let c = DecisionCache::with_limits(10, DEFAULT_MAX_BYTES);
    for i in 0..100 {
        assert!(!hit(&c, &one_off(i)));
        assert!(c.len() <= 10);
    }
    assert_eq!((c.len(), c.evictions()), (10, 90));
    assert!((90..100).all(|i| holds(&c, &one_off(i))), "the last ten are kept");
    assert!(!holds(&c, &one_off(0)));
    check(&c);
}

#[test]
fn the_byte_bound_holds_while_the_cache_stays_full() {
    let max_bytes = 256 * 1024;
    let c = DecisionCache::with_limits(100_000, max_bytes);
    let padded = |i: usize| {
        let mut r = one_off(i);
        r.context.insert("app:pad", Value::One(format!("{i:06}{}", "p".repeat(2_000))));
        r
    };
    let cost = entry_cost(&padded(0), &answer(Decision::Allow));
    assert_eq!(cost, entry_cost(&padded(999), &answer(Decision::Allow)), "all of one size");
    for i in 0..1_000 {
        hit(&c, &padded(i));
        assert!(c.bytes() <= max_bytes, "after {i}: {} bytes", c.bytes());
    }
    assert_eq!(c.len(), max_bytes / cost, "as many as fit: entries of {cost} bytes in {max_bytes}");
    assert!(c.bytes() + cost > max_bytes, "full");
    assert_eq!(c.evictions(), 1_000 - c.len() as u64);
    assert!(holds(&c, &padded(999)) && !holds(&c, &padded(0)));
    check(&c);
}

/// The cache that stopped storing when full (no eviction) kept the first decisions forever: after a
/// scan of one-offs a hot key could never get in. With CLOCK, the scan replaces one-offs, a key that
/// keeps being hit stays, and a new hot key gets in and stays too.
#[test]
fn a_scan_of_one_offs_does_not_freeze_the_cache() {
    for (capacity, max_bytes) in
        [(100, DEFAULT_MAX_BYTES), (100_000, 100 * entry_cost(&one_off(0), &answer(Decision::Allow)))]
    {
        let c = DecisionCache::with_limits(capacity, max_bytes);
        // Full of cold one-offs.
        let mut cold = 0..;
        for _ in 0..200 {
            hit(&c, &one_off(cold.next().unwrap()));
        }
        let full_len = c.len();
        assert!((90..=100).contains(&full_len), "{full_len}");
        // A new hot key gets in.
        let hot = req("arn:aws:s3:::hot/1");
        assert!(!hit(&c, &hot), "first seen: evaluated");
        assert!(hit(&c, &hot), "a new key gets into a full cache");
        // A long scan of one-offs, with the hot key hit every 10 of them: it is never evicted.
        for round in 0..1_000 {
            for _ in 0..10 {
                assert!(!hit(&c, &one_off(cold.next().unwrap())));
            }
            assert!(hit(&c, &hot), "round {round}: the hot key was evicted by a scan");
            // Midway a second hot key appears; it gets in and stays as well.
            if round >= 500 {
                let hot2 = req("arn:aws:s3:::hot/2");
                assert_eq!(hit(&c, &hot2), round > 500, "round {round}: the second hot key");
            }
        }
        assert!(c.evictions() > 10_000);
        assert!(c.len() + 2 >= full_len, "still full: {} of {full_len}", c.len());
        check(&c);
    }
}

#[test]
fn when_every_entry_was_hit_the_hand_still_evicts_one() {
    let c = DecisionCache::with_limits(3, DEFAULT_MAX_BYTES);
    for i in 0..3 {
        hit(&c, &one_off(i));
        assert!(hit(&c, &one_off(i)));
    }
    assert!(!hit(&c, &one_off(3)));
    assert_eq!((c.len(), c.evictions()), (3, 1));
    assert!(!holds(&c, &one_off(0)), "the hand's first entry, after its second chance");
    assert!((1..4).all(|i| holds(&c, &one_off(i))));
    check(&c);
}

#[test]
fn a_hash_collision_replaces_the_entry_in_place() {
    let c = DecisionCache::with_limits(10, DEFAULT_MAX_BYTES);
    let resp = Arc::new(answer(Decision::Allow));
    let (a, b) = (one_off(1), Request { context: MapContext::from_pairs(&[("app:k", "long value")]), ..one_off(2) });
    c.store(42, &a, &resp);
    c.store(42, &b, &resp);
    assert_eq!((c.len(), c.bytes(), c.evictions()), (1, entry_cost(&b, &resp), 0));
    assert!(c.map.get(&42).is_some_and(|e| e.decision_for(&b).is_some()));
    check(&c);
}

#[test]
fn concurrent_stores_and_hits_keep_both_bounds_and_exact_counts() {
    const THREADS: usize = 4;
    let max_bytes = 40 * entry_cost(&one_off(0), &answer(Decision::Allow));
    let c = DecisionCache::with_limits(30, max_bytes);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut seen = 0usize;
            while !done.load(Ordering::Relaxed) {
                assert!(c.len() <= 30, "{} entries", c.len());
                assert!(c.bytes() <= max_bytes, "{} bytes", c.bytes());
                seen += 1;
            }
            seen
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let c = &c;
                s.spawn(move || {
                    let hot = req(&format!("arn:aws:s3:::hot/{t}"));
                    for i in 0..5_000 {
                        hit(c, &one_off(t * 1_000_000 + i));
                        hit(c, &one_off(i % 50));
                        hit(c, &hot);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        assert!(watcher.join().unwrap() > 0);
    });
    check(&c);
    assert_eq!(c.len(), 30);
    assert!(c.evictions() >= (THREADS * 5_000 - 30) as u64);
}

#[test]
fn answers_share_both_bounds_and_keep_a_copy_of_the_request_bytes() {
    let a = Answer { encoded: Bytes::from_static(b"an encoded reply"), decision: "allow", log: None };
    let c = DecisionCache::with_limits(3, DEFAULT_MAX_BYTES);
    // The request bytes are a slice of a large receive buffer: the entry must not keep that alive.
    let buffer = Bytes::from(vec![7u8; 64 * 1024]);
    let raw = buffer.slice(100..200);
    c.store_answer(&raw, a.clone());
    assert_eq!((c.len(), c.bytes()), (1, answer_cost(&raw, &a)));
    assert!(c.bytes() < 1024, "costs its 100 bytes, not the 64 KiB buffer: {}", c.bytes());
    match &c.map.get(&raw_hash(&raw)).expect("stored").kind {
        Kind::Kept { key, .. } => assert_ne!(key.as_ptr(), raw.as_ptr(), "a copy"),
        Kind::Decision { .. } => panic!("an answer was stored"),
    }
    // A value of another type kept for the same bytes is not this answer.
    assert!(c.kept::<String>(&raw).is_none());
    assert_eq!(c.answer(&raw).as_deref(), Some(&a));
    assert_eq!(c.answer(&buffer.slice(100..199)), None, "exact bytes only");
    // Storing it again changes nothing.
    c.store_answer(&raw, a.clone());
    assert_eq!(c.len(), 1);
    // Decisions and answers count against one entry bound, and are evicted alike.
    for i in 0..3 {
        hit(&c, &one_off(i));
    }
    check(&c);
    assert_eq!((c.len(), c.evictions()), (3, 1));
    // And one byte budget: an answer over a sixteenth of it is never stored.
    let small = DecisionCache::with_limits(100, 32 * 1024);
    small.store_answer(&[0u8; 2100], a.clone());
    assert!(small.is_empty());
    small.store_answer(&[0u8; 200], a.clone());
    assert_eq!(small.len(), 1);
    // A disabled cache keeps none.
    let off = DecisionCache::with_limits(0, DEFAULT_MAX_BYTES);
    off.store_answer(&raw, a);
    assert!(off.is_empty() && off.answer(&raw).is_none());
}
