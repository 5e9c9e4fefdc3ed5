//! Accept gRPC clients built on grpc-core (Python grpcio, C++, Ruby, PHP...) on
//! the Unix-socket listener.
//!
//! grpc-core (>= 1.57, grpc/grpc#38142) sends the percent-encoded socket path as
//! the HTTP/2 `:authority` of a `unix:` target, e.g. `tmp%2Fwarden.sock` for
//! `unix:/tmp/warden.sock`. `h2::server::Peer::convert_poll_message` parses
//! `:authority` with `http::uri::Authority::from_maybe_shared`, which rejects a
//! `%` outside userinfo (`InvalidUri(InvalidAuthority)`), and resets the stream
//! with `PROTOCOL_ERROR` before hyper or tonic ever see the request; the client
//! reports `INTERNAL: Received RST_STREAM with error code 1`. h2 has no option
//! to relax this (hyperium/h2#487 is unmerged), so no tower layer can help.
//!
//! [`AuthorityFix`] wraps the accepted stream and rewrites the client-to-server
//! direction of the connection: it decodes every HEADERS/CONTINUATION header
//! block with its own HPACK decoder (tracking the client's dynamic table),
//! replaces an `:authority` that `http` would reject by `localhost` (what
//! grpc-go sends over Unix sockets), and re-encodes the block statelessly
//! (literals without indexing, so h2's decoder table stays empty). All other
//! frames and the whole server-to-client direction pass through untouched.
//! Use it only on the Unix-socket listener; TCP clients send a host name.
#![expect(
    clippy::indexing_slicing,
    clippy::expect_used,
    reason = "interim: the shim is rewritten index-free and bounded under issue 9"
)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// Frames we emit never exceed the protocol minimum of SETTINGS_MAX_FRAME_SIZE.
const OUT_FRAME_MAX: usize = 16_384;
/// A single incoming HEADERS/CONTINUATION frame larger than this is refused
/// (h2 refuses anything above its SETTINGS_MAX_FRAME_SIZE, 16 KiB by default).
const IN_FRAME_MAX: usize = 1 << 20;
/// Bound on one encoded header block and on its decoded size (hyper's own
/// limit, SETTINGS_MAX_HEADER_LIST_SIZE, is 16 KiB by default, so h2 still
/// answers oversized-but-sane requests itself).
const BLOCK_MAX: usize = 1 << 20;
/// h2's SETTINGS_HEADER_TABLE_SIZE (the default; hyper/tonic don't change it).
const TABLE_MAX: usize = 4_096;
const REPLACEMENT_AUTHORITY: &[u8] = b"localhost";
const READ_CHUNK: usize = 16 * 1024;

/// See the module docs.
pub struct AuthorityFix<IO> {
    io: IO,
    /// Raw bytes read from the client, not processed yet.
    rx: Vec<u8>,
    /// Processed bytes ready for h2, from `tx_pos` on.
    tx: Vec<u8>,
    tx_pos: usize,
    state: State,
    decoder: hpack::Decoder,
    /// Header block being accumulated (HEADERS without END_HEADERS seen).
    block: Option<PendingBlock>,
    eof: bool,
}

enum State {
    Preface,
    FrameHead,
    /// Forwarding the payload of a non-header frame: bytes left.
    Passthrough(usize),
    /// Not HTTP/2 with prior knowledge: forward everything, let h2 complain.
    Raw,
}

struct PendingBlock {
    stream_id: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
}

impl<IO> AuthorityFix<IO> {
    /// Wraps an accepted Unix-socket connection.
    pub fn new(io: IO) -> Self {
        AuthorityFix {
            io,
            rx: Vec::new(),
            tx: Vec::new(),
            tx_pos: 0,
            state: State::Preface,
            decoder: hpack::Decoder::new(TABLE_MAX),
            block: None,
            eof: false,
        }
    }

