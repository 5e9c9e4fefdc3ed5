//! Warden's pure core: the IAM policy language (`policy`), the evaluator (`engine`), the
//! PropagateIdentity rules (`identity`) and bundle building from (path, bytes) pairs (`bundle`).
//! No I/O, no async, no clock reads (the time is a field of the request), no wire types: the
//! `warden` crate adapts gRPC and files to these types.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod bundle;
pub mod engine;
pub mod identity;
pub mod policy;
