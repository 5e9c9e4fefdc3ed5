//! Admin state shared by a fleet of replicas (`--state dynamodb://TABLE`, SPEC §10): one versioned
//! record of the [`AdminMemory`] that every replica reads and writes with optimistic concurrency. A
//! change is read (strongly consistent) → computed from what was read → written on the condition that
//! the version is still the one read; when another replica wrote first, the change is computed again
//! from the newer record (bounded attempts, jittered backoff), so concurrent reloads and revokes on
//! many replicas lose no update. The store itself is a [`Table`] (DynamoDB in `dynamodb.rs`, a fake in
//! the tests): this module holds the retry logic and no I/O of its own.
use crate::telemetry::metrics;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use warden_core::identity::AdminMemory;

/// A boxed future (the [`Table`] trait is used as `dyn Table`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The shared record as read (the default: no record yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versioned {
    /// Its version; 0 when there is no record yet (nothing remembered).
    pub version: u64,
    /// The remembered admins.
    pub memory: AdminMemory,
}

/// Why the shared record could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The version read is no longer the stored one: another replica wrote first.
    #[error("another replica changed the admin state first")]
    Conflict,
    /// Anything else (unreachable, throttled, missing table, no permission, a record that is not
    /// Warden's, a record too large): the message names the table and the cause.
    #[error("{0}")]
    Failed(String),
}

/// Where the shared record lives.
pub trait Table: Send + Sync + 'static {
    /// How the state is named in messages (`dynamodb://TABLE`).
    fn name(&self) -> &str;
    /// Reads the record, strongly consistent (never [`TableError::Conflict`]).
    fn read(&self) -> BoxFuture<'_, Result<Versioned, TableError>>;
    /// Writes `memory` as version `read_version + 1` if the stored version is still `read_version`
    /// (0: only if there is no record yet); `revision` names what wrote it (a bundle revision, or
    /// `revoke`). Returns the new version.
    fn write<'a>(
        &'a self,
        read_version: u64,
        memory: &'a AdminMemory,
        revision: &'a str,
    ) -> BoxFuture<'a, Result<u64, TableError>>;
}

/// How often and how patiently a change is retried after a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (read, compute, write), at least 1.
    pub attempts: u32,
    /// The backoff ceiling of the first retry; doubled for each further one.
    pub base: Duration,
    /// The largest backoff ceiling.
    pub cap: Duration,
}

/// The default: 10 attempts, full jitter under 20 ms, 40 ms, … up to 1 s (4.3 s of pauses at worst). Many
/// replicas activating the same bundle at once settle in one retry: after the first write, each one's
/// change computes to what it reads, and an identical record is not written again.
pub const RETRY: Retry = Retry { attempts: 10, base: Duration::from_millis(20), cap: Duration::from_secs(1) };

impl Retry {
    /// The pause before retry number `retry` (1 for the first): "full jitter", a uniform pick in
    /// `[0, min(cap, base · 2^(retry-1))]` from `random`.
    pub fn backoff(&self, retry: u32, random: u64) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << retry.saturating_sub(1).min(20)).min(self.cap);
        let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(random % ceiling_us.saturating_add(1))
    }
}

/// A random 64-bit number for the jitter (the standard library's randomly keyed hasher: no new
/// dependency for a backoff).
fn random() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

/// A change that was made (or found already made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    /// The version of `memory` in the table.
    pub version: u64,
    /// The memory now stored.
    pub memory: AdminMemory,
    /// Whether this call wrote it (false: the record already held it).
    pub written: bool,
    /// Conflicts met (other replicas writing first) before it went through.
    pub conflicts: u32,
}

/// Why a change was not made; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError<E> {
    /// The change itself is refused against the current record (an admin-list change of a fiddler
    /// app; a revoke of a user who is not remembered).
    #[error("refused")]
    Refused(E),
    /// The record could not be read.
    #[error("{table}: cannot read the admin state: {cause}")]
    Read {
        /// `dynamodb://TABLE`.
        table: String,
        /// Why.
        cause: String,
    },
    /// The record could not be written.
    #[error("{table}: cannot write the admin state: {cause}")]
    Write {
        /// `dynamodb://TABLE`.
        table: String,
        /// Why.
        cause: String,
    },
    /// Other replicas wrote first every time.
    #[error(
        "{table}: the admin state changed under this replica {attempts} times in a row (other replicas writing); nothing was written, try again"
    )]
    Contention {
        /// `dynamodb://TABLE`.
        table: String,
        /// How many attempts were made.
        attempts: u32,
    },
}

