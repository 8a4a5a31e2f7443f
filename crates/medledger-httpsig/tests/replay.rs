//! The replay cache: replays refused, pairs forgotten once stale, bounded, and equal to a
//! simple model under random operation sequences.

mod common;

use common::{NOW, member_key, other_key};
use medledger_crypto::PublicKey;
use medledger_httpsig::{AuthError, MAX_CLOCK_SKEW_SECONDS, MAX_REPLAY_CACHE_ENTRIES, ReplayCache};
use proptest::prelude::*;

const NONCE_A: &str = "nonce-aaaaaaaaaaaa";
const NONCE_B: &str = "nonce-bbbbbbbbbbbb";

fn nonce(index: usize) -> String {
    format!("nonce-{index:012}")
}

#[test]
fn a_replay_is_refused_until_the_signature_is_stale() {
    let key = member_key().public_key();
    let mut cache = ReplayCache::new();
    assert_eq!(cache.check_and_insert(&key, NONCE_A, NOW, NOW), Ok(()));
    assert_eq!(cache.check_and_insert(&key, NONCE_A, NOW, NOW + 1), Err(AuthError::Replayed));
    // The same nonce with another created time is the same pair.
    assert_eq!(cache.check_and_insert(&key, NONCE_A, NOW + 5, NOW + 5), Err(AuthError::Replayed));
    // At the last second the signature is fresh, it is still remembered.
    let last_fresh = NOW + MAX_CLOCK_SKEW_SECONDS;
    assert_eq!(cache.check_and_insert(&key, NONCE_A, NOW, last_fresh), Err(AuthError::Replayed));
    // One second later the old request is stale anyway, and the pair is forgotten.
    assert!(matches!(
        cache.check_and_insert(&key, NONCE_A, NOW, last_fresh + 1),
        Err(AuthError::StaleSignature { .. })
    ));
    assert_eq!(cache.check_and_insert(&key, NONCE_A, last_fresh + 1, last_fresh + 1), Ok(()));
    assert_eq!(cache.len(), 1);
}

#[test]
fn nonces_are_per_key() {
    let mut cache = ReplayCache::new();
    assert_eq!(cache.check_and_insert(&member_key().public_key(), NONCE_A, NOW, NOW), Ok(()));
    assert_eq!(cache.check_and_insert(&other_key().public_key(), NONCE_A, NOW, NOW), Ok(()));
    assert_eq!(cache.check_and_insert(&member_key().public_key(), NONCE_B, NOW, NOW), Ok(()));
    assert_eq!(cache.len(), 3);
}

#[test]
fn full_at_capacity_until_entries_expire() {
    let key = member_key().public_key();
    let mut cache = ReplayCache::with_max_entries(3);
    for index in 0..3 {
        assert_eq!(cache.check_and_insert(&key, &nonce(index), NOW + index as u64, NOW + 2), Ok(()));
    }
    assert_eq!(
        cache.check_and_insert(&key, &nonce(3), NOW + 2, NOW + 2),
        Err(AuthError::ReplayCacheFull { max_entries: 3 })
    );
    // A replay is still reported as a replay when full.
    assert_eq!(cache.check_and_insert(&key, &nonce(0), NOW, NOW + 2), Err(AuthError::Replayed));
    // The first entry expires one second after NOW + skew; only it is evicted.
    let later = NOW + MAX_CLOCK_SKEW_SECONDS + 1;
    assert_eq!(cache.check_and_insert(&key, &nonce(3), later, later), Ok(()));
    assert_eq!(cache.len(), 3);
    assert_eq!(
        cache.check_and_insert(&key, &nonce(4), later, later),
        Err(AuthError::ReplayCacheFull { max_entries: 3 })
    );
    // Once everything is stale, everything is evicted.
    let much_later = later + 2 * MAX_CLOCK_SKEW_SECONDS;
    assert_eq!(cache.check_and_insert(&key, &nonce(5), much_later, much_later), Ok(()));
    assert_eq!(cache.len(), 1);
}

