//! A tower layer around every gRPC service: echoes `x-request-id`, counts calls to unknown methods under `rpc="unknown"`,
//! and answers a request over the size limit with RESOURCE_EXHAUSTED naming the limit (tonic's codec
//! says OUT_OF_RANGE; SPEC §7 says the request is refused as too large).
use crate::config::MAX_MESSAGE_BYTES;
use crate::telemetry::metrics::{self, Rpc};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::codegen::http;
use tower::{Layer, Service};

/// The layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireLayer;

impl<S> Layer<S> for WireLayer {
    type Service = Wire<S>;
    fn layer(&self, inner: S) -> Wire<S> {
        Wire { inner }
    }
}

/// The service.
#[derive(Debug, Clone)]
pub struct Wire<S> {
    inner: S,
}

fn known(path: &str) -> bool {
    matches!(
        path,
        "/warden.v1.Authorizer/Authorize"
            | "/warden.v1.Authorizer/AuthorizeBatch"
            | "/warden.v1.Authorizer/GetBundleStatus"
            | "/warden.v1.Authorizer/PropagateIdentity"
            | "/grpc.health.v1.Health/Check"
            | "/grpc.health.v1.Health/Watch"
            | "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
            | "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    )
}

impl<S, B, RB> Service<http::Request<B>> for Wire<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let unknown = !known(req.uri().path());
        let request_id = req.headers().get("x-request-id").cloned();
        // Take the service that was driven to readiness; leave a clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut resp = inner.call(req).await?;
            if unknown {
                metrics::request(Rpc::Unknown, tonic::Code::Unimplemented);
            }
            let h = resp.headers_mut();
            // Echo `x-request-id` even on answers no handler wrote (size limit, unknown method).
            if let Some(id) = request_id
                && !h.contains_key("x-request-id")
            {
                h.insert("x-request-id", id);
            }
            let too_large = h.get("grpc-status").is_some_and(|v| v == "11")
                && h.get("grpc-message").and_then(|v| v.to_str().ok()).is_some_and(|m| {
                    m.contains("message%20length%20too%20large") || m.contains("message length too large")
                });
            if too_large {
                h.insert("grpc-status", http::HeaderValue::from_static("8"));
                let msg = format!("request message over the limit of {MAX_MESSAGE_BYTES} bytes");
                if let Ok(v) = http::HeaderValue::from_str(&msg.replace(' ', "%20")) {
                    h.insert("grpc-message", v);
                }
            }
            Ok(resp)
        })
    }
}
