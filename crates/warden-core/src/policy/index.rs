//! The action index, the only one: over the policies that apply to a principal (its SCPs, boundary
//! and identity policies), one hash lookup per request finds every statement that can match an
//! action, in evaluation order. Built once per principal when a bundle is loaded. Also owns [`Layer`],
//! the place of a policy in the evaluation. Pure; depends on `document` and `pattern` (never the other
//! way round).
use super::document::{Policy, Statement};
use super::pattern::Glob;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// The policy layers, in evaluation (and reporting) order: a statement of a lower layer comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// Service control policies.
    Scp,
    /// The resource-based policy of the request's resource (a role trust policy, a bucket policy…).
    Resource,
    /// The permissions boundary.
    Boundary,
    /// Identity-based policies (inline, attached managed, group).
    Identity,
}

impl Layer {
    /// Every layer, in evaluation order.
    pub const ALL: [Layer; 4] = [Layer::Scp, Layer::Resource, Layer::Boundary, Layer::Identity];

    /// A dense index (0..4) for per-layer counters.
    pub fn slot(self) -> usize {
        match self {
            Layer::Scp => 0,
            Layer::Resource => 1,
            Layer::Boundary => 2,
            Layer::Identity => 3,
        }
    }

    /// A bit of a layer set (`Layer::Scp.bit() | Layer::Identity.bit()`).
    pub fn bit(self) -> u8 {
        1 << self.slot()
    }
}

/// A statement of the indexed policies, ordered by (layer, policy, statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    layer: Layer,
    policy: u32,
    stmt: u32,
}

/// Statements by the exact lower-cased action they name, plus those any action may match (a
/// wildcard action or a `NotAction`).
#[derive(Debug, Clone, Default)]
pub struct StatementIndex {
    policies: Vec<Arc<Policy>>,
    exact: FxHashMap<Box<str>, Vec<Slot>>,
    others: Vec<Slot>,
}

/// Merges two ascending lists.
fn merge_sorted<'a, T: Copy + Ord + 'a>(a: &'a [T], b: &'a [T]) -> impl Iterator<Item = T> + 'a {
    let (mut i, mut j) = (0usize, 0usize);
    std::iter::from_fn(move || match (a.get(i), b.get(j)) {
        (Some(&x), Some(&y)) if x < y => {
            i += 1;
            Some(x)
        }
        (_, Some(&y)) => {
            j += 1;
            Some(y)
        }
        (Some(&x), None) => {
            i += 1;
            Some(x)
        }
        (None, None) => None,
    })
}

/// The exact actions a statement names, or `None` when any action may match it.
fn exact_actions(st: &Statement) -> Option<Vec<&str>> {
    let (globs, not_action) = &st.actions;
    if *not_action {
        return None;
    }
    globs.iter().map(|g| if let Glob::Exact(s) = g { Some(s.as_str()) } else { None }).collect()
}

/// Whether the index would offer `st` as a candidate for `action_lower`: it names that exact action,
/// or any action may match it. The linear scan uses this, so both paths consider the same statements.
pub fn is_candidate(st: &Statement, action_lower: &str) -> bool {
    let (globs, not_action) = &st.actions;
    *not_action
        || globs.iter().any(|g| !matches!(g, Glob::Exact(_)))
        || globs.iter().any(|g| matches!(g, Glob::Exact(a) if a == action_lower))
}

// === impl StatementIndex ===

impl StatementIndex {
    /// Indexes `policies`, each tagged with its layer (in any order: slots are sorted).
    pub fn build(policies: &[(Layer, Arc<Policy>)]) -> StatementIndex {
        let mut idx = StatementIndex::default();
        for (pi, (layer, policy)) in policies.iter().enumerate() {
            let pi = u32::try_from(pi).unwrap_or(u32::MAX);
            for (si, st) in policy.statements.iter().enumerate() {
                let slot = Slot { layer: *layer, policy: pi, stmt: u32::try_from(si).unwrap_or(u32::MAX) };
                match exact_actions(st) {
                    Some(actions) => {
                        for a in actions {
                            let e = idx.exact.entry(Box::from(a)).or_default();
                            if e.last() != Some(&slot) {
                                e.push(slot);
                            }
                        }
                    }
                    None => idx.others.push(slot),
                }
            }
            idx.policies.push(policy.clone());
        }
        for v in idx.exact.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        idx.others.sort_unstable();
        idx
    }

    /// The statements that may match `action_lower`: (layer, policy, statement), in order.
    pub fn candidates<'s>(
        &'s self,
        action_lower: &str,
    ) -> impl Iterator<Item = (Layer, &'s Policy, &'s Statement)> + 's {
        let exact: &[Slot] = self.exact.get(action_lower).map_or(&[], Vec::as_slice);
        merge_sorted(exact, &self.others).filter_map(move |s| {
            let p = self.policies.get(s.policy as usize)?;
            Some((s.layer, &**p, p.statements.get(s.stmt as usize)?))
        })
    }
}
