//! `Authorize` and ext_authz `Check` answered in front of tonic's router.
//!
//! A gateway asks the same question again and again (the same principal opening the same app from the
//! same address). The decision cache already skips the evaluation, but each call still went through
//! tonic's per-call machinery, decoded the request, validated and converted it, looked it up, built the
//! reply and encoded it: most of a cached call's server CPU. [`AnswersLayer`] (inside the connection
//! layer, in front of tonic's router) reads the request message of every `Authorize` and `Check` call:
//!
//! - **`Authorize`**: once a request's decision comes from the decision cache, its handler also keeps
//!   the **encoded reply** in the same cache, keyed by the request's exact bytes
//!   ([`DecisionCache::store_answer`]). When a kept reply matches a request's bytes exactly (compared in
//!   full, not only by hash) in the active snapshot, the layer answers from it: the kept reply with a
//!   fresh decision id, `grpc-status: 0` in the trailers, the metrics and the decision-log line.
//!   Otherwise tonic's handler answers, as before.
//! - **`Check`**: the layer decodes the `CheckRequest` and answers it itself with the handler's own
//!   code (`ExtAuthzService::check_inner`: the same answer, metrics and decision-log line); bytes that
//!   are not a `CheckRequest` go to tonic for its INVALID_ARGUMENT. Envoy's requests are never
//!   byte-identical (a request id and a time in each), so an allow is kept instead for what its route
//!   read (`ext_authz::kept_key`: the mapped request and the admin memory's version).
//!
//! The wire layer's handling (request id echo, call count, one write) applies to these answers as to
//! any other. What this keeps exact:
//! - **The reply** is byte for byte what the handler would send: prost writes fields in tag order and
//!   `decision_id` has the highest tag (7), so the kept reply is encoded without it and the id is
//!   appended as the last field ([`splice`]); `cached` is true, as for any decision-cache hit. Headers
//!   and trailers are tonic's (`content-type`, `grpc-status`; errors trailers-only, as
//!   `Status::into_http` makes them).
//! - **Nothing stale**: kept answers live in the snapshot's cache, which a reload replaces with the
//!   snapshot; a decision that reads the time is never cached, so it is never kept either; `explain`
//!   replies are never cached; a kept `Check` allow is keyed by the admin memory's version, which a
//!   revoke changes.
//! - **Bounds**: kept answers share the cache's entry bound and byte budget and its CLOCK eviction
//!   (`runtime::cache`). The layer reads a body to its end only while it is DATA and within
//!   [`MAX_FRAMES`] frames and the message size limit (tonic holds as much of a request before it
//!   decodes it, under the same 30 s timeout), and looks up only one whole uncompressed message.
//!   Anything else (trailers, a compressed or truncated message, more data, a failed read) goes to
//!   tonic as it came, frame for frame, read or not.
use super::authorize::{AuthorizerService, proto_decision_label};
use super::ext_authz::{Answered, ExtAuthzService};
use crate::proto;
use crate::runtime::cache::{Answer, AnswerLog, DecisionCache};
use crate::telemetry::decision_log::{self, Record};
use crate::telemetry::metrics::{self, Rpc};
use bytes::{BufMut, Bytes, BytesMut};
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use http_body::{Body, Frame, SizeHint};
use prost::Message;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::http;
use tower::{Layer, Service};

/// The path of `Authorize`, answered here from kept replies.
pub const AUTHORIZE_PATH: &str = "/warden.v1.Authorizer/Authorize";

/// The path of ext_authz `Check`, answered here in full.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// The tag byte of `AuthorizeResponse.decision_id` (field 7, length-delimited).
const DECISION_ID_TAG: u8 = (7 << 3) | 2;

/// The bytes of an `Authorize` request message (without the gRPC frame head), put into the request's
/// extensions by [`AnswersLayer`] for the handler, which keeps the reply for them when its decision
/// came from the decision cache.
#[derive(Debug, Clone)]
pub struct RawAuthorize(pub Bytes);

/// Keeps the reply `out` to the request bytes `raw` in `cache`, when it is a decision-cache hit (so it
/// reads no time and was not explained). `log` is what the decision log writes of the request, when
/// decisions are logged.
pub fn remember(
    cache: &DecisionCache,
    raw: &[u8],
    out: &proto::AuthorizeResponse,
    log: Option<(String, String, String)>,
) {
    if !out.cached || !out.trace.is_empty() {
        return;
    }
    let mut reply = out.clone();
    reply.decision_id.clear();
    let log = log.map(|(principal, action, resource)| AnswerLog {
        principal,
        action,
        resource,
        determining: super::authorize::determining_strings(&out.determining),
    });
    cache.store_answer(
        raw,
        Answer { encoded: Bytes::from(reply.encode_to_vec()), decision: proto_decision_label(out.decision()), log },
    );
}

/// The gRPC message of the reply `encoded` (kept without its decision id) with `decision_id` as its
/// last field: the frame head (uncompressed, length) and the message.
pub fn splice(encoded: &[u8], decision_id: &str) -> Bytes {
    let id_len = u64::try_from(decision_id.len()).unwrap_or(u64::MAX);
    let field_len =
        if decision_id.is_empty() { 0 } else { 1 + prost::encoding::encoded_len_varint(id_len) + decision_id.len() };
    let len = encoded.len() + field_len;
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    buf.put_slice(encoded);
    if !decision_id.is_empty() {
        buf.put_u8(DECISION_ID_TAG);
        prost::encoding::encode_varint(id_len, &mut buf);
        buf.put_slice(decision_id.as_bytes());
    }
    buf.freeze()
}

