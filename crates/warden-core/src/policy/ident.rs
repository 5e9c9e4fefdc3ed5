//! Identifiers and request sizes as AWS validates them (SPEC §4.1, §7): partitions, account ids, IAM
//! paths and names, role session names, ARN length and characters, session-tag limits. Every check
//! returns the rule that failed as one line; a bad value is quoted with at most [`QUOTE_CHARS`]
//! characters, so an error message stays small whatever the input. Pure.
use super::arn::{self, PrincipalArn};

/// Longest ARN IAM accepts.
pub const MAX_ARN_CHARS: usize = 2048;
/// Most session tags an STS session may carry.
pub const MAX_SESSION_TAGS: usize = 50;
/// Longest tag key (characters).
pub const MAX_TAG_KEY_CHARS: usize = 128;
/// Longest tag value (characters).
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// Most tags of one resource.
pub const MAX_RESOURCE_TAGS: usize = 50;
/// Largest single context value (bytes).
pub const MAX_CONTEXT_VALUE_BYTES: usize = 4096;
/// Most values of one multivalued context key.
pub const MAX_LIST_ITEMS: usize = 1024;
/// Longest condition key name (characters): a service prefix, a key and a tag key.
pub const MAX_CONTEXT_KEY_CHARS: usize = 256;
/// Longest action (`service:Action`).
pub const MAX_ACTION_CHARS: usize = 256;
/// Longest IAM path.
pub const MAX_PATH_CHARS: usize = 512;
/// Characters of a bad value an error message quotes.
pub const QUOTE_CHARS: usize = 128;

/// The partitions AWS has.
const PARTITIONS: [&str; 8] =
    ["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"];

/// `s` in backticks, cut to [`QUOTE_CHARS`] characters (with `…` and the full length when cut), and
/// with control characters escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(QUOTE_CHARS * 4) + 16);
    out.push('`');
    for (n, c) in s.chars().enumerate() {
        if n == QUOTE_CHARS {
            out.push_str(&format!("…` ({} characters)", s.chars().count()));
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

/// IAM's name alphabet `[\w+=,.@-]`.
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'=' | b',' | b'.' | b'@' | b'-')
}

/// A name of `min..=max` characters of `[\w+=,.@-]`.
pub fn check_name(what: &str, s: &str, min: usize, max: usize) -> Result<(), String> {
    if s.len() < min || s.len() > max || !s.bytes().all(is_name_char) {
        return Err(format!("{what} {} must be {min}–{max} characters of [A-Za-z0-9_+=,.@-]", quote(s)));
    }
    Ok(())
}

/// An IAM path: `/`, or `/…/` of printable ASCII, at most 512 characters.
pub fn check_path(s: &str) -> Result<(), String> {
    let ok = s.len() <= MAX_PATH_CHARS
        && s.starts_with('/')
        && s.ends_with('/')
        && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
        && !s.contains("//");
    if !ok {
        return Err(format!("path {} must be `/` or `/…/` of printable characters, at most 512", quote(s)));
    }
    Ok(())
}

/// An ARN's length and characters: at most 2,048 characters, no control characters.
pub fn check_arn_text(s: &str) -> Result<(), String> {
    if s.chars().count() > MAX_ARN_CHARS {
        return Err(format!("{} is longer than {MAX_ARN_CHARS} characters", quote(s)));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{} contains control characters", quote(s)));
    }
    Ok(())
}

/// The path and name of an IAM user or role resource (`user/PATH/NAME` after the type).
fn split_path(rest: &str) -> (&str, &str) {
    match rest.rfind('/') {
        // `rest` is `PATH…/NAME` without the leading `/` of the path.
        Some(i) => (rest.get(..=i).unwrap_or(""), rest.get(i + 1..).unwrap_or("")),
        None => ("", rest),
    }
}

