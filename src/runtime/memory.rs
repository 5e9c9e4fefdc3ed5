//! Giving freed memory back to the system.
//!
//! glibc's allocator keeps one arena per thread that allocated, and `free` returns memory to the system
//! only from the top of an arena. The decision cache stores copies of requests made on every runtime
//! thread and evicts them on whichever thread needs room: measured with 1,500 distinct ~400 KB
//! requests against the default 32 MiB budget, the cache held 32 MiB while the arenas held 60 MiB
//! (RSS 15 → 75 MiB; `malloc_trim(0)` brought it back to 45 MiB, one arena alone to 45 MiB too).
//!
//! So whoever frees a lot (cache evictions, a replaced snapshot's cache) reports it with [`released`];
//! once [`TRIM_AFTER_BYTES`] have been reported, a dedicated thread calls `malloc_trim(0)`, which
//! returns the free pages inside every arena, at most once per [`MIN_TRIM_INTERVAL`]. The request path
//! only adds to an atomic counter and, once per threshold, wakes that thread: it never trims itself.
//! Without glibc (another allocator or C library) this does nothing.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Bytes reported freed before a trim is asked for.
pub const TRIM_AFTER_BYTES: usize = 4 << 20;
/// The least time between two trims (each takes every arena's lock in turn, for about a millisecond).
pub const MIN_TRIM_INTERVAL: Duration = Duration::from_millis(100);
/// After this long without a trim being asked for, whatever was released since the last one is
/// trimmed too (the tail of a burst).
pub const QUIET_TRIM_AFTER: Duration = Duration::from_secs(1);

static PENDING: AtomicUsize = AtomicUsize::new(0);
static TRIMS: AtomicU64 = AtomicU64::new(0);

struct Trimmer {
    asked: Mutex<bool>,
    wake: Condvar,
}

fn trimmer() -> &'static Trimmer {
    static T: OnceLock<&'static Trimmer> = OnceLock::new();
    T.get_or_init(|| {
        let t: &'static Trimmer = Box::leak(Box::new(Trimmer { asked: Mutex::new(false), wake: Condvar::new() }));
        let spawned = std::thread::Builder::new().name("warden-trim".into()).spawn(move || {
            loop {
                {
                    let mut asked = t.asked.lock().unwrap_or_else(PoisonError::into_inner);
                    while !*asked {
                        let (a, waited) =
                            t.wake.wait_timeout(asked, QUIET_TRIM_AFTER).unwrap_or_else(PoisonError::into_inner);
                        asked = a;
                        if waited.timed_out() && PENDING.load(Ordering::Relaxed) > 0 {
                            break;
                        }
                    }
                    *asked = false;
                }
                trim_now();
                std::thread::sleep(MIN_TRIM_INTERVAL);
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the memory trimmer thread; freed memory stays with the allocator");
        }
        t
    })
}

/// Reports `bytes` freed (or about to be); past [`TRIM_AFTER_BYTES`] since the last trim, asks the
/// trimmer thread for one.
pub fn released(bytes: usize) {
    if bytes == 0 || !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let before = PENDING.fetch_add(bytes, Ordering::Relaxed);
    if before < TRIM_AFTER_BYTES && before.saturating_add(bytes) >= TRIM_AFTER_BYTES {
        let t = trimmer();
        *t.asked.lock().unwrap_or_else(PoisonError::into_inner) = true;
        t.wake.notify_one();
    }
}

/// Trims done so far (for tests).
pub fn trims() -> u64 {
    TRIMS.load(Ordering::Relaxed)
}

fn trim_now() {
    let pending = PENDING.swap(0, Ordering::Relaxed);
    let started = std::time::Instant::now();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[expect(unsafe_code, reason = "the one foreign call of this crate: glibc's malloc_trim")]
    // SAFETY: `malloc_trim` takes no pointer and may be called from any thread at any time (glibc
    // locks each arena while it trims it); it only returns free pages of its own arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    TRIMS.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(released = pending, took_us = started.elapsed().as_micros(), "allocator trimmed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_follows_the_threshold_and_not_before() {
        if !cfg!(all(target_os = "linux", target_env = "gnu")) {
            return;
        }
        let start = trims();
        released(1);
        std::thread::sleep(Duration::from_millis(50));
        // Other tests of this binary may release too; at most what they and this call add.
        released(TRIM_AFTER_BYTES);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while trims() == start && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(trims() > start, "no trim within 5 s of {TRIM_AFTER_BYTES} bytes released");
    }
}
