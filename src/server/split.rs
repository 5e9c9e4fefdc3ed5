//! Splits mid-sized DATA chunks of a response body so that a unary answer goes out in one write.
//!
//! **Why.** h2 (0.4.20, as in `Cargo.lock`) does not copy a DATA payload of `CHAIN_THRESHOLD` = 256
//! bytes or more into its write buffer when the socket takes vectored writes
//! (`h2/src/codec/framed_write.rs:72`, `:86`; 1,024 without vectored writes, `:77`): it writes the
//! frame head and the first bytes, and keeps the payload aside to be written from its own buffer as a
//! second iovec (`framed_write.rs:240-252`). While that payload is held the codec reports no capacity
//! (`framed_write.rs:309-310`), so `prioritize.rs:528-529` answers `CodecFull` and the connection
//! flushes (`streams.rs:199`, `framed_write.rs:110`): HEADERS + DATA in one `writev`, then the trailers
//! (`streams.rs:223`) in a second. An `Authorize` reply (DATA ≈ 278 bytes) thus took 2 writes at 1 in
//! flight and could not coalesce with other replies at 32 in flight (1.19 `writev` per call against 0.41
//! for Health/Check, whose 7-byte replies are copied), ≈ 0.70 of Health's throughput. Upstream:
//! hyperium/h2#902 (the encoder flushes each chained DATA frame on its own) and the open PR
//! hyperium/h2#903 (several DATA frames per write); h2 master still has the 256 threshold. Measurements:
//! `BENCHMARKS.md`.
//!
//! **What.** [`Split`] yields every DATA chunk of [`MIN_SPLIT`]..=[`MAX_SPLIT`] bytes as pieces of at
//! most [`PIECE`] bytes (zero-copy, `Bytes::split_to`). Each piece is under the threshold, so h2 copies it
//! and keeps taking frames: HEADERS, DATA pieces and trailers go out in one write. Smaller and larger
//! chunks (a large one is worth its own iovec) and trailers pass untouched; the concatenation of the
//! pieces is the chunk, and gRPC lets a message span DATA frames.
//!
//! **Cost.** One more 9-byte DATA frame head per piece (a 278-byte reply: 2 frames, +9 bytes), and one
//! more pass through h2's send path per piece (≈ +0.7 µs of server CPU per call, measured). An h2 peer
//! (≥ 0.4.16) charges frames under 256 bytes to its small-frame budget only while they are buffered,
//! 256 − len each: 1 for a 255-byte piece, and the last piece's share, the same for any split.
//!
//! [`Split`] goes outside `connections::Tracked`, so a chunk stays counted pending on its connection until
//! its last piece is handed to h2.
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::codegen::Bytes;

/// The largest piece: one byte under h2's `CHAIN_THRESHOLD` (256).
pub const PIECE: usize = 255;
/// The smallest chunk split: h2's `CHAIN_THRESHOLD`.
pub const MIN_SPLIT: usize = PIECE + 1;
/// The largest chunk split: above this a chunk goes out as its own iovec (and at least 4 pieces would
/// cost more frame heads than the write saves).
pub const MAX_SPLIT: usize = 1024;

/// A response body whose DATA chunks of [`MIN_SPLIT`]..=[`MAX_SPLIT`] bytes come out in pieces of at
/// most [`PIECE`] bytes (see the module docs).
#[derive(Debug)]
pub struct Split<B> {
    inner: B,
    /// What is left of the chunk being split (empty when none is).
    rest: Bytes,
}

impl<B> Split<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Split<B> {
        Split { inner, rest: Bytes::new() }
    }

    /// The next piece of `rest`.
    fn piece(&mut self) -> Bytes {
        let n = self.rest.len().min(PIECE);
        self.rest.split_to(n)
    }
}