/// The message of a gRPC request body that arrived as the single DATA frame `data`: uncompressed, its
/// length exactly the rest of the frame.
fn whole_message(data: &Bytes) -> Option<Bytes> {
    let (head, rest) = data.split_first_chunk::<5>()?;
    let [flag, len @ ..] = *head;
    let len = usize::try_from(u32::from_be_bytes(len)).ok()?;
    (flag == 0 && len == rest.len()).then(|| data.slice(5..))
}

/// Whether the request's message may be compressed (then it is left to tonic).
fn compressed(headers: &http::HeaderMap) -> bool {
    headers.get("grpc-encoding").is_some_and(|v| v.as_bytes() != b"identity")
}

// === layer ===

/// The layer (see the module docs).
#[derive(Clone)]
pub struct AnswersLayer {
    svc: AuthorizerService,
    ext: ExtAuthzService,
}

impl AnswersLayer {
    /// Answers from the snapshots, decision ids and decision log of `svc`.
    pub fn new(svc: AuthorizerService) -> AnswersLayer {
        AnswersLayer { ext: ExtAuthzService::new(svc.clone()), svc }
    }
}

impl<S> Layer<S> for AnswersLayer {
    type Service = Answers<S>;
    fn layer(&self, inner: S) -> Answers<S> {
        Answers { inner, svc: self.svc.clone(), ext: self.ext.clone() }
    }
}

/// The service of [`AnswersLayer`].
#[derive(Clone)]
pub struct Answers<S> {
    inner: S,
    svc: AuthorizerService,
    ext: ExtAuthzService,
}

/// The methods answered here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Authorize,
    Check,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<tonic::body::Body>> for Answers<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = futures_either::Either<S::Future, BoxFuture<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let method = match req.uri().path() {
            AUTHORIZE_PATH => Method::Authorize,
            CHECK_PATH => Method::Check,
            _ => return futures_either::Either::Left(self.inner.call(req)),
        };
        if compressed(req.headers()) {
            return futures_either::Either::Left(self.inner.call(req));
        }
        // Take the service that was driven to readiness; leave a clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let svc = self.svc.clone();
        let ext = self.ext.clone();
        futures_either::Either::Right(Box::pin(async move {
            let started = Instant::now();
            let (mut parts, body) = req.into_parts();
            let read = read_request(body).await;
            if let Some(message) = read.message() {
                match method {
                    Method::Authorize => {
                        if let Some(resp) = answer(&svc, &parts.headers, &message, started) {
                            return Ok(resp);
                        }
                        parts.extensions.insert(RawAuthorize(message));
                    }
                    // Bytes that are not a `CheckRequest` get tonic's INVALID_ARGUMENT (grpc::codec).
                    Method::Check => {
                        if let Ok(check) = CheckRequest::decode(message) {
                            return Ok(check_answer(&ext, &parts.headers, check));
                        }
                    }
                }
            }
            inner.call(http::Request::from_parts(parts, tonic::body::Body::new(read.replay()))).await
        }))
    }
}

/// At most this many request frames are read ahead; a request of more goes to tonic as it comes.
const MAX_FRAMES: usize = 8;

/// What [`read_request`] read of a request body.
struct Read {
    /// The frames read, in order (a failure last).
    frames: std::collections::VecDeque<Result<Frame<Bytes>, tonic::Status>>,
    /// The rest of the body; `None` once it ended.
    rest: Option<tonic::body::Body>,
}

/// Reads a request body to its end, unless it holds more than [`MAX_FRAMES`] frames, or anything but
/// DATA, or more than the one uncompressed message within `MAX_MESSAGE_BYTES` its first frame announces,
/// or fails (then it stops there). Clients send a
/// unary request as one DATA frame ending the stream (h2load, grpc-go) or followed by an empty one
/// that does (tonic, hyper).
async fn read_request(mut body: tonic::body::Body) -> Read {
    let mut frames = std::collections::VecDeque::new();
    let mut bytes = 0usize;
    loop {
        if body.is_end_stream() {
            return Read { frames, rest: None };
        }
        if frames.len() >= MAX_FRAMES {
            break;
        }
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => return Read { frames, rest: None },
            Some(Ok(f)) => {
                let data = f.data_ref().map(Bytes::len);
                frames.push_back(Ok(f));
                match data {
                    Some(n) => bytes = bytes.saturating_add(n),
                    None => break,
                }
                // The frame head says what is coming: no reading ahead for a message that is compressed
                // or over the limit (tonic refuses it at once), or past the one message announced.
                let announced = frames.front().and_then(|f| f.as_ref().ok()).and_then(Frame::data_ref).and_then(|d| {
                    match d.first_chunk::<5>() {
                        Some([0, len @ ..]) => usize::try_from(u32::from_be_bytes(*len)).ok(),
                        _ => None,
                    }
                });
                match announced {
                    Some(len) if len <= crate::config::MAX_MESSAGE_BYTES && bytes <= len + 5 => {}
                    // A first frame under 5 bytes is not looked up either.
                    _ if bytes == 0 => {}
                    _ => break,
                }
            }
            Some(Err(e)) => {
                frames.push_back(Err(e));
                break;
            }
        }
    }
    Read { frames, rest: Some(body) }
}

