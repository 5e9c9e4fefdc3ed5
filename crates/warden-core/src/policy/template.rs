//! Policy variables: `${aws:username}`, the escapes `${*}`, `${?}`, `${$}`, and defaults
//! `${aws:PrincipalTag/team, 'company-wide'}`. A template is parsed once; evaluation substitutes values
//! from the request context. Pure.
use super::context::{Context, CtxVal};
use super::pattern::{Tok, push_tok};

/// A part of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text (never a wildcard).
    Lit(String),
    /// `*` wildcard (only where wildcards are allowed).
    Star,
    /// `?` wildcard.
    One,
    /// A policy variable: lower-cased key and optional default.
    Var { key: String, default: Option<String> },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Keys that hold several values; they cannot be used as policy variables and need `ForAnyValue:` /
/// `ForAllValues:` in conditions.
pub const MULTIVALUED_KEYS: &[&str] = &[
    "aws:tagkeys",
    "aws:principalservicenameslist",
    "aws:calledvia",
    "aws:principalorgpaths",
    "aws:sourceorgpaths",
    "sts:transitivetagkeys",
    "sts:requestcontextproviders",
    "sagemaker:instancetypes",
    "sagemaker:acceleratortypes",
    "sagemaker:vpcsubnets",
    "sagemaker:vpcsecuritygroupids",
    "sagemaker:imagearns",
    "sagemaker:imageversionarns",
    "sagemaker:featuregroupmembers",
];

/// Whether the (lower-cased) key is known to be multivalued.
pub fn is_multivalued_key(key_lower: &str) -> bool {
    MULTIVALUED_KEYS.contains(&key_lower)
}

// === impl Template ===

impl Template {
    /// Parses `text`. `vars`: substitute `${…}` (policy `Version` `2012-10-17` and an element that
    /// allows variables); otherwise `${…}` is literal text. `wildcards`: `*` and `?` are wildcards.
    pub fn parse(text: &str, vars: bool, wildcards: bool) -> Result<Template, String> {
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            if vars && rest.starts_with("${") {
                let Some(end) = rest.find('}') else {
                    return Err(format!("unterminated policy variable in `{text}`"));
                };
                let inner = &rest[2..end];
                rest = &rest[end + 1..];
                match inner {
                    "*" | "?" | "$" => lit.push_str(inner),
                    _ => {
                        flush(&mut parts, &mut lit);
                        parts.push(parse_var(inner, text)?);
                    }
                }
                continue;
            }
            let Some(c) = rest.chars().next() else { break };
            rest = &rest[c.len_utf8()..];
            match c {
                '*' if wildcards => {
                    flush(&mut parts, &mut lit);
                    parts.push(Part::Star);
                }
                '?' if wildcards => {
                    flush(&mut parts, &mut lit);
                    parts.push(Part::One);
                }
                _ => lit.push(c),
            }
        }
        flush(&mut parts, &mut lit);
        Ok(Template { parts })
    }

    /// The parts.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Whether the template has a policy variable.
    pub fn has_vars(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var { .. }))
    }

    /// Whether a policy variable stands before the resource part of an ARN (before its fifth colon:
    /// in the partition, service, region or account).
    pub fn var_outside_resource(&self) -> bool {
        let mut colons = 0usize;
        for part in &self.parts {
            match part {
                Part::Lit(s) => colons += s.matches(':').count(),
                Part::Var { .. } if colons < 5 => return true,
                _ => {}
            }
        }
        false
    }

    /// The literal text when the template has neither variables nor wildcards.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }

    /// Tokens when the template has no variable.
    pub fn static_tokens(&self) -> Option<Vec<Tok>> {
        if self.has_vars() {
            return None;
        }
        self.resolve_tokens(&EmptyContext)
    }

    /// Substitutes variables; `None` when a variable has no value and no default (the entry then
    /// "matches nothing" for positive operators and Resource, and "matches" for negated ones).
    pub fn resolve_tokens(&self, ctx: &dyn Context) -> Option<Vec<Tok>> {
        let mut out = Vec::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => push_tok(&mut out, Tok::Lit(s.clone())),
                Part::Star => push_tok(&mut out, Tok::Star),
                Part::One => push_tok(&mut out, Tok::One),
                Part::Var { key, default } => push_tok(&mut out, Tok::Lit(resolve_var(ctx, key, default.as_deref())?)),
            }
        }
        Some(out)
    }

    /// Whether the template, with its variables substituted, equals `text` (case-sensitive); `None`
    /// when a variable has no value and no default. Allocation-free.
    pub fn eq_text(&self, ctx: &dyn Context, text: &str) -> Option<bool> {
        let mut rest = text;
        let mut ok = true;
        for p in &self.parts {
            let piece: std::borrow::Cow<'_, str> = match p {
                Part::Lit(s) => std::borrow::Cow::Borrowed(s.as_str()),
                Part::Star => std::borrow::Cow::Borrowed("*"),
                Part::One => std::borrow::Cow::Borrowed("?"),
                Part::Var { key, default } => match ctx.get(key) {
                    Some(CtxVal::One(v)) if !v.is_empty() => v,
                    _ => std::borrow::Cow::Borrowed(default.as_deref()?),
                },
            };
            if ok {
                match rest.strip_prefix(piece.as_ref()) {
                    Some(r) => rest = r,
                    None => ok = false,
                }
            }
        }
        Some(ok && rest.is_empty())
    }

    /// Substitutes variables into plain text (templates without wildcards).
    pub fn resolve_text(&self, ctx: &dyn Context) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Star => out.push('*'),
                Part::One => out.push('?'),
                Part::Var { key, default } => out.push_str(&resolve_var(ctx, key, default.as_deref())?),
            }
        }
        Some(out)
    }
}

