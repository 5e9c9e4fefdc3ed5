//! `--bundle s3://BUCKET/PREFIX` (SPEC §10, cargo feature `aws`): the prefix is synced into a local
//! cache directory, and the synced tree is then loaded exactly like a bundle directory
//! (`runtime::activation`: the same reader, checks, revision and atomic swap).
//!
//! One sync: list the prefix (`ListObjectsV2`, every page); refuse keys that would leave the cache
//! directory and listings over the bundle bounds (file count, file size, total size of SPEC §3.1),
//! before anything is downloaded; when every key, ETag and size equals the last good tree's, that
//! tree is the answer. Otherwise build a complete new tree in a fresh staging directory: files whose
//! ETag is unchanged are linked (or copied) from the last good tree, changed ones downloaded with
//! `If-Match: <listed ETag>` (an object replaced since the listing fails the sync instead of mixing
//! two uploads) and cut at their listed size (a body never grows past it, whatever Content-Length
//! said), removed ones are simply not there. Only a complete tree is renamed into place and becomes
//! the last good one; any failure (network, throttling, an object that vanished or changed, a bound,
//! a bad key, the local disk) removes the staging directory and leaves the last good tree and the
//! active bundle as they were. ETags are compared for equality only (a multipart upload's ETag is
//! not an MD5).
//!
//! Keys whose path has a hidden segment (a name starting with `.`) are not bundle files, as in a
//! bundle directory, and are not downloaded, except `.signatures.json` at the root of the prefix
//! (`runtime::signatures`). Folder markers (keys ending in `/`, empty) are skipped.
use crate::config::S3Bundle;
use crate::runtime::files::MAX_DIR_DEPTH;
use crate::runtime::signatures;
use crate::telemetry::metrics;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;
use warden_core::bundle::load::{MAX_BUNDLE_BYTES, MAX_FILE_BYTES, MAX_FILES};

/// Downloads in flight at once.
pub const PARALLEL_DOWNLOADS: usize = 8;
/// A whole sync (listing and downloads) that takes longer fails (the last good bundle keeps serving).
pub const SYNC_DEADLINE: Duration = Duration::from_secs(300);
/// Connecting to S3.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Silence while reading an answer.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// One attempt of one request (the SDK retries transient failures: 3 attempts in all).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest path segment (a file name on Linux).
pub const MAX_SEGMENT_BYTES: usize = 255;

/// Why a sync failed: the `reason` label of `warden_bundle_sync_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No answer: connection refused or reset, DNS, timeouts.
    Unreachable,
    /// S3 asked to slow down (`SlowDown`, 503).
    Throttled,
    /// Credentials or permissions (`AccessDenied`, 403, an unknown key id).
    Denied,
    /// The bucket does not exist.
    NoBucket,
    /// An object vanished or was replaced during the sync (404, 412 on `If-Match`, a size that does
    /// not match the listing).
    Changed,
    /// The listing or a download is over a bundle bound.
    Bounds,
    /// A key that cannot be a bundle path (it would leave the cache directory, or clashes).
    InvalidKey,
    /// The local cache directory could not be written.
    CacheDir,
}

impl Reason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Unreachable => "unreachable",
            Reason::Throttled => "throttled",
            Reason::Denied => "denied",
            Reason::NoBucket => "no_bucket",
            Reason::Changed => "changed",
            Reason::Bounds => "bounds",
            Reason::InvalidKey => "invalid_key",
            Reason::CacheDir => "cache_dir",
        }
    }
}

/// A failed sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {message}")]
pub struct SyncError {
    /// Why, as a metric label.
    pub reason: Reason,
    /// `s3://BUCKET/PREFIX`.
    pub url: String,
    /// What happened, naming the key.
    pub message: String,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    /// The full key.
    key: String,
    /// Its ETag, compared for equality only.
    etag: String,
    /// Its size in bytes.
    size: u64,
}

/// Bundle path (relative to the prefix) → object.
type Listing = BTreeMap<String, Object>;