impl Read {
    /// The request message, when the body ended after DATA frames only that hold exactly one whole,
    /// uncompressed message.
    fn message(&self) -> Option<Bytes> {
        if self.rest.is_some() {
            return None;
        }
        let mut data = self.frames.iter().map(|f| f.as_ref().ok().and_then(Frame::data_ref));
        let mut non_empty =
            self.frames.iter().filter_map(|f| f.as_ref().ok().and_then(Frame::data_ref)).filter(|d| !d.is_empty());
        if data.any(|d| d.is_none()) {
            return None;
        }
        match (non_empty.next(), non_empty.next()) {
            (Some(only), None) => whole_message(only),
            (Some(_), Some(_)) => {
                let mut all = BytesMut::new();
                for d in self.frames.iter().filter_map(|f| f.as_ref().ok().and_then(Frame::data_ref)) {
                    all.extend_from_slice(d);
                }
                whole_message(&all.freeze())
            }
            (None, _) => None,
        }
    }

    /// The body as it came: the frames read, then the rest.
    fn replay(self) -> Replay {
        Replay { frames: self.frames, rest: self.rest }
    }
}

/// The reply kept for `message` in the active snapshot, as the HTTP response, with the call's metrics
/// and decision-log line; `None` when there is none.
fn answer(
    svc: &AuthorizerService,
    headers: &http::HeaderMap,
    message: &[u8],
    started: Instant,
) -> Option<http::Response<tonic::body::Body>> {
    let active = svc.active().ok()?;
    let kept = active.cache.answer(message)?;
    let decision_id = svc.next_decision_id();
    let data = splice(&kept.encoded, &decision_id);
    metrics::decision(Rpc::Authorize, kept.decision, started.elapsed());
    if let Some(log) = &kept.log
        && svc.logs()
    {
        svc.log_record(Record {
            time: decision_log::now_rfc3339(),
            decision_id,
            request_id: headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned),
            rpc: Rpc::Authorize.as_str(),
            principal: log.principal.clone(),
            action: log.action.clone(),
            resource: log.resource.clone(),
            decision: kept.decision,
            code: metrics::code_name(tonic::Code::Ok),
            message: None,
            determining: log.determining.clone(),
            revision: active.bundle.revision.clone(),
            latency_us: super::authorize::latency_us(started),
            cached: true,
            propagation: None,
            http: None,
        });
    }
    Some(grpc_reply(data))
}

/// A `Check` answered in full, as tonic's handler answers it (the same `check_inner`): the reply, or
/// the error status trailers-only.
fn check_answer(
    ext: &ExtAuthzService,
    headers: &http::HeaderMap,
    check: CheckRequest,
) -> http::Response<tonic::body::Body> {
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    match ext.check_answer(check, request_id, true) {
        Ok(Answered::Framed(data)) => grpc_reply(data),
        Ok(Answered::Reply(reply)) => {
            let len = reply.encoded_len();
            if len > crate::config::MAX_MESSAGE_BYTES {
                // What tonic answers for a reply over `max_encoding_message_size` (never seen: a reply
                // holds a few headers).
                let msg = format!(
                    "Error, encoded message length too large: found {len} bytes, the limit is: {} bytes",
                    crate::config::MAX_MESSAGE_BYTES
                );
                return tonic::Status::out_of_range(msg).into_http();
            }
            let mut buf = BytesMut::with_capacity(5 + len);
            buf.put_u8(0);
            buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
            if reply.encode(&mut buf).is_err() {
                return tonic::Status::internal("encoding the reply failed").into_http();
            }
            grpc_reply(buf.freeze())
        }
        Err(status) => status.into_http(),
    }
}

/// A unary gRPC answer of the framed message `data`: `content-type`, the DATA, `grpc-status: 0`.
fn grpc_reply(data: Bytes) -> http::Response<tonic::body::Body> {
    let mut resp = http::Response::new(tonic::body::Body::new(Reply { data: Some(data), trailers: true }));
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
    resp
}

// === bodies ===

/// A kept reply: one DATA frame, then the trailers `grpc-status: 0`.
struct Reply {
    data: Option<Bytes>,
    trailers: bool,
}

impl Body for Reply {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if std::mem::take(&mut self.trailers) {
            let mut t = http::HeaderMap::with_capacity(1);
            t.insert("grpc-status", http::HeaderValue::from_static("0"));
            return Poll::Ready(Some(Ok(Frame::trailers(t))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && !self.trailers
    }

    // No exact size hint: hyper would turn it into a `content-length` header, which tonic's answers
    // do not have.
}

/// A request body some frames of which were already read: those frames, then the rest.
struct Replay {
    frames: std::collections::VecDeque<Result<Frame<Bytes>, tonic::Status>>,
    rest: Option<tonic::body::Body>,
}

impl Body for Replay {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(f) = self.frames.pop_front() {
            return Poll::Ready(Some(f));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 =
            self.frames.iter().filter_map(|f| f.as_ref().ok().and_then(Frame::data_ref)).map(|d| d.len() as u64).sum();
        let rest = self.rest.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        let mut h = SizeHint::new();
        h.set_lower(rest.lower().saturating_add(read));
        if let Some(u) = rest.upper() {
            h.set_upper(u.saturating_add(read));
        }
        h
    }
}

/// `Either` of two futures with the same output (tower's own `Either` is a service, not a future).
mod futures_either {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pin_project_lite::pin_project! {
        /// One of two futures.
        #[project = EitherProj]
        pub enum Either<A, B> {
            Left { #[pin] a: A },
            Right { #[pin] b: B },
        }
    }