fn resolve_var(ctx: &dyn Context, key: &str, default: Option<&str>) -> Option<String> {
    match ctx.get(key) {
        // An empty value is null in IAM.
        Some(CtxVal::One(v)) if !v.is_empty() => Some(v.into_owned()),
        // Multivalued keys cannot be variables; treat as no value.
        _ => default.map(str::to_owned),
    }
}

fn flush(parts: &mut Vec<Part>, lit: &mut String) {
    if lit.is_empty() {
        return;
    }
    if let Some(Part::Lit(prev)) = parts.last_mut() {
        prev.push_str(lit);
        lit.clear();
    } else {
        parts.push(Part::Lit(std::mem::take(lit)));
    }
}

fn parse_var(inner: &str, text: &str) -> Result<Part, String> {
    let (name, default) = match inner.split_once(',') {
        None => (inner, None),
        Some((name, rest)) => {
            let rest = rest.trim_start();
            let d = rest
                .strip_prefix('\'')
                .and_then(|r| r.strip_suffix('\''))
                .ok_or_else(|| format!("policy variable default must be in single quotes in `{text}`"))?;
            (name, Some(d.to_owned()))
        }
    };
    if name.is_empty() {
        return Err(format!("empty policy variable in `{text}`"));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(format!("policy variable name `{name}` has a space in `{text}`"));
    }
    let key = name.to_lowercase();
    if is_multivalued_key(&key) {
        return Err(format!("multivalued key `{name}` cannot be used as a policy variable"));
    }
    Ok(Part::Var { key, default })
}

struct EmptyContext;
impl Context for EmptyContext {
    fn get(&self, _: &str) -> Option<CtxVal<'_>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::context::MapContext;

    #[test]
    fn variables_substitute_case_insensitively() {
        let t = Template::parse("home/${AWS:UserName}/*", true, true).unwrap();
        let ctx = MapContext::from_pairs(&[("aws:username", "alice")]);
        assert_eq!(t.resolve_tokens(&ctx).unwrap(), vec![Tok::Lit("home/alice/".into()), Tok::Star]);
    }

    #[test]
    fn escapes_are_literal_characters_not_wildcards() {
        let t = Template::parse("a${*}b${?}c${$}", true, true).unwrap();
        assert_eq!(t.as_literal().unwrap(), "a*b?c$");
    }

    #[test]
    fn default_applies_when_key_missing() {
        let t = Template::parse("${aws:PrincipalTag/team, 'company-wide'}", true, false).unwrap();
        assert_eq!(t.resolve_text(&EmptyContext).unwrap(), "company-wide");
    }

    #[test]
    fn missing_variable_without_default_resolves_to_nothing() {
        let t = Template::parse("${aws:username}", true, false).unwrap();
        assert!(t.resolve_text(&EmptyContext).is_none());
    }

    #[test]
    fn variables_are_literal_without_version_2012() {
        let t = Template::parse("${aws:username}", false, false).unwrap();
        assert_eq!(t.as_literal().unwrap(), "${aws:username}");
    }

    #[test]
    fn malformed_variables_are_errors() {
        assert!(Template::parse("${aws:username", true, false).is_err());
        assert!(Template::parse("${aws: username}", true, false).is_err());
        assert!(Template::parse("${aws:TagKeys}", true, false).is_err());
        assert!(Template::parse("${aws:username, dflt}", true, false).is_err());
    }
}