/// Checks a principal ARN as IAM and STS would: partition, empty region, 12-digit account, path,
/// user/role names (1–64), session names (2–64), federated user names (2–32), length, characters.
/// A service principal (`sagemaker.amazonaws.com`) passes. Returns the rule that failed.
pub fn check_principal_arn(s: &str) -> Result<(), String> {
    check_arn_text(s)?;
    if arn::is_service_principal(s) {
        return Ok(());
    }
    let Some(a) = arn::parse(s) else {
        return Err(format!("{} is not an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`)", quote(s)));
    };
    if !PARTITIONS.contains(&a.partition) {
        return Err(format!("partition {} is not an AWS partition", quote(a.partition)));
    }
    let not_principal =
        || format!("{} is not an IAM user, role or assumed-role session ARN, nor a service principal", quote(s));
    if !matches!(a.service, "iam" | "sts") {
        return Err(not_principal());
    }
    if !a.region.is_empty() {
        return Err(format!("an IAM or STS principal ARN has no region, not {}", quote(a.region)));
    }
    if !arn::is_account_id(a.account) {
        return Err(format!("account {} is not a 12-digit account id", quote(a.account)));
    }
    let not_principal =
        || format!("{} is not an IAM user, role or assumed-role session ARN, nor a service principal", quote(s));
    match (a.service, arn::parse_principal(s)) {
        ("iam", Some(PrincipalArn::Root { .. })) => Ok(()),
        ("iam", Some(PrincipalArn::User { name, .. })) => {
            let (path, _) = split_path(a.resource.strip_prefix("user").unwrap_or(""));
            check_path(path)?;
            check_name("user name", name, 1, 64)
        }
        ("iam", Some(PrincipalArn::Role { name, .. })) => {
            let (path, _) = split_path(a.resource.strip_prefix("role").unwrap_or(""));
            check_path(path)?;
            check_name("role name", name, 1, 64)
        }
        ("sts", Some(PrincipalArn::Session { role, session, .. })) => {
            check_name("role name", role, 1, 64)?;
            check_name("role session name", session, 2, 64)
        }
        ("sts", Some(PrincipalArn::FederatedUser { name, .. })) => check_name("federated user name", name, 2, 32),
        _ => Err(not_principal()),
    }
}

/// Session tags: at most 50, keys 1–128 and values at most 256 characters, keys unique regardless of
/// case (found with a hash set). Returns the rule that failed.
pub fn check_session_tags<'a>(tags: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> Result<(), String> {
    check_tags(tags, MAX_SESSION_TAGS, "session tags")
}

/// Resource tags: at most 50, with the tag key and value limits.
pub fn check_resource_tags<'a>(tags: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> Result<(), String> {
    check_tags(tags, MAX_RESOURCE_TAGS, "resource tags")
}

fn check_tags<'a>(
    tags: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    max: usize,
    what: &str,
) -> Result<(), String> {
    if tags.len() > max {
        return Err(format!("{} {what} exceed the limit of {max}", tags.len()));
    }
    let mut seen = std::collections::HashSet::with_capacity(tags.len());
    for (k, v) in tags {
        let chars = k.chars().count();
        if chars == 0 || chars > MAX_TAG_KEY_CHARS {
            return Err(format!("tag key {} must be 1–{MAX_TAG_KEY_CHARS} characters", quote(k)));
        }
        if v.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(format!("the value of tag {} is longer than {MAX_TAG_VALUE_CHARS} characters", quote(k)));
        }
        if k.chars().any(char::is_control) || v.chars().any(char::is_control) {
            return Err(format!("tag {} contains control characters", quote(k)));
        }
        if !seen.insert(k.to_lowercase()) {
            return Err(format!("tag keys {} differ only in case: tag keys are case-insensitive", quote(k)));
        }
    }
    Ok(())
}

