//! Wildcard patterns compiled once: `*` (any run, including empty) and `?` (exactly one character), as
//! used by `Action`, `Resource`, `StringLike` and `ArnLike`. Pure.

/// Byte equality without a call into `memcmp` for the short strings policies compare (actions, ARN
/// segments); eight bytes at a time.
#[inline]
pub fn fast_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in ca.by_ref().zip(cb.by_ref()) {
        if x != y {
            return false;
        }
    }
    ca.remainder() == cb.remainder()
}

/// `s.starts_with(prefix)` through [`fast_eq`].
#[inline]
pub fn fast_starts_with(s: &str, prefix: &str) -> bool {
    s.as_bytes().get(..prefix.len()).is_some_and(|head| fast_eq(head, prefix.as_bytes()))
}

/// One token of a pattern. Literal `*`/`?` (from the `${*}`/`${?}` escapes) are kept inside `Lit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// Literal text.
    Lit(String),
    /// `*`: any run of characters, including none.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Appends `tok` to `toks`, merging adjacent literals and collapsing repeated stars.
pub fn push_tok(toks: &mut Vec<Tok>, tok: Tok) {
    match (toks.last_mut(), tok) {
        (Some(Tok::Lit(prev)), Tok::Lit(s)) => prev.push_str(&s),
        (Some(Tok::Star), Tok::Star) => {}
        (_, Tok::Lit(s)) if s.is_empty() => {}
        (_, t) => toks.push(t),
    }
}

/// Splits plain text into tokens, `*` and `?` being wildcards.
pub fn tokens_of(text: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut lit = String::new();
    for c in text.chars() {
        match c {
            '*' | '?' => {
                if !lit.is_empty() {
                    push_tok(&mut toks, Tok::Lit(std::mem::take(&mut lit)));
                }
                push_tok(&mut toks, if c == '*' { Tok::Star } else { Tok::One });
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        push_tok(&mut toks, Tok::Lit(lit));
    }
    toks
}

/// A compiled glob over whole strings; `*` crosses every character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Glob {
    /// `*`
    Any,
    /// No wildcard.
    Exact(String),
    /// `prefix*`
    Prefix(String),
    /// Anything else.
    General(Vec<Tok>),
}

// === impl Glob ===

impl Glob {
    /// Compiles a token list.
    pub fn new(toks: Vec<Tok>) -> Glob {
        match toks.as_slice() {
            [] => Glob::Exact(String::new()),
            [Tok::Star] => Glob::Any,
            [Tok::Lit(s)] => Glob::Exact(s.clone()),
            [Tok::Lit(s), Tok::Star] => Glob::Prefix(s.clone()),
            _ => Glob::General(toks),
        }
    }

    /// Compiles plain text with `*`/`?` wildcards.
    pub fn parse(text: &str) -> Glob {
        Glob::new(tokens_of(text))
    }

    /// Whether `s` matches the whole pattern.
    pub fn matches(&self, s: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(e) => fast_eq(e.as_bytes(), s.as_bytes()),
            Glob::Prefix(p) => fast_starts_with(s, p),
            Glob::General(toks) => match_toks(toks, s),
        }
    }

    /// Whether the pattern ends with `*`.
    pub fn ends_with_star(&self) -> bool {
        match self {
            Glob::Any | Glob::Prefix(_) => true,
            Glob::Exact(_) => false,
            Glob::General(t) => matches!(t.last(), Some(Tok::Star)),
        }
    }
}

fn next_char_len(s: &str, at: usize) -> usize {
    s.get(at..).and_then(|r| r.chars().next()).map_or(1, char::len_utf8)
}

/// Greedy matching with one backtrack point: correct for `*`/`?` globs.
fn match_toks(toks: &[Tok], s: &str) -> bool {
    let (mut ti, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(tok) = toks.get(ti) {
            match tok {
                Tok::Star => {
                    star = Some((ti + 1, si));
                    ti += 1;
                    continue;
                }
                Tok::Lit(l) => {
                    if s.get(si..).is_some_and(|r| fast_starts_with(r, l)) {
                        si += l.len();
                        ti += 1;
                        continue;
                    }
                }
                Tok::One => {
                    if si < s.len() {
                        si += next_char_len(s, si);
                        ti += 1;
                        continue;
                    }
                }
            }
        } else if si == s.len() {
            return true;
        }
        match star {
            Some((sti, ssi)) if ssi < s.len() => {
                let next = ssi + next_char_len(s, ssi);
                star = Some((sti, next));
                ti = sti;
                si = next;
            }
            _ => return false,
        }
    }
}

