//! The runtime below the wire: the active snapshot (`store`), its decision cache, activation (what
//! reloads and admin changes share), the reload watcher, the admin state (a directory, or a table a
//! fleet shares, and its poll), the bundle file reader, signed bundles (`signatures`) and, with the
//! cargo feature `aws`, bundles synced from S3 (`s3`). Depends on `warden_core` and `telemetry`;
//! never on `grpc`, `server` or `cli`.
pub mod activation;
pub mod cache;
pub mod files;
pub mod memory;
pub mod reload;
#[cfg(feature = "aws")]
pub mod s3;
pub mod signatures;
pub mod state;
pub mod state_poll;
pub mod store;
