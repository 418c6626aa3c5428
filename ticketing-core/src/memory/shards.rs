//! A hash map split over independently locked shards, so unrelated keys do not contend.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// The hasher of the store's maps: keys are ids the store made or the organizer gave, and
/// each map is seeded at random, so a fast non-cryptographic hash is enough.
pub(crate) type FastHasher = foldhash::fast::RandomState;

use crate::sync::Mutex;

/// Shards per map: enough that two cores rarely meet on one, few enough to scan quickly.
const SHARD_COUNT: usize = 64;
const _: () = assert!(SHARD_COUNT.is_power_of_two());

pub(crate) type Shard<K, V> = HashMap<K, V, FastHasher>;

#[derive(Debug)]
pub(crate) struct Shards<K, V> {
    hasher: FastHasher,
    shards: Box<[Mutex<Shard<K, V>>]>,
}

impl<K: Hash + Eq, V> Shards<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            hasher: FastHasher::default(),
            shards: (0..SHARD_COUNT)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }

    fn index(&self, key: &K) -> usize {
        // The top bits: the low bits also pick the bucket inside the shard's own map.
        (self.hasher.hash_one(key) >> 58) as usize & (SHARD_COUNT - 1)
    }

    /// Locks the shard that holds `key`. Callers keep the guard only for short, non-blocking
    /// work, or for the whole of an idempotent operation on that key.
    pub(crate) fn lock(&self, key: &K) -> crate::sync::MutexGuard<'_, Shard<K, V>> {
        self.shards[self.index(key)].lock()
    }

    /// Locks the shards of all `keys`, each once, in ascending shard order (the lock order
    /// for taking several shards of one map).
    pub(crate) fn lock_many<'a, 'k>(
        &'a self,
        keys: impl IntoIterator<Item = &'k K>,
    ) -> ShardSet<'a, K, V>
    where
        K: 'k,
    {
        let mut indices: Vec<usize> = keys.into_iter().map(|key| self.index(key)).collect();
        indices.sort_unstable();
        indices.dedup();
        let guards = indices
            .iter()
            .map(|index| self.shards[*index].lock())
            .collect();
        ShardSet {
            map: self,
            indices,
            guards,
        }
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        self.lock(&key).insert(key, value);
    }

    pub(crate) fn remove(&self, key: &K) -> Option<V> {
        self.lock(key).remove(key)
    }

    /// Runs `visit` on every shard in turn, one lock at a time.
    pub(crate) fn for_each_shard(&self, mut visit: impl FnMut(&mut Shard<K, V>)) {
        for shard in self.shards.iter() {
            visit(&mut shard.lock());
        }
    }
}

impl<K: Hash + Eq, V: Clone> Shards<K, V> {
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.lock(key).get(key).cloned()
    }
}

/// Several locked shards of one map.
pub(crate) struct ShardSet<'a, K, V> {
    map: &'a Shards<K, V>,
    indices: Vec<usize>,
    guards: Vec<crate::sync::MutexGuard<'a, Shard<K, V>>>,
}

impl<K: Hash + Eq, V> ShardSet<'_, K, V> {
    /// The locked shard holding `key`; `key` must be one of the keys locked.
    pub(crate) fn shard(&mut self, key: &K) -> &mut Shard<K, V> {
        let index = self.map.index(key);
        match self.indices.binary_search(&index) {
            Ok(position) => &mut self.guards[position],
            Err(_) => unreachable!("the shard of every key was locked"),
        }
    }
}
