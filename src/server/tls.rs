//! TLS, and mTLS with `--tls-client-ca`, on the gRPC TCP listener (SPEC §11), with certificates
//! reloaded when their files change. rustls (ring) through tokio-rustls.
//!
//! - [`TlsListener`] is the TCP listener of [`connections::Limited`]: a connection is admitted under
//!   the listener's permit first, then handshakes inside its [`TlsIo`] stream on the connection's own
//!   task (the accept loop never waits on a client). The stream is [`Guarded`](connections::Guarded)
//!   outside the TLS layer, so the handshake deadline (10 s) covers the TLS handshake *and* the HTTP/2
//!   preface that follows: a client that opens TCP and never finishes TLS holds its slot no longer.
//!   A failed handshake (a plaintext client, no client certificate, one from another CA) closes the
//!   connection and counts `warden_connections_closed_total{reason="tls_handshake_failed"}`.
//! - Each connection takes the [`ServerConfig`] current at its accept. [`Tls::reload`] reads the three
//!   files again and, when their bytes changed, builds a new config and swaps it in: new connections
//!   use it, open ones keep theirs. Files that do not parse or do not match keep the old config serving;
//!   the error is logged and counted (`warden_tls_reloads_total{result="rejected"}`). The same bytes
//!   are not tried twice, so a broken file is counted once, not at every poll.
//! - [`spawn_watcher`] reloads on file events in the directories of the three files (the directory,
//!   not the file: a Kubernetes Secret volume swaps its `..data` symlink, which no watch on a file sees),
//!   debounced, and every [`RECHECK`] regardless (file systems without inotify, missed events). SIGHUP
//!   reloads them too (`server::run`).
//! - ALPN offers only `h2`. The Unix socket stays plaintext: its peers share the pod and its file mode
//!   says who may connect. The admin HTTP listener stays plaintext on loopback by default.
use crate::config::{ConfigError, TlsFiles, flag};
use crate::server::connections::Accept;
use crate::telemetry::metrics;
use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher as _};
use sha2::{Digest as _, Sha256};
use std::future::Future;
use std::io::{self, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The largest certificate, key or CA file read (a CA bundle of a few hundred certificates fits).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Quiet time after the last file event before the files are read.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// A continuous stream of events still reloads this often.
pub const MAX_DELAY: Duration = Duration::from_secs(2);
/// The files are read this often without any event (a safety net for missed events).
pub const RECHECK: Duration = Duration::from_secs(5);

/// The crypto of every config: ring (only a C compiler to build; links statically). rustls 0.23.48
/// deprecates ring's provider because it has no post-quantum key exchange (X25519MLKEM768, which
/// aws-lc-rs has): the handshake uses X25519 or the NIST curves, as before.
#[expect(deprecated, reason = "ring: a small static build over post-quantum key exchange, see above")]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// === reading the files ===

/// The bytes of the three files.
struct Bytes {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Bytes {
    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()] {
            match part {
                Some(b) => {
                    h.update((b.len() as u64).to_le_bytes());
                    h.update(b);
                }
                None => h.update(u64::MAX.to_le_bytes()),
            }
        }
        h.finalize().into()
    }
}

/// Reads one file, following symlinks (a Secret volume is made of them), refusing anything but a
/// regular file of at most [`MAX_FILE_BYTES`] (a FIFO would block the reader).
fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |message: String| ConfigError { flag, message };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| err(format!("cannot read `{}`: {e}", path.display())))?;
    let md = file.metadata().map_err(|e| err(format!("cannot read `{}`: {e}", path.display())))?;
    if !md.is_file() {
        return Err(err(format!("`{}` is not a regular file", path.display())));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read `{}`: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(err(format!("`{}` is over {MAX_FILE_BYTES} bytes", path.display())));
    }
    Ok(bytes)
}

fn read_all(files: &TlsFiles) -> Result<Bytes, ConfigError> {
    Ok(Bytes {
        cert: read(flag::TLS_CERT, &files.cert)?,
        key: read(flag::TLS_KEY, &files.key)?,
        client_ca: files.client_ca.as_deref().map(|p| read(flag::TLS_CLIENT_CA, p)).transpose()?,
    })
}

/// Every PEM `CERTIFICATE` of `bytes` (other sections are skipped), at least one.
fn certificates(flag: &'static str, path: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError { flag, message: format!("`{}` is not valid PEM: {e}", path.display()) })?;
    if certs.is_empty() {
        return Err(ConfigError { flag, message: format!("`{}` holds no PEM CERTIFICATE", path.display()) });
    }
    Ok(certs)
}

