//! The admin HTTP listener (loopback by default): `/metrics` (Prometheus text), `/healthz` (process
//! alive), `/readyz` (200 only with an active bundle), `/v1/status` (the BundleStatus as JSON).
use super::Shared;
use crate::config::AdminToken;
use crate::grpc::authorize::bundle_status;
use crate::runtime::activation::AdminChangeError;
use crate::runtime::store::Store;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use subtle::ConstantTimeEq as _;
use warden_core::identity::RevokeError;

#[derive(Clone)]
struct AdminState {
    store: Arc<Store>,
    metrics: Option<PrometheusHandle>,
    shared: Arc<Shared>,
    token: Option<Arc<AdminToken>>,
}

/// The admin router. Reads are open; mutations need `Authorization: Bearer <token>` with the token
/// of `--admin-token-file` (compared in constant time) and `Content-Type: application/json`; without a
/// token file, mutations are off (403).
pub fn router(
    store: Arc<Store>,
    metrics: Option<PrometheusHandle>,
    shared: Arc<Shared>,
    token: Option<AdminToken>,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/v1/status", get(status))
        .route("/v1/admins", get(admins))
        .route("/v1/admins/revoke", post(revoke))
        .with_state(AdminState { store, metrics, shared, token: token.map(Arc::new) })
}

/// Why a mutation is refused before its body is read.
fn refuse_mutation(s: &AdminState, headers: &HeaderMap) -> Option<(StatusCode, String)> {
    let Some(token) = &s.token else {
        return Some((
            StatusCode::FORBIDDEN,
            format!("admin mutations are off: start the server with {}\n", crate::config::flag::ADMIN_TOKEN_FILE),
        ));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer ")).unwrap_or_default();
    // Constant time over the token's length (the length itself is not secret).
    if given.len() != token.0.len() || !bool::from(given.ct_eq(&token.0)) {
        return Some((StatusCode::UNAUTHORIZED, "missing or wrong `Authorization: Bearer` token\n".to_owned()));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return Some((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be `Content-Type: application/json`\n".to_owned(),
        ));
    }
    None
}

async fn admins(State(s): State<AdminState>) -> impl IntoResponse {
    match s.store.load() {
        Some(a) => match serde_json::to_string_pretty(&*a.admins) {
            Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body + "\n"),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain")], format!("{e}\n")),
        },
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain")],
            "no policy bundle is active\n".to_owned(),
        ),
    }
}

/// `POST /v1/admins/revoke` body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Partner app ARN.
    pub app_arn: String,
    /// The remembered admin to revoke.
    pub user_name: String,
}

async fn revoke(State(s): State<AdminState>, headers: HeaderMap, body: axum::body::Bytes) -> impl IntoResponse {
    if let Some(refused) = refuse_mutation(&s, &headers) {
        return refused;
    }
    let req: RevokeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("body must be {{\"app_arn\": …, \"user_name\": …}}: {e}\n"));
        }
    };
    // A task of its own: a client that hangs up must not cancel a revoke between its write and its
    // swap (the state on disk would get ahead of the memory).
    let shared = s.shared.clone();
    let (app, user) = (req.app_arn.clone(), req.user_name.clone());
    match tokio::spawn(async move { shared.revoke_admin(&app, &user).await }).await {
        Ok(Ok(())) => (StatusCode::OK, format!("revoked `{}` on `{}`\n", req.user_name, req.app_arn)),
        Ok(Err(e)) => (status_of(&e), format!("{e}\n")),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("the revoke task failed: {e}\n")),
    }
}

async fn metrics_text(State(s): State<AdminState>) -> impl IntoResponse {
    match s.metrics {
        Some(h) => {
            let revision = s.store.load().map(|a| a.bundle.revision.clone());
            crate::telemetry::metrics::collect_process();
            let mut text = h.render();
            if !text.ends_with('\n') && !text.is_empty() {
                text.push('\n');
            }
            text.push('\n');
            text.push_str(&crate::telemetry::metrics::bundle_info_text(revision.as_deref()));
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
        }
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
        None => (StatusCode::SERVICE_UNAVAILABLE, "not ready: no policy bundle is active\n".to_owned()),
    }
}

async fn status(State(s): State<AdminState>) -> impl IntoResponse {
    let body =
        serde_json::to_string_pretty(&bundle_status(&s.store)).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    ([(header::CONTENT_TYPE, "application/json")], body + "\n")
}

/// The HTTP status of a refused admin change, by kind: an unknown app or admin is 404, no bundle yet
/// or shutdown under way is 503, a state that cannot be written is 500 (a disk error is not a 404).
fn status_of(e: &AdminChangeError) -> StatusCode {
    match e {
        AdminChangeError::NoBundle | AdminChangeError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        AdminChangeError::Revoke(RevokeError::UnknownApp { .. } | RevokeError::NotRemembered { .. }) => {
            StatusCode::NOT_FOUND
        }
        AdminChangeError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
