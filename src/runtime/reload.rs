//! Hot reload of the bundle directory. The watch follows the bundle *path*, not the inode it named at
//! start (SPEC §6.1): notify watches the directory recursively and its parent non-recursively (for
//! events naming the bundle itself: a rename, a re-created directory, a retargeted symlink); on every
//! debounced batch, and every [`RECHECK`] as a safety net, the path is resolved again and the
//! (device, inode, birth time) of the directory it names compared with the watched one; on a change,
//! or after any event naming the bundle path itself (a freed inode number is soon reused: `rm -r` and
//! `mkdir` in one batch may give the new directory the old number), every watch is dropped and made
//! afresh before the bundle is read, so no edit goes unnoticed after a swap.
//! Every event kind counts; bursts are debounced on the trailing edge; one reload runs at a time with
//! at most one pending (a `Notify` permit); unchanged content is skipped by the reload itself.
//! `--poll-interval` replaces the watcher on file systems without inotify (EFS, NFS): each poll reads
//! the path afresh. SIGHUP reloads too (see `server::run`). An S3 bundle is polled ([`poll`]): each
//! poll syncs the prefix and reloads from the synced tree (`Shared::reload`).
use crate::runtime::activation::Shared;
use notify::{RecursiveMode, Watcher};
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Quiet time after the last event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// A continuous stream of events still reloads this often.
pub const MAX_DELAY: Duration = Duration::from_millis(1000);
/// How often the watcher checks, without any event, that the bundle path still names the directory
/// it watches (a swap of a folder above the parent raises no event).
pub const RECHECK: Duration = Duration::from_secs(5);

/// How the bundle directory is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// File-system events (inotify and friends).
    Watch,
    /// Re-read every interval.
    Poll(Duration),
}

/// Whether an event is a change: everything but reading (open, read, close after reading).
pub fn counts(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        notify::EventKind::Access(_) => false,
        _ => true,
    }
}

/// Which directory a path names: device, inode and (where the file system keeps it) birth time,
/// symlinks followed (`None`: nothing, or not a directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirId {
    dev: u64,
    ino: u64,
    born: Option<SystemTime>,
}

fn dir_id(path: &Path) -> Option<DirId> {
    let md = std::fs::metadata(path).ok()?;
    md.is_dir().then(|| DirId { dev: md.dev(), ino: md.ino(), born: md.created().ok() })
}

/// What the event handler tells the watcher task.
#[derive(Debug, Default)]
struct Signals {
    /// Some change: reload (after the debounce).
    changed: Notify,
    /// An event named the bundle path itself (created, removed, renamed, retargeted): watch afresh
    /// whatever the identities say.
    renamed: AtomicBool,
}

/// The watches on what the bundle path named when they were made.
struct Armed {
    /// `None` when the watcher could not be started (retried at the next check).
    watcher: Option<notify::RecommendedWatcher>,
    /// The bundle directory then.
    dir: Option<DirId>,
    /// Its parent then.
    parent: Option<DirId>,
}

/// The bundle path made absolute (notify reports events under absolute paths) and its parent.
fn absolute(dir: &Path) -> (PathBuf, Option<PathBuf>) {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let parent = abs.parent().map(Path::to_path_buf);
    (abs, parent)
}

impl Armed {
    /// Whether the bundle path (and its parent) still name what is watched.
    fn current(&self, dir: &Path) -> bool {
        let (abs, parent) = absolute(dir);
        self.watcher.is_some() && dir_id(&abs) == self.dir && parent.as_deref().and_then(dir_id) == self.parent
    }
}

