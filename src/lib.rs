//! Warden: a gRPC authorization sidecar (policy decision point) for Amazon SageMaker Studio and
//! SageMaker partner AI apps. IAM policies evaluated with IAM's own semantics.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod bundle;
pub mod cache;
pub mod cli;
pub mod config;
pub mod engine;
pub mod grpc;
pub mod identity;
pub mod policy;
pub mod proto;
pub mod reload;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
