//! The wire side of Warden: conversions between the protobuf messages of `warden.v1` and the domain
//! types of the engine. (The tonic services arrive with the sidecar.)
pub mod convert;
