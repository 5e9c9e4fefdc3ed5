//! The long-running sidecar: binds the gRPC listeners (TCP and/or a Unix socket) and the admin HTTP
//! listener, serves `warden.v1.Authorizer`, `grpc.health.v1.Health` (NOT_SERVING until a bundle is
//! active) and server reflection v1 + v1alpha, loads the bundle off the request path, and shuts down
//! gracefully: NOT_SERVING, stop accepting, drain in-flight calls within a bounded grace period.
pub mod admin;
pub mod layer;

use crate::bundle;
use crate::config::{BundleSource, MAX_MESSAGE_BYTES, ServeConfig, flag};
use crate::engine;
use crate::grpc::authorize::{AuthorizerService, Evaluator};
use crate::proto;
use crate::store::Store;
use crate::telemetry::metrics;
use anyhow::{Context as _, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The health service name of the Authorizer.
pub const AUTHORIZER_SERVICE: &str = "warden.v1.Authorizer";

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
        Options {
            evaluator: engine::authorize,
            load_bundle: true,
        }
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
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<()>>>,
    grace: Duration,
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(AUTHORIZER_SERVICE, status).await;
}

fn load(source: &BundleSource) -> Result<bundle::Bundle, Vec<crate::policy::Problem>> {
    match source {
        BundleSource::Dir(d) => bundle::read_dir(d),
        BundleSource::Embedded => bundle::embedded(),
    }
}

fn source_name(source: &BundleSource) -> String {
    match source {
        BundleSource::Dir(d) => d.display().to_string(),
        BundleSource::Embedded => "embedded default bundle".to_owned(),
    }
}

/// Loads the bundle off the request path and activates it (health SERVING), or records why not.
pub async fn load_and_activate(store: &Store, health: &HealthReporter, source: &BundleSource) -> bool {
    let src = source.clone();
    let result = tokio::task::spawn_blocking(move || load(&src)).await;
    match result {
        Ok(Ok(b)) => {
            let act = store.activate(Arc::new(b), source_name(source));
            metrics::bundle_reload("activated", Some(&act.revision), act.previous.as_deref());
            tracing::info!(revision = %act.revision, source = %source_name(source), "bundle activated");
            set_health(health, ServingStatus::Serving).await;
            true
        }
        Ok(Err(problems)) => {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            for p in &text {
                tracing::error!(problem = %p, "bundle rejected");
            }
            metrics::bundle_reload("rejected", None, None);
            store.reject(text.join("\n"));
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "bundle load task failed");
            store.reject(format!("bundle load task failed: {e}"));
            false
        }
    }
}

fn router(
    health: tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    svc: AuthorizerService,
) -> Result<tonic::transport::server::Router<tower::layer::util::Stack<layer::WireLayer, tower::layer::util::Identity>>>
{
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building reflection v1")?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building reflection v1alpha")?;
    let authorizer = proto::authorizer_server::AuthorizerServer::new(svc)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(4 * MAX_MESSAGE_BYTES);
    Ok(tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(Some(1024))
        .layer(layer::WireLayer)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(authorizer))
}

// === impl Running ===

impl Running {
    /// Binds every listener and starts serving; the bundle loads in the background.
    pub async fn start(config: &ServeConfig, options: Options) -> Result<Running> {
        let handle = metrics::install();
        if let Some(h) = handle.clone() {
            tokio::spawn(metrics::upkeep(h));
        }
        let store = Arc::new(Store::new());
        let (health, health_svc) = tonic_health::server::health_reporter();
        // HealthReporter starts with "" SERVING: readiness follows the bundle, so say NOT_SERVING now.
        set_health(&health, ServingStatus::NotServing).await;
        let svc = AuthorizerService::new(store.clone(), options.evaluator);
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let stop = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };

        let mut grpc_addr = None;
        if let Some(addr) = config.listen {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("{}: cannot bind `{addr}`", flag::LISTEN))?;
            let local = l.local_addr()?;
            tracing::info!(addr = %local, "gRPC listening (TCP)");
            grpc_addr = Some(local);
            let r = router(health_svc.clone(), svc.clone())?;
            let incoming = TcpListenerStream::new(l);
            let rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                r.serve_with_incoming_shutdown(incoming, stop(rx))
                    .await
                    .context("gRPC TCP server")
            }));
        }
        if let Some(path) = &config.uds {
            if std::fs::symlink_metadata(path).is_ok() {
                std::fs::remove_file(path)
                    .with_context(|| format!("{}: cannot replace `{}`", flag::UDS, path.display()))?;
            }
            let l =
                UnixListener::bind(path).with_context(|| format!("{}: cannot bind `{}`", flag::UDS, path.display()))?;
            tracing::info!(path = %path.display(), "gRPC listening (Unix socket)");
            let r = router(health_svc.clone(), svc.clone())?;
            let incoming = UnixListenerStream::new(l);
            let rx = rx.clone();
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                let r = r
                    .serve_with_incoming_shutdown(incoming, stop(rx))
                    .await
                    .context("gRPC Unix-socket server");
                let _ = std::fs::remove_file(&path);
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
            let app = admin::router(store.clone(), handle);
            let rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                axum::serve(l, app)
                    .with_graceful_shutdown(stop(rx))
                    .await
                    .context("admin HTTP server")
            }));
        }
        if options.load_bundle {
            let (store, health, source) = (store.clone(), health.clone(), config.bundle.clone());
            tokio::spawn(async move {
                load_and_activate(&store, &health, &source).await;
            });
        }
        Ok(Running {
            grpc_addr,
            uds: config.uds.clone(),
            admin_addr,
            store,
            health,
            shutdown,
            tasks,
            grace: config.shutdown_grace,
        })
    }

    /// Graceful shutdown: health NOT_SERVING, stop accepting, drain in-flight calls for at most the
    /// grace period. Returns whether everything drained in time.
    pub async fn shutdown(self) -> bool {
        set_health(&self.health, ServingStatus::NotServing).await;
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
        match tokio::time::timeout(self.grace, all).await {
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
    let running = Running::start(&config, Options::default()).await?;
    shutdown_signal().await;
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
