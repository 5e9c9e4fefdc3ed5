//! Minimal HPACK (RFC 7541): a bounded decoder that tracks the client's dynamic table, and a
//! stateless literal encoder for what the shim hands to h2.
//!
//! Every length, index and size that comes off the wire is checked before it is used: integers
//! take at most four continuation bytes, a string's length is checked against the bytes left in
//! the block before anything is allocated, table indices and Huffman codes are looked up with
//! `get`, the dynamic table never grows past the size the server advertised, and the decoded
//! header list is bounded by the caller.

use std::borrow::Cow;
use std::collections::VecDeque;

/// What is wrong with a header block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// Index 0 is not an entry (RFC 7541 §6.1).
    #[error("index 0")]
    IndexZero,
    /// An index past the static and dynamic tables.
    #[error("index {0} is past the end of the table")]
    IndexOutOfRange(usize),
    /// The block ends inside an integer.
    #[error("truncated integer")]
    TruncatedInteger,
    /// An integer with more than four continuation bytes.
    #[error("integer too large")]
    IntegerOverflow,
    /// The block ends inside a string.
    #[error("truncated string")]
    TruncatedString,
    /// A Huffman string decodes to EOS (RFC 7541 §5.2).
    #[error("EOS in a Huffman string")]
    HuffmanEos,
    /// A bit sequence that is no Huffman code.
    #[error("invalid Huffman code")]
    HuffmanInvalid,
    /// Padding longer than 7 bits or not all ones (RFC 7541 §5.2).
    #[error("invalid Huffman padding")]
    HuffmanPadding,
    /// A dynamic table size update above SETTINGS_HEADER_TABLE_SIZE.
    #[error("dynamic table size update to {0} above the advertised {1}")]
    TableSizeTooLarge(usize, usize),
    /// A dynamic table size update after a header field (RFC 7541 §4.2).
    #[error("dynamic table size update after a header field")]
    TableSizeUpdateLate,
    /// The decoded header list exceeds the caller's bound.
    #[error("decoded header list larger than {0} bytes")]
    HeaderListTooLarge(usize),
}

/// RFC 7541 §4.1: an entry's size is its name and value lengths plus 32.
pub const ENTRY_OVERHEAD: usize = 32;

/// A header field as decoded: name, value, and whether it was sent "never indexed".
pub type FieldSink<'f> = dyn FnMut(&[u8], &[u8], bool) + 'f;

/// A dynamic table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The decoding side of one connection's HPACK context.
pub struct Decoder {
    /// Newest entry first.
    table: VecDeque<Entry>,
    /// Sum of the entries' sizes (RFC 7541 §4.1).
    size: usize,
    /// The table's current maximum size, set by size updates, at most `limit`.
    max_size: usize,
    /// SETTINGS_HEADER_TABLE_SIZE as advertised by the server.
    limit: usize,
}

impl Decoder {
    /// A decoder whose table holds at most `limit` bytes (RFC 7541 §4.1 sizes).
    pub fn new(limit: usize) -> Decoder {
        Decoder { table: VecDeque::new(), size: 0, max_size: limit, limit }
    }

    /// A decoder whose table starts at `initial` bytes and may be resized up to `limit` (a
    /// SETTINGS_HEADER_TABLE_SIZE change in progress); test stories need it.
    #[cfg(test)]
    pub fn with_sizes(initial: usize, limit: usize) -> Decoder {
        Decoder { table: VecDeque::new(), size: 0, max_size: initial, limit }
    }

