//! Writes the raw protobuf bytes (not gRPC-framed) of one Envoy ext_authz v3 `CheckRequest` to stdout —
//! the request file `../shared/bench/grpc-load.sh` frames for h2load (`bench/server-load.sh` CHECKS=):
//!
//!     cargo run --release --example bench_check_request -- bench/requests/check_open.json > /tmp/check.bin
//!
//! The input is a small JSON description of the HTTP request Envoy would send:
//! `{"method": "GET", "host": "...", "path": "...", "source_ip": "10.0.0.1", "headers": {"k": "v"}}`
//! (envoy-types' messages have no JSON mapping of their own). With `--decode`, reads the bytes back
//! from stdin and prints what they hold.
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use prost::Message as _;
use std::collections::HashMap;
use std::io::{Read as _, Write as _};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Described {
    method: String,
    host: String,
    path: String,
    source_ip: String,
    #[serde(default)]
    headers: HashMap<String, String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--decode" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            println!("{:#?}", CheckRequest::decode(buf.as_slice())?);
        }
        [path] => {
            let d: Described = serde_json::from_str(&std::fs::read_to_string(path)?)?;
            let r = CheckRequest {
                attributes: Some(AttributeContext {
                    source: Some(Peer {
                        address: Some(Address {
                            address: Some(address::Address::SocketAddress(SocketAddress {
                                address: d.source_ip,
                                ..SocketAddress::default()
                            })),
                        }),
                        ..Peer::default()
                    }),
                    request: Some(Request {
                        http: Some(HttpRequest {
                            method: d.method,
                            host: d.host,
                            path: d.path,
                            headers: d.headers,
                            ..HttpRequest::default()
                        }),
                        ..Request::default()
                    }),
                    ..AttributeContext::default()
                }),
            };
            let mut out = std::io::stdout().lock();
            out.write_all(&r.encode_to_vec())?;
            out.flush()?;
        }
        _ => {
            eprintln!(
                "usage: bench_check_request REQUEST.json > request.bin   |   bench_check_request --decode < request.bin"
            );
            std::process::exit(64);
        }
    }
    Ok(())
}