    /// Moves as much of `rx` as can be processed into `tx`.
    fn process(&mut self) -> io::Result<()> {
        loop {
            match self.state {
                State::Raw => {
                    self.tx.extend_from_slice(&self.rx);
                    self.rx.clear();
                    return Ok(());
                }
                State::Preface => {
                    let n = self.rx.len().min(PREFACE.len());
                    if self.rx[..n] != PREFACE[..n] {
                        self.state = State::Raw;
                        continue;
                    }
                    if n < PREFACE.len() {
                        return Ok(());
                    }
                    self.tx.extend_from_slice(PREFACE);
                    self.rx.drain(..PREFACE.len());
                    self.state = State::FrameHead;
                }
                State::Passthrough(left) => {
                    let n = left.min(self.rx.len());
                    self.tx.extend_from_slice(&self.rx[..n]);
                    self.rx.drain(..n);
                    if n < left {
                        self.state = State::Passthrough(left - n);
                        return Ok(());
                    }
                    self.state = State::FrameHead;
                }
                State::FrameHead => {
                    if self.rx.len() < 9 {
                        return Ok(());
                    }
                    let len =
                        (usize::from(self.rx[0]) << 16) | (usize::from(self.rx[1]) << 8) | usize::from(self.rx[2]);
                    let kind = self.rx[3];
                    let flags = self.rx[4];
                    let stream_id = u32::from_be_bytes([self.rx[5], self.rx[6], self.rx[7], self.rx[8]]) & 0x7fff_ffff;
                    if kind != FRAME_HEADERS && kind != FRAME_CONTINUATION {
                        if self.block.is_some() {
                            return Err(invalid("frame interleaved in a header block"));
                        }
                        self.tx.extend_from_slice(&self.rx[..9]);
                        self.rx.drain(..9);
                        self.state = State::Passthrough(len);
                        continue;
                    }
                    if len > IN_FRAME_MAX {
                        return Err(invalid("header frame too large"));
                    }
                    if self.rx.len() < 9 + len {
                        return Ok(());
                    }
                    let payload: Vec<u8> = self.rx[9..9 + len].to_vec();
                    self.rx.drain(..9 + len);
                    self.header_frame(kind, flags, stream_id, &payload)?;
                }
            }
        }
    }