    /// The table's size in RFC 7541 §4.1 terms (never above the advertised limit).
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Decodes one complete header block, calling `field` for every header field in order. Fails
    /// once the decoded list (RFC 7541 §4.1 sizes) would exceed `max_list`; nothing past that
    /// field is decoded. On error the table may be partly updated: the connection is unusable.
    pub fn decode(&mut self, mut src: &[u8], max_list: usize, field: &mut FieldSink<'_>) -> Result<(), HpackError> {
        let mut list = 0usize;
        let mut seen_field = false;
        while let Some(&first) = src.first() {
            if first & 0xe0 == 0x20 {
                // Dynamic table size update: only before the first field.
                if seen_field {
                    return Err(HpackError::TableSizeUpdateLate);
                }
                let size = int(&mut src, 5)?;
                if size > self.limit {
                    return Err(HpackError::TableSizeTooLarge(size, self.limit));
                }
                self.max_size = size;
                self.evict(0);
                continue;
            }
            seen_field = true;
            if first & 0x80 != 0 {
                // Indexed header field.
                let index = int(&mut src, 7)?;
                let (name, value) = self.entry(index)?;
                account(&mut list, name, value, max_list)?;
                field(name, value, false);
            } else if first & 0xc0 == 0x40 {
                // Literal with incremental indexing.
                let index = int(&mut src, 6)?;
                let name = self.name(index, &mut src)?.into_owned();
                let value = string(&mut src)?.into_owned();
                account(&mut list, &name, &value, max_list)?;
                field(&name, &value, false);
                self.insert(name, value);
            } else {
                // Literal without indexing (0000) or never indexed (0001).
                let sensitive = first & 0x10 != 0;
                let index = int(&mut src, 4)?;
                let name = self.name(index, &mut src)?;
                let value = string(&mut src)?;
                account(&mut list, &name, &value, max_list)?;
                field(&name, &value, sensitive);
            }
        }
        Ok(())
    }

    fn name<'r, 's: 'r>(&'r self, index: usize, src: &mut &'s [u8]) -> Result<Cow<'r, [u8]>, HpackError> {
        if index == 0 { string(src) } else { Ok(Cow::Borrowed(self.entry(index)?.0)) }
    }

    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        let zero_based = index.checked_sub(1).ok_or(HpackError::IndexZero)?;
        if let Some(&(name, value)) = STATIC.get(zero_based) {
            return Ok((name, value));
        }
        zero_based
            .checked_sub(STATIC.len())
            .and_then(|i| self.table.get(i))
            .map(|(name, value)| (&**name, &**value))
            .ok_or(HpackError::IndexOutOfRange(index))
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = entry_size(&name, &value);
        // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
        self.evict(size);
        if size <= self.max_size {
            self.size += size;
            self.table.push_front((name.into_boxed_slice(), value.into_boxed_slice()));
        }
    }

    /// Evicts the oldest entries until `extra` more bytes fit (all of them if they never will).
    fn evict(&mut self, extra: usize) {
        while self.size.saturating_add(extra) > self.max_size {
            match self.table.pop_back() {
                Some((name, value)) => self.size = self.size.saturating_sub(entry_size(&name, &value)),
                None => break,
            }
        }
    }
}

fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len().saturating_add(value.len()).saturating_add(ENTRY_OVERHEAD)
}

fn account(list: &mut usize, name: &[u8], value: &[u8], max_list: usize) -> Result<(), HpackError> {
    *list = list.saturating_add(entry_size(name, value));
    if *list > max_list { Err(HpackError::HeaderListTooLarge(max_list)) } else { Ok(()) }
}

/// RFC 7541 §5.1, with at most four continuation bytes: the value stays below 2^28 + 2^8, so
/// nothing here can overflow, and no header block this shim accepts needs more.
fn int(src: &mut &[u8], prefix_bits: u32) -> Result<usize, HpackError> {
    let mask = u8::MAX >> (8 - prefix_bits);
    let (&first, rest) = src.split_first().ok_or(HpackError::TruncatedInteger)?;
    *src = rest;
    let mut value = usize::from(first & mask);
    if value < usize::from(mask) {
        return Ok(value);
    }
    for shift in [0u32, 7, 14, 21] {
        let (&byte, rest) = src.split_first().ok_or(HpackError::TruncatedInteger)?;
        *src = rest;
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(HpackError::IntegerOverflow)
}

/// RFC 7541 §5.2: a raw string is borrowed from the block, a Huffman one decoded.
fn string<'a>(src: &mut &'a [u8]) -> Result<Cow<'a, [u8]>, HpackError> {
    let huffman = src.first().ok_or(HpackError::TruncatedString)? & 0x80 != 0;
    let len = int(src, 7)?;
    let (raw, rest) = src.split_at_checked(len).ok_or(HpackError::TruncatedString)?;
    *src = rest;
    if huffman { huffman_decode(raw).map(Cow::Owned) } else { Ok(Cow::Borrowed(raw)) }
}

