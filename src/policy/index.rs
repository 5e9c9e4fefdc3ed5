//! A statement index over several policies (a principal's SCPs, boundary and identity policies): one
//! hash lookup per request finds every statement that can match an action, in evaluation order. Built
//! once per principal when a bundle is loaded. Pure.
use super::document::{Policy, Statement};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// A statement of the indexed policies, ordered by (layer, policy, statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    layer: u8,
    policy: u32,
    stmt: u32,
}

/// Statements by the exact lower-cased action they name, plus those any action may match.
#[derive(Debug, Clone, Default)]
pub struct StatementIndex {
    policies: Vec<Arc<Policy>>,
    exact: FxHashMap<Box<str>, Vec<Slot>>,
    others: Vec<Slot>,
}

/// Merges two ascending lists.
pub(crate) fn merge_sorted<'a, T: Copy + Ord + 'a>(a: &'a [T], b: &'a [T]) -> impl Iterator<Item = T> + 'a {
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

impl StatementIndex {
    /// Indexes `policies`, each tagged with its layer; layers must be given in ascending order.
    pub fn build(policies: &[(u8, Arc<Policy>)]) -> StatementIndex {
        let mut idx = StatementIndex::default();
        for (pi, (layer, policy)) in policies.iter().enumerate() {
            let pi = u32::try_from(pi).unwrap_or(u32::MAX);
            let (exact, others) = policy.action_index();
            for (action, stmts) in exact {
                let e = idx.exact.entry(action.clone()).or_default();
                e.extend(stmts.iter().map(|&s| Slot { layer: *layer, policy: pi, stmt: s }));
            }
            idx.others.extend(others.iter().map(|&s| Slot { layer: *layer, policy: pi, stmt: s }));
            idx.policies.push(policy.clone());
        }
        for v in idx.exact.values_mut() {
            v.sort_unstable();
        }
        idx.others.sort_unstable();
        idx
    }

    /// The statements that may match `action_lower`: (layer, policy, statement), in order.
    pub fn candidates<'s>(&'s self, action_lower: &str) -> impl Iterator<Item = (u8, &'s Policy, &'s Statement)> + 's {
        let exact: &[Slot] = self.exact.get(action_lower).map_or(&[], Vec::as_slice);
        merge_sorted(exact, &self.others).filter_map(move |s| {
            let p = self.policies.get(s.policy as usize)?;
            Some((s.layer, &**p, p.statements.get(s.stmt as usize)?))
        })
    }
}
