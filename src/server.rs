//! The long-running sidecar: binds the gRPC listeners (TCP and/or a Unix socket) and the admin HTTP
//! listener, serves `warden.v1.Authorizer`, `grpc.health.v1.Health` (NOT_SERVING until a bundle is
//! active) and server reflection v1 + v1alpha, loads the bundle off the request path, and shuts down
//! gracefully: NOT_SERVING, stop accepting, drain in-flight calls within a bounded grace period.
pub mod admin;
pub mod connections;
pub mod layer;
pub mod split;
pub mod tls;
pub mod uds_authority;

pub use crate::runtime::activation::{AUTHORIZER_SERVICE, ReloadOutcome, Shared, load_and_activate, set_health};

use crate::config::{BundleSource, ConnectionLimits, MAX_MESSAGE_BYTES, ServeConfig, flag};
use crate::grpc::answers::AnswersLayer;
use crate::grpc::authorize::{AuthorizerService, Evaluator};
use crate::grpc::ext_authz;
use crate::proto;
use crate::runtime::state::fleet::Table;
use crate::runtime::state::{StateDir, StateStore};
use crate::runtime::store::Store;
use crate::telemetry::metrics;
use anyhow::{Context as _, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use warden_core::engine;
use warden_core::identity::AdminMemory;

/// Options that tests set.
#[derive(Clone, Copy)]
pub struct Options {
    /// The decision function.
    pub evaluator: Evaluator,
    /// Load the bundle at start (tests may leave the store empty to see UNAVAILABLE).
    pub load_bundle: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { evaluator: engine::authorize, load_bundle: true }
    }
}

/// A running server.
pub struct Running {
    /// The bound gRPC TCP address.
    pub grpc_addr: Option<SocketAddr>,
    /// The Unix socket path.
    pub uds: Option<PathBuf>,
    /// The bound admin address.
    pub admin_addr: Option<SocketAddr>,
    /// The active bundle.
    pub store: Arc<Store>,
    /// The health reporter.
    pub health: HealthReporter,
    /// Reloads and admin changes.
    pub shared: Arc<Shared>,
    /// The outcome of the first bundle load, once known.
    pub first_load: watch::Receiver<Option<ReloadOutcome>>,
    /// TLS on the gRPC TCP listener (`--tls-cert`), reloaded when its files change.
    pub tls: Option<Arc<tls::Tls>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<()>>>,
    reloader: Option<JoinHandle<()>>,
    tls_watcher: Option<JoinHandle<()>>,
    state_poller: Option<JoinHandle<()>>,
    log_task: Option<JoinHandle<()>>,
    grace: Duration,
}

/// Opens the admin state `config` names: the state directory (locked), or the fleet's table
/// (`--state dynamodb://TABLE`), read once now, so a table that is missing or unreachable at start is
/// an error naming the flag, the table and the cause. Returns the store and the memory it holds.
async fn open_state(config: &ServeConfig) -> Result<(Option<StateStore>, AdminMemory)> {
    if let Some(table) = &config.state_table {
        return open_table(table).await;
    }
    match config.state_dir.clone() {
        Some(d) => {
            let (s, m) = tokio::task::spawn_blocking(move || {
                let s = StateDir::open(&d)?;
                let m = s.load()?;
                anyhow::Ok((s, m))
            })
            .await
            .context("opening the state directory")??;
            Ok((Some(StateStore::Dir(Arc::new(s))), m))
        }
        None => Ok((None, AdminMemory::default())),
    }
}

#[cfg(feature = "aws")]
async fn open_table(table: &str) -> Result<(Option<StateStore>, AdminMemory)> {
    let t = crate::runtime::state::dynamodb::DynamoTable::connect(table)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", flag::STATE))?;
    let read = t
        .read()
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}: cannot read the admin state at start: {e}", flag::STATE, t.name()))?;
    tracing::info!(table = t.name(), version = read.version, "shared admin state read");
    Ok((Some(StateStore::Table(Arc::new(t))), read.memory))
}

#[cfg(not(feature = "aws"))]
async fn open_table(table: &str) -> Result<(Option<StateStore>, AdminMemory)> {
    anyhow::bail!(
        "{}: `dynamodb://{table}` needs fleet mode, and this warden was built without the cargo feature `aws`",
        flag::STATE
    )
}

