//! Wildcard patterns compiled once: `*` (any run, including empty) and `?` (exactly one character), as
//! used by `Action`, `Resource`, `StringLike` and `ArnLike`. Matching never backtracks: it takes time
//! linear in the value per pattern (`O(len(value) × len(pattern))` at worst), however many `*` and
//! colons either holds (SPEC §4.1, "Resources are bounded"). Pure.

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
    General(Wild),
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
            _ => Glob::General(Wild::new(&toks)),
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
            Glob::General(w) => w.matches(s),
        }
    }

    /// Whether the pattern ends with `*`.
    pub fn ends_with_star(&self) -> bool {
        match self {
            Glob::Any | Glob::Prefix(_) => true,
            Glob::Exact(_) => false,
            Glob::General(w) => w.ends_with_star(),
        }
    }

    /// The literal text every match starts with (up to the first wildcard).
    fn lead(&self) -> &str {
        match self {
            Glob::Any => "",
            Glob::Exact(e) | Glob::Prefix(e) => e,
            Glob::General(w) => match w.head.pieces.first() {
                Some(Piece::Lit(l)) => l,
                _ => "",
            },
        }
    }

    /// Whether the pattern has a `*`.
    fn has_star(&self) -> bool {
        match self {
            Glob::Any | Glob::Prefix(_) => true,
            Glob::Exact(_) => false,
            Glob::General(w) => w.tail.is_some(),
        }
    }

    /// For a pattern without `*` (it matches a fixed number of characters): where a match that ends at
    /// the end of `s` would start.
    fn suffix_start(&self, s: &str) -> Option<usize> {
        match self {
            Glob::Any | Glob::Prefix(_) => None,
            Glob::Exact(e) => s.len().checked_sub(e.len()),
            Glob::General(w) => w.tail.is_none().then(|| w.head.suffix_start(s)).flatten(),
        }
    }

    /// Where a match of the head (the part before the first `*`, or the whole pattern when it has
    /// none) that starts at `at` ends.
    fn head_end(&self, s: &str, at: usize) -> Option<usize> {
        match self {
            Glob::Any => Some(at),
            Glob::Exact(e) | Glob::Prefix(e) => {
                s.get(at..).is_some_and(|r| fast_starts_with(r, e)).then_some(at + e.len())
            }
            Glob::General(w) => w.head.match_at(s, at),
        }
    }

    /// With the head matched up to `at`: whether the rest of the pattern matches all of `s[at..]`.
    fn tail_matches(&self, s: &str, at: usize) -> bool {
        match self {
            Glob::Any | Glob::Prefix(_) => true,
            Glob::Exact(_) => at == s.len(),
            Glob::General(w) => w.tail_matches(s, at),
        }
    }

    /// With the head matched up to `at`: the end of the shortest `s[..e]` that the rest of the pattern
    /// matches, a trailing `*` matching nothing (`None`: no such end).
    fn shortest_end(&self, s: &str, at: usize) -> Option<usize> {
        match self {
            Glob::Any | Glob::Exact(_) | Glob::Prefix(_) => Some(at),
            Glob::General(w) => w.shortest_end(s, at),
        }
    }
}

/// A general glob `HEAD*MID*…*MID*LAST` cut at its stars into runs of literals and `?` (each of a fixed
/// number of characters). Matching takes `O(len(s) × len(pattern))` at worst and `O(len(s) +
/// len(pattern))` when no run has a `?`: the head must match at the start and `LAST` at the end, and
/// each `MID`, in order, is taken at its leftmost place after the previous one (taking it later can
/// only leave less room for the rest), so nothing is ever tried twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wild {
    head: Run,
    /// `None`: the pattern has no `*` (it is `head` alone).
    tail: Option<Tail>,
}

/// What follows the first `*`: `*MID*…*MID*LAST`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tail {
    mids: Vec<Run>,
    /// Empty when the pattern ends with `*`.
    last: Run,
}

// === impl Wild ===