    fn header_frame(&mut self, kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> io::Result<()> {
        if kind == FRAME_HEADERS {
            if self.block.is_some() {
                return Err(invalid("HEADERS inside a header block"));
            }
            let mut p = payload;
            let mut pad = 0usize;
            if flags & FLAG_PADDED != 0 {
                let (&n, rest) = p.split_first().ok_or_else(|| invalid("bad padding"))?;
                pad = usize::from(n);
                p = rest;
            }
            let mut priority = None;
            if flags & FLAG_PRIORITY != 0 {
                if p.len() < 5 {
                    return Err(invalid("bad priority"));
                }
                priority = Some([p[0], p[1], p[2], p[3], p[4]]);
                p = &p[5..];
            }
            if pad > p.len() {
                return Err(invalid("bad padding"));
            }
            let fragment = p[..p.len() - pad].to_vec();
            self.block = Some(PendingBlock { stream_id, end_stream: flags & FLAG_END_STREAM != 0, priority, fragment });
        } else {
            let block = self
                .block
                .as_mut()
                .filter(|b| b.stream_id == stream_id)
                .ok_or_else(|| invalid("unexpected CONTINUATION"))?;
            block.fragment.extend_from_slice(payload);
        }
        if self.block.as_ref().is_some_and(|b| b.fragment.len() > BLOCK_MAX) {
            return Err(invalid("header block too large"));
        }
        if flags & FLAG_END_HEADERS != 0 {
            let block = self.block.take().expect("block present");
            self.emit_block(block)?;
        }
        Ok(())
    }

    fn emit_block(&mut self, block: PendingBlock) -> io::Result<()> {
        let mut fields = self.decoder.decode(&block.fragment, BLOCK_MAX).map_err(invalid)?;
        for f in &mut fields {
            if f.name == b":authority" && !valid_authority(&f.value) {
                f.value = REPLACEMENT_AUTHORITY.to_vec();
            }
        }
        let mut encoded = Vec::with_capacity(block.fragment.len() + 16);
        for f in &fields {
            hpack::encode_literal(&mut encoded, &f.name, &f.value, f.sensitive);
        }
        // HEADERS (+ CONTINUATION...) carrying `encoded`.
        let first_room = OUT_FRAME_MAX - if block.priority.is_some() { 5 } else { 0 };
        let first_len = encoded.len().min(first_room);
        let mut flags = 0u8;
        if block.end_stream {
            flags |= FLAG_END_STREAM;
        }
        if block.priority.is_some() {
            flags |= FLAG_PRIORITY;
        }
        if first_len == encoded.len() {
            flags |= FLAG_END_HEADERS;
        }
        let prio_len = if block.priority.is_some() { 5 } else { 0 };
        write_frame_head(&mut self.tx, first_len + prio_len, FRAME_HEADERS, flags, block.stream_id);
        if let Some(p) = block.priority {
            self.tx.extend_from_slice(&p);
        }
        self.tx.extend_from_slice(&encoded[..first_len]);
        let mut rest = &encoded[first_len..];
        while !rest.is_empty() {
            let n = rest.len().min(OUT_FRAME_MAX);
            let flags = if n == rest.len() { FLAG_END_HEADERS } else { 0 };
            write_frame_head(&mut self.tx, n, FRAME_CONTINUATION, flags, block.stream_id);
            self.tx.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(())
    }
}

fn write_frame_head(dst: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream_id: u32) {
    dst.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    dst.extend_from_slice(&stream_id.to_be_bytes());
}

/// Exactly the check h2 applies (`h2::server::Peer::convert_poll_message`).
fn valid_authority(value: &[u8]) -> bool {
    tonic::codegen::http::uri::Authority::try_from(value).is_ok()
}

fn invalid(msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("uds authority rewrite: {msg}"))
}

impl<IO: AsyncRead + Unpin> AsyncRead for AuthorityFix<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.tx_pos < this.tx.len() {
                let n = buf.remaining().min(this.tx.len() - this.tx_pos);
                buf.put_slice(&this.tx[this.tx_pos..this.tx_pos + n]);
                this.tx_pos += n;
                if this.tx_pos == this.tx.len() {
                    this.tx.clear();
                    this.tx_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // Hand any unprocessable tail to h2 as is; it reports the error.
                if !this.rx.is_empty() {
                    this.tx.append(&mut this.rx);
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let filled = rb.filled();
                    if filled.is_empty() {
                        this.eof = true;
                    } else {
                        this.rx.extend_from_slice(filled);
                        this.process()?;
                    }
                }
            }
        }
    }
}

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

/// Minimal HPACK (RFC 7541): a full decoder, and a stateless literal encoder.
mod hpack {
    use std::collections::VecDeque;

    pub struct Field {
        pub name: Vec<u8>,
        pub value: Vec<u8>,
        /// Sent as "never indexed": kept that way when re-encoded.
        pub sensitive: bool,
    }

    pub struct Decoder {
        /// Newest entry first.
        dynamic: VecDeque<(Vec<u8>, Vec<u8>)>,
        size: usize,
        max_size: usize,
        limit: usize,
    }

    impl Decoder {
        pub fn new(limit: usize) -> Self {
            Decoder { dynamic: VecDeque::new(), size: 0, max_size: limit, limit }
        }

        pub fn decode(&mut self, mut src: &[u8], max_list: usize) -> Result<Vec<Field>, &'static str> {
            let mut out = Vec::new();
            let mut list_size = 0usize;
            let mut first = true;
            while let Some(&b) = src.first() {
                if b & 0x80 != 0 {
                    // Indexed header field.
                    let idx = int(&mut src, 7)?;
                    let (name, value) = self.get(idx)?;
                    out.push(Field { name, value, sensitive: false });
                } else if b & 0xc0 == 0x40 {
                    // Literal with incremental indexing.
                    let idx = int(&mut src, 6)?;
                    let name = self.name(idx, &mut src)?;
                    let value = string(&mut src)?;
                    self.insert(name.clone(), value.clone());
                    out.push(Field { name, value, sensitive: false });
                } else if b & 0xe0 == 0x20 {
                    // Dynamic table size update: only at the start of a block.
                    if !first {
                        return Err("table size update after a header field");
                    }
                    let n = int(&mut src, 5)?;
                    if n > self.limit {
                        return Err("table size update above SETTINGS_HEADER_TABLE_SIZE");
                    }
                    self.max_size = n;
                    self.evict(0);
                    continue;
                } else {
                    // Literal without indexing (0000) or never indexed (0001).
                    let sensitive = b & 0x10 != 0;
                    let idx = int(&mut src, 4)?;
                    let name = self.name(idx, &mut src)?;
                    let value = string(&mut src)?;
                    out.push(Field { name, value, sensitive });
                }
                first = false;
                let f = out.last().expect("pushed");
                list_size += f.name.len() + f.value.len() + 32;
                if list_size > max_list {
                    return Err("header list too large");
                }
            }
            Ok(out)
        }

