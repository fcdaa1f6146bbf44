//! The live set's tables: sets of 32-byte commitments with open addressing
//! (linear probing, backward-shift removal, no tombstones) over one flat
//! array of 32-byte slots.
//!
//! Why not `HashSet<Commitment>`: the notary's live set holds millions of
//! commitments probed at random. With 4 KiB pages nearly every probe also
//! misses the TLB, and on a virtual machine a TLB miss is a two-level page
//! walk: the probes were the engine's largest cost in the profile, and
//! turning on huge pages for the whole machine made the notary alone
//! much faster (docs/performance.md, "History"). A
//! table of 2 MiB or more lives in its own anonymous mapping that asks the
//! kernel for transparent huge pages (`madvise(MADV_HUGEPAGE)`, through
//! memmap2's safe API), so only these tables — dense and fully used — get
//! huge pages, not the whole heap (khugepaged would otherwise fill sparse
//! heap regions and resident memory would creep). Where the kernel says no,
//! the table works the same on normal pages; where mapping fails, it lives
//! on the heap.
//!
//! The all-zero key marks an empty slot; a node may still claim the all-zero
//! commitment, which is then held in a flag of its own.

use std::hash::BuildHasher;

/// Bytes of one key (a commitment).
const KEY: usize = 32;
const EMPTY: [u8; KEY] = [0; KEY];
/// Fewest slots a table has.
const MIN_SLOTS: usize = 64;
/// Tables of at least this many bytes get their own mapping (huge pages).
const MAPPED_BYTES: usize = 2 * 1024 * 1024;

/// Zeroed memory for a big table: its own mapping with transparent huge
/// pages when large enough (and allowed), else the heap.
enum TableMemory {
    Heap(Vec<u8>),
    Mapped(memmap2::MmapMut),
}

impl TableMemory {
    /// `bytes` zeroed bytes.
    fn zeroed(bytes: usize) -> TableMemory {
        if bytes >= MAPPED_BYTES
            && let Ok(map) = memmap2::MmapMut::map_anon(bytes)
        {
            advise_huge_pages(&map);
            return TableMemory::Mapped(map);
        }
        TableMemory::Heap(vec![0; bytes])
    }

    fn bytes(&self) -> &[u8] {
        match self {
            TableMemory::Heap(v) => v,
            TableMemory::Mapped(m) => m,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            TableMemory::Heap(v) => v,
            TableMemory::Mapped(m) => m,
        }
    }

    /// Whether it is a mapping of its own (which asked for huge pages).
    fn is_mapped(&self) -> bool {
        matches!(self, TableMemory::Mapped(_))
    }
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(map: &memmap2::MmapMut) {
    // A hint: refused (THP "never", old kernels), the table still works.
    let _ = map.advise(memmap2::Advice::HugePage);
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_map: &memmap2::MmapMut) {}

/// A set of commitments (as their 32 bytes).
pub(crate) struct DigestSet {
    slots: TableMemory,
    /// Number of slots (a power of two).
    capacity: usize,
    /// Keys in the slots (the all-zero key is not among them).
    len: usize,
    /// Whether the all-zero key is held.
    zero: bool,
    hasher: foldhash::fast::FixedState,
}

impl DigestSet {
    /// An empty set.
    pub(crate) fn new() -> DigestSet {
        // A random seed per set: nodes choose the commitments they claim,
        // so the slots they land in must not be predictable.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x6c69_7665_u64);
        DigestSet::with_slots(MIN_SLOTS, foldhash::fast::FixedState::with_seed(seed))
    }

    fn with_slots(capacity: usize, hasher: foldhash::fast::FixedState) -> DigestSet {
        DigestSet { slots: TableMemory::zeroed(capacity * KEY), capacity, len: 0, zero: false, hasher }
    }

    /// Number of keys held.
    pub(crate) fn len(&self) -> usize {
        self.len + usize::from(self.zero)
    }

    fn home(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) & (self.capacity - 1)
    }