/// A server config from the files' bytes: the certificate chain and its key, client certificates
/// required and checked against the CAs when there are any, ALPN `h2`.
fn server_config(files: &TlsFiles, bytes: &Bytes) -> Result<ServerConfig, ConfigError> {
    let chain = certificates(flag::TLS_CERT, &files.cert, &bytes.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes.key).map_err(|e| ConfigError {
        flag: flag::TLS_KEY,
        message: format!("`{}` holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}", files.key.display()),
    })?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError { flag: flag::TLS_CERT, message: format!("TLS versions: {e}") })?;
    let builder = match (&files.client_ca, &bytes.client_ca) {
        (Some(path), Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(flag::TLS_CLIENT_CA, path, ca)? {
                roots.add(cert).map_err(|e| ConfigError {
                    flag: flag::TLS_CLIENT_CA,
                    message: format!("`{}` holds a certificate that is not a usable CA: {e}", path.display()),
                })?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build().map_err(|e| {
                    ConfigError { flag: flag::TLS_CLIENT_CA, message: format!("`{}`: {e}", path.display()) }
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        let message = match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "`{}` does not match the certificate in `{}` ({})",
                files.key.display(),
                files.cert.display(),
                flag::TLS_CERT
            ),
            e => format!("`{}` with the certificate in `{}`: {e}", files.key.display(), files.cert.display()),
        };
        ConfigError { flag: flag::TLS_KEY, message }
    })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Reads and checks the files once: what `warden serve` does before it starts (an error names the
/// flag; the command line exits 64).
pub fn check(files: &TlsFiles) -> Result<(), ConfigError> {
    server_config(files, &read_all(files)?).map(drop)
}

// === impl Tls ===

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The files are what was last tried (loaded or refused): nothing done, nothing counted.
    Unchanged,
    /// New files, now used for new connections.
    Activated,
    /// New files that cannot be used: the previous config keeps serving.
    Rejected(String),
}

/// The current TLS config of the gRPC TCP listener, and the files it comes from.
pub struct Tls {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
    /// The digest of the bytes last tried, or of the error that kept them from being read.
    tried: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads and checks the files (blocking file reads: at start).
    pub fn load(files: &TlsFiles) -> Result<Tls, ConfigError> {
        let bytes = read_all(files)?;
        let config = server_config(files, &bytes)?;
        Ok(Tls { files: files.clone(), current: ArcSwap::from_pointee(config), tried: Mutex::new(bytes.digest()) })
    }

    /// Whether client certificates are required.
    pub fn mutual(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// The acceptor for a new connection: the config current now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }

    /// Reads the files again; when their bytes changed, swaps in a config made from them, or keeps the
    /// current one if they cannot be used. Logs and counts what it did (blocking file reads: call it
    /// off the runtime).
    pub fn reload(&self) -> Reloaded {
        let mut tried = self.tried.lock().unwrap_or_else(PoisonError::into_inner);
        let (digest, built) = match read_all(&self.files) {
            Ok(bytes) => (bytes.digest(), server_config(&self.files, &bytes)),
            Err(e) => (Sha256::digest(e.to_string().as_bytes()).into(), Err(e)),
        };
        if digest == *tried {
            return Reloaded::Unchanged;
        }
        *tried = digest;
        match built {
            Ok(config) => {
                self.current.store(Arc::new(config));
                metrics::tls_reload("activated");
                tracing::info!(cert = %self.files.cert.display(), "TLS files reloaded: new connections use them");
                Reloaded::Activated
            }
            Err(e) => {
                metrics::tls_reload("rejected");
                tracing::error!(error = %e, "TLS files changed but cannot be used: the previous certificate keeps serving");
                Reloaded::Rejected(e.to_string())
            }
        }
    }
}

// === the watcher ===

/// The directories holding the files: each path's own, and the one its symlinks resolve to.
fn watched_dirs(files: &TlsFiles) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for f in [Some(&files.cert), Some(&files.key), files.client_ca.as_ref()].into_iter().flatten() {
        let abs = std::path::absolute(f).unwrap_or_else(|_| f.clone());
        let resolved = std::fs::canonicalize(&abs).ok();
        for d in
            [abs.parent().map(Path::to_path_buf), resolved.as_deref().and_then(Path::parent).map(Path::to_path_buf)]
                .into_iter()
                .flatten()
        {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs
}

/// A watcher on `dirs` (non-recursive) that wakes `changed` on every event but reads.
fn arm(dirs: &[PathBuf], changed: &Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let n = changed.clone();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|ev| crate::runtime::reload::counts(&ev.kind)) {
            n.notify_one();
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the TLS files: they are re-read every {RECHECK:?}");
            return None;
        }
    };
    for d in dirs {
        if let Err(e) = watcher.watch(d, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %d.display(), error = %e, "cannot watch a TLS file's directory: it is re-read every {RECHECK:?}");
        }
    }
    Some(watcher)
}

