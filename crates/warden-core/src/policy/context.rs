//! How conditions read the request context: a lookup by lower-cased key. Pure.
use std::borrow::Cow;

/// A context value: single-valued, or a set (multivalued key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtxVal<'a> {
    /// One value.
    One(Cow<'a, str>),
    /// A set of values.
    Many(&'a [String]),
}

/// The request context as conditions see it. Keys are looked up lower-cased.
pub trait Context {
    /// The value of `key_lower`, if present.
    fn get(&self, key_lower: &str) -> Option<CtxVal<'_>>;
}

/// A simple owned context (tests, the case format).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MapContext {
    entries: Vec<(String, Value)>,
}

/// An owned context value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// One value.
    One(String),
    /// A set of values.
    Many(Vec<String>),
}

// === impl Value ===

impl Value {
    /// Borrows as a [`CtxVal`].
    pub fn as_ctx(&self) -> CtxVal<'_> {
        match self {
            Value::One(s) => CtxVal::One(Cow::Borrowed(s)),
            Value::Many(v) => CtxVal::Many(v),
        }
    }
}

// === impl MapContext ===

impl MapContext {
    /// Builds from (key, single value) pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> MapContext {
        let mut m = MapContext::default();
        for (k, v) in pairs {
            m.insert(k, Value::One((*v).to_owned()));
        }
        m
    }

    /// Inserts or replaces a key (stored lower-cased).
    pub fn insert(&mut self, key: &str, value: Value) {
        let k = key.to_lowercase();
        if let Some(e) = self.entries.iter_mut().find(|(ek, _)| *ek == k) {
            e.1 = value;
        } else {
            self.entries.push((k, value));
        }
    }

    /// Whether the key is present.
    pub fn contains(&self, key_lower: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key_lower)
    }

    /// Iterates over the entries.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sorts entries by key, for a canonical form.
    pub fn sort(&mut self) {
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
    }
}

impl Context for MapContext {
    fn get(&self, key_lower: &str) -> Option<CtxVal<'_>> {
        self.entries.iter().find(|(k, _)| k == key_lower).map(|(_, v)| v.as_ctx())
    }
}
