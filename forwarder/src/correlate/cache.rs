//! A bounded map that forgets what was least recently used, in O(1), without a linked list: two
//! generations, where a full young generation becomes the old one and the previous old one is dropped. An
//! entry read from the old generation moves to the young one, so anything in use survives.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::mem;

#[derive(Debug)]
pub(crate) struct BoundedMap<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    generation_size: usize,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    /// Holds at most `capacity` entries (rounded up to an even number).
    pub fn new(capacity: usize) -> Self {
        Self {
            young: HashMap::new(),
            old: HashMap::new(),
            generation_size: capacity.div_ceil(2).max(1),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.young.get(key).or_else(|| self.old.get(key))
    }

    /// Takes the entry out; the caller puts it back with [`insert`](Self::insert) when done.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.young.remove(key).or_else(|| self.old.remove(key))
    }

    pub fn insert(&mut self, key: K, value: V) {
        if self.young.len() >= self.generation_size && !self.young.contains_key(&key) {
            self.old = mem::take(&mut self.young);
        }
        self.old.remove(&key);
        self.young.insert(key, value);
    }

    /// The entry for `key`, created with `V::default()` when absent, refreshed as recently used.
    pub fn entry<Q>(&mut self, key: &Q) -> &mut V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        V: Default,
    {
        if !self.young.contains_key(key) {
            let value = self.old.remove(key).unwrap_or_default();
            self.insert(key.to_owned(), value);
        }
        self.young.entry(key.to_owned()).or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_keeps_what_is_used() {
        let mut map: BoundedMap<String, u32> = BoundedMap::new(4);
        *map.entry("keep") = 1;
        for i in 0..100 {
            *map.entry(&format!("k{i}")) = i;
            assert_eq!(*map.entry("keep"), 1, "a used entry survives rotation");
            assert!(map.len() <= 4);
        }
        assert!(map.get("k0").is_none(), "old entries are forgotten");
        assert_eq!(map.get("k99"), Some(&99));
        assert_eq!(map.remove("k99"), Some(99));
        assert!(map.get("k99").is_none());
    }
}
