//! The wire side of Warden: the tonic services of `warden.v1`, conversions between the protobuf
//! messages and the engine's domain types, and the mapping of errors to gRPC statuses.
pub mod answers;
pub mod authorize;
pub mod codec;
pub mod convert;
pub mod ext_authz;
pub mod propagate;
pub mod status;
