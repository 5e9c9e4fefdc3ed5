//! Accept gRPC clients built on grpc-core (Python grpcio, C++, Ruby, PHP...) on the Unix-socket
//! listener.
//!
//! grpc-core (>= 1.57, grpc/grpc#38142) sends the percent-encoded socket path as the HTTP/2
//! `:authority` of a `unix:` target, e.g. `tmp%2Fwarden.sock` for `unix:/tmp/warden.sock`.
//! `h2::server::Peer::convert_poll_message` parses `:authority` with
//! `http::uri::Authority::from_maybe_shared`, which rejects a `%` outside userinfo
//! (`InvalidUri(InvalidAuthority)`), and resets the stream with `PROTOCOL_ERROR` before hyper or
//! tonic ever see the request; the client reports `INTERNAL: Received RST_STREAM with error code
//! 1`. h2 has no option to relax this (hyperium/h2#487 is unmerged), so no tower layer can help.
//!
//! [`AuthorityFix`] wraps the accepted stream and rewrites the client-to-server direction of the
//! connection: it decodes every HEADERS/CONTINUATION header block with its own HPACK decoder
//! (tracking the client's dynamic table), replaces an `:authority` that `http` would reject by
//! `localhost` (what grpc-go sends over Unix sockets), and re-encodes the block statelessly
//! (literals without indexing, so h2's decoder table stays empty). Use it only on the Unix-socket
//! listener; TCP clients send a host name.
//!
//! # Shape
//!
//! The protocol work is the sans-I/O [`Rewriter`] (`frame.rs`, HPACK in `hpack.rs`): bytes in,
//! [`Step`]s out, callable from tests and the fuzz target (`fuzz/`). [`AuthorityFix`] is the thin
//! `AsyncRead` over it. Everything but header blocks passes through without being buffered: the
//! wrapper reads from the socket straight into h2's buffer and leaves forwarded bytes (the preface,
//! frame headers, DATA and every other payload) where they landed; only bytes read together with a
//! header frame are copied once. The server-to-client direction is untouched.
//!
//! # Bounds
//!
//! The shim holds to the settings the server advertises (constants in `frame.rs`, checked against
//! the real server's SETTINGS frame in the tests): no frame above SETTINGS_MAX_FRAME_SIZE (16,384)
//! is read, a header block and its decoded list stay below 4 x SETTINGS_MAX_HEADER_LIST_SIZE
//! (where h2 itself would give up on the connection), at most 5 CONTINUATIONs per block (h2's
//! flood bound), and the mirrored dynamic table never exceeds SETTINGS_HEADER_TABLE_SIZE (4,096).
//! HPACK integers, strings and Huffman codes are decoded with checked lengths. A violation is a
//! connection error: h2 is handed a frame that makes it answer GOAWAY (the oversized frame header
//! itself, or a stray CONTINUATION), then the stream fails with `InvalidData`. Per connection the
//! shim holds at most [`MAX_BUFFERED`] bytes plus one rewritten block and one read.

mod frame;
mod hpack;
#[cfg(test)]
mod tests;

pub use frame::{
    Error, FRAME_HEAD_LEN, HEADER_TABLE_SIZE, MAX_BLOCK_SIZE, MAX_BUFFERED, MAX_CONTINUATIONS, MAX_FRAME_SIZE,
    MAX_HEADER_LIST_SIZE, POISON, PREFACE, REPLACEMENT_AUTHORITY, Rewriter, Step,
};
pub use hpack::HpackError;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Capacity the wrapper's buffers keep once drained; a larger one is shrunk back.
const RETAINED_CAPACITY: usize = 16 * 1024;

/// See the module docs.
pub struct AuthorityFix<IO> {
    io: IO,
    rewriter: Rewriter,
    /// Rewritten bytes for h2, from `out_pos` on: at most one re-encoded header block. Drained
    /// before any further client byte is looked at.
    out: Vec<u8>,
    out_pos: usize,
    /// Client bytes read together with a header frame, from `rx_pos` on, not yet stepped
    /// through: at most one read. Drained before the socket is read again.
    rx: Vec<u8>,
    rx_pos: usize,
    /// An incomplete frame header that ended a read at a frame boundary: put back in front of the
    /// next read, so the rewriter sees whole frame headers and the payload behind one stays where
    /// it lands in h2's buffer.
    carry: [u8; FRAME_HEAD_LEN],
    carry_len: usize,
    /// The connection error, reported once `out` is drained.
    error: Option<Error>,
    eof: bool,
}