/// Watches what `dir` names now: its parent non-recursively (only events naming the bundle count),
/// then the directory recursively. The identities are read between the two, so a swap after the
/// parent is watched either raises an event or is already what the recursive watch sees.
fn arm(dir: &Path, signals: &Arc<Signals>) -> Armed {
    let (abs, parent) = absolute(dir);
    let mut roots = vec![abs.clone()];
    if let Ok(c) = std::fs::canonicalize(&abs)
        && c != abs
    {
        roots.push(c);
    }
    let name: Option<OsString> = abs.file_name().map(ToOwned::to_owned);
    let n = signals.clone();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Every kind of change counts (ConfigMap swaps arrive as creates, renames, removes, chmods);
        // reads do not, or our own reloads would wake us again. In the parent, only the bundle's name.
        let Ok(ev) = res else { return };
        if !counts(&ev.kind) {
            return;
        }
        if ev.paths.iter().any(|p| roots.iter().any(|r| p == r)) {
            n.renamed.store(true, Ordering::SeqCst);
        }
        if ev.paths.is_empty()
            || ev
                .paths
                .iter()
                .any(|p| roots.iter().any(|r| p.starts_with(r)) || (name.is_some() && p.file_name() == name.as_deref()))
        {
            n.changed.notify_one();
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the file watcher (retrying): use --poll-interval or SIGHUP");
            return Armed { watcher: None, dir: None, parent: None };
        }
    };
    let parent_id = parent.as_deref().and_then(|p| {
        if let Err(e) = watcher.watch(p, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %p.display(), error = %e, "cannot watch the bundle's parent directory: a swap of the bundle directory is noticed within the recheck interval only");
        }
        dir_id(p)
    });
    let dir_now = dir_id(&abs);
    if let Err(e) = watcher.watch(&abs, RecursiveMode::Recursive) {
        if dir_now.is_some() {
            tracing::warn!(dir = %abs.display(), error = %e, "cannot watch the bundle directory");
        } else {
            tracing::warn!(dir = %abs.display(), "the bundle directory does not exist: watching for it to appear");
        }
    }
    Armed { watcher: Some(watcher), dir: dir_now, parent: parent_id }
}

/// Resolves the bundle path again; when it names another directory than the watched one, or an event
/// named the bundle path itself, drops every watch and watches afresh. Returns the watches and whether
/// they were made afresh. Off the runtime (stat and the recursive walk are blocking file-system work).
async fn follow(armed: Armed, dir: &Path, signals: &Arc<Signals>) -> (Armed, bool) {
    let (dir, signals) = (dir.to_path_buf(), signals.clone());
    let job = tokio::task::spawn_blocking(move || {
        let renamed = signals.renamed.swap(false, Ordering::SeqCst);
        if !renamed && armed.current(&dir) {
            return (armed, false);
        }
        drop(armed);
        tracing::info!(dir = %dir.display(), "the bundle path was swapped: watching what it names now");
        (arm(&dir, &signals), true)
    });
    match job.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "re-arming the watcher failed; retrying at the next check");
            (Armed { watcher: None, dir: None, parent: None }, true)
        }
    }
}

/// Trailing-edge debounce after a first event, bounded by [`MAX_DELAY`].
async fn debounce(changed: &Notify) {
    let started = tokio::time::Instant::now();
    loop {
        let quiet = tokio::time::sleep(DEBOUNCE);
        tokio::select! {
            () = changed.notified() => {
                if started.elapsed() >= MAX_DELAY {
                    return;
                }
            }
            () = quiet => return,
        }
    }
}

/// Reloads `shared` every `every` (the first time one interval from now: the first load is the
/// caller's), until the task is aborted; `what` names the bundle source in the log. A reload that
/// takes longer than the interval delays the next one (never two at once, never a burst to catch up).
pub fn poll(shared: Arc<Shared>, what: String, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!(source = %what, interval_ms = every.as_millis() as u64, "polling the bundle");
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            shared.reload().await;
        }
    })
}

/// Follows `dir` and reloads `shared` on change, until the task is aborted. In watch mode the watch is
/// armed before this returns, so a change made after it (even during the first load) is never missed.
pub fn spawn(shared: Arc<Shared>, dir: PathBuf, mode: Mode) -> JoinHandle<()> {
    match mode {
        Mode::Poll(every) => poll(shared, dir.display().to_string(), every),
        Mode::Watch => {
            let signals = Arc::new(Signals::default());
            let armed = arm(&dir, &signals);
            tokio::spawn(async move {
                tracing::info!(dir = %dir.display(), "watching the bundle directory");
                let mut armed = armed;
                let mut recheck = tokio::time::interval(RECHECK);
                recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                recheck.tick().await;
                loop {
                    let event = tokio::select! {
                        () = signals.changed.notified() => {
                            debounce(&signals.changed).await;
                            true
                        }
                        _ = recheck.tick() => false,
                    };
                    // Before reading: a directory that replaced the watched one is watched from now on,
                    // so an edit made while it is read raises an event.
                    let (now, moved) = follow(armed, &dir, &signals).await;
                    armed = now;
                    if event || moved {
                        let outcome = shared.reload().await;
                        tracing::debug!(?outcome, moved, "reload after file events");
                    }
                }
            })
        }
    }
}
