//! The `Principal` / `NotPrincipal` element of resource-based policies, compiled, and how a request's
//! principal is matched against it. Pure.
use super::arn::{self, PrincipalArn};

/// What kind of principal is making the request, as a resource policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// IAM user.
    User,
    /// A role ARN given as the principal (a session of unknown name).
    Role,
    /// An assumed-role session.
    Session,
    /// A `GetFederationToken` session.
    FederatedUser,
    /// An AWS service principal.
    Service,
    /// The account root user.
    Root,
}

/// The facts about the requesting principal used to match `Principal` entries.
#[derive(Debug, Clone, Copy)]
pub struct PrincipalFacts<'a> {
    /// Its kind.
    pub kind: PrincipalKind,
    /// The exact ARN (or service name).
    pub arn: &'a str,
    /// Account id (none for services).
    pub account: Option<&'a str>,
    /// Role name, for roles and sessions.
    pub role_name: Option<&'a str>,
    /// Role unique id (`AROA…`) or user unique id (`AIDA…`).
    pub unique_id: Option<&'a str>,
}

/// How specifically a resource policy named the principal (strongest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Naming {
    /// Named by its own ARN (user, session, federated user) or service name.
    Exact,
    /// Named through its role ARN (or role unique id).
    Role,
    /// Matched by `"*"`.
    Wildcard,
    /// Named only through its account (`arn:aws:iam::ACCT:root` or the id): delegation.
    Account,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Anyone,
    Account(String),
    User(String),
    Role { account: String, name: String },
    Session(String),
    FederatedUser(String),
    UniqueId(String),
    Service(String),
    AnyService,
    Federated(String),
    CanonicalUser,
}

/// A compiled `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalSpec {
    entries: Vec<Entry>,
}

// === impl PrincipalSpec ===

impl PrincipalSpec {
    /// Compiles from (type, value) pairs such as `("AWS", "arn:aws:iam::111122223333:root")`; `"*"`
    /// alone is `("*", "*")`.
    pub fn compile(pairs: &[(String, String)]) -> Result<PrincipalSpec, Vec<String>> {
        let mut entries = Vec::new();
        let mut errs = Vec::new();
        for (ty, v) in pairs {
            match entry(ty, v) {
                Ok(e) => entries.push(e),
                Err(m) => errs.push(m),
            }
        }
        if errs.is_empty() { Ok(PrincipalSpec { entries }) } else { Err(errs) }
    }

    /// How the principal is named by this spec, if at all (the strongest naming among entries).
    pub fn naming(&self, p: &PrincipalFacts<'_>) -> Option<Naming> {
        self.entries.iter().filter_map(|e| entry_naming(e, p)).min()
    }

    /// `NotPrincipal`: whether the principal is excluded, i.e. every identity in its chain (its own
    /// ARN, its role, its account) is listed. AWS: with `Deny` + `NotPrincipal` the session ARN, the
    /// role ARN and the account must all be listed for a session to be spared.
    pub fn excludes(&self, p: &PrincipalFacts<'_>) -> bool {
        if self.entries.contains(&Entry::Anyone) {
            return true;
        }
        let own = self.entries.iter().any(|e| matches!(entry_naming(e, p), Some(Naming::Exact)))
            || (p.kind == PrincipalKind::Role
                && self.entries.iter().any(|e| matches!(entry_naming(e, p), Some(Naming::Role))));
        let role_ok = match p.kind {
            PrincipalKind::Session => self.entries.iter().any(|e| matches!(entry_naming(e, p), Some(Naming::Role))),
            _ => true,
        };
        let account_ok = match p.account {
            Some(_) => self.entries.iter().any(|e| matches!(entry_naming(e, p), Some(Naming::Account))),
            None => true,
        };
        own && role_ok && account_ok
    }
}

fn entry(ty: &str, v: &str) -> Result<Entry, String> {
    match ty {
        "*" if v == "*" => Ok(Entry::Anyone),
        "AWS" => {
            if v == "*" {
                return Ok(Entry::Anyone);
            }
            if v.contains(['*', '?']) {
                return Err(format!("wildcard in principal `{v}`: only `*` alone is allowed"));
            }
            if arn::is_account_id(v) {
                return Ok(Entry::Account(v.to_owned()));
            }
            if v.len() >= 16
                && (v.starts_with("AROA") || v.starts_with("AIDA"))
                && v.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Ok(Entry::UniqueId(v.to_owned()));
            }
            match arn::parse_principal(v) {
                Some(PrincipalArn::Root { account }) => Ok(Entry::Account(account.to_owned())),
                Some(PrincipalArn::User { .. }) => Ok(Entry::User(v.to_owned())),
                Some(PrincipalArn::Role { account, name }) => {
                    Ok(Entry::Role { account: account.to_owned(), name: name.to_owned() })
                }
                Some(PrincipalArn::Session { .. }) => Ok(Entry::Session(v.to_owned())),
                Some(PrincipalArn::FederatedUser { .. }) => Ok(Entry::FederatedUser(v.to_owned())),
                None => Err(format!("malformed principal `{v}`: expected an account id or an IAM/STS principal ARN")),
            }
        }
        "Service" => {
            if v == "*" {
                return Ok(Entry::AnyService);
            }
            if !arn::is_service_principal(v) {
                return Err(format!("malformed service principal `{v}`"));
            }
            Ok(Entry::Service(v.to_ascii_lowercase()))
        }
        "Federated" => Ok(Entry::Federated(v.to_owned())),
        "CanonicalUser" => Ok(Entry::CanonicalUser),
        _ => Err(format!("unknown principal type `{ty}`: expected `AWS`, `Service`, `Federated` or `CanonicalUser`")),
    }
}

fn entry_naming(e: &Entry, p: &PrincipalFacts<'_>) -> Option<Naming> {
    use PrincipalKind as K;
    match e {
        Entry::Anyone => Some(Naming::Wildcard),
        Entry::Account(a) => (p.account == Some(a.as_str())).then_some(Naming::Account),
        Entry::User(arn) => (p.kind == K::User && p.arn == arn).then_some(Naming::Exact),
        Entry::Session(arn) => (p.kind == K::Session && p.arn == arn).then_some(Naming::Exact),
        Entry::FederatedUser(arn) => (p.kind == K::FederatedUser && p.arn == arn).then_some(Naming::Exact),
        Entry::Role { account, name } => (matches!(p.kind, K::Role | K::Session)
            && p.account == Some(account.as_str())
            && p.role_name == Some(name.as_str()))
        .then_some(Naming::Role),
        Entry::UniqueId(id) => {
            if p.unique_id != Some(id.as_str()) {
                None
            } else if p.kind == K::User {
                Some(Naming::Exact)
            } else {
                Some(Naming::Role)
            }
        }
        Entry::Service(s) => (p.kind == K::Service && p.arn.eq_ignore_ascii_case(s)).then_some(Naming::Exact),
        Entry::AnyService => (p.kind == K::Service).then_some(Naming::Exact),
        Entry::Federated(f) => (p.arn == f).then_some(Naming::Exact),
        Entry::CanonicalUser => None,
    }
}