    fn slot(&self, i: usize) -> &[u8] {
        &self.slots.bytes()[i * KEY..(i + 1) * KEY]
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn find(&self, key: &[u8; KEY]) -> Result<usize, usize> {
        let mask = self.capacity - 1;
        let mut i = self.home(key);
        loop {
            let slot = self.slot(i);
            if slot == key {
                return Ok(i);
            }
            if slot == EMPTY {
                return Err(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether `key` is held.
    pub(crate) fn contains(&self, key: &[u8; KEY]) -> bool {
        if *key == EMPTY {
            return self.zero;
        }
        self.find(key).is_ok()
    }

    /// Adds `key`; false if it was held already.
    pub(crate) fn insert(&mut self, key: &[u8; KEY]) -> bool {
        if *key == EMPTY {
            return !std::mem::replace(&mut self.zero, true);
        }
        // At most three quarters full (linear probing stays short).
        if (self.len + 1) * 4 > self.capacity * 3 {
            self.grow();
        }
        match self.find(key) {
            Ok(_) => false,
            Err(i) => {
                self.slots.bytes_mut()[i * KEY..(i + 1) * KEY].copy_from_slice(key);
                self.len += 1;
                true
            }
        }
    }

    /// Removes `key`; false if it was not held.
    pub(crate) fn remove(&mut self, key: &[u8; KEY]) -> bool {
        if *key == EMPTY {
            return std::mem::replace(&mut self.zero, false);
        }
        let Ok(mut hole) = self.find(key) else { return false };
        // Backward shift: later keys of the run that may sit in the hole
        // move into it, so no probe ever stops early at a gap.
        let mask = self.capacity - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let slot = self.slot(j);
            if slot == EMPTY {
                break;
            }
            let home = self.home(slot);
            // The key at j may move to the hole if its probe from `home`
            // passes the hole: the hole is no farther from j than home is.
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots.bytes_mut().copy_within(j * KEY..(j + 1) * KEY, hole * KEY);
                hole = j;
            }
        }
        self.slots.bytes_mut()[hole * KEY..(hole + 1) * KEY].copy_from_slice(&EMPTY);
        self.len -= 1;
        true
    }

    fn grow(&mut self) {
        let mut bigger = DigestSet::with_slots(self.capacity * 2, self.hasher.clone());
        for key in self.slot_keys() {
            // Distinct keys in a table of twice the room: each goes to the
            // first empty slot of its run.
            let Err(i) = bigger.find(&key) else { continue };
            bigger.slots.bytes_mut()[i * KEY..(i + 1) * KEY].copy_from_slice(&key);
            bigger.len += 1;
        }
        bigger.zero = self.zero;
        *self = bigger;
    }

    /// The keys in the slots (not the all-zero key).
    fn slot_keys(&self) -> impl Iterator<Item = [u8; KEY]> + '_ {
        self.slots.bytes().chunks_exact(KEY).filter(|k| *k != EMPTY).filter_map(|k| <[u8; KEY]>::try_from(k).ok())
    }

    /// Every key held, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = [u8; KEY]> + '_ {
        self.slot_keys().chain(self.zero.then_some(EMPTY))
    }
}

impl Default for DigestSet {
    fn default() -> Self {
        DigestSet::new()
    }
}

impl Clone for DigestSet {
    fn clone(&self) -> Self {
        let mut copy = DigestSet::with_slots(self.capacity, self.hasher.clone());
        copy.slots.bytes_mut().copy_from_slice(self.slots.bytes());
        copy.len = self.len;
        copy.zero = self.zero;
        copy
    }
}

impl std::fmt::Debug for DigestSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestSet")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("huge_page_mapping", &self.slots.is_mapped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn key(n: u64) -> [u8; KEY] {
        dtenge_crypto::hash(b"k", &[&n.to_le_bytes()]).0
    }

    #[test]
    fn grows_past_the_mapping_size_and_keeps_every_key() {
        let mut set = DigestSet::new();
        let n = 100_000u64; // 100 000 keys need 2^18 slots: 8 MiB, a mapping
        for i in 0..n {
            assert!(set.insert(&key(i)));
        }
        assert!(!set.insert(&key(7)));
        assert_eq!(set.len(), n as usize);
        assert!(set.slots.is_mapped(), "8 MiB of slots: its own mapping");
        assert!((0..n).all(|i| set.contains(&key(i))));
        assert!((n..n + 1_000).all(|i| !set.contains(&key(i))));
        for i in (0..n).step_by(2) {
            assert!(set.remove(&key(i)));
        }
        assert!(!set.remove(&key(0)));
        assert_eq!(set.len(), n as usize / 2);
        assert!((0..n).all(|i| set.contains(&key(i)) == (i % 2 == 1)));
        let copy = set.clone();
        set.remove(&key(1));
        assert!(copy.contains(&key(1)) && !set.contains(&key(1)));
        assert_eq!(copy.iter().count(), n as usize / 2);
    }

    #[test]
    fn the_all_zero_commitment_is_a_key_like_any_other() {
        let mut set = DigestSet::new();
        assert!(!set.contains(&EMPTY));
        assert!(set.insert(&EMPTY));
        assert!(!set.insert(&EMPTY));
        assert_eq!(set.len(), 1);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![EMPTY]);
        assert!(set.remove(&EMPTY));
        assert!(!set.remove(&EMPTY));
        assert_eq!(set.len(), 0);
    }

    /// Keys that share their home slot and wrap around the end of the
    /// table: removal must shift the run back without losing any.
    #[test]
    fn removal_inside_a_wrapped_run_loses_nothing() {
        let mut set = DigestSet::new();
        let last = set.capacity - 1;
        let near_end: Vec<[u8; KEY]> = (0u64..).map(key).filter(|k| set.home(k) >= last - 1).take(6).collect();
        for k in &near_end {
            assert!(set.insert(k));
        }
        for (i, k) in near_end.iter().enumerate() {
            assert!(set.remove(k));
            assert!(near_end[i + 1..].iter().all(|k| set.contains(k)), "lost a key after removing {i}");
        }
        assert_eq!(set.len(), 0);
    }

    proptest! {
        /// Against `HashSet`: any mix of inserts and removals over a small
        /// key space (many collisions, runs, wrap-around) gives the same
        /// answers and the same keys.
        #[test]
        fn behaves_like_a_hash_set(ops in prop::collection::vec((any::<bool>(), 0u64..300), 1..3_000)) {
            let mut set = DigestSet::new();
            let mut model = HashSet::new();
            for (insert, n) in ops {
                let k = if n == 0 { EMPTY } else { key(n) };
                if insert {
                    prop_assert_eq!(set.insert(&k), model.insert(k));
                } else {
                    prop_assert_eq!(set.remove(&k), model.remove(&k));
                }
                prop_assert_eq!(set.len(), model.len());
            }
            for n in 0..300 {
                let k = if n == 0 { EMPTY } else { key(n) };
                prop_assert_eq!(set.contains(&k), model.contains(&k));
            }
            let held: HashSet<[u8; KEY]> = set.iter().collect();
            prop_assert_eq!(held, model);
        }
    }
}
