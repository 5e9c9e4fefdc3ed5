//! The sans-I/O core of the shim: [`Rewriter`] follows the client-to-server byte stream frame by
//! frame, forwards everything but header blocks as it arrives, and re-encodes header blocks.

use super::hpack::{self, HpackError};

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of a frame header (RFC 9113 §4.1).
pub const FRAME_HEAD_LEN: usize = 9;

/// SETTINGS_MAX_FRAME_SIZE the server advertises: hyper's default (16,384, also the protocol
/// minimum), which tonic keeps unless `Server::max_frame_size` is set (`server::router` does not).
/// No client frame may be larger, and no frame the shim emits is.
pub const MAX_FRAME_SIZE: usize = 16_384;
/// SETTINGS_MAX_HEADER_LIST_SIZE the server advertises: hyper's default (16 KiB), which tonic keeps
/// unless `Server::http2_max_header_list_size` is set.
pub const MAX_HEADER_LIST_SIZE: usize = 16_384;
/// Bound on one decoded header list (RFC 7541 §4.1 sizes) and on one encoded header block. h2
/// answers a list above [`MAX_HEADER_LIST_SIZE`] with 431 on that stream and closes the
/// connection (ENHANCE_YOUR_CALM) only above four times it: the shim passes what h2 answers
/// itself and refuses what h2 would refuse.
pub const MAX_BLOCK_SIZE: usize = 4 * MAX_HEADER_LIST_SIZE;
/// SETTINGS_HEADER_TABLE_SIZE the server advertises: the protocol default, which neither hyper nor
/// tonic change. The client's dynamic table (mirrored by the shim) never exceeds it.
pub const HEADER_TABLE_SIZE: usize = 4_096;
/// CONTINUATION frames without END_HEADERS allowed in one header block: h2's own bound for the
/// settings above (`max(MAX_HEADER_LIST_SIZE / MAX_FRAME_SIZE * 5 / 4, 5)`).
pub const MAX_CONTINUATIONS: usize = 5;
/// Bound on what a [`Rewriter`] holds ([`Rewriter::buffered`]): one frame payload, one header
/// block, the dynamic table and a partial frame header.
pub const MAX_BUFFERED: usize = MAX_FRAME_SIZE + MAX_BLOCK_SIZE + HEADER_TABLE_SIZE + FRAME_HEAD_LEN;

/// What replaces an `:authority` that h2 would refuse (what grpc-go sends over Unix sockets).
pub const REPLACEMENT_AUTHORITY: &[u8] = b"localhost";

/// Emitted after a violation the shim detects itself (all but [`Error::FrameTooLarge`]): a
/// CONTINUATION frame outside a header block, which h2 answers with GOAWAY(PROTOCOL_ERROR), so the
/// client learns why the connection closes. The shim only emits whole frames, so h2 always reads
/// it as a frame header.
pub const POISON: [u8; FRAME_HEAD_LEN] = [0, 0, 0, CONTINUATION, FLAG_END_HEADERS, 0, 0, 0, 0];

const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// Capacity a buffer keeps between header blocks; a larger one is shrunk back.
const RETAINED_CAPACITY: usize = 4_096;

/// A connection error: the client broke HTTP/2 or a bound. The connection cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A frame header announcing more than [`MAX_FRAME_SIZE`]. The header itself is handed to
    /// h2, which answers GOAWAY(FRAME_SIZE_ERROR); the payload is never read.
    #[error("a frame of {0} bytes, above SETTINGS_MAX_FRAME_SIZE ({MAX_FRAME_SIZE})")]
    FrameTooLarge(usize),
    /// A header block (fragments of HEADERS and CONTINUATIONs) above [`MAX_BLOCK_SIZE`].
    #[error("a header block above {MAX_BLOCK_SIZE} bytes")]
    BlockTooLarge,
    /// More than [`MAX_CONTINUATIONS`] CONTINUATION frames without END_HEADERS.
    #[error("more than {MAX_CONTINUATIONS} CONTINUATION frames in one header block")]
    TooManyContinuations,
    /// A frame other than CONTINUATION (of this type) while a header block is open (RFC 9113 §6.10).
    #[error("a frame of type {0:#x} inside a header block")]
    Interleaved(u8),
    /// CONTINUATION with no header block open on its stream.
    #[error("CONTINUATION outside a header block of its stream")]
    UnexpectedContinuation,
    /// HEADERS whose padding does not fit in the frame.
    #[error("HEADERS padding longer than the frame")]
    Padding,
    /// HEADERS with the PRIORITY flag but fewer than 5 bytes.
    #[error("HEADERS too short for its priority fields")]
    Priority,
    /// The header block does not decode (RFC 7541), or decodes to more than [`MAX_BLOCK_SIZE`].
    #[error("HPACK: {0}")]
    Hpack(#[from] HpackError),
}