    #[expect(non_snake_case, reason = "constructors named like the variants")]
    impl<A, B> Either<A, B> {
        pub fn Left(a: A) -> Self {
            Either::Left { a }
        }
        pub fn Right(b: B) -> Self {
            Either::Right { b }
        }
    }

    impl<A: Future, B: Future<Output = A::Output>> Future for Either<A, B> {
        type Output = A::Output;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<A::Output> {
            match self.project() {
                EitherProj::Left { a } => a.poll(cx),
                EitherProj::Right { b } => b.poll(cx),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::store::Store;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt as _;
    use warden_core::identity::AdminMemory;

    /// The request of `bench/requests/allow_presign.json`: an ALLOW on the default bundle.
    fn allow() -> proto::AuthorizeRequest {
        serde_json::from_value(serde_json::json!({
            "principal": {"arn": "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1"},
            "action": "sagemaker:CreatePartnerAppPresignedUrl",
            "resource": "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001",
            "context": {"aws:SourceIp": "10.100.10.7"}
        }))
        .unwrap()
    }

    fn store(files: Vec<(String, Vec<u8>)>) -> Arc<Store> {
        let store = Arc::new(Store::new());
        let bundle = warden_core::bundle::from_files(files).unwrap();
        store.activate(Arc::new(bundle), AdminMemory::default(), "test".into());
        store
    }

    /// A request body of the given DATA frames (and trailers): ending with the last of them, or never
    /// (`hang`: after them it stays pending).
    struct Frames {
        frames: std::collections::VecDeque<Frame<Bytes>>,
        hang: bool,
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = tonic::Status;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.frames.pop_front() {
                Some(f) => Poll::Ready(Some(Ok(f))),
                None if self.hang => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
        fn is_end_stream(&self) -> bool {
            self.frames.is_empty() && !self.hang
        }
    }

    fn framed(msg: &[u8]) -> Vec<u8> {
        let mut v = vec![0];
        v.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_be_bytes());
        v.extend_from_slice(msg);
        v
    }

    fn call_of(
        frames: Vec<Frame<Bytes>>,
        headers: &[(&'static str, &'static str)],
    ) -> http::Request<tonic::body::Body> {
        let mut r = http::Request::post(format!("http://127.0.0.1{AUTHORIZE_PATH}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.body(tonic::body::Body::new(Frames { frames: frames.into(), hang: false })).unwrap()
    }

    /// One call: the answer's headers, its DATA concatenated, its trailers.
    async fn send<S>(
        stack: &mut S,
        req: http::Request<tonic::body::Body>,
    ) -> (http::HeaderMap, Vec<u8>, http::HeaderMap)
    where
        S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>,
        S::Error: std::fmt::Debug,
    {
        let resp = stack.ready().await.unwrap().call(req).await.unwrap();
        let (parts, mut body) = resp.into_parts();
        let (mut data, mut trailers) = (Vec::new(), http::HeaderMap::new());
        while let Some(f) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            let f = f.unwrap();
            match f.into_data() {
                Ok(d) => data.extend_from_slice(&d),
                Err(f) => trailers.extend(f.into_trailers().unwrap()),
            }
        }
        (parts.headers, data, trailers)
    }

    fn reply(data: &[u8]) -> proto::AuthorizeResponse {
        proto::AuthorizeResponse::decode(data.get(5..).unwrap()).unwrap()
    }

    /// `server` (a tonic service), counting the calls that reach it.
    fn counted<S>(
        server: S,
        calls: Arc<AtomicUsize>,
    ) -> impl Service<
        http::Request<tonic::body::Body>,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future = impl Future<Output = Result<http::Response<tonic::body::Body>, std::convert::Infallible>> + Send,
    > + Clone
    + Send
    + 'static
    where
        S: Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send,
    {
        tower::service_fn(move |req| {
            calls.fetch_add(1, Ordering::SeqCst);
            let mut server = server.clone();
            async move { server.call(req).await }
        })
    }

    /// The Authorizer's tonic service, with the server's request size limit.
    fn authorizer(svc: &AuthorizerService) -> proto::authorizer_server::AuthorizerServer<AuthorizerService> {
        proto::authorizer_server::AuthorizerServer::new(svc.clone())
            .max_decoding_message_size(crate::config::MAX_MESSAGE_BYTES)
    }

    #[tokio::test]
    async fn a_repeat_is_answered_from_its_bytes_exactly_as_the_handler_answers_it() {
        let store = store(crate::runtime::files::embedded_files());
        let svc = AuthorizerService::new(store.clone(), warden_core::engine::authorize);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut stack = AnswersLayer::new(svc.clone()).layer(counted(authorizer(&svc), calls.clone()));
        let msg = allow().encode_to_vec();
        let one = || vec![Frame::data(Bytes::from(framed(&msg)))];
        let mut answers = Vec::new();
        for _ in 0..4 {
            answers.push(send(&mut stack, call_of(one(), &[])).await);
        }
        // Evaluated, then a decision-cache hit (which keeps the reply), then twice from the kept reply.
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the last two never reached tonic");
        let replies: Vec<_> = answers.iter().map(|(_, d, _)| reply(d)).collect();
        let cached: Vec<bool> = replies.iter().map(|r| r.cached).collect();
        assert_eq!(cached, [false, true, true, true]);
        let ids: std::collections::BTreeSet<&str> = replies.iter().map(|r| r.decision_id.as_str()).collect();
        assert_eq!(ids.len(), 4, "a fresh decision id each time: {ids:?}");
        let (h2, d2, t2) = &answers[1];
        for (h, d, t) in &answers[2..] {
            assert_eq!(h, h2, "the same headers as tonic's");
            assert_eq!(t, t2, "the same trailers as tonic's");
            assert_eq!(t.get("grpc-status").map(|v| v.as_bytes()), Some(b"0".as_slice()));
            // Byte for byte the handler's encoding, but for the decision id.
            let mut r = reply(d);
            assert_eq!(d.as_slice(), framed(&r.encode_to_vec()).as_slice(), "canonical encoding");
            r.decision_id = replies[1].decision_id.clone();
            assert_eq!(framed(&r.encode_to_vec()), *d2, "the handler's reply with another id");
        }
        // Another request's bytes (a field more) are not this one's.
        let mut other = allow();
        other.explain = true;
        let (_, d, _) =
            send(&mut stack, call_of(vec![Frame::data(Bytes::from(framed(&other.encode_to_vec())))], &[])).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(!reply(&d).trace.is_empty(), "explained");
    }

    #[tokio::test]
    async fn a_new_bundle_never_answers_from_the_old_ones_replies() {
        let files = crate::runtime::files::embedded_files();
        let store = store(files.clone());
        let svc = AuthorizerService::new(store.clone(), warden_core::engine::authorize);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut stack = AnswersLayer::new(svc.clone()).layer(counted(authorizer(&svc), calls.clone()));
        let msg = allow().encode_to_vec();
        let one = || vec![Frame::data(Bytes::from(framed(&msg)))];
        for _ in 0..3 {
            send(&mut stack, call_of(one(), &[])).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let old = store.load().unwrap().bundle.revision.clone();
        // The same policies in another revision (a file more).
        let mut changed = files;
        changed.push(("README.txt".into(), b"a new revision".to_vec()));
        let bundle = warden_core::bundle::from_files(changed).unwrap();
        assert_ne!(bundle.revision, old);
        store.activate(Arc::new(bundle), AdminMemory::default(), "test".into());
        let (_, d, _) = send(&mut stack, call_of(one(), &[])).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3, "evaluated again");
        let r = reply(&d);
        assert_eq!((r.bundle_revision.as_str(), r.cached), (store.load().unwrap().bundle.revision.as_str(), false));
    }

    #[tokio::test]
    async fn split_requests_are_read_whole_and_anything_else_goes_to_tonic_as_it_came() {
        let store = store(crate::runtime::files::embedded_files());
        let svc = AuthorizerService::new(store.clone(), warden_core::engine::authorize);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut stack = AnswersLayer::new(svc.clone()).layer(counted(authorizer(&svc), calls.clone()));
        let bytes = Bytes::from(framed(&allow().encode_to_vec()));
        let (a, b) = (bytes.slice(..7), bytes.slice(7..));
        let status = |h: &http::HeaderMap, t: &http::HeaderMap| {
            t.get("grpc-status").or_else(|| h.get("grpc-status")).map(|v| v.to_str().unwrap().to_owned())
        };
        // In two DATA frames and an empty one (as tonic and hyper send a request): one message, read
        // whole; evaluated, a decision-cache hit, then answered from the kept reply.
        for _ in 0..3 {
            let frames = vec![Frame::data(a.clone()), Frame::data(b.clone()), Frame::data(Bytes::new())];
            let (h, d, t) = send(&mut stack, call_of(frames, &[])).await;
            assert_eq!(status(&h, &t).as_deref(), Some("0"));
            assert_eq!(reply(&d).decision(), proto::Decision::Allow);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let mut expected = 2;
        for _ in 0..3 {
            // Whole, but followed by trailers: tonic's.
            let mut trailers = http::HeaderMap::new();
            trailers.insert("x-extra", http::HeaderValue::from_static("1"));
            let (h, _, t) =
                send(&mut stack, call_of(vec![Frame::data(bytes.clone()), Frame::trailers(trailers)], &[])).await;
            assert_eq!(status(&h, &t).as_deref(), Some("0"));
            // Said to be compressed (tonic refuses it: this server accepts no compression).
            let (h, _, t) =
                send(&mut stack, call_of(vec![Frame::data(bytes.clone())], &[("grpc-encoding", "gzip")])).await;
            assert_ne!(status(&h, &t).as_deref(), Some("0"), "{h:?} {t:?}");
            // Two messages in one body: tonic's (a unary call takes one).
            let two = Bytes::from([bytes.as_ref(), bytes.as_ref()].concat());
            send(&mut stack, call_of(vec![Frame::data(two)], &[])).await;
            expected += 3;
            assert_eq!(calls.load(Ordering::SeqCst), expected);
        }
        assert_eq!(store.load().unwrap().cache.len(), 2, "one decision and one kept reply");
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_not_read_ahead() {
        let store = store(crate::runtime::files::embedded_files());
        let svc = AuthorizerService::new(store.clone(), warden_core::engine::authorize);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut stack = AnswersLayer::new(svc.clone()).layer(counted(authorizer(&svc), calls.clone()));
        // The head announces 2 MiB; the rest never comes. tonic refuses at the head, so must the layer
        // hand it over at once (reading ahead would wait for the rest until the 30 s timeout).
        let mut head = vec![0];
        head.extend_from_slice(&(2u32 << 20).to_be_bytes());
        head.extend_from_slice(&[0; 100]);
        let req = http::Request::post(format!("http://127.0.0.1{AUTHORIZE_PATH}"))
            .header("content-type", "application/grpc")
            .body(tonic::body::Body::new(Frames { frames: vec![Frame::data(Bytes::from(head))].into(), hang: true }))
            .unwrap();
        let resp = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            stack.ready().await.unwrap().call(req).await.unwrap()
        })
        .await
        .expect("answered at once");
        assert_eq!(
            resp.headers().get("grpc-status").map(|v| v.to_str().unwrap()),
            Some("11"),
            "tonic's OUT_OF_RANGE (the wire layer makes it RESOURCE_EXHAUSTED)"
        );
    }

    /// A `CheckRequest` as Envoy sends one: method, host, path, headers, the peer's address.
    fn check_request(path: &str, headers: &[(&str, &str)]) -> CheckRequest {
        use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address};
        use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
        use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
        let peer = SocketAddress { address: "10.100.10.7".into(), ..SocketAddress::default() };
        CheckRequest {
            attributes: Some(AttributeContext {
                source: Some(Peer {
                    address: Some(Address { address: Some(address::Address::SocketAddress(peer)) }),
                    ..Peer::default()
                }),
                request: Some(Request {
                    http: Some(HttpRequest {
                        method: "GET".into(),
                        host: "gateway.example.com".into(),
                        path: path.into(),
                        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                        ..HttpRequest::default()
                    }),
                    ..Request::default()
                }),
                ..AttributeContext::default()
            }),
        }
    }

    const ALICE_TEAM1: &str = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1";
    const COMET: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001";

    fn check_call(frames: Vec<Frame<Bytes>>) -> http::Request<tonic::body::Body> {
        http::Request::post(format!("http://127.0.0.1{CHECK_PATH}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(tonic::body::Body::new(Frames { frames: frames.into(), hang: false }))
            .unwrap()
    }

    fn check_reply(data: &[u8]) -> envoy_types::pb::envoy::service::auth::v3::CheckResponse {
        prost::Message::decode(data.get(5..).unwrap()).unwrap()
    }

    /// The response with its decision id header blanked, and that id.
    fn without_id(
        mut r: envoy_types::pb::envoy::service::auth::v3::CheckResponse,
    ) -> (envoy_types::pb::envoy::service::auth::v3::CheckResponse, String) {
        use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
        let mut id = String::new();
        if let Some(HttpResponse::OkResponse(ok)) = &mut r.http_response {
            for h in ok.headers.iter_mut().filter_map(|h| h.header.as_mut()) {
                if h.key == super::super::ext_authz::DECISION_ID_HEADER {
                    id = std::mem::take(&mut h.value);
                }
            }
        }
        (r, id)
    }

    #[tokio::test]
    async fn a_check_is_answered_in_front_of_tonic_exactly_as_tonic_answers_it() {
        let store = store(crate::runtime::files::embedded_files());
        let svc = AuthorizerService::new(store.clone(), warden_core::engine::authorize);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut stack = AnswersLayer::new(svc.clone()).layer(counted(
            super::super::ext_authz::pb::authorization_server::AuthorizationServer::new(ExtAuthzService::new(
                svc.clone(),
            )),
            calls.clone(),
        ));
        let req = check_request("/apps/app-COMETTEAM001/open", &[("x-amzn-principal-arn", ALICE_TEAM1)]);
        let whole = Bytes::from(framed(&req.encode_to_vec()));
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-extra", http::HeaderValue::from_static("1"));
        // Through tonic (the trailers send it there), then in front of it, then from the kept allow.
        let (h0, d0, t0) =
            send(&mut stack, check_call(vec![Frame::data(whole.clone()), Frame::trailers(trailers)])).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let mut ids = std::collections::BTreeSet::new();
        let (tonic_reply, id) = without_id(check_reply(&d0));
        ids.insert(id);
        for _ in 0..3 {
            let (h, d, t) = send(&mut stack, check_call(vec![Frame::data(whole.clone())])).await;
            assert_eq!((&h, &t), (&h0, &t0), "tonic's headers and trailers");
            let (reply, id) = without_id(check_reply(&d));
            assert_eq!(reply, tonic_reply, "tonic's reply but for the decision id");
            ids.insert(id);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "never reached tonic");
        assert_eq!(ids.len(), 4, "a decision id of its own each time: {ids:?}");
        assert!(ids.iter().all(|i| !i.is_empty()));
        // Bytes that are not a CheckRequest: tonic's INVALID_ARGUMENT.
        let (h, _, t) = send(&mut stack, check_call(vec![Frame::data(Bytes::from(framed(b"\xff\xff\xff")))])).await;
        let status = t.get("grpc-status").or_else(|| h.get("grpc-status")).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(status.as_deref(), Some("3"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_kept_allow_never_outlives_the_admin_memory_or_the_revision() {
        use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
        let files = crate::runtime::files::embedded_files();
        let store = store(files.clone());
        let ext = ExtAuthzService::new(AuthorizerService::new(store.clone(), warden_core::engine::authorize));
        let bob = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/bob-Team1";
        let role = |ext: &ExtAuthzService| {
            let r =
                ext.check_inner(check_request("/apps/app-COMETTEAM001/open", &[("x-amzn-principal-arn", bob)]), None);
            let Some(HttpResponse::OkResponse(ok)) = r.unwrap().http_response else { panic!("not an allow") };
            let h: std::collections::HashMap<String, String> =
                ok.headers.into_iter().filter_map(|h| h.header).map(|h| (h.key, h.value)).collect();
            (h["x-sagemaker-partner-app-user"].clone(), h["x-warden-admin-role"].clone())
        };
        let user = role(&ext).0;
        // Bob, remembered as a former admin of the app: ADMIN, evaluated, then kept and answered from it.
        let mut memory = warden_core::identity::AdminMemory::default();
        memory.apps.entry(COMET.to_owned()).or_default().remembered.insert(user.clone());
        assert!(store.set_admins(memory.clone()));
        for _ in 0..4 {
            assert_eq!(role(&ext), (user.clone(), "ADMIN".to_owned()));
        }
        let active = store.load().unwrap();
        let kept = |a: &crate::runtime::store::Active| {
            let http = super::super::ext_authz::CheckHttp::of(check_request(
                "/apps/app-COMETTEAM001/open",
                &[("x-amzn-principal-arn", bob)],
            ));
            super::super::ext_authz::kept_for_test(a, &http)
        };
        assert!(kept(&active), "the allow was kept");
        // The operator revokes him: the next answer is evaluated against the new memory, not kept.
        assert!(store.set_admins(memory.revoke(COMET, &user).unwrap()));
        assert_eq!(role(&ext), (user.clone(), "USER".to_owned()), "not the allow kept for the old memory");
        // A new revision starts with nothing kept.
        let mut changed = files;
        changed.push(("README.txt".into(), b"a new revision".to_vec()));
        store.activate(Arc::new(warden_core::bundle::from_files(changed).unwrap()), memory, "test".into());
        assert!(!kept(&store.load().unwrap()));
        assert_eq!(role(&ext), (user, "ADMIN".to_owned()));
    }

    #[test]
    fn a_check_whose_decision_reads_the_time_is_never_kept() {
        let user = serde_json::json!({
            "UserName": "alice",
            "Arn": "arn:aws:iam::111122223333:user/alice",
            "UserPolicyList": [{"PolicyName": "P", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Sid": "Always", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
                {"Sid": "UntilNextCentury", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*",
                 "Condition": {"DateLessThan": {"aws:CurrentTime": "2100-01-01T00:00:00Z"}}}
            ]}}]
        });
        let route = |name: &str, action: &str| {
            serde_json::json!({
                "name": name,
                "match": {"path_template": format!("/{name}/{{key}}"), "methods": ["GET"]},
                "principal": {"header": "x-amzn-principal-arn"},
                "action": action,
                "resource": "arn:aws:s3:::reports/{key}"
            })
        };
        let routes = serde_json::json!({"region": "us-east-1", "account": "111122223333", "routes": [
            route("time", "s3:ListBucket"), route("plain", "s3:GetObject")
        ]});
        let store = store(vec![
            ("iam/users/alice.json".into(), user.to_string().into_bytes()),
            ("ext-authz/routes.json".into(), routes.to_string().into_bytes()),
        ]);
        let ext = ExtAuthzService::new(AuthorizerService::new(store.clone(), warden_core::engine::authorize));
        let alice = [("x-amzn-principal-arn", "arn:aws:iam::111122223333:user/alice")];
        for _ in 0..4 {
            let r = ext.check_inner(check_request("/time/q1.csv", &alice), None).unwrap();
            assert_eq!(r.status.map(|s| s.code), Some(0));
        }
        assert_eq!(store.load().unwrap().cache.len(), 0, "neither the decision nor the answer is kept");
        for _ in 0..4 {
            ext.check_inner(check_request("/plain/q1.csv", &alice), None).unwrap();
        }
        assert_eq!(store.load().unwrap().cache.len(), 2, "the control: its decision and the kept allow");
    }

    #[test]
    fn only_cached_unexplained_replies_are_kept() {
        let cache = DecisionCache::new(10);
        let out =
            proto::AuthorizeResponse { decision: proto::Decision::Allow as i32, cached: true, ..Default::default() };
        remember(&cache, b"evaluated", &proto::AuthorizeResponse { cached: false, ..out.clone() }, None);
        remember(&cache, b"explained", &proto::AuthorizeResponse { trace: vec!["step".into()], ..out.clone() }, None);
        assert!(cache.is_empty());
        remember(&cache, b"hit", &out, None);
        let kept = cache.answer(b"hit").expect("kept");
        assert_eq!((kept.decision, kept.log.is_none()), ("allow", true));
        assert!(cache.answer(b"hi").is_none() && cache.answer(b"hit!").is_none(), "exact bytes only");
    }

    #[test]
    fn a_spliced_reply_is_the_handlers_encoding_byte_for_byte() {
        let full = proto::AuthorizeResponse {
            decision: proto::Decision::Allow as i32,
            determining: vec![proto::StatementRef { policy: "p".into(), sid: "S".into(), ..Default::default() }],
            bundle_revision: "sha256:ab".into(),
            cached: true,
            decision_id: "0123456789ab0001-00000001".into(),
            ..Default::default()
        };
        let mut kept = full.clone();
        kept.decision_id.clear();
        let framed = splice(&kept.encode_to_vec(), &full.decision_id);
        let msg = full.encode_to_vec();
        assert_eq!(framed.get(5..), Some(msg.as_slice()));
        assert_eq!(framed.get(..5), Some([0, 0, 0, 0, u8::try_from(msg.len()).unwrap()].as_slice()));
        // A long id (a counter past 32 bits) takes a two-byte length; an empty one is no field at all.
        for id in ["x".repeat(200), String::new()] {
            let full = proto::AuthorizeResponse { decision_id: id.clone(), ..kept.clone() };
            assert_eq!(splice(&kept.encode_to_vec(), &id).get(5..), Some(full.encode_to_vec().as_slice()), "{id}");
        }
    }

    proptest::proptest! {
        /// Any reply, any decision id: the kept encoding with the id spliced in is prost's encoding of
        /// the whole reply, in a frame head that gives its exact length.
        #[test]
        fn splicing_the_id_into_any_reply_is_prosts_encoding(
            decision in 0i32..4,
            determining in proptest::collection::vec(("[a-z/#]{0,24}", "[A-Za-z0-9#]{0,12}"), 0..4),
            revision in "\\PC{0,80}",
            diagnostics in proptest::collection::vec("\\PC{0,40}", 0..3),
            trace in proptest::collection::vec("\\PC{0,40}", 0..2),
            cached: bool,
            id in "\\PC{0,300}",
        ) {
            let full = proto::AuthorizeResponse {
                decision,
                determining: determining
                    .into_iter()
                    .map(|(policy, sid)| proto::StatementRef { policy, sid, ..Default::default() })
                    .collect(),
                bundle_revision: revision,
                diagnostics,
                cached,
                trace,
                decision_id: id.clone(),
            };
            let kept = proto::AuthorizeResponse { decision_id: String::new(), ..full.clone() };
            let framed = splice(&kept.encode_to_vec(), &id);
            let msg = full.encode_to_vec();
            proptest::prop_assert_eq!(framed.get(5..), Some(msg.as_slice()));
            let len = u32::try_from(msg.len()).unwrap().to_be_bytes();
            let head = [0, len[0], len[1], len[2], len[3]];
            proptest::prop_assert_eq!(framed.get(..5), Some(head.as_slice()));
        }

        /// Only a frame head of flag 0 whose length is exactly the rest is one whole message.
        #[test]
        fn a_frame_is_looked_up_only_when_it_is_exactly_one_uncompressed_message(
            body in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..600),
            flag in 0u8..3,
            delta in -3i64..=3,
        ) {
            let claimed = u32::try_from((body.len() as i64 + delta).max(0)).unwrap();
            let mut v = vec![flag];
            v.extend_from_slice(&claimed.to_be_bytes());
            v.extend_from_slice(&body);
            let got = whole_message(&Bytes::from(v));
            let exact = flag == 0 && claimed as usize == body.len();
            proptest::prop_assert_eq!(got.as_deref(), exact.then_some(body.as_slice()));
        }
    }

    #[test]
    fn only_a_whole_uncompressed_message_is_looked_up() {
        let msg = b"\x0a\x03abc";
        let frame = |flag: u8, len: u32, body: &[u8]| {
            let mut v = vec![flag];
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(body);
            Bytes::from(v)
        };
        assert_eq!(whole_message(&frame(0, 5, msg)).as_deref(), Some(msg.as_slice()));
        assert_eq!(whole_message(&frame(0, 0, b"")).as_deref(), Some(b"".as_slice()));
        assert_eq!(whole_message(&frame(1, 5, msg)), None, "compressed");
        assert_eq!(whole_message(&frame(0, 6, msg)), None, "truncated: the rest comes in another frame");
        assert_eq!(whole_message(&frame(0, 4, msg)), None, "a second message follows");
        assert_eq!(whole_message(&Bytes::from_static(b"\0\0\0")), None, "no frame head");
        let mut h = http::HeaderMap::new();
        assert!(!compressed(&h));
        h.insert("grpc-encoding", http::HeaderValue::from_static("identity"));
        assert!(!compressed(&h));
        h.insert("grpc-encoding", http::HeaderValue::from_static("gzip"));
        assert!(compressed(&h));
    }
}
