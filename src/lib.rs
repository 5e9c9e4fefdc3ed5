//! Warden: a gRPC authorization sidecar (policy decision point) for Amazon SageMaker Studio and
//! SageMaker partner AI apps. IAM policies evaluated with IAM's own semantics.
//!
//! The pure policy engine, identity rules and bundle building live in `warden-core` (re-exported here
//! as `bundle`, `engine`, `identity`, `policy`); this crate holds the wire, the runtime and the CLI.
//! Dependencies run one way: `cli → server → grpc → runtime → warden_core`.
#![deny(unsafe_code)]
#![deny(rust_2018_idioms)]

pub use warden_core::{bundle, engine, identity, policy};

#[cfg(feature = "aws")]
pub mod aws;
pub mod cli;
pub mod config;
pub mod grpc;
pub mod proto;
pub mod runtime;
pub mod server;
pub mod telemetry;