/// An ARN pattern, matched segment by segment (the parts separated by the first five colons).
///
/// With `trailing_star_expands` (the `Resource` element), a `*` that ends a non-final segment may also
/// consume colons ("If the `*` wildcard is the last character of a resource ARN segment, it can expand
/// to match beyond the colon boundaries"). `ArnLike`/`ArnEquals` conditions check each of the six
/// components separately and do not expand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnGlob {
    kind: ArnKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ArnKind {
    Any,
    Exact(String),
    Prefix(String),
    /// `prefix`: the literal text before the first wildcard, a quick reject.
    Segments {
        prefix: String,
        segs: Vec<Glob>,
        expand: bool,
    },
}

// === impl ArnGlob ===

impl ArnGlob {
    /// Compiles a token list into segments. Returns `None` when the pattern has fewer than six segments
    /// and its last segment does not end with `*` (it could never match an ARN).
    pub fn new(toks: Vec<Tok>, trailing_star_expands: bool) -> Option<ArnGlob> {
        if toks == [Tok::Star] {
            return Some(ArnGlob { kind: ArnKind::Any });
        }
        // Split on the first five literal colons.
        let mut segs: Vec<Vec<Tok>> = vec![Vec::new()];
        for tok in toks.iter().cloned() {
            match tok {
                Tok::Lit(s) => {
                    let mut rest = s.as_str();
                    while segs.len() < 6 {
                        let Some(i) = rest.find(':') else { break };
                        if let Some(cur) = segs.last_mut() {
                            push_tok(cur, Tok::Lit(rest[..i].to_owned()));
                        }
                        segs.push(Vec::new());
                        rest = &rest[i + 1..];
                    }
                    if let Some(cur) = segs.last_mut() {
                        push_tok(cur, Tok::Lit(rest.to_owned()));
                    }
                }
                t => {
                    if let Some(cur) = segs.last_mut() {
                        push_tok(cur, t);
                    }
                }
            }
        }
        let globs: Vec<Glob> = segs.into_iter().map(Glob::new).collect();
        let last_star = globs.last().is_some_and(Glob::ends_with_star);
        if globs.len() < 6 && !(trailing_star_expands && last_star) {
            return None;
        }
        let wildcard_free = toks.iter().all(|t| matches!(t, Tok::Lit(_)));
        if wildcard_free && globs.len() == 6 {
            let text: String = toks.iter().map(|t| if let Tok::Lit(s) = t { s.as_str() } else { "" }).collect();
            return Some(ArnGlob { kind: ArnKind::Exact(text) });
        }
        // Only a trailing `*` in the last segment: a prefix test on the whole string is equivalent.
        if let [init @ .., Tok::Star] = toks.as_slice()
            && init.iter().all(|t| matches!(t, Tok::Lit(_)))
            && (globs.len() == 6 || trailing_star_expands)
        {
            let text: String = init.iter().map(|t| if let Tok::Lit(s) = t { s.as_str() } else { "" }).collect();
            return Some(ArnGlob { kind: ArnKind::Prefix(text) });
        }
        let prefix = match toks.first() {
            Some(Tok::Lit(s)) => s.clone(),
            _ => String::new(),
        };
        Some(ArnGlob { kind: ArnKind::Segments { prefix, segs: globs, expand: trailing_star_expands } })
    }

    /// Whether the ARN `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match &self.kind {
            ArnKind::Any => true,
            ArnKind::Exact(e) => fast_eq(e.as_bytes(), value.as_bytes()),
            ArnKind::Prefix(p) => fast_starts_with(value, p),
            ArnKind::Segments { prefix, segs, expand } => {
                fast_starts_with(value, prefix)
                    && (match_fixed(segs, value) || (*expand && can_expand(segs) && match_segments(segs, value, true)))
            }
        }
    }
}

/// Segment-wise matching with the value's segments cut at its first colons (no expansion).
fn match_fixed(segs: &[Glob], value: &str) -> bool {
    let last = segs.len().saturating_sub(1);
    let mut rest = value;
    for (i, g) in segs.iter().enumerate() {
        if i == last {
            return g.matches(rest);
        }
        let Some(k) = rest.bytes().position(|b| b == b':') else {
            return false;
        };
        let (Some(head), Some(tail)) = (rest.get(..k), rest.get(k + 1..)) else {
            return false;
        };
        if !g.matches(head) {
            return false;
        }
        rest = tail;
    }
    false
}