/// A source identity: 2–64 characters of `[\w+=,.@-]`.
pub fn check_source_identity(s: &str) -> Result<(), String> {
    check_name("source identity", s, 2, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_arns_as_iam_validates_them() {
        let ok = [
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:user/division/team/alice",
            "arn:aws:iam::111122223333:role/SageMakerStudioExecutionRoleTeam1",
            "arn:aws:iam::111122223333:role/service-role/Exec+Role=1,x.y@z-w",
            "arn:aws:iam::111122223333:root",
            "arn:aws:sts::111122223333:assumed-role/Team1/alice-Team1",
            "arn:aws:sts::111122223333:assumed-role/Team1/ab",
            "arn:aws-cn:sts::111122223333:assumed-role/Team1/alice",
            "arn:aws-us-gov:iam::111122223333:user/alice",
            "arn:aws:sts::111122223333:federated-user/bob",
            "sagemaker.amazonaws.com",
        ];
        for s in ok {
            assert_eq!(check_principal_arn(s), Ok(()), "{s}");
        }
        let long_name = "a".repeat(65);
        let long_session = "s".repeat(65);
        let long_path = format!("/{}/", "p".repeat(511));
        let bad = [
            ("arn:aws:iam::111122223333:user/carol:admin", "user name"),
            (&format!("arn:aws:iam::111122223333:user/{long_name}"), "user name"),
            (&format!("arn:aws:iam::111122223333:role/{long_name}"), "role name"),
            ("arn:aws:sts::111122223333:assumed-role/Team1/carol:admin", "role session name"),
            ("arn:aws:sts::111122223333:assumed-role/Team1/a", "role session name"),
            (&format!("arn:aws:sts::111122223333:assumed-role/Team1/{long_session}"), "role session name"),
            ("arn:aws:sts::111122223333:assumed-role/Team1/al ice", "role session name"),
            ("arn:aws:sts::111122223333:assumed-role/Te am/alice", "role name"),
            ("arn:aws-mars:iam::111122223333:user/alice", "partition"),
            ("arn:aws:iam:us-east-1:111122223333:user/alice", "region"),
            ("arn:aws:iam::11112222333:user/alice", "account"),
            ("arn:aws:iam::11112222333a:user/alice", "account"),
            (&format!("arn:aws:iam::111122223333:user{long_path}alice"), "path"),
            ("arn:aws:iam::111122223333:user/a//b/alice", "path"),
            ("arn:aws:iam::111122223333:user/alice\u{0}", "control"),
            ("arn:aws:s3:::bucket", "is not an IAM user"),
            ("arn:aws:iam::111122223333:group/devs", "is not an IAM user"),
            ("alice", "is not an ARN"),
        ];
        for (s, want) in bad {
            let e = check_principal_arn(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
            assert!(e.chars().count() < QUOTE_CHARS + 200, "{e}");
        }
        let huge = format!("arn:aws:iam::111122223333:user/{}", "a".repeat(100_000));
        let e = check_principal_arn(&huge).expect_err("too long");
        assert!(e.contains("longer than 2048"), "{e}");
        assert!(e.chars().count() < QUOTE_CHARS + 100, "a message quotes at most 128 characters: {e}");
    }

    #[test]
    fn tags_within_aws_limits() {
        let ok: Vec<(String, String)> = (0..50).map(|i| (format!("k{i}"), "v".repeat(256))).collect();
        assert_eq!(check_session_tags(ok.iter().map(|(k, v)| (k.as_str(), v.as_str()))), Ok(()));
        let many: Vec<(String, String)> = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        let e = check_session_tags(many.iter().map(|(k, v)| (k.as_str(), v.as_str()))).expect_err("51");
        assert!(e.contains("51 session tags exceed the limit of 50"), "{e}");
        let cases: [(&str, &str, &str); 5] = [
            ("", "v", "1–128"),
            (&"k".repeat(129), "v", "1–128"),
            ("k", &"v".repeat(257), "longer than 256"),
            ("k\n", "v", "control"),
            ("k", "v\u{7}", "control"),
        ];
        for (k, v, want) in cases {
            let e = check_session_tags([(k, v)].into_iter()).expect_err(want);
            assert!(e.contains(want), "{k:?}={v:?}: {e}");
        }
        let e = check_session_tags([("Team", "a"), ("team", "b")].into_iter()).expect_err("case");
        assert!(e.contains("differ only in case"), "{e}");
    }

    #[test]
    fn quotes_are_bounded_and_escaped() {
        assert_eq!(quote("abc"), "`abc`");
        assert_eq!(quote("a\nb"), "`a\\nb`");
        let q = quote(&"x".repeat(1000));
        assert!(q.starts_with(&format!("`{}…`", "x".repeat(128))), "{q}");
        assert!(q.ends_with("(1000 characters)"), "{q}");
    }
}