/// What a key under the prefix is to the bundle: `Ok(None)` is skipped (the prefix's own folder
/// marker, a folder marker, a hidden name), `Ok(Some(path))` is a bundle file or `.signatures.json`,
/// `Err` names the rule the key breaks.
fn bundle_path(key: &str, prefix: &str, size: u64) -> Result<Option<String>, String> {
    let Some(rel) = key.strip_prefix(prefix) else {
        return Err("is not under the prefix".to_owned());
    };
    if rel.is_empty() {
        return Ok(None);
    }
    let (rel, marker) = match rel.strip_suffix('/') {
        Some(dir) => (dir, true),
        None => (rel, false),
    };
    if rel.starts_with('/') {
        return Err("is an absolute path below the prefix (`/` after it): it would leave the cache directory".into());
    }
    let segments: Vec<&str> = rel.split('/').collect();
    for s in &segments {
        if s.is_empty() {
            return Err("has an empty path segment (`//`)".into());
        }
        if *s == "." || *s == ".." {
            return Err(format!("has a `{s}` segment: it would leave the cache directory"));
        }
        if s.contains('\0') {
            return Err("has a NUL character".into());
        }
        if s.len() > MAX_SEGMENT_BYTES {
            return Err(format!("has a path segment over {MAX_SEGMENT_BYTES} bytes"));
        }
    }
    if marker {
        if size > 0 {
            return Err(format!("ends with `/` and is not empty ({size} bytes): not a folder marker, not a file name"));
        }
        return Ok(None);
    }
    if segments.len() > MAX_DIR_DEPTH + 1 {
        return Err(format!("is nested deeper than {MAX_DIR_DEPTH} folders"));
    }
    if rel == signatures::FILE {
        return Ok(Some(rel.to_owned()));
    }
    if segments.iter().any(|s| s.starts_with('.')) {
        return Ok(None);
    }
    Ok(Some(rel.to_owned()))
}

/// Checks a complete listing against the bounds of a bundle (SPEC §3.1) and the file system (a key
/// that is also a folder of another key).
fn check_listing(listing: &Listing, url: &str) -> Result<(), SyncError> {
    let fail = |reason, message: String| Err(SyncError { reason, url: url.to_owned(), message });
    let files = listing.keys().filter(|p| *p != signatures::FILE).count();
    if files > MAX_FILES {
        return fail(Reason::Bounds, format!("{files} objects exceed the limit of a bundle ({MAX_FILES} files)"));
    }
    let mut total = 0u64;
    for (path, o) in listing {
        let limit = (if path == signatures::FILE { signatures::MAX_MANIFEST_BYTES } else { MAX_FILE_BYTES }) as u64;
        if o.size > limit {
            return fail(
                Reason::Bounds,
                format!("`{}`: {} bytes (listed) exceed the limit of {limit} bytes per file", o.key, o.size),
            );
        }
        if path != signatures::FILE {
            total = total.saturating_add(o.size);
        }
        let folder = format!("{path}/");
        if let Some((other, _)) = listing.range(folder.clone()..).next()
            && other.starts_with(&folder)
        {
            return fail(
                Reason::InvalidKey,
                format!("`{}` is both an object and a folder (of `{other}`): not a bundle tree", o.key),
            );
        }
    }
    if total > MAX_BUNDLE_BYTES as u64 {
        return fail(
            Reason::Bounds,
            format!("the objects add up to {total} bytes (listed), over the limit of a bundle ({MAX_BUNDLE_BYTES})"),
        );
    }
    Ok(())
}

/// Whether two ETags name the same content (equality; quotes as S3 writes them or not).
fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

/// A failed S3 request as a [`SyncError`], classified for the metric.
fn sdk_error<E>(url: &str, what: &str, e: SdkError<E>) -> SyncError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let reason = match (&e, e.code(), status) {
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _, _) => Reason::Unreachable,
        (
            _,
            Some("SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequests"),
            _,
        )
        | (_, _, Some(429 | 503)) => Reason::Throttled,
        (_, Some("NoSuchBucket"), _) => Reason::NoBucket,
        (_, Some("NoSuchKey" | "PreconditionFailed"), _) | (_, _, Some(404 | 412)) => Reason::Changed,
        (
            _,
            Some(
                "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "AllAccessDisabled",
            ),
            _,
        )
        | (_, _, Some(401 | 403)) => Reason::Denied,
        _ => Reason::Unreachable,
    };
    let hint = match reason {
        Reason::Changed => ": the object vanished or was replaced during the sync (retried at the next poll)",
        Reason::NoBucket => ": the bucket does not exist",
        _ => "",
    };
    SyncError { reason, url: url.to_owned(), message: format!("{what} failed{hint}: {}", DisplayErrorContext(&e)) }
}

/// The local cache directory, locked while this server uses it.
struct Cache {
    root: PathBuf,
    _lock: File,
    /// Made for this process (no `--bundle-cache-dir`, no `--state-dir`): removed when dropped.
    temporary: bool,
}

