//! The only place domain errors become `tonic::Status`: INVALID_ARGUMENT carries a
//! `google.rpc.BadRequest` field violation naming the field.
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use warden_core::engine::RequestError;
use warden_core::identity::{self, ErrorKind};

/// INVALID_ARGUMENT naming the field and the rule.
pub fn invalid_argument(e: &RequestError) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {}: {}", e.field, e.rule),
        ErrorDetails::with_bad_request_violation(e.field.clone(), e.rule.clone()),
    )
}

/// INVALID_ARGUMENT: the request's bytes do not decode as its message (counted like every answer).
pub fn undecodable(detail: &str) -> Status {
    let detail: String = detail.chars().take(128).collect();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: the message does not decode: {detail}"),
        ErrorDetails::with_bad_request_violation(
            "request",
            format!("does not decode as the request message: {detail}"),
        ),
    )
}

/// UNAVAILABLE: no bundle has been activated yet.
pub fn no_bundle() -> Status {
    Status::unavailable("no policy bundle is active yet: the sidecar is starting or its bundle is invalid")
}

/// INTERNAL: evaluation panicked (counted; never an allow).
pub fn internal_panic() -> Status {
    Status::internal("internal error while evaluating the request; the request is denied")
}

/// The gRPC status of an identity error (BadRequest detail for INVALID_ARGUMENT).
pub fn error_to_status(e: &identity::Error) -> Status {
    match e.kind {
        ErrorKind::Malformed => {
            let field = e.field.clone().unwrap_or_default();
            Status::with_error_details(
                Code::InvalidArgument,
                format!("invalid request: {field}: {}", e.message),
                ErrorDetails::with_bad_request_violation(field, e.message.clone()),
            )
        }
        ErrorKind::UnknownTarget => Status::not_found(e.message.clone()),
        ErrorKind::NotAuthorized => Status::permission_denied(e.message.clone()),
        ErrorKind::Precondition => Status::failed_precondition(e.message.clone()),
    }
}
