//! A bounded memory of recently used (key, nonce) pairs.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use medledger_crypto::PublicKey;

use crate::freshness::{check_created, last_fresh_second};
use crate::{AuthError, MAX_REPLAY_CACHE_ENTRIES};

/// Domain-separation tag of replay-cache fingerprints.
const FINGERPRINT_TAG: &[u8] = b"medledger/httpsig-replay/v1";

/// SHA-256 of (key, nonce): every entry has the same small size whatever the nonce.
type Fingerprint = [u8; 32];

/// Remembers each (key, nonce) pair until its signature can no longer be fresh, so that a
/// captured request cannot be sent again.
///
/// A pair is kept until `created +` [`MAX_CLOCK_SKEW_SECONDS`](crate::MAX_CLOCK_SKEW_SECONDS),
/// the last second [`verify_request`](crate::verify_request) accepts it. Expired pairs are
/// dropped oldest first on every call, each once, so a call costs amortised O(log n). The cache
/// holds at most its capacity of live pairs and refuses new ones beyond that rather than forget
/// a pair early. Time comes from the caller; the latest `now` seen is kept, so a clock that steps
/// back cannot revive a nonce already forgotten.
pub struct ReplayCache {
    max_entries: usize,
    /// The latest `now` the cache has been given.
    latest_now_seconds: u64,
    /// Live fingerprints.
    seen: HashSet<Fingerprint>,
    /// The same fingerprints ordered by the last second they must be kept.
    by_expiry: BTreeSet<(u64, Fingerprint)>,
}

impl ReplayCache {
    /// An empty cache holding up to [`MAX_REPLAY_CACHE_ENTRIES`] pairs.
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_entries(MAX_REPLAY_CACHE_ENTRIES)
    }

    /// An empty cache holding up to `max_entries` pairs (at least one, at most
    /// [`MAX_REPLAY_CACHE_ENTRIES`]).
    ///
    /// # Panics
    ///
    /// If `max_entries` is outside those bounds: a configuration error.
    #[must_use]
    pub fn with_max_entries(max_entries: usize) -> Self {
        assert!(
            (1..=MAX_REPLAY_CACHE_ENTRIES).contains(&max_entries),
            "a replay cache holds 1 to {MAX_REPLAY_CACHE_ENTRIES} entries, not {max_entries}"
        );
        Self { max_entries, latest_now_seconds: 0, seen: HashSet::new(), by_expiry: BTreeSet::new() }
    }

    /// Records that `key` used `nonce` in a signature created at `created`, or refuses if it did
    /// so before within the freshness window.
    ///
    /// Errors: [`AuthError::Replayed`]; [`AuthError::ReplayCacheFull`] when the cache holds its
    /// maximum of live pairs; [`AuthError::StaleSignature`] or [`AuthError::FutureSignature`] if
    /// `created` is not fresh at `now_seconds` (or at a later `now` this cache was given before),
    /// which [`verify_request`](crate::verify_request) has normally refused already.
    pub fn check_and_insert(
        &mut self,
        key: &PublicKey,
        nonce: &str,
        created: u64,
        now_seconds: u64,
    ) -> Result<(), AuthError> {
        self.latest_now_seconds = self.latest_now_seconds.max(now_seconds);
        check_created(created, self.latest_now_seconds)?;
        self.evict_expired();
        let fingerprint = fingerprint(key, nonce);
        if self.seen.contains(&fingerprint) {
            return Err(AuthError::Replayed);
        }
        if self.seen.len() >= self.max_entries {
            return Err(AuthError::ReplayCacheFull { max_entries: self.max_entries });
        }
        self.seen.insert(fingerprint);
        self.by_expiry.insert((last_fresh_second(created), fingerprint));
        debug_assert_eq!(self.seen.len(), self.by_expiry.len());
        Ok(())
    }

    /// Number of pairs remembered (expired ones may linger until the next insertion).
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no pair is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The most pairs this cache holds.
    #[must_use]
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Drops every pair whose signature can no longer be fresh at the latest `now`.
    fn evict_expired(&mut self) {
        while let Some(&(last_fresh, fingerprint)) = self.by_expiry.first() {
            if last_fresh >= self.latest_now_seconds {
                break;
            }
            self.by_expiry.pop_first();
            let removed = self.seen.remove(&fingerprint);
            debug_assert!(removed, "both indexes hold the same fingerprints");
        }
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayCache")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .field("latest_now_seconds", &self.latest_now_seconds)
            .finish()
    }
}

fn fingerprint(key: &PublicKey, nonce: &str) -> Fingerprint {
    // The key has a fixed length, so (key, nonce) pairs cannot run into each other.
    medledger_crypto::tagged_hash(FINGERPRINT_TAG, &[key.as_bytes(), nonce.as_bytes()]).0
}