/// Trailing-edge debounce after a first event, bounded by [`MAX_DELAY`].
async fn debounce(changed: &Notify) {
    let started = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = changed.notified() => {
                if started.elapsed() >= MAX_DELAY {
                    return;
                }
            }
            () = tokio::time::sleep(DEBOUNCE) => return,
        }
    }
}

/// Reloads `tls` on file events in its files' directories and every [`RECHECK`], until aborted. The
/// watch is armed before this returns.
pub fn spawn_watcher(tls: Arc<Tls>) -> JoinHandle<()> {
    let changed = Arc::new(Notify::new());
    let mut dirs = watched_dirs(&tls.files);
    let mut watcher = arm(&dirs, &changed);
    tokio::spawn(async move {
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.tick().await;
        loop {
            tokio::select! {
                () = changed.notified() => debounce(&changed).await,
                _ = recheck.tick() => {}
            }
            let t = tls.clone();
            let job = tokio::task::spawn_blocking(move || {
                let outcome = t.reload();
                (outcome, watched_dirs(&t.files))
            });
            let Ok((outcome, now)) = job.await else { continue };
            tracing::debug!(?outcome, "TLS files checked");
            // A symlink retargeted elsewhere (or a directory that appeared): watch where it points now.
            if now != dirs || watcher.is_none() {
                drop(watcher.take());
                dirs = now;
                watcher = arm(&dirs, &changed);
            }
        }
    })
}

// === the listener ===

/// The gRPC TCP listener with TLS: see the module docs.
#[derive(Debug)]
pub struct TlsListener {
    listener: TcpListener,
    tls: Arc<Tls>,
}

impl TlsListener {
    /// TLS with `tls`'s current config on the connections of `listener`.
    pub fn new(listener: TcpListener, tls: Arc<Tls>) -> TlsListener {
        TlsListener { listener, tls }
    }
}

impl Accept for TlsListener {
    type Raw = TcpStream;
    type Io = TlsIo;
    type Addr = SocketAddr;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        self.listener.poll_accept(cx)
    }

    fn admit(&self, raw: TcpStream) -> TlsIo {
        let raw = self.listener.admit(raw);
        let info = raw.connect_info();
        TlsIo { state: State::Handshake(self.tls.acceptor().accept(raw)), info }
    }
}

enum State {
    Handshake(tokio_rustls::Accept<TcpStream>),
    Ready(tokio_rustls::server::TlsStream<TcpStream>),
    Failed,
}

/// One TLS connection: handshakes on its first read or write, then reads and writes plaintext.
pub struct TlsIo {
    state: State,
    info: TcpConnectInfo,
}

impl std::fmt::Debug for TlsIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Handshake(_) => "handshake",
            State::Ready(_) => "ready",
            State::Failed => "failed",
        };
        f.debug_struct("TlsIo").field("state", &state).field("peer", &self.info.remote_addr).finish()
    }
}

fn failed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the TLS handshake failed")
}

impl TlsIo {
    /// Drives the handshake; `Ready(Ok)` once the stream is ready.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Handshake(accept) = &mut self.state {
            match ready!(Pin::new(accept).poll(cx)) {
                Ok(stream) => self.state = State::Ready(stream),
                Err(e) => {
                    self.state = State::Failed;
                    metrics::connection_closed("grpc_tcp", "tls_handshake_failed");
                    tracing::debug!(peer = ?self.info.remote_addr, error = %e, "TLS handshake failed");
                    return Poll::Ready(Err(e));
                }
            }
        }
        match self.state {
            State::Ready(_) => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err(failed())),
        }
    }

    /// The stream, once the handshake is done.
    fn poll_stream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Pin<&mut tokio_rustls::server::TlsStream<TcpStream>>>> {
        ready!(self.poll_handshake(cx))?;
        match &mut self.state {
            State::Ready(s) => Poll::Ready(Ok(Pin::new(s))),
            _ => Poll::Ready(Err(failed())),
        }
    }
}