#[test]
fn the_default_cache_holds_exactly_max_entries() {
    let key = member_key().public_key();
    let mut cache = ReplayCache::default();
    assert_eq!(cache.max_entries(), MAX_REPLAY_CACHE_ENTRIES);
    for index in 0..MAX_REPLAY_CACHE_ENTRIES {
        assert_eq!(cache.check_and_insert(&key, &nonce(index), NOW, NOW), Ok(()));
    }
    assert_eq!(
        cache.check_and_insert(&key, &nonce(MAX_REPLAY_CACHE_ENTRIES), NOW, NOW),
        Err(AuthError::ReplayCacheFull { max_entries: MAX_REPLAY_CACHE_ENTRIES })
    );
    assert_eq!(cache.len(), MAX_REPLAY_CACHE_ENTRIES);
}

#[test]
fn a_clock_stepping_back_cannot_revive_a_forgotten_nonce() {
    let key = member_key().public_key();
    let mut cache = ReplayCache::new();
    assert_eq!(cache.check_and_insert(&key, NONCE_A, NOW, NOW), Ok(()));
    let later = NOW + 10 * MAX_CLOCK_SKEW_SECONDS;
    assert_eq!(cache.check_and_insert(&key, NONCE_B, later, later), Ok(()));
    assert_eq!(cache.len(), 1, "the first pair was forgotten");
    // The clock steps back to NOW: the first request would be fresh again by that clock.
    assert!(matches!(cache.check_and_insert(&key, NONCE_A, NOW, NOW), Err(AuthError::StaleSignature { .. })));
}

#[test]
#[should_panic(expected = "a replay cache holds 1 to")]
fn a_cache_larger_than_the_bound_is_refused() {
    let _ = ReplayCache::with_max_entries(MAX_REPLAY_CACHE_ENTRIES + 1);
}

/// The reference: a list scanned linearly, with the rules written out plainly.
struct Model {
    max_entries: usize,
    latest_now: u64,
    entries: Vec<(PublicKey, String, u64)>,
}

impl Model {
    fn check_and_insert(
        &mut self,
        key: &PublicKey,
        nonce: &str,
        created: u64,
        now: u64,
    ) -> Result<(), &'static str> {
        self.latest_now = self.latest_now.max(now);
        if created + MAX_CLOCK_SKEW_SECONDS < self.latest_now {
            return Err("stale-signature");
        }
        if created > self.latest_now + MAX_CLOCK_SKEW_SECONDS {
            return Err("future-signature");
        }
        let latest_now = self.latest_now;
        self.entries.retain(|(_, _, entry_created)| entry_created + MAX_CLOCK_SKEW_SECONDS >= latest_now);
        if self.entries.iter().any(|(entry_key, entry_nonce, _)| entry_key == key && entry_nonce == nonce) {
            return Err("replayed-request");
        }
        if self.entries.len() >= self.max_entries {
            return Err("replay-cache-full");
        }
        self.entries.push((*key, nonce.to_owned(), created));
        Ok(())
    }
}

proptest! {
    #[test]
    fn the_cache_behaves_like_the_model(
        max_entries in 1usize..8,
        operations in prop::collection::vec((0u8..2, 0usize..6, 0u64..900, 0u64..700), 1..200),
    ) {
        let keys = [member_key().public_key(), other_key().public_key()];
        let mut cache = ReplayCache::with_max_entries(max_entries);
        let mut model = Model { max_entries, latest_now: 0, entries: Vec::new() };
        let mut now = NOW;
        for (key_index, nonce_index, created_offset, clock_step) in operations {
            // The clock mostly moves forward, sometimes back.
            now = if clock_step < 600 { now + clock_step / 4 } else { now - (clock_step - 600) };
            let created = now + created_offset - 450;
            let key = &keys[usize::from(key_index)];
            let nonce = nonce(nonce_index);
            let expected = model.check_and_insert(key, &nonce, created, now);
            let actual = cache.check_and_insert(key, &nonce, created, now).map_err(|error| error.slug());
            prop_assert_eq!(actual, expected);
            prop_assert!(cache.len() <= max_entries);
        }
    }
}