/// Reads the record, computes the next memory from it with `change`, and writes it on the condition
/// that nobody wrote in between; after a conflict, reads again and recomputes (at most
/// `retry.attempts` times in all, jittered exponential backoff between them). A `change` that
/// computes the memory already stored writes nothing. `revision` names the writer in the record.
/// Read and write failures are counted in `warden_state_errors_total{op}`, conflicts in
/// `warden_state_conflicts_total`.
pub async fn update<E, F>(
    table: &dyn Table,
    retry: Retry,
    revision: &str,
    mut change: F,
) -> Result<Updated, UpdateError<E>>
where
    F: FnMut(&Versioned) -> Result<AdminMemory, E>,
{
    let attempts = retry.attempts.max(1);
    let mut conflicts = 0;
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(retry.backoff(attempt, random())).await;
        }
        let current = match table.read().await {
            Ok(v) => v,
            Err(e) => {
                metrics::state_error("read");
                return Err(UpdateError::Read { table: table.name().to_owned(), cause: e.to_string() });
            }
        };
        let next = change(&current).map_err(UpdateError::Refused)?;
        if next == current.memory {
            return Ok(Updated { version: current.version, memory: next, written: false, conflicts });
        }
        match table.write(current.version, &next, revision).await {
            Ok(version) => return Ok(Updated { version, memory: next, written: true, conflicts }),
            Err(TableError::Conflict) => {
                conflicts += 1;
                metrics::state_conflict();
                tracing::debug!(
                    table = table.name(),
                    attempt,
                    "admin state changed by another replica: computing again"
                );
            }
            Err(TableError::Failed(cause)) => {
                metrics::state_error("write");
                return Err(UpdateError::Write { table: table.name().to_owned(), cause });
            }
        }
    }
    metrics::state_error("write");
    Err(UpdateError::Contention { table: table.name().to_owned(), attempts })
}

/// Logs failures of a repeated operation (the poll) at most once per `every`, with the count of those
/// not logged, and the recovery once.
#[derive(Debug)]
pub struct RateLimitedLog {
    every: Duration,
    last: Option<tokio::time::Instant>,
    suppressed: u64,
    failing: bool,
}

impl RateLimitedLog {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> RateLimitedLog {
        RateLimitedLog { every, last: None, suppressed: 0, failing: false }
    }