/// The lock file in the cache directory.
const LOCK_FILE: &str = "lock";
/// Trees are `tree-N`, staged as `tree-N.partial`.
const TREE: &str = "tree-";

impl Cache {
    /// Creates and locks the directory, and removes the trees of an earlier run (a sync starts from
    /// the bucket, never from a tree this process did not build).
    fn open(root: PathBuf, temporary: bool) -> std::io::Result<Cache> {
        std::fs::create_dir_all(&root)?;
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(root.join(LOCK_FILE))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::other("locked by another running warden (give each its own directory)"));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        for entry in std::fs::read_dir(&root)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TREE) {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(Cache { root, _lock: lock, temporary })
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// The last complete tree: its directory and what it was synced from.
struct Tree {
    dir: PathBuf,
    objects: Listing,
}

/// Syncs one S3 prefix into its cache directory.
pub struct Syncer {
    client: aws_sdk_s3::Client,
    source: S3Bundle,
    url: String,
    cache: Cache,
    current: Option<Tree>,
    seq: u64,
}

/// The default cache directory: `STATE_DIR/bundle-cache` with `--state-dir`, else a directory of
/// this process under the system's temporary directory (removed at exit). Returns it and whether it
/// is temporary.
pub fn default_cache_dir(state_dir: Option<&Path>) -> (PathBuf, bool) {
    match state_dir {
        Some(d) => (d.join("bundle-cache"), false),
        None => (std::env::temp_dir().join(format!("warden-bundle-cache-{}", std::process::id())), true),
    }
}

impl Syncer {
    /// An S3 client from the standard credential chain and `AWS_ENDPOINT_URL` (see `crate::aws`),
    /// and the cache directory, created and locked. Nothing is listed yet.
    pub async fn open(source: S3Bundle, cache_dir: PathBuf, temporary: bool) -> Result<Syncer, SyncError> {
        let url = source.url();
        let sdk = crate::aws::sdk_config().await;
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build();
        let conf = aws_sdk_s3::config::Builder::from(&sdk).timeout_config(timeouts).build();
        let client = aws_sdk_s3::Client::from_conf(conf);
        let dir = cache_dir.clone();
        let cache = tokio::task::spawn_blocking(move || Cache::open(dir, temporary))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| SyncError {
                reason: Reason::CacheDir,
                url: url.clone(),
                message: format!("{}: `{}`: {e}", crate::config::flag::BUNDLE_CACHE_DIR, cache_dir.display()),
            })?;
        metrics::bundle_sync_at_zero();
        Ok(Syncer { client, source, url, cache, current: None, seq: 0 })
    }

    /// `s3://BUCKET/PREFIX`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache.root
    }

    /// Syncs the prefix (see the module documentation) and returns the directory of the complete
    /// tree it now mirrors, and how many objects were downloaded. On failure the last good tree is
    /// left as it was, and the failure is counted (`warden_bundle_sync_failures_total`).
    pub async fn sync(&mut self) -> Result<(PathBuf, u64), SyncError> {
        let outcome = match tokio::time::timeout(SYNC_DEADLINE, self.sync_once()).await {
            Ok(r) => r,
            Err(_) => Err(SyncError {
                reason: Reason::Unreachable,
                url: self.url.clone(),
                message: format!("the sync did not finish within {} s", SYNC_DEADLINE.as_secs()),
            }),
        };
        match &outcome {
            Ok((_, downloads)) => metrics::bundle_sync_success(*downloads),
            Err(e) => metrics::bundle_sync_failure(e.reason.label()),
        }
        outcome
    }

    async fn sync_once(&mut self) -> Result<(PathBuf, u64), SyncError> {
        let listing = self.list().await?;
        check_listing(&listing, &self.url)?;
        if let Some(cur) = &self.current
            && cur.objects == listing
        {
            return Ok((cur.dir.clone(), 0));
        }
        let seq = self.seq + 1;
        let staging = self.cache.root.join(format!("{TREE}{seq}.partial"));
        let done = self.cache.root.join(format!("{TREE}{seq}"));
        let built = self.build(&staging, &listing).await;
        let previous = self.current.as_ref().map(|t| t.dir.clone());
        let (s, d) = (staging.clone(), done.clone());
        let settled = tokio::task::spawn_blocking(move || -> std::io::Result<Result<u64, SyncError>> {
            match built {
                Ok(n) => {
                    std::fs::rename(&s, &d)?;
                    if let Some(p) = previous {
                        let _ = std::fs::remove_dir_all(p);
                    }
                    Ok(Ok(n))
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&s);
                    Ok(Err(e))
                }
            }
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| self.cache_error(&staging, &e))?;
        let downloads = settled?;
        self.current = Some(Tree { dir: done.clone(), objects: listing });
        self.seq = seq;
        Ok((done, downloads))
    }

    fn cache_error(&self, path: &Path, e: &std::io::Error) -> SyncError {
        SyncError {
            reason: Reason::CacheDir,
            url: self.url.clone(),
            message: format!("cannot write the cache directory (`{}`): {e}", path.display()),
        }
    }

    /// Lists every object under the prefix (all pages), classified into bundle paths; stops past
    /// the bundle's file limit.
    async fn list(&self) -> Result<Listing, SyncError> {
        let mut listing = Listing::new();
        let mut seen = 0usize;
        let mut token: Option<String> = None;
        let invalid = |key: &str, rule: String| SyncError {
            reason: Reason::InvalidKey,
            url: self.url.clone(),
            message: format!("the key `{key}` {rule}: refused (the last good bundle keeps serving)"),
        };
        loop {
            let mut req = self.client.list_objects_v2().bucket(&self.source.bucket).prefix(&self.source.prefix);
            if let Some(t) = token.take() {
                req = req.continuation_token(t);
            }
            let page = req.send().await.map_err(|e| sdk_error(&self.url, "ListObjectsV2", e))?;
            for o in page.contents() {
                seen += 1;
                if seen > MAX_FILES + 1 {
                    return Err(SyncError {
                        reason: Reason::Bounds,
                        url: self.url.clone(),
                        message: format!("more than {MAX_FILES} objects under the prefix: the limit of a bundle"),
                    });
                }
                let key = o.key().unwrap_or_default();
                let size = o
                    .size()
                    .and_then(|s| u64::try_from(s).ok())
                    .ok_or_else(|| invalid(key, "has no size in the listing".into()))?;
                let Some(path) = bundle_path(key, &self.source.prefix, size).map_err(|rule| invalid(key, rule))? else {
                    continue;
                };
                let etag = o.e_tag().filter(|e| !e.is_empty()).ok_or_else(|| invalid(key, "has no ETag".into()))?;
                listing.insert(path, Object { key: key.to_owned(), etag: etag.to_owned(), size });
            }
            match (page.is_truncated(), page.next_continuation_token()) {
                (Some(true), Some(t)) => token = Some(t.to_owned()),
                // A listing cut short is never taken for the whole prefix (a missing Deny is a stale ALLOW).
                (Some(true), None) => {
                    return Err(SyncError {
                        reason: Reason::Unreachable,
                        url: self.url.clone(),
                        message: "ListObjectsV2 answered a truncated page without a continuation token".to_owned(),
                    });
                }
                _ => return Ok(listing),
            }
        }
    }

    /// Builds the complete tree of `listing` in `staging` (made afresh): unchanged files from the
    /// last good tree, changed ones downloaded. Returns how many were downloaded.
    async fn build(&self, staging: &Path, listing: &Listing) -> Result<u64, SyncError> {
        let (reuse, mut fetch): (Vec<_>, Vec<_>) = listing.iter().partition(|(path, o)| {
            self.current
                .as_ref()
                .and_then(|t| t.objects.get(*path))
                .is_some_and(|old| same_etag(&old.etag, &o.etag) && old.size == o.size)
        });
        let reuse: Vec<(String, u64)> = reuse.into_iter().map(|(p, o)| (p.clone(), o.size)).collect();
        let previous = self.current.as_ref().map(|t| t.dir.clone());
        let st = staging.to_path_buf();
        let refetch = tokio::task::spawn_blocking(move || prepare(&st, previous.as_deref(), &reuse))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| self.cache_error(staging, &e))?;
        for path in refetch {
            if let Some(entry) = listing.get_key_value(&path) {
                fetch.push(entry);
            }
        }
        let mut queue = fetch.into_iter();
        let mut tasks = tokio::task::JoinSet::new();
        let mut downloads = 0u64;
        loop {
            while tasks.len() < PARALLEL_DOWNLOADS {
                let Some((path, o)) = queue.next() else { break };
                let (client, bucket, url, o) =
                    (self.client.clone(), self.source.bucket.clone(), self.url.clone(), o.clone());
                let dest = staging.join(path);
                tasks.spawn(async move {
                    let bytes = download(&client, &bucket, &o, &url).await?;
                    let written = dest.clone();
                    tokio::task::spawn_blocking(move || write_new(&written, &bytes))
                        .await
                        .map_err(std::io::Error::other)
                        .and_then(|r| r)
                        .map_err(|e| SyncError {
                            reason: Reason::CacheDir,
                            url,
                            message: format!("cannot write `{}`: {e}", dest.display()),
                        })
                });
            }
            match tasks.join_next().await {
                None => return Ok(downloads),
                Some(Ok(Ok(()))) => downloads += 1,
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => {
                    return Err(SyncError {
                        reason: Reason::CacheDir,
                        url: self.url.clone(),
                        message: format!("a download task failed: {e}"),
                    });
                }
            }
        }
    }
}