impl<IO> AuthorityFix<IO> {
    /// Wraps an accepted Unix-socket connection.
    pub fn new(io: IO) -> Self {
        AuthorityFix {
            io,
            rewriter: Rewriter::new(),
            out: Vec::new(),
            out_pos: 0,
            rx: Vec::new(),
            rx_pos: 0,
            carry: [0; FRAME_HEAD_LEN],
            carry_len: 0,
            error: None,
            eof: false,
        }
    }

    /// Keeps `rest` (shorter than a frame header) for the next read.
    fn set_carry(&mut self, rest: &[u8]) {
        self.carry_len = 0;
        for (dst, &src) in self.carry.iter_mut().zip(rest) {
            *dst = src;
            self.carry_len += 1;
        }
    }
}

fn drained(buf: &mut Vec<u8>, pos: &mut usize) {
    if *pos >= buf.len() {
        buf.clear();
        buf.shrink_to(RETAINED_CAPACITY);
        *pos = 0;
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for AuthorityFix<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // 1. Rewritten bytes: they come before anything not stepped through yet.
            if let Some(pending) = this.out.get(this.out_pos..)
                && !pending.is_empty()
            {
                let n = pending.len().min(buf.remaining());
                buf.put_slice(pending.get(..n).unwrap_or_default());
                this.out_pos += n;
                drained(&mut this.out, &mut this.out_pos);
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = this.error {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, UdsError(e))));
            }
            // 2. Bytes read past a header frame.
            if let Some(pending) = this.rx.get(this.rx_pos..)
                && !pending.is_empty()
            {
                let mut forwarded = false;
                // Carried only if the next read has room behind it (else step 3 gives it back).
                if this.rewriter.at_frame_boundary()
                    && pending.len() < FRAME_HEAD_LEN
                    && buf.remaining() > pending.len()
                {
                    let rest = pending.to_vec();
                    this.set_carry(&rest);
                    this.rx_pos = this.rx.len();
                } else {
                    let input = pending.get(..buf.remaining()).unwrap_or(pending);
                    match this.rewriter.step(input, &mut this.out) {
                        Ok(Step::Forward(n)) => {
                            buf.put_slice(input.get(..n).unwrap_or(input));
                            forwarded = n > 0;
                            this.rx_pos += n;
                        }
                        Ok(Step::Consumed(n)) => this.rx_pos += n,
                        Err(e) => {
                            this.error = Some(e);
                            this.rx_pos = this.rx.len();
                        }
                    }
                }
                drained(&mut this.rx, &mut this.rx_pos);
                if forwarded {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if this.eof {
                if this.carry_len > 0 || this.rewriter.holds_partial_frame() {
                    let e =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "uds authority rewrite: client closed mid-frame");
                    return Poll::Ready(Err(e));
                }
                return Poll::Ready(Ok(()));
            }
            // 3. Read from the client straight into h2's buffer, behind a carried frame header.
            //    Forwarded bytes stay where they landed; from the first byte the rewriter takes on,
            //    the rest moves to `rx`.
            let start = buf.filled().len();
            let carried = this.carry.get(..this.carry_len).unwrap_or_default();
            if buf.remaining() <= carried.len() {
                // No room behind it (a tiny read buffer): let the rewriter hold the header.
                this.rx.extend_from_slice(carried);
                this.carry_len = 0;
                continue;
            }
            buf.put_slice(carried);
            match Pin::new(&mut this.io).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                other => {
                    // Pending or an error: h2 keeps nothing of this call, the carry stays.
                    buf.set_filled(start);
                    return other;
                }
            }
            let region = buf.filled().get(start..).unwrap_or_default();
            if region.len() == this.carry_len {
                buf.set_filled(start);
                this.eof = true;
                continue;
            }
            this.carry_len = 0;
            let mut kept = 0;
            while let Some(rest) = region.get(kept..)
                && !rest.is_empty()
            {
                if this.rewriter.at_frame_boundary() && rest.len() < FRAME_HEAD_LEN {
                    this.set_carry(rest);
                    break;
                }
                match this.rewriter.step(rest, &mut this.out) {
                    Ok(Step::Forward(n)) => kept += n,
                    Ok(Step::Consumed(n)) => {
                        this.rx.extend_from_slice(rest.get(n..).unwrap_or_default());
                        break;
                    }
                    Err(e) => {
                        this.error = Some(e);
                        break;
                    }
                }
            }
            buf.set_filled(start + kept);
            if kept > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// [`Error`] as the source of the `io::Error` h2 sees, with the shim named in the message.
#[derive(Debug, thiserror::Error)]
#[error("uds authority rewrite: {0}")]
pub struct UdsError(pub Error);

impl<IO: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for AuthorityFix<IO> {
    type ConnectInfo = IO::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}
