//! `ext-authz/routes.json` (SPEC §9): how an HTTP request that Envoy asks about (ext_authz v3) maps to
//! an IAM request. Parsed and validated strictly with the bundle (templates, placeholders, header
//! names, actions); [`Routes::map`] matches a request against the ordered routes. Pure: the wire side
//! (`warden::grpc::ext_authz`) turns Envoy's `CheckRequest` into an [`HttpRequest`] and the answer back.
use super::fields::{object, str_field};
use super::schema::{self, Layout, Place, Shape};
use crate::policy::error::ptr_token;
use crate::policy::hint;
use crate::policy::{ProblemList, Problems, arn};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The path of the routes file in a bundle.
pub const ROUTES_FILE: &str = "ext-authz/routes.json";
/// Default prefix of the session-tag headers of a `header` principal.
pub const DEFAULT_SESSION_TAG_PREFIX: &str = "x-amzn-session-tag-";
/// The context value placeholder for the client address.
pub const SOURCE_IP: &str = "source_ip";

static FILE: Shape = Shape { what: "the routes file", read: &["region", "account", "unmatched", "routes"], aws: &[] };
static ROUTE: Shape = Shape {
    what: "a route",
    read: &["name", "match", "principal", "action", "resource", "context", "trust_x_forwarded_for", "propagate"],
    aws: &[],
};
static MATCH: Shape =
    Shape { what: "a route match", read: &["path_prefix", "path_template", "methods", "host"], aws: &[] };
static PRINCIPAL: Shape =
    Shape { what: "a principal source", read: &["header", "session_tag_prefix", "peer_certificate"], aws: &[] };
static PROPAGATE: Shape = Shape { what: "a propagate block", read: &["channel", "app_arn"], aws: &[] };
static LAYOUT: Layout = &[
    ("", &FILE),
    ("/routes/*", &ROUTE),
    ("/routes/*/match", &MATCH),
    ("/routes/*/principal", &PRINCIPAL),
    ("/routes/*/propagate", &PROPAGATE),
];

/// What to answer when no route matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// 403 (the default).
    #[default]
    Deny,
    /// 404.
    NotFound,
    /// Let the request through (no headers added).
    Allow,
}

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: one non-empty segment.
    One(String),
    /// `{name=**}`: the rest of the path (last segment only).
    Rest(String),
}

/// How a route matches the path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathMatch {
    Prefix(String),
    Template(Vec<Segment>),
}

/// Where the principal comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalSource {
    /// A header holding the principal ARN; session tags from headers with the prefix.
    Header {
        /// Header name (lower case).
        name: String,
        /// Prefix of the session-tag headers (lower case).
        tag_prefix: String,
    },
    /// The URI SAN of the peer's verified certificate (`attributes.source.principal`).
    PeerCertificateUriSan,
}

/// A template: literal text and `{placeholder}`s.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

/// The `propagate` block of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropagateSpec {
    /// `SDK` or `PRESIGNED_URL_API`.
    pub channel: String,
    app_arn: Option<Template>,
}

/// One route.
#[derive(Debug, Clone)]
struct Route {
    name: String,
    path: PathMatch,
    methods: Vec<String>,
    host: Option<String>,
    principal: PrincipalSource,
    action: String,
    resource: Template,
    context: Vec<(String, Template)>,
    trust_xff: bool,
    propagate: Option<PropagateSpec>,
}

/// The routes of a bundle.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    region: String,
    account: String,
    /// What to answer when no route matches.
    pub unmatched: Unmatched,
    routes: Vec<Route>,
}

/// The HTTP request Envoy asks about.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST`…
    pub method: &'a str,
    /// `:authority` / `Host`.
    pub host: &'a str,
    /// Path with the query string (which is ignored).
    pub path: &'a str,
    /// Headers, lower-case names.
    pub headers: Option<&'a HashMap<String, String>>,
    /// The peer's IP address (`attributes.source.address`), empty if unknown.
    pub peer_ip: &'a str,
    /// The peer's certificate principal (URI SAN), empty if none.
    pub peer_principal: &'a str,
}

/// The IAM request a route maps an HTTP request to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The route's name.
    pub route: String,
    /// The principal ARN (validated by the Authorize conversion, not here).
    pub principal_arn: String,
    /// Session tags (header suffix → value).
    pub session_tags: Vec<(String, String)>,
    /// IAM action.
    pub action: String,
    /// Resource ARN.
    pub resource: String,
    /// Condition keys.
    pub context: Vec<(String, String)>,
    /// Identity propagation to run after an allow: (channel, partner app ARN).
    pub propagate: Option<(String, String)>,
}