/// Makes `staging` afresh and links (or copies) into it the unchanged files of the last good tree
/// `previous`; returns the paths whose cached copy is gone or not the listed size (downloaded again).
fn prepare(staging: &Path, previous: Option<&Path>, reuse: &[(String, u64)]) -> std::io::Result<Vec<String>> {
    match std::fs::remove_dir_all(staging) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(staging)?;
    let mut refetch = Vec::new();
    for (path, size) in reuse {
        let Some(prev) = previous else {
            refetch.push(path.clone());
            continue;
        };
        let from = prev.join(path);
        let to = staging.join(path);
        let intact = std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_file() && m.len() == *size);
        if !intact {
            refetch.push(path.clone());
            continue;
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // A tree is never written once complete, so the two trees may share the file.
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(refetch)
}

/// Writes a new file (its folders made as needed); never follows or replaces what is there.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)
}

/// Downloads one object as listed: `If-Match` its listed ETag, at most its listed size.
async fn download(client: &aws_sdk_s3::Client, bucket: &str, o: &Object, url: &str) -> Result<Vec<u8>, SyncError> {
    let what = format!("GetObject `{}`", o.key);
    let out = client
        .get_object()
        .bucket(bucket)
        .key(&o.key)
        .if_match(&o.etag)
        .send()
        .await
        .map_err(|e| sdk_error(url, &what, e))?;
    let fail = |reason, message: String| SyncError { reason, url: url.to_owned(), message };
    if let Some(etag) = out.e_tag()
        && !same_etag(etag, &o.etag)
    {
        return Err(fail(
            Reason::Changed,
            format!("{what}: ETag {etag} is not the listed {}: the object was replaced during the sync", o.etag),
        ));
    }
    let mut body = out.body;
    let mut bytes = Vec::with_capacity(usize::try_from(o.size).unwrap_or(0));
    loop {
        let chunk = body
            .try_next()
            .await
            .map_err(|e| fail(Reason::Unreachable, format!("{what}: the download broke off: {e}")))?;
        let Some(chunk) = chunk else { break };
        if (bytes.len() as u64).saturating_add(chunk.len() as u64) > o.size {
            return Err(fail(
                Reason::Bounds,
                format!(
                    "{what}: more bytes than the {} listed: cut off (the object changed, or the answer lies)",
                    o.size
                ),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.len() as u64 != o.size {
        return Err(fail(
            Reason::Changed,
            format!("{what}: {} bytes, not the {} listed: the object changed during the sync", bytes.len(), o.size),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_bundle_paths_or_are_refused_naming_the_rule() {
        let p = "team/bundle/";
        for (key, size, path) in [
            ("team/bundle/iam/users/alice.json", 10, Some("iam/users/alice.json")),
            ("team/bundle/.signatures.json", 10, Some(".signatures.json")),
            ("team/bundle/", 0, None),
            ("team/bundle/iam/", 0, None),
            ("team/bundle/.git/config", 10, None),
            ("team/bundle/iam/.hidden.json", 10, None),
            ("team/bundle/iam/.signatures.json", 10, None),
            ("team/bundle/...json", 10, None),
        ] {
            assert_eq!(bundle_path(key, p, size), Ok(path.map(str::to_owned)), "{key}");
        }
        for (key, size, rule) in [
            ("team/bundle/../x.json", 1, "`..` segment"),
            ("team/bundle/iam/../../x.json", 1, "`..` segment"),
            ("team/bundle/./x.json", 1, "`.` segment"),
            ("team/bundle//x.json", 1, "absolute path"),
            ("team/bundle/iam//x.json", 1, "empty path segment"),
            ("team/bundle/iam/x/", 3, "ends with `/` and is not empty"),
            ("team/bundle/../", 0, "`..` segment"),
            ("other/x.json", 1, "not under the prefix"),
            ("team/bundle/a\0b", 1, "NUL"),
        ] {
            let e = bundle_path(key, p, size).unwrap_err();
            assert!(e.contains(rule), "{key}: {e}");
        }
        let deep = format!("{}x.json", "d/".repeat(MAX_DIR_DEPTH + 1));
        assert!(bundle_path(&deep, "", 1).unwrap_err().contains("deeper than"));
        let long = "x".repeat(MAX_SEGMENT_BYTES + 1);
        assert!(bundle_path(&long, "", 1).unwrap_err().contains("over 255 bytes"));
    }

    fn obj(key: &str, size: u64) -> Object {
        Object { key: key.to_owned(), etag: "\"e\"".to_owned(), size }
    }

    #[test]
    fn listings_over_a_bound_or_with_clashing_paths_are_refused_before_any_download() {
        let mut l = Listing::new();
        l.insert("iam/users/a.json".into(), obj("iam/users/a.json", 10));
        assert_eq!(check_listing(&l, "s3://b/"), Ok(()));
        l.insert("big.json".into(), obj("big.json", MAX_FILE_BYTES as u64 + 1));
        let e = check_listing(&l, "s3://b/").unwrap_err();
        assert_eq!(e.reason, Reason::Bounds);
        assert!(e.to_string().contains("`big.json`: 10485761 bytes (listed) exceed the limit"), "{e}");
        l.remove("big.json");
        // The manifest has its own, larger limit, and does not count toward the bundle's total.
        l.insert(signatures::FILE.into(), obj(signatures::FILE, MAX_FILE_BYTES as u64 + 1));
        assert_eq!(check_listing(&l, "s3://b/"), Ok(()));
        for i in 0..26 {
            l.insert(format!("f{i}.json"), obj("f", MAX_FILE_BYTES as u64));
        }
        let e = check_listing(&l, "s3://b/").unwrap_err();
        assert!(e.message.contains("over the limit of a bundle (268435456)"), "{e}");
        let mut l = Listing::new();
        l.insert("iam".into(), obj("p/iam", 1));
        l.insert("iam/users/a.json".into(), obj("p/iam/users/a.json", 1));
        let e = check_listing(&l, "s3://b/p/").unwrap_err();
        assert_eq!(e.reason, Reason::InvalidKey);
        assert!(e.message.contains("`p/iam` is both an object and a folder"), "{e}");
    }

    #[test]
    fn etags_compare_for_equality_only() {
        assert!(same_etag("\"abc-2\"", "abc-2"));
        assert!(!same_etag("\"abc-2\"", "\"abc-3\""));
    }

    #[test]
    fn a_staged_tree_links_unchanged_files_and_refetches_damaged_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let prev = tmp.path().join("tree-1");
        std::fs::create_dir_all(prev.join("iam")).unwrap();
        std::fs::write(prev.join("iam/a.json"), b"12345").unwrap();
        std::fs::write(prev.join("b.json"), b"1").unwrap();
        let staging = tmp.path().join("tree-2.partial");
        std::fs::create_dir_all(staging.join("stale")).unwrap();
        let reuse = vec![("iam/a.json".to_owned(), 5), ("b.json".to_owned(), 2), ("gone.json".to_owned(), 1)];
        let refetch = prepare(&staging, Some(&prev), &reuse).unwrap();
        assert_eq!(refetch, vec!["b.json".to_owned(), "gone.json".to_owned()]);
        assert_eq!(std::fs::read(staging.join("iam/a.json")).unwrap(), b"12345");
        assert!(!staging.join("stale").exists(), "the staging directory is made afresh");
        assert!(write_new(&staging.join("iam/a.json"), b"x").is_err(), "never writes over a file");
    }

    #[test]
    fn a_cache_directory_is_locked_and_cleared_of_old_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cache");
        std::fs::create_dir_all(root.join("tree-7/iam")).unwrap();
        std::fs::create_dir_all(root.join("tree-8.partial")).unwrap();
        let cache = Cache::open(root.clone(), false).unwrap();
        assert!(!root.join("tree-7").exists() && !root.join("tree-8.partial").exists());
        let again = Cache::open(root.clone(), false);
        assert!(again.err().unwrap().to_string().contains("locked by another running warden"));
        drop(cache);
        let temporary = Cache::open(root.clone(), true).unwrap();
        drop(temporary);
        assert!(!root.exists(), "a temporary cache directory is removed");
    }
}
