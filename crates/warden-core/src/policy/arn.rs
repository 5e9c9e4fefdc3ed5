//! ARNs: parsing into their six parts, and the principal ARN forms Warden understands. Pure.

/// A parsed ARN `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` (the resource part may hold colons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn`, …
    pub partition: &'a str,
    /// Service namespace, e.g. `iam`.
    pub service: &'a str,
    /// Region (empty for global services).
    pub region: &'a str,
    /// Account id (empty for some resources).
    pub account: &'a str,
    /// The resource part.
    pub resource: &'a str,
}

/// Parses an ARN; `None` when it is not `arn:` followed by five more colon-separated parts with a
/// non-empty partition, service and resource.
pub fn parse(s: &str) -> Option<Arn<'_>> {
    let rest = s.strip_prefix("arn:")?;
    let b = rest.as_bytes();
    // Positions of the next four colons (partition, service, region, account).
    let mut cuts = [0usize; 4];
    let mut found = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b':' {
            if let Some(slot) = cuts.get_mut(found) {
                *slot = i;
            }
            found += 1;
            if found == 4 {
                break;
            }
        }
    }
    if found < 4 {
        return None;
    }
    let [c0, c1, c2, c3] = cuts;
    let partition = rest.get(..c0)?;
    let service = rest.get(c0 + 1..c1)?;
    let region = rest.get(c1 + 1..c2)?;
    let account = rest.get(c2 + 1..c3)?;
    let resource = rest.get(c3 + 1..)?;
    if partition.is_empty() || service.is_empty() || resource.is_empty() {
        return None;
    }
    Some(Arn { partition, service, region, account, resource })
}

/// Whether `s` is a 12-digit account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The principal forms of IAM and STS ARNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalArn<'a> {
    /// `arn:aws:iam::ACCT:root`
    Root { account: &'a str },
    /// `arn:aws:iam::ACCT:user/PATH/NAME`
    User { account: &'a str, name: &'a str },
    /// `arn:aws:iam::ACCT:role/PATH/NAME`
    Role { account: &'a str, name: &'a str },
    /// `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`
    Session { account: &'a str, role: &'a str, session: &'a str },
    /// `arn:aws:sts::ACCT:federated-user/NAME`
    FederatedUser { account: &'a str, name: &'a str },
}

/// Parses an IAM/STS principal ARN.
pub fn parse_principal<'a>(s: &'a str) -> Option<PrincipalArn<'a>> {
    let a = parse(s)?;
    if !is_account_id(a.account) || !a.region.is_empty() {
        return None;
    }
    let account = a.account;
    let last = |r: &'a str| r.rsplit('/').next().filter(|n| !n.is_empty());
    match a.service {
        "iam" => {
            if a.resource == "root" {
                return Some(PrincipalArn::Root { account });
            }
            if let Some(r) = a.resource.strip_prefix("user/") {
                return Some(PrincipalArn::User { account, name: last(r)? });
            }
            if let Some(r) = a.resource.strip_prefix("role/") {
                return Some(PrincipalArn::Role { account, name: last(r)? });
            }
            None
        }
        "sts" => {
            if let Some(r) = a.resource.strip_prefix("assumed-role/") {
                let (role, session) = r.split_once('/')?;
                if role.is_empty() || session.is_empty() || session.contains('/') {
                    return None;
                }
                return Some(PrincipalArn::Session { account, role, session });
            }
            if let Some(n) = a.resource.strip_prefix("federated-user/") {
                if n.is_empty() || n.contains('/') {
                    return None;
                }
                return Some(PrincipalArn::FederatedUser { account, name: n });
            }
            None
        }
        _ => None,
    }
}

/// Whether `s` looks like an AWS service principal (`sagemaker.amazonaws.com`).
pub fn is_service_principal(s: &str) -> bool {
    let suffix_len = if has_suffix_ignore_case(s, ".amazonaws.com") {
        ".amazonaws.com".len()
    } else if has_suffix_ignore_case(s, ".amazonaws.com.cn") {
        ".amazonaws.com.cn".len()
    } else {
        return false;
    };
    s.len() > suffix_len && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

fn has_suffix_ignore_case(s: &str, suffix: &str) -> bool {
    s.len()
        .checked_sub(suffix.len())
        .and_then(|at| s.as_bytes().get(at..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_resource_part_keeps_colons() {
        let a = parse("arn:aws:logs:us-east-1:111122223333:log-group:g:*").unwrap();
        assert_eq!(a.resource, "log-group:g:*");
        assert!(parse("arn:aws:s3").is_none());
        assert!(parse("not-an-arn").is_none());
    }

    #[test]
    fn principal_arns_parse() {
        assert_eq!(
            parse_principal("arn:aws:sts::111122223333:assumed-role/Launcher/alice"),
            Some(PrincipalArn::Session { account: "111122223333", role: "Launcher", session: "alice" })
        );
        assert_eq!(
            parse_principal("arn:aws:iam::111122223333:role/service-role/Exec"),
            Some(PrincipalArn::Role { account: "111122223333", name: "Exec" })
        );
        assert!(parse_principal("arn:aws:iam::1111:user/x").is_none());
        assert!(is_service_principal("sagemaker.amazonaws.com"));
        assert!(!is_service_principal("amazonaws.com"));
    }
}
