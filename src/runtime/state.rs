//! `--state-dir`: what Warden remembers across restarts (partner-app admin lists and remembered
//! admins). The running server is its only writer (an exclusive lock on `state-dir/lock`); writes
//! are atomic (temporary file, fsync, rename, fsync of the directory); a corrupt file is reported,
//! never silently emptied. `read_only` reads it without the lock, for `validate --state-dir`.
//! A fleet shares the same memory in a table instead (`--state dynamodb://TABLE`): [`fleet`] holds the
//! optimistic-concurrency logic, `dynamodb` (cargo feature `aws`) the table.
#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod fleet;

use anyhow::{Context as _, Result, bail};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use warden_core::identity::AdminMemory;

/// Where a server keeps its admin state.
#[derive(Clone)]
pub enum StateStore {
    /// `--state-dir`: one replica's own directory.
    Dir(Arc<StateDir>),
    /// `--state dynamodb://TABLE`: one record shared by every replica of a fleet.
    Table(Arc<dyn fleet::Table>),
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateStore::Dir(d) => f.debug_tuple("Dir").field(d).finish(),
            StateStore::Table(t) => f.debug_tuple("Table").field(&t.name()).finish(),
        }
    }
}

/// The admin state file inside the state directory.
pub const ADMINS_FILE: &str = "admins.json";

/// An opened, locked state directory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    _lock: File,
}

impl StateDir {
    /// Creates (if needed) and locks the directory.
    pub fn open(dir: &Path) -> Result<StateDir> {
        fs::create_dir_all(dir).with_context(|| format!("--state-dir: cannot create `{}`", dir.display()))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("--state-dir: cannot open `{}`", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                bail!(
                    "--state-dir: `{}` is locked by another running warden (the server is its only writer)",
                    dir.display()
                )
            }
            Err(fs::TryLockError::Error(e)) => bail!("--state-dir: cannot lock `{}`: {e}", lock_path.display()),
        }
        Ok(StateDir { dir: dir.to_path_buf(), _lock: lock })
    }

    /// The remembered admins (empty when the file does not exist yet).
    pub fn load(&self) -> Result<AdminMemory> {
        read_admins(&self.dir)
    }

    /// Writes the remembered admins atomically.
    pub fn save(&self, m: &AdminMemory) -> Result<()> {
        let path = self.dir.join(ADMINS_FILE);
        let tmp = self.dir.join(format!(".{ADMINS_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(m)?;
        {
            let mut f = File::create(&tmp).with_context(|| format!("writing `{}`", tmp.display()))?;
            f.write_all(&text)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path).with_context(|| format!("renaming into `{}`", path.display()))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing `{}`", self.dir.display()))?;
        Ok(())
    }
}

/// Reads the remembered admins of a state directory without locking or writing anything: what
/// `validate --state-dir` checks a bundle against while the server holds the lock. The directory must
/// exist; without `admins.json` yet nothing is remembered.
pub fn read_only(dir: &Path) -> Result<AdminMemory> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => read_admins(dir),
        Ok(_) => bail!("--state-dir: `{}` is not a directory", dir.display()),
        Err(e) => bail!("--state-dir: cannot read `{}`: {e}", dir.display()),
    }
}

fn read_admins(dir: &Path) -> Result<AdminMemory> {
    let path = dir.join(ADMINS_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AdminMemory::default()),
        Err(e) => bail!("--state-dir: cannot read `{}`: {e}", path.display()),
    };
    let m: AdminMemory = serde_json::from_slice(&bytes).with_context(|| {
        format!("--state-dir: `{}` is corrupt (not left as is, not emptied: fix or remove it)", path.display())
    })?;
    if m.version != warden_core::identity::admins::VERSION {
        bail!(
            "--state-dir: `{}` has format version {}, this warden reads {}",
            path.display(),
            m.version,
            warden_core::identity::admins::VERSION
        );
    }
    Ok(m)
}