/// The outcome of matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapOutcome {
    /// A route matched.
    Mapped(Mapped),
    /// A route matched but the request is malformed (400).
    BadRequest {
        /// The route's name.
        route: String,
        /// What is wrong.
        message: String,
    },
    /// No route matched.
    Unmatched(Unmatched),
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_action(a: &str) -> Result<(), String> {
    let ok = a.split_once(':').is_some_and(|(svc, name)| {
        !svc.is_empty()
            && svc.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if ok {
        Ok(())
    } else {
        Err(format!("`{a}` is not an IAM action (`service:Action`, no wildcards), e.g. `sagemaker:CallPartnerAppApi`"))
    }
}

fn parse_path_template(t: &str) -> Result<Vec<Segment>, String> {
    let Some(rest) = t.strip_prefix('/') else {
        return Err(format!("`{t}` must start with `/`"));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let mut out = Vec::with_capacity(parts.len());
    let mut names: Vec<&str> = Vec::new();
    for (i, s) in parts.iter().enumerate() {
        let seg = if let Some(inner) = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            let (name, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
            if !is_ident(name) {
                return Err(format!("`{t}`: `{{{inner}}}` is not a placeholder (`{{name}}` or `{{name=**}}`)"));
            }
            if names.contains(&name) || name == "region" || name == "account" || name == SOURCE_IP {
                return Err(format!("`{t}`: placeholder `{name}` is repeated or reserved"));
            }
            names.push(name);
            match pattern {
                "*" => Segment::One(name.to_owned()),
                "**" if i + 1 == parts.len() => Segment::Rest(name.to_owned()),
                "**" => return Err(format!("`{t}`: `{{{inner}}}` may only be the last segment")),
                _ => {
                    return Err(format!(
                        "`{t}`: `{{{inner}}}`: only `*` (one segment) and `**` (the rest) are supported"
                    ));
                }
            }
        } else if s.contains(['{', '}']) {
            return Err(format!("`{t}`: a placeholder must be a whole segment, `{s}` is not"));
        } else if s.is_empty() && i + 1 != parts.len() {
            return Err(format!("`{t}` has an empty segment"));
        } else {
            Segment::Literal((*s).to_owned())
        };
        out.push(seg);
    }
    Ok(out)
}

/// Parses a template; `known`: the placeholders it may use (`None`: the route's path could not be read,
/// so which are known is unknown and only the syntax is checked — an unknown placeholder then would be a
/// consequence of that problem, not a second one).
fn parse_template(t: &str, known: Option<&[&str]>) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let (text, after) = rest.split_at(open);
        if text.contains('}') {
            return Err(format!("`{t}` has an unmatched `}}`"));
        }
        if !text.is_empty() {
            parts.push(Part::Text(text.to_owned()));
        }
        let after = after.get(1..).unwrap_or("");
        let Some(close) = after.find('}') else {
            return Err(format!("`{t}` has an unmatched `{{`"));
        };
        let (name, tail) = after.split_at(close);
        if let Some(known) = known
            && !known.contains(&name)
        {
            let hint = hint::nearest(name, known.iter().copied())
                .map(|m| format!(": did you mean `{{{m}}}`?"))
                .unwrap_or_default();
            return Err(format!(
                "`{t}`: unknown placeholder `{{{name}}}` (known: {}){hint}",
                known.iter().map(|k| format!("`{{{k}}}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        parts.push(Part::Var(name.to_owned()));
        rest = tail.get(1..).unwrap_or("");
    }
    if rest.contains('}') {
        return Err(format!("`{t}` has an unmatched `}}`"));
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(Template(parts))
}

impl Template {
    fn expand(&self, vars: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => {
                    if let Some((_, val)) = vars.iter().find(|(k, _)| k == v) {
                        out.push_str(val);
                    }
                }
            }
        }
        out
    }
}

/// Reads `ext-authz/routes.json`.
pub fn read_routes(path: &str, v: &Value, problems: &mut ProblemList) -> Option<Routes> {
    let mut p = Problems::new(path, problems);
    let before = p.count();
    let o = object(v, "", "the routes file", &mut p)?;
    schema::check(o, "", &FILE, Place::file(LAYOUT), &mut p);
    let region = str_field(o, "region", "", true, &mut p).unwrap_or_default();
    if !region.is_empty() && !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        p.push("/region", format!("`{region}` is not a region name (e.g. `us-east-1`)"));
    }
    let account = str_field(o, "account", "", true, &mut p).unwrap_or_default();
    if !account.is_empty() && !arn::is_account_id(&account) {
        p.push("/account", format!("`{account}` is not a 12-digit account id"));
    }
    let unmatched = match o.get("unmatched") {
        None => Unmatched::Deny,
        Some(Value::String(s)) if s == "deny" => Unmatched::Deny,
        Some(Value::String(s)) if s == "not_found" => Unmatched::NotFound,
        Some(Value::String(s)) if s == "allow" => Unmatched::Allow,
        Some(other) => {
            let shown = other.as_str().map_or_else(|| other.to_string(), str::to_owned);
            let hint = hint::did_you_mean(&shown, ["deny", "not_found", "allow"]);
            p.push(
                "/unmatched",
                format!("`unmatched` must be `deny` (403, the default), `not_found` (404) or `allow`{hint}"),
            );
            Unmatched::Deny
        }
    };
    let mut routes = Vec::new();
    match o.get("routes") {
        Some(Value::Array(list)) => {
            for (i, r) in list.iter().enumerate() {
                if let Some(route) = read_route(r, &format!("/routes/{i}"), &mut p) {
                    routes.push(route);
                }
            }
        }
        Some(_) => p.push("/routes", "`routes` must be an array"),
        None => p.missing("", &["routes"], "missing `routes`"),
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        if names.contains(&r.name.as_str()) {
            p.push(format!("/routes/{i}/name"), format!("duplicate route name `{}`", r.name));
        }
        names.push(&r.name);
    }
    (p.count() == before).then_some(Routes { region, account, unmatched, routes })
}

fn read_route(v: &Value, at: &str, p: &mut Problems<'_>) -> Option<Route> {
    let before = p.count();
    let o = object(v, at, "a route", p)?;
    schema::check(o, at, &ROUTE, Place::file(LAYOUT), p);
    let name = str_field(o, "name", at, true, p).unwrap_or_default();
    let (path, methods, host) = read_match(o, at, p);
    let principal = read_principal(o, at, p);
    let action = str_field(o, "action", at, true, p).unwrap_or_default();
    if !action.is_empty()
        && let Err(e) = check_action(&action)
    {
        p.push(format!("{at}/action"), e);
    }
    let mut known: Vec<&str> = vec!["region", "account"];
    if let Some(PathMatch::Template(segs)) = &path {
        for s in segs {
            if let Segment::One(n) | Segment::Rest(n) = s {
                known.push(n);
            }
        }
    }
    let path_read = path.is_some();
    let template = |key: &str, field: &str, t: &str, known: &[&str], p: &mut Problems<'_>| match parse_template(
        t,
        path_read.then_some(known),
    ) {
        Ok(t) => Some(t),
        Err(e) => {
            p.push(field.to_owned(), format!("`{key}`: {e}"));
            None
        }
    };
    let resource = str_field(o, "resource", at, true, p)
        .and_then(|r| template("resource", &format!("{at}/resource"), &r, &known, p))
        .unwrap_or(Template(Vec::new()));
    let mut ctx_known = known.clone();
    ctx_known.push(SOURCE_IP);
    let mut context = Vec::new();
    match o.get("context") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, val) in m {
                let field = format!("{at}/context/{}", ptr_token(k));
                let valid_key = k.split_once(':').is_some_and(|(s, n)| !s.is_empty() && !n.is_empty());
                if !valid_key {
                    p.push(field.clone(), format!("`{k}` is not a condition key (`service:Key`, e.g. `aws:SourceIp`)"));
                }
                match val {
                    Value::String(s) => {
                        if let Some(t) = template("context", &field, s, &ctx_known, p) {
                            context.push((k.clone(), t));
                        }
                    }
                    _ => p.push(field, "a context value must be a string template such as `{source_ip}`"),
                }
            }
        }
        Some(_) => p.push(format!("{at}/context"), "`context` must be an object of condition key → template"),
    }
    let trust_xff = match o.get("trust_x_forwarded_for") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => {
            p.push(format!("{at}/trust_x_forwarded_for"), "`trust_x_forwarded_for` must be true or false");
            false
        }
    };
    let propagate = match o.get("propagate") {
        None => None,
        Some(v) => {
            let pat = format!("{at}/propagate");
            object(v, &pat, "a propagate block", p).map(|po| {
                schema::check(po, &pat, &PROPAGATE, Place::file(LAYOUT), p);
                let channel = str_field(po, "channel", &pat, false, p).unwrap_or_else(|| "SDK".to_owned());
                if channel != "SDK" && channel != "PRESIGNED_URL_API" {
                    p.push(
                        format!("{pat}/channel"),
                        format!("`{channel}`: the channel is `SDK` (the default) or `PRESIGNED_URL_API`"),
                    );
                }
                let app_arn = str_field(po, "app_arn", &pat, false, p)
                    .and_then(|t| template("app_arn", &format!("{pat}/app_arn"), &t, &known, p));
                PropagateSpec { channel, app_arn }
            })
        }
    };
    if p.count() != before {
        return None;
    }
    Some(Route {
        name,
        path: path?,
        methods,
        host,
        principal: principal?,
        action,
        resource,
        context,
        trust_xff,
        propagate,
    })
}