    /// A failure: logged now unless one was logged less than `every` ago.
    pub fn failure(&mut self, table: &str, error: &str) {
        self.failing = true;
        let now = tokio::time::Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < self.every) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            table,
            error,
            not_logged = self.suppressed,
            "cannot read the shared admin state; the last known state keeps serving"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }

    /// A success: logs the recovery after failures.
    pub fn success(&mut self, table: &str) {
        if self.failing {
            tracing::info!(table, not_logged = self.suppressed, "the shared admin state is readable again");
        }
        self.failing = false;
        self.suppressed = 0;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    use warden_core::identity::admins::AppAdmins;

    const APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMET0000001";

    /// A table in memory that can make another replica write first (`interleave`) or fail.
    #[derive(Default)]
    struct Fake {
        record: Mutex<Versioned>,
        /// Before each of the next N writes, someone else remembers this user (a concurrent writer).
        interleave: Mutex<Vec<String>>,
        fail_reads: AtomicU32,
        fail_writes: AtomicU32,
        writes: AtomicU32,
    }

    fn memory_with(remembered: &[&str]) -> AdminMemory {
        let mut m = AdminMemory { version: 1, ..AdminMemory::default() };
        m.apps.insert(
            APP.to_owned(),
            AppAdmins {
                app_type: "comet".into(),
                admin_users: vec!["alice".into()],
                remembered: remembered.iter().map(|s| (*s).to_owned()).collect(),
            },
        );
        m
    }

    fn remember(m: &AdminMemory, user: &str) -> AdminMemory {
        let mut m = m.clone();
        if let Some(a) = m.apps.get_mut(APP) {
            a.remembered.insert(user.to_owned());
        }
        m
    }

    fn remembered(m: &AdminMemory) -> BTreeSet<String> {
        m.apps.get(APP).map(|a| a.remembered.clone()).unwrap_or_default()
    }

    impl Table for Fake {
        fn name(&self) -> &str {
            "fake://table"
        }
        fn read(&self) -> BoxFuture<'_, Result<Versioned, TableError>> {
            Box::pin(async move {
                if self.fail_reads.load(Ordering::SeqCst) > 0 {
                    self.fail_reads.fetch_sub(1, Ordering::SeqCst);
                    return Err(TableError::Failed("unreachable".into()));
                }
                Ok(self.record.lock().unwrap().clone())
            })
        }
        fn write<'a>(
            &'a self,
            read_version: u64,
            memory: &'a AdminMemory,
            _revision: &'a str,
        ) -> BoxFuture<'a, Result<u64, TableError>> {
            Box::pin(async move {
                if self.fail_writes.load(Ordering::SeqCst) > 0 {
                    self.fail_writes.fetch_sub(1, Ordering::SeqCst);
                    return Err(TableError::Failed("throttled".into()));
                }
                let mut r = self.record.lock().unwrap();
                if let Some(user) = self.interleave.lock().unwrap().pop() {
                    // Another replica's write lands between our read and our write.
                    r.memory = remember(&r.memory, &user);
                    r.version += 1;
                }
                if r.version != read_version {
                    return Err(TableError::Conflict);
                }
                self.writes.fetch_add(1, Ordering::SeqCst);
                r.version += 1;
                r.memory = memory.clone();
                Ok(r.version)
            })
        }
    }

    fn fake(remembered: &[&str], version: u64) -> Fake {
        let f = Fake::default();
        *f.record.lock().unwrap() = Versioned { version, memory: memory_with(remembered) };
        f
    }

    const FAST: Retry = Retry { attempts: 5, base: Duration::from_millis(1), cap: Duration::from_millis(2) };

    #[tokio::test]
    async fn a_conflict_recomputes_from_the_newer_record_and_loses_no_update() {
        let table = fake(&[], 3);
        table.interleave.lock().unwrap().extend(["dave".to_owned(), "erin".to_owned()]);
        let mut computed = 0;
        let u = update(&table, FAST, "rev", |v: &Versioned| {
            computed += 1;
            Ok::<_, ()>(remember(&v.memory, "carol"))
        })
        .await
        .expect("goes through on the third attempt");
        assert_eq!(computed, 3, "computed again after each conflict");
        assert_eq!(u.conflicts, 2);
        assert!(u.written);
        assert_eq!(u.version, 6, "3, then two other writers, then ours");
        let stored = table.record.lock().unwrap().clone();
        assert_eq!(stored.version, 6);
        assert_eq!(remembered(&stored.memory), ["carol", "dave", "erin"].map(String::from).into());
        assert_eq!(u.memory, stored.memory);
    }

    #[tokio::test]
    async fn an_absent_record_is_version_0_and_a_change_already_stored_is_not_written() {
        let table = Fake::default();
        let u = update(&table, FAST, "rev", |v: &Versioned| {
            assert_eq!(v.version, 0);
            Ok::<_, ()>(memory_with(&["carol"]))
        })
        .await
        .expect("first write");
        assert_eq!((u.version, u.written), (1, true));
        let u = update(&table, FAST, "rev", |v: &Versioned| Ok::<_, ()>(v.memory.clone())).await.expect("no change");
        assert_eq!((u.version, u.written, u.conflicts), (1, false, 0));
        assert_eq!(table.writes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refusals_and_failures_write_nothing() {
        let table = fake(&["carol"], 7);
        let e = update(&table, FAST, "rev", |_: &Versioned| Err::<AdminMemory, _>("no")).await.unwrap_err();
        assert_eq!(e, UpdateError::Refused("no"));
        table.fail_reads.store(1, Ordering::SeqCst);
        let e = update(&table, FAST, "rev", |v: &Versioned| Ok::<_, ()>(remember(&v.memory, "x"))).await.unwrap_err();
        assert!(matches!(&e, UpdateError::Read { table, cause } if table == "fake://table" && cause == "unreachable"));
        assert!(e.to_string().starts_with("fake://table: cannot read the admin state: unreachable"), "{e}");
        table.fail_writes.store(1, Ordering::SeqCst);
        let e = update(&table, FAST, "rev", |v: &Versioned| Ok::<_, ()>(remember(&v.memory, "x"))).await.unwrap_err();
        assert!(e.to_string().contains("cannot write the admin state: throttled"), "{e}");
        assert_eq!(table.record.lock().unwrap().version, 7, "nothing written");
    }

    #[tokio::test]
    async fn attempts_are_bounded_under_endless_contention() {
        let table = fake(&[], 1);
        table.interleave.lock().unwrap().extend((0..100).map(|i| format!("u{i}")));
        let mut computed = 0;
        let e = update(&table, FAST, "rev", |v: &Versioned| {
            computed += 1;
            Ok::<_, ()>(remember(&v.memory, "carol"))
        })
        .await
        .unwrap_err();
        assert_eq!(e, UpdateError::Contention { table: "fake://table".into(), attempts: 5 });
        assert_eq!(computed, 5);
        assert!(!remembered(&table.record.lock().unwrap().memory).contains("carol"));
    }

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_capped_ceiling() {
        let r = Retry { attempts: 10, base: Duration::from_millis(20), cap: Duration::from_secs(1) };
        assert_eq!(r.backoff(1, 0), Duration::ZERO);
        assert_eq!(r.backoff(1, u64::from(u32::MAX)), Duration::from_micros(u64::from(u32::MAX) % 20_001));
        assert_eq!(r.backoff(1, 20_000), Duration::from_millis(20));
        assert_eq!(r.backoff(2, 40_000), Duration::from_millis(40));
        assert_eq!(r.backoff(2, 40_001), Duration::ZERO, "wraps within the ceiling");
        for retry in 1..40 {
            for random in [0, 1, 12_345, 999_999, 1_000_000, u64::MAX] {
                assert!(r.backoff(retry, random) <= Duration::from_secs(1), "retry {retry}");
            }
        }
        assert_eq!(r.backoff(30, 1_000_000), Duration::from_secs(1));
        let draws: BTreeSet<u64> = (0..64).map(|_| random() % 1000).collect();
        assert!(draws.len() > 20, "the jitter varies: {draws:?}");
    }
}
