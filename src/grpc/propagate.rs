//! PropagateIdentity on the wire: `proto::PropagateIdentityRequest` → `identity::Request`, the
//! outcome → `proto::PropagateIdentityResponse`, and identity errors → gRPC statuses.
use super::convert::{context_from_struct, determining_refs};
use crate::proto;
use warden_core::engine::RequestError;
use warden_core::identity::{self, AdminRole, Channel, Evidence, IcEvidence, Source, Target};

fn opt(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

/// Latest timestamp accepted: 9999-12-31T23:59:59Z (RFC 3339's range, as `google.protobuf.Timestamp`).
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// A `google.protobuf.Timestamp` in milliseconds since the epoch, checked against its documented range
/// (0001-01-01 to 9999-12-31, nanos 0–999,999,999), so no arithmetic on it can overflow.
pub fn timestamp_ms(t: &pbjson_types::Timestamp, field: &str) -> Result<i64, RequestError> {
    if !(-62_135_596_800..=MAX_TIMESTAMP_SECONDS).contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(RequestError::new(
            field,
            format!("timestamp {}s {}ns is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z", t.seconds, t.nanos),
        ));
    }
    Ok(t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
}

/// Converts a wire request; `now_ms` is the request time.
pub fn request_from_proto(r: proto::PropagateIdentityRequest, now_ms: i64) -> Result<identity::Request, RequestError> {
    let proto::PropagateIdentityRequest { target, channel, evidence } = r;
    let channel = match proto::Channel::try_from(channel) {
        Ok(proto::Channel::Unspecified) => None,
        Ok(proto::Channel::Studio) => Some(Channel::Studio),
        Ok(proto::Channel::PresignedUrlApi) => Some(Channel::PresignedUrlApi),
        Ok(proto::Channel::Sdk) => Some(Channel::Sdk),
        Err(_) => return Err(RequestError::new("channel", format!("unknown channel {channel}"))),
    };
    let target = match target {
        None => return Err(RequestError::new("target", "one of `partner_app`, `studio_profile` or `job` is required")),
        Some(proto::propagate_identity_request::Target::PartnerApp(p)) => {
            let proto::PartnerAppTarget { arn, domain_id, user_profile_name, team_id } = p;
            Target::PartnerApp {
                arn,
                domain_id: opt(domain_id),
                user_profile: opt(user_profile_name),
                team_id: opt(team_id),
            }
        }
        Some(proto::propagate_identity_request::Target::StudioProfile(p)) => {
            let proto::StudioProfileTarget { domain_id, team_id } = p;
            Target::Profile { domain_id, team_id: opt(team_id) }
        }
        Some(proto::propagate_identity_request::Target::Job(j)) => {
            let proto::JobTarget {
                domain_id,
                job_type,
                max_runtime_in_seconds,
                background_session_started_at,
                job_arn,
            } = j;
            if !matches!(job_type.as_str(), "" | "TRAINING" | "PROCESSING") {
                return Err(RequestError::new("job.job_type", format!("`{job_type}` is not TRAINING or PROCESSING")));
            }
            let started = match background_session_started_at {
                None => None,
                Some(t) => Some(timestamp_ms(&t, "job.background_session_started_at")?),
            };
            // `optional`: absent is SageMaker's default (86,400, applied by the core); an explicit 0 is
            // out of range.
            Target::Job {
                domain_id,
                job_type: opt(job_type),
                job_arn: opt(job_arn),
                max_runtime_seconds: max_runtime_in_seconds,
                background_started_ms: started,
            }
        }
    };
    let e = evidence.unwrap_or_default();
    let proto::Evidence {
        identity_center_user,
        principal_arn,
        session_tags,
        saml_attributes,
        source_identity,
        assumed_by,
        context,
    } = e;
    let ic = identity_center_user.map(|u| {
        let proto::IdentityCenterUser { user_id, user_name, identity_store_arn } = u;
        IcEvidence { user_id, user_name, identity_store_arn }
    });
    let mut session_tags: Vec<(String, String)> = session_tags.into_iter().collect();
    session_tags.sort();
    let mut saml: Vec<(String, String)> = saml_attributes.into_iter().collect();
    saml.sort();
    let context =
        context_from_struct(context).map_err(|e| RequestError::new(format!("evidence.{}", e.field), e.rule))?;
    Ok(identity::Request {
        target,
        channel,
        evidence: Evidence {
            ic,
            principal: opt(principal_arn),
            session_tags,
            saml,
            source_identity: opt(source_identity),
            assumed_by: opt(assumed_by),
            context,
        },
        now_ms,
    })
}

fn ts(ms: i64) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// Converts an outcome.
pub fn outcome_to_proto(
    o: &identity::Outcome,
    revision: &str,
    decision_id: String,
) -> proto::PropagateIdentityResponse {
    let source = match o.source {
        None => proto::IdentitySource::Unspecified,
        Some(Source::IdentityCenter) => proto::IdentitySource::IdentityCenter,
        Some(Source::SessionTag) => proto::IdentitySource::SessionTag,
        Some(Source::SamlPrincipalTag) => proto::IdentitySource::SamlPrincipalTag,
        Some(Source::IamUser) => proto::IdentitySource::IamUser,
        Some(Source::SessionName) => proto::IdentitySource::SessionName,
    };
    let admin_role = match o.admin_role {
        None => proto::AdminRole::Unspecified,
        Some(AdminRole::RootAdmin) => proto::AdminRole::RootAdmin,
        Some(AdminRole::Admin) => proto::AdminRole::Admin,
        Some(AdminRole::User) => proto::AdminRole::User,
    };
    proto::PropagateIdentityResponse {
        user_name: o.user_name.clone().unwrap_or_default(),
        source: source as i32,
        admin_role: admin_role as i32,
        trust_verified: o.trust_verified,
        determining: determining_refs(&o.determining),
        bundle_revision: revision.to_owned(),
        profile: o.profile.as_ref().map(|p| proto::StudioProfile {
            name: p.name.clone(),
            arn: p.arn.clone(),
            execution_role_arn: p.execution_role_arn.clone(),
            tags: p.tags.iter().cloned().collect(),
        }),
        job: o.job.as_ref().map(|j| proto::JobIdentity {
            execution_role_arn: j.execution_role_arn.clone(),
            effective_max_runtime_seconds: j.effective_max_runtime_seconds,
            background_session_expires_at: Some(ts(j.background_session_expires_ms)),
            user_identity: Some(proto::UserIdentity {
                r#type: "AssumedRole".into(),
                principal_id: format!("{}:SageMaker", j.role_id),
                arn: format!("arn:aws:sts::{}:assumed-role/{}/SageMaker", j.account, j.role_name),
                account_id: j.account.clone(),
                session_context: Some(proto::SessionContext {
                    session_issuer: Some(proto::SessionIssuer {
                        r#type: "Role".into(),
                        principal_id: j.role_id.clone(),
                        arn: j.execution_role_arn.clone(),
                        account_id: j.account.clone(),
                        user_name: j.role_name.clone(),
                    }),
                }),
                on_behalf_of: Some(proto::OnBehalfOf {
                    user_id: j.user_id.clone(),
                    identity_store_arn: j.identity_store_arn.clone(),
                }),
            }),
        }),
        diagnostics: o.diagnostics.clone(),
        decision_id,
    }
}
