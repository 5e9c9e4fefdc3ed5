//! The generated gRPC types of `proto/warden/v1/warden.proto` (prost + tonic + pbjson serde).
//! Only the wire-facing modules (`grpc`, `server`, `cli`) and tests use these.
#![expect(clippy::allow_attributes, reason = "prost, tonic and pbjson write `#[allow]`s into the code they generate")]

tonic::include_proto!("warden.v1");
include!(concat!(env!("OUT_DIR"), "/warden.v1.serde.rs"));

/// The encoded `FileDescriptorSet` of the Warden protos (with imports), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("warden_descriptor");
