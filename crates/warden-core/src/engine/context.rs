//! The condition-key view of one request: keys derived from the principal, the bundle and the clock,
//! then the caller's. In `Authorize` derived keys win (a caller may add keys, never override them); in
//! the case format the caller's keys win (a simulation states its context). Pure.
use super::request::is_derived_key;
use crate::bundle::Tags;
use crate::policy::{Context, CtxVal, MapContext};
use std::borrow::Cow;
use std::cell::Cell;

/// Which side wins when both the caller and Warden have a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precedence {
    /// `Authorize`: derived keys win; the caller's values of derived keys are never read.
    Derived,
    /// Case format: the caller's keys win.
    Caller,
}

/// Keys derived from the principal (borrowed from the bundle or the request; computed lazily).
#[derive(Debug, Clone, Default)]
pub struct Derived<'a> {
    /// `aws:username` (IAM users only).
    pub username: Option<&'a str>,
    /// `aws:userid` (users, roles).
    pub userid: Option<&'a str>,
    /// `aws:userid` of a session: `ROLEID:SESSION`, built when read.
    pub session_userid: Option<(&'a str, &'a str)>,
    /// `aws:PrincipalArn`.
    pub principal_arn: Option<Cow<'a, str>>,
    /// `aws:PrincipalAccount`.
    pub account: Option<&'a str>,
    /// `aws:PrincipalType`.
    pub principal_type: Option<&'static str>,
    /// `aws:SourceIdentity`.
    pub source_identity: Option<&'a str>,
}

/// The request context.
pub struct RequestContext<'a> {
    /// Derived principal keys.
    pub derived: Derived<'a>,
    /// Session tags (win over IAM tags).
    pub session_tags: &'a [(String, String)],
    /// The principal's IAM tags.
    pub principal_tags: Option<&'a Tags>,
    /// Resource tags, from the bundle.
    pub resource_tags: Option<&'a Tags>,
    /// Resource tags given with the request.
    pub request_resource_tags: &'a [(String, String)],
    /// The caller's keys.
    pub caller: &'a MapContext,
    /// Request time.
    pub now_ms: i64,
    /// Precedence.
    pub precedence: Precedence,
    /// Set when `aws:CurrentTime` or `aws:EpochTime` is read.
    pub read_time: Cell<bool>,
}

/// Whether tag key `k` equals the lower-cased `key_lower`, ignoring case (allocation-free for ASCII).
pub fn tag_key_eq(k: &str, key_lower: &str) -> bool {
    if k.is_ascii() { k.eq_ignore_ascii_case(key_lower) } else { k.to_lowercase() == key_lower }
}

fn tag_lookup<'a>(pairs: &'a [(String, String)], key_lower: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| tag_key_eq(k, key_lower)).map(|(_, v)| v.as_str())
}

fn one(s: &str) -> CtxVal<'_> {
    CtxVal::One(Cow::Borrowed(s))
}

// === impl RequestContext ===

impl RequestContext<'_> {
    fn derived_get(&self, key: &str) -> Option<CtxVal<'_>> {
        let d = &self.derived;
        match key {
            "aws:username" => return d.username.map(one),
            "aws:userid" => {
                if let Some((role_id, session)) = d.session_userid {
                    return Some(CtxVal::One(Cow::Owned(format!("{role_id}:{session}"))));
                }
                return d.userid.map(one);
            }
            "aws:principalarn" => return d.principal_arn.as_deref().map(one),
            "aws:principalaccount" => return d.account.map(one),
            "aws:principaltype" => return d.principal_type.map(one),
            "aws:sourceidentity" => return d.source_identity.map(one),
            "aws:currenttime" => {
                self.read_time.set(true);
                let dt = chrono::DateTime::from_timestamp_millis(self.now_ms)?;
                return Some(CtxVal::One(Cow::Owned(dt.format("%Y-%m-%dT%H:%M:%SZ").to_string())));
            }
            "aws:epochtime" => {
                self.read_time.set(true);
                return Some(CtxVal::One(Cow::Owned(self.now_ms.div_euclid(1000).to_string())));
            }
            _ => {}
        }
        if let Some(tag) = key.strip_prefix("aws:principaltag/") {
            if let Some(v) = tag_lookup(self.session_tags, tag) {
                return Some(one(v));
            }
            return self.principal_tags.and_then(|t| t.get_lower(tag)).map(one);
        }
        if let Some(tag) = key.strip_prefix("aws:resourcetag/").or_else(|| key.strip_prefix("sagemaker:resourcetag/")) {
            if let Some(t) = self.resource_tags {
                return t.get_lower(tag).map(one);
            }
            return tag_lookup(self.request_resource_tags, tag).map(one);
        }
        None
    }
}

impl Context for RequestContext<'_> {
    fn get(&self, key_lower: &str) -> Option<CtxVal<'_>> {
        match self.precedence {
            Precedence::Derived => {
                if is_derived_key(key_lower) {
                    self.derived_get(key_lower)
                } else {
                    self.caller.get(key_lower)
                }
            }
            Precedence::Caller => self.caller.get(key_lower).or_else(|| self.derived_get(key_lower)),
        }
    }
}