/// What one [`Rewriter::step`] did with the start of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The first `n` bytes go to h2 unchanged, after whatever the rewriter put in `out` before.
    /// Such a step appends nothing to `out`.
    Forward(usize),
    /// The rewriter took the first `n` bytes (part of a header frame or of a split frame header);
    /// what they become, if anything yet, was appended to `out`.
    Consumed(usize),
}

/// The client-to-server half of one connection, as a state machine over bytes: see the module
/// docs of `uds_authority`. It holds at most [`MAX_BUFFERED`] bytes, whatever the input.
pub struct Rewriter {
    state: State,
    decoder: hpack::Decoder,
    /// Payload of the HEADERS/CONTINUATION frame being read (at most [`MAX_FRAME_SIZE`]).
    payload: Vec<u8>,
    /// Fragments of the open header block when it spans frames (at most [`MAX_BLOCK_SIZE`]).
    block: Vec<u8>,
    open: Option<Open>,
}

#[derive(Clone, Copy)]
enum State {
    /// `n` bytes of the preface seen.
    Preface(usize),
    /// Not HTTP/2 with prior knowledge: everything is forwarded and h2 answers it.
    Raw,
    /// At (or `len` bytes into) a frame header.
    Head { buf: [u8; FRAME_HEAD_LEN], len: usize },
    /// Forwarding the payload of a frame that is not part of a header block: bytes left.
    Pass(usize),
    /// Reading the payload of a HEADERS or CONTINUATION frame into `payload`.
    HeaderPayload(FrameHead),
    /// After an error: every step repeats it.
    Failed(Error),
}

const FRAME_BOUNDARY: State = State::Head { buf: [0; FRAME_HEAD_LEN], len: 0 };

#[derive(Clone, Copy)]
struct FrameHead {
    len: usize,
    kind: u8,
    flags: u8,
    stream_id: u32,
}

impl FrameHead {
    fn parse(head: [u8; FRAME_HEAD_LEN]) -> FrameHead {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = head;
        FrameHead {
            len: (usize::from(l0) << 16) | (usize::from(l1) << 8) | usize::from(l2),
            kind,
            flags,
            stream_id: u32::from_be_bytes([s0, s1, s2, s3]) & 0x7fff_ffff,
        }
    }
}

/// The header block being received (HEADERS seen, END_HEADERS not yet).
#[derive(Clone, Copy)]
struct Open {
    stream_id: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    continuations: usize,
}

/// Whether the frame header was taken by the rewriter or goes to h2 as is.
enum Route {
    Forward,
    Held,
}

impl Default for Rewriter {
    fn default() -> Rewriter {
        Rewriter::new()
    }
}

impl Rewriter {
    /// A rewriter at the start of a connection (expecting the client preface).
    pub fn new() -> Rewriter {
        Rewriter {
            state: State::Preface(0),
            decoder: hpack::Decoder::new(HEADER_TABLE_SIZE),
            payload: Vec::new(),
            block: Vec::new(),
            open: None,
        }
    }

