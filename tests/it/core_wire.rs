//! The pure core against the wire: tests that need both `warden_core` types and the gRPC conversion
//! or the embedded default bundle (so they cannot live in the core's own unit tests).
use warden::engine;
use warden::identity::Target;

#[test]
fn indexed_and_linear_evaluation_agree_on_the_default_bundle() {
    let b = warden::runtime::files::embedded().unwrap();
    let mut n = 0;
    for t in &b.tests {
        let Some(r) = t.body.get("authorize") else { continue };
        let r: warden::proto::AuthorizeRequest = serde_json::from_value(r.clone()).unwrap();
        let base = warden::grpc::convert::request_from_proto(r, 1_767_225_600_000).unwrap();
        // The case itself, and the same request with other actions and principals of the bundle.
        let actions = [
            "sagemaker:CreatePartnerAppPresignedUrl",
            "sagemaker:CreateApp",
            "s3:GetObject",
            "sts:AssumeRole",
            "iam:PassRole",
            base.action.as_str(),
        ];
        let principals: Vec<String> =
            b.users.keys().chain(b.roles.keys()).cloned().chain([base.principal.clone()]).collect();
        for a in actions {
            for p in &principals {
                let mut r = base.clone();
                r.action = a.to_ascii_lowercase();
                r.principal = p.clone();
                r.explain = true;
                assert_eq!(
                    engine::authorize_with(&b, &r, true),
                    engine::authorize_with(&b, &r, false),
                    "{} {a} {p}",
                    t.name
                );
                n += 1;
            }
        }
    }
    assert!(n > 1000, "{n}");
}

#[test]
fn job_wire_defaults() {
    // On the wire: MaxRuntimeInSeconds is `optional`; absent stays absent (the core applies 86,400),
    // an explicit 0 stays 0 (out of range); the job ARN and type pass through; no start means now.
    let wire = |max: Option<u32>| warden::proto::PropagateIdentityRequest {
        target: Some(warden::proto::propagate_identity_request::Target::Job(warden::proto::JobTarget {
            domain_id: "d-ssotip000001".into(),
            job_type: "TRAINING".into(),
            max_runtime_in_seconds: max,
            background_session_started_at: None,
            job_arn: "arn:aws:sagemaker:us-east-1:111122223333:training-job/t-1".into(),
        })),
        channel: 0,
        evidence: Some(warden::proto::Evidence {
            identity_center_user: Some(warden::proto::IdentityCenterUser {
                user_id: "u-1".into(),
                user_name: "alice".into(),
                identity_store_arn: "arn:aws:identitystore::111122223333:identitystore/d-1".into(),
            }),
            ..warden::proto::Evidence::default()
        }),
    };
    for max in [None, Some(0), Some(3600)] {
        let req = warden::grpc::propagate::request_from_proto(wire(max), 1_000).expect("a valid wire request");
        assert_eq!(
            req.target,
            Target::Job {
                domain_id: "d-ssotip000001".into(),
                job_type: Some("TRAINING".into()),
                job_arn: Some("arn:aws:sagemaker:us-east-1:111122223333:training-job/t-1".into()),
                max_runtime_seconds: max,
                background_started_ms: None
            }
        );
    }
    // proto3 `optional` keeps the wire format: an old client's explicit value decodes the same.
    use prost::Message as _;
    let bytes = wire(Some(3600)).encode_to_vec();
    let back = warden::proto::PropagateIdentityRequest::decode(bytes.as_slice()).expect("decodes");
    let Some(warden::proto::propagate_identity_request::Target::Job(j)) = back.target else { panic!("a job") };
    assert_eq!(j.max_runtime_in_seconds, Some(3600));
}
