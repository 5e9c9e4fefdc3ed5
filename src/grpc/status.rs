//! The only place domain errors become `tonic::Status`: INVALID_ARGUMENT carries a
//! `google.rpc.BadRequest` field violation naming the field; PropagateIdentity's denials carry a
//! `google.rpc.ErrorInfo` and a `warden.v1.PropagateIdentityDenial`.
use super::convert;
use crate::proto;
use prost::Message;
use std::collections::HashMap;
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

/// The `ErrorInfo` domain of Warden's denials.
pub const ERROR_DOMAIN: &str = "warden.v1";

/// The gRPC status of an identity error: INVALID_ARGUMENT with a `google.rpc.BadRequest`; every
/// PERMISSION_DENIED and FAILED_PRECONDITION with a `google.rpc.ErrorInfo` (reason = the failed check;
/// metadata: the IAM decision, decision id, bundle revision, and the failed condition of an
/// impersonation) and a `warden.v1.PropagateIdentityDenial` (the determining statements).
pub fn error_to_status(e: &identity::Error, decision_id: &str, revision: &str) -> Status {
    let code = match e.kind {
        ErrorKind::Malformed => {
            let field = e.field.clone().unwrap_or_default();
            return Status::with_error_details(
                Code::InvalidArgument,
                format!("invalid request: {field}: {}", e.message),
                ErrorDetails::with_bad_request_violation(field, e.message.clone()),
            );
        }
        ErrorKind::UnknownTarget => return Status::not_found(e.message.clone()),
        ErrorKind::NotAuthorized => Code::PermissionDenied,
        ErrorKind::Precondition => Code::FailedPrecondition,
    };
    let check = e.check.map_or("UNSPECIFIED", identity::Check::as_str);
    let decision = e.decision.as_ref().map(|d| convert::decision_to_proto(d.decision));
    let mut metadata: HashMap<String, String> = HashMap::new();
    metadata.insert("check".into(), check.to_owned());
    metadata.insert("decision".into(), decision.map_or("NONE", |d| d.as_str_name()).to_owned());
    metadata.insert("decision_id".into(), decision_id.to_owned());
    metadata.insert("bundle_revision".into(), revision.to_owned());
    for (k, v) in &e.metadata {
        metadata.insert(k.clone(), v.clone());
    }
    let info = tonic_types::pb::ErrorInfo { reason: check.to_owned(), domain: ERROR_DOMAIN.to_owned(), metadata };
    let denial = proto::PropagateIdentityDenial {
        check: check.to_owned(),
        decision: decision.map_or(proto::Decision::Unspecified, |d| d) as i32,
        determining: convert::determining_refs(&e.determining),
        decision_id: decision_id.to_owned(),
        bundle_revision: revision.to_owned(),
        diagnostics: e.decision.as_ref().map(|d| d.diagnostics.clone()).unwrap_or_default(),
    };
    let details = vec![
        any("type.googleapis.com/google.rpc.ErrorInfo", &info),
        any("type.googleapis.com/warden.v1.PropagateIdentityDenial", &denial),
    ];
    let status = tonic_types::pb::Status { code: code as i32, message: e.message.clone(), details };
    Status::with_details(code, e.message.clone(), status.encode_to_vec().into())
}

fn any(type_url: &str, m: &impl Message) -> prost_types::Any {
    prost_types::Any { type_url: type_url.to_owned(), value: m.encode_to_vec() }
}

/// The `warden.v1.PropagateIdentityDenial` detail of a status, if it has one (clients, tests).
pub fn denial_of(s: &Status) -> Option<proto::PropagateIdentityDenial> {
    let st = tonic_types::pb::Status::decode(s.details()).ok()?;
    let any = st.details.into_iter().find(|a| a.type_url.ends_with("/warden.v1.PropagateIdentityDenial"))?;
    proto::PropagateIdentityDenial::decode(any.value.as_slice()).ok()
}