/// The layers around every gRPC service: [`layer::WireLayer`] outside [`connections::TrackLayer`]
/// outside [`AnswersLayer`] (repeated `Authorize` requests answered from their bytes).
type Layers = tower::layer::util::Stack<
    AnswersLayer,
    tower::layer::util::Stack<
        connections::TrackLayer,
        tower::layer::util::Stack<layer::WireLayer, tower::layer::util::Identity>,
    >,
>;

/// The gRPC services and the HTTP/2 settings of one listener.
///
/// What one connection can make the server hold, at worst (SPEC §7 "per-connection buffered responses
/// capped"; the limits are in [`ConnectionLimits`], their enforcement in [`connections`]):
/// - open streams: `max_concurrent_streams` (256), each about 7 KB of h2, hyper and tonic state while
///   its answer waits (measured: +15 MiB for 2,040 held streams, +53 MiB for about 7,400), so 2 MiB;
/// - answers waiting for the client's flow control in hyper (it polls a body before it has window for
///   it): once `max_pending_response_bytes` (4 MiB) wait, new answers are RESOURCE_EXHAUSTED instead
///   ([`connections::TrackLayer`]), so 4 MiB plus the answers finishing at that instant on the other
///   runtime threads, each at most `max_encoding_message_size` (4 MiB; 84 KB for a batch of 100
///   explained decisions on the default bundle);
/// - answers h2 took beyond the client's window: about one (one per runtime thread at worst), since
///   hyper hands h2 an answer only once the window has room for part of it. h2's per-stream `max_send_buf_size` (400 KiB, not exposed by
///   tonic) would not bound this: a unary answer is one chunk, which h2 buffers whole. A client that
///   stops reading its socket altogether stops answering PINGs and is dropped within 40 s
///   (`keepalive_interval` + `keepalive_timeout`);
/// - request data: 1 MiB unread in h2 (hyper's connection window) plus the partial request each open
///   stream is decoding (up to `MAX_MESSAGE_BYTES` each, for at most the 30 s timeout).
///
/// So for answers about 2 MiB + 4 MiB + (threads + 1) x the largest answer per connection: 8 connections
/// leaving 1,000 batch answers each unread grow the server by 52–56 MiB (739 MiB before the cap;
/// bench/attack-connections.md). An idle connection costs about 5–16 KB.
fn router(
    health: tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    svc: AuthorizerService,
    limits: &ConnectionLimits,
) -> Result<tonic::transport::server::Router<Layers>> {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(ext_authz::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building reflection v1")?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(ext_authz::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building reflection v1alpha")?;
    let ext_authz =
        ext_authz::pb::authorization_server::AuthorizationServer::new(ext_authz::ExtAuthzService::new(svc.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let answers = AnswersLayer::new(svc.clone());
    let authorizer = proto::authorizer_server::AuthorizerServer::new(svc)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(4 * MAX_MESSAGE_BYTES);
    Ok(tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .max_concurrent_streams(Some(limits.max_concurrent_streams))
        .layer(layer::WireLayer)
        .layer(connections::TrackLayer)
        .layer(answers)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(authorizer)
        .add_service(ext_authz))
}

// === impl Running ===

impl Running {
    /// Binds every listener and starts serving; the bundle loads in the background.
    pub async fn start(config: &ServeConfig, options: Options) -> Result<Running> {
        Running::start_with(config, options, None).await
    }

    /// [`Running::start`] with the fleet's shared state in `table` (whatever `config` says about the
    /// state): how tests run the fleet logic on a table of their own.
    pub async fn start_with_table(config: &ServeConfig, options: Options, table: Arc<dyn Table>) -> Result<Running> {
        Running::start_with(config, options, Some(table)).await
    }

    async fn start_with(config: &ServeConfig, options: Options, table: Option<Arc<dyn Table>>) -> Result<Running> {
        let handle = metrics::install();
        if let Some(h) = handle.clone() {
            tokio::spawn(metrics::upkeep(h));
        }
        let (state, initial_admins) = match table {
            Some(t) => {
                let read = t.read().await.map_err(|e| {
                    anyhow::anyhow!("{}: {}: cannot read the admin state at start: {e}", flag::STATE, t.name())
                })?;
                (Some(StateStore::Table(t)), read.memory)
            }
            None => open_state(config).await?,
        };
        let poll_table = match &state {
            Some(StateStore::Table(t)) => Some(t.clone()),
            _ => None,
        };
        let store = Arc::new(Store::with_cache_limits(config.cache_capacity, config.cache_max_bytes));
        let (health, health_svc) = tonic_health::server::health_reporter();
        // HealthReporter starts with "" SERVING: readiness follows the bundle, so say NOT_SERVING now.
        set_health(&health, ServingStatus::NotServing).await;
        let verify_keys =
            crate::runtime::signatures::load_verify_keys(&config.bundle_verify_keys).map_err(anyhow::Error::msg)?;
        let shared = Shared::new(store.clone(), health.clone(), config.bundle.clone(), state, initial_admins)
            .with_verify_keys(verify_keys);
        #[cfg(feature = "aws")]
        let shared = match &config.bundle {
            BundleSource::S3(s3) => shared.with_s3(first_sync(config, s3, options.load_bundle).await?),
            _ => shared,
        };
        let shared = Arc::new(shared);
        let mut svc = AuthorizerService::new(store.clone(), options.evaluator);
        let mut log_task = None;
        if let Some(target) = &config.decision_log {
            let (log, task) = crate::telemetry::decision_log::DecisionLog::spawn(target)
                .with_context(|| format!("{}: cannot open the decision log", flag::DECISION_LOG))?;
            svc = svc.with_decision_log(log);
            log_task = Some(task);
        }
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let stop = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };

        let limits = &config.connections;
        let grpc_listeners = usize::from(config.listen.is_some()) + usize::from(config.uds.is_some());
        connections::warn_if_over_fd_limit(
            limits.max_connections.saturating_mul(grpc_listeners).saturating_add(if config.admin_listen.is_some() {
                limits.admin_max_connections
            } else {
                0
            }),
        );
        let tls = match &config.tls {
            Some(files) => {
                let files = files.clone();
                let loaded = tokio::task::spawn_blocking(move || tls::Tls::load(&files))
                    .await
                    .context("reading the TLS files")??;
                Some(Arc::new(loaded))
            }
            None => None,
        };
        let mut grpc_addr = None;
        if let Some(addr) = config.listen {
            let l = TcpListener::bind(addr).await.with_context(|| format!("{}: cannot bind `{addr}`", flag::LISTEN))?;
            let local = l.local_addr()?;
            grpc_addr = Some(local);
            let r = router(health_svc.clone(), svc.clone(), &config.connections)?;
            let policy = connections::Policy::grpc(&config.connections);
            let rx = rx.clone();
            // serve_with_incoming ignores Server::tcp_nodelay: the listener sets TCP_NODELAY itself.
            match &tls {
                Some(t) => {
                    tracing::info!(addr = %local, client_certificates = t.mutual(), "gRPC listening (TCP, TLS)");
                    let incoming = connections::Limited::new(tls::TlsListener::new(l, t.clone()), policy, "grpc_tcp");
                    tasks.push(tokio::spawn(async move {
                        r.serve_with_incoming_shutdown(incoming, stop(rx)).await.context("gRPC TCP server (TLS)")
                    }));
                }
                None => {
                    tracing::info!(addr = %local, "gRPC listening (TCP)");
                    let incoming = connections::Limited::new(l, policy, "grpc_tcp");
                    tasks.push(tokio::spawn(async move {
                        r.serve_with_incoming_shutdown(incoming, stop(rx)).await.context("gRPC TCP server")
                    }));
                }
            }
        }
        let tls_watcher = tls.clone().map(tls::spawn_watcher);
        if let Some(path) = &config.uds {
            clear_stale_socket(path)?;
            let l =
                UnixListener::bind(path).with_context(|| format!("{}: cannot bind `{}`", flag::UDS, path.display()))?;
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.uds_mode)).with_context(
                    || format!("{}: cannot set mode {:o} on `{}`", flag::UDS_MODE, config.uds_mode, path.display()),
                )?;
            }
            let ours = socket_identity(path);
            tracing::info!(path = %path.display(), "gRPC listening (Unix socket)");
            let r = router(health_svc.clone(), svc.clone(), &config.connections)?;
            // grpc-core clients (Python grpcio, C++, Ruby...) send the percent-encoded socket path as
            // :authority, which h2 resets with PROTOCOL_ERROR: the listener rewrites it below h2 (see
            // uds_authority).
            let incoming = connections::Limited::new(
                connections::UdsListener(l),
                connections::Policy::grpc(&config.connections),
                "grpc_uds",
            );
            let rx = rx.clone();
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                let r = r.serve_with_incoming_shutdown(incoming, stop(rx)).await.context("gRPC Unix-socket server");
                // Remove the socket only if the path still names the one this server created.
                if ours.is_some() && socket_identity(&path) == ours {
                    let _ = std::fs::remove_file(&path);
                }
                r
            }));
        }
        let mut admin_addr = None;
        if let Some(addr) = config.admin_listen {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("{}: cannot bind `{addr}`", flag::ADMIN_LISTEN))?;
            let local = l.local_addr()?;
            tracing::info!(addr = %local, "admin HTTP listening (/metrics, /healthz, /readyz, /v1/status)");
            admin_addr = Some(local);
            let app = admin::router(store.clone(), handle, shared.clone(), config.admin_token.clone());
            let l = connections::Limited::new(l, connections::Policy::admin(&config.connections), "admin");
            let rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                axum::serve(l, app).with_graceful_shutdown(stop(rx)).await.context("admin HTTP server")
            }));
        }
        // Arm the watcher before the first load: a change made during it is then never missed.
        let reloader = match (&config.bundle, options.load_bundle) {
            (BundleSource::Dir(d), true) => {
                let mode = config
                    .poll_interval
                    .map_or(crate::runtime::reload::Mode::Watch, crate::runtime::reload::Mode::Poll);
                Some(crate::runtime::reload::spawn(shared.clone(), d.clone(), mode))
            }
            (BundleSource::S3(s3), true) => {
                let every = config.poll_interval.unwrap_or(crate::config::DEFAULT_S3_POLL_INTERVAL);
                Some(crate::runtime::reload::poll(shared.clone(), s3.url(), every))
            }
            _ => None,
        };
        let state_poller =
            poll_table.map(|t| crate::runtime::state_poll::spawn(shared.clone(), t, config.state_poll_interval));
        let (first_tx, first_load) = watch::channel(None);
        if options.load_bundle {
            let shared = shared.clone();
            tokio::spawn(async move {
                let outcome = shared.reload().await;
                let _ = first_tx.send(Some(outcome));
            });
        }
        Ok(Running {
            grpc_addr,
            uds: config.uds.clone(),
            admin_addr,
            store,
            health,
            shared,
            first_load,
            tls,
            shutdown,
            tasks,
            reloader,
            tls_watcher,
            state_poller,
            log_task,
            grace: config.shutdown_grace,
        })
    }

    /// Graceful shutdown: health NOT_SERVING, stop accepting, drain in-flight calls for at most the
    /// grace period. Returns whether everything drained in time.
    pub async fn shutdown(self) -> bool {
        set_health(&self.health, ServingStatus::NotServing).await;
        // From here on no reload or revocation changes anything (a revoke answers 503): a reload or
        // revoke under way finishes first (an acknowledged revoke is on disk), then the directory
        // (and its lock) is released, even if a draining listener still holds `shared`.
        self.shared.begin_shutdown().await;
        if let Some(r) = self.reloader {
            r.abort();
            let _ = r.await;
        }
        if let Some(w) = self.tls_watcher {
            w.abort();
            let _ = w.await;
        }
        if let Some(p) = self.state_poller {
            p.abort();
            let _ = p.await;
        }
        let _ = self.shutdown.send(true);
        let all = async {
            for t in self.tasks {
                match t.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "listener ended with an error"),
                    Err(e) => tracing::warn!(error = %e, "listener task failed"),
                }
            }
        };
        let log_task = self.log_task;
        let drained = tokio::time::timeout(self.grace, all).await;
        // The services (and their log senders) are gone with the listeners: let the log writer finish.
        if let Some(t) = log_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        match drained {
            Ok(()) => true,
            Err(_) => {
                tracing::warn!(
                    grace_ms = self.grace.as_millis() as u64,
                    "in-flight calls did not finish within the grace period"
                );
                false
            }
        }
    }
}

