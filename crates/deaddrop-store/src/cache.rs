//! A bounded cache of decoded value records, filled by reads and writes.
//!
//! `RecordStore::get(&self)` returns `Cow<'_, Record>`; to hand out
//! `Cow::Borrowed` (as `MemoryStore` does) for records read from disk, the
//! cache must accept entries through a shared reference and keep them in
//! place while they are borrowed. It is therefore a set-associative array
//! of [`OnceCell`] slots: a read (`&self`) may fill an *empty* slot of its
//! key's set, and only `&mut self` methods (writes, flushes, sweeps) ever
//! replace or evict an entry, so a borrowed record lives as long as the
//! shared borrow of the store. No locking, no `unsafe`.
//!
//! Bounds: a fixed number of slots (`capacity` records, in sets of
//! [`WAYS`], allocated in small chunks on first use) and a byte budget (value, key and bookkeeping of every entry).
//! A read that finds its set full, or the budget spent, is served without
//! caching and flags the cache as under pressure; the next `&mut` call runs
//! a CLOCK sweep (recently read entries get a second chance, others are
//! evicted) over a bounded number of slots, so the cache follows a changing
//! working set without any cost on the read path.

use std::{
    borrow::Cow,
    cell::{Cell, OnceCell},
    hash::{BuildHasher, RandomState},
};

use libp2p::kad::Record;

/// Slots per set: a key may live in any slot of its set.
const WAYS: usize = 4;
/// Slots per lazily allocated chunk (16 sets): a store that caches few
/// records touches little memory, however large its capacity.
const CHUNK: usize = 16 * WAYS;
/// Slots visited by one maintenance step under pressure.
const SWEEP_SLOTS: usize = 4096;

struct Slot {
    /// Hash of the cached key, compared before the key itself so a lookup
    /// reads one set of slots and only the matching record (the slots of a
    /// set are contiguous; the records are separate allocations).
    tag: Cell<u64>,
    record: OnceCell<Box<Record>>,
    referenced: Cell<bool>,
}

fn new_chunk() -> Box<[Slot]> {
    (0..CHUNK)
        .map(|_| Slot {
            tag: Cell::new(0),
            record: OnceCell::new(),
            referenced: Cell::new(false),
        })
        .collect()
}

/// Set-associative, byte-bounded cache of value records.
pub(crate) struct RecordCache {
    /// Slot `i` lives in chunk `i / CHUNK`, allocated on first use.
    chunks: Box<[OnceCell<Box<[Slot]>>]>,
    hasher: RandomState,
    max_bytes: usize,
    used: Cell<usize>,
    pressure: Cell<bool>,
    /// Clock hand: the next slot index a sweep looks at.
    hand: usize,
}

/// Memory charged for one cached record.
fn cost(r: &Record) -> usize {
    std::mem::size_of::<Slot>()
        + std::mem::size_of::<Record>()
        + r.key.as_ref().len()
        + r.value.len()
        + 32 // allocator overhead of the three allocations, roughly
}