/// Decodes a Huffman string bit by bit with the canonical code's per-length ranges.
pub fn huffman_decode(src: &[u8]) -> Result<Vec<u8>, HpackError> {
    // The shortest code is 5 bits: at most 8/5 symbols per byte.
    let mut out = Vec::with_capacity(src.len().saturating_mul(8) / 5);
    let (mut code, mut len) = (0u32, 0usize);
    for &byte in src {
        for bit in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> bit) & 1);
            len += 1;
            let (Some(&first), Some(&count), Some(&offset)) =
                (CANONICAL.first.get(len), CANONICAL.count.get(len), CANONICAL.offset.get(len))
            else {
                // Longer than the longest code (30 bits).
                return Err(HpackError::HuffmanInvalid);
            };
            let Some(rank) = code.checked_sub(first).filter(|&r| r < u32::from(count)) else { continue };
            let symbol = usize::from(offset) + rank as usize;
            match CANONICAL.symbols.get(symbol).copied().map(u8::try_from) {
                Some(Ok(byte)) => out.push(byte),
                Some(Err(_)) => return Err(HpackError::HuffmanEos),
                None => return Err(HpackError::HuffmanInvalid),
            }
            (code, len) = (0, 0);
        }
    }
    // Padding: at most 7 bits, all ones (a prefix of EOS).
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HpackError::HuffmanPadding);
    }
    Ok(out)
}

/// Appends a literal header field without indexing (or never indexed), new name, raw strings
/// (RFC 7541 §6.2.2, §6.2.3): it leaves the peer's dynamic table as it is.
pub fn encode_literal(dst: &mut Vec<u8>, name: &[u8], value: &[u8], sensitive: bool) {
    dst.push(if sensitive { 0x10 } else { 0x00 });
    encode_string(dst, name);
    encode_string(dst, value);
}

fn encode_string(dst: &mut Vec<u8>, s: &[u8]) {
    encode_int(dst, s.len(), 0x7f);
    dst.extend_from_slice(s);
}

/// RFC 7541 §5.1 with a 7-bit prefix and no flag bits (raw strings).
fn encode_int(dst: &mut Vec<u8>, mut value: usize, mask: u8) {
    if value < usize::from(mask) {
        dst.push(value as u8);
        return;
    }
    dst.push(mask);
    value -= usize::from(mask);
    while value >= 0x80 {
        dst.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    dst.push(value as u8);
}

/// The Huffman code of RFC 7541 Appendix B is canonical: the codes of one length are consecutive
/// and in symbol order. So a code of `len` bits is symbol `symbols[offset[len] + code - first[len]]`
/// when `code - first[len] < count[len]`.
struct Canonical {
    first: [u32; 31],
    count: [u16; 31],
    offset: [u16; 31],
    /// Symbols ordered by code length, then by symbol (= by code).
    symbols: [u16; 257],
}

const CANONICAL: Canonical = canonical();

#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time only (CANONICAL): an out-of-bounds index fails the build, it cannot panic"
)]
const fn canonical() -> Canonical {
    let mut c = Canonical { first: [0; 31], count: [0; 31], offset: [0; 31], symbols: [0; 257] };
    let mut next = 0usize;
    let mut len = 1usize;
    while len <= 30 {
        c.offset[len] = next as u16;
        let mut symbol = 0usize;
        while symbol < HUFFMAN.len() {
            let (code, bits) = HUFFMAN[symbol];
            if bits as usize == len {
                if c.count[len] == 0 {
                    c.first[len] = code;
                }
                c.count[len] += 1;
                c.symbols[next] = symbol as u16;
                next += 1;
            }
            symbol += 1;
        }
        len += 1;
    }
    c
}

/// RFC 7541 Appendix A.
#[rustfmt::skip]
pub const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];
/// RFC 7541 Appendix B: (code, bit length) of symbols 0..=255 and EOS (256).
#[rustfmt::skip]
pub const HUFFMAN: [(u32, u8); 257] = [
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
