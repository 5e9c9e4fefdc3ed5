//! Hot reload of the bundle directory: notify watches the folder recursively and its parent (symlink
//! swaps such as the Kubernetes ConfigMap `..data` retarget); every event kind counts; bursts are
//! debounced on the trailing edge; one reload runs at a time with at most one pending (a `Notify`
//! permit); unchanged content is skipped by the reload itself. `--poll-interval` replaces the watcher
//! on file systems without inotify (EFS, NFS). SIGHUP reloads too (see `server::run`).
use crate::runtime::activation::Shared;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Quiet time after the last event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// A continuous stream of events still reloads this often.
pub const MAX_DELAY: Duration = Duration::from_millis(1000);

/// How the bundle directory is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// File-system events (inotify and friends).
    Watch,
    /// Re-read every interval.
    Poll(Duration),
}

/// Whether an event is a change: everything but reading (open, read, close after reading).
fn counts(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        notify::EventKind::Access(_) => false,
        _ => true,
    }
}

fn watch_all(w: &mut notify::RecommendedWatcher, dir: &Path) {
    if let Err(e) = w.watch(dir, RecursiveMode::Recursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the bundle directory");
    }
    // The parent too, non-recursively: a symlinked bundle directory may be swapped as a whole.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
        && let Err(e) = w.watch(parent, RecursiveMode::NonRecursive)
    {
        tracing::debug!(dir = %parent.display(), error = %e, "cannot watch the bundle's parent directory");
    }
}

/// Follows `dir` and reloads `shared` on change, until the task is aborted. In watch mode the watch is
/// armed before this returns, so a change made after it (even during the first load) is never missed.
pub fn spawn(shared: Arc<Shared>, dir: PathBuf, mode: Mode) -> JoinHandle<()> {
    match mode {
        Mode::Poll(every) => tokio::spawn(async move {
            tracing::info!(dir = %dir.display(), interval_ms = every.as_millis() as u64, "polling the bundle directory");
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                shared.reload().await;
            }
        }),
        Mode::Watch => {
            let changed = Arc::new(Notify::new());
            let n = changed.clone();
            // Events of the parent folder count only when they concern the bundle folder itself.
            let roots: Vec<PathBuf> =
                [Some(dir.clone()), std::fs::canonicalize(&dir).ok()].into_iter().flatten().collect();
            let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                // Every kind of change counts (ConfigMap swaps arrive as creates, renames, removes,
                // chmods); reads do not, or our own reloads would wake us again.
                if let Ok(ev) = res
                    && counts(&ev.kind)
                    && (ev.paths.is_empty() || ev.paths.iter().any(|p| roots.iter().any(|r| p.starts_with(r))))
                {
                    n.notify_one();
                }
            });
            let mut watcher = match watcher {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the file watcher: use --poll-interval or SIGHUP");
                    return tokio::spawn(async {});
                }
            };
            watch_all(&mut watcher, &dir);
            tokio::spawn(async move {
                let mut target = std::fs::canonicalize(&dir).ok();
                tracing::info!(dir = %dir.display(), "watching the bundle directory");
                loop {
                    changed.notified().await;
                    // Trailing-edge debounce, bounded by MAX_DELAY.
                    let started = tokio::time::Instant::now();
                    loop {
                        let quiet = tokio::time::sleep(DEBOUNCE);
                        tokio::select! {
                            () = changed.notified() => {
                                if started.elapsed() >= MAX_DELAY {
                                    break;
                                }
                            }
                            () = quiet => break,
                        }
                    }
                    let outcome = shared.reload().await;
                    tracing::debug!(?outcome, "reload after file events");
                    // The directory itself was a symlink and now points elsewhere: the old watches
                    // follow the old target, so watch afresh, and look once more for changes made
                    // while no watch was in place. (New folders inside a watched one, such as a
                    // ConfigMap's `..2026_…` folder, are picked up by the recursive watch itself.)
                    let now = std::fs::canonicalize(&dir).ok();
                    if now != target {
                        if let Some(old) = &target {
                            let _ = watcher.unwatch(old);
                        }
                        let _ = watcher.unwatch(&dir);
                        watch_all(&mut watcher, &dir);
                        target = now;
                        changed.notify_one();
                    }
                }
            })
        }
    }
}