/// Whether some non-final segment ends with `*` (and so may swallow colons).
fn can_expand(segs: &[Glob]) -> bool {
    segs.split_last().is_some_and(|(_, init)| init.iter().any(Glob::ends_with_star))
}

fn match_segments(segs: &[Glob], value: &str, expand: bool) -> bool {
    let Some((first, rest_pats)) = segs.split_first() else {
        return value.is_empty();
    };
    if rest_pats.is_empty() {
        // The last pattern segment takes the rest of the value, colons included.
        return first.matches(value);
    }
    let (head, tail) = match value.split_once(':') {
        Some(p) => p,
        None => return false,
    };
    if first.matches(head) && match_segments(rest_pats, tail, expand) {
        return true;
    }
    if expand && first.ends_with_star() {
        // Let the trailing `*` swallow further colon-separated parts.
        let mut from = head.len() + 1;
        while let Some(off) = value.get(from..).and_then(|r| r.find(':')) {
            let k = from + off;
            if let (Some(h), Some(t)) = (value.get(..k), value.get(k + 1..))
                && first.matches(h)
                && match_segments(rest_pats, t, expand)
            {
                return true;
            }
            from = k + 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arn(p: &str, expand: bool) -> ArnGlob {
        ArnGlob::new(tokens_of(p), expand).unwrap()
    }

    #[test]
    fn glob_star_matches_empty_and_runs() {
        let g = Glob::parse("iam:*AccessKey*");
        assert!(g.matches("iam:createaccesskey".replace("accesskey", "AccessKey").as_str()));
        assert!(g.matches("iam:AccessKey"));
        assert!(!g.matches("iam:ListUsers"));
    }

    #[test]
    fn glob_question_matches_exactly_one_char() {
        let g = Glob::parse("a?c");
        assert!(g.matches("abc"));
        assert!(g.matches("aéc"));
        assert!(!g.matches("ac"));
        assert!(!g.matches("abbc"));
    }

    #[test]
    fn glob_backtracks() {
        assert!(Glob::parse("*ab*ab").matches("xxabyyabab"));
        assert!(!Glob::parse("*ab*ab").matches("xxabyyaba"));
        assert!(Glob::parse("**").matches(""));
    }

    #[test]
    fn resource_star_crosses_slashes_in_resource_part() {
        let g = arn("arn:aws:s3:::BUCKET/*/test/*", true);
        assert!(g.matches("arn:aws:s3:::BUCKET/1/2/test/3/object.jpg"));
        assert!(g.matches("arn:aws:s3:::BUCKET//test/object.jpg"));
        assert!(!g.matches("arn:aws:s3:::BUCKET/test/object.jpg"));
    }

    #[test]
    fn resource_segment_star_does_not_cross_colons_unless_trailing() {
        let g = arn("arn:aws:sagemaker:us-*-1:111122223333:app/*", true);
        assert!(g.matches("arn:aws:sagemaker:us-east-1:111122223333:app/x"));
        assert!(!g.matches("arn:aws:sagemaker:us-east-1:999:111122223333:app/x"));
    }

    #[test]
    fn resource_trailing_star_of_segment_expands_beyond_colons() {
        let g = arn("arn:aws:sagemaker:*:111122223333:app/*", true);
        assert!(g.matches("arn:aws:sagemaker:us-east-1:111122223333:app/x"));
        // `*` ends the region segment, so it may swallow `us-east-1:999999999999`.
        assert!(g.matches("arn:aws:sagemaker:us-east-1:999999999999:111122223333:app/x"));
        let short = arn("arn:aws:iam::*", true);
        assert!(short.matches("arn:aws:iam::111122223333:role/x"));
    }

    #[test]
    fn arn_like_checks_each_component_separately() {
        let p = "arn:aws:someservice:*:111122223333:finance/*";
        let v = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt";
        assert!(!arn(p, false).matches(v));
        assert!(Glob::parse(p).matches(v));
        assert!(arn(p, false).matches("arn:aws:someservice:us-east-2:111122223333:finance/d.txt"));
    }

    #[test]
    fn arn_pattern_with_too_few_segments_is_refused() {
        assert!(ArnGlob::new(tokens_of("arn:aws:iam::role"), true).is_none());
        assert!(ArnGlob::new(tokens_of("arn:aws:iam::*"), false).is_none());
    }

    #[test]
    fn resource_match_is_case_sensitive() {
        assert!(!arn("arn:aws:iam::111122223333:user/Alice", true).matches("arn:aws:iam::111122223333:user/alice"));
    }
}