fn read_match(
    o: &Map<String, Value>,
    at: &str,
    p: &mut Problems<'_>,
) -> (Option<PathMatch>, Vec<String>, Option<String>) {
    let mat = format!("{at}/match");
    let Some(m) = o.get("match") else {
        p.missing(at, &["match"], "missing `match`");
        return (None, Vec::new(), None);
    };
    let Some(m) = object(m, &mat, "a route match", p) else { return (None, Vec::new(), None) };
    schema::check(m, &mat, &MATCH, Place::file(LAYOUT), p);
    let prefix = str_field(m, "path_prefix", &mat, false, p);
    let template = str_field(m, "path_template", &mat, false, p);
    let path = match (prefix, template) {
        (Some(_), Some(_)) => {
            p.push(mat.clone(), "give one of `path_prefix` and `path_template`, not both");
            None
        }
        (None, None) => {
            p.missing(&mat, &["path_prefix"], "missing `path_prefix` or `path_template`");
            None
        }
        (Some(pre), None) if !pre.starts_with('/') => {
            p.push(format!("{mat}/path_prefix"), format!("`{pre}` must start with `/`"));
            None
        }
        (Some(pre), None) => Some(PathMatch::Prefix(pre)),
        (None, Some(t)) => match parse_path_template(&t) {
            Ok(segs) => Some(PathMatch::Template(segs)),
            Err(e) => {
                p.push(format!("{mat}/path_template"), e);
                None
            }
        },
    };
    let mut methods = Vec::new();
    match m.get("methods") {
        None => {}
        Some(Value::Array(list)) if list.is_empty() => p.push(
            format!("{mat}/methods"),
            "an empty `methods` list would match no request: leave `methods` out to match every method",
        ),
        Some(Value::Array(list)) => {
            for (i, v) in list.iter().enumerate() {
                match v.as_str() {
                    Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase()) => methods.push(s.to_owned()),
                    _ => {
                        p.push(format!("{mat}/methods/{i}"), "a method is an upper-case HTTP method name such as `GET`")
                    }
                }
            }
        }
        Some(_) => p.push(format!("{mat}/methods"), "`methods` must be an array of HTTP method names"),
    }
    let host = str_field(m, "host", &mat, false, p).map(|h| h.to_ascii_lowercase());
    (path, methods, host)
}

