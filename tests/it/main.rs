//! Warden's integration tests, built into one binary (a 2-core CI machine links one binary faster).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a panic is a failed run, reported with its message"
)]
mod bad_bundles; // deliberately broken bundles under tests/bad-bundles/, each with its exact errors
mod cache; // the decision cache: hits, revisions, time, capacity
mod cli; // the `warden` binary: validate, eval, test, exit codes
mod connections; // connection bounds: --max-connections, handshake and idle timeouts, keep-alive, non-reading clients
mod core_wire; // the pure core against the wire conversion and the embedded bundle
mod differential; // decisions vs @cloud-copilot/iam-simulate on a seeded generated corpus
mod layering; // the pure modules stay pure
mod propagate; // PropagateIdentity through the real server: codes, messages, remembered admins
mod reload; // hot reload with the real watcher, poll mode, SIGHUP, reload under load
mod server; // the real gRPC server on 127.0.0.1:0 and on a Unix socket
mod support; // helpers shared by the modules above