impl AsyncRead for TlsIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        ready!(self.get_mut().poll_stream(cx))?.poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.get_mut().poll_stream(cx))?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.get_mut().poll_stream(cx))?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // tokio-rustls writes vectors into its record buffer; asked before the handshake is done.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.get_mut().poll_stream(cx))?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Ready(s) => Pin::new(s).poll_shutdown(cx),
            // Nothing to close politely: dropping the stream closes the socket.
            State::Handshake(_) | State::Failed => Poll::Ready(Ok(())),
        }
    }
}

impl Connected for TlsIo {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::{Reloaded, Tls, check};
    use crate::config::TlsFiles;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::path::Path;

    /// A CA's PEM, and two server certificates with their keys signed by it.
    fn pki() -> (String, [(String, String); 2]) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap().pem();
        let issuer = Issuer::new(params, key);
        let leaf = || {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        (ca, [leaf(), leaf()])
    }

    fn files(dir: &Path, ca: bool) -> TlsFiles {
        TlsFiles { cert: dir.join("c.pem"), key: dir.join("k.pem"), client_ca: ca.then(|| dir.join("ca.pem")) }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn check_names_the_flag_of_the_file_that_cannot_be_used() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ca, [(c1, k1), (_, k2)]) = pki();
        let err = |ca: bool| check(&files(d, ca)).unwrap_err();
        let e = err(false);
        assert_eq!(e.flag, "--tls-cert");
        assert!(e.message.contains("cannot read") && e.message.contains("c.pem"), "{e}");
        write(d, "k.pem", &k1);
        write(d, "c.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        let e = err(false);
        assert_eq!(e.flag, "--tls-cert");
        assert!(e.message.contains("holds no PEM CERTIFICATE"), "{e}");
        write(d, "c.pem", &c1);
        std::fs::remove_file(d.join("k.pem")).unwrap();
        let e = err(false);
        assert_eq!(e.flag, "--tls-key");
        assert!(e.message.contains("cannot read"), "{e}");
        write(d, "k.pem", &c1);
        let e = err(false);
        assert_eq!(e.flag, "--tls-key");
        assert!(e.message.contains("no usable PEM private key"), "{e}");
        write(d, "k.pem", &k2);
        let e = err(false);
        assert_eq!(e.flag, "--tls-key");
        assert!(e.message.contains("does not match the certificate"), "{e}");
        write(d, "k.pem", &k1);
        check(&files(d, false)).unwrap();
        let e = err(true);
        assert_eq!(e.flag, "--tls-client-ca");
        write(d, "ca.pem", "");
        let e = err(true);
        assert_eq!(e.flag, "--tls-client-ca");
        assert!(e.message.contains("holds no PEM CERTIFICATE"), "{e}");
        write(d, "ca.pem", &ca);
        check(&files(d, true)).unwrap();
        // Not a regular file: refused without blocking.
        let e = check(&TlsFiles { cert: d.to_path_buf(), ..files(d, false) }).unwrap_err();
        assert!(e.message.contains("is not a regular file"), "{e}");
    }

    #[test]
    fn reload_swaps_good_files_keeps_the_old_on_bad_ones_and_tries_each_content_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (_, [(c1, k1), (c2, k2)]) = pki();
        write(d, "c.pem", &c1);
        write(d, "k.pem", &k1);
        let tls = Tls::load(&files(d, false)).unwrap();
        assert!(!tls.mutual());
        let before = tls.current.load_full();
        assert_eq!(before.alpn_protocols, vec![b"h2".to_vec()]);
        assert_eq!(tls.reload(), Reloaded::Unchanged);
        // Half-way through an update: the new certificate with the old key.
        write(d, "c.pem", &c2);
        assert!(matches!(tls.reload(), Reloaded::Rejected(e) if e.contains("does not match")));
        assert!(std::sync::Arc::ptr_eq(&before, &tls.current.load_full()), "the old config serves");
        assert_eq!(tls.reload(), Reloaded::Unchanged, "the same broken files are tried once");
        write(d, "k.pem", &k2);
        assert_eq!(tls.reload(), Reloaded::Activated);
        assert!(!std::sync::Arc::ptr_eq(&before, &tls.current.load_full()));
        assert_eq!(tls.reload(), Reloaded::Unchanged);
        // A file that disappears is an error too, counted once.
        std::fs::remove_file(d.join("k.pem")).unwrap();
        assert!(matches!(tls.reload(), Reloaded::Rejected(e) if e.contains("--tls-key")));
        assert_eq!(tls.reload(), Reloaded::Unchanged);
    }
}