    /// Processes the start of `input` (the next bytes from the client). On a non-empty input it
    /// always makes progress (`n >= 1`). On error, `out` ends with what h2 still has to read to
    /// answer GOAWAY ([`POISON`], or the oversized frame header), and every later step fails.
    pub fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Step, Error> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        let step = self.step_inner(input, out);
        if let Err(e) = step {
            if !matches!(e, Error::FrameTooLarge(_)) {
                out.extend_from_slice(&POISON);
            }
            self.state = State::Failed(e);
            self.open = None;
            self.payload = Vec::new();
            self.block = Vec::new();
        }
        step
    }

    /// Processes all of `input`, appending what h2 must read to `out` (see [`Rewriter::step`]).
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        loop {
            match self.step(input, out)? {
                Step::Forward(n) => {
                    let (forward, rest) = input.split_at_checked(n).unwrap_or((input, &[]));
                    out.extend_from_slice(forward);
                    input = rest;
                }
                Step::Consumed(n) => input = input.get(n..).unwrap_or_default(),
            }
            if input.is_empty() {
                return Ok(());
            }
        }
    }

    /// Bytes held: buffer capacities and the dynamic table size. Never above [`MAX_BUFFERED`].
    pub fn buffered(&self) -> usize {
        let head = match self.state {
            State::Head { len, .. } => len,
            _ => 0,
        };
        self.payload.capacity() + self.block.capacity() + self.decoder.table_size() + head
    }

    /// Whether the next byte starts a frame header (the preface is behind, no header split).
    pub fn at_frame_boundary(&self) -> bool {
        matches!(self.state, State::Head { len: 0, .. })
    }

    /// Whether the rewriter holds client bytes h2 has not seen (a split frame header or part of
    /// a header block): the client stopped mid-frame if its stream ends now.
    pub fn holds_partial_frame(&self) -> bool {
        self.open.is_some() || matches!(self.state, State::HeaderPayload(_) | State::Head { len: 1.., .. })
    }

    fn step_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Step, Error> {
        match self.state {
            State::Failed(e) => Err(e),
            State::Raw => Ok(Step::Forward(input.len())),
            State::Preface(seen) => {
                let rest = PREFACE.get(seen..).unwrap_or_default();
                let n = rest.len().min(input.len());
                if input.get(..n) != rest.get(..n) {
                    self.state = State::Raw;
                    return Ok(Step::Forward(input.len()));
                }
                self.state = if seen + n == PREFACE.len() { FRAME_BOUNDARY } else { State::Preface(seen + n) };
                Ok(Step::Forward(n))
            }
            State::Pass(left) => {
                let n = left.min(input.len());
                self.state = if n == left { FRAME_BOUNDARY } else { State::Pass(left - n) };
                Ok(Step::Forward(n))
            }
            State::Head { mut buf, len } => {
                if len == 0
                    && let Some(&head) = input.first_chunk::<FRAME_HEAD_LEN>()
                {
                    return Ok(match self.on_head(head, out)? {
                        Route::Forward => Step::Forward(FRAME_HEAD_LEN),
                        Route::Held => Step::Consumed(FRAME_HEAD_LEN),
                    });
                }
                let mut n = 0;
                for (dst, &src) in buf.iter_mut().skip(len).zip(input) {
                    *dst = src;
                    n += 1;
                }
                if len + n < FRAME_HEAD_LEN {
                    self.state = State::Head { buf, len: len + n };
                } else if let Route::Forward = self.on_head(buf, out)? {
                    out.extend_from_slice(&buf);
                }
                Ok(Step::Consumed(n))
            }
            State::HeaderPayload(head) => {
                let want = head.len.saturating_sub(self.payload.len());
                let take = input.get(..want.min(input.len())).unwrap_or_default();
                self.payload.extend_from_slice(take);
                if self.payload.len() >= head.len {
                    self.end_header_frame(head, out)?;
                }
                Ok(Step::Consumed(take.len()))
            }
        }
    }

    fn on_head(&mut self, raw: [u8; FRAME_HEAD_LEN], out: &mut Vec<u8>) -> Result<Route, Error> {
        let head = FrameHead::parse(raw);
        if head.len > MAX_FRAME_SIZE {
            out.extend_from_slice(&raw);
            return Err(Error::FrameTooLarge(head.len));
        }
        match head.kind {
            HEADERS if self.open.is_some() => Err(Error::Interleaved(HEADERS)),
            HEADERS | CONTINUATION => {
                if head.kind == CONTINUATION {
                    let open = self
                        .open
                        .as_mut()
                        .filter(|o| o.stream_id == head.stream_id)
                        .ok_or(Error::UnexpectedContinuation)?;
                    if head.flags & FLAG_END_HEADERS == 0 {
                        open.continuations += 1;
                        if open.continuations > MAX_CONTINUATIONS {
                            return Err(Error::TooManyContinuations);
                        }
                    }
                }
                self.payload.clear();
                self.payload.reserve_exact(head.len);
                self.state = State::HeaderPayload(head);
                if head.len == 0 {
                    self.end_header_frame(head, out)?;
                }
                Ok(Route::Held)
            }
            kind if self.open.is_some() => Err(Error::Interleaved(kind)),
            _ => {
                self.state = if head.len == 0 { FRAME_BOUNDARY } else { State::Pass(head.len) };
                Ok(Route::Forward)
            }
        }
    }

    /// A whole HEADERS/CONTINUATION payload is in `payload`.
    fn end_header_frame(&mut self, head: FrameHead, out: &mut Vec<u8>) -> Result<(), Error> {
        self.state = FRAME_BOUNDARY;
        let end_headers = head.flags & FLAG_END_HEADERS != 0;
        if head.kind == HEADERS {
            // A fragment is at most one frame: far below MAX_BLOCK_SIZE.
            let (fragment, priority) = headers_fragment(&self.payload, head.flags)?;
            let open = Open {
                stream_id: head.stream_id,
                end_stream: head.flags & FLAG_END_STREAM != 0,
                priority,
                continuations: 0,
            };
            if end_headers {
                // The common case, one frame: decode in place.
                emit(&mut self.decoder, fragment, open, out)?;
            } else {
                self.block.clear();
                self.block.extend_from_slice(fragment);
                self.open = Some(open);
            }
        } else {
            if self.block.len() + self.payload.len() > MAX_BLOCK_SIZE {
                return Err(Error::BlockTooLarge);
            }
            self.block.reserve_exact(self.payload.len());
            self.block.extend_from_slice(&self.payload);
            if end_headers && let Some(open) = self.open.take() {
                emit(&mut self.decoder, &self.block, open, out)?;
                recycle(&mut self.block);
            }
        }
        recycle(&mut self.payload);
        Ok(())
    }
}

