//! The per-backend caches' bound: a least-recently-used map on the `lru` crate (O(1) per
//! operation), with the small API the extension's caches use (validators, compiled workflows,
//! rule conditions, prepared statements). Values are cheap clones (`Rc`s).

use std::hash::Hash;
use std::num::NonZeroUsize;

pub struct Lru<K: Hash + Eq, V> {
    entries: lru::LruCache<K, V>,
}

fn bound(capacity: usize) -> NonZeroUsize {
    NonZeroUsize::new(capacity.max(1)).expect("at least 1")
}

impl<K: Hash + Eq, V: Clone> Lru<K, V> {
    /// A cache of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Lru {
            entries: lru::LruCache::new(bound(capacity)),
        }
    }

    /// The value for `key`, now the most recently used.
    pub fn get(&mut self, key: &K) -> Option<V> {
        self.entries.get(key).cloned()
    }

    /// Store `value`, evicting the least recently used entry when full.
    pub fn insert(&mut self, key: K, value: V) {
        self.entries.put(key, value);
    }

    /// Change the capacity, evicting the least recently used entries that no longer fit.
    pub fn resize(&mut self, capacity: usize) {
        self.entries.resize(bound(capacity));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut lru: Lru<i64, i64> = Lru::new(2);
        lru.insert(1, 10);
        lru.insert(2, 20);
        assert_eq!(lru.get(&1), Some(10));
        lru.insert(3, 30);
        assert_eq!(lru.get(&2), None);
        assert_eq!(lru.get(&1), Some(10));
        assert_eq!(lru.get(&3), Some(30));
        assert_eq!(lru.len(), 2);
        lru.resize(1);
        assert_eq!(lru.len(), 1);
        assert_eq!(lru.get(&3), Some(30));
        lru.clear();
        assert!(lru.is_empty());
        let mut zero: Lru<i64, i64> = Lru::new(0);
        zero.insert(1, 1);
        zero.insert(2, 2);
        assert_eq!(zero.len(), 1);
    }
}