impl<B> Body for Split<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if !self.rest.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(self.piece()))));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) if (MIN_SPLIT..=MAX_SPLIT).contains(&data.len()) => {
                    self.rest = data;
                    Poll::Ready(Some(Ok(Frame::data(self.piece()))))
                }
                Ok(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let held = u64::try_from(self.rest.len()).unwrap_or(u64::MAX);
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(held));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(held));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use tonic::codegen::http::HeaderMap;

    /// A body of given frames, with an exact size hint of its remaining data.
    struct Frames(VecDeque<Frame<Bytes>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }

        fn is_end_stream(&self) -> bool {
            self.0.is_empty()
        }

        fn size_hint(&self) -> SizeHint {
            let n: usize = self.0.iter().filter_map(|f| f.data_ref()).map(Bytes::len).sum();
            SizeHint::with_exact(n as u64)
        }
    }

    fn chunk(n: usize) -> Bytes {
        (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
    }

    fn trailers() -> HeaderMap {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", "0".parse().unwrap());
        t
    }

    /// Drains the body: the data pieces, the trailers, and the size hint before each poll.
    fn drain(body: &mut Split<Frames>) -> (Vec<Bytes>, Option<HeaderMap>, Vec<u64>) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let (mut pieces, mut trailers, mut hints) = (Vec::new(), None, Vec::new());
        loop {
            let hint = body.size_hint();
            assert_eq!(hint.upper(), Some(hint.lower()));
            hints.push(hint.lower());
            match Pin::new(&mut *body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(f))) => match f.into_data() {
                    Ok(d) => pieces.push(d),
                    Err(f) => trailers = Some(f.into_trailers().unwrap()),
                },
                Poll::Ready(None) => break,
                Poll::Ready(Some(Err(e))) => match e {},
                Poll::Pending => panic!("pending"),
            }
        }
        assert!(body.is_end_stream());
        (pieces, trailers, hints)
    }

    #[test]
    fn splits_chunks_of_256_to_1024_bytes_and_passes_the_rest() {
        // (chunk, the piece sizes)
        let cases: [(usize, &[usize]); 7] = [
            (0, &[0]),
            (255, &[255]),
            (256, &[255, 1]),
            (300, &[255, 45]),
            (1024, &[255, 255, 255, 255, 4]),
            (1025, &[1025]),
            (4096, &[4096]),
        ];
        for (n, want) in cases {
            let input = chunk(n);
            let frames = VecDeque::from([Frame::data(input.clone()), Frame::trailers(trailers())]);
            let mut body = Split::new(Frames(frames));
            assert!(!body.is_end_stream());
            let (pieces, got_trailers, hints) = drain(&mut body);
            let sizes: Vec<usize> = pieces.iter().map(Bytes::len).collect();
            assert_eq!(sizes, want, "{n}");
            assert_eq!(pieces.concat(), input.to_vec(), "{n}");
            assert_eq!(got_trailers, Some(trailers()), "{n}");
            // The hint is the data still to come: all of it, then less each piece, 0 at the trailers.
            let mut left = n as u64;
            let mut want_hints = vec![left];
            for s in &sizes {
                left -= *s as u64;
                want_hints.push(left);
            }
            want_hints.push(0);
            assert_eq!(hints, want_hints, "{n}");
        }
    }

    #[test]
    fn each_chunk_of_a_stream_is_split_on_its_own() {
        let frames = VecDeque::from([Frame::data(chunk(300)), Frame::data(chunk(10)), Frame::data(chunk(600))]);
        let mut body = Split::new(Frames(frames));
        let (pieces, trailers, _) = drain(&mut body);
        let sizes: Vec<usize> = pieces.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [255, 45, 10, 255, 255, 90]);
        assert_eq!(trailers, None);
        assert_eq!(pieces.concat(), [chunk(300), chunk(10), chunk(600)].concat());
    }

    #[test]
    fn pieces_share_the_chunks_memory() {
        let input = chunk(700);
        let mut body = Split::new(Frames(VecDeque::from([Frame::data(input.clone())])));
        let (pieces, _, _) = drain(&mut body);
        let mut at = input.as_ptr();
        for p in &pieces {
            assert_eq!(p.as_ptr(), at);
            at = at.wrapping_add(p.len());
        }
    }

    // === the real server: one write per unary answer ===

    use std::io::IoSlice;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

    /// The server's side of a duplex that counts its writes and takes vectored writes, as a TCP or
    /// Unix socket does (a bare `DuplexStream` does not, and h2 then copies DATA frames up to 1 KiB).
    struct CountingIo {
        io: DuplexStream,
        writes: Arc<AtomicUsize>,
    }

    impl tonic::transport::server::Connected for CountingIo {
        type ConnectInfo = ();
        fn connect_info(&self) {}
    }

    impl AsyncRead for CountingIo {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountingIo {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            let polled = Pin::new(&mut self.io).poll_write(cx, buf);
            if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
                self.writes.fetch_add(1, Ordering::SeqCst);
            }
            polled
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            // One `writev`: the slices go to the peer in one write.
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.poll_write(cx, &all)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    /// One unary call over `client`: the reply's DATA bytes and its `grpc-status`.
    async fn call(client: &mut h2::client::SendRequest<Bytes>, path: &str, message: &[u8]) -> (usize, String) {
        let req = tonic::codegen::http::Request::post(format!("http://warden{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(message);
        let (resp, mut send) = client.clone().ready().await.unwrap().send_request(req, false).unwrap();
        send.send_data(framed.into(), true).unwrap();
        let resp = resp.await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut data = 0;
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            data += chunk.len();
            body.flow_control().release_capacity(chunk.len()).unwrap();
        }
        let trailers = body.trailers().await.unwrap().expect("trailers");
        let status = trailers.get("grpc-status").expect("grpc-status").to_str().unwrap().to_owned();
        (data, status)
    }

    /// A unary answer whose DATA frame is 256 bytes or more (an `Authorize` ALLOW with its determining
    /// statements) is written in one write, like a Health/Check answer: without [`Split`], h2 writes
    /// its trailers apart (2 writes).
    #[tokio::test]
    async fn a_unary_authorize_answer_is_one_write() {
        use prost::Message as _;
        let store = Arc::new(crate::runtime::store::Store::new());
        let (_reporter, health) = tonic_health::server::health_reporter();
        assert!(
            crate::runtime::activation::load_and_activate(&store, &_reporter, &crate::config::BundleSource::Embedded)
                .await
        );
        let svc = crate::grpc::authorize::AuthorizerService::new(store, crate::engine::authorize);
        let router = crate::server::router(health, svc, &crate::config::ConnectionLimits::default()).unwrap();
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let writes = Arc::new(AtomicUsize::new(0));
        let incoming =
            tokio_stream::iter(vec![Ok::<_, std::io::Error>(CountingIo { io: server_io, writes: writes.clone() })]);
        let serve = tokio::spawn(router.serve_with_incoming(incoming));
        let (mut client, conn) = h2::client::handshake(client_io).await.unwrap();
        let conn = tokio::spawn(conn);

        let health_check = tonic_health::pb::HealthCheckRequest { service: String::new() }.encode_to_vec();
        let value = |s: &str| pbjson_types::Value::from(s.to_owned());
        let authorize = crate::proto::AuthorizeRequest {
            principal: Some(crate::proto::Principal {
                arn: "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1".to_owned(),
                ..crate::proto::Principal::default()
            }),
            action: "sagemaker:CreatePartnerAppPresignedUrl".to_owned(),
            resource: "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001".to_owned(),
            context: Some([("aws:SourceIp".to_owned(), value("10.100.10.7"))].into_iter().collect()),
            ..crate::proto::AuthorizeRequest::default()
        }
        .encode_to_vec();
        const AUTHORIZE: &str = "/warden.v1.Authorizer/Authorize";
        const HEALTH: &str = "/grpc.health.v1.Health/Check";

        // The handshake (SETTINGS, their acknowledgements) settles over a first call.
        assert_eq!(call(&mut client, HEALTH, &health_check).await.1, "0");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;

        let mut measured = Vec::new();
        for (path, message) in
            [(HEALTH, &health_check), (AUTHORIZE, &authorize), (AUTHORIZE, &authorize), (HEALTH, &health_check)]
        {
            let before = writes.load(Ordering::SeqCst);
            let (data, status) = call(&mut client, path, message).await;
            // The trailers are the answer's last bytes: every write of the answer has happened.
            measured.push((path, data, status, writes.load(Ordering::SeqCst) - before));
        }
        let (_, authorize_data, _, _) = measured[1];
        assert!((MIN_SPLIT..=MAX_SPLIT).contains(&authorize_data), "an answer the split is for: {measured:?}");
        for (path, _, status, n) in &measured {
            assert_eq!(status, "0", "{measured:?}");
            assert_eq!(*n, 1, "{path}: one write per answer: {measured:?}");
        }
        drop(client);
        conn.abort();
        serve.abort();
    }
}