fn recycle(buf: &mut Vec<u8>) {
    buf.clear();
    buf.shrink_to(RETAINED_CAPACITY);
}

/// The header block fragment of a HEADERS payload, without padding, and its priority fields.
fn headers_fragment(payload: &[u8], flags: u8) -> Result<(&[u8], Option<[u8; 5]>), Error> {
    let mut rest = payload;
    let mut pad = 0;
    if flags & FLAG_PADDED != 0 {
        let (&n, tail) = rest.split_first().ok_or(Error::Padding)?;
        pad = usize::from(n);
        rest = tail;
    }
    let mut priority = None;
    if flags & FLAG_PRIORITY != 0 {
        let (fields, tail) = rest.split_first_chunk::<5>().ok_or(Error::Priority)?;
        priority = Some(*fields);
        rest = tail;
    }
    let end = rest.len().checked_sub(pad).ok_or(Error::Padding)?;
    Ok((rest.get(..end).ok_or(Error::Padding)?, priority))
}

/// Decodes a complete header block, replaces a bad `:authority`, and appends the block re-encoded
/// (literals without indexing) as HEADERS + CONTINUATION frames of at most [`MAX_FRAME_SIZE`].
fn emit(decoder: &mut hpack::Decoder, block: &[u8], open: Open, out: &mut Vec<u8>) -> Result<(), Error> {
    let mut encoded = Vec::with_capacity(block.len() + 32);
    decoder.decode(block, MAX_BLOCK_SIZE, &mut |name, value, sensitive| {
        let value = if name == b":authority" && !valid_authority(value) { REPLACEMENT_AUTHORITY } else { value };
        hpack::encode_literal(&mut encoded, name, value, sensitive);
    })?;
    let priority_len = if open.priority.is_some() { 5 } else { 0 };
    let (first, rest) = encoded.split_at_checked(MAX_FRAME_SIZE - priority_len).unwrap_or((encoded.as_slice(), &[]));
    let mut flags = 0;
    if open.end_stream {
        flags |= FLAG_END_STREAM;
    }
    if open.priority.is_some() {
        flags |= FLAG_PRIORITY;
    }
    if rest.is_empty() {
        flags |= FLAG_END_HEADERS;
    }
    write_head(out, first.len() + priority_len, HEADERS, flags, open.stream_id);
    if let Some(priority) = open.priority {
        out.extend_from_slice(&priority);
    }
    out.extend_from_slice(first);
    let mut chunks = rest.chunks(MAX_FRAME_SIZE).peekable();
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() { FLAG_END_HEADERS } else { 0 };
        write_head(out, chunk.len(), CONTINUATION, flags, open.stream_id);
        out.extend_from_slice(chunk);
    }
    Ok(())
}

/// Appends a frame header; `len` is at most [`MAX_FRAME_SIZE`].
pub fn write_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream_id: u32) {
    let [_, l0, l1, l2] = (len as u32).to_be_bytes();
    out.extend_from_slice(&[l0, l1, l2, kind, flags]);
    out.extend_from_slice(&stream_id.to_be_bytes());
}

/// Exactly the check h2 applies (`h2::server::Peer::convert_poll_message`).
pub fn valid_authority(value: &[u8]) -> bool {
    tonic::codegen::http::uri::Authority::try_from(value).is_ok()
}
