//! Nearest-name hints for misspelt keys and values (`Actoin` → `Action`, `Alow` → `Allow`): an edit
//! distance with adjacent transpositions, suggesting only names that are close. Pure.

/// Names longer than this are never compared (a hint is for keys and short values).
const MAX_LEN: usize = 64;

/// The distance between `a` and `b` in single-character insertions, deletions, substitutions and
/// swaps of two adjacent characters (optimal string alignment), compared without case.
#[expect(clippy::indexing_slicing, reason = "every index is bounded by the loops over the two lengths")]
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m]
}

/// Whether `written` is close enough to `known` to suggest it: equal but for case, within an edit
/// distance that grows with the length (1 up to 4 characters, 2 up to 8, then 3), or one of the two
/// containing the other when the shorter has at least 5 characters (`UserSettings` in
/// `DefaultUserSettings`).
fn close(written: &str, known: &str) -> Option<usize> {
    if written.len() > MAX_LEN || known.len() > MAX_LEN {
        return None;
    }
    let shorter = written.chars().count().min(known.chars().count());
    let d = distance(written, known);
    let allowed = match shorter {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    if d <= allowed {
        return Some(d);
    }
    let (w, k) = (written.to_lowercase(), known.to_lowercase());
    if shorter >= 5 && (k.contains(&w) || w.contains(&k)) {
        return Some(d);
    }
    None
}

/// The known name nearest to `written`, if one is close enough (ties: the first in `known`).
pub fn nearest<'a>(written: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .filter(|k| *k != written)
        .filter_map(|k| close(written, k).map(|d| (d, k)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `: did you mean `X`?` for the nearest known name, or nothing.
pub fn did_you_mean<'a>(written: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    nearest(written, known).map(|k| format!(": did you mean `{k}`?")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits_and_adjacent_swaps() {
        assert_eq!(distance("Action", "Action"), 0);
        assert_eq!(distance("Actoin", "Action"), 1);
        assert_eq!(distance("Alow", "Allow"), 1);
        assert_eq!(distance("Condtion", "Condition"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("EFFECT", "Effect"), 0);
    }

    #[test]
    fn only_close_names_are_suggested() {
        let elements = ["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "Condition"];
        assert_eq!(nearest("Actoin", elements), Some("Action"));
        assert_eq!(nearest("Actions", elements), Some("Action"));
        assert_eq!(nearest("Condtion", elements), Some("Condition"));
        assert_eq!(nearest("resource", elements), Some("Resource"));
        assert_eq!(nearest("Comment", elements), None);
        assert_eq!(nearest("Xyz", elements), None);
        assert_eq!(nearest("Alow", ["Allow", "Deny"]), Some("Allow"));
        assert_eq!(nearest("Permit", ["Allow", "Deny"]), None);
        assert_eq!(nearest("UserSettings", ["DefaultUserSettings", "DomainSettings"]), Some("DefaultUserSettings"));
        assert_eq!(did_you_mean("Efect", elements), ": did you mean `Effect`?");
        assert_eq!(did_you_mean("Foo", elements), "");
    }
}
