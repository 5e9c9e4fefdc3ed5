//! A tower layer around every gRPC service, the one place calls are counted:
//! - `warden_requests_total{rpc, code}` for every call: the `rpc` label is derived from the request
//!   path (`/warden.v1.Authorizer/AuthorizeBatch` → `authorize_batch`, other services with a short
//!   prefix, see [`rpc_label`]), so a new RPC is counted without editing a list; a path the server
//!   does not implement (answered UNIMPLEMENTED) is `rpc="unknown"`, which keeps the label set closed.
//!   The code is read from `grpc-status`: in the headers of a trailers-only answer, else in the
//!   trailers at the end of the body; a body dropped before its trailers (the client went away) is
//!   counted as CANCELLED.
//! - A request over the size limit gets RESOURCE_EXHAUSTED naming the limit. Recognised by code:
//!   tonic's codec answers OUT_OF_RANGE, trailers-only, before any handler runs, and no Warden handler
//!   ever answers OUT_OF_RANGE (`grpc::status` has no constructor for it).
//! - `x-request-id` is echoed on every answer, including those no handler wrote.
//! - DATA chunks of 256 B–1 KiB are split into pieces under h2's `CHAIN_THRESHOLD`, so a unary answer
//!   goes out in one write ([`super::split`]); outside `connections::Tracked`, which keeps counting a
//!   chunk pending until its last piece is taken.
use crate::config::MAX_MESSAGE_BYTES;
use crate::server::split::Split;
use crate::telemetry::metrics;
use http_body::{Body, Frame, SizeHint};
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

/// The label prefix of each service Warden serves; the method name, in snake case, follows it.
/// Only services are listed here, never methods.
fn service_prefix(service: &str) -> Option<&'static str> {
    match service {
        "warden.v1.Authorizer" => Some(""),
        "grpc.health.v1.Health" => Some("health_"),
        "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection" => Some("reflection_"),
        "envoy.service.auth.v3.Authorization" => Some("ext_authz_"),
        _ => None,
    }
}

/// The `rpc` label of a request path: `/warden.v1.Authorizer/GetBundleStatus` → `get_bundle_status`,
/// `/grpc.health.v1.Health/Check` → `health_check`; `None` for a path of no known service or a
/// method name that is not a plain identifier.
pub fn rpc_label(path: &str) -> Option<String> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let prefix = service_prefix(service)?;
    if method.is_empty() || method.len() > 64 || !method.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let mut out = String::with_capacity(prefix.len() + method.len() + 4);
    out.push_str(prefix);
    for (i, c) in method.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The gRPC code of a `grpc-status` value.
fn code_of(v: &http::HeaderValue) -> tonic::Code {
    v.to_str().ok().and_then(|s| s.parse::<i32>().ok()).map_or(tonic::Code::Unknown, tonic::Code::from_i32)
}

/// Counts one finished call.
fn count(rpc: Option<&str>, code: tonic::Code) {
    // Only implemented methods get their own label: anything answered UNIMPLEMENTED is `unknown`.
    let rpc = match rpc {
        Some(r) if code != tonic::Code::Unimplemented => r,
        _ => "unknown",
    };
    metrics::request_label(rpc, code);
}

impl<S, B> Service<http::Request<B>> for Wire<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let rpc = rpc_label(req.uri().path());
        let request_id = req.headers().get("x-request-id").cloned();
        // Take the service that was driven to readiness; leave a clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let resp = inner.call(req).await?;
            let (mut parts, body) = resp.into_parts();
            let h = &mut parts.headers;
            // Echo `x-request-id` even on answers no handler wrote (size limit, unknown method).
            if let Some(id) = request_id
                && !h.contains_key("x-request-id")
            {
                h.insert("x-request-id", id);
            }
            // A trailers-only answer carries its status in the headers.
            if let Some(code) = h.get("grpc-status").map(code_of) {
                let code = if code == tonic::Code::OutOfRange {
                    // Only tonic's codec answers OUT_OF_RANGE (the request message is over the limit).
                    h.insert("grpc-status", http::HeaderValue::from_static("8"));
                    let msg = format!("request message over the limit of {MAX_MESSAGE_BYTES} bytes");
                    if let Ok(v) = http::HeaderValue::from_str(&msg.replace(' ', "%20")) {
                        h.insert("grpc-message", v);
                    }
                    tonic::Code::ResourceExhausted
                } else {
                    code
                };
                count(rpc.as_deref(), code);
                return Ok(http::Response::from_parts(parts, body));
            }
            let counted = Counted { inner: body, rpc: Some(rpc) };
            Ok(http::Response::from_parts(parts, tonic::body::Body::new(Split::new(counted))))
        })
    }
}

/// A response body that counts its call when the trailers pass (or when it is dropped without them).
struct Counted {
    inner: tonic::body::Body,
    /// The label, until the call is counted.
    rpc: Option<Option<String>>,
}

impl Counted {
    fn finish(&mut self, code: tonic::Code) {
        if let Some(rpc) = self.rpc.take() {
            count(rpc.as_deref(), code);
        }
    }
}

impl Body for Counted {
    type Data = <tonic::body::Body as Body>::Data;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(t) = frame.trailers_ref() {
                    let code = t.get("grpc-status").map_or(tonic::Code::Unknown, code_of);
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(tonic::Code::Internal),
            Poll::Ready(None) => self.finish(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // The client went away before the answer ended.
        self.finish(tonic::Code::Cancelled);
    }
}

#[cfg(test)]
mod tests {
    use super::rpc_label;

    #[test]
    fn rpc_labels_are_derived_from_the_path() {
        let cases = [
            ("/warden.v1.Authorizer/Authorize", Some("authorize")),
            ("/warden.v1.Authorizer/AuthorizeBatch", Some("authorize_batch")),
            ("/warden.v1.Authorizer/GetBundleStatus", Some("get_bundle_status")),
            ("/warden.v1.Authorizer/PropagateIdentity", Some("propagate_identity")),
            ("/warden.v1.Authorizer/SomeFutureRpc", Some("some_future_rpc")),
            ("/grpc.health.v1.Health/Check", Some("health_check")),
            ("/grpc.health.v1.Health/Watch", Some("health_watch")),
            ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", Some("reflection_server_reflection_info")),
            ("/envoy.service.auth.v3.Authorization/Check", Some("ext_authz_check")),
            ("/no.such.Service/Authorize", None),
            ("/warden.v1.Authorizer/", None),
            ("/warden.v1.Authorizer/Author%20ize", None),
            ("/warden.v1.Authorizer/Authorize/extra", None),
            ("warden.v1.Authorizer/Authorize", None),
            ("/", None),
            ("", None),
        ];
        for (path, want) in cases {
            assert_eq!(rpc_label(path).as_deref(), want, "{path}");
        }
    }
}
