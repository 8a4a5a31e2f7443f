//! Unwrapped data keys of versions sealed or read lately, so that reading a hot record skips
//! the unwrap: about a microsecond for keys wrapped under the vault's key-encryption key, and
//! about 70 µs (two X25519 multiplications) for the HPKE-wrapped keys of versions sealed
//! before vault format 3.
//!
//! What it exposes: nothing the process does not hold already. The vault's secret key, which
//! opens every wrapped data key, stays in memory for the node's lifetime; the cache keeps at
//! most its capacity of data keys, serves none older than [`MAX_KEY_AGE`], and zeroizes each
//! when it is dropped. A hit needs the stored wrapped key to be the one the cached key came
//! from, so a version changed at rest is unwrapped (and checked) afresh. The ciphertext checks
//! (digest against the anchor, AEAD tag) run on every read, hit or miss.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use medledger_crypto::envelope::DataKey;
use medledger_types::{RecordId, ResourceType};

use crate::OwnWrappedKey;

/// Data keys a vault keeps unwrapped by default: a hospital's working set of charts in a
/// shift, at about 200 bytes each (3 MB).
pub const DEFAULT_CACHED_KEYS: usize = 16_384;

/// Longest a cached data key is served after it was unwrapped or generated.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(300);

/// One record version.
type VersionId = (ResourceType, RecordId, u64);

struct Entry {
    wrapped: OwnWrappedKey,
    key: Arc<DataKey>,
    cached_at: Instant,
}

/// Two generations: new keys go into `current`; when it is full or half of
/// [`MAX_KEY_AGE`] old it becomes `previous`, and the old `previous` is dropped (zeroized).
/// That bounds memory to twice a generation and needs no per-entry bookkeeping.
struct Generations {
    current: HashMap<VersionId, Entry>,
    previous: HashMap<VersionId, Entry>,
    started: Instant,
}

/// A bounded, aging cache of unwrapped data keys.
pub(crate) struct KeyCache {
    /// Entries per generation; 0 turns the cache off.
    generation_entries: usize,
    generations: Mutex<Generations>,
}

impl KeyCache {
    /// A cache of at most `entries` keys (0: none).
    pub(crate) fn new(entries: usize) -> Self {
        Self {
            generation_entries: entries / 2,
            generations: Mutex::new(Generations {
                current: HashMap::new(),
                previous: HashMap::new(),
                started: Instant::now(),
            }),
        }
    }

    /// The data key of a version, if cached from exactly `wrapped` within [`MAX_KEY_AGE`].
    pub(crate) fn get(&self, id: VersionId, wrapped: &OwnWrappedKey) -> Option<Arc<DataKey>> {
        if self.generation_entries == 0 {
            return None;
        }
        let generations = self.aged()?;
        let entry = generations.current.get(&id).or_else(|| generations.previous.get(&id))?;
        (entry.wrapped == *wrapped && entry.cached_at.elapsed() < MAX_KEY_AGE).then(|| Arc::clone(&entry.key))
    }

    /// Remembers the data key `wrapped` opens to.
    pub(crate) fn insert(&self, id: VersionId, wrapped: &OwnWrappedKey, key: Arc<DataKey>) {
        if self.generation_entries == 0 {
            return;
        }
        let Some(mut generations) = self.aged() else { return };
        if generations.current.len() >= self.generation_entries {
            generations.rotate();
        }
        let entry = Entry { wrapped: wrapped.clone(), key, cached_at: Instant::now() };
        generations.current.insert(id, entry);
    }

    /// How many keys are held (both generations, expired ones included until dropped).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.aged().map_or(0, |generations| generations.current.len() + generations.previous.len())
    }

    /// The generations, rotated first if the current one is half the maximum age old. `None`
    /// if a thread panicked holding the lock: the cache then stays out of the way.
    fn aged(&self) -> Option<MutexGuard<'_, Generations>> {
        let mut generations = self.generations.lock().ok()?;
        if generations.started.elapsed() >= MAX_KEY_AGE / 2 {
            generations.rotate();
        }
        Some(generations)
    }
}

impl Generations {
    fn rotate(&mut self) {
        self.previous = std::mem::take(&mut self.current);
        self.started = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use medledger_crypto::envelope::VaultSecretKey;

    use super::*;

    fn version(n: u64) -> VersionId {
        (ResourceType::Observation, RecordId([7; 16]), n)
    }

    fn wrapped_key() -> (OwnWrappedKey, Arc<DataKey>) {
        let key = DataKey::generate();
        let wrapped = VaultSecretKey::generate().key_encryption_key().wrap(&key, b"context");
        (OwnWrappedKey::Local(wrapped), Arc::new(key))
    }

    #[test]
    fn a_hit_needs_the_same_wrapped_key() {
        let cache = KeyCache::new(8);
        let (wrapped, key) = wrapped_key();
        cache.insert(version(1), &wrapped, Arc::clone(&key));
        let hit = cache.get(version(1), &wrapped).expect("cached");
        assert!(Arc::ptr_eq(&hit, &key));
        let (other, _) = wrapped_key();
        assert!(cache.get(version(1), &other).is_none(), "another wrapped key is not a hit");
        assert!(cache.get(version(2), &wrapped).is_none(), "another version is not a hit");
    }

    #[test]
    fn memory_is_bounded_by_two_generations() {
        let cache = KeyCache::new(8);
        let (wrapped, key) = wrapped_key();
        for n in 0..100 {
            cache.insert(version(n), &wrapped, Arc::clone(&key));
            assert!(cache.len() <= 8, "{} keys held", cache.len());
        }
        assert!(cache.get(version(99), &wrapped).is_some(), "the newest stays");
        assert!(cache.get(version(0), &wrapped).is_none(), "the oldest went");
        drop(cache);
        assert_eq!(Arc::strong_count(&key), 1, "dropping the cache drops its keys");
    }

    #[test]
    fn zero_entries_turns_it_off() {
        let cache = KeyCache::new(0);
        let (wrapped, key) = wrapped_key();
        cache.insert(version(1), &wrapped, key);
        assert!(cache.get(version(1), &wrapped).is_none());
        assert_eq!(cache.len(), 0);
    }
}