fn read_principal(o: &Map<String, Value>, at: &str, p: &mut Problems<'_>) -> Option<PrincipalSource> {
    let pat = format!("{at}/principal");
    let Some(v) = o.get("principal") else {
        p.missing(at, &["principal"], "missing `principal`");
        return None;
    };
    let po = object(v, &pat, "a principal source", p)?;
    schema::check(po, &pat, &PRINCIPAL, Place::file(LAYOUT), p);
    let header = str_field(po, "header", &pat, false, p);
    let cert = str_field(po, "peer_certificate", &pat, false, p);
    let prefix = str_field(po, "session_tag_prefix", &pat, false, p);
    match (header, cert) {
        (Some(h), None) => {
            let tag_prefix = prefix.unwrap_or_else(|| DEFAULT_SESSION_TAG_PREFIX.to_owned());
            let mut ok = true;
            for (key, val) in [("header", &h), ("session_tag_prefix", &tag_prefix)] {
                if !is_header_name(val) {
                    p.push(format!("{pat}/{key}"), format!("`{val}` is not a lower-case HTTP header name"));
                    ok = false;
                }
            }
            ok.then_some(PrincipalSource::Header { name: h, tag_prefix })
        }
        (None, Some(c)) if c == "uri_san" => {
            if prefix.is_some() {
                p.push(format!("{pat}/session_tag_prefix"), "session tags come with a `header` principal only");
                return None;
            }
            Some(PrincipalSource::PeerCertificateUriSan)
        }
        (None, Some(c)) => {
            p.push(format!("{pat}/peer_certificate"), format!("`{c}`: the only peer certificate source is `uri_san`"));
            None
        }
        (Some(_), Some(_)) => {
            p.push(pat, "give one of `header` and `peer_certificate`, not both");
            None
        }
        (None, None) => {
            p.missing(&pat, &["header"], "missing `header` or `peer_certificate`");
            None
        }
    }
}

