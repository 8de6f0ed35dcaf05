//! A bounded map with oldest-first eviction: the scaffolding of the VT-d and SMMUv3 caches.
//!
//! Eviction is by insertion order of keys not yet present (re-inserting a key keeps its place).
//! Removals by [`Bounded::retain`] leave stale keys in the order queue; they are skipped when evicting
//! and the queue is compacted once it grows past twice the capacity.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

pub(crate) struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Copy + Eq + Hash, V> Bounded<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    /// Inserts, returning how many entries were evicted to make room.
    pub(crate) fn insert(&mut self, k: K, v: V) -> u64 {
        let mut evicted = 0;
        if !self.map.contains_key(&k) {
            while self.map.len() >= self.capacity {
                match self.order.pop_front() {
                    Some(old) => {
                        if self.map.remove(&old).is_some() {
                            evicted += 1;
                        }
                    }
                    None => break,
                }
            }
            self.order.push_back(k);
        }
        self.map.insert(k, v);
        // Invalidations leave stale keys in `order`; keep it proportional to the map.
        if self.order.len() > 2 * self.capacity {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
        evicted
    }

    /// Keeps the entries `keep` accepts, returning how many were dropped.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) -> u64 {
        let before = self.map.len();
        self.map.retain(|k, v| keep(k, v));
        (before - self.map.len()) as u64
    }

    /// Drops everything, returning how many entries there were.
    pub(crate) fn clear(&mut self) -> u64 {
        let n = self.map.len() as u64;
        self.map.clear();
        self.order.clear();
        n
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Keys in the eviction queue, stale ones included.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_first_and_counts() {
        let mut b = Bounded::new(2);
        assert_eq!(b.insert(1, 'a'), 0);
        assert_eq!(b.insert(2, 'b'), 0);
        assert_eq!(b.insert(1, 'A'), 0, "replacing is not evicting");
        assert_eq!(b.insert(3, 'c'), 1);
        assert_eq!(
            (b.get(&1), b.get(&2), b.get(&3)),
            (None, Some(&'b'), Some(&'c'))
        );
        assert_eq!(b.retain(|k, _| *k != 2), 1);
        // The stale key 2 in the queue is skipped: 3 is evicted only when the map is full again.
        assert_eq!(b.insert(4, 'd'), 0);
        assert_eq!(b.insert(5, 'e'), 1);
        assert_eq!((b.get(&3), b.len()), (None, 2));
        assert_eq!(b.clear(), 2);
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn order_queue_stays_bounded() {
        let mut b = Bounded::new(4);
        for k in 0..1000u32 {
            b.insert(k, ());
            b.retain(|_, _| false);
            assert!(b.queued() <= 2 * 4 + 1, "{}", b.queued());
        }
    }
}