impl Wild {
    /// Cuts a token list at its stars.
    fn new(toks: &[Tok]) -> Wild {
        let mut runs = toks.split(|t| matches!(t, Tok::Star)).map(Run::new);
        let head = runs.next().unwrap_or_default();
        let mut rest: Vec<Run> = runs.collect();
        let tail = rest.pop().map(|last| Tail { mids: rest.into_iter().filter(|r| !r.is_empty()).collect(), last });
        Wild { head, tail }
    }

    fn matches(&self, s: &str) -> bool {
        self.head.match_at(s, 0).is_some_and(|at| self.tail_matches(s, at))
    }

    fn ends_with_star(&self) -> bool {
        self.tail.as_ref().is_some_and(|t| t.last.is_empty())
    }

    fn tail_matches(&self, s: &str, at: usize) -> bool {
        match &self.tail {
            None => at == s.len(),
            Some(t) => t.mids_end(s, at).is_some_and(|from| t.last.match_suffix(s, from)),
        }
    }

    fn shortest_end(&self, s: &str, at: usize) -> Option<usize> {
        match &self.tail {
            None => Some(at),
            Some(t) => t.mids_end(s, at).and_then(|from| t.last.find_from(s, from)),
        }
    }
}

// === impl Tail ===

impl Tail {
    /// Takes each `MID` at its leftmost place from `at` on; where the last one ends.
    fn mids_end(&self, s: &str, at: usize) -> Option<usize> {
        self.mids.iter().try_fold(at, |from, m| m.find_from(s, from))
    }
}

/// A piece of a [`Run`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Literal text, never empty.
    Lit(String),
    /// `?`, `n` times: exactly `n` characters.
    Chars(usize),
}

/// A run of literal text and `?` between stars: it matches exactly `chars` characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Run {
    pieces: Vec<Piece>,
    chars: usize,
}

// === impl Run ===

impl Run {
    /// From tokens without `*`, merging adjacent literals and adjacent `?`.
    fn new(toks: &[Tok]) -> Run {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut chars = 0usize;
        for t in toks {
            match (pieces.last_mut(), t) {
                (_, Tok::Star) => {}
                (_, Tok::Lit(l)) if l.is_empty() => {}
                (Some(Piece::Lit(prev)), Tok::Lit(l)) => {
                    prev.push_str(l);
                    chars += l.chars().count();
                }
                (_, Tok::Lit(l)) => {
                    pieces.push(Piece::Lit(l.clone()));
                    chars += l.chars().count();
                }
                (Some(Piece::Chars(n)), Tok::One) => {
                    *n += 1;
                    chars += 1;
                }
                (_, Tok::One) => {
                    pieces.push(Piece::Chars(1));
                    chars += 1;
                }
            }
        }
        Run { pieces, chars }
    }

    fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The text, when the run is one literal (or empty).
    fn literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Lit(l)] => Some(l),
            _ => None,
        }
    }

    /// Where a match starting at `at` ends.
    fn match_at(&self, s: &str, at: usize) -> Option<usize> {
        self.pieces.iter().try_fold(at, |p, piece| match piece {
            Piece::Lit(l) => s.get(p..).is_some_and(|r| fast_starts_with(r, l)).then_some(p + l.len()),
            Piece::Chars(n) => {
                let r = s.get(p..)?;
                // The byte offset after `n` characters (`n` may reach the end exactly).
                let mut it = r.char_indices().map(|(i, _)| i).chain(std::iter::once(r.len()));
                it.nth(*n).map(|k| p + k)
            }
        })
    }

    /// Where the leftmost match starting at or after `from` ends. A run that opens with a literal is
    /// looked for with `str::find` (linear); one that opens with `?` is tried at each character.
    fn find_from(&self, s: &str, from: usize) -> Option<usize> {
        match self.pieces.first() {
            None => s.get(from..).map(|_| from),
            Some(Piece::Lit(l)) => {
                let step = l.chars().next().map_or(1, char::len_utf8);
                let mut at = from;
                loop {
                    let start = at + s.get(at..)?.find(l.as_str())?;
                    if let Some(end) = self.match_at(s, start) {
                        return Some(end);
                    }
                    at = start + step;
                }
            }
            Some(Piece::Chars(_)) => {
                let r = s.get(from..)?;
                r.char_indices().map(|(i, _)| from + i).find_map(|start| self.match_at(s, start))
            }
        }
    }

    /// Where a match that ends at the end of `s` would start: `chars` characters before the end.
    fn suffix_start(&self, s: &str) -> Option<usize> {
        match self.literal() {
            Some(l) => s.len().checked_sub(l.len()),
            None => match self.chars.checked_sub(1) {
                None => Some(s.len()),
                Some(k) => s.char_indices().rev().nth(k).map(|(i, _)| i),
            },
        }
    }

    /// Whether the run matches the end of `s`, starting at or after `from`.
    fn match_suffix(&self, s: &str, from: usize) -> bool {
        self.suffix_start(s).is_some_and(|st| st >= from && self.match_at(s, st) == Some(s.len()))
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
    /// `prefix`: the literal text before the first wildcard, a quick reject. `expand`: resource
    /// matching, and some non-final segment ends with `*` (so may swallow colons).
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
        let expand = trailing_star_expands && can_expand(&globs);
        Some(ArnGlob { kind: ArnKind::Segments { prefix, segs: globs, expand } })
    }

    /// Whether the ARN `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match &self.kind {
            ArnKind::Any => true,
            ArnKind::Exact(e) => fast_eq(e.as_bytes(), value.as_bytes()),
            ArnKind::Prefix(p) => fast_starts_with(value, p),
            ArnKind::Segments { prefix, segs, expand } => {
                fast_starts_with(value, prefix)
                    && (match_fixed(segs, value)
                        || (*expand && has_colons(value, segs.len()) && match_expanding(segs, value)))
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

/// Whether `value` has at least `n` colons. With fewer than one per segment it can be cut into the
/// segments in one way only, the one [`match_fixed`] tries, so expansion has nothing to add (typical
/// ARNs, with five colons, never need it).
fn has_colons(value: &str, n: usize) -> bool {
    n.checked_sub(1).is_none_or(|k| value.bytes().filter(|&b| b == b':').nth(k).is_some())
}

/// Whether some non-final segment ends with `*` (and so may swallow colons).
fn can_expand(segs: &[Glob]) -> bool {
    segs.split_last().is_some_and(|(_, init)| init.iter().any(Glob::ends_with_star))
}

/// Matching where a `*` that ends a non-final segment may swallow colons, in `O(segments × len(value) ×
/// len(pattern))` at worst: the value is scanned left to right once per group of segments, never once
/// per way of cutting it.
///
/// A segment that does not end with `*` is cut at the next colon, so from a given start it has one
/// place to end. One that ends with `*` (`X*`) may end at any colon at or after the end of the
/// shortest match of `X` from its start: the starts that the next segment may take are every colon
/// past one point. Between two such segments the candidate starts are tried in increasing order, and
/// that order carries over: a later start can only end `X` later, so the first start whose `X`
/// matches gives the smallest point (and if `X` cannot be found after it, it cannot after any later
/// one). The last segment takes the rest of the value; when it has a `*`, the earliest start whose
/// head matches is the only one to try (`*…` that matches a suffix matches every longer one).
fn match_expanding(segs: &[Glob], value: &str) -> bool {
    let Some((last, init)) = segs.split_last() else {
        return false;
    };
    // Where the current group may start: `None`, at 0 only; `Some(e)`, after any colon at or past `e`.
    let mut after: Option<usize> = None;
    let mut rest = init;
    loop {
        let n = rest.iter().position(Glob::ends_with_star).unwrap_or(rest.len());
        let Some((fixed, more)) = rest.split_at_checked(n) else {
            return false;
        };
        let star = more.split_first();
        let lead = fixed.first().or(star.map(|(seg, _)| seg)).unwrap_or(last).lead();
        if star.is_none()
            && fixed.is_empty()
            && let Some(q) = last.suffix_start(value)
        {
            // The last segment matches a fixed number of characters: only one start can do.
            let reachable = match after {
                None => q == 0,
                Some(e) => q > e && q.checked_sub(1).and_then(|c| value.as_bytes().get(c)) == Some(&b':'),
            };
            return reachable && value.get(q..).is_some_and(|r| last.matches(r));
        }
        let mut next = None;
        for start in starts(value, after, lead) {
            let Some(p) = cut_fixed(fixed, value, start) else {
                continue;
            };
            match star {
                None => {
                    let Some(q) = last.head_end(value, p) else {
                        continue;
                    };
                    if last.tail_matches(value, q) {
                        return true;
                    }
                    if last.has_star() {
                        return false;
                    }
                }
                Some((seg, _)) => {
                    let Some(q) = seg.head_end(value, p) else {
                        continue;
                    };
                    next = seg.shortest_end(value, q);
                    break;
                }
            }
        }
        match (star, next) {
            (Some((_, remaining)), Some(e)) => {
                after = Some(e);
                rest = remaining;
            }
            _ => return false,
        }
    }
}

/// The places a group of segments may start, in increasing order: 0 (`after` is `None`), or just past
/// each colon at or after `after` that `lead` (the literal text the group's first segment starts with)
/// follows: other places cannot match, and skipping them keeps long values cheap. One searcher scans
/// the value once.
fn starts<'v>(value: &'v str, after: Option<usize>, lead: &'v str) -> impl Iterator<Item = usize> + 'v {
    // Up to its first colon, so that no occurrence of `lead` can overlap one that follows a colon (the
    // search finds non-overlapping occurrences).
    let lead = lead.split(':').next().unwrap_or_default();
    let (zero, from) = match after {
        None => (Some(0), value.len()),
        Some(e) => (None, e),
    };
    let needle = if lead.is_empty() { ":" } else { lead };
    let found = value.get(from..).unwrap_or_default().match_indices(needle).filter_map(move |(k, _)| {
        let k = from + k;
        if lead.is_empty() {
            Some(k + 1)
        } else {
            (k > from && k.checked_sub(1).and_then(|c| value.as_bytes().get(c)) == Some(&b':')).then_some(k)
        }
    });
    zero.into_iter().chain(found)
}

/// Matches segments that do not swallow colons from `start`, each up to the next colon; where the
/// next segment starts.
fn cut_fixed(segs: &[Glob], value: &str, start: usize) -> Option<usize> {
    segs.iter().try_fold(start, |p, g| {
        let r = value.get(p..)?;
        let k = r.find(':')?;
        g.matches(r.get(..k)?).then_some(p + k + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    // --- Property tests: the matchers against obviously-correct references ---

    /// One character-level element of a pattern.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum El {
        Star,
        One,
        Ch(char),
    }

    fn elems(toks: &[Tok]) -> Vec<El> {
        let mut out = Vec::new();
        for t in toks {
            match t {
                Tok::Star => out.push(El::Star),
                Tok::One => out.push(El::One),
                Tok::Lit(s) => out.extend(s.chars().map(El::Ch)),
            }
        }
        out
    }

    /// Reference glob matcher: the textbook table, `m[i][j]` = `p[i..]` matches `s[j..]`.
    fn naive(p: &[El], s: &[char]) -> bool {
        let mut m = vec![vec![false; s.len() + 1]; p.len() + 1];
        m[p.len()][s.len()] = true;
        for i in (0..p.len()).rev() {
            for j in (0..=s.len()).rev() {
                m[i][j] = match p[i] {
                    El::Star => m[i + 1][j] || (j < s.len() && m[i][j + 1]),
                    El::One => j < s.len() && m[i + 1][j + 1],
                    El::Ch(c) => j < s.len() && s[j] == c && m[i + 1][j + 1],
                };
            }
        }
        m[0][0]
    }

    /// Reference ARN matcher: the pattern cut at its first five colons into segments, and every way
    /// of cutting the value at its colons into one piece per segment tried in turn. A piece may hold
    /// a colon only when it is the last one, or (with `expand`) when its segment ends with `*`.
    /// `None` when the pattern cannot be an ARN pattern (`*` alone matches everything).
    fn reference_arn(p: &[El], value: &str, expand: bool) -> Option<bool> {
        if p == [El::Star] {
            // `*` alone is any resource.
            return Some(true);
        }
        let mut segs: Vec<Vec<El>> = vec![Vec::new()];
        for &e in p {
            if e == El::Ch(':') && segs.len() < 6 {
                segs.push(Vec::new());
            } else {
                segs.last_mut().unwrap().push(e);
            }
        }
        let last_star = segs.last().unwrap().last() == Some(&El::Star);
        if segs.len() < 6 && !(expand && last_star) {
            return None;
        }
        let v: Vec<char> = value.chars().collect();
        Some(reference_cuts(&segs, &v, expand))
    }

    fn reference_cuts(segs: &[Vec<El>], v: &[char], expand: bool) -> bool {
        let (first, rest) = segs.split_first().unwrap();
        if rest.is_empty() {
            return naive(first, v);
        }
        let swallows = expand && first.last() == Some(&El::Star);
        let colons: Vec<usize> = (0..v.len()).filter(|&k| v[k] == ':').collect();
        let tried = if swallows { colons.len() } else { colons.len().min(1) };
        colons[..tried].iter().any(|&k| naive(first, &v[..k]) && reference_cuts(rest, &v[k + 1..], expand))
    }

    /// A text that `toks` matches, built from fillers for its wildcards, then maybe edited once.
    fn instance(toks: &[Tok], fillers: &[String], edit: Option<(usize, char)>) -> String {
        let mut out = String::new();
        let mut fill = fillers.iter().cycle();
        for e in elems(toks) {
            match e {
                El::Ch(c) => out.push(c),
                El::One => out.push(fill.next().and_then(|f| f.chars().next()).unwrap_or('é')),
                El::Star => out.push_str(fill.next().map_or("", String::as_str)),
            }
        }
        if let Some((at, c)) = edit {
            let mut chars: Vec<char> = out.chars().collect();
            let at = at % (chars.len() + 1);
            if c == '-' && at < chars.len() {
                chars.remove(at);
            } else {
                chars.insert(at, c);
            }
            out = chars.into_iter().collect();
        }
        out
    }

    /// Pattern tokens over an alphabet with `:`, multibyte characters and literal `*`/`?` (the
    /// `${*}`/`${?}` escapes).
    fn tok() -> impl Strategy<Value = Tok> {
        prop_oneof![
            3 => "[ab:é日*?]{1,3}".prop_map(Tok::Lit),
            2 => Just(Tok::Star),
            1 => Just(Tok::One),
        ]
    }

    /// ARN-shaped patterns: four to eight segments joined by literal colons.
    fn arn_toks() -> impl Strategy<Value = Vec<Tok>> {
        let seg = prop::collection::vec(
            prop_oneof![3 => "[ab:é]{1,2}".prop_map(Tok::Lit), 3 => Just(Tok::Star), 1 => Just(Tok::One)],
            0..3,
        );
        (prop::collection::vec(seg, 4..9), any::<bool>()).prop_map(|(segs, arn)| {
            let mut toks = if arn { vec![Tok::Lit("arn:".into())] } else { Vec::new() };
            for (i, s) in segs.into_iter().enumerate() {
                if i > 0 {
                    toks.push(Tok::Lit(":".into()));
                }
                toks.extend(s);
            }
            toks
        })
    }

    /// A value: random, or an instance of the pattern (which should match), maybe edited.
    fn value_for(toks: Vec<Tok>, alphabet: &'static str) -> impl Strategy<Value = (Vec<Tok>, String)> {
        (
            any::<bool>(),
            alphabet,
            prop::collection::vec("[ab:é日]{0,3}", 1..6),
            prop::option::of((any::<usize>(), prop::sample::select(vec!['a', ':', 'é', '-']))),
        )
            .prop_map(move |(random, text, fillers, edit)| {
                let v = if random { text } else { instance(&toks, &fillers, edit) };
                (toks.clone(), v)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn glob_agrees_with_reference(
            (toks, s) in prop::collection::vec(tok(), 0..8).prop_flat_map(|t| value_for(t, "[ab:é日*?]{0,12}"))
        ) {
            let want = naive(&elems(&toks), &s.chars().collect::<Vec<_>>());
            let mut merged = Vec::new();
            for t in toks.iter().cloned() {
                push_tok(&mut merged, t);
            }
            prop_assert_eq!(Glob::new(toks).matches(&s), want);
            prop_assert_eq!(Glob::new(merged).matches(&s), want);
        }

        #[test]
        fn arn_glob_agrees_with_reference(
            (toks, s) in arn_toks().prop_flat_map(|t| value_for(t, "(arn:)?[ab:é]{0,14}")),
            expand in any::<bool>(),
        ) {
            let want = reference_arn(&elems(&toks), &s, expand);
            let got = ArnGlob::new(toks, expand).map(|g| g.matches(&s));
            prop_assert_eq!(got, want);
        }
    }

    // --- Bounds: hostile inputs cost microseconds per pattern, not seconds ---

    /// `head` followed by `unit` repeated up to `len` bytes.
    fn filled(head: &str, unit: &str, len: usize) -> String {
        let mut s = String::from(head);
        while s.len() + unit.len() <= len {
            s.push_str(unit);
        }
        s
    }

    #[test]
    fn matching_hostile_values_is_bounded() {
        // Values of `:` and `a` up to 2,048 characters (the longest ARN) and 64 KiB (a whole request),
        // with and without an ARN head; the old backtracking matchers took seconds to hours on these.
        let mut values = Vec::new();
        for len in [2048, 64 * 1024] {
            for unit in [":a", ":", "a:", "::a", ":aa"] {
                values.push(filled("arn:aws:sagemaker:", unit, len));
                values.push(filled("", unit, len));
            }
        }
        let star_a = "*a".repeat(24) + "*b";
        let arn_patterns = [
            "arn:*:*:*:*:x*",
            "arn:aws:sagemaker:*:*:partner-app/app-*",
            "arn:*a*:*a*:*a*:*a*:*a*a*a*b",
            "arn:*:*:*:*:*",
            "arn:aws:*:*:*:a?",
        ];
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut hits = 0usize;
            for v in &values {
                hits += usize::from(Glob::parse(&star_a).matches(v));
                for p in arn_patterns {
                    hits += usize::from(Glob::parse(p).matches(v));
                    for expand in [true, false] {
                        hits += usize::from(ArnGlob::new(tokens_of(p), expand).unwrap().matches(v));
                    }
                }
            }
            tx.send((started.elapsed(), hits)).unwrap();
        });
        let (elapsed, hits) =
            rx.recv_timeout(std::time::Duration::from_secs(20)).expect("matching did not finish in 20 s");
        assert!(hits > 0);
        // About 2.5 ms optimised and 15 ms unoptimised here; the old matchers did not finish in 20 s.
        let bound = std::time::Duration::from_millis(if cfg!(debug_assertions) { 500 } else { 50 });
        assert!(elapsed < bound, "matching took {elapsed:?}");
    }

    #[test]
    fn long_values_match_where_they_should() {
        let colons = filled("arn:aws:sagemaker:", ":a", 64 * 1024);
        let app = format!("{colons}:partner-app/app-1");
        let sagemaker = "arn:aws:sagemaker:*:*:partner-app/app-*";
        // The account `*` swallows the colons; as a condition (no expansion) the resource part would
        // start at `a:`.
        assert!(arn(sagemaker, true).matches(&app));
        assert!(!arn(sagemaker, false).matches(&app));
        assert!(!arn(sagemaker, true).matches(&colons));
        let x = format!("{}x", filled("arn:", "a:", 2048 - 1));
        assert!(arn("arn:*:*:*:*:x*", true).matches(&x));
        assert!(!arn("arn:*:*:*:*:x*", false).matches(&x));
        assert!(!arn("arn:*:*:*:*:y*", true).matches(&x));
        let s = filled("", "a:", 64 * 1024) + "b";
        assert!(Glob::parse(&("*a".repeat(24) + "*b")).matches(&s));
        assert!(!Glob::parse(&("*a".repeat(24) + "*b")).matches(&s[..s.len() - 1]));
    }
}