impl RecordCache {
    /// A cache of at most `capacity` records and `max_bytes` bytes (either 0 disables it).
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        let chunks = if max_bytes == 0 {
            0
        } else {
            capacity.div_ceil(CHUNK)
        };
        RecordCache {
            chunks: (0..chunks).map(|_| OnceCell::new()).collect(),
            hasher: RandomState::new(),
            max_bytes,
            used: Cell::new(0),
            pressure: Cell::new(false),
            hand: 0,
        }
    }

    fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    /// `key`'s hash and the index of the first slot of its set, or `None`
    /// if the cache is disabled.
    fn set_of(&self, key: &[u8]) -> Option<(u64, usize)> {
        let sets = self.capacity() / WAYS;
        if sets == 0 {
            return None;
        }
        let h = self.hasher.hash_one(key);
        Some((h, (h % sets as u64) as usize * WAYS))
    }

    /// The slots of the set starting at `base`, if its chunk is allocated.
    fn set_slots(&self, base: usize) -> Option<&[Slot]> {
        let chunk = self.chunks[base / CHUNK].get()?;
        Some(&chunk[base % CHUNK..base % CHUNK + WAYS])
    }

    /// The slots of the set starting at `base`, allocating its chunk.
    fn set_slots_alloc(&self, base: usize) -> &[Slot] {
        let chunk = self.chunks[base / CHUNK].get_or_init(new_chunk);
        &chunk[base % CHUNK..base % CHUNK + WAYS]
    }

    fn slot_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.chunks[i / CHUNK]
            .get_mut()
            .map(|chunk| &mut chunk[i % CHUNK])
    }

    /// Index (slot number) of `key`'s entry.
    fn find(&self, key: &[u8]) -> Option<usize> {
        let (h, base) = self.set_of(key)?;
        let way = self.set_slots(base)?.iter().position(|slot| {
            slot.tag.get() == h && slot.record.get().is_some_and(|r| r.key.as_ref() == key)
        })?;
        Some(base + way)
    }

    /// The cached record of `key`, marking it recently used.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Record> {
        let (h, base) = self.set_of(key)?;
        let slot = self.set_slots(base)?.iter().find(|slot| {
            slot.tag.get() == h && slot.record.get().is_some_and(|r| r.key.as_ref() == key)
        })?;
        slot.referenced.set(true);
        slot.record.get().map(|b| &**b)
    }

    /// Caches a record read from the database (the caller checked it is
    /// not cached). Returns it borrowed from the cache, or owned if there is
    /// no room (its set is full or the byte budget is spent).
    pub(crate) fn offer(&self, r: Record) -> Cow<'_, Record> {
        let Some((h, base)) = self.set_of(r.key.as_ref()) else {
            return Cow::Owned(r);
        };
        let c = cost(&r);
        if self.used.get() + c > self.max_bytes {
            self.pressure.set(true);
            return Cow::Owned(r);
        }
        let Some(slot) = self
            .set_slots_alloc(base)
            .iter()
            .find(|slot| slot.record.get().is_none())
        else {
            self.pressure.set(true);
            return Cow::Owned(r);
        };
        self.used.set(self.used.get() + c);
        slot.referenced.set(true);
        slot.tag.set(h);
        // The slot was checked empty above and nothing else can fill it meanwhile.
        Cow::Borrowed(slot.record.get_or_init(move || Box::new(r)))
    }

    /// Caches a record that was just written (replacing its key's entry),
    /// evicting others if needed.
    pub(crate) fn insert(&mut self, r: Record) {
        self.remove(r.key.as_ref());
        let Some((h, base)) = self.set_of(r.key.as_ref()) else {
            return;
        };
        let c = cost(&r);
        if c > self.max_bytes {
            return;
        }
        let mut steps = 0;
        while *self.used.get_mut() + c > self.max_bytes && steps < 2 * self.capacity() {
            self.clock_step();
            steps += 1;
        }
        if *self.used.get_mut() + c > self.max_bytes {
            return;
        }
        let set = self.set_slots_alloc(base);
        let way = set
            .iter()
            .position(|slot| slot.record.get().is_none())
            .or_else(|| set.iter().position(|slot| !slot.referenced.get()))
            .unwrap_or(self.hand % WAYS);
        self.evict(base + way);
        if let Some(slot) = self.slot_mut(base + way) {
            slot.record = OnceCell::from(Box::new(r));
            *slot.tag.get_mut() = h;
            *slot.referenced.get_mut() = false;
            *self.used.get_mut() += c;
        }
    }

    fn evict(&mut self, i: usize) {
        let freed = self
            .slot_mut(i)
            .and_then(|slot| slot.record.take())
            .map_or(0, |old| cost(&old));
        *self.used.get_mut() -= freed;
    }

    /// Advances the clock hand by one slot (or past an unallocated chunk):
    /// a recently used entry loses its mark, an unmarked one is evicted.
    fn clock_step(&mut self) {
        let n = self.capacity();
        if n == 0 {
            return;
        }
        let i = self.hand % n;
        let Some(slot) = self.slot_mut(i) else {
            self.hand = (i / CHUNK + 1) * CHUNK % n;
            return;
        };
        let referenced = slot.referenced.replace(false);
        self.hand = (i + 1) % n;
        if !referenced {
            self.evict(i);
        }
    }

    /// Forgets `key`'s entry, if cached.
    pub(crate) fn remove(&mut self, key: &[u8]) {
        if let Some(i) = self.find(key) {
            self.evict(i);
        }
    }

    /// Forgets everything (after an abandoned batch of writes).
    pub(crate) fn clear(&mut self) {
        for chunk in self.chunks.iter_mut() {
            chunk.take();
        }
        *self.used.get_mut() = 0;
    }

    /// Called by `&mut` methods: if reads went uncached since the last
    /// call, sweeps part of the cache to make room for the current working set.
    pub(crate) fn maintain(&mut self) {
        if !self.pressure.replace(false) {
            return;
        }
        for _ in 0..SWEEP_SLOTS.min(self.capacity()) {
            self.clock_step();
        }
    }

    /// Bytes charged for the cached entries.
    #[cfg(test)]
    pub(crate) fn used_bytes(&self) -> usize {
        self.used.get()
    }
}