/// Opens the cache directory of an S3 bundle and, unless the bundle is not to be loaded, syncs it
/// once: a replica that cannot reach its bucket at start refuses to start, naming the bucket and the
/// error (it has no last good bundle to serve, and an orchestrator restarting it with back-off is the
/// retry; see docs/fleet.md). Once running, a failed sync keeps the last good bundle serving.
#[cfg(feature = "aws")]
async fn first_sync(
    config: &ServeConfig,
    s3: &crate::config::S3Bundle,
    sync: bool,
) -> Result<crate::runtime::s3::Syncer> {
    let (dir, temporary) = match &config.bundle_cache_dir {
        Some(d) => (d.clone(), false),
        None => crate::runtime::s3::default_cache_dir(config.state_dir.as_deref()),
    };
    let mut syncer = crate::runtime::s3::Syncer::open(s3.clone(), dir, temporary).await?;
    tracing::info!(source = %syncer.url(), cache_dir = %syncer.cache_dir().display(), "bundle from S3");
    if sync {
        let (_, downloads) = syncer.sync().await.map_err(|e| {
            anyhow::anyhow!(
                "{}: the first sync failed, so this replica does not start (it has no bundle to serve; a running \
                 replica keeps its last good bundle through failed syncs): {e}",
                flag::BUNDLE
            )
        })?;
        tracing::info!(source = %syncer.url(), downloads, "bundle synced from S3");
    }
    Ok(syncer)
}

