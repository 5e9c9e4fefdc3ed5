//! The admin HTTP listener (loopback by default): `/metrics` (Prometheus text), `/healthz` (process
//! alive), `/readyz` (200 only with an active bundle), `/v1/status` (the BundleStatus as JSON).
use crate::grpc::authorize::bundle_status;
use crate::store::Store;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

#[derive(Clone)]
struct AdminState {
    store: Arc<Store>,
    metrics: Option<PrometheusHandle>,
}

/// The admin router.
pub fn router(store: Arc<Store>, metrics: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/v1/status", get(status))
        .with_state(AdminState { store, metrics })
}

async fn metrics_text(State(s): State<AdminState>) -> impl IntoResponse {
    match s.metrics {
        Some(h) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            "metrics recorder not installed\n".to_owned(),
        ),
    }
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    match s.store.load() {
        Some(a) => (StatusCode::OK, format!("ready {}\n", a.bundle.revision)),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no policy bundle is active\n".to_owned(),
        ),
    }
}

async fn status(State(s): State<AdminState>) -> impl IntoResponse {
    let body =
        serde_json::to_string_pretty(&bundle_status(&s.store)).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    ([(header::CONTENT_TYPE, "application/json")], body + "\n")
}