#[cfg(test)]
mod tests {
    use libp2p::kad::RecordKey;

    use super::*;

    fn rec(i: u32, len: usize) -> Record {
        Record::new(RecordKey::new(&i.to_be_bytes()), vec![1; len])
    }

    #[test]
    fn reads_fill_and_writes_replace() {
        let mut c = RecordCache::new(64, 1 << 20);
        let k = RecordKey::new(&1u32.to_be_bytes());
        assert!(c.get(k.as_ref()).is_none());
        assert!(matches!(c.offer(rec(1, 10)), Cow::Borrowed(r) if r.value.len() == 10));
        assert_eq!(c.get(k.as_ref()).map(|r| r.value.len()), Some(10));
        c.insert(rec(1, 20));
        assert_eq!(c.get(k.as_ref()).map(|r| r.value.len()), Some(20));
        c.remove(k.as_ref());
        assert!(c.get(k.as_ref()).is_none());
        assert_eq!(c.used_bytes(), 0);
    }

    #[test]
    fn byte_budget_is_never_exceeded() {
        let budget = 10 * cost(&rec(0, 1000));
        let mut c = RecordCache::new(1024, budget);
        let mut offered = 0;
        for i in 0..100 {
            if matches!(c.offer(rec(i, 1000)), Cow::Borrowed(_)) {
                offered += 1;
            }
            assert!(c.used_bytes() <= budget);
        }
        assert!(offered <= 10);
        for i in 100..200 {
            c.insert(rec(i, 1000));
            assert!(c.used_bytes() <= budget);
        }
        assert!(c.get(&199u32.to_be_bytes()).is_some());
    }

    #[test]
    fn pressure_makes_room_for_new_reads() {
        let mut c = RecordCache::new(8, 1 << 20);
        for i in 0..200 {
            let _ = c.offer(rec(i, 1));
        }
        let cached = |c: &RecordCache| {
            (0..200)
                .filter(|i| c.find(&u32::to_be_bytes(*i)).is_some())
                .count()
        };
        let before = cached(&c);
        assert!(before > 0 && before <= c.capacity());
        assert!(c.pressure.get(), "some sets overflowed");
        // The first sweep clears the marks, the next one evicts.
        c.maintain();
        assert_eq!(cached(&c), before);
        c.pressure.set(true);
        c.maintain();
        assert_eq!(cached(&c), 0);
        assert_eq!(c.used_bytes(), 0);
    }

    #[test]
    fn slots_are_allocated_on_first_use() {
        let c = RecordCache::new(1 << 20, 1 << 30);
        let allocated = |c: &RecordCache| c.chunks.iter().filter(|k| k.get().is_some()).count();
        assert_eq!(allocated(&c), 0);
        let _ = c.offer(rec(1, 1));
        assert_eq!(allocated(&c), 1);
    }

    #[test]
    fn zero_capacity_disables() {
        let mut c = RecordCache::new(0, 1 << 20);
        c.insert(rec(1, 1));
        assert!(matches!(c.offer(rec(2, 1)), Cow::Owned(_)));
        let mut c = RecordCache::new(16, 0);
        c.insert(rec(1, 1));
        assert!(c.get(&1u32.to_be_bytes()).is_none());
    }
}