        fn name(&self, idx: usize, src: &mut &[u8]) -> Result<Vec<u8>, &'static str> {
            if idx == 0 { string(src) } else { Ok(self.get(idx)?.0) }
        }

        fn get(&self, idx: usize) -> Result<(Vec<u8>, Vec<u8>), &'static str> {
            match idx {
                0 => Err("index 0"),
                1..=61 => {
                    let (n, v) = super::STATIC[idx - 1];
                    Ok((n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                }
                _ => self.dynamic.get(idx - 62).cloned().ok_or("index out of range"),
            }
        }

        fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
            let sz = name.len() + value.len() + 32;
            self.evict(sz);
            if sz <= self.max_size {
                self.size += sz;
                self.dynamic.push_front((name, value));
            }
        }

        /// Evicts until `extra` more bytes fit (an entry larger than the
        /// table empties it, RFC 7541 §4.4).
        fn evict(&mut self, extra: usize) {
            while self.size + extra > self.max_size {
                match self.dynamic.pop_back() {
                    Some((n, v)) => self.size -= n.len() + v.len() + 32,
                    None => break,
                }
            }
        }
    }

    fn int(src: &mut &[u8], prefix: u8) -> Result<usize, &'static str> {
        let mask = (1u16 << prefix) as u8 - 1;
        let (&first, rest) = src.split_first().ok_or("truncated integer")?;
        *src = rest;
        let mut v = usize::from(first & mask);
        if v < usize::from(mask) {
            return Ok(v);
        }
        let mut shift = 0u32;
        loop {
            let (&b, rest) = src.split_first().ok_or("truncated integer")?;
            *src = rest;
            if shift > 28 {
                return Err("integer overflow");
            }
            v += usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
    }

    fn string(src: &mut &[u8]) -> Result<Vec<u8>, &'static str> {
        let huffman = src.first().ok_or("truncated string")? & 0x80 != 0;
        let len = int(src, 7)?;
        if src.len() < len {
            return Err("truncated string");
        }
        let (raw, rest) = src.split_at(len);
        *src = rest;
        if huffman { huffman_decode(raw) } else { Ok(raw.to_vec()) }
    }

    fn huffman_decode(src: &[u8]) -> Result<Vec<u8>, &'static str> {
        // Canonical code: walk bit by bit; codes are at most 30 bits.
        let mut out = Vec::with_capacity(src.len() * 8 / 5);
        let (mut code, mut bits) = (0u32, 0u8);
        for &byte in src {
            for i in (0..8).rev() {
                code = (code << 1) | u32::from((byte >> i) & 1);
                bits += 1;
                if let Some(sym) = huffman_lookup(code, bits) {
                    if sym == 256 {
                        return Err("EOS in huffman string");
                    }
                    out.push(sym as u8);
                    code = 0;
                    bits = 0;
                } else if bits >= 30 {
                    return Err("invalid huffman code");
                }
            }
        }
        // Padding: fewer than 8 bits, all ones (a prefix of EOS).
        if bits > 7 || code != (1u32 << bits) - 1 {
            return Err("invalid huffman padding");
        }
        Ok(out)
    }

    fn huffman_lookup(code: u32, bits: u8) -> Option<usize> {
        use std::sync::OnceLock;
        static BY_LEN: OnceLock<Vec<Vec<(u32, usize)>>> = OnceLock::new();
        let by_len = BY_LEN.get_or_init(|| {
            let mut v = vec![Vec::new(); 31];
            for (sym, &(c, l)) in super::HUFFMAN.iter().enumerate() {
                v[usize::from(l)].push((c, sym));
            }
            for l in &mut v {
                l.sort_unstable();
            }
            v
        });
        let row = by_len.get(usize::from(bits))?;
        row.binary_search_by_key(&code, |&(c, _)| c).ok().map(|i| row[i].1)
    }

    pub fn encode_literal(dst: &mut Vec<u8>, name: &[u8], value: &[u8], sensitive: bool) {
        // Literal (without indexing or never indexed), new name, raw strings.
        dst.push(if sensitive { 0x10 } else { 0x00 });
        encode_string(dst, name);
        encode_string(dst, value);
    }

    fn encode_string(dst: &mut Vec<u8>, s: &[u8]) {
        encode_int(dst, s.len(), 7, 0x00);
        dst.extend_from_slice(s);
    }

    fn encode_int(dst: &mut Vec<u8>, mut v: usize, prefix: u8, flags: u8) {
        let mask = (1usize << prefix) - 1;
        if v < mask {
            dst.push(flags | v as u8);
            return;
        }
        dst.push(flags | mask as u8);
        v -= mask;
        while v >= 128 {
            dst.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        dst.push(v as u8);
    }
}

