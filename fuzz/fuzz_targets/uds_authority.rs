//! The Unix-socket `:authority` shim (`warden::server::uds_authority::Rewriter`) on arbitrary
//! client bytes: it must never panic, never hold more than `MAX_BUFFERED` bytes, give the same
//! output and outcome however the bytes are split, and emit no frame above `MAX_FRAME_SIZE`.
//!
//! The first input byte picks how the rest is framed (raw after the preface, one header block,
//! or several header blocks sharing the dynamic table); the second is the read size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::server::uds_authority::{MAX_BUFFERED, MAX_FRAME_SIZE, PREFACE, Rewriter};

const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

fn head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream_id: u32) {
    let [_, a, b, c] = (len as u32).to_be_bytes();
    out.extend_from_slice(&[a, b, c, kind, flags]);
    out.extend_from_slice(&stream_id.to_be_bytes());
}

/// `block` as HEADERS + CONTINUATIONs of `frame` bytes on `stream_id`.
fn header_frames(out: &mut Vec<u8>, block: &[u8], frame: usize, stream_id: u32) {
    let chunks: Vec<&[u8]> = if block.is_empty() { vec![&[]] } else { block.chunks(frame).collect() };
    for (i, chunk) in chunks.iter().enumerate() {
        let kind = if i == 0 { HEADERS } else { CONTINUATION };
        let flags = if i + 1 == chunks.len() { END_HEADERS } else { 0 };
        head(out, chunk.len(), kind, flags, stream_id);
        out.extend_from_slice(chunk);
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, read, rest @ ..] = data else { return };
    let mut wire = PREFACE.to_vec();
    match mode % 3 {
        0 => wire.extend_from_slice(rest),
        1 => header_frames(&mut wire, rest, usize::from(*read).max(1) * 64, 1),
        _ => {
            // Length-prefixed blocks on streams 1, 3, 5...
            let (mut rest, mut stream) = (rest, 1);
            while let [len, tail @ ..] = rest {
                let n = (usize::from(*len) * 4).min(tail.len());
                let (block, tail) = tail.split_at(n);
                header_frames(&mut wire, block, MAX_FRAME_SIZE, stream);
                (rest, stream) = (tail, stream + 2);
            }
        }
    }

    let mut whole = Rewriter::new();
    let mut out = Vec::new();
    let res = whole.feed(&wire, &mut out);
    assert!(whole.buffered() <= MAX_BUFFERED);

    let mut split = Rewriter::new();
    let mut split_out = Vec::new();
    let mut split_res = Ok(());
    for piece in wire.chunks(usize::from(*read).max(1)) {
        split_res = split.feed(piece, &mut split_out);
        assert!(split.buffered() <= MAX_BUFFERED);
        if split_res.is_err() {
            break;
        }
    }
    assert_eq!(split_res, res);
    assert_eq!(split_out, out);

    if res.is_ok() && mode % 3 != 0 {
        // Well-framed input: every frame that comes out is whole and within the frame size.
        let mut frames = out.strip_prefix(PREFACE.as_slice()).unwrap();
        while let [a, b, c, _, _, _, _, _, _, payload @ ..] = frames {
            let len = (usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c);
            assert!(len <= MAX_FRAME_SIZE && len <= payload.len());
            frames = &payload[len..];
        }
        assert!(frames.is_empty());
    }
});
