//! A bounded map that forgets what was least recently used, in O(1), without a linked list: two
//! generations, where a full young generation becomes the old one and the previous old one is dropped. An
//! entry read from the old generation moves to the young one, so anything in use survives.
//!
//! "Full" counts entries and bytes: keys and values come from outside (log group names, request ids), so a
//! bound on entries alone lets long names multiply memory.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::mem;

/// The heap and inline bytes an entry holds, roughly: what the byte bound counts.
pub(crate) trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for String {
    fn weight(&self) -> usize {
        mem::size_of::<Self>() + self.capacity()
    }
}

/// What a hash map spends per entry beyond the key and value themselves (control bytes, load factor).
const ENTRY_OVERHEAD: usize = 16;

#[derive(Debug)]
pub(crate) struct BoundedMap<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    generation_size: usize,
    generation_bytes: usize,
    young_bytes: usize,
}

impl<K: Hash + Eq + Weigh, V: Weigh> BoundedMap<K, V> {
    /// Holds at most `capacity` entries (rounded up to an even number) and about `max_bytes` bytes.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            young: HashMap::new(),
            old: HashMap::new(),
            generation_size: capacity.div_ceil(2).max(1),
            generation_bytes: (max_bytes / 2).max(1),
            young_bytes: 0,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        let weigh = |map: &HashMap<K, V>| -> usize { map.iter().map(|(k, v)| entry_weight(k, v)).sum() };
        weigh(&self.young) + weigh(&self.old)
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
        if let Some(value) = self.young.remove_entry(key) {
            self.young_bytes = self.young_bytes.saturating_sub(entry_weight(&value.0, &value.1));
            return Some(value.1);
        }
        self.old.remove(key)
    }

    pub fn insert(&mut self, key: K, value: V) {
        let weight = entry_weight(&key, &value);
        let full = self.young.len() >= self.generation_size
            || self.young_bytes.saturating_add(weight) > self.generation_bytes;
        if full && !self.young.contains_key(&key) {
            self.old = mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        self.old.remove(&key);
        if let Some((old_key, old_value)) = self.young.remove_entry(&key) {
            self.young_bytes = self
                .young_bytes
                .saturating_sub(entry_weight(&old_key, &old_value));
        }
        self.young_bytes = self.young_bytes.saturating_add(weight);
        self.young.insert(key, value);
    }

    /// Changes the entry for `key` with `change`, created with `V::default()` when absent, and refreshes it
    /// as recently used. An entry already young is changed in place: one lookup, and no key allocated.
    pub fn update<Q>(&mut self, key: &Q, change: impl FnOnce(&mut V))
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        V: Default,
    {
        if let Some(value) = self.young.get_mut(key) {
            // Its weight is counted in `young_bytes`: a change must not alter it.
            let before = value.weight();
            change(value);
            let after = value.weight();
            self.young_bytes = self.young_bytes.saturating_sub(before).saturating_add(after);
            // A change that grew the young generation past its bytes ends it, as an insert would.
            if self.young_bytes > self.generation_bytes {
                self.old = mem::take(&mut self.young);
                self.young_bytes = 0;
            }
            return;
        }
        let mut value = self.old.remove(key).unwrap_or_default();
        change(&mut value);
        self.insert(key.to_owned(), value);
    }
}

fn entry_weight<K: Weigh, V: Weigh>(key: &K, value: &V) -> usize {
    key.weight()
        .saturating_add(value.weight())
        .saturating_add(ENTRY_OVERHEAD)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    impl Weigh for u32 {
        fn weight(&self) -> usize {
            4
        }
    }

    #[test]
    fn stays_bounded_and_keeps_what_is_used() {
        let mut map: BoundedMap<String, u32> = BoundedMap::new(4, usize::MAX);
        map.update("keep", |v| *v = 1);
        for i in 0..100 {
            map.update(&format!("k{i}"), |v| *v = i);
            let mut kept = None;
            map.update("keep", |v| kept = Some(*v));
            assert_eq!(kept, Some(1), "a used entry survives rotation");
            assert!(map.len() <= 4);
        }
        assert!(map.get("k0").is_none(), "old entries are forgotten");
        assert_eq!(map.get("k99"), Some(&99));
        assert_eq!(map.remove("k99"), Some(99));
        assert!(map.get("k99").is_none());
    }

    /// Values that grow where they are, never inserted again, stay within the bytes too.
    #[test]
    fn values_grown_in_place_are_bounded_by_bytes() {
        let budget = 64 << 10;
        let mut map: BoundedMap<String, String> = BoundedMap::new(1_000_000, budget);
        let keys: Vec<String> = (0..2000).map(|i| format!("k{i}")).collect();
        for key in &keys {
            map.update(key.as_str(), |v| v.push('a'));
        }
        // Every entry still young grows by far more than it weighed.
        for key in keys.iter().rev() {
            map.update(key.as_str(), |v| v.push_str(&"b".repeat(500)));
            assert!(map.bytes() <= budget + 1024, "{} bytes", map.bytes());
        }
        // The entry changed last is kept, whatever rotation its change caused.
        assert!(map.get("k0").is_some_and(|v| v.ends_with('b')));
    }

    #[test]
    fn long_keys_are_bounded_by_bytes_not_entries() {
        let budget = 1 << 20;
        let mut map: BoundedMap<String, u32> = BoundedMap::new(1_000_000, budget);
        let long = "g".repeat(64 << 10);
        for i in 0..1000 {
            map.insert(format!("{long}{i}"), i);
            assert!(map.bytes() <= budget + (70 << 10), "{} bytes", map.bytes());
        }
        assert!(map.get(format!("{long}999").as_str()).is_some());
    }
}