/// RFC 7541 Appendix A.
#[rustfmt::skip]
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];
/// RFC 7541 Appendix B: (code, bit length) of symbols 0..=255 and EOS (256).
#[rustfmt::skip]
const HUFFMAN: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28), (0xfffffe5, 28),
    (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28),
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28),
    (0xfffffef, 28), (0xffffff0, 28), (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), (0x3fa, 10), (0x3fb, 10),
    (0xf9, 8), (0x7fb, 11), (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6),
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6),
    (0x1c, 6), (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), (0x21, 6),
    (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7),
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7), (0x67, 7), (0x68, 7),
    (0x69, 7), (0x6a, 7), (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7),
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6),
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), (0x24, 6), (0x5, 5),
    (0x25, 6), (0x26, 6), (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7),
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7),
    (0x2c, 6), (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), (0x3ffd, 14),
    (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20),
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23),
    (0x7fffdb, 23), (0x7fffdc, 23), (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23),
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23),
    (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23),
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), (0x3fffda, 22), (0x1fffdd, 21),
    (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21),
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22),
    (0x7fffeb, 23), (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20), (0x3fffe2, 22),
    (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23),
    (0x3fffe8, 22), (0x1ffffec, 25), (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27),
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21),
    (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), (0xffffffd, 28), (0x7ffffe3, 27),
    (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21),
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22),
    (0x1ffffee, 25), (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27), (0x7ffffe8, 27),
    (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), (0x3fffffff, 30),
];

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn pairs(fields: &[hpack::Field]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|f| (String::from_utf8(f.name.clone()).unwrap(), String::from_utf8(f.value.clone()).unwrap()))
            .collect()
    }

    #[test]
    fn decodes_rfc7541_c4_requests_with_huffman_and_dynamic_table() {
        let mut d = hpack::Decoder::new(TABLE_MAX);
        let one = d.decode(&hex("828684418cf1e3c2e5f23a6ba0ab90f4ff"), BLOCK_MAX).unwrap();
        assert_eq!(pairs(&one)[3], (":authority".into(), "www.example.com".into()));
        let two = d.decode(&hex("828684be5886a8eb10649cbf"), BLOCK_MAX).unwrap();
        assert_eq!(pairs(&two)[3], (":authority".into(), "www.example.com".into()));
        assert_eq!(pairs(&two)[4], ("cache-control".into(), "no-cache".into()));
        let three = d.decode(&hex("828785bf400a637573746f6d2d6b65798925a849e95bb8e8b4bf"), BLOCK_MAX).unwrap();
        assert_eq!(
            pairs(&three),
            [
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value")
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }

    #[test]
    fn rejects_bad_input_instead_of_panicking() {
        let mut d = hpack::Decoder::new(TABLE_MAX);
        assert!(d.decode(&hex("80"), BLOCK_MAX).is_err()); // index 0
        assert!(d.decode(&hex("be"), BLOCK_MAX).is_err()); // empty dynamic table
        assert!(d.decode(&hex("3fe21f"), BLOCK_MAX).is_err()); // size update to 4097
        assert!(d.decode(&hex("ffffffffffffffffff"), BLOCK_MAX).is_err()); // integer overflow
        assert!(d.decode(&hex("4188ff"), BLOCK_MAX).is_err()); // truncated string
        assert!(d.decode(&hex("00"), BLOCK_MAX).is_err()); // truncated literal
        assert!(d.decode(&hex("0081ff0000"), BLOCK_MAX).is_err()); // huffman: 8 bits of padding
        assert!(d.decode(&hex("8220"), BLOCK_MAX).is_err()); // size update after a field
    }

    /// A grpc-core style request: HEADERS (Huffman :authority `tmp%2Fx.sock`, indexed into the dynamic
    /// table) split over a CONTINUATION, then a second request referring to the table entry.
    #[tokio::test]
    async fn rewrites_percent_encoded_authority_and_passes_other_frames() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut fixed = AuthorityFix::new(server);
        let mut wire = PREFACE.to_vec();
        write_frame_head(&mut wire, 0, 0x4, 0, 0); // SETTINGS
        // 0x41 = literal with incremental indexing, name :authority; Huffman "tmp%2Fx.sock".
        let block1 = [hex("828683"), hex("41894d35aa2c3e5741c9d7")].concat();
        write_frame_head(&mut wire, 2, FRAME_HEADERS, FLAG_END_STREAM, 1);
        wire.extend_from_slice(&block1[..2]);
        write_frame_head(&mut wire, block1.len() - 2, FRAME_CONTINUATION, FLAG_END_HEADERS, 1);
        wire.extend_from_slice(&block1[2..]);
        write_frame_head(&mut wire, 8, 0x6, 0, 0); // PING
        wire.extend_from_slice(b"pingpong");
        let block2 = hex("828683be"); // :authority from the dynamic table
        write_frame_head(&mut wire, block2.len(), FRAME_HEADERS, FLAG_END_STREAM | FLAG_END_HEADERS, 3);
        wire.extend_from_slice(&block2);
        client.write_all(&wire).await.unwrap();
        drop(client);

        let mut out = Vec::new();
        fixed.read_to_end(&mut out).await.unwrap();
        assert!(out.starts_with(PREFACE));
        let mut rest = &out[PREFACE.len()..];
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let len = (usize::from(rest[0]) << 16) | (usize::from(rest[1]) << 8) | usize::from(rest[2]);
            frames.push((rest[3], rest[4], rest[8], rest[9..9 + len].to_vec()));
            rest = &rest[9 + len..];
        }
        let kinds: Vec<u8> = frames.iter().map(|f| f.0).collect();
        assert_eq!(kinds, [0x4, FRAME_HEADERS, 0x6, FRAME_HEADERS]);
        assert_eq!(frames[2].3, b"pingpong");
        let mut d = hpack::Decoder::new(TABLE_MAX);
        for (i, stream) in [(1, 1u8), (3, 3u8)] {
            let (_, flags, sid, block) = &frames[i];
            assert_eq!(*sid, stream);
            assert_eq!(*flags, FLAG_END_STREAM | FLAG_END_HEADERS);
            let fields = pairs(&d.decode(block, BLOCK_MAX).unwrap());
            assert_eq!(fields[3], (":authority".into(), "localhost".into()));
            assert_eq!(fields[0], (":method".into(), "GET".into()));
        }
    }

    #[test]
    fn keeps_valid_authorities() {
        assert!(valid_authority(b"localhost"));
        assert!(valid_authority(b"127.0.0.1:50051"));
        assert!(!valid_authority(b"tmp%2Fx.sock"));
        assert!(!valid_authority(b"/tmp/x.sock"));
    }
}