/// (device, inode) of the socket at `path`, if it is one.
fn socket_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let md = std::fs::symlink_metadata(path).ok()?;
    md.file_type().is_socket().then(|| (md.dev(), md.ino()))
}

/// Makes room for the Unix socket at `path` without ever destroying anything that is not ours to
/// replace: a missing path is fine; a socket nobody answers on (left by a crashed server) is removed; a
/// socket a live server answers on, or anything that is not a socket, refuses the start, naming it.
fn clear_stale_socket(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    let md = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot inspect `{}`", flag::UDS, path.display())),
        Ok(md) => md,
    };
    if !md.file_type().is_socket() {
        anyhow::bail!(
            "{}: `{}` exists and is not a socket; refusing to replace it (choose another path or remove it)",
            flag::UDS,
            path.display()
        );
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => anyhow::bail!(
            "{}: another server is listening on `{}`; refusing to take its socket",
            flag::UDS,
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .with_context(|| format!("{}: cannot remove the stale socket `{}`", flag::UDS, path.display())),
        Err(e) => Err(e).with_context(|| format!("{}: cannot check the socket `{}`", flag::UDS, path.display())),
    }
}

/// Waits for SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}

/// `warden serve`: runs until SIGTERM/SIGINT, then shuts down gracefully.
pub async fn run(config: ServeConfig) -> Result<()> {
    // SIGHUP reloads the bundle; installed before anything starts, so an early SIGHUP never kills us.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let running = Running::start(&config, Options::default()).await?;
    let mut first = running.first_load.clone();
    // At start-up, a refused admin change is fatal (SPEC §5.5): exit non-zero naming the app.
    let refused = async {
        loop {
            if let Some(ReloadOutcome::AdminChangeRefused(r)) = first.borrow().clone() {
                return r;
            }
            if first.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    };
    if let Some(mut hup) = hup {
        let shared = running.shared.clone();
        let tls = running.tls.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the bundle");
                let outcome = shared.reload().await;
                tracing::info!(?outcome, "SIGHUP reload finished");
                if let Some(t) = tls.clone() {
                    let outcome = tokio::task::spawn_blocking(move || t.reload()).await;
                    tracing::info!(?outcome, "SIGHUP: TLS files checked");
                }
            }
        });
    }
    tokio::select! {
        () = shutdown_signal() => {
            running.shutdown().await;
            tracing::info!("stopped");
            Ok(())
        }
        r = refused => {
            running.shutdown().await;
            anyhow::bail!("the bundle changes partner-app admins that cannot change: {}", r.join("; "))
        }
    }
}
