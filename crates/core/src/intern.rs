//! [`Interner`]: one shared copy of each repeated string.
//!
//! Audit records repeat a few values many times (principals, accounts, agents, operations). What
//! holds many records or findings at once keeps each such value once, as an `Arc<str>`.

use std::collections::HashSet;
use std::sync::Arc;

/// Shares repeated strings (one interner per thread or per owner).
#[derive(Default)]
pub struct Interner {
    values: HashSet<Arc<str>>,
    /// Size after the last [`Interner::prune`], to prune again only once it has doubled.
    pruned_at: usize,
}

/// Distinct values an interner keeps at most; past it, values are no longer shared (memory stays
/// bounded by the input either way).
const MAX_INTERNED: usize = 1 << 20;

impl Interner {
    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.values.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        if self.values.len() < MAX_INTERNED {
            self.values.insert(Arc::clone(&a));
        }
        a
    }

    pub fn opt(&mut self, s: Option<&str>) -> Option<Arc<str>> {
        s.map(|v| self.get(v))
    }

    /// Distinct values held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Forgets the values nothing else holds any more, once the interner has doubled since the
    /// last time: for owners that let go of what they interned (held findings released), so that
    /// the interner does not keep every value ever seen. Amortized cost: constant per value.
    pub fn prune(&mut self) {
        if self.values.len() < 2 * self.pruned_at.max(512) {
            return;
        }
        self.values.retain(|a| Arc::strong_count(a) > 1);
        self.pruned_at = self.values.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_copy_and_released_ones_are_forgotten() {
        let mut i = Interner::default();
        let a = i.get("arn:aws:iam::111122223333:user/alice");
        let b = i.get("arn:aws:iam::111122223333:user/alice");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(i.opt(None), None);
        let kept = i.get("kept");
        for n in 0..2000 {
            i.get(&format!("released {n}"));
        }
        assert_eq!(i.len(), 2002);
        i.prune();
        assert_eq!(i.len(), 2, "only the values still held elsewhere stay");
        assert!(Arc::ptr_eq(&kept, &i.get("kept")));
        assert!(Arc::ptr_eq(
            &a,
            &i.get("arn:aws:iam::111122223333:user/alice")
        ));
    }
}
