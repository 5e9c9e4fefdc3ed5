use super::*;
use serde_json::json;

fn routes(v: Value) -> Result<Routes, Vec<String>> {
    let mut problems = ProblemList::new();
    match read_routes(ROUTES_FILE, &v, &mut problems) {
        Some(r) if problems.is_empty() => Ok(r),
        _ => Err(problems.into_sorted().iter().map(ToString::to_string).collect()),
    }
}

fn sample() -> Routes {
    routes(json!({
        "region": "us-east-1",
        "account": "111122223333",
        "routes": [
            {"name": "api", "match": {"path_template": "/apps/{app}/api/{rest=**}", "methods": ["GET", "POST"]},
             "principal": {"header": "x-amzn-principal-arn"},
             "action": "sagemaker:CallPartnerAppApi",
             "resource": "arn:aws:sagemaker:{region}:{account}:partner-app/{app}",
             "context": {"aws:SourceIp": "{source_ip}"},
             "propagate": {"channel": "SDK"}},
            {"name": "admin", "match": {"path_prefix": "/admin/", "host": "gw.example.com"},
             "principal": {"peer_certificate": "uri_san"},
             "action": "sagemaker:DescribePartnerApp",
             "resource": "arn:aws:sagemaker:{region}:{account}:partner-app/*",
             "context": {"aws:SourceIp": "{source_ip}"},
             "trust_x_forwarded_for": true}
        ]
    }))
    .unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn the_first_matching_route_decides_and_templates_expand() {
    let r = sample();
    let h = headers(&[
        ("x-amzn-principal-arn", "arn:aws:iam::111122223333:user/alice"),
        ("x-amzn-session-tag-team", "Team1"),
        ("x-forwarded-for", "1.2.3.4"),
    ]);
    let req = HttpRequest {
        method: "GET",
        host: "gw",
        path: "/apps/app-ABC/api/v1/x?q=1",
        headers: Some(&h),
        peer_ip: "10.0.0.7",
        peer_principal: "",
    };
    let MapOutcome::Mapped(m) = r.map(&req) else { panic!("{:?}", r.map(&req)) };
    assert_eq!(m.route, "api");
    assert_eq!(m.principal_arn, "arn:aws:iam::111122223333:user/alice");
    assert_eq!(m.session_tags, vec![("team".to_owned(), "Team1".to_owned())]);
    assert_eq!(m.resource, "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-ABC");
    // x-forwarded-for is not trusted on this route.
    assert_eq!(m.context, vec![("aws:SourceIp".to_owned(), "10.0.0.7".to_owned())]);
    assert_eq!(m.propagate, Some(("SDK".to_owned(), m.resource.clone())));
}

#[test]
fn route_matching_table() {
    let r = sample();
    let h = headers(&[
        ("x-amzn-principal-arn", "arn:aws:iam::111122223333:user/alice"),
        ("x-forwarded-for", "1.2.3.4, 5.6.7.8"),
    ]);
    let cases: &[(&str, &str, &str, &str, Option<&str>)] = &[
        ("GET", "gw", "/apps/a/api", "", Some("api")),
        ("GET", "gw", "/apps/a/api/", "", Some("api")),
        ("POST", "gw", "/apps/a/api/x/y/z", "", Some("api")),
        ("DELETE", "gw", "/apps/a/api/x", "", None),
        ("GET", "gw", "/apps//api/x", "", None),
        ("GET", "gw", "/apps/a/other", "", None),
        ("GET", "gw", "/apps/a", "", None),
        ("GET", "gw.example.com", "/admin/x", "arn:aws:iam::111122223333:role/Ops", Some("admin")),
        ("GET", "GW.example.com:8443", "/admin/x", "arn:aws:iam::111122223333:role/Ops", Some("admin")),
        ("GET", "other.example.com", "/admin/x", "arn:aws:iam::111122223333:role/Ops", None),
        ("GET", "gw.example.com", "/adminx", "arn:aws:iam::111122223333:role/Ops", None),
    ];
    for (method, host, path, peer, want) in cases {
        let req = HttpRequest { method, host, path, headers: Some(&h), peer_ip: "10.0.0.7", peer_principal: peer };
        let got = match r.map(&req) {
            MapOutcome::Mapped(m) => Some(m),
            MapOutcome::Unmatched(Unmatched::Deny) => None,
            other => panic!("{method} {path}: {other:?}"),
        };
        assert_eq!(got.as_ref().map(|m| m.route.as_str()), *want, "{method} {host} {path}");
        if let Some(m) = got.filter(|m| m.route == "admin") {
            // Trusted x-forwarded-for: its left-most address.
            assert_eq!(m.context, vec![("aws:SourceIp".to_owned(), "1.2.3.4".to_owned())]);
            assert_eq!(m.principal_arn, "arn:aws:iam::111122223333:role/Ops");
        }
    }
}

#[test]
fn a_missing_principal_is_a_bad_request() {
    let r = sample();
    let h = headers(&[]);
    let req = HttpRequest { method: "GET", host: "gw", path: "/apps/a/api/x", headers: Some(&h), ..Default::default() };
    assert_eq!(
        r.map(&req),
        MapOutcome::BadRequest {
            route: "api".into(),
            message: "missing principal header `x-amzn-principal-arn`".into()
        }
    );
    let req = HttpRequest { method: "GET", host: "gw.example.com", path: "/admin/", ..Default::default() };
    assert!(
        matches!(r.map(&req), MapOutcome::BadRequest { route, message } if route == "admin" && message.contains("peer certificate"))
    );
}

#[test]
fn unmatched_can_be_configured() {
    let mut v = json!({"region": "us-east-1", "account": "111122223333", "routes": [], "unmatched": "allow"});
    assert_eq!(routes(v.clone()).unwrap().map(&HttpRequest::default()), MapOutcome::Unmatched(Unmatched::Allow));
    v["unmatched"] = json!("not_found");
    assert_eq!(routes(v.clone()).unwrap().unmatched, Unmatched::NotFound);
    v["unmatched"] = json!("alow");
    let e = routes(v).unwrap_err();
    assert!(e.iter().any(|m| m.contains("/unmatched") && m.contains("did you mean `allow`")), "{e:?}");
}

fn route_errors(route: Value) -> Vec<String> {
    routes(json!({"region": "us-east-1", "account": "111122223333", "routes": [route]})).unwrap_err()
}

fn base_route() -> Value {
    json!({"name": "r", "match": {"path_template": "/apps/{app}/{rest=**}"},
           "principal": {"header": "x-amzn-principal-arn"},
           "action": "sagemaker:CallPartnerAppApi",
           "resource": "arn:aws:sagemaker:{region}:{account}:partner-app/{app}"})
}

#[test]
fn validation_errors_name_the_file_the_pointer_and_a_hint() {
    let mut r = base_route();
    r["resource"] = json!("arn:aws:sagemaker:{region}:{acount}:partner-app/{ap}");
    let e = route_errors(r);
    assert!(
        e.iter().any(|m| m.starts_with("ext-authz/routes.json")
            && m.contains("/routes/0/resource")
            && m.contains("did you mean `{account}`")),
        "{e:?}"
    );

    let mut r = base_route();
    r["principal"] = json!({"header": "X-Amzn-Principal-Arn"});
    assert!(route_errors(r).iter().any(|m| m.contains("/routes/0/principal/header") && m.contains("lower-case")));

    let mut r = base_route();
    r["action"] = json!("sagemaker:*");
    assert!(route_errors(r).iter().any(|m| m.contains("/routes/0/action")));

    let mut r = base_route();
    r["match"] = json!({"path_template": "/apps/{rest=**}/x"});
    assert!(route_errors(r).iter().any(|m| m.contains("/routes/0/match/path_template") && m.contains("last segment")));

    let mut r = base_route();
    r["match"] = json!({"path_templte": "/apps/{app}"});
    let e = route_errors(r);
    assert!(
        e.iter().any(|m| m.contains("/routes/0/match/path_templte") && m.contains("did you mean `path_template`")),
        "{e:?}"
    );

    let mut r = base_route();
    r["contxt"] = json!({});
    assert!(route_errors(r).iter().any(|m| m.contains("did you mean `context`")));

    let mut r = base_route();
    r["context"] = json!({"aws:SourceIp": "{source}"});
    assert!(
        route_errors(r).iter().any(|m| m.contains("/routes/0/context/aws:SourceIp") && m.contains("`{source_ip}`"))
    );

    let mut r = base_route();
    r["principal"] = json!({"peer_certificate": "dns_san"});
    assert!(route_errors(r).iter().any(|m| m.contains("uri_san")));

    let mut r = base_route();
    r["propagate"] = json!({"channel": "STUDIO"});
    assert!(route_errors(r).iter().any(|m| m.contains("/routes/0/propagate/channel")));

    let e =
        routes(json!({"region": "us-east-1", "account": "1111", "routes": [base_route(), base_route()]})).unwrap_err();
    assert!(e.iter().any(|m| m.contains("/account")), "{e:?}");
    assert!(e.iter().any(|m| m.contains("duplicate route name")), "{e:?}");
}

#[test]
fn template_expansion_and_prefix_routes_know_only_region_and_account() {
    let t = parse_template("a/{x}-{region}", Some(&["x", "region"])).unwrap();
    assert_eq!(t.expand(&[("x", "1"), ("region", "r")]), "a/1-r");
    assert!(parse_template("a/{x", Some(&["x"])).is_err());
    assert!(parse_template("a/x}", Some(&["x"])).is_err());
    let mut r = base_route();
    r["match"] = json!({"path_prefix": "/apps/"});
    assert!(route_errors(r).iter().any(|m| m.contains("unknown placeholder `{app}`")));
}

#[test]
fn a_bundle_reads_its_routes_file() {
    let files = vec![
        (
            "iam/users/alice.json".to_owned(),
            br#"{"UserName":"alice","Arn":"arn:aws:iam::111122223333:user/alice"}"#.to_vec(),
        ),
        (
            ROUTES_FILE.to_owned(),
            serde_json::to_vec(&json!({"region": "us-east-1", "account": "111122223333", "routes": [base_route()]}))
                .unwrap(),
        ),
    ];
    let b = crate::bundle::from_files(files).unwrap();
    assert_eq!(b.ext_authz.as_ref().map(|r| r.len()), Some(1));
    let bad = vec![(ROUTES_FILE.to_owned(), br#"{"region": "us-east-1", "account": "111122223333"}"#.to_vec())];
    let e = crate::bundle::from_files(bad).unwrap_err();
    assert!(e.iter().any(|p| p.file == ROUTES_FILE && p.message.contains("missing `routes`")), "{e:?}");
}

#[test]
fn an_empty_methods_list_is_refused_not_read_as_any_method() {
    let mut v = json!({"region": "us-east-1", "account": "111122223333", "routes": [
        {"name": "r", "match": {"path_prefix": "/", "methods": []},
         "principal": {"header": "x-p"}, "action": "s3:GetObject", "resource": "arn:aws:s3:::b/*"}]});
    let e = routes(v.clone()).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("/routes/0/match/methods") && e[0].contains("leave `methods` out"), "{e:?}");
    v["routes"][0]["match"]["methods"] = json!(["GET"]);
    assert!(routes(v).is_ok());
}

#[test]
fn a_template_is_not_blamed_for_a_path_template_that_did_not_parse() {
    let v = json!({"region": "us-east-1", "account": "111122223333", "routes": [
        {"name": "r", "match": {"path_template": "/apps/{app}/{app}"},
         "principal": {"header": "x-p"}, "action": "sagemaker:DescribePartnerApp",
         "resource": "arn:aws:sagemaker:{region}:{account}:partner-app/{app}"}]});
    let e = routes(v).unwrap_err();
    assert_eq!(e.len(), 1, "one root cause, no consequence: {e:?}");
    assert!(e[0].contains("/routes/0/match/path_template"), "{e:?}");
    // The syntax of the other templates is still checked.
    let v = json!({"region": "us-east-1", "account": "111122223333", "routes": [
        {"name": "r", "match": {"path_template": "apps/{app}"},
         "principal": {"header": "x-p"}, "action": "sagemaker:DescribePartnerApp",
         "resource": "arn:aws:sagemaker:{region}:{account}:partner-app/{app"}]});
    let e = routes(v).unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e.iter().any(|m| m.contains("/routes/0/resource") && m.contains("unmatched `{`")), "{e:?}");
}