fn match_path<'a>(m: &'a PathMatch, path: &'a str) -> Option<Vec<(&'a str, &'a str)>> {
    match m {
        PathMatch::Prefix(pre) => path.starts_with(pre.as_str()).then(Vec::new),
        PathMatch::Template(segs) => {
            let mut rest = path.strip_prefix('/')?;
            let mut vars = Vec::new();
            for (i, seg) in segs.iter().enumerate() {
                let last = i + 1 == segs.len();
                if let Segment::Rest(n) = seg {
                    vars.push((n.as_str(), rest));
                    return Some(vars);
                }
                let (this, tail) = match rest.split_once('/') {
                    Some((a, b)) => (a, Some(b)),
                    None => (rest, None),
                };
                match seg {
                    Segment::Literal(l) if l == this => {}
                    Segment::One(n) if !this.is_empty() => vars.push((n.as_str(), this)),
                    _ => return None,
                }
                match (tail, last) {
                    (None, true) => return Some(vars),
                    (Some(t), false) => rest = t,
                    // `{rest=**}` next may match an empty remainder.
                    (None, false) => match segs.get(i + 1) {
                        Some(Segment::Rest(n)) if i + 2 == segs.len() => {
                            vars.push((n.as_str(), ""));
                            return Some(vars);
                        }
                        _ => return None,
                    },
                    (Some(_), true) => return None,
                }
            }
            None
        }
    }
}

impl Routes {
    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Maps a request: the first route whose match applies decides.
    pub fn map(&self, req: &HttpRequest<'_>) -> MapOutcome {
        let path = req.path.split(['?', '#']).next().unwrap_or("");
        let host = req.host.to_ascii_lowercase();
        let host_no_port = host
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host.as_str(), |(h, _)| h);
        let header = |n: &str| req.headers.and_then(|h| h.get(n)).map(String::as_str);
        for r in &self.routes {
            if !r.methods.is_empty() && !r.methods.iter().any(|m| m == req.method) {
                continue;
            }
            if let Some(h) = &r.host
                && *h != host
                && *h != host_no_port
            {
                continue;
            }
            let Some(captured) = match_path(&r.path, path) else { continue };
            let mut vars: Vec<(&str, &str)> = vec![("region", &self.region), ("account", &self.account)];
            vars.extend(captured);
            let (principal_arn, session_tags) = match &r.principal {
                PrincipalSource::Header { name, tag_prefix } => {
                    let Some(arn) = header(name).filter(|v| !v.is_empty()) else {
                        return MapOutcome::BadRequest {
                            route: r.name.clone(),
                            message: format!("missing principal header `{name}`"),
                        };
                    };
                    let mut tags: Vec<(String, String)> = req
                        .headers
                        .into_iter()
                        .flatten()
                        .filter_map(|(k, v)| k.strip_prefix(tag_prefix.as_str()).map(|t| (t.to_owned(), v.clone())))
                        .filter(|(k, _)| !k.is_empty())
                        .collect();
                    tags.sort();
                    (arn.to_owned(), tags)
                }
                PrincipalSource::PeerCertificateUriSan => {
                    if req.peer_principal.is_empty() {
                        return MapOutcome::BadRequest {
                            route: r.name.clone(),
                            message: "no verified peer certificate principal (attributes.source.principal)".to_owned(),
                        };
                    }
                    (req.peer_principal.to_owned(), Vec::new())
                }
            };
            let source_ip = if r.trust_xff {
                header("x-forwarded-for")
                    .and_then(|x| x.split(',').next())
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .unwrap_or(req.peer_ip)
            } else {
                req.peer_ip
            };
            let mut ctx_vars = vars.clone();
            ctx_vars.push((SOURCE_IP, source_ip));
            let context = r
                .context
                .iter()
                .map(|(k, t)| (k.clone(), t.expand(&ctx_vars)))
                .filter(|(_, v)| !v.is_empty())
                .collect();
            let resource = r.resource.expand(&vars);
            let propagate = r.propagate.as_ref().map(|p| {
                let app = p.app_arn.as_ref().map_or_else(|| resource.clone(), |t| t.expand(&vars));
                (p.channel.clone(), app)
            });
            return MapOutcome::Mapped(Mapped {
                route: r.name.clone(),
                principal_arn,
                session_tags,
                action: r.action.clone(),
                resource,
                context,
                propagate,
            });
        }
        MapOutcome::Unmatched(self.unmatched)
    }
}

#[cfg(test)]
#[path = "ext_authz_tests.rs"]
mod tests;
