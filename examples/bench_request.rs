//! Writes the raw protobuf bytes (not gRPC-framed) of one `warden.v1.AuthorizeRequest`, given as proto
//! JSON in a file, to stdout — the request file `../shared/bench/grpc-load.sh` frames for h2load:
//!
//!     cargo run --release --example bench_request -- bench/requests/allow_presign.json > /tmp/allow.bin
//!
//! With `--decode`, reads the bytes back from stdin instead and prints them as proto JSON (a check
//! that a `.bin` file holds the request it should).
use prost::Message as _;
use std::io::{Read as _, Write as _};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--decode" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            let r = warden::proto::AuthorizeRequest::decode(buf.as_slice())?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        [path] => {
            let text = std::fs::read_to_string(path)?;
            let r: warden::proto::AuthorizeRequest = serde_json::from_str(&text)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&r.encode_to_vec())?;
            out.flush()?;
        }
        _ => {
            eprintln!("usage: bench_request REQUEST.json > request.bin   |   bench_request --decode < request.bin");
            std::process::exit(64);
        }
    }
    Ok(())
}
